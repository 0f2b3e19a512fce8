//! Everything the integration tests share, one module per concern:
//!
//! - [`server`]: the server (`statsd::server::run`) inside the test process,
//!   on port 0, with its own runtime; and `admin::serve` alone on a fixture.
//! - [`daemon`]: the real `statsd` binary as a black box (flags, signals,
//!   exit codes, what it prints), and bounded runs of any child process.
//! - [`carbon`]: the one fake carbon (behaviour-driven: refusing, normal,
//!   resetting, stalled, slow) and the real carbon-cache with whisper.
//! - [`istats`]: the one `istats` fetcher, a real XML-RPC call over HTTP.
//! - [`mgmt`]: Etsy's management console: commands, bounded reads, Etsy's node programs.
//! - [`flushed`]: one flush as carbon got it, split for exact comparisons.
//! - [`etsy`]: Etsy's statsd 0.9.0 under node, and a carbon that keeps each flush apart.
//! - [`nsca`]: the real NSCA daemon.
//! - [`etsy_proxy`]: Etsy's proxy.js under node, in front of given nodes.
//! - [`fake_node`]: a fake aggregator (UDP lines, `health` on its admin port) for the proxy.
//! - [`peers`]: the client libraries' runtimes under `target/peers`; running a script.
//! - [`relay`]: the real carbon-relay (consistent hashing) in front of fake carbons.
//! - [`runit`]: the shipped runit service under a real `runsv`.
//! - [`to_carbon`]: a statsd publishing to a carbon on loopback; wait for a flush.
//!
//! Here: the one free-port helper, bounded waits, the [`Statsd`] trait that
//! lets a test talk to an in-process server and to the binary alike, and the
//! process-group guard for peers that start children.
//!
//! Rules every helper keeps: real sockets on loopback, port 0 (or a port
//! picked free and retried), waits on events with a deadline, never a fixed
//! sleep; a missing peer fails the test with the package to install.
//!
//! Each test binary uses only part of this module, hence the allow.
#![allow(dead_code)]

pub mod carbon;
pub mod daemon;
pub mod etsy;
pub mod etsy_proxy;
pub mod fake_node;
pub mod flushed;
pub mod istats;
pub mod mgmt;
pub mod nsca;
pub mod peers;
pub mod relay;
pub mod runit;
pub mod server;
pub mod to_carbon;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A loopback port free for both TCP and UDP at the time of the call, and
/// closed again: nothing listens there until someone binds it. It is the
/// port for a peer the test starts (which retries if another process takes
/// it first) and, left alone, a port that refuses connections.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local_addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 100 tries");
}

/// Polls `f` every `every` until it returns `Some`, for at most `timeout`.
/// Panics with `what` and the last state `describe` gives, so a failure says
/// what was awaited and what was seen instead.
pub fn wait_every<T>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                describe()
            );
        }
        std::thread::sleep(every);
    }
}

/// [`wait_every`] 50 ms: for checks that start a process or read files.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    f: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    wait_every(timeout, Duration::from_millis(50), what, f, describe)
}

/// Receives lines until one contains `text`; returns all of them, that one
/// last. Panics after [`WAIT`], naming `from` (who sends the lines).
pub fn lines_until(lines: &Receiver<String>, from: &str, text: &str) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(text);
                got.push(line);
                if done {
                    return got;
                }
            }
            Err(_) => panic!(
                "{from}: no line containing {text:?} within {WAIT:?}; got {} lines, last {:?}",
                got.len(),
                got.last()
            ),
        }
    }
}

/// Writes `text` as `name` in a fresh directory (kept while the guard lives).
pub fn config_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the config file");
    (dir, path)
}

/// Replaces a file's contents in one step (a reader never sees half).
pub fn rewrite(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).expect("write the new config");
    std::fs::rename(&new, path).expect("move the new config in place");
}

/// Every line received so far, without waiting.
pub fn drain(lines: &Receiver<String>) -> Vec<String> {
    lines.try_iter().collect()
}

/// A statsd to talk to over loopback: the server in process
/// ([`server::Server`]), the real binary ([`daemon::Daemon`]) or the binary
/// under runsv ([`runit::Service`]). Helpers written against it serve all.
pub trait Statsd {
    /// The metrics address (UDP and TCP), on loopback.
    fn metrics_addr(&self) -> SocketAddr;

    /// The XML-RPC monitoring address, on loopback; panics when it is off.
    fn monitor_addr(&self) -> SocketAddr;

    /// Sends `payload` as one UDP datagram: one datagram lands in one flush.
    fn send_udp(&self, payload: &[u8]) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP sender");
        let sent = socket
            .send_to(payload, self.metrics_addr())
            .expect("send a UDP datagram");
        assert_eq!(sent, payload.len(), "short UDP send");
    }

    /// A TCP connection to the metrics port.
    fn connect_tcp(&self) -> TcpStream {
        let stream = TcpStream::connect_timeout(&self.metrics_addr(), WAIT)
            .expect("connect to the metrics port");
        stream
            .set_write_timeout(Some(WAIT))
            .expect("TCP write timeout");
        stream
    }

    /// Writes `data` on one TCP connection and closes it.
    fn send_tcp(&self, data: &[u8]) {
        self.connect_tcp()
            .write_all(data)
            .expect("write to the metrics port");
    }

    /// `istats` now, over XML-RPC; panics if the server does not answer.
    fn istats(&self) -> serde_json::Value {
        istats::fetch(self.monitor_addr())
            .unwrap_or_else(|e| panic!("istats on {}: {e}", self.monitor_addr()))
    }

    /// Polls `istats` until `check` holds; panics with the last answer
    /// after [`WAIT`].
    fn poll_istats(&self, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        istats::poll(self.monitor_addr(), check)
    }
}

/// Where Debian puts a peer's binary, and the package that brings it: a test
/// that needs it fails with the install command rather than skipping.
pub fn require_binary(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is missing: this test needs a real peer; install it with \
         `apt-get install -y {package}` (see scripts/test.sh)"
    );
    p
}

/// Python 3 with the `whisper` module (python3-whisper): reads whisper files
/// back.
pub fn require_python_whisper() {
    require_binary("/usr/bin/python3", "python3");
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import whisper"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 cannot import whisper: install it with \
         `apt-get install -y python3-whisper` (see scripts/test.sh)"
    );
}

/// The file's text, or "" while it does not exist yet.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A child started in its own process group, so that it and everything it
/// starts (runsv: svlogd, chpst, the daemon) die together. Drop kills the group.
/// If this test process dies without dropping it (killed by a timeout, aborted),
/// a watchdog shell that reads a pipe from us sees EOF and kills the group, so
/// no peer outlives the test run.
pub struct GroupGuard {
    child: Child,
    watchdog: Child,
}

impl GroupGuard {
    pub fn spawn(cmd: &mut Command) -> io::Result<GroupGuard> {
        let child = cmd.process_group(0).spawn()?;
        let pgid = child.id();
        let watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _; kill -KILL -{pgid} 2>/dev/null"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Not in our group: a ^C to the test run must not kill it first.
            .process_group(0)
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(GroupGuard { child, watchdog }),
            Err(e) => {
                let mut child = child;
                kill_group(pgid);
                let _ = child.wait();
                Err(e)
            }
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// The child's stdout, when it was piped (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // Kill before reaping: the unreaped leader keeps its pgid from reuse.
        kill_group(self.child.id());
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
        let _ = self.child.wait();
    }
}

fn kill_group(pgid: u32) {
    // SAFETY: kill(2) on a process group we created; no memory is involved.
    unsafe {
        libc::kill(-(pgid as i32), libc::SIGKILL);
    }
}
