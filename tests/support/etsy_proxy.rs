//! Etsy's `proxy.js` (npm statsd 0.9.0, installed by scripts/test.sh under
//! target/peers/node) run by node in front of given nodes, on a free port,
//! in its own process group (killed with the guard).

use std::process::{Command, Stdio};

use super::daemon::lines_of;
use super::peers::peer;
use super::{free_port, lines_until, GroupGuard};

/// A running proxy.js.
pub struct EtsyProxy {
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    /// Its config file's directory.
    _dir: tempfile::TempDir,
    _process: GroupGuard,
}

impl EtsyProxy {
    /// Sends a probe line every 20 ms until `arrived()` (lines the nodes
    /// hold) is above zero: proxy.js says "server is up" before its socket
    /// is bound, and what is sent before is lost. Then lets late probes land.
    pub fn wait_forwarding(&self, arrived: impl Fn() -> u64) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        super::wait_every(
            super::WAIT,
            std::time::Duration::from_millis(20),
            "a first line through proxy.js",
            || {
                let _ = socket.send_to(b"probe:1|c", ("127.0.0.1", self.port));
                (arrived() > 0).then_some(())
            },
            String::new,
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    /// proxy.js for `nodes` (`(port, adminport)` on 127.0.0.1), checking
    /// health every `check_ms`; returns once it says "server is up".
    pub fn start(nodes: &[(u16, u16)], check_ms: u64) -> EtsyProxy {
        let script = peer("node/node_modules/statsd/proxy.js", "npm statsd@0.9.0");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mgmt = free_port();
        let list: Vec<String> = nodes
            .iter()
            .map(|(p, a)| format!("{{host: '127.0.0.1', port: {p}, adminport: {a}}}"))
            .collect();
        let config = format!(
            "{{nodes: [{}], address: '127.0.0.1', port: {port}, mgmt_address: '127.0.0.1', \
             mgmt_port: {mgmt}, forkCount: 0, checkInterval: {check_ms}, cacheSize: 10000}}",
            list.join(", ")
        );
        let file = dir.path().join("proxyConfig.js");
        std::fs::write(&file, config).expect("write proxy.js config");
        let mut process = GroupGuard::spawn(
            Command::new("node")
                .arg(&script)
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .expect("start node proxy.js (is node installed? scripts/test.sh installs npm)");
        let stdout = process.take_stdout().expect("proxy.js stdout");
        let lines = lines_of(stdout);
        lines_until(&lines, "proxy.js", "server is up");
        // Keep reading so proxy.js never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        EtsyProxy {
            port,
            _dir: dir,
            _process: process,
        }
    }
}
