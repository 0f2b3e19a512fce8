//! A real carbon-cache (Debian's graphite-carbon) in a temp dir, and reading its
//! whisper files back (python3-whisper).
//!
//! Every whisper file keeps one point per second for an hour (`1s:1h`), so each
//! flush timestamp of the daemon is its own point and reads back exactly.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    free_tcp_port, read_lossy, require_binary, require_python_whisper, wait_for, GroupGuard,
};

const CARBON_CACHE: &str = "/usr/bin/carbon-cache";

/// How long carbon may take to open its line port: it starts Twisted in Python,
/// which is slow on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running carbon-cache; killed (and its temp dir removed) on drop. Its data
/// lives in the temp dir, so SIGKILL loses nothing a test needs.
pub struct Carbon {
    child: GroupGuard,
    /// Port of the plaintext line receiver, where the daemon publishes.
    pub line_port: u16,
    /// Holds carbon.conf, the whisper tree and carbon's log.
    dir: tempfile::TempDir,
}

/// `(timestamp, value)` of each non-empty whisper point, oldest first.
pub type Points = Vec<(i64, f64)>;

impl Carbon {
    /// Starts carbon-cache in the foreground on free loopback ports and waits
    /// until its line port accepts connections. Retries with new ports when
    /// another process took one of them between picking and binding.
    pub fn start() -> Carbon {
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

    fn try_start() -> Result<Carbon, String> {
        let dir = tempfile::Builder::new()
            .prefix("statsd-carbon-")
            .tempdir()
            .expect("create carbon temp dir");
        let line_port = free_tcp_port();
        let pickle_port = free_tcp_port();
        let query_port = free_tcp_port();
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
        let mut carbon = Carbon {
            child,
            line_port,
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
