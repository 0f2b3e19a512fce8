//! Drops the kernel counted on the server's own UDP sockets.

/// The kernel's view of the server's UDP sockets, from /proc/net/udp and
/// udp6: drops are summed over the server's own sockets only (matched by
/// inode, not by port: another socket on the port is someone else's), and
/// such foreign sockets on the port are counted, since with SO_REUSEPORT
/// one of the same user would silently take a share of the datagrams.
#[derive(Debug, Clone)]
pub struct KernelView {
    /// `:PORT` as /proc writes it.
    port_hex: String,
    /// The server's sockets.
    inodes: Vec<u64>,
    /// Highest drop count read: the stat never goes down.
    drops: u64,
}

/// One reading of [`KernelView`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelReading {
    /// Datagrams the kernel dropped on the server's sockets, since start.
    pub drops: u64,
    /// Other processes' sockets on the server's port now.
    pub foreign_sockets: u64,
}

impl KernelView {
    /// Watches `sockets`, bound to `port`.
    pub fn new(port: u16, sockets: &[std::net::UdpSocket]) -> KernelView {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let inodes = sockets
            .iter()
            .filter_map(|s| std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd())).ok())
            .map(|m| m.ino())
            .collect();
        KernelView {
            port_hex: format!(":{port:04X}"),
            inodes,
            drops: 0,
        }
    }

    /// Reads /proc now; None where it is absent.
    pub fn read(&mut self) -> Option<KernelReading> {
        let mut found = false;
        let (mut drops, mut foreign) = (0, 0);
        for path in ["/proc/net/udp", "/proc/net/udp6"] {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            found = true;
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if !fields
                    .get(1)
                    .is_some_and(|local| local.ends_with(&self.port_hex))
                {
                    continue;
                }
                let inode = fields.get(9).and_then(|i| i.parse::<u64>().ok());
                match inode {
                    Some(inode) if self.inodes.contains(&inode) => {
                        drops += fields
                            .last()
                            .and_then(|d| d.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                    _ => foreign += 1,
                }
            }
        }
        found.then(|| {
            self.drops = self.drops.max(drops);
            KernelReading {
                drops: self.drops,
                foreign_sockets: foreign,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_our_sockets_and_sees_foreign_ones() {
        let ours = crate::net::udp::bind("127.0.0.1:0".parse().unwrap(), 1, 1, 1 << 16).unwrap();
        let port = ours[0].local_addr().unwrap().port();
        let mut view = KernelView::new(port, &ours);
        assert_eq!(view.read().map(|r| r.foreign_sockets), Some(0));
        // Another socket on the same port (another address): not ours.
        let other = std::net::UdpSocket::bind(("127.0.0.2", port));
        if let Ok(_other) = other {
            assert_eq!(view.read().map(|r| r.foreign_sockets), Some(1));
        }
    }
}
