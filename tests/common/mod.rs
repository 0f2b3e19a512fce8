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

/// Collects carbon lines until one contains `text`; returns all of them.
pub fn collect_until(lines: &Receiver<String>, text: &str) -> Vec<String> {
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
                "carbon got no line containing {text:?}; got {} lines, last {:?}",
                got.len(),
                got.last()
            ),
        }
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
        collect_until(&self.lines, text)
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

/// Calls `istats` on the monitoring port with a plain HTTP POST and returns
/// the JSON object (no Python needed, so it can be polled quickly).
pub fn rpc_istats(port: u16) -> serde_json::Value {
    use std::io::Write;
    let body = "<?xml version=\"1.0\"?><methodCall><methodName>istats</methodName></methodCall>";
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("monitor port");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("istats answer");
    let start = answer.find("<string>").expect("a string in istats") + "<string>".len();
    let end = answer[start..].find("</string>").expect("end of string") + start;
    let json = answer[start..end]
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).expect("istats is JSON")
}

/// Polls `istats` until `check` holds; panics with the last answer after `WAIT`.
pub fn poll_istats(port: u16, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = rpc_istats(port);
        if check(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "istats never matched: {stats}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An integer-valued key of an `istats` answer (0 when absent).
pub fn stat(stats: &serde_json::Value, key: &str) -> u64 {
    stats[key].as_f64().unwrap_or(0.0) as u64
}

/// How a [`ScriptedCarbon`] treats the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Reads every line, one connection after the other (order is kept).
    Normal,
    /// Reads `after` bytes, then closes with RST (SO_LINGER 0).
    Reset { after: usize },
    /// Accepts and never reads; when the behaviour changes the connection
    /// is closed unread, like a hung carbon that was restarted.
    Stall,
    /// Reads `chunk` bytes at a time with `pause` between reads.
    Slow { chunk: usize, pause: Duration },
}

/// State shared by a scripted carbon's threads.
struct CarbonShared {
    behaviour: std::sync::Mutex<Behaviour>,
    accepted: std::sync::atomic::AtomicUsize,
    resets: std::sync::atomic::AtomicUsize,
    stalled: std::sync::atomic::AtomicUsize,
    /// Set on drop: stalled connections give up.
    closed: std::sync::atomic::AtomicBool,
}

impl CarbonShared {
    fn behaviour(&self) -> Behaviour {
        *self.behaviour.lock().unwrap()
    }
}

/// Receive buffer of the scripted carbon's sockets: small and fixed (no
/// autotuning), so a payload of a few MB cannot fit in the socket buffers.
pub const CARBON_RCVBUF: usize = 16 * 1024;

/// A fake carbon on a fixed port whose behaviour the test changes as it
/// goes: down (the port is bound but not listening, so connections are
/// refused), normal, reset mid-write, stalled, slow. Lines received go to
/// `lines` in the order carbon would have read them.
pub struct ScriptedCarbon {
    pub port: u16,
    pub lines: Receiver<String>,
    tx: std::sync::mpsc::Sender<String>,
    shared: std::sync::Arc<CarbonShared>,
    /// The bound socket while down; None while up.
    reserved: Option<socket2::Socket>,
    /// The accepting thread and its stop flag while up.
    acceptor: Option<(
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )>,
}

fn carbon_socket(port: u16) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_recv_buffer_size(CARBON_RCVBUF)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(socket)
}

impl ScriptedCarbon {
    /// A carbon that refuses connections until [`ScriptedCarbon::up`].
    pub fn down() -> ScriptedCarbon {
        let reserved = carbon_socket(0).expect("bind a carbon port");
        let port = reserved
            .local_addr()
            .unwrap()
            .as_socket()
            .expect("an inet address")
            .port();
        let (tx, lines) = channel();
        ScriptedCarbon {
            port,
            lines,
            tx,
            shared: std::sync::Arc::new(CarbonShared {
                behaviour: std::sync::Mutex::new(Behaviour::Normal),
                accepted: Default::default(),
                resets: Default::default(),
                stalled: Default::default(),
                closed: Default::default(),
            }),
            reserved: Some(reserved),
            acceptor: None,
        }
    }

    /// A carbon listening at once with `behaviour`.
    pub fn start(behaviour: Behaviour) -> ScriptedCarbon {
        let mut carbon = ScriptedCarbon::down();
        carbon.set(behaviour);
        carbon.up();
        carbon
    }

    /// Changes how connections are treated from now on (stalled
    /// connections are closed unread as soon as this is not `Stall`).
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Starts listening on the port.
    pub fn up(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        let socket = match self.reserved.take() {
            Some(socket) => socket,
            None => rebind(self.port),
        };
        socket.listen(128).expect("listen");
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (shared, tx, flag) = (self.shared.clone(), self.tx.clone(), stop.clone());
        let thread = std::thread::spawn(move || accept_loop(listener, shared, tx, flag));
        self.acceptor = Some((stop, thread));
    }

    /// Stops listening (connections are refused again); connections already
    /// accepted go on as their behaviour says.
    pub fn go_down(&mut self) {
        if let Some((stop, thread)) = self.acceptor.take() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = thread.join();
            self.reserved = Some(rebind(self.port));
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections reset so far.
    pub fn resets(&self) -> usize {
        self.shared.resets.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections stalled right now.
    pub fn stalled(&self) -> usize {
        self.shared
            .stalled
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (bounded) until `check` holds for this carbon.
    pub fn wait_for(&self, what: &str, check: impl Fn(&ScriptedCarbon) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !check(self) {
            assert!(Instant::now() < deadline, "carbon: never {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Collects lines until one contains `text`; returns all of them.
    pub fn until(&self, text: &str) -> Vec<String> {
        collect_until(&self.lines, text)
    }

    /// Collects every line up to the end of the flush holding `text` (its
    /// numStats line), earlier flushes included.
    pub fn through_flush_with(&self, text: &str) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let flush = self.until(".numStats ");
            let done = flush.iter().any(|l| l.contains(text));
            got.extend(flush);
            if done {
                return got;
            }
        }
    }
}

impl Drop for ScriptedCarbon {
    fn drop(&mut self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some((stop, _)) = &self.acceptor {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Binds the carbon port again (not listening: connections are refused).
fn rebind(port: u16) -> socket2::Socket {
    let deadline = Instant::now() + WAIT;
    loop {
        match carbon_socket(port) {
            Ok(socket) => return socket,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "cannot bind carbon port {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: std::sync::Arc<CarbonShared>,
    tx: std::sync::mpsc::Sender<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering::SeqCst;
    while !stop.load(SeqCst) && !shared.closed.load(SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        shared.accepted.fetch_add(1, SeqCst);
        stream.set_nonblocking(false).unwrap();
        // Bounds every read so a stuck connection cannot hold this thread.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        match shared.behaviour() {
            Behaviour::Normal => read_lines(stream, &tx, None),
            Behaviour::Slow { chunk, pause } => read_lines(stream, &tx, Some((chunk, pause))),
            Behaviour::Reset { after } => {
                let mut stream = stream;
                let mut buf = vec![0u8; after.max(1)];
                let mut got = 0;
                while got < after {
                    match stream.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                drop(stream);
                shared.resets.fetch_add(1, SeqCst);
            }
            Behaviour::Stall => {
                let shared = shared.clone();
                shared.stalled.fetch_add(1, SeqCst);
                std::thread::spawn(move || {
                    while shared.behaviour() == Behaviour::Stall && !shared.closed.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    drop(stream);
                    shared.stalled.fetch_sub(1, SeqCst);
                });
            }
        }
    }
}

/// Reads complete lines until the peer closes; a partial last line is
/// dropped, as carbon drops it. `slow` reads `chunk` bytes per `pause`.
fn read_lines(
    mut stream: std::net::TcpStream,
    tx: &std::sync::mpsc::Sender<String>,
    slow: Option<(usize, Duration)>,
) {
    let mut buf = vec![0u8; slow.map_or(64 * 1024, |s| s.0.max(1))];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        if let Some(last) = pending.iter().rposition(|b| *b == b'\n') {
            for line in pending[..last].split(|b| *b == b'\n') {
                let _ = tx.send(String::from_utf8_lossy(line).into_owned());
            }
            pending.drain(..=last);
        }
        if let Some((_, pause)) = slow {
            std::thread::sleep(pause);
        }
    }
}
