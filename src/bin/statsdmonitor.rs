//! `statsdmonitor HOST PORT`: prints the daemon's internal stats (SPEC section 7).
//!
//! Calls the XML-RPC method `istats` on `http://HOST:PORT/RPC2` and prints the JSON
//! object it returns as `key: value` lines sorted by key, numbers exactly as the
//! server wrote them. Any failure is one line on stderr and exit code 1; a bad
//! command line is one line on stderr and exit code 2.
//!
//! The HTTP client is `ureq` (blocking, one connection per call, no proxy, no
//! redirects); XML-RPC documents go through `dxr`, the same crate the server uses.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dxr::{FaultResponse, MethodCall, MethodResponse, Value};
use serde_json::value::RawValue;

/// Largest answer body read; the stats object is a few KiB.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// Print a StatsD server's internal stats, one `key: value` a line, sorted by key.
#[derive(Parser, Debug)]
#[command(name = "statsdmonitor", version)]
struct Cli {
    /// Host of the statsd monitoring endpoint (name, IPv4 or IPv6 literal).
    host: String,
    /// Monitoring port (the metrics port + 10; 8135 by default).
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Print the raw JSON object instead of `key: value` lines.
    #[arg(long)]
    json: bool,
    /// Refresh every SECONDS until interrupted; failures are reported and retried.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    watch: Option<f64>,
    /// Give up on a call after SECONDS (connect, send and receive together).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    timeout: f64,
    /// HTTP path of the XML-RPC endpoint.
    #[arg(long, default_value = "/RPC2")]
    path: String,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.001..=86_400.0).contains(&s) => Ok(s),
        _ => Err(String::from(
            "expected a number of seconds between 0.001 and 86400",
        )),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let target = Target::new(&cli);
    let Some(period) = cli.watch else {
        return match fetch(&target) {
            Ok(json) => print_stats(&json, cli.json),
            Err(msg) => fail(&msg),
        };
    };
    let clear = std::io::stdout().is_terminal();
    loop {
        // On a terminal each refresh replaces the last; in a pipe they are separated.
        if clear {
            print!("\x1b[H\x1b[2J");
        }
        match fetch(&target) {
            Ok(json) => {
                print_stats(&json, cli.json);
            }
            Err(msg) => eprintln!("statsdmonitor: {msg}"),
        }
        if !clear {
            println!();
        }
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_secs_f64(period));
    }
}

/// Help and version go to stdout with success; any other clap error becomes one line.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    // clap's first paragraph is the reason, sometimes over several lines (a list of
    // missing arguments); usage and tips follow a blank line.
    let rendered = e.render().to_string();
    let lines: Vec<&str> = rendered
        .trim_start()
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = lines.join(" ");
    let reason = joined.strip_prefix("error: ").unwrap_or(&joined);
    eprintln!("statsdmonitor: {reason} (see --help)");
    ExitCode::from(2)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("statsdmonitor: {msg}");
    ExitCode::from(1)
}

/// Prints the stats; a JSON text that is not an object is an error.
fn print_stats(json: &str, raw: bool) -> ExitCode {
    match render(json, raw) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not worth an error message.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(msg) => fail(&msg),
    }
}

/// `key: value` lines sorted by key (or the JSON itself with `raw`).
fn render(json: &str, raw: bool) -> Result<String, String> {
    let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(json)
        .map_err(|e| format!("istats did not return a JSON object: {e}"))?;
    if raw {
        return Ok(format!("{}\n", json.trim()));
    }
    let mut out = String::new();
    for (key, value) in &map {
        let text = value.get().trim();
        // Strings print unquoted; numbers and anything else exactly as sent.
        let shown = match serde_json::from_str::<String>(text) {
            Ok(s) => s,
            Err(_) => text.to_owned(),
        };
        out.push_str(&one_line(key));
        out.push_str(": ");
        out.push_str(&one_line(&shown));
        out.push('\n');
    }
    Ok(out)
}

/// Keeps one stat on one line whatever the server sent.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Where and how to call.
struct Target {
    /// `host:port` as shown in messages and sent as the Host header.
    display: String,
    /// Host name or literal, for resolution.
    host: String,
    /// Monitoring port.
    port: u16,
    /// `http://host:port/path`.
    url: String,
    /// Budget for one whole call.
    timeout: Duration,
    /// The HTTP client, configured once for every call.
    agent: ureq::Agent,
}

impl Target {
    fn new(cli: &Cli) -> Self {
        let display = if cli.host.contains(':') {
            format!("[{}]:{}", cli.host, cli.port)
        } else {
            format!("{}:{}", cli.host, cli.port)
        };
        let path = if cli.path.starts_with('/') {
            cli.path.clone()
        } else {
            format!("/{}", cli.path)
        };
        let timeout = Duration::from_secs_f64(cli.timeout);
        let config = ureq::Agent::config_builder()
            // One budget for resolving, connecting, sending and receiving.
            .timeout_global(Some(timeout))
            // Any status but 200 is reported by us, with its code.
            .http_status_as_error(false)
            // The endpoint never redirects; a redirect is an answer to report.
            .max_redirects(0)
            // A monitor talks to its own host's daemon: HTTP_PROXY must not apply.
            .proxy(None)
            // One connection per call, as the original monitor did: nothing is
            // kept open between --watch refreshes.
            .max_idle_connections(0)
            .user_agent(concat!("statsdmonitor/", env!("CARGO_PKG_VERSION")))
            .build();
        Target {
            url: format!("http://{display}{path}"),
            display,
            host: cli.host.clone(),
            port: cli.port,
            timeout,
            agent: config.into(),
        }
    }
}

/// Calls `istats` and returns the JSON text, or a one-line reason.
fn fetch(t: &Target) -> Result<String, String> {
    resolve(t)?;
    let call = MethodCall {
        name: "istats".into(),
        params: Vec::new(),
    };
    let body = call
        .to_xml()
        .map_err(|e| format!("cannot encode the request: {e}"))?;
    let body = format!("<?xml version=\"1.0\"?>\n{body}");
    let mut response = t
        .agent
        .post(&t.url)
        .header("Content-Type", "text/xml")
        // No keep-alive: the server may free the connection as soon as it answered.
        .header("Connection", "close")
        .send(body.as_str())
        .map_err(|e| describe(t, e))?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        // ureq keeps no reason phrase; the standard one stands in for it.
        let code = status.as_u16();
        return Err(match status.canonical_reason() {
            Some(reason) => format!("bad answer from {}: HTTP {code} {reason}", t.display),
            None => format!("bad answer from {}: HTTP {code}", t.display),
        });
    }
    let answer = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| match e {
            // A close-delimited body ends at EOF without error, so this one was announced
            // (Content-Length or chunks) and cut short.
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                format!(
                    "bad answer from {}: answer shorter than announced",
                    t.display
                )
            }
            e => describe(t, e),
        })?;
    parse_answer(&answer).map_err(|e| format!("bad answer from {}: {e}", t.display))
}

/// ureq reports a failed lookup as a bare I/O error, like a failed connect; looking
/// the host up first keeps "cannot resolve" apart from "cannot reach".
fn resolve(t: &Target) -> Result<(), String> {
    let mut addrs = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {}", t.host, os_text(&e)))?;
    match addrs.next() {
        Some(_) => Ok(()),
        None => Err(format!("cannot resolve {}: no address", t.host)),
    }
}

/// One line for a failed call.
fn describe(t: &Target, e: ureq::Error) -> String {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Timeout(_) => timed_out(t),
        ureq::Error::HostNotFound => format!("cannot resolve {}: no address", t.host),
        ureq::Error::Io(e) => match e.kind() {
            K::TimedOut | K::WouldBlock => timed_out(t),
            // Closed before a whole response head arrived.
            K::UnexpectedEof => format!("bad answer from {}: incomplete HTTP response", t.display),
            // What connect(2) answers when every address of the host said no.
            K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::AddrNotAvailable => format!("cannot reach {}: {}", t.display, os_text(&e)),
            _ => format!("lost connection to {}: {}", t.display, os_text(&e)),
        },
        ureq::Error::BodyExceedsLimit(n) => {
            format!("bad answer from {}: larger than {n} bytes", t.display)
        }
        ureq::Error::Protocol(e) => {
            format!("bad answer from {}: not an HTTP response ({e})", t.display)
        }
        ureq::Error::LargeResponseHeader(..) => {
            format!("bad answer from {}: HTTP header too large", t.display)
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            format!("cannot call {}: {}", t.url, one_line(&e.to_string()))
        }
        other => format!(
            "call to {} failed: {}",
            t.display,
            one_line(&other.to_string())
        ),
    }
}

fn timed_out(t: &Target) -> String {
    format!(
        "no answer from {} within {} s",
        t.display,
        t.timeout.as_secs_f64()
    )
}

/// "Connection refused", not "Connection refused (os error 111)".
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
        None => text,
    };
    one_line(&text)
}

/// The body of an HTTP 200 answer -> the string `istats` returned.
fn parse_answer(body: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(body).map_err(|_| String::from("answer is not UTF-8"))?;
    statsd::admin::check_xml(text)?;
    if let Ok(resp) = MethodResponse::from_xml(text) {
        return match resp.value {
            Value::String(s) => Ok(s),
            _ => Err(String::from("istats did not return a string")),
        };
    }
    if let Ok(f) = FaultResponse::from_xml(text) {
        let msg: String = one_line(f.fault.string()).chars().take(200).collect();
        return Err(format!("server fault {}: {msg}", f.fault.code()));
    }
    Err(String::from("not an XML-RPC response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(args: &[&str]) -> Target {
        let cli = Cli::try_parse_from(std::iter::once("statsdmonitor").chain(args.iter().copied()))
            .expect("valid arguments");
        Target::new(&cli)
    }

    fn response(value: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value>{value}</value>\
             </param></params></methodResponse>"
        )
    }

    #[test]
    fn target_brackets_ipv6_and_adds_the_leading_slash() {
        let t = target(&["::1", "8135", "--path", "RPC2", "--timeout", "0.5"]);
        assert_eq!(t.display, "[::1]:8135");
        assert_eq!(t.url, "http://[::1]:8135/RPC2");
        assert_eq!(t.timeout, Duration::from_millis(500));
        let t = target(&["localhost", "8135"]);
        assert_eq!(t.url, "http://localhost:8135/RPC2");
    }

    #[test]
    fn render_sorts_keys_keeps_numbers_and_unquotes_strings() {
        let json = r#"{"b": 1.50, "a": "x\ny", "c": 1e-06}"#;
        assert_eq!(
            render(json, false).as_deref(),
            Ok("a: x y\nb: 1.50\nc: 1e-06\n")
        );
        assert_eq!(render(json, true), Ok(format!("{json}\n")));
        assert!(render("[1, 2]", false)
            .unwrap_err()
            .starts_with("istats did not return a JSON object"));
    }

    #[test]
    fn parse_answer_returns_the_string_or_a_reason() {
        let ok = response("<string>{&quot;a&quot;: 1}</string>");
        assert_eq!(parse_answer(ok.as_bytes()).as_deref(), Ok(r#"{"a": 1}"#));
        let int = response("<int>3</int>");
        assert_eq!(
            parse_answer(int.as_bytes()),
            Err(String::from("istats did not return a string"))
        );
        let fault = "<methodResponse><fault><value><struct>\
            <member><name>faultCode</name><value><int>-32603</int></value></member>\
            <member><name>faultString</name><value><string>bad\nthing</string></value></member>\
            </struct></value></fault></methodResponse>";
        assert_eq!(
            parse_answer(fault.as_bytes()),
            Err(String::from("server fault -32603: bad thing"))
        );
        assert_eq!(
            parse_answer(b"<html></html>"),
            Err(String::from("not an XML-RPC response"))
        );
        assert_eq!(
            parse_answer(b"\xff\xfe"),
            Err(String::from("answer is not UTF-8"))
        );
    }

    #[test]
    fn describe_gives_one_line_per_kind_of_failure() {
        use std::io::{Error, ErrorKind};
        let t = target(&["127.0.0.1", "8135", "--timeout", "0.3"]);
        let cases = [
            (
                ureq::Error::Timeout(ureq::Timeout::Global),
                "no answer from 127.0.0.1:8135 within 0.3 s",
            ),
            (
                ureq::Error::Io(Error::from_raw_os_error(libc::ECONNREFUSED)),
                "cannot reach 127.0.0.1:8135: Connection refused",
            ),
            (
                ureq::Error::Io(Error::from_raw_os_error(libc::ECONNRESET)),
                "lost connection to 127.0.0.1:8135: Connection reset by peer",
            ),
            (
                ureq::Error::Io(Error::new(ErrorKind::TimedOut, "slow")),
                "no answer from 127.0.0.1:8135 within 0.3 s",
            ),
            (
                ureq::Error::Io(Error::new(ErrorKind::UnexpectedEof, "Peer disconnected")),
                "bad answer from 127.0.0.1:8135: incomplete HTTP response",
            ),
            (
                ureq::Error::BodyExceedsLimit(MAX_ANSWER_BYTES),
                "bad answer from 127.0.0.1:8135: larger than 16777216 bytes",
            ),
            (
                ureq::Error::HostNotFound,
                "cannot resolve 127.0.0.1: no address",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(describe(&t, error), want);
        }
    }

    #[test]
    fn one_line_replaces_control_characters() {
        assert_eq!(one_line("a\r\nb\tc"), "a  b c");
    }
}
