//! Alert mode (`-a`, SPEC section 7) end to end: statsd sends its passive
//! checks to the real NSCA daemon (Debian's `/usr/sbin/nsca`; a missing
//! daemon FAILS these tests), while a fake carbon takes the flushes.
//!
//! The server runs in process (`server::run`, the same flags parsed the same
//! way); the real binary where the test is about the process: SIGTERM and the
//! exit code with `-a` on, what it writes on stderr, and the flags that must
//! stop it from starting. Those come last.
//!
//! Every process is killed on drop, every port is a free loopback port, and
//! every wait polls with a bound.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use statsd::alert::nsca::Encryption;
use statsd::alert::CheckStatus;
use support::carbon::{value_of, FakeCarbon};
use support::daemon::{run_statsd, Daemon};
use support::istats::stat;
use support::nsca::{CheckResult, NscaDaemon};
use support::server::Server;
use support::{free_port, Statsd, WAIT};

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

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The server in process with these flags.
fn start(args: &[String]) -> Server {
    Server::start(&strs(args))
}

/// The binary with these flags.
fn daemon(args: &[String]) -> Daemon {
    Daemon::start(&strs(args))
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

/// nsca with `method`, statsd configured by a send_nsca.cfg file: OK checks
/// arrive while carbon takes the flushes, and their text names the lines of a
/// publish carbon really got.
fn ok_checks_arrive_with_cfg_file(method: Encryption) {
    let nsca = NscaDaemon::start(method, PASSWORD);
    let carbon = FakeCarbon::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = send_nsca_cfg(dir.path(), PASSWORD, method);
    let statsd = start(&with(
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
    // Every failed check is counted (and logged: see the binary's test).
    let stats = statsd.istats();
    assert_eq!(stat(&stats, "alert.errors"), 0, "no NSCA errors: {stats}");
    // -a does not stand in the way of shutdown.
    statsd.stop();
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
        alert_args(nsca.port, free_port(), Some(HOST)),
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
    // The publish failures were counted (their stderr line, naming carbon,
    // is checked on the binary in faults.rs).
    let stats = statsd.istats();
    assert!(
        stat(&stats, "publish_error.socket") + stat(&stats, "publish_error.unknown") >= failed,
        "{stats}"
    );
    statsd.stop();
}

/// OK while carbon takes flushes, CRITICAL once it is gone, OK again when it
/// is back (and the flushes kept meanwhile reach it).
#[test]
fn ok_then_critical_then_ok_as_carbon_goes_and_comes_back() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let mut carbon = FakeCarbon::start();
    let _statsd = start(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &["--nsca-password", PASSWORD],
    ));
    let (ok, _) = nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);

    carbon.go_down();
    let (critical, check) = nsca.wait_for_check(ok + 1, WAIT, "CRITICAL", |c| c.code == 2);
    assert!(
        check.output.starts_with("CRITICAL: all ")
            && check.output.contains(" publish attempts failed; "),
        "{}",
        check.output
    );
    // The last good publish is still what the text reports.
    published_lines(&check.output);

    let _ = carbon.drain();
    carbon.up();
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
    let mut carbon = FakeCarbon::start();
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
        if up {
            carbon.up();
        } else {
            carbon.go_down();
        }
        let _ = carbon.drain();
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
/// see support/nsca.rs.)
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
        let statsd = start(&with(
            alert_args(nsca.port, carbon.port, Some(HOST)),
            &["--nsca-config", path_arg(&cfg)],
        ));
        // statsd handed over three checks: a few alert intervals went by.
        let sent = |f: &[String]| value_of(f, "statsd.alert.sent").unwrap_or(0.0);
        let flush = carbon.flush_where("alert.sent >= 3", |f| sent(f) >= 3.0);
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
        let later = carbon.flush_where("two more checks sent", |f| sent(f) >= before + 2.0);
        assert_eq!(value_of(&later, "statsd.alert.errors"), Some(0.0));
        let stats = statsd.istats();
        assert_eq!(
            stat(&stats, "alert.errors"),
            0,
            "statsd saw no NSCA error: {stats}"
        );
        // Once statsd is gone and nsca has judged every connection, only the
        // control check is there.
        statsd.stop();
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

// The binary.

/// With `-a` the process still stops on SIGTERM with exit code 0, and
/// writes no NSCA error while nsca takes its checks.
#[test]
fn alert_mode_reports_ok_and_exits_zero_on_sigterm() {
    let nsca = NscaDaemon::start(Encryption::Xor, PASSWORD);
    let carbon = FakeCarbon::start();
    let mut statsd = daemon(&with(
        alert_args(nsca.port, carbon.port, Some(HOST)),
        &["--nsca-password", PASSWORD],
    ));
    let (first, _) = nsca.wait_for_check(0, WAIT, "OK after a publish", is_ok_after_publish);
    nsca.wait_for_check(first + 1, WAIT, "a second OK", is_ok_after_publish);
    assert!(
        !statsd.stderr_so_far().iter().any(|l| l.contains("NSCA")),
        "no NSCA errors"
    );
    assert_eq!(
        statsd.terminate(),
        0,
        "-a does not stand in the way of SIGTERM"
    );
}

/// Nobody listens on the NSCA port: each failed check goes to stderr and to
/// `alert.errors`, and metrics keep flowing to carbon.
#[test]
fn unreachable_nsca_is_reported_counted_and_harmless() {
    let nsca_port = free_port();
    let carbon = FakeCarbon::start();
    let mut statsd = daemon(&alert_args(nsca_port, carbon.port, Some(HOST)));
    let line = statsd.wait_stderr("NSCA check");
    assert!(line.contains("failed"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{nsca_port}")), "{line}");
    let flush = carbon.flush_where("alert.errors >= 1", |f| {
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

/// Runs statsd, expecting it to refuse to start: a non-zero exit code and
/// one line on stderr holding every one of `needles`.
fn assert_refused(args: &[String], needles: &[&str]) {
    let out = run_statsd(&strs(args));
    let (code, stderr) = (out.status.code(), String::from_utf8_lossy(&out.stderr));
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
    let base = || alert_args(free_port(), free_port(), Some(HOST));
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
    let base = || alert_args(free_port(), free_port(), Some(HOST));
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
