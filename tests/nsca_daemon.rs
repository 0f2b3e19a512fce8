//! Our NSCA client against the real NSCA daemon.
//!
//! The harness (in `support/nsca.rs`) needs Debian's `nsca` package; without it
//! these tests FAIL, on purpose. Each test runs its own daemon in the
//! foreground on a free loopback port and polls its command file (bounded) for
//! the PROCESS_SERVICE_CHECK_RESULT line.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsd::alert::nsca::{load_send_nsca_config, Encryption, NscaClient};
use statsd::alert::{run_alert_loop, AlertStats, CheckStatus, HealthSnapshot, NscaError};
use support::free_port;
use support::nsca::{NscaDaemon as Daemon, PATIENCE};
use tokio_util::sync::CancellationToken;

/// Sends one check with `method` and waits for nsca to write it.
async fn round_trip(method: Encryption, legacy: bool) {
    let password = "pa ss=wörd;1";
    let daemon = Daemon::start(method, password);
    let mut client = daemon.client(method, password);
    client.legacy_packet = legacy;
    let output = format!("WARNING: method {method} legacy={legacy}; 12 lines in 0.004s");
    client
        .send_check("web-01", "statsd.my_prefix", CheckStatus::Warning, &output)
        .await
        .unwrap_or_else(|e| panic!("send_check with {method}: {e}"));
    let line = daemon
        .wait_for_line(&format!(
            "] PROCESS_SERVICE_CHECK_RESULT;web-01;statsd.my_prefix;1;{output}"
        ))
        .await;
    assert!(line.starts_with('['), "{line}");
}

#[tokio::test]
async fn daemon_accepts_no_encryption() {
    round_trip(Encryption::None, false).await;
}

#[tokio::test]
async fn daemon_accepts_xor() {
    round_trip(Encryption::Xor, false).await;
}

#[tokio::test]
async fn daemon_accepts_des() {
    round_trip(Encryption::Des, false).await;
}

#[tokio::test]
async fn daemon_accepts_3des() {
    round_trip(Encryption::TripleDes, false).await;
}

#[tokio::test]
async fn daemon_accepts_rijndael128() {
    round_trip(Encryption::Rijndael128, false).await;
}

#[tokio::test]
async fn daemon_accepts_legacy_xor_packet() {
    round_trip(Encryption::Xor, true).await;
}

#[tokio::test]
async fn daemon_accepts_legacy_rijndael128_packet() {
    round_trip(Encryption::Rijndael128, true).await;
}

/// Every status code arrives; a multi-line output arrives as one line (newlines
/// become spaces); a long one is cut to the field's 4095 bytes.
#[tokio::test]
async fn daemon_gets_codes_and_one_line_output() {
    let daemon = Daemon::start(Encryption::Xor, "pw");
    let client = daemon.client(Encryption::Xor, "pw");
    for (code, n) in [(CheckStatus::Ok, 0), (CheckStatus::Critical, 2)] {
        client
            .send_check("h", "svc", code, &format!("{} first\nsecond", code.label()))
            .await
            .expect("send");
        daemon
            .wait_for_line(&format!(
                "PROCESS_SERVICE_CHECK_RESULT;h;svc;{n};{} first second",
                code.label()
            ))
            .await;
    }
    let long = "x".repeat(5000);
    client
        .send_check("h", "long", CheckStatus::Ok, &long)
        .await
        .expect("send");
    let line = daemon.wait_for_line(&"x".repeat(4095)).await;
    assert!(
        line.ends_with(&format!(";long;0;{}", "x".repeat(4095))),
        "truncated to 4095 bytes"
    );
}

/// A check with the wrong password never reaches the command file; one sent
/// right after with the right password does, and is the only line once nsca
/// has judged every connection. (A forking daemon: a single-process nsca 2.10
/// can stall the connection that follows a dropped packet; see support/nsca.rs.)
#[tokio::test]
async fn daemon_drops_wrong_password() {
    for method in [Encryption::Xor, Encryption::Rijndael128] {
        let daemon = Daemon::start_forking(method, "right");
        daemon
            .client(method, "wrong")
            .send_check("h", "svc", CheckStatus::Ok, "from the wrong password")
            .await
            .expect("the daemon takes the bytes, then drops the packet");
        daemon
            .client(method, "right")
            .send_check("h", "svc", CheckStatus::Ok, "from the right password")
            .await
            .expect("send");
        daemon.wait_for_line(";svc;0;from the right password").await;
        daemon.wait_idle();
        let text = daemon.contents();
        assert_eq!(
            text.lines().count(),
            1,
            "{method}: only the good check:\n{text}"
        );
        assert!(!text.contains("wrong"), "{method}: {text}");
    }
}

/// A wrong method is just as invisible to the command file. The password is
/// longer than 16 bytes on purpose: mcrypt zero-pads it to 3DES's 24-byte key,
/// and with 8 bytes or fewer the last two DES keys are equal, so 3DES EDE
/// degenerates to DES and the daemon would rightly accept the DES packet.
/// (Forking daemon, as above.)
#[tokio::test]
async fn daemon_drops_wrong_method() {
    let pw = "a-password-of-24-bytes!!";
    let daemon = Daemon::start_forking(Encryption::TripleDes, pw);
    daemon
        .client(Encryption::Des, pw)
        .send_check("h", "svc", CheckStatus::Ok, "as DES")
        .await
        .expect("send");
    daemon
        .client(Encryption::TripleDes, pw)
        .send_check("h", "svc", CheckStatus::Ok, "as 3DES")
        .await
        .expect("send");
    daemon.wait_for_line(";svc;0;as 3DES").await;
    daemon.wait_idle();
    assert_eq!(
        daemon.contents().lines().count(),
        1,
        "{}",
        daemon.contents()
    );
}

/// Nobody listening: the error comes back at once, naming the connect step.
#[tokio::test]
async fn unreachable_port_fails_promptly() {
    let port = free_port(); // bound then released: nothing listens there now
    let mut client = NscaClient::new("127.0.0.1", port);
    client.timeout = Duration::from_secs(5);
    let started = Instant::now();
    let err = client
        .send_check("h", "svc", CheckStatus::Ok, "x")
        .await
        .expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            NscaError::Io {
                stage: "connect",
                ..
            }
        ),
        "unexpected error: {err}"
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

/// The alert loop against the real daemon: a window where every flush failed
/// is reported CRITICAL, the next (all good) OK; shutdown stops the loop.
#[tokio::test]
async fn alert_loop_reports_to_daemon() {
    let daemon = Daemon::start(Encryption::Xor, "pw");
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = Arc::clone(&calls);
    // Call 0 is the baseline, call 1 sees 3 failures, later calls 5 successes.
    let health = Arc::new(move || {
        let n = calls2.fetch_add(1, Ordering::SeqCst);
        let (ok, failed) = if n == 0 {
            (0, 0)
        } else if n == 1 {
            (0, 3)
        } else {
            (5, 3)
        };
        HealthSnapshot {
            flushes_ok: ok,
            flushes_failed: failed,
            last_lines_published: 42,
            last_publish_duration: 0.0125,
            last_publish_time: 1_795_626_000.0,
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let on_error = Arc::new(move |e: &NscaError| {
        let _ = tx.send(e.to_string());
    });
    let stats = Arc::new(AlertStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_alert_loop(
        daemon.client(Encryption::Xor, "pw"),
        "web-01".to_string(),
        "statsd.my_prefix".to_string(),
        Duration::from_millis(100),
        health,
        Arc::clone(&stats),
        on_error,
        shutdown.clone(),
    ));
    daemon
        .wait_for_line(
            ";web-01;statsd.my_prefix;2;CRITICAL: all 3 publish attempts failed; \
             42 lines last published in 0.013s at 2026-11-25T17:00:00Z",
        )
        .await;
    daemon
        .wait_for_line(
            ";web-01;statsd.my_prefix;0;OK: 42 lines last published in 0.013s at 2026-11-25T17:00:00Z",
        )
        .await;
    // The loop counts a check a moment after the daemon may have written it.
    let deadline = Instant::now() + PATIENCE;
    while stats.sent() < 2 {
        assert!(Instant::now() < deadline, "sent {}", stats.sent());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("loop stops on shutdown")
        .expect("loop did not panic");
    assert_eq!(stats.errors(), 0);
    assert_eq!(rx.try_recv().ok(), None, "no check failed");
}

/// The sample `send_nsca.cfg` that Debian's nsca-client installs parses.
#[test]
fn parses_debian_sample_send_nsca_cfg() {
    let path = Path::new("/etc/send_nsca.cfg");
    assert!(
        path.exists(),
        "{path:?} missing: apt-get install -y nsca (pulls nsca-client)"
    );
    let cfg = load_send_nsca_config(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.encryption, Some(Encryption::Xor));
}

/// Settings read from a send_nsca.cfg file drive the client end to end.
#[tokio::test]
async fn client_from_send_nsca_cfg_file() {
    let pw = "from the cfg file, with spaces";
    let daemon = Daemon::start(Encryption::Rijndael128, pw);
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg_path = dir.path().join("send_nsca.cfg");
    std::fs::write(
        &cfg_path,
        format!("# written by the test\npassword={pw}\nencryption_method=14\n"),
    )
    .expect("write cfg");
    let cfg = load_send_nsca_config(&cfg_path).unwrap_or_else(|e| panic!("{e}"));
    let client = NscaClient::new("127.0.0.1", daemon.port).with_config(&cfg);
    assert_eq!(client.encryption, Encryption::Rijndael128);
    client
        .send_check("h", "svc", CheckStatus::Ok, "configured by file")
        .await
        .expect("send");
    daemon.wait_for_line(";h;svc;0;configured by file").await;
}
