//! The shipped runit service (`contrib/runit/statsd`) rebuilt in a temp dir and
//! run under a real `runsv`, with `sv` to control it and svlogd to log it.
//!
//! The run script is the shipped one with only what a test must change: the
//! binary path, ports, flush interval, `-a` off (no NSCA daemon here), the
//! user `chpst` drops to (the `statsd` user exists only once the .deb is
//! installed), and a loopback-only bind. log/run is the shipped one writing
//! into the temp dir.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{read_lossy, require_binary, wait_for, GroupGuard, Statsd};

const SHIPPED_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/runit/statsd/run");
const SHIPPED_LOG_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/runit/statsd/log/run");

/// The shipped command line up to the flags: what SPEC section 2 requires.
const SHIPPED_PREFIX: [&str; 5] = ["exec", "chpst", "-u", "statsd", "/usr/sbin/statsd"];

/// What a test sets on the shipped command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// `-p`: UDP and TCP metrics port.
    pub port: u16,
    /// `--monitor-port`: XML-RPC port (default port+10 may be taken).
    pub monitor_port: u16,
    /// `--graphite-port`: carbon's line port (or a closed one).
    pub graphite_port: u16,
    /// `--flush-interval` in seconds, fractional allowed.
    pub flush_interval: String,
}

/// A service dir under a running `runsv`. Drop kills runsv, svlogd and the
/// daemon (one process group) whatever state the test left them in; declared
/// before `tmp` so they die before their dir is removed.
pub struct Service {
    /// The service dir given to runsv and sv.
    pub dir: PathBuf,
    /// Where svlogd writes `current`.
    pub log_dir: PathBuf,
    /// The daemon's exact argv after rewriting, for failure messages.
    pub command_line: String,
    /// What the command line was built from (the ports in use).
    pub opts: Options,
    _runsv: GroupGuard,
    tmp: tempfile::TempDir,
}

/// Whether this process runs as root (CI and the dev machines do).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The shipped run script with its backslash-continued `exec chpst` command
/// joined onto one line; the other lines as they are.
fn shipped_run_lines() -> (Vec<String>, usize) {
    let text = fs::read_to_string(SHIPPED_RUN).expect("read contrib/runit/statsd/run");
    let joined = text.replace("\\\n", " ");
    let lines: Vec<String> = joined.lines().map(str::to_string).collect();
    let idx = lines
        .iter()
        .position(|l| l.trim_start().starts_with("exec chpst"))
        .expect("shipped run script has an `exec chpst` line");
    (lines, idx)
}

/// The shipped daemon command line as whitespace-separated tokens.
pub fn shipped_command() -> Vec<String> {
    let (lines, idx) = shipped_run_lines();
    let line = &lines[idx];
    assert!(
        !line.contains(['"', '\'', '$']),
        "the exec line is expected to be plain words: {line}"
    );
    line.split_whitespace().map(str::to_string).collect()
}

/// Replaces the value after `flag`, which must be present.
fn set_flag(tokens: &mut [String], flag: &str, value: &str) {
    let i = tokens
        .iter()
        .position(|t| t == flag)
        .unwrap_or_else(|| panic!("shipped run script lacks {flag}: {tokens:?}"));
    tokens[i + 1] = value.to_string();
}

impl Service {
    /// Builds the service dir from the shipped scripts and starts `runsv` on it.
    /// Does not wait for the daemon: see [`Service::start_listening`].
    pub fn start(opts: &Options) -> Service {
        let runsv = require_binary("/usr/bin/runsv", "runit");
        require_binary("/usr/bin/sv", "runit");
        require_binary("/usr/bin/svlogd", "runit");
        require_binary("/usr/bin/chpst", "runit");

        let tmp = tempfile::Builder::new()
            .prefix("statsd-runit-")
            .tempdir()
            .expect("create runit temp dir");
        // log/run drops to the unprivileged log user, which must reach the log
        // dir inside this (0700 by default) temp dir.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let dir = tmp.path().join("statsd");
        let log_dir = tmp.path().join("log");
        fs::create_dir_all(dir.join("log")).expect("create service dir");

        // run: the shipped script, the exec line rewritten.
        let (mut lines, idx) = shipped_run_lines();
        let mut tokens = shipped_command();
        assert_eq!(
            &tokens[..SHIPPED_PREFIX.len()],
            &SHIPPED_PREFIX,
            "shipped run script must start the daemon as the seed did"
        );
        tokens[3] = current_user();
        tokens[4] = super::daemon::STATSD.to_string();
        let before = tokens.len();
        tokens.retain(|t| t != "-a");
        assert_eq!(before - 1, tokens.len(), "shipped run script has -a once");
        set_flag(&mut tokens, "-p", &opts.port.to_string());
        set_flag(&mut tokens, "--flush-interval", &opts.flush_interval);
        set_flag(
            &mut tokens,
            "--graphite-port",
            &opts.graphite_port.to_string(),
        );
        set_flag(&mut tokens, "--graphite-host", "127.0.0.1");
        tokens.extend(
            [
                "-n",
                "127.0.0.1",
                "--monitor-port",
                &opts.monitor_port.to_string(),
            ]
            .map(str::to_string),
        );
        let command_line = tokens.join(" ");
        lines[idx] = command_line.clone();
        write_exec(&dir.join("run"), &(lines.join("\n") + "\n"));

        // finish: runsv passes the daemon's exit code and signal, which is how
        // a test sees that the daemon exited 0 on `sv down`.
        write_exec(
            &dir.join("finish"),
            &format!(
                "#!/bin/sh\necho \"$1 $2\" >> {}\n",
                tmp.path().join("exits").display()
            ),
        );

        // log/run: the shipped script into our log dir.
        let mut log_run =
            fs::read_to_string(SHIPPED_LOG_RUN).expect("read contrib/runit/statsd/log/run");
        assert!(
            log_run.contains("LOGDIR=/var/log/statsd\n"),
            "shipped log/run sets LOGDIR=/var/log/statsd"
        );
        log_run = log_run.replace(
            "LOGDIR=/var/log/statsd\n",
            &format!("LOGDIR={}\n", log_dir.display()),
        );
        if !is_root() {
            // Only root can switch users; keep svlogd as ourselves.
            log_run = log_run.replace("chpst -u \"$LOGUSER\" ", "");
            log_run = log_run.replace("-o \"$LOGUSER\" ", "");
        }
        write_exec(&dir.join("log").join("run"), &log_run);

        let out = fs::File::create(tmp.path().join("runsv.out")).expect("create runsv.out");
        // runsv, svlogd, chpst and the daemon all stay in runsv's group.
        let runsv = GroupGuard::spawn(
            Command::new(runsv)
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("dup fd"))
                .stderr(out),
        )
        .expect("spawn runsv");
        Service {
            dir,
            log_dir,
            command_line,
            opts: opts.clone(),
            _runsv: runsv,
            tmp,
        }
    }

    /// Starts the service and waits for the daemon's start-up line. Ports are
    /// picked free but may be taken by another process before the daemon binds
    /// them; the daemon then exits non-zero, and this retries with new ports
    /// from `opts` (at most 3 times).
    pub fn start_listening(opts: impl Fn() -> Options, timeout: Duration) -> Service {
        let mut last = String::new();
        for _ in 0..3 {
            let svc = Service::start(&opts());
            let up = wait_for(
                timeout,
                "the daemon's start-up line or its exit",
                || {
                    if !svc.exits().is_empty() {
                        Some(false)
                    } else {
                        (svc.log().contains("listening") && svc.daemon_pid().is_some())
                            .then_some(true)
                    }
                },
                || svc.describe(),
            );
            if up {
                return svc;
            }
            last = svc.describe();
        }
        panic!("the daemon did not start under runsv in 3 tries; last:\n{last}");
    }

    /// Runs `sv ARGS... <dir>` and returns its stdout.
    pub fn sv(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/bin/sv")
            .args(args)
            .arg(&self.dir)
            .output()
            .expect("run sv");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sv status <dir>`, e.g. `run: /tmp/…/statsd: (pid 12) 3s; run: log: (pid 11) 3s`.
    pub fn status(&self) -> String {
        self.sv(&["status"])
    }

    /// The daemon's pid while `sv status` says it runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        let s = self.status();
        let rest = s.strip_prefix("run: ")?;
        let pid = rest.split("(pid ").nth(1)?.split(')').next()?;
        pid.parse().ok()
    }

    /// svlogd's `current` file: everything the daemon wrote on stdout/stderr.
    pub fn log(&self) -> String {
        read_lossy(&self.log_dir.join("current"))
    }

    /// One line per daemon exit: `"<exit code> <signal>"` as runsv passes them
    /// to ./finish (`-1` as exit code when a signal killed it).
    pub fn exits(&self) -> Vec<String> {
        read_lossy(&self.tmp.path().join("exits"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Everything useful when a test fails.
    pub fn describe(&self) -> String {
        format!(
            "command line: {}\nsv status: {}\nexits: {:?}\nsvlogd current:\n{}\nrunsv output:\n{}",
            self.command_line,
            self.status().trim(),
            self.exits(),
            self.log(),
            read_lossy(&self.tmp.path().join("runsv.out"))
        )
    }

    /// `sv down`, then waits until sv reports the daemon down and ./finish has
    /// recorded its exit; returns that exit line.
    pub fn down(&self, timeout: Duration) -> String {
        let before = self.exits().len();
        self.sv(&["down"]);
        wait_for(
            timeout,
            "the daemon down after `sv down`",
            || {
                let st = self.status();
                let exits = self.exits();
                (st.starts_with("down: ") && exits.len() > before).then(|| exits[before].clone())
            },
            || self.describe(),
        )
    }
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The daemon under runsv, on the ports its command line names.
impl Statsd for Service {
    fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.opts.port))
    }

    fn monitor_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.opts.monitor_port))
    }
}
