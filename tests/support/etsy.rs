//! Etsy's statsd 0.9.0 itself (npm `statsd@0.9.0` under
//! `target/peers/node`, installed by scripts/test.sh), run by node with a
//! config.js of the test's; and a carbon that keeps each connection's lines
//! as one flush (Etsy and we both send one flush per connection).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Instant;

use super::peers::peer;
use super::{free_port, GroupGuard, WAIT};

/// A carbon on loopback whose every connection is one flush.
pub struct FlushCarbon {
    pub port: u16,
    flushes: Receiver<(Instant, Vec<String>)>,
}

impl FlushCarbon {
    pub fn start() -> FlushCarbon {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a carbon port");
        let port = listener.local_addr().expect("carbon address").port();
        let (tx, flushes) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(WAIT));
                    let lines: Vec<String> = BufReader::new(stream)
                        .lines()
                        .map_while(Result::ok)
                        .filter(|l| !l.is_empty())
                        .collect();
                    let _ = tx.send((Instant::now(), lines));
                });
            }
        });
        FlushCarbon { port, flushes }
    }

    /// The next flush and when it arrived; panics after [`WAIT`].
    pub fn next(&self, who: &str) -> (Instant, Vec<String>) {
        self.flushes
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{who} sent no flush within {WAIT:?}"))
    }
}

/// Paths and values of one flush (the timestamps dropped).
pub fn values(lines: &[String]) -> BTreeMap<String, f64> {
    lines
        .iter()
        .map(|line| {
            let mut parts = line.rsplitn(3, ' ');
            let (_ts, value, path) = (parts.next(), parts.next(), parts.next());
            let value = value.and_then(|v| v.parse::<f64>().ok());
            match (path, value) {
                (Some(path), Some(value)) => (path.to_string(), value),
                _ => panic!("not a carbon line: {line:?}"),
            }
        })
        .collect()
}

/// Etsy's statsd running under node until dropped.
pub struct EtsyStatsd {
    pub addr: SocketAddr,
    _process: GroupGuard,
    _dir: PathBuf,
}

impl EtsyStatsd {
    /// Starts `stats.js` with a config.js made of `settings` (JavaScript
    /// object members) plus the port, addresses and carbon.
    pub fn start(carbon: u16, settings: &str) -> EtsyStatsd {
        let stats_js = peer(
            "node/node_modules/statsd/stats.js",
            "Etsy statsd 0.9.0 (npm statsd@0.9.0)",
        );
        let node = which_node();
        let port = free_port();
        let mgmt = free_port();
        let dir = std::env::temp_dir().join(format!("etsy-statsd-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a config dir");
        let config = dir.join("config.js");
        let text = format!(
            "{{\n  port: {port}, address: \"127.0.0.1\", mgmt_port: {mgmt}, mgmt_address: \"127.0.0.1\",\n  \
             graphiteHost: \"127.0.0.1\", graphitePort: {carbon}, backends: [\"./backends/graphite\"],\n  {settings}\n}}\n"
        );
        std::fs::write(&config, text).expect("write config.js");
        let process = GroupGuard::spawn(
            Command::new(node)
                .arg(&stats_js)
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("start node stats.js");
        EtsyStatsd {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _process: process,
            _dir: dir,
        }
    }
}

impl Drop for EtsyStatsd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// node, which the npm peers need (Debian's `nodejs`).
pub fn which_node() -> PathBuf {
    for candidate in ["/usr/bin/node", "/usr/local/bin/node"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("node is missing: run scripts/test.sh, which installs npm and node");
}

/// Sends each datagram to `addr`.
pub fn send_all(addr: SocketAddr, datagrams: &[String]) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP sender");
    for d in datagrams {
        socket.send_to(d.as_bytes(), addr).expect("send a datagram");
    }
}
