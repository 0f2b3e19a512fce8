//! Etsy's management console in tests: a command on a connection of its
//! own, reads bounded by [`WAIT`], a server with the console on, and
//! Etsy's node programs (statsd, its proxy) as peers on a config file.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use super::peers::peer;
use super::server::Server;
use super::{wait_for, GroupGuard, WAIT};

/// A node program of Etsy's statsd package (`stats.js`, `proxy.js`) on a
/// config file of its own; killed on drop.
pub struct EtsyProgram {
    _process: GroupGuard,
    _dir: tempfile::TempDir,
}

impl EtsyProgram {
    /// Runs `script` of npm `statsd@0.9.0` on `config`; returns once its
    /// management console at `mgmt` accepts connections (each program
    /// starts its metrics socket before its console).
    pub fn start(script: &str, config: &serde_json::Value, mgmt: SocketAddr) -> EtsyProgram {
        let script = peer(
            &format!("node/node_modules/statsd/{script}"),
            "statsd@0.9.0 (npm)",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("config.js");
        std::fs::write(&config_path, config.to_string()).expect("write config");
        let process = GroupGuard::spawn(
            Command::new("node")
                .arg(&script)
                .arg(&config_path)
                .current_dir(script.parent().unwrap_or(Path::new(".")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("start node (the nodejs package)");
        wait_for(
            WAIT,
            "an Etsy program to answer on its mgmt port",
            || TcpStream::connect(mgmt).ok(),
            || format!("node {} {}", script.display(), config_path.display()),
        );
        EtsyProgram {
            _process: process,
            _dir: dir,
        }
    }
}

/// One command on a connection of its own: written, the writing side
/// closed (both servers then finish the reply and close), read to the end.
pub fn ask(addr: SocketAddr, command: &str) -> String {
    try_ask(addr, command).unwrap_or_else(|e| panic!("reply to {command:?} from {addr}: {e}"))
}

/// [`ask`], the error returned.
pub fn try_ask(addr: SocketAddr, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Ours with the console on and `extra` flags.
pub fn console_with(extra: &[&str]) -> Server {
    let mut flags = vec![
        "-p",
        "0",
        "-n",
        "127.0.0.1",
        "--console",
        "-q",
        "--mgmt-port",
        "0",
    ];
    flags.extend_from_slice(extra);
    Server::start(&flags)
}

/// A connection with a read deadline.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Reads until `text` has arrived (bounded by the read deadline).
pub fn read_until(stream: &mut TcpStream, text: &str) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(text) {
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"));
        assert!(
            n > 0,
            "closed before {text:?}; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads to the end: what the server wrote before closing.
pub fn read_rest(stream: &mut TcpStream) -> String {
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the server closes within the deadline");
    String::from_utf8_lossy(&rest).into_owned()
}
