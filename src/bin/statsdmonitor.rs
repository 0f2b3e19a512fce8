//! `statsdmonitor HOST PORT`: prints the daemon's internal stats (SPEC section 7).
//!
//! Calls the XML-RPC method `istats` on `http://HOST:PORT/RPC2` and prints the JSON
//! object it returns as `key: value` lines sorted by key, numbers exactly as the
//! server wrote them. Any failure is one line on stderr and exit code 1; a bad
//! command line is one line on stderr and exit code 2.
//!
//! The client is a small blocking HTTP/1.0 one (one request per connection, so the
//! answer is never chunked and ends at EOF); XML-RPC documents go through `dxr`,
//! the same crate the server uses.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use dxr::{FaultResponse, MethodCall, MethodResponse, Value};
use serde_json::value::RawValue;

/// Largest answer read; the stats object is a few KiB.
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
    /// Request path.
    path: String,
    /// Budget for one whole call.
    timeout: Duration,
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
        Target {
            display,
            host: cli.host.clone(),
            port: cli.port,
            path,
            timeout: Duration::from_secs_f64(cli.timeout),
        }
    }
}

/// Calls `istats` and returns the JSON text, or a one-line reason.
fn fetch(t: &Target) -> Result<String, String> {
    let deadline = Instant::now() + t.timeout;
    let mut stream = connect(t, deadline)?;
    let call = MethodCall {
        name: "istats".into(),
        params: Vec::new(),
    };
    let body = call
        .to_xml()
        .map_err(|e| format!("cannot encode the request: {e}"))?;
    let body = format!("<?xml version=\"1.0\"?>\n{body}");
    let request = format!(
        "POST {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: statsdmonitor/{}\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        t.path,
        t.display,
        env!("CARGO_PKG_VERSION"),
        body.len(),
        body
    );
    let io_err = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            timed_out(t)
        } else {
            format!("lost connection to {}: {}", t.display, os_text(&e))
        }
    };
    set_io_timeout(&stream, deadline).map_err(|_| timed_out(t))?;
    stream.write_all(request.as_bytes()).map_err(io_err)?;
    let mut answer = Vec::new();
    let mut limited = (&mut stream).take(MAX_ANSWER_BYTES + 1);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        set_io_timeout(limited.get_ref(), deadline).map_err(|_| timed_out(t))?;
        match limited.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(chunk.get(..n).unwrap_or_default());
                // A server that keeps the connection open anyway must not cost a timeout.
                if is_complete(&answer) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    if answer.len() as u64 > MAX_ANSWER_BYTES {
        return Err(format!(
            "bad answer from {}: larger than {MAX_ANSWER_BYTES} bytes",
            t.display
        ));
    }
    parse_answer(&answer).map_err(|e| format!("bad answer from {}: {e}", t.display))
}

fn timed_out(t: &Target) -> String {
    format!(
        "no answer from {} within {} s",
        t.display,
        t.timeout.as_secs_f64()
    )
}

/// Tries every address of the host within the deadline, reporting the last failure.
fn connect(t: &Target, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {}", t.host, os_text(&e)))?
        .collect();
    let mut last = format!("cannot resolve {}: no address", t.host);
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(t));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => last = timed_out(t),
            Err(e) => last = format!("cannot reach {}: {}", t.display, os_text(&e)),
        }
    }
    Err(last)
}

/// Sets the socket timeouts to what is left of the call's budget.
fn set_io_timeout(s: &TcpStream, deadline: Instant) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    s.set_read_timeout(Some(left))?;
    s.set_write_timeout(Some(left))
}

/// "Connection refused", not "Connection refused (os error 111)".
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
        None => text,
    }
}

/// True once `raw` holds a response head and all the body its Content-Length announces.
fn is_complete(raw: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = resp.parse(raw) else {
        return false;
    };
    let length = resp.headers.iter().find_map(|h| {
        h.name.eq_ignore_ascii_case("content-length").then(|| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })?
    });
    length.is_some_and(|n| raw.len().saturating_sub(head_len) >= n)
}

/// HTTP answer -> the string `istats` returned.
fn parse_answer(raw: &[u8]) -> Result<String, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(String::from("incomplete HTTP response")),
        Err(e) => return Err(format!("not an HTTP response ({e})")),
    };
    let code = resp.code.unwrap_or(0);
    if code != 200 {
        return Err(format!(
            "HTTP {code} {}",
            one_line(resp.reason.unwrap_or(""))
        ));
    }
    let mut body = raw.get(head_len..).unwrap_or_default();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(String::from("chunked answer to an HTTP/1.0 request"));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| String::from("bad Content-Length"))?;
            body = body
                .get(..n)
                .ok_or_else(|| String::from("answer shorter than its Content-Length"))?;
        }
    }
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
