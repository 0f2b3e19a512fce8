//! The NSCA client and alert loop against fake servers on loopback: timeouts,
//! broken servers, and what goes on the wire. Needs no packages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use statsd::alert::nsca::{decrypt, packet_crc_ok, Encryption, NscaClient, IV_LEN, PACKET_LEN};
use statsd::alert::{run_alert_loop, AlertStats, CheckStatus, HealthSnapshot, NscaError};
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(10);

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

fn client(port: u16, timeout: Duration) -> NscaClient {
    let mut c = NscaClient::new("127.0.0.1", port);
    c.password = b"pw".to_vec();
    c.encryption = Encryption::Rijndael128;
    c.timeout = timeout;
    c
}

/// A fields view of a decrypted packet: (code, host, service, output).
fn fields(p: &[u8]) -> (i16, String, String, String) {
    let s = |f: &[u8]| {
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    (
        i16::from_be_bytes([p[12], p[13]]),
        s(&p[14..78]),
        s(&p[78..206]),
        s(&p[206..]),
    )
}

/// Plays the NSCA server for one connection: init packet out, data packet in.
async fn serve_one(l: &TcpListener, iv: [u8; IV_LEN], ts: u32) -> Vec<u8> {
    let (mut s, _) = l.accept().await.expect("accept");
    let mut init = iv.to_vec();
    init.extend_from_slice(&ts.to_be_bytes());
    s.write_all(&init).await.expect("send init");
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.expect("read packet");
    got
}

#[tokio::test]
async fn sends_one_packet_then_closes() {
    let (l, port) = listener().await;
    let iv: [u8; IV_LEN] = std::array::from_fn(|i| (255 - i) as u8);
    let server = tokio::spawn(async move { serve_one(&l, iv, 1234).await });
    client(port, PATIENCE)
        .send_check("host", "svc", CheckStatus::Critical, "boom")
        .await
        .expect("send");
    let mut got = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("server done")
        .expect("server ok");
    assert_eq!(got.len(), PACKET_LEN, "exactly one packet, then EOF");
    decrypt(&mut got, &iv, b"pw", Encryption::Rijndael128);
    assert!(packet_crc_ok(&got));
    assert_eq!(&got[8..12], &1234u32.to_be_bytes(), "timestamp echoed");
    assert_eq!(
        fields(&got),
        (2, "host".into(), "svc".into(), "boom".into())
    );
}

/// A server that accepts but never sends the init packet: bounded by `timeout`.
#[tokio::test]
async fn silent_server_times_out() {
    let (l, port) = listener().await;
    let hold = tokio::spawn(async move {
        let conn = l.accept().await;
        tokio::time::sleep(PATIENCE).await;
        drop(conn);
    });
    let started = Instant::now();
    let err = client(port, Duration::from_millis(300))
        .send_check("h", "s", CheckStatus::Ok, "x")
        .await
        .expect_err("must time out");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        matches!(
            err,
            NscaError::Timeout {
                stage: "read init packet",
                ..
            }
        ),
        "{err}"
    );
    hold.abort();
}

/// A server that hangs up mid init packet: an I/O error, not a hang.
#[tokio::test]
async fn short_init_packet_is_an_error() {
    let (l, port) = listener().await;
    tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(&[0u8; 100]).await;
        }
    });
    let err = client(port, PATIENCE)
        .send_check("h", "s", CheckStatus::Ok, "x")
        .await
        .expect_err("short init");
    assert!(
        matches!(
            err,
            NscaError::Io {
                stage: "read init packet",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn unresolvable_host_is_an_error() {
    let mut c = client(5667, Duration::from_secs(5));
    c.host = "no-such-host.invalid".into();
    let err = c
        .send_check("h", "s", CheckStatus::Ok, "x")
        .await
        .expect_err("bad host");
    assert!(
        err.to_string().contains("no-such-host.invalid:5667"),
        "{err}"
    );
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Option<T> {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a result in time")
}

/// Waits (bounded) for `done`: the loop counts a check just after the server
/// has it, so a test that saw the packet may still be a moment early.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Failed sends are counted and go to on_error, and the loop carries on; the
/// window of a lost check is folded into the next one; shutdown ends the loop.

#[tokio::test]
async fn alert_loop_survives_failures_and_reports_lost_window() {
    let (l, port) = listener().await;
    let iv = [7u8; IV_LEN];
    // Connection 1: hang up at once (that check fails); connection 2: a real exchange.
    let server = tokio::spawn(async move {
        let first = l.accept().await.expect("accept 1");
        drop(first);
        serve_one(&l, iv, 99).await
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = Arc::clone(&calls);
    // Baseline (0,0); first check sees 3 failures (and is lost); then 5 successes.
    let health = Arc::new(move || {
        let (ok, failed) = match calls2.fetch_add(1, Ordering::SeqCst) {
            0 => (0, 0),
            1 => (0, 3),
            _ => (5, 3),
        };
        HealthSnapshot {
            flushes_ok: ok,
            flushes_failed: failed,
            ..HealthSnapshot::default()
        }
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let on_error = Arc::new(move |e: &NscaError| {
        let _ = tx.send(e.to_string());
    });
    let stats = Arc::new(AlertStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_alert_loop(
        client(port, Duration::from_secs(5)),
        "web-01".into(),
        "statsd".into(),
        Duration::from_millis(20),
        health,
        Arc::clone(&stats),
        on_error,
        shutdown.clone(),
    ));
    let first = next(&mut rx).await.expect("first check fails");
    assert!(first.contains("read init packet"), "{first}");
    let mut got = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("server done")
        .expect("server ok");
    decrypt(&mut got, &iv, b"pw", Encryption::Rijndael128);
    assert!(packet_crc_ok(&got));
    let (code, host, service, output) = fields(&got);
    assert_eq!(
        (code, host.as_str(), service.as_str()),
        (1, "web-01", "statsd")
    );
    assert_eq!(
        output,
        "WARNING: 3 of 8 publish attempts failed; nothing published yet"
    );
    eventually("the second check counted as sent", || stats.sent() == 1).await;
    // Later checks find no server: errors only grow, sends stay at one.
    assert!(stats.errors() >= 1);
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("loop stops on shutdown")
        .expect("no panic");
}

/// With nothing listening at all, the loop keeps trying every interval.
#[tokio::test]
async fn alert_loop_keeps_going_when_nagios_is_down() {
    let port = {
        let (l, port) = listener().await;
        drop(l);
        port
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let on_error = Arc::new(move |e: &NscaError| {
        let _ = tx.send(e.to_string());
    });
    let stats = Arc::new(AlertStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_alert_loop(
        client(port, Duration::from_secs(1)),
        "h".into(),
        "s".into(),
        Duration::from_millis(10),
        Arc::new(HealthSnapshot::default),
        Arc::clone(&stats),
        on_error,
        shutdown.clone(),
    ));
    for _ in 0..3 {
        let e = next(&mut rx).await.expect("loop alive");
        assert!(e.contains("connect"), "{e}");
    }
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("loop stops on shutdown")
        .expect("no panic");
    // Counted before on_error is called, so every error seen is in the count.
    assert!(stats.errors() >= 3, "{}", stats.errors());
    assert_eq!(stats.sent(), 0);
}
