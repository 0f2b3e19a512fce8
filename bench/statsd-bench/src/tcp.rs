//! The TCP sender: one connection, whole batches of chunks per `writev`.

use std::io::{IoSlice, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::os::set_sndbuf;
use crate::pacer::{sleep_until_or, Pacer};
use crate::plan::{Generator, Planned};
use crate::{Args, Outcome};

pub(crate) fn run_tcp(
    a: &Args,
    addr: SocketAddr,
    g: &mut Generator,
    pacer: &mut Pacer,
    deadline: Instant,
) -> Result<Outcome, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("tcp connect {addr}: {e}"))?;
    set_sndbuf(&stream, a.sndbuf);
    // Short write timeout so a stalled server cannot hold us past the deadline.
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let mut out = Outcome {
        syscalls: 0,
        send_errors: 0,
        last_error: None,
    };
    let mut plan = Vec::with_capacity(a.batch);
    'outer: while g.remaining > 0 && Instant::now() < deadline {
        let n = match pacer.admit(g.sent_lines, g.lines_per_datagram, a.batch) {
            Ok(n) => n,
            Err(wait) => {
                sleep_until_or(wait, deadline);
                continue;
            }
        };
        g.plan(n, &mut plan);
        // Position in the batch: chunk index and bytes of it already written.
        let (mut ci, mut off) = (0usize, 0usize);
        while ci < plan.len() {
            let slices: Vec<IoSlice> = plan[ci..]
                .iter()
                .enumerate()
                .map(|(j, d)| {
                    let b = g.tcp_bytes(d);
                    IoSlice::new(if j == 0 { &b[off..] } else { b })
                })
                .collect();
            out.syscalls += 1;
            match stream.write_vectored(&slices) {
                Ok(0) => {
                    out.last_error = Some("connection closed".into());
                    break 'outer;
                }
                Ok(mut w) => {
                    while w > 0 {
                        let d = plan[ci];
                        let len = g.tcp_bytes(&d).len();
                        let take = w.min(len - off);
                        off += take;
                        w -= take;
                        if off == len {
                            g.commit(d, d.lines, len);
                            ci += 1;
                            off = 0;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        finish_partial(g, &plan, ci, off);
                        break 'outer;
                    }
                }
                Err(e) => {
                    out.send_errors += 1;
                    out.last_error = Some(e.to_string());
                    finish_partial(g, &plan, ci, off);
                    break 'outer;
                }
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(out)
}

/// A TCP batch cut short: count the whole lines of the partly written chunk,
/// since the server counts exactly those.
fn finish_partial(g: &mut Generator, plan: &[Planned], ci: usize, off: usize) {
    if ci < plan.len() && off > 0 {
        let d = plan[ci];
        let whole = g.tcp_bytes(&d)[..off]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        g.commit(d, whole, off);
    }
}
