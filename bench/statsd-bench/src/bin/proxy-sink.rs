//! `proxy-sink`: fast fake aggregators for bench/proxy.sh. Binds `--nodes`
//! UDP ports on 127.0.0.1, each with a TCP admin port answering Etsy's
//! `health` with `health: up`, and counts the lines each UDP port receives.
//! Prints `{"nodes":[[port,mgmt_port],...]}` once bound; then, for every
//! line `report` on stdin, `{"lines":[...],"datagrams":[...]}`; exits at EOF.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Counts {
    lines: AtomicU64,
    datagrams: AtomicU64,
}

fn main() {
    let mut nodes = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--nodes" {
            nodes = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
        }
    }
    let mut ports = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..nodes {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            eprintln!("proxy-sink: cannot bind UDP");
            std::process::exit(1);
        };
        let Ok(mgmt) = TcpListener::bind("127.0.0.1:0") else {
            eprintln!("proxy-sink: cannot bind TCP");
            std::process::exit(1);
        };
        let (Ok(u), Ok(m)) = (udp.local_addr(), mgmt.local_addr()) else {
            std::process::exit(1);
        };
        ports.push(format!("[{},{}]", u.port(), m.port()));
        // SAFETY: setsockopt reads sizeof(c_int) bytes from &size; failure
        // only leaves a smaller buffer (the report shows any loss).
        unsafe {
            use std::os::fd::AsRawFd;
            let size: libc::c_int = 64 << 20;
            for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
                libc::setsockopt(
                    udp.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    &size as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        let count = Arc::new(Counts::default());
        counts.push(count.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let _ = udp.set_read_timeout(Some(Duration::from_millis(200)));
            loop {
                let Ok(n) = udp.recv(&mut buf) else { continue };
                if n == 0 {
                    continue;
                }
                let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                // Lines are newline-separated; a final one may lack its newline.
                let lines = newlines + u64::from(buf[n - 1] != b'\n');
                count.lines.fetch_add(lines, Ordering::Relaxed);
                count.datagrams.fetch_add(1, Ordering::Relaxed);
            }
        });
        std::thread::spawn(move || {
            for stream in mgmt.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_ok() {
                    let _ = stream.write_all(b"health: up\n");
                }
            }
        });
    }
    println!("{{\"nodes\":[{}]}}", ports.join(","));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "report" {
            let list = |f: &dyn Fn(&Counts) -> u64| {
                counts
                    .iter()
                    .map(|c| f(c).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "{{\"lines\":[{}],\"datagrams\":[{}]}}",
                list(&|c| c.lines.load(Ordering::Relaxed)),
                list(&|c| c.datagrams.load(Ordering::Relaxed))
            );
        }
    }
}
