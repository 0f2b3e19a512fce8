//! Flags of UDP intake's performance options.

/// `--udp-spread` and `--udp-queues` (see `net::spread`, `net::queues`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UdpSpreadArgs {
    /// Spread each sender's datagrams over every UDP worker (a reuseport BPF program) instead of one worker per sender; a gauge sent twice in one interval may then end at either value
    #[arg(long = "udp-spread")]
    pub udp_spread: bool,
    /// UDP sockets per worker, read as one queue in arrival order: N times the receive buffer an unprivileged daemon may have [default: enough for 2 MiB per worker, up to 8]
    #[arg(long = "udp-queues")]
    pub udp_queues: Option<usize>,
}
