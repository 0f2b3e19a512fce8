//! The real NSCA daemon for tests: Debian's `/usr/sbin/nsca`, run in the
//! foreground (`nsca -c CFG -f`) on a free loopback port, writing check results
//! to a regular command file in a temporary directory that the tests poll.
//!
//! [`NscaDaemon::start`] runs it single-process, as Debian's systemd unit does.
//! nsca 2.10 has a bug there: a packet it drops (wrong password or method)
//! leaves a read handler registered on the socket it closes, and when the next
//! connection is accepted on the same descriptor that stale handler blocks
//! reading it, so the client waits in vain for its init packet (about one run
//! in ten when the next check follows at once). Tests that send packets nsca
//! must drop use [`NscaDaemon::start_forking`] (`--daemon`, one child per
//! connection, as Debian's init script runs it) and [`NscaDaemon::wait_idle`].
//!
//! Needs Debian's `nsca` package (`apt-get install -y nsca`: /usr/sbin/nsca,
//! and its dependency libmcrypt4 for methods 2, 3, 14). Without it the tests
//! FAIL, on purpose: a missing daemon must not pass for a working client.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use statsd::alert::nsca::{Encryption, NscaClient, INIT_PACKET_LEN};

use super::free_port;

pub const NSCA: &str = "/usr/sbin/nsca";
/// How long we wait for the daemon to start or a check to land.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running nsca daemon; killed on drop.
pub struct NscaDaemon {
    /// The nsca process.
    child: Child,
    /// Its loopback TCP port.
    pub port: u16,
    /// Where it writes check results.
    pub command_file: PathBuf,
    /// Holds the config and command file; removed on drop.
    _dir: tempfile::TempDir,
}

/// One `PROCESS_SERVICE_CHECK_RESULT` line of the command file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The host name field.
    pub host: String,
    /// The service description field.
    pub service: String,
    /// The return code field (0 OK, 1 WARNING, 2 CRITICAL).
    pub code: i32,
    /// The plugin output.
    pub output: String,
}

impl CheckResult {
    /// Parses `[ts] PROCESS_SERVICE_CHECK_RESULT;host;service;code;output`.
    pub fn parse(line: &str) -> Option<CheckResult> {
        const MARK: &str = "] PROCESS_SERVICE_CHECK_RESULT;";
        let rest = &line[line.find(MARK)? + MARK.len()..];
        let mut fields = rest.splitn(4, ';');
        Some(CheckResult {
            host: fields.next()?.to_string(),
            service: fields.next()?.to_string(),
            code: fields.next()?.parse().ok()?,
            output: fields.next()?.to_string(),
        })
    }
}

/// True once the daemon answers a connection with a whole init packet.
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut init = [0u8; INIT_PACKET_LEN];
    s.read_exact(&mut init).is_ok()
}

impl NscaDaemon {
    /// Starts a single-process nsca decrypting with `method` and `password`;
    /// returns once it answers on its port.
    pub fn start(method: Encryption, password: &str) -> NscaDaemon {
        NscaDaemon::launch(method, password, false)
    }

    /// Like [`NscaDaemon::start`], but nsca forks a child per connection
    /// (`--daemon`), so a dropped packet cannot stall the next connection.
    pub fn start_forking(method: Encryption, password: &str) -> NscaDaemon {
        NscaDaemon::launch(method, password, true)
    }

    fn launch(method: Encryption, password: &str, forking: bool) -> NscaDaemon {
        assert!(
            Path::new(NSCA).exists(),
            "{NSCA} not found: these tests need the real NSCA daemon, from Debian's \
             `nsca` package (apt-get install -y nsca)"
        );
        // The port may be taken between our probe and nsca's bind: retry a few times.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let command_file = dir.path().join("nagios.cmd");
            std::fs::write(&command_file, "").expect("create command file");
            let cfg = dir.path().join("nsca.cfg");
            // A regular command file with append_to_file=1: nsca appends each
            // result and closes it (aggregate_writes=0), so polling sees it.
            let text = format!(
                "server_address=127.0.0.1\nserver_port={port}\ncommand_file={cmd}\n\
                 alternate_dump_file={dump}\nappend_to_file=1\naggregate_writes=0\n\
                 password={password}\ndecryption_method={method}\nmax_packet_age=30\ndebug=1\n",
                cmd = command_file.display(),
                dump = dir.path().join("nsca.dump").display(),
                method = method.method_number(),
            );
            std::fs::write(&cfg, text).expect("write nsca.cfg");
            let child = Command::new(NSCA)
                .arg("-c")
                .arg(&cfg)
                .arg("-f")
                .args(forking.then_some("--daemon"))
                // Its own process group, so dropping it also ends the
                // children of a forking daemon.
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {NSCA}: {e}"));
            let mut daemon = NscaDaemon {
                child,
                port,
                command_file,
                _dir: dir,
            };
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = daemon.child.try_wait() {
                    break; // exited: most likely the port was taken; try another
                }
                if answers(port) {
                    return daemon;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Dropping `daemon` kills and reaps it.
        }
        panic!("{NSCA} did not start listening within {PATIENCE:?} (5 attempts)");
    }

    /// A library client for this daemon.
    pub fn client(&self, method: Encryption, password: &str) -> NscaClient {
        let mut c = NscaClient::new("127.0.0.1", self.port);
        c.encryption = method;
        c.password = password.as_bytes().to_vec();
        c.timeout = Duration::from_secs(5);
        c
    }

    /// The command file as it is now.
    pub fn contents(&self) -> String {
        std::fs::read_to_string(&self.command_file).unwrap_or_default()
    }

    /// Every check result written so far, oldest first.
    pub fn checks(&self) -> Vec<CheckResult> {
        self.contents()
            .lines()
            .filter_map(CheckResult::parse)
            .collect()
    }

    /// Polls the command file until a line ends with `suffix`; returns it.
    pub async fn wait_for_line(&self, suffix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.contents();
            if let Some(line) = text.lines().find(|l| l.ends_with(suffix)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line ending with {suffix:?} within {PATIENCE:?}; command file has:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Blocks (bounded by `within`) until a check at index `from` or later
    /// satisfies `wanted`; returns its index and the check.
    pub fn wait_for_check(
        &self,
        from: usize,
        within: Duration,
        what: &str,
        wanted: impl Fn(&CheckResult) -> bool,
    ) -> (usize, CheckResult) {
        let deadline = Instant::now() + within;
        loop {
            let checks = self.checks();
            if let Some((i, c)) = checks
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, c)| wanted(c))
            {
                return (i, c.clone());
            }
            assert!(
                Instant::now() < deadline,
                "no check {what} (from index {from}) within {within:?}; command file has:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl NscaDaemon {
    /// Live (not zombie) processes whose parent is the daemon: with
    /// `--daemon`, the connections it is still handling.
    fn busy_children(&self) -> usize {
        let pid = self.child.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces and parens.
                let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                    return false;
                };
                let mut fields = after.split_whitespace();
                let state = fields.next();
                let ppid = fields.next();
                ppid == Some(pid.as_str()) && state != Some("Z")
            })
            .count()
    }

    /// With `--daemon`: waits (bounded) until every connection accepted so
    /// far has been judged, i.e. no child is left. A check that has not
    /// reached the command file by then never will.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + PATIENCE;
        while self.busy_children() > 0 {
            assert!(
                Instant::now() < deadline,
                "nsca still handles connections after {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NscaDaemon {
    fn drop(&mut self) {
        // While the daemon lives its pid is the id of the process group we
        // made for it: end the whole group, connection children included.
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own process group; no memory involved.
            unsafe {
                libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
