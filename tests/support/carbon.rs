//! Carbon for the tests: [`FakeCarbon`], the one stand-in (a TCP listener
//! whose behaviour the test scripts: refusing, normal, resetting, stalled,
//! slow; every line it reads, in order), and [`CarbonCache`], the real
//! carbon-cache (Debian's graphite-carbon) in a temp dir, whose whisper
//! files are read back with python3-whisper.
//!
//! Every whisper file keeps one point per second for an hour (`1s:1h`), so each
//! flush timestamp of the daemon is its own point and reads back exactly.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    drain, free_port, lines_until, read_lossy, require_binary, require_python_whisper, wait_for,
    GroupGuard, WAIT,
};

/// Value of the Graphite line whose path is exactly `path` (the first one).
pub fn value_of(lines: &[String], path: &str) -> Option<f64> {
    lines.iter().find_map(|line| {
        let mut parts = line.split(' ');
        (parts.next() == Some(path)).then(|| parts.next().unwrap().parse().unwrap())
    })
}

/// How a [`FakeCarbon`] treats the connections it accepts.
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
    /// The first connection ever accepted is held, never read nor closed
    /// (until the carbon is dropped; counted in `stalled`), as Etsy's own
    /// test suite treats its first graphite connection; later ones are read
    /// as `Normal`.
    HoldFirst,
}

/// State shared by a fake carbon's threads.
struct Shared {
    behaviour: Mutex<Behaviour>,
    accepted: AtomicUsize,
    resets: AtomicUsize,
    stalled: AtomicUsize,
    /// Set on drop: stalled connections give up.
    closed: AtomicBool,
}

impl Shared {
    fn behaviour(&self) -> Behaviour {
        *self.behaviour.lock().unwrap()
    }
}

/// Receive buffer of the fake carbon's sockets: small and fixed (no
/// autotuning), so a payload of a few MB cannot fit in the socket buffers.
pub const CARBON_RCVBUF: usize = 16 * 1024;

/// A fake carbon on a loopback port of its own whose behaviour the test
/// changes as it goes: down (the port is bound but not listening, so
/// connections are refused), normal, reset mid-write, stalled, slow. Lines
/// received go to `lines` in the order carbon would have read them.
pub struct FakeCarbon {
    /// The loopback address it listens on (127.0.0.1 unless made with `_on`).
    pub ip: [u8; 4],
    pub port: u16,
    pub lines: Receiver<String>,
    tx: Sender<String>,
    shared: Arc<Shared>,
    /// The bound socket while down; None while up.
    reserved: Option<socket2::Socket>,
    /// The accepting thread and its stop flag while up.
    acceptor: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

fn carbon_socket(ip: [u8; 4], port: u16) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_recv_buffer_size(CARBON_RCVBUF)?;
    socket.bind(&SocketAddr::from((ip, port)).into())?;
    Ok(socket)
}

impl FakeCarbon {
    /// A carbon listening at once that reads every line.
    pub fn start() -> FakeCarbon {
        FakeCarbon::with(Behaviour::Normal)
    }

    /// A carbon listening at once with `behaviour`.
    pub fn with(behaviour: Behaviour) -> FakeCarbon {
        let mut carbon = FakeCarbon::down();
        carbon.set(behaviour);
        carbon.up();
        carbon
    }

    /// A carbon on another loopback address (127.0.0.2 ...: carbon's ring
    /// tells servers apart by address), listening at once.
    pub fn start_on(ip: [u8; 4]) -> FakeCarbon {
        let mut carbon = FakeCarbon::down_on(ip);
        carbon.up();
        carbon
    }

    /// A carbon that refuses connections until [`FakeCarbon::up`].
    pub fn down() -> FakeCarbon {
        FakeCarbon::down_on([127, 0, 0, 1])
    }

    /// [`FakeCarbon::down`] on another loopback address.
    pub fn down_on(ip: [u8; 4]) -> FakeCarbon {
        let reserved = carbon_socket(ip, 0).expect("bind a carbon port");
        let port = reserved
            .local_addr()
            .unwrap()
            .as_socket()
            .expect("an inet address")
            .port();
        let (tx, lines) = channel();
        FakeCarbon {
            ip,
            port,
            lines,
            tx,
            shared: Arc::new(Shared {
                behaviour: Mutex::new(Behaviour::Normal),
                accepted: Default::default(),
                resets: Default::default(),
                stalled: Default::default(),
                closed: Default::default(),
            }),
            reserved: Some(reserved),
            acceptor: None,
        }
    }

    /// Changes how connections are treated from now on (stalled
    /// connections are closed unread as soon as this is not `Stall`).
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Starts listening on the port (no-op while up).
    pub fn up(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        let socket = match self.reserved.take() {
            Some(socket) => socket,
            None => rebind(self.ip, self.port),
        };
        socket.listen(128).expect("listen");
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, tx, flag) = (self.shared.clone(), self.tx.clone(), stop.clone());
        let thread = std::thread::spawn(move || accept_loop(listener, shared, tx, flag));
        self.acceptor = Some((stop, thread));
    }

    /// Stops listening (connections are refused again, the port stays
    /// ours); connections already accepted go on as their behaviour says.
    /// Returns once the port refuses.
    pub fn go_down(&mut self) {
        if let Some((stop, thread)) = self.acceptor.take() {
            stop.store(true, SeqCst);
            let _ = thread.join();
            self.reserved = Some(rebind(self.ip, self.port));
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(SeqCst)
    }

    /// Connections reset so far.
    pub fn resets(&self) -> usize {
        self.shared.resets.load(SeqCst)
    }

    /// Connections stalled right now.
    pub fn stalled(&self) -> usize {
        self.shared.stalled.load(SeqCst)
    }

    /// Waits (bounded) until `check` holds for this carbon.
    pub fn wait_for(&self, what: &str, check: impl Fn(&FakeCarbon) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !check(self) {
            assert!(Instant::now() < deadline, "carbon: never {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Collects lines until one contains `text`; returns all of them.
    pub fn until(&self, text: &str) -> Vec<String> {
        lines_until(&self.lines, "carbon", text)
    }

    /// Every line received so far, without waiting.
    pub fn drain(&self) -> Vec<String> {
        drain(&self.lines)
    }

    /// Reads flush by flush (each ends with its numStats line) until one
    /// satisfies `wanted`; returns that flush's lines.
    pub fn flush_where(&self, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "carbon got no flush where {what} within {WAIT:?}"
            );
            let flush = self.until(".numStats ");
            if wanted(&flush) {
                return flush;
            }
        }
    }

    /// Collects until a flush holding `text` ends (its numStats line);
    /// returns that flush's lines.
    pub fn flush_with(&self, text: &str) -> Vec<String> {
        self.flush_where(&format!("a line holds {text:?}"), |flush| {
            flush.iter().any(|l| l.contains(text))
        })
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

impl Drop for FakeCarbon {
    fn drop(&mut self) {
        self.shared.closed.store(true, SeqCst);
        if let Some((stop, _)) = &self.acceptor {
            stop.store(true, SeqCst);
        }
    }
}

/// Binds the carbon port again (not listening: connections are refused).
fn rebind(ip: [u8; 4], port: u16) -> socket2::Socket {
    let deadline = Instant::now() + WAIT;
    loop {
        match carbon_socket(ip, port) {
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
    shared: Arc<Shared>,
    tx: Sender<String>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(SeqCst) && !shared.closed.load(SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // WouldBlock: nobody is connecting; anything else: try again.
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        let first = shared.accepted.fetch_add(1, SeqCst) == 0;
        stream.set_nonblocking(false).unwrap();
        // Bounds every read so a stuck connection cannot hold this thread.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        match shared.behaviour() {
            Behaviour::HoldFirst if first => {
                let shared = shared.clone();
                shared.stalled.fetch_add(1, SeqCst);
                std::thread::spawn(move || {
                    while !shared.closed.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    drop(stream);
                    shared.stalled.fetch_sub(1, SeqCst);
                });
            }
            Behaviour::Normal | Behaviour::HoldFirst => read_lines(stream, &tx, None),
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
fn read_lines(mut stream: TcpStream, tx: &Sender<String>, slow: Option<(usize, Duration)>) {
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

const CARBON_CACHE: &str = "/usr/bin/carbon-cache";

/// How long carbon may take to open its line port: it starts Twisted in Python,
/// which is slow on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running carbon-cache (the real one); killed (and its temp dir removed) on drop. Its data
/// lives in the temp dir, so SIGKILL loses nothing a test needs.
pub struct CarbonCache {
    child: GroupGuard,
    /// Port of the plaintext line receiver, where the daemon publishes.
    pub line_port: u16,
    /// Port of the pickle receiver (`--graphite-protocol pickle`).
    pub pickle_port: u16,
    /// Holds carbon.conf, the whisper tree and carbon's log.
    dir: tempfile::TempDir,
}

/// `(timestamp, value)` of each non-empty whisper point, oldest first.
pub type Points = Vec<(i64, f64)>;

impl CarbonCache {
    /// Starts carbon-cache in the foreground on free loopback ports and waits
    /// until its line port accepts connections. Retries with new ports when
    /// another process took one of them between picking and binding.
    pub fn start() -> CarbonCache {
        require_binary(CARBON_CACHE, "graphite-carbon");
        require_python_whisper();
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(c) => return c,
                Err(log) => last_log = log,
            }
        }
        panic!("carbon-cache did not start in 3 tries; its last output:\n{last_log}");
    }

    fn try_start() -> Result<CarbonCache, String> {
        let dir = tempfile::Builder::new()
            .prefix("statsd-carbon-")
            .tempdir()
            .expect("create carbon temp dir");
        let line_port = free_port();
        let pickle_port = free_port();
        let query_port = free_port();
        write_config(dir.path(), line_port, pickle_port, query_port);

        let log = fs::File::create(dir.path().join("carbon.log")).expect("create carbon.log");
        let child = GroupGuard::spawn(
            Command::new(CARBON_CACHE)
                .arg(format!(
                    "--config={}",
                    dir.path().join("carbon.conf").display()
                ))
                // --debug: stay in the foreground and log to stdout (our file).
                .args(["--debug", "start"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log fd"))
                .stderr(log),
        )
        .expect("spawn carbon-cache");
        let mut carbon = CarbonCache {
            child,
            line_port,
            pickle_port,
            dir,
        };

        let addr = SocketAddr::from(([127, 0, 0, 1], line_port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(carbon);
            }
            if let Ok(Some(status)) = carbon.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", carbon.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "line port {line_port} not open after {START_TIMEOUT:?}:\n{}",
                    carbon.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Carbon's own log (stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("carbon.log"))
    }

    /// Root of the whisper tree.
    pub fn whisper_dir(&self) -> PathBuf {
        self.dir.path().join("storage").join("whisper")
    }

    /// The whisper file carbon writes for a dotted metric path.
    pub fn whisper_file(&self, metric: &str) -> PathBuf {
        let mut p = self.whisper_dir();
        for part in metric.split('.') {
            p.push(part);
        }
        p.set_extension("wsp");
        p
    }

    /// Every metric carbon has created a file for, dotted, sorted.
    pub fn metrics(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = e.path();
                let dotted = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                if path.is_dir() {
                    walk(&path, &dotted, out);
                } else if let Some(m) = dotted.strip_suffix(".wsp") {
                    out.push(m.to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.whisper_dir(), "", &mut out);
        out.sort();
        out
    }

    /// Reads the points of each metric whose file exists (whisper's own
    /// `fetch`, over the whole hour of retention). Metrics without a file yet
    /// are absent from the map.
    pub fn fetch(&self, metrics: &[&str]) -> BTreeMap<String, Points> {
        let existing: Vec<(&str, PathBuf)> = metrics
            .iter()
            .map(|m| (*m, self.whisper_file(m)))
            .filter(|(_, p)| p.is_file())
            .collect();
        let mut out = BTreeMap::new();
        if existing.is_empty() {
            return out;
        }
        // repr() prints the shortest text that reads back to the same double,
        // so values compare exactly with f64 computed here.
        let script = "import sys, whisper\n\
            for i, path in enumerate(sys.argv[1:]):\n\
            \x20   (start, end, step), vals = whisper.fetch(path, 0)\n\
            \x20   for j, v in enumerate(vals):\n\
            \x20       if v is not None:\n\
            \x20           print(i, start + j * step, repr(v))\n";
        let output = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .args(existing.iter().map(|(_, p)| p))
            .output()
            .expect("run python3 whisper fetch");
        assert!(
            output.status.success(),
            "whisper fetch failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for (m, _) in &existing {
            out.insert(m.to_string(), Vec::new());
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 3, "odd whisper fetch line {line:?}");
            let i: usize = f[0].parse().expect("index");
            let ts: i64 = f[1].parse().expect("timestamp");
            let v: f64 = f[2].parse().expect("value");
            out.get_mut(existing[i].0).expect("metric").push((ts, v));
        }
        out
    }

    /// Waits (bounded) until every metric has at least `min_points` points and
    /// returns them all. Carbon writes asynchronously, up to a second or so
    /// after it received a line.
    pub fn wait_points(
        &self,
        metrics: &[&str],
        min_points: usize,
        timeout: Duration,
    ) -> BTreeMap<String, Points> {
        wait_for(
            timeout,
            &format!("{min_points}+ whisper points in each of {metrics:?}"),
            || {
                let got = self.fetch(metrics);
                let complete = metrics
                    .iter()
                    .all(|m| got.get(*m).is_some_and(|p| p.len() >= min_points));
                complete.then_some(got)
            },
            || {
                format!(
                    "points so far: {:?}\nmetrics carbon created: {:?}\ncarbon log tail:\n{}",
                    self.fetch(metrics),
                    self.metrics(),
                    tail(&self.log(), 30)
                )
            },
        )
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn write_config(dir: &Path, line_port: u16, pickle_port: u16, query_port: u16) {
    let d = dir.display();
    // Debian's /etc/carbon/carbon.conf with every path in the temp dir, loopback
    // only, and no limits that would delay a test's points: creates and updates
    // unthrottled, no tag database (ENABLE_TAGS would call graphite-web), no
    // self-metrics (CARBON_METRIC_INTERVAL = 0), no user switch.
    let conf = format!(
        "[cache]\n\
         STORAGE_DIR = {d}/storage/\n\
         LOCAL_DATA_DIR = {d}/storage/whisper/\n\
         WHITELISTS_DIR = {d}/storage/lists/\n\
         CONF_DIR = {d}/\n\
         LOG_DIR = {d}/log/\n\
         PID_DIR = {d}/\n\
         USER =\n\
         DATABASE = whisper\n\
         ENABLE_LOGROTATION = False\n\
         MAX_CACHE_SIZE = inf\n\
         MAX_UPDATES_PER_SECOND = 1000000\n\
         MAX_CREATES_PER_MINUTE = inf\n\
         LINE_RECEIVER_INTERFACE = 127.0.0.1\n\
         LINE_RECEIVER_PORT = {line_port}\n\
         ENABLE_UDP_LISTENER = False\n\
         PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
         PICKLE_RECEIVER_PORT = {pickle_port}\n\
         CACHE_QUERY_INTERFACE = 127.0.0.1\n\
         CACHE_QUERY_PORT = {query_port}\n\
         USE_FLOW_CONTROL = True\n\
         LOG_UPDATES = False\n\
         LOG_CREATES = True\n\
         LOG_CACHE_HITS = False\n\
         LOG_CACHE_QUEUE_SORTS = False\n\
         CACHE_WRITE_STRATEGY = naive\n\
         WHISPER_AUTOFLUSH = False\n\
         WHISPER_FALLOCATE_CREATE = False\n\
         ENABLE_TAGS = False\n\
         CARBON_METRIC_INTERVAL = 0\n"
    );
    fs::write(dir.join("carbon.conf"), conf).expect("write carbon.conf");
    fs::write(
        dir.join("storage-schemas.conf"),
        "[all]\npattern = .*\nretentions = 1s:1h\n",
    )
    .expect("write storage-schemas.conf");
    // One archive, so aggregation never applies; `last` says so explicitly.
    fs::write(
        dir.join("storage-aggregation.conf"),
        "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = last\n",
    )
    .expect("write storage-aggregation.conf");
}
