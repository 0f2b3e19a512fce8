//! A fake aggregator for the proxy tests: a UDP listener that records every
//! line it gets and a TCP admin port that answers Etsy's `health` command
//! (`health: up` or `health: down`, as Etsy's mgmt console words it). It can
//! be killed (both sockets closed: UDP lines are lost, the admin port
//! refuses) and started again on the same ports.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Lines recorded by a node, across restarts.
pub type Recorded = Arc<Mutex<Vec<Vec<u8>>>>;

/// One fake aggregator.
pub struct FakeNode {
    /// Where it takes lines.
    pub udp: SocketAddr,
    /// Where it answers `health`.
    pub mgmt: SocketAddr,
    /// Every line received, in order.
    pub lines: Recorded,
    /// Answer `health: up` (else `health: down`).
    up: Arc<AtomicBool>,
    /// Set to stop both threads.
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeNode {
    /// A node on free loopback ports, healthy.
    pub fn start() -> FakeNode {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind fake node UDP");
        let mgmt = TcpListener::bind("127.0.0.1:0").expect("bind fake node mgmt");
        let mut node = FakeNode {
            udp: udp.local_addr().expect("udp addr"),
            mgmt: mgmt.local_addr().expect("mgmt addr"),
            lines: Recorded::default(),
            up: Arc::new(AtomicBool::new(true)),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        node.run(udp, mgmt);
        node
    }

    /// `host:port:mgmt_port` for `--proxy`.
    pub fn spec(&self) -> String {
        format!("127.0.0.1:{}:{}", self.udp.port(), self.mgmt.port())
    }

    /// `host:port`, the ring's name for it.
    pub fn id(&self) -> String {
        format!("127.0.0.1:{}", self.udp.port())
    }

    /// Answer `health: up` or `health: down` from now on.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    /// Lines received so far.
    pub fn count(&self) -> usize {
        self.lines.lock().expect("lines").len()
    }

    /// Closes both sockets, as a killed process would.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept.
        let _ = TcpStream::connect_timeout(&self.mgmt, Duration::from_secs(1));
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    /// Binds the same ports again, healthy.
    pub fn restart(&mut self) {
        let udp = UdpSocket::bind(self.udp).expect("rebind fake node UDP");
        let mgmt = TcpListener::bind(self.mgmt).expect("rebind fake node mgmt");
        self.stop = Arc::new(AtomicBool::new(false));
        self.set_up(true);
        self.run(udp, mgmt);
    }

    fn run(&mut self, udp: UdpSocket, mgmt: TcpListener) {
        let _ = socket2::SockRef::from(&udp).set_recv_buffer_size(16 << 20);
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("udp timeout");
        let (lines, stop) = (self.lines.clone(), self.stop.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::SeqCst) {
                let Ok(n) = udp.recv(&mut buf) else { continue };
                let mut lines = lines.lock().expect("lines");
                for line in buf[..n].split(|&b| b == b'\n') {
                    if !line.is_empty() {
                        lines.push(line.to_vec());
                    }
                }
            }
        }));
        let (up, stop) = (self.up.clone(), self.stop.clone());
        self.threads.push(std::thread::spawn(move || {
            for stream in mgmt.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut command = String::new();
                let read = BufReader::new(&stream).read_line(&mut command);
                if read.is_ok() && command.trim() == "health" {
                    let state = if up.load(Ordering::SeqCst) {
                        "up"
                    } else {
                        "down"
                    };
                    let _ = stream.write_all(format!("health: {state}\n").as_bytes());
                }
            }
        }));
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which node (index) got each line's name, from the nodes' records; panics
/// if a name reached two nodes.
pub fn placement(nodes: &[FakeNode]) -> std::collections::HashMap<Vec<u8>, usize> {
    let mut placed = std::collections::HashMap::new();
    for (index, node) in nodes.iter().enumerate() {
        for line in node.lines.lock().expect("lines").iter() {
            let name = line.split(|&b| b == b':').next().unwrap_or(&[]).to_vec();
            if let Some(other) = placed.insert(name.clone(), index) {
                assert_eq!(
                    other,
                    index,
                    "{} reached nodes {other} and {index}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
    }
    placed
}

/// Sends `lines` to `target` in datagrams of 20 lines, waiting every 1,000
/// lines until the nodes hold them all (a slow proxy or node is never
/// overrun: what is compared is placement, not speed).
pub fn send_paced(target: SocketAddr, nodes: &[FakeNode], lines: &[String]) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    let before: usize = nodes.iter().map(FakeNode::count).sum();
    for (index, chunk) in lines.chunks(20).enumerate() {
        socket
            .send_to(chunk.join("\n").as_bytes(), target)
            .expect("send");
        if index % 50 == 49 {
            wait_total(nodes, before + (index + 1) * 20);
        }
    }
    wait_total(nodes, before + lines.len());
}

/// Waits (bounded) until the nodes hold `total` lines together.
pub fn wait_total(nodes: &[FakeNode], total: usize) {
    super::wait_every(
        super::WAIT,
        Duration::from_millis(5),
        &format!("{total} lines on the nodes"),
        || (nodes.iter().map(FakeNode::count).sum::<usize>() >= total).then_some(()),
        || {
            format!(
                "counts: {:?}",
                nodes.iter().map(FakeNode::count).collect::<Vec<_>>()
            )
        },
    );
}
