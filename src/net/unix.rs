//! The Unix datagram socket input (`--unix-socket PATH`, DogStatsD's
//! `socket_path`): the socket file is created at start, a stale one (left
//! by a server that died) is replaced, anything else at PATH refuses the
//! start; the file is removed at exit if it is still ours. Datagrams go
//! through the UDP worker ([`super::udp::worker`]) with a shard of their own.

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::stats::Counter;

/// Longest socket path the kernel takes (`sun_path` is 108 bytes, NUL included).
pub const MAX_PATH_BYTES: usize = 107;

/// Where and how to create the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSettings {
    /// The socket file.
    pub path: PathBuf,
    /// Permission bits set on it; `None` leaves what the umask gave.
    pub mode: Option<u32>,
}

/// A start refused because of the socket path: said as it is, not as a port.
#[derive(Debug)]
pub struct UnixSocketError(pub String);

impl fmt::Display for UnixSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnixSocketError {}

fn refused(path: &Path, why: impl fmt::Display) -> io::Error {
    io::Error::other(UnixSocketError(format!(
        "--unix-socket {}: {why}",
        path.display()
    )))
}

/// What the Unix input counts, since start (`unix.*` keys).
#[derive(Debug, Default)]
pub struct UnixStats {
    /// Datagrams received.
    pub packets: Counter,
    /// Their bytes.
    pub bytes: Counter,
    /// Datagrams longer than the receive buffer: their cut last line is
    /// discarded (and counted as `cut_off`), the lines before it kept.
    pub truncated: Counter,
}

/// The bound socket and the file it owns.
#[derive(Debug)]
pub struct UnixInput {
    /// The socket; the receive worker takes it.
    pub socket: UnixDatagram,
    /// Removes the file at exit.
    pub file: SocketFile,
}

/// The socket file this server created; removed on drop unless something
/// else has replaced it meanwhile (same device and inode, or left alone).
#[derive(Debug)]
pub struct SocketFile {
    /// Where it is.
    path: PathBuf,
    /// Its device and inode when created.
    id: Option<(u64, u64)>,
}

impl SocketFile {
    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let still_ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| Some((m.dev(), m.ino())) == self.id);
        if still_ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates the socket: replaces a stale socket file at the path (nobody
/// answers on it), refuses a live one or any other kind of file.
pub fn bind(settings: &UnixSettings) -> io::Result<UnixInput> {
    let path = &settings.path;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match probe(path) {
            Probe::Stale => std::fs::remove_file(path)
                .map_err(|e| refused(path, format_args!("cannot remove the stale socket: {e}")))?,
            Probe::Live => return Err(refused(path, "a process is receiving on it")),
            Probe::Unknown(e) => return Err(refused(path, format_args!("exists ({e})"))),
        },
        Ok(_) => return Err(refused(path, "exists and is not a socket")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(refused(path, e)),
    }
    let socket = UnixDatagram::bind(path).map_err(|e| refused(path, e))?;
    let id = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let file = SocketFile {
        path: path.clone(),
        id,
    };
    if let Some(mode) = settings.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| refused(path, format_args!("cannot set mode {mode:o}: {e}")))?;
    }
    Ok(UnixInput { socket, file })
}

/// What is behind an existing socket file.
enum Probe {
    /// Nobody receives on it: left over by a server that died.
    Stale,
    /// Someone receives on it.
    Live,
    /// Cannot tell (no permission, ...): leave it alone.
    Unknown(io::Error),
}

fn probe(path: &Path) -> Probe {
    let probe = match UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(e) => return Probe::Unknown(e),
    };
    match probe.connect(path) {
        Ok(()) => Probe::Live,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Probe::Stale,
        Err(e) => Probe::Unknown(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(path: &Path) -> UnixSettings {
        UnixSettings {
            path: path.to_path_buf(),
            mode: Some(0o620),
        }
    }

    #[test]
    fn creates_sets_mode_and_removes_at_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("statsd.sock");
        let input = bind(&settings(&path)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o620);
        drop(input);
        assert!(!path.exists());
    }

    #[test]
    fn replaces_a_stale_socket_refuses_a_live_one_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("statsd.sock");
        let live = UnixDatagram::bind(&path).unwrap();
        let error = bind(&settings(&path)).unwrap_err().to_string();
        assert!(error.contains("a process is receiving"), "{error}");
        drop(live); // The file stays: a stale socket.
        assert!(path.exists());
        let input = bind(&settings(&path)).unwrap();
        drop(input);

        std::fs::write(&path, b"data").unwrap();
        let error = bind(&settings(&path)).unwrap_err().to_string();
        assert!(error.contains("not a socket"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data", "left alone");
    }

    #[test]
    fn a_replaced_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("statsd.sock");
        let input = bind(&settings(&path)).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(input);
        assert!(path.exists());
    }
}
