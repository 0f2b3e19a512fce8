//! The network edge of intake: binding every socket the server listens on,
//! UDP receive workers ([`udp`]), TCP connections ([`tcp`]) and the Unix
//! datagram socket ([`unix`]). What is done
//! with the bytes is [`crate::intake`]'s concern.

mod idle;
pub mod kernel_view;
mod queues;
pub mod slots;
pub mod spread;
mod stamps;
pub mod tcp;
pub mod udp;
pub mod unix;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// The sockets a server runs on, bound before it starts (so tests bind port
/// 0 and a supervisor sees a bind failure at once).
#[derive(Debug)]
pub struct Listeners {
    /// The UDP sockets, all on the metrics port, worker by worker
    /// (`udp_queues` each); none without udp in `--transports`.
    pub udp: Vec<std::net::UdpSocket>,
    /// UDP sockets per receive worker (`--udp-queues`).
    pub udp_queues: usize,
    /// Whether the kernel stamped datagrams on arrival by the time the
    /// sockets were bound (true with one socket per worker: no stamps needed).
    pub udp_stamps_on_arrival: bool,
    /// TCP listener on the metrics port, unless `--transports` leaves it out.
    pub tcp: Option<std::net::TcpListener>,
    /// XML-RPC monitoring listener, unless turned off.
    pub monitor: Option<std::net::TcpListener>,
    /// `--unix-socket`: the Unix datagram socket and its file.
    pub unix: Option<unix::UnixInput>,
    /// Etsy's management console listener, when `--mgmt-port` (or `--etsy`) asks.
    pub mgmt: Option<std::net::TcpListener>,
}

/// Where and how to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSettings {
    /// `-n`: address or host name; empty for every interface.
    pub name: String,
    /// Metrics port (UDP and TCP); 0 picks a free one.
    pub port: u16,
    /// Monitoring port, unless turned off; 0 picks a free one.
    pub monitor_port: Option<u16>,
    /// UDP sockets (receive workers).
    pub workers: usize,
    /// Receive buffer asked of the kernel for each UDP socket, in bytes.
    pub udp_buffer: usize,
    /// `--udp-spread`: every sender's datagrams spread over all workers.
    pub spread: bool,
    /// `--udp-queues`: sockets per UDP worker; None picks by the buffer the
    /// kernel grants ([`udp::auto_queues`]).
    pub udp_queues: Option<usize>,
    /// `--unix-socket`: a Unix datagram socket to receive on too.
    pub unix: Option<unix::UnixSettings>,
    /// Etsy's management console, when on.
    pub mgmt: Option<MgmtBind>,
    /// `--transports`: which metric listeners run.
    pub transports: crate::config::Transports,
}

/// Where Etsy's management console listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgmtBind {
    /// `--mgmt-address`: address or host name; empty for every interface.
    pub address: String,
    /// `--mgmt-port`; 0 picks a free one.
    pub port: u16,
}

/// How long binding waits for the kernel to stamp datagrams on arrival
/// ([`stamps`]); it takes microseconds on an idle machine.
const STAMPS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Listeners {
    /// Binds every socket the settings ask for.
    pub fn bind(settings: &BindSettings) -> io::Result<Listeners> {
        let candidates = resolve_bind_address(&settings.name, settings.port)?;
        let mut last_error = None;
        let queues = settings
            .udp_queues
            .unwrap_or_else(|| udp::auto_queues(settings.udp_buffer));
        for addr in candidates {
            let bound = bind_metrics(
                addr,
                settings.transports,
                settings.workers * queues,
                settings.udp_buffer,
                queues,
            );
            let (udp, tcp) = match bound {
                Ok(pair) => pair,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            spread::attach(&udp, queues, settings.spread)?;
            let udp_stamps_on_arrival =
                queues <= 1 || udp.is_empty() || stamps::await_arrival_stamps(STAMPS_WAIT);
            let monitor =
                match settings.monitor_port {
                    Some(port) => {
                        let at = SocketAddr::new(addr.ip(), port);
                        Some(bind_tcp(at).map_err(|e| {
                            io::Error::new(e.kind(), format!("monitor port {at}: {e}"))
                        })?)
                    }
                    None => None,
                };
            let mgmt = settings.mgmt.as_ref().map(bind_mgmt).transpose()?;
            // Last: a port that cannot be bound leaves no socket file behind.
            let unix = settings.unix.as_ref().map(unix::bind).transpose()?;
            return Ok(Listeners {
                udp,
                udp_queues: queues,
                udp_stamps_on_arrival,
                tcp,
                monitor,
                unix,
                mgmt,
            });
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no address to bind")))
    }

    /// The metrics address (UDP and TCP share it).
    pub fn metrics_addr(&self) -> io::Result<SocketAddr> {
        match (&self.tcp, self.udp.first()) {
            (Some(tcp), _) => tcp.local_addr(),
            (None, Some(udp)) => udp.local_addr(),
            (None, None) => Err(io::Error::other("no metrics listener")),
        }
    }

    /// The monitoring address, when the endpoint is on.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The management console's address, when it is on.
    pub fn mgmt_addr(&self) -> Option<SocketAddr> {
        self.mgmt.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Warnings worth a line at start: a UDP receive buffer smaller than
    /// asked for (the kernel caps it at net.core.rmem_max for non-root).
    pub fn warnings(&self, asked_udp_buffer: usize) -> Vec<String> {
        let Some(socket) = self.udp.first() else {
            return Vec::new();
        };
        let mut warnings = Vec::new();
        if !self.udp_stamps_on_arrival {
            warnings.push(format!(
                "the kernel did not stamp UDP datagrams on arrival within {} s (SO_TIMESTAMPNS): \
                 until it does, gauges one sender sets several times in an interval may end at \
                 an earlier value (--udp-queues 1 avoids it)",
                STAMPS_WAIT.as_secs()
            ));
        }
        // Linux reports twice the usable size it granted.
        let granted = socket2::SockRef::from(socket)
            .recv_buffer_size()
            .unwrap_or(0)
            / 2;
        if granted >= asked_udp_buffer {
            return warnings;
        }
        let sockets = match self.udp_queues {
            1 => String::new(),
            n => format!(
                "; each worker reads {n} sockets to make up for it ({} bytes)",
                granted.saturating_mul(n)
            ),
        };
        warnings.push(format!(
            "UDP receive buffer is {granted} bytes, not the {asked_udp_buffer} asked (--udp-buffer){sockets}: \
             raise it with `sysctl -w net.core.rmem_max={}` or bursts may be dropped \
             (counted in udp.kernel_drops)",
            asked_udp_buffer.saturating_mul(2)
        ));
        warnings
    }

    /// One line for the log: where the server listens.
    pub fn describe(&self) -> String {
        let metrics = self
            .metrics_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string());
        let monitor = match &self.monitor {
            Some(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| format!("on {a}")),
            None => "off".into(),
        };
        let unix = match &self.unix {
            Some(input) => format!(", unix datagram {}", input.file.path().display()),
            None => String::new(),
        };
        let mgmt = match self.mgmt_addr() {
            Some(addr) => format!(", management console on {addr}"),
            None => String::new(),
        };
        let transports = match (self.udp.is_empty(), self.tcp.is_some()) {
            (false, true) => "udp+tcp",
            (false, false) => "udp",
            (true, _) => "tcp",
        };
        let workers = self.udp.len() / self.udp_queues.max(1);
        let queues = match self.udp_queues {
            1 => String::new(),
            n => format!(", {n} sockets each"),
        };
        format!(
            "listening for metrics on {transports} {metrics} ({workers} UDP workers{queues}){unix}, monitor (XML-RPC) {monitor}{mgmt}"
        )
    }
}

/// The addresses to bind for `-n`: every interface (dual-stack `[::]`, or
/// `0.0.0.0` where IPv6 is off) when empty, else what the name resolves to.
pub fn resolve_bind_address(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if name.is_empty() {
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = (name, port).to_socket_addrs()?.collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name} has no address"),
        ));
    }
    Ok(found)
}

/// Binds the management console: the first address of `--mgmt-address`
/// that binds (every interface when empty, as Etsy's `mgmt_address`).
fn bind_mgmt(at: &MgmtBind) -> io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for addr in resolve_bind_address(&at.address, at.port)? {
        match bind_tcp(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(io::Error::new(e.kind(), format!("mgmt port {addr}: {e}"))),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no address for the mgmt port")))
}

/// Binds UDP then TCP on the same port (each only if `transports` has it);
/// with port 0, retries until a port is free for both.
fn bind_metrics(
    addr: SocketAddr,
    transports: crate::config::Transports,
    sockets: usize,
    udp_buffer: usize,
    queues: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, Option<std::net::TcpListener>)> {
    if !transports.udp {
        return Ok((Vec::new(), Some(bind_tcp(addr)?)));
    }
    let mut last_error = None;
    for _ in 0..if addr.port() == 0 { 20 } else { 1 } {
        let udp = udp::bind(addr, sockets, queues, udp_buffer)?;
        if !transports.tcp {
            return Ok((udp, None));
        }
        let port = udp[0].local_addr()?.port();
        match bind_tcp(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, Some(tcp))),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free port")))
}

/// A socket with the options every listener shares.
fn new_socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        // `[::]` takes IPv4 too; an explicit IPv6 address stays IPv6-only.
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.set_reuse_address(true)?;
    Ok(socket)
}

/// Binds a TCP listener (metrics or monitoring), non-blocking for tokio.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
