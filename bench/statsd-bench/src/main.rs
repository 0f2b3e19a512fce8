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

mod os;
mod pacer;
mod plan;
mod tcp;
mod udp;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use crate::pacer::Pacer;
use crate::plan::{build_pools, Generator, MetricType};

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

/// What a sender reports besides what the generator counted.
struct Outcome {
    syscalls: u64,
    send_errors: u64,
    last_error: Option<String>,
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
    let mut g = Generator::new(pools, a.lines_per_datagram, a.lines.unwrap_or(u64::MAX));
    let cpu0 = os::cpu_self();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(duration);
    let mut pacer = Pacer::new(a.rate as f64, start);
    os::set_timer_slack_1us();
    let out = if a.tcp {
        tcp::run_tcp(a, addr, &mut g, &mut pacer, deadline)?
    } else {
        udp::run_udp(a, addr, &mut g, &mut pacer, deadline)?
    };
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = os::cpu_self();
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
