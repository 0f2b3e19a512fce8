//! Flags of UDP intake's performance options.

/// `--udp-spread` (see `net::spread`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UdpSpreadArgs {
    /// Spread each sender's datagrams over every UDP worker (a reuseport BPF program) instead of one worker per sender; a gauge sent twice in one interval may then end at either value
    #[arg(long = "udp-spread")]
    pub udp_spread: bool,
}
