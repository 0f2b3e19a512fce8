//! Alert mode (`-a`, SPEC section 7) end to end: the real `statsd` binary
//! sends its passive checks to the real NSCA daemon (Debian's
//! `/usr/sbin/nsca`; a missing daemon FAILS these tests), while a TCP listener
//! stands in for carbon.
//!
//! Every process is killed on drop, every port is a free loopback port, and
//! every wait polls with a bound.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::nsca::{CheckResult, NscaDaemon};
use common::{closed_port, value_of, Daemon, FakeCarbon, WAIT};
use statsd::alert::nsca::Encryption;
use statsd::alert::CheckStatus;

/// Longer than 8 bytes, so 3DES keys 2 and 3 differ and it is not plain DES.
const PASSWORD: &str = "statsd to nagios, 32 bytes long!";
/// The host name most tests report as.
const HOST: &str = "testhost";

/// The flags of the brief: checks every 0.5 s, flushes every 0.2 s.
fn alert_args(nsca_port: u16, carbon_port: u16, host: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "0",
        "-a",
        "--alert-interval",
        "0.5",
        "--flush-interval",
        "0.2",
        "--nsca-host",
        "127.0.0.1",
        "--nsca-port",
        &nsca_port.to_string(),
        "--graphite-host",
        "127.0.0.1",
        "--graphite-port",
        &carbon_port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(host) = host {
        args.extend(["--nsca-hostname".to_string(), host.to_string()]);
    }
    args
}

fn with(mut args: Vec<String>, extra: &[&str]) -> Vec<String> {
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start(args: &[String]) -> Daemon {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start(&args)
}

/// Writes a send_nsca.cfg in `dir`.
fn send_nsca_cfg(dir: &Path, password: &str, method: Encryption) -> PathBuf {
    let path = dir.join("send_nsca.cfg");
    std::fs::write(
        &path,
        format!(
            "# send_nsca.cfg written by alert_blackbox\n\
             password={password}\n\
             encryption_method={}\n",
            method.method_number()
        ),
    )
    .expect("write send_nsca.cfg");
    path
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// An OK check that reports a publish (not "nothing published yet").
fn is_ok_after_publish(c: &CheckResult) -> bool {
    c.code == CheckStatus::Ok as i32
        && c.output.starts_with("OK: ")
        && c.output.contains(" lines last published in ")
}

/// Checks `... N lines last published in D.DDDs at YYYY-MM-DDTHH:MM:SSZ` at
/// the end of a check's text and returns N.
fn published_lines(output: &str) -> u64 {
    let (head, tail) = output
        .split_once(" lines last published in ")
        .unwrap_or_else(|| panic!("no 'lines last published' in {output:?}"));
    let lines = head
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line count in {output:?}"));
    let (duration, at) = tail
        .split_once("s at ")
        .unwrap_or_else(|| panic!("no duration in {output:?}"));
    let (whole, millis) = duration
        .split_once('.')
        .unwrap_or_else(|| panic!("duration {duration:?} in {output:?}"));
    assert!(
        whole.parse::<u64>().is_ok() && millis.len() == 3 && millis.parse::<u32>().is_ok(),
        "duration {duration:?} in {output:?}"
    );
    let shape: String = at
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99Z", "time {at:?} in {output:?}");
    lines
}

/// Reads carbon flush by flush until one satisfies `wanted`; returns it.
fn wait_flush(carbon: &FakeCarbon, what: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "carbon got no flush where {what} within {WAIT:?}"
        );
        let flush = carbon.until(".numStats ");
        if wanted(&flush) {
            return flush;
        }
    }
}

/// Everything the daemon wrote on stderr so far (without waiting).
fn drain(lines: &Receiver<String>) -> Vec<String> {
    lines.try_iter().collect()
}

/// nsca with `method`, statsd configured by a send_nsca.cfg file: OK checks
/// arrive while carbon takes the flushes, and their text names the lines of a
/// publish carbon really got.
fn ok_checks_arrive_with_cfg_file(method: Encryption) {
    let nsca = NscaDaemon::start(method, PASSWORD);
    let carbon = FakeCarbon::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = send_nsca_cfg(dir.path(), PASSWORD, method);
    let mut statsd = start(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &["--nsca-config", path_arg(&cfg)],
    ));
    let (first, check) = nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);
    assert_eq!(
        (check.host.as_str(), check.service.as_str()),
        (HOST, "statsd")
    );
    let lines = published_lines(&check.output);
    // No metrics are sent, so every flush has the same number of lines; a
    // publish carries one flush, or a few if the publisher was behind.
    let flush = carbon.flush_with("statsd.numStats ");
    let per_flush = value_of(&flush, "statsd.numStats").expect("numStats") as u64;
    assert_eq!(per_flush as usize, flush.len());
    assert!(
        lines > 0 && lines.is_multiple_of(per_flush),
        "{method}: {lines} lines published, flushes have {per_flush}: {}",
        check.output
    );
    // Later checks arrive too, and while carbon is fine every check is OK.
    nsca.wait_for_check(first + 1, WAIT, "a second OK", is_ok_after_publish);
    for c in nsca.checks() {
        assert_eq!(c.code, 0, "{method}: carbon is up, yet {c:?}");
        assert_eq!((c.host.as_str(), c.service.as_str()), (HOST, "statsd"));
    }
    assert!(
        !drain(&statsd.stderr).iter().any(|l| l.contains("NSCA")),
        "no NSCA errors"
    );
    assert_eq!(
        statsd.terminate(),
        0,
        "-a does not stand in the way of SIGTERM"
    );
}

#[test]
fn ok_check_arrives_with_cfg_file_method_0_none() {
    ok_checks_arrive_with_cfg_file(Encryption::None);
}

#[test]
fn ok_check_arrives_with_cfg_file_method_1_xor() {
    ok_checks_arrive_with_cfg_file(Encryption::Xor);
}

#[test]
fn ok_check_arrives_with_cfg_file_method_2_des() {
    ok_checks_arrive_with_cfg_file(Encryption::Des);
}

#[test]
fn ok_check_arrives_with_cfg_file_method_3_3des() {
    ok_checks_arrive_with_cfg_file(Encryption::TripleDes);
}

#[test]
fn ok_check_arrives_with_cfg_file_method_14_rijndael128() {
    ok_checks_arrive_with_cfg_file(Encryption::Rijndael128);
}

/// `--nsca-password` and `--nsca-encryption`, no file.
#[test]
fn ok_check_arrives_with_password_and_encryption_flags() {
    let nsca = NscaDaemon::start(Encryption::Rijndael128, PASSWORD);
    let carbon = FakeCarbon::start();
    let _statsd = start(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &["--nsca-password", PASSWORD, "--nsca-encryption", "14"],
    ));
    let (_, check) = nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);
    assert_eq!(
        (check.host.as_str(), check.service.as_str()),
        (HOST, "statsd")
    );
    published_lines(&check.output);
}

/// The flags override what the file says (here a wrong password and method).
#[test]
fn flags_override_the_cfg_file() {
    let nsca = NscaDaemon::start(Encryption::TripleDes, PASSWORD);
    let carbon = FakeCarbon::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = send_nsca_cfg(dir.path(), "not the password", Encryption::Xor);
    let _statsd = start(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &[
            "--nsca-config",
            path_arg(&cfg),
            "--nsca-password",
            PASSWORD,
            "--nsca-encryption",
            "3",
        ],
    ));
    nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);
}

/// `--nsca-host` is resolved: `localhost` (the default) reaches an nsca that
/// listens on 127.0.0.1 only, even where it resolves to ::1 first.
#[test]
fn nsca_host_name_is_resolved() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let carbon = FakeCarbon::start();
    let args: Vec<String> = alert_args(nsca.port, carbon.port, Some(HOST))
        .into_iter()
        .map(|a| {
            if a == "127.0.0.1" {
                "localhost".into()
            } else {
                a
            }
        })
        .collect();
    let _statsd = start(&with(args, &["--nsca-password", PASSWORD]));
    nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);
}

/// The service is the metadata prefix unless `--nsca-service` names it.
#[test]
fn service_is_metadata_prefix_or_nsca_service() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let carbon_a = FakeCarbon::start();
    let carbon_b = FakeCarbon::start();
    let _by_prefix = start(&with(
        alert_args(nsca.port, carbon_a.port, Some("prefixhost")),
        &[
            "--nsca-password",
            PASSWORD,
            "--metadata-prefix",
            "statsd.my_prefix",
        ],
    ));
    let _by_flag = start(&with(
        alert_args(nsca.port, carbon_b.port, Some("svchost")),
        &[
            "--nsca-password",
            PASSWORD,
            "--nsca-service",
            "StatsD on web-01",
        ],
    ));
    let (_, a) = nsca.wait_for_check(0, WAIT, "from prefixhost", |c| {
        c.host == "prefixhost" && is_ok_after_publish(c)
    });
    assert_eq!(a.service, "statsd.my_prefix");
    let flush = carbon_a.flush_with("statsd.my_prefix.numStats ");
    let per_flush = value_of(&flush, "statsd.my_prefix.numStats").expect("numStats") as u64;
    assert!(
        published_lines(&a.output).is_multiple_of(per_flush),
        "{}",
        a.output
    );
    let (_, b) = nsca.wait_for_check(0, WAIT, "from svchost", |c| {
        c.host == "svchost" && is_ok_after_publish(c)
    });
    assert_eq!(b.service, "StatsD on web-01");
}

/// Without `--nsca-hostname` the check names this machine.
#[test]
fn host_defaults_to_machine_name() {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read /proc/sys/kernel/hostname")
        .trim()
        .to_string();
    assert!(!machine.is_empty());
    // The packet's host field holds 63 bytes.
    let expected = &machine[..machine.len().min(63)];
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let carbon = FakeCarbon::start();
    let _statsd = start(&with(
        alert_args(nsca.port, carbon.port, None),
        &["--nsca-password", PASSWORD],
    ));
    let (_, check) = nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);
    assert_eq!(check.host, expected);
    assert_eq!(check.service, "statsd");
}

/// Carbon never answers: every publish fails, and the check says CRITICAL.
#[test]
fn critical_when_carbon_is_unreachable() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let statsd = start(&with(
        alert_args(nsca.port, closed_port(), Some(HOST)),
        &["--nsca-password", PASSWORD],
    ));
    let (_, check) = nsca.wait_for_check(0, WAIT, "CRITICAL", |c| c.code == 2);
    assert_eq!(
        (check.host.as_str(), check.service.as_str()),
        (HOST, "statsd")
    );
    let failed: u64 = check
        .output
        .strip_prefix("CRITICAL: all ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{:?}", check.output));
    assert!(failed >= 1, "{}", check.output);
    assert!(
        check
            .output
            .ends_with(" publish attempts failed; nothing published yet"),
        "{}",
        check.output
    );
    // Nothing ever succeeded, so no check may claim a publish (a window with
    // no flush at all is "OK: nothing published yet", which a loaded machine
    // might produce).
    for c in nsca.checks() {
        assert!(
            c.code == 2 || c.output == "OK: nothing published yet",
            "{c:?}"
        );
    }
    statsd.wait_stderr("publish to 127.0.0.1:");
}

/// A carbon on a fixed port that the test takes down and brings back up.
struct SwitchableCarbon {
    port: u16,
    lines: Receiver<String>,
    /// What the test wants.
    want_up: Arc<AtomicBool>,
    /// What the listener thread has done.
    is_up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SwitchableCarbon {
    fn start() -> SwitchableCarbon {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind carbon");
        let port = first.local_addr().expect("addr").port();
        let (tx, lines) = channel();
        let want_up = Arc::new(AtomicBool::new(true));
        let is_up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (want, is, halt) = (want_up.clone(), is_up.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            first.set_nonblocking(true).expect("nonblocking");
            let mut listener = Some(first);
            while !halt.load(Ordering::SeqCst) {
                match (want.load(Ordering::SeqCst), listener.is_some()) {
                    // std sets SO_REUSEADDR, so the port binds again at once.
                    (true, false) => {
                        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                            l.set_nonblocking(true).expect("nonblocking");
                            listener = Some(l);
                        }
                    }
                    (false, true) => listener = None,
                    _ => {}
                }
                is.store(listener.is_some(), Ordering::SeqCst);
                if let Some(l) = &listener {
                    while let Ok((stream, _)) = l.accept() {
                        let _ = stream.set_nonblocking(false);
                        let tx = tx.clone();
                        std::thread::spawn(move || {
                            for line in BufReader::new(stream).lines() {
                                let Ok(line) = line else { break };
                                if tx.send(line).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        SwitchableCarbon {
            port,
            lines,
            want_up,
            is_up,
            stop,
            thread: Some(thread),
        }
    }

    /// Opens or closes the port and waits (bounded) until it is done.
    fn set_up(&self, up: bool) {
        self.want_up.store(up, Ordering::SeqCst);
        let deadline = Instant::now() + WAIT;
        while self.is_up.load(Ordering::SeqCst) != up {
            assert!(
                Instant::now() < deadline,
                "carbon port {} not {} within {WAIT:?}",
                self.port,
                if up { "reopened" } else { "closed" }
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SwitchableCarbon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// OK while carbon takes flushes, CRITICAL once it is gone, OK again when it
/// is back (and the flushes kept meanwhile reach it).
#[test]
fn ok_then_critical_then_ok_as_carbon_goes_and_comes_back() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let carbon = SwitchableCarbon::start();
    let _statsd = start(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &["--nsca-password", PASSWORD],
    ));
    let (ok, _) = nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);

    carbon.set_up(false);
    let (critical, check) = nsca.wait_for_check(ok + 1, WAIT, "CRITICAL", |c| c.code == 2);
    assert!(
        check.output.starts_with("CRITICAL: all ")
            && check.output.contains(" publish attempts failed; "),
        "{}",
        check.output
    );
    // The last good publish is still what the text reports.
    published_lines(&check.output);

    let _ = drain(&carbon.lines);
    carbon.set_up(true);
    nsca.wait_for_check(critical + 1, WAIT, "OK again", is_ok_after_publish);
    // What carbon gets now was flushed after failures were counted.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = carbon
            .lines
            .recv_timeout(left)
            .expect("carbon gets flushes again");
        if let Some(rest) = line.strip_prefix("statsd.publish_error.socket ") {
            let errors: f64 = rest.split(' ').next().unwrap().parse().unwrap();
            if errors >= 1.0 {
                break;
            }
        }
    }
}

/// A window in which some publishes fail and some succeed is a WARNING. The
/// carbon port is closed and reopened every 0.3 s (flushes come every 0.2 s)
/// until nsca has one.
#[test]
fn warning_when_some_publishes_fail() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let carbon = SwitchableCarbon::start();
    let _statsd = start(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &["--nsca-password", PASSWORD],
    ));
    let deadline = Instant::now() + WAIT;
    let mut up = true;
    let warning = loop {
        if let Some(c) = nsca.checks().into_iter().find(|c| c.code == 1) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no WARNING within {WAIT:?}; command file has:\n{}",
            nsca.contents()
        );
        up = !up;
        carbon.set_up(up);
        let _ = drain(&carbon.lines);
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        (warning.host.as_str(), warning.service.as_str()),
        (HOST, "statsd")
    );
    // "WARNING: F of T publish attempts failed; N lines last published in ..."
    let counts = warning
        .output
        .strip_prefix("WARNING: ")
        .and_then(|rest| rest.split_once(" publish attempts failed; "))
        .unwrap_or_else(|| panic!("{}", warning.output));
    let (failed, total) = counts
        .0
        .split_once(" of ")
        .unwrap_or_else(|| panic!("{}", warning.output));
    let (failed, total): (u64, u64) = (failed.parse().unwrap(), total.parse().unwrap());
    assert!(0 < failed && failed < total, "{}", warning.output);
    published_lines(&warning.output);
}

/// nsca drops checks sealed with the wrong password; statsd cannot know
/// (NSCA never answers), counts them as sent, and goes on flushing. (A forking
/// nsca: a single-process one can stall the connection after a dropped packet;
/// see common/nsca.rs.)
#[test]
fn wrong_password_checks_never_arrive_and_flushing_goes_on() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for method in [Encryption::Xor, Encryption::Rijndael128] {
        let nsca = NscaDaemon::start_forking(method, PASSWORD);
        let carbon = FakeCarbon::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = send_nsca_cfg(dir.path(), "not the password nsca knows", method);
        let mut statsd = start(&with(
            alert_args(nsca.port, carbon.port, Some(HOST)),
            &["--nsca-config", path_arg(&cfg)],
        ));
        // statsd handed over three checks: a few alert intervals went by.
        let sent = |f: &[String]| value_of(f, "statsd.alert.sent").unwrap_or(0.0);
        let flush = wait_flush(&carbon, "alert.sent >= 3", |f| sent(f) >= 3.0);
        assert_eq!(value_of(&flush, "statsd.alert.errors"), Some(0.0));
        // The daemon is fine: a check with the right password lands.
        runtime
            .block_on(nsca.client(method, PASSWORD).send_check(
                "control",
                "control",
                CheckStatus::Ok,
                "right password",
            ))
            .expect("control check");
        nsca.wait_for_check(0, WAIT, "control", |c| c.host == "control");
        // statsd keeps flushing (and sending) while nsca keeps dropping.
        let before = sent(&flush);
        let later = wait_flush(&carbon, "two more checks sent", |f| sent(f) >= before + 2.0);
        assert_eq!(value_of(&later, "statsd.alert.errors"), Some(0.0));
        assert!(
            !drain(&statsd.stderr).iter().any(|l| l.contains("NSCA")),
            "statsd saw no NSCA error"
        );
        // Once statsd is gone and nsca has judged every connection, only the
        // control check is there.
        assert_eq!(statsd.terminate(), 0);
        nsca.wait_idle();
        assert_eq!(
            nsca.checks().len(),
            1,
            "{method}: only the control check:\n{}",
            nsca.contents()
        );
        assert!(!nsca.contents().contains(HOST), "{}", nsca.contents());
    }
}

/// Nobody listens on the NSCA port: each failed check goes to stderr and to
/// `alert.errors`, and metrics keep flowing to carbon.
#[test]
fn unreachable_nsca_is_reported_counted_and_harmless() {
    let nsca_port = closed_port();
    let carbon = FakeCarbon::start();
    let mut statsd = start(&alert_args(nsca_port, carbon.port, Some(HOST)));
    let line = statsd.wait_stderr("NSCA check");
    assert!(line.contains("failed"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{nsca_port}")), "{line}");
    let flush = wait_flush(&carbon, "alert.errors >= 1", |f| {
        value_of(f, "statsd.alert.errors").unwrap_or(0.0) >= 1.0
    });
    assert_eq!(value_of(&flush, "statsd.alert.sent"), Some(0.0));
    statsd.send_udp(b"still.flowing:1|c\n");
    let flush = carbon.flush_with("stats.still.flowing ");
    assert_eq!(value_of(&flush, "stats.still.flowing"), Some(5.0));
    assert!(value_of(&flush, "statsd.alert.errors").unwrap() >= 1.0);
    assert_eq!(value_of(&flush, "statsd.flush_errors"), Some(0.0));
    assert_eq!(statsd.terminate(), 0);
}

/// The child process, killed on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs statsd, expecting it to exit by itself (bounded); returns its exit
/// code and stderr.
fn run_to_exit(args: &[String]) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_statsd"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start statsd");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "statsd {args:?} still runs after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

fn assert_refused(args: &[String], needles: &[&str]) {
    let (code, stderr) = run_to_exit(args);
    assert!(
        code.is_some_and(|c| c != 0),
        "{args:?}: exit {code:?}, stderr {stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
    assert!(stderr.starts_with("statsd: "), "{stderr:?}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} in {stderr:?}"
        );
    }
}

#[test]
fn unsupported_encryption_refuses_to_start() {
    // The port is never used: statsd must stop before it sends anything.
    let base = || alert_args(closed_port(), closed_port(), Some(HOST));
    for method in ["8", "4", "blowfish"] {
        assert_refused(
            &with(base(), &["--nsca-encryption", method]),
            &["unsupported NSCA encryption method", method],
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("send_nsca.cfg");
    std::fs::write(&cfg, "password=x\nencryption_method=8\n").expect("write cfg");
    assert_refused(
        &with(base(), &["--nsca-config", path_arg(&cfg)]),
        &["line 2", "unsupported NSCA encryption method"],
    );
}

#[test]
fn unreadable_nsca_config_refuses_to_start() {
    let base = || alert_args(closed_port(), closed_port(), Some(HOST));
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-send_nsca.cfg");
    assert_refused(
        &with(base(), &["--nsca-config", path_arg(&missing)]),
        &[path_arg(&missing)],
    );
    // A directory cannot be read as a file.
    assert_refused(
        &with(base(), &["--nsca-config", path_arg(dir.path())]),
        &[path_arg(dir.path())],
    );
    let garbage = dir.path().join("garbage.cfg");
    std::fs::write(&garbage, "this is not a send_nsca.cfg\n").expect("write cfg");
    assert_refused(
        &with(base(), &["--nsca-config", path_arg(&garbage)]),
        &["line 1"],
    );
}
