//! The real carbon-relay (Debian's graphite-carbon) with
//! `RELAY_METHOD = consistent-hashing`, in a temp dir, on a free loopback
//! line port, forwarding in the line protocol so the fake carbons behind it
//! record what it placed where.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::carbon::tail;
use super::{free_port, read_lossy, require_binary, GroupGuard};

const CARBON_RELAY: &str = "/usr/bin/carbon-relay";

/// How long carbon-relay may take to open its line port (Twisted on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running carbon-relay; killed (and its temp dir removed) on drop.
pub struct CarbonRelay {
    child: GroupGuard,
    /// Its plaintext line receiver.
    pub line_port: u16,
    dir: tempfile::TempDir,
}

impl CarbonRelay {
    /// Starts carbon-relay in front of `destinations` (carbon's
    /// DESTINATIONS entries, `host:port[:instance]`), with this replication
    /// and ring type; waits until its line port accepts connections.
    pub fn start(destinations: &[String], replication: usize, hash_type: &str) -> CarbonRelay {
        require_binary(CARBON_RELAY, "graphite-carbon");
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(destinations, replication, hash_type) {
                Ok(relay) => return relay,
                Err(log) => last = log,
            }
        }
        panic!("carbon-relay did not start in 3 tries; its last output:\n{last}");
    }

    fn try_start(
        destinations: &[String],
        replication: usize,
        hash_type: &str,
    ) -> Result<CarbonRelay, String> {
        let dir = tempfile::Builder::new()
            .prefix("statsd-relay-")
            .tempdir()
            .expect("create relay temp dir");
        let (line_port, pickle_port) = (free_port(), free_port());
        let d = dir.path().display();
        // Queues far above a test's names, so the relay never drops one.
        let conf = format!(
            "[relay]\n\
             STORAGE_DIR = {d}/storage/\n\
             LOCAL_DATA_DIR = {d}/storage/whisper/\n\
             WHITELISTS_DIR = {d}/storage/lists/\n\
             CONF_DIR = {d}/\n\
             LOG_DIR = {d}/log/\n\
             PID_DIR = {d}/\n\
             USER =\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\n\
             LINE_RECEIVER_PORT = {line_port}\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
             PICKLE_RECEIVER_PORT = {pickle_port}\n\
             ENABLE_UDP_LISTENER = False\n\
             RELAY_METHOD = consistent-hashing\n\
             ROUTER_HASH_TYPE = {hash_type}\n\
             REPLICATION_FACTOR = {replication}\n\
             DIVERSE_REPLICAS = True\n\
             DESTINATIONS = {}\n\
             DESTINATION_PROTOCOL = line\n\
             MAX_QUEUE_SIZE = 1000000\n\
             MAX_DATAPOINTS_PER_MESSAGE = 500\n\
             USE_FLOW_CONTROL = True\n\
             LOG_LISTENER_CONN_SUCCESS = False\n\
             CARBON_METRIC_INTERVAL = 0\n",
            destinations.join(", ")
        );
        fs::write(dir.path().join("carbon.conf"), conf).expect("write carbon.conf");
        // carbon's start-up insists on the file, though a relay stores nothing.
        fs::write(
            dir.path().join("storage-schemas.conf"),
            "[all]\npattern = .*\nretentions = 1s:1h\n",
        )
        .expect("write storage-schemas.conf");
        let log = fs::File::create(dir.path().join("relay.log")).expect("create relay.log");
        let child = GroupGuard::spawn(
            Command::new(CARBON_RELAY)
                .arg(format!(
                    "--config={}",
                    dir.path().join("carbon.conf").display()
                ))
                .args(["--debug", "start"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log fd"))
                .stderr(log),
        )
        .expect("spawn carbon-relay");
        let mut relay = CarbonRelay {
            child,
            line_port,
            dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], line_port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(relay);
            }
            if let Ok(Some(status)) = relay.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", relay.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!("line port {line_port} not open:\n{}", relay.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The relay's own log, for failure messages.
    pub fn log(&self) -> String {
        tail(&read_lossy(&self.dir.path().join("relay.log")), 30)
    }
}
