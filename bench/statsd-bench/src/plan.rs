//! What gets sent: pre-rendered lines per metric type and the order in which
//! datagrams draw from them.

use std::io::Write;

use clap::ValueEnum;

use crate::Args;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MetricType {
    C,
    G,
    Ms,
    S,
}

impl MetricType {
    pub(crate) fn code(self) -> &'static str {
        match self {
            MetricType::C => "c",
            MetricType::G => "g",
            MetricType::Ms => "ms",
            MetricType::S => "s",
        }
    }
}

/// All lines of one metric type, pre-rendered, so the send loop only points
/// iovecs into memory and never formats anything.
pub(crate) struct Pool {
    pub(crate) ty: MetricType,
    /// Lines `0..n` followed by lines `0..lines_per_datagram` again, each with
    /// its `\n`, so any run of up to `lines_per_datagram` lines starting below
    /// `n` is one contiguous slice.
    buf: Vec<u8>,
    /// Byte offset of each line in `buf`, plus the end.
    starts: Vec<usize>,
    pub(crate) n: usize,
    cursor: usize,
    pub(crate) lines: u64,
    pub(crate) datagrams: u64,
}

impl Pool {
    /// Bytes of the `k` lines starting at `cursor`, newline included.
    pub(crate) fn chunk(&self, cursor: usize, k: usize) -> &[u8] {
        &self.buf[self.starts[cursor]..self.starts[cursor + k]]
    }
}

pub(crate) fn build_pools(a: &Args) -> Vec<Pool> {
    let nt = a.types.len();
    let l = a.lines_per_datagram;
    let mut pools = Vec::with_capacity(nt);
    for (t, &ty) in a.types.iter().enumerate() {
        let idx: Vec<usize> = (t..a.names).step_by(nt).collect();
        let n = idx.len();
        let mut buf = Vec::with_capacity((n + l) * (a.prefix.len() + 24));
        let mut starts = Vec::with_capacity(n + l + 1);
        for j in 0..n + l {
            let i = idx[j % n];
            starts.push(buf.len());
            if !a.prefix.is_empty() {
                buf.extend_from_slice(a.prefix.as_bytes());
                buf.push(b'.');
            }
            let value = match ty {
                MetricType::C => a.counter_value,
                MetricType::G | MetricType::Ms => (i % 1000) as u64,
                MetricType::S => i as u64,
            };
            // Infallible: writing into a Vec.
            let _ = writeln!(buf, "{}.{}:{}|{}", ty.code(), i, value, ty.code());
        }
        starts.push(buf.len());
        pools.push(Pool {
            ty,
            buf,
            starts,
            n,
            cursor: 0,
            lines: 0,
            datagrams: 0,
        });
    }
    pools
}

/// One planned datagram: which pool, where in it, how many lines.
#[derive(Clone, Copy)]
pub(crate) struct Planned {
    pool: usize,
    start: usize,
    pub(crate) lines: usize,
}

pub(crate) struct Generator {
    pub(crate) pools: Vec<Pool>,
    pub(crate) lines_per_datagram: usize,
    next_dgram: u64,
    pub(crate) remaining: u64,
    pub(crate) sent_lines: u64,
    pub(crate) sent_dgrams: u64,
    pub(crate) sent_bytes: u64,
}

impl Generator {
    /// `remaining` is the line budget (`u64::MAX` for "until the deadline").
    pub(crate) fn new(pools: Vec<Pool>, lines_per_datagram: usize, remaining: u64) -> Self {
        Generator {
            pools,
            lines_per_datagram,
            next_dgram: 0,
            remaining,
            sent_lines: 0,
            sent_dgrams: 0,
            sent_bytes: 0,
        }
    }

    /// Plans up to `max` datagrams without consuming them.
    pub(crate) fn plan(&self, max: usize, out: &mut Vec<Planned>) {
        out.clear();
        let nt = self.pools.len();
        let mut cursors: Vec<usize> = self.pools.iter().map(|p| p.cursor).collect();
        let mut remaining = self.remaining;
        for i in 0..max as u64 {
            if remaining == 0 {
                break;
            }
            let pool = ((self.next_dgram + i) % nt as u64) as usize;
            let k = (self.lines_per_datagram as u64).min(remaining) as usize;
            out.push(Planned {
                pool,
                start: cursors[pool],
                lines: k,
            });
            cursors[pool] = (cursors[pool] + k) % self.pools[pool].n;
            remaining -= k as u64;
        }
    }

    /// Records that `d` (the next planned datagram) was sent with its first
    /// `lines` lines (all of them, except for a TCP stream cut short).
    pub(crate) fn commit(&mut self, d: Planned, lines: usize, bytes: usize) {
        let p = &mut self.pools[d.pool];
        p.cursor = (d.start + d.lines) % p.n;
        p.lines += lines as u64;
        p.datagrams += 1;
        self.next_dgram += 1;
        self.remaining -= d.lines as u64;
        self.sent_lines += lines as u64;
        self.sent_dgrams += 1;
        self.sent_bytes += bytes as u64;
    }

    pub(crate) fn udp_bytes(&self, d: &Planned) -> &[u8] {
        let c = self.pools[d.pool].chunk(d.start, d.lines);
        // A datagram needs no trailing newline.
        &c[..c.len() - 1]
    }

    pub(crate) fn tcp_bytes(&self, d: &Planned) -> &[u8] {
        self.pools[d.pool].chunk(d.start, d.lines)
    }
}
