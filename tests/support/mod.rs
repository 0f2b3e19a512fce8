//! Shared helpers for the service tests: real peers (carbon-cache, runsv,
//! svlogd, Python's xmlrpc client) started in temp dirs on free loopback ports,
//! and bounded polling instead of sleeps.
//!
//! Each test binary uses only part of this module, hence the allow.
#![allow(dead_code)]

pub mod carbon;
pub mod runit;

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// Python 3 with the `whisper` module (python3-whisper): used to read whisper
/// files back and to call the daemon's XML-RPC endpoint.
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

/// A loopback port free for TCP at the time of the call.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A loopback port free for both TCP and UDP: the daemon binds both on `-p`.
pub fn free_tcp_udp_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local_addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 100 tries");
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout`.
/// Panics with `what` and the last state `describe` gives, so a failure says
/// what was awaited and what was seen instead.
pub fn wait_for<T>(
    timeout: Duration,
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
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The file's text, or "" while it does not exist yet.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Calls the daemon's `istats` with Python's standard xmlrpc client, the
/// client SPEC section 7 names, and returns the decoded JSON object. `None`
/// while the daemon does not answer.
pub fn istats(monitor_port: u16) -> Option<serde_json::Map<String, serde_json::Value>> {
    // The socket timeout bounds a call to a daemon that accepts but never
    // answers, so the caller's bounded poll stays bounded.
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket, sys, xmlrpc.client\n\
             socket.setdefaulttimeout(5)\n\
             p = xmlrpc.client.ServerProxy('http://127.0.0.1:%s/RPC2' % sys.argv[1])\n\
             sys.stdout.write(p.istats())\n",
            &monitor_port.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        other => panic!(
            "istats did not return a JSON object: {other:?} from {:?}",
            String::from_utf8_lossy(&out.stdout)
        ),
    }
}

/// One numeric key of `istats`.
pub fn istat(monitor_port: u16, key: &str) -> Option<f64> {
    istats(monitor_port)?.get(key)?.as_f64()
}

/// Sends `payload` as one UDP datagram to the daemon on loopback: one datagram
/// lands in one flush, so every line in it shares a flush timestamp.
pub fn send_udp(port: u16, payload: &str) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp sender");
    let n = sock
        .send_to(payload.as_bytes(), ("127.0.0.1", port))
        .expect("send udp datagram");
    assert_eq!(n, payload.len(), "short UDP send");
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
