//! `statsd-bench`: a deterministic, paced, bounded StatsD load generator.
//!
//! It sends a fixed, repeatable stream of lines to a loopback StatsD server and
//! prints, as one JSON line on stdout, exactly what it sent (lines and datagrams
//! per metric type, the sum of counter values) so a checker can compare that
//! with what the server flushed to carbon.
//!
//! Content: `--names` distinct names `<prefix>.<type>.<index>`; name `i` has the
//! type `types[i % types.len()]`, so every name has exactly one type. Datagram
//! `k` has type `types[k % types.len()]` and carries the next
//! `--lines-per-datagram` names of that type, cycling through them in order, so
//! datagrams are never mixed and sending `--lines N` with `--names N` sends each
//! name exactly once. Values: counters `--counter-value` (1), gauges and timers
//! `index % 1000`, sets `index`.
//!
//! Pacing: a token bucket (one token per line) against the monotonic clock,
//! sending whole batches with `sendmmsg` (UDP) or `writev` (TCP).
//! It always stops by itself: at `--duration`, after `--lines`, or at
//! `--max-duration`, whichever comes first.

use std::io::{IoSlice, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MetricType {
    C,
    G,
    Ms,
    S,
}

impl MetricType {
    fn code(self) -> &'static str {
        match self {
            MetricType::C => "c",
            MetricType::G => "g",
            MetricType::Ms => "ms",
            MetricType::S => "s",
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "statsd-bench",
    about = "Deterministic, paced, bounded StatsD load generator (loopback targets only)"
)]
struct Args {
    /// Server address; must resolve to a loopback address.
    #[arg(long, default_value = "127.0.0.1:8125")]
    target: String,
    /// Lines per second to offer; 0 sends as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds to send for (default 5 when --lines is not given).
    #[arg(long)]
    duration: Option<f64>,
    /// Total lines to send, then stop.
    #[arg(long)]
    lines: Option<u64>,
    /// Lines in each datagram (or each TCP chunk).
    #[arg(long, default_value_t = 20)]
    lines_per_datagram: usize,
    /// Distinct metric names.
    #[arg(long, default_value_t = 1000)]
    names: usize,
    /// Metric types to mix, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "c")]
    types: Vec<MetricType>,
    /// Name prefix (names are `<prefix>.<type>.<index>`).
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Value of every counter line.
    #[arg(long, default_value_t = 1)]
    counter_value: u64,
    /// Send over one TCP connection instead of UDP.
    #[arg(long)]
    tcp: bool,
    /// Datagrams per sendmmsg (or writev) call.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Hard stop in seconds, whatever else is asked.
    #[arg(long, default_value_t = 600.0)]
    max_duration: f64,
    /// SO_SNDBUF to request, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    sndbuf: usize,
}

/// All lines of one metric type, pre-rendered, so the send loop only points
/// iovecs into memory and never formats anything.
struct Pool {
    ty: MetricType,
    /// Lines `0..n` followed by lines `0..lines_per_datagram` again, each with
    /// its `\n`, so any run of up to `lines_per_datagram` lines starting below
    /// `n` is one contiguous slice.
    buf: Vec<u8>,
    /// Byte offset of each line in `buf`, plus the end.
    starts: Vec<usize>,
    n: usize,
    cursor: usize,
    lines: u64,
    datagrams: u64,
}

impl Pool {
    /// Bytes of the `k` lines starting at `cursor`, newline included.
    fn chunk(&self, cursor: usize, k: usize) -> &[u8] {
        &self.buf[self.starts[cursor]..self.starts[cursor + k]]
    }
}

fn build_pools(a: &Args) -> Vec<Pool> {
    let nt = a.types.len();
    let l = a.lines_per_datagram;
    let mut pools = Vec::with_capacity(nt);
    for (t, &ty) in a.types.iter().enumerate() {
        let idx: Vec<usize> = (t..a.names).step_by(nt).collect();
        let n = idx.len();
        let mut buf = Vec::with_capacity((n + l) * (a.prefix.len() + 24));
        let mut starts = Vec::with_capacity(n + l + 1);
        for j in 0..n + l {
            let i = idx[j % n];
            starts.push(buf.len());
            if !a.prefix.is_empty() {
                buf.extend_from_slice(a.prefix.as_bytes());
                buf.push(b'.');
            }
            let value = match ty {
                MetricType::C => a.counter_value,
                MetricType::G | MetricType::Ms => (i % 1000) as u64,
                MetricType::S => i as u64,
            };
            // Infallible: writing into a Vec.
            let _ = writeln!(buf, "{}.{}:{}|{}", ty.code(), i, value, ty.code());
        }
        starts.push(buf.len());
        pools.push(Pool {
            ty,
            buf,
            starts,
            n,
            cursor: 0,
            lines: 0,
            datagrams: 0,
        });
    }
    pools
}

/// One planned datagram: which pool, where in it, how many lines.
#[derive(Clone, Copy)]
struct Planned {
    pool: usize,
    start: usize,
    lines: usize,
}

struct Generator {
    pools: Vec<Pool>,
    lines_per_datagram: usize,
    next_dgram: u64,
    remaining: u64,
    sent_lines: u64,
    sent_dgrams: u64,
    sent_bytes: u64,
}

impl Generator {
    /// Plans up to `max` datagrams without consuming them.
    fn plan(&self, max: usize, out: &mut Vec<Planned>) {
        out.clear();
        let nt = self.pools.len();
        let mut cursors: Vec<usize> = self.pools.iter().map(|p| p.cursor).collect();
        let mut remaining = self.remaining;
        for i in 0..max as u64 {
            if remaining == 0 {
                break;
            }
            let pool = ((self.next_dgram + i) % nt as u64) as usize;
            let k = (self.lines_per_datagram as u64).min(remaining) as usize;
            out.push(Planned {
                pool,
                start: cursors[pool],
                lines: k,
            });
            cursors[pool] = (cursors[pool] + k) % self.pools[pool].n;
            remaining -= k as u64;
        }
    }

    /// Records that `d` (the next planned datagram) was sent with its first
    /// `lines` lines (all of them, except for a TCP stream cut short).
    fn commit(&mut self, d: Planned, lines: usize, bytes: usize) {
        let p = &mut self.pools[d.pool];
        p.cursor = (d.start + d.lines) % p.n;
        p.lines += lines as u64;
        p.datagrams += 1;
        self.next_dgram += 1;
        self.remaining -= d.lines as u64;
        self.sent_lines += lines as u64;
        self.sent_dgrams += 1;
        self.sent_bytes += bytes as u64;
    }

    fn udp_bytes(&self, d: &Planned) -> &[u8] {
        let c = self.pools[d.pool].chunk(d.start, d.lines);
        // A datagram needs no trailing newline.
        &c[..c.len() - 1]
    }

    fn tcp_bytes(&self, d: &Planned) -> &[u8] {
        self.pools[d.pool].chunk(d.start, d.lines)
    }
}

/// Decides how many datagrams may go now; `Err` means sleep that long first.
struct Pacer {
    rate: f64,
    start: Instant,
    /// Lines' worth of tokens forfeited because the sender fell behind by more
    /// than the burst cap (descheduled on a busy machine); keeps catch-up
    /// bursts short.
    forfeited: f64,
    /// Whether we already slept once waiting for a full batch.
    waited: bool,
}

impl Pacer {
    /// Longest sleep while waiting for a full batch: bounds burstiness at low
    /// rates while keeping wake-ups (and our CPU use) to about 1000 a second.
    const MAX_BATCH_WAIT: f64 = 0.001;
    /// Catch-up allowance after falling behind, in seconds of traffic.
    const BURST: f64 = 0.05;

    fn admit(&mut self, sent_lines: u64, lpd: usize, batch: usize) -> Result<usize, Duration> {
        if self.rate <= 0.0 {
            return Ok(batch);
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut tokens = self.rate * elapsed - self.forfeited - sent_lines as f64;
        let full = (batch * lpd) as f64;
        let cap = (self.rate * Self::BURST).max(full);
        if tokens > cap {
            self.forfeited += tokens - cap;
            tokens = cap;
        }
        if tokens >= full {
            self.waited = false;
            return Ok(batch);
        }
        if !self.waited {
            self.waited = true;
            let to_full = (full - tokens) / self.rate;
            return Err(Duration::from_secs_f64(
                to_full.clamp(10e-6, Self::MAX_BATCH_WAIT),
            ));
        }
        if tokens >= lpd as f64 {
            self.waited = false;
            return Ok((tokens / lpd as f64) as usize);
        }
        Err(Duration::from_secs_f64(
            ((lpd as f64 - tokens) / self.rate).max(10e-6),
        ))
    }
}

fn resolve_loopback(target: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve --target {target}: {e}"))?
        .collect();
    // Refuse anything that is not loopback: this tool must never load a
    // real network.
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "--target {target} must resolve to loopback addresses only (got {addrs:?})"
        ));
    }
    Ok(addrs[0])
}

fn cpu_self() -> (f64, f64) {
    // SAFETY: rusage is a plain C struct for which all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass, which outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

struct Outcome {
    syscalls: u64,
    send_errors: u64,
    last_error: Option<String>,
}

fn run_udp(
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

fn set_sndbuf(sock: &impl std::os::fd::AsRawFd, bytes: usize) {
    let v: libc::c_int = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt reads sizeof(c_int) bytes from &v. Failure only
    // means a smaller buffer, which is fine.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn run_tcp(
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

fn sleep_until_or(wait: Duration, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(wait.min(left));
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("statsd-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    if a.lines_per_datagram == 0 || a.batch == 0 || a.batch > 1024 {
        return Err("--lines-per-datagram must be >= 1 and --batch in 1..=1024".into());
    }
    let mut types: Vec<&str> = a.types.iter().map(|t| t.code()).collect();
    types.sort_unstable();
    types.dedup();
    if types.len() != a.types.len() || types.is_empty() {
        return Err("--types must list distinct types".into());
    }
    if a.names < a.types.len() {
        return Err("--names must be at least the number of --types".into());
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(a.max_duration) || a.duration.is_some_and(|d| !positive(d)) {
        return Err("--duration and --max-duration must be > 0".into());
    }
    let addr = resolve_loopback(&a.target)?;
    let duration = match (a.duration, a.lines) {
        (Some(d), _) => d.min(a.max_duration),
        (None, Some(_)) => a.max_duration,
        (None, None) => 5.0,
    };

    let pools = build_pools(a);
    if !a.tcp {
        let longest = pools
            .iter()
            .flat_map(|p| (0..p.n).map(move |c| p.chunk(c, a.lines_per_datagram).len()))
            .max()
            .unwrap_or(0);
        if longest > 65_000 {
            return Err(format!(
                "a datagram would be {longest} bytes; lower --lines-per-datagram"
            ));
        }
    }
    let mut g = Generator {
        pools,
        lines_per_datagram: a.lines_per_datagram,
        next_dgram: 0,
        remaining: a.lines.unwrap_or(u64::MAX),
        sent_lines: 0,
        sent_dgrams: 0,
        sent_bytes: 0,
    };
    let cpu0 = cpu_self();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(duration);
    let mut pacer = Pacer {
        rate: a.rate as f64,
        start,
        forfeited: 0.0,
        waited: false,
    };
    // Precise short sleeps keep pacing smooth at high rates.
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer; failure is harmless.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
    let out = if a.tcp {
        run_tcp(a, addr, &mut g, &mut pacer, deadline)?
    } else {
        run_udp(a, addr, &mut g, &mut pacer, deadline)?
    };
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = cpu_self();
    let (user, sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);

    let mut by_type = serde_json::Map::new();
    let mut counter_lines = 0;
    for p in &g.pools {
        if p.ty == MetricType::C {
            counter_lines = p.lines;
        }
        by_type.insert(
            p.ty.code().to_string(),
            json!({ "lines": p.lines, "datagrams": p.datagrams, "names": p.n }),
        );
    }
    let report = json!({
        "target": addr.to_string(),
        "proto": if a.tcp { "tcp" } else { "udp" },
        "prefix": a.prefix,
        "names": a.names,
        "lines_per_datagram": a.lines_per_datagram,
        "batch": a.batch,
        "rate_target": a.rate,
        "lines": g.sent_lines,
        "datagrams": g.sent_dgrams,
        "bytes": g.sent_bytes,
        "by_type": by_type,
        "counter_value": a.counter_value,
        "counter_sum": counter_lines * a.counter_value,
        "elapsed_s": elapsed,
        "rate_lines_per_s": g.sent_lines as f64 / elapsed.max(1e-9),
        "rate_datagrams_per_s": g.sent_dgrams as f64 / elapsed.max(1e-9),
        "syscalls": out.syscalls,
        "send_errors": out.send_errors,
        "last_error": out.last_error,
        "cpu_user_s": user,
        "cpu_sys_s": sys,
        "cpu_ns_per_line": (user + sys) * 1e9 / (g.sent_lines.max(1) as f64),
    });
    println!("{report}");
    Ok(())
}
