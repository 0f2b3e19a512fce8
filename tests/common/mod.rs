//! Shared pieces of the black-box tests: the real `statsd` binary on port 0,
//! a TCP listener standing in for carbon, and (in [`nsca`]) the real NSCA
//! daemon. Everything is time-bounded.
#![allow(dead_code)]

pub mod nsca;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running daemon; killed on drop if the test did not stop it.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub monitor_port: Option<u16>,
    /// Lines the daemon writes on stderr, as they come.
    pub stderr: Receiver<String>,
    /// Lines the daemon writes on stdout, as they come.
    pub stdout: Receiver<String>,
}

fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Daemon {
    /// Starts the binary with `args` (add `-p 0` yourself) and waits for its
    /// "listening" line to learn the ports.
    // Drop kills and waits for the child; clippy cannot see that.
    #[allow(clippy::zombie_processes)]
    pub fn start(args: &[&str]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_statsd"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start statsd");
        let stderr = lines_of(child.stderr.take().unwrap());
        let stdout = lines_of(child.stdout.take().unwrap());
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("statsd printed no listening line")
            });
            if let Some(port) = port_after(&line, "udp+tcp ") {
                let monitor_port = port_after(&line, "monitor (XML-RPC) on ");
                return Daemon {
                    child,
                    port,
                    monitor_port,
                    stderr,
                    stdout,
                };
            }
        }
    }

    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn send_udp(&self, payload: &[u8]) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(payload, self.udp_addr()).unwrap();
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub fn terminate(&mut self) -> i32 {
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "statsd did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a stdout line containing `text`.
    pub fn wait_stdout(&self, text: &str) -> String {
        wait_line(&self.stdout, text)
    }

    /// Waits for a stderr line containing `text`.
    pub fn wait_stderr(&self, text: &str) -> String {
        wait_line(&self.stderr, text)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_line(lines: &Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line containing {text:?} within {WAIT:?}"),
        }
    }
}

fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let addr = rest.split_whitespace().next()?;
    addr.rsplit(':').next()?.trim_end_matches(',').parse().ok()
}

/// Sends a signal with the `kill` command (no libc in tests needed).
pub fn unsafe_kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// A TCP listener standing in for carbon: every line it receives, in order.
pub struct FakeCarbon {
    pub port: u16,
    pub lines: Receiver<String>,
}

impl FakeCarbon {
    pub fn start() -> FakeCarbon {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        FakeCarbon::on(listener)
    }

    pub fn on(listener: TcpListener) -> FakeCarbon {
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FakeCarbon { port, lines: rx }
    }

    /// Collects lines until one contains `text`; returns all of them.
    pub fn until(&self, text: &str) -> Vec<String> {
        let mut got = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(text);
                    got.push(line);
                    if done {
                        return got;
                    }
                }
                Err(_) => panic!("carbon got no line containing {text:?}; got {got:?}"),
            }
        }
    }

    /// Collects until a flush holding `text` ends (its numStats line);
    /// returns that flush's lines.
    pub fn flush_with(&self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no flush with {text:?}");
            let flush = self.until(".numStats ");
            if flush.iter().any(|l| l.contains(text)) {
                return flush;
            }
        }
    }
}

/// Value of the line whose path is exactly `path`.
pub fn value_of(lines: &[String], path: &str) -> Option<f64> {
    lines.iter().find_map(|line| {
        let mut parts = line.split(' ');
        (parts.next() == Some(path)).then(|| parts.next().unwrap().parse().unwrap())
    })
}

/// A port nobody listens on (bound then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
