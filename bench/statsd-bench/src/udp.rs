//! The UDP sender: whole batches of datagrams per `sendmmsg` call.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::os::set_sndbuf;
use crate::pacer::{sleep_until_or, Pacer};
use crate::plan::Generator;
use crate::{Args, Outcome};

pub(crate) fn run_udp(
    a: &Args,
    addr: SocketAddr,
    g: &mut Generator,
    pacer: &mut Pacer,
    deadline: Instant,
) -> Result<Outcome, String> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "127.0.0.1:0".parse().unwrap()
    } else {
        "[::1]:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    sock.connect(addr).map_err(|e| format!("connect: {e}"))?;
    set_sndbuf(&sock, a.sndbuf);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);

    let batch = a.batch;
    let mut plan = Vec::with_capacity(batch);
    // SAFETY: iovec is a plain C struct for which all-zero is valid.
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; batch];
    // SAFETY: as for iovec.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    let mut out = Outcome {
        syscalls: 0,
        send_errors: 0,
        last_error: None,
    };
    while g.remaining > 0 && Instant::now() < deadline {
        let n = match pacer.admit(g.sent_lines, g.lines_per_datagram, batch) {
            Ok(n) => n,
            Err(wait) => {
                sleep_until_or(wait, deadline);
                continue;
            }
        };
        g.plan(n, &mut plan);
        for (i, d) in plan.iter().enumerate() {
            let b = g.udp_bytes(d);
            iovs[i] = libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            };
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_len = 0;
        }
        // SAFETY: msgs[..plan.len()] point at iovecs that point into the
        // pools, all alive and unmoved for the duration of the call.
        let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), plan.len() as libc::c_uint, 0) };
        out.syscalls += 1;
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // ENOBUFS/ECONNREFUSED (no listener yet) are transient on
            // loopback: count them, back off briefly, go on until the deadline.
            out.send_errors += 1;
            out.last_error = Some(e.to_string());
            sleep_until_or(Duration::from_millis(1), deadline);
            continue;
        }
        for (i, d) in plan.iter().take(r as usize).enumerate() {
            g.commit(*d, d.lines, msgs[i].msg_len as usize);
        }
    }
    Ok(out)
}
