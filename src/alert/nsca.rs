//! NSCA client: the passive-check protocol of NSCA 2.x, spoken natively.
//!
//! One check per TCP connection. The server opens with a 132-byte init packet
//! (a 128-byte IV, then its Unix time as a big-endian u32); the client answers
//! with one data packet, encrypted with the IV and the shared password, and
//! closes. The server answers nothing, so success here means "delivered to the
//! server's socket"; a wrong password or method is only visible in its syslog.
//!
//! Data packet (version 3, the C struct of NSCA's `common.h`, big-endian fields):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | packet_version = 3 |
//! | 2 | 2 | struct padding (random) |
//! | 4 | 4 | crc32 of the packet with this field zeroed |
//! | 8 | 4 | timestamp, echoed from the init packet |
//! | 12 | 2 | return code |
//! | 14 | 64 | host name, NUL-terminated |
//! | 78 | 128 | service description, NUL-terminated |
//! | 206 | 4096 (512 legacy) | plugin output, NUL-terminated |
//! | 4302 (718) | 2 | struct padding (random) |
//!
//! Everything here except [`NscaClient::send_check`] is pure, so the packet
//! bytes are tested against captures of the real `send_nsca` client.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use cfb8::cipher::{AsyncStreamCipher, KeyIvInit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::CheckStatus;

/// NSCA's well-known TCP port.
pub const DEFAULT_PORT: u16 = 5667;
/// send_nsca's default socket timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of the IV at the start of the init packet.
pub const IV_LEN: usize = 128;
/// Size of the init packet: IV then a big-endian u32 timestamp.
pub const INIT_PACKET_LEN: usize = IV_LEN + 4;
/// Size of a version 3 data packet (NSCA 2.9 and later).
pub const PACKET_LEN: usize = 4304;
/// Size of the NSCA 2.7-compatible data packet (512-byte plugin output).
pub const LEGACY_PACKET_LEN: usize = 720;

const PACKET_VERSION: i16 = 3;
const CRC_AT: usize = 4;
const TIMESTAMP_AT: usize = 8;
const CODE_AT: usize = 12;
const HOST_AT: usize = 14;
const HOST_LEN: usize = 64;
const SERVICE_AT: usize = HOST_AT + HOST_LEN;
const SERVICE_LEN: usize = 128;
const OUTPUT_AT: usize = SERVICE_AT + SERVICE_LEN;
const OUTPUT_LEN: usize = 4096;
const LEGACY_OUTPUT_LEN: usize = 512;

/// Everything that can go wrong configuring or sending a check.
#[derive(Debug, thiserror::Error)]
pub enum NscaError {
    /// An encryption method we do not implement (or that does not exist).
    #[error(
        "unsupported NSCA encryption method {0:?} (supported: 0/none, 1/xor, 2/des, 3/3des, 14/rijndael-128)"
    )]
    UnsupportedEncryption(String),
    /// A `send_nsca.cfg` line we cannot accept.
    #[error("send_nsca config line {line}: {reason}")]
    Config {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The config file could not be read.
    #[error("reading send_nsca config {path}: {source}")]
    ConfigFile {
        /// The file's path as given.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A network step failed.
    #[error("NSCA server {addr}: {stage}: {source}")]
    Io {
        /// `host:port` of the NSCA server.
        addr: String,
        /// Which step: connect, read init packet, send check.
        stage: &'static str,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The exchange did not finish within the client's timeout.
    #[error("NSCA server {addr}: {stage}: timed out after {after:?}")]
    Timeout {
        /// `host:port` of the NSCA server.
        addr: String,
        /// The step that was running when time ran out.
        stage: &'static str,
        /// The client's timeout for the whole exchange.
        after: Duration,
    },
}

/// How the data packet is encrypted; must match the server's `decryption_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Method 0: plain text.
    None,
    /// Method 1: XOR with the IV, then with the password (obfuscation only).
    Xor,
    /// Method 2: DES, 8-bit CFB (mcrypt "cfb"), 8-byte key.
    Des,
    /// Method 3: 3DES EDE, 8-bit CFB, 24-byte key (a password of 8 bytes or less
    /// leaves keys 2 and 3 zero, equal, so this is then plain DES: as in NSCA).
    TripleDes,
    /// Method 14: mcrypt's RIJNDAEL-128 with its 32-byte key, i.e. AES-256, 8-bit CFB.
    Rijndael128,
}

impl Encryption {
    /// The method number used in `send_nsca.cfg` and `nsca.cfg`.
    pub fn method_number(self) -> u32 {
        match self {
            Encryption::None => 0,
            Encryption::Xor => 1,
            Encryption::Des => 2,
            Encryption::TripleDes => 3,
            Encryption::Rijndael128 => 14,
        }
    }

    /// Maps an NSCA method number; the other mcrypt methods (4-26) are refused.
    pub fn from_method_number(n: u32) -> Result<Self, NscaError> {
        match n {
            0 => Ok(Encryption::None),
            1 => Ok(Encryption::Xor),
            2 => Ok(Encryption::Des),
            3 => Ok(Encryption::TripleDes),
            14 => Ok(Encryption::Rijndael128),
            _ => Err(NscaError::UnsupportedEncryption(n.to_string())),
        }
    }

    /// Lower-case name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::Xor => "xor",
            Encryption::Des => "des",
            Encryption::TripleDes => "3des",
            Encryption::Rijndael128 => "rijndael-128",
        }
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.method_number(), self.name())
    }
}

impl FromStr for Encryption {
    type Err = NscaError;

    /// Accepts a method number (`"14"`) or a name (`"rijndael-128"`, any case).
    fn from_str(s: &str) -> Result<Self, NscaError> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u32>() {
            return Encryption::from_method_number(n);
        }
        match t.to_ascii_lowercase().replace('_', "-").as_str() {
            "none" | "plain" => Ok(Encryption::None),
            "xor" => Ok(Encryption::Xor),
            "des" => Ok(Encryption::Des),
            "3des" | "tripledes" | "triple-des" => Ok(Encryption::TripleDes),
            "rijndael-128" | "rijndael128" => Ok(Encryption::Rijndael128),
            _ => Err(NscaError::UnsupportedEncryption(s.to_string())),
        }
    }
}

/// What a `send_nsca.cfg` file sets; `None` where the file is silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendNscaConfig {
    /// `password=`: the shared secret.
    pub password: Option<Vec<u8>>,
    /// `encryption_method=`: must match the server's `decryption_method`.
    pub encryption: Option<Encryption>,
    /// `legacy_2_7_mode=`: send 720-byte packets for NSCA 2.7 servers.
    pub legacy_packet: Option<bool>,
}

/// Parses the `send_nsca.cfg` format: `name=value` lines, `#` comments.
///
/// Like send_nsca, the value is everything after the first `=` (spaces are part
/// of a password) and an unknown name is an error. Unlike it, a trailing `\r`
/// is dropped and lines are matched on the trimmed name.
pub fn parse_send_nsca_config(text: &str) -> Result<SendNscaConfig, NscaError> {
    let mut cfg = SendNscaConfig::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |reason: String| NscaError::Config {
            line: line_no,
            reason,
        };
        let Some((name, value)) = line.split_once('=') else {
            return Err(err(format!("expected name=value, got {line:?}")));
        };
        let name = name.trim();
        if value.is_empty() {
            return Err(err(format!("no value for {name:?}")));
        }
        match name {
            "password" => cfg.password = Some(value.as_bytes().to_vec()),
            "encryption_method" => {
                let n: u32 = value.trim().parse().map_err(|_| {
                    err(format!("encryption_method must be a number, got {value:?}"))
                })?;
                cfg.encryption =
                    Some(Encryption::from_method_number(n).map_err(|e| err(e.to_string()))?);
            }
            "legacy_2_7_mode" => {
                let v = match value.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => {
                        return Err(err(format!(
                            "legacy_2_7_mode must be true or false, got {value:?}"
                        )))
                    }
                };
                cfg.legacy_packet = Some(v);
            }
            _ => return Err(err(format!("unknown option {name:?}"))),
        }
    }
    Ok(cfg)
}

/// The two settings most callers need: `(password, encryption)`.
pub fn parse_send_nsca_cfg(text: &str) -> Result<(Option<Vec<u8>>, Option<Encryption>), NscaError> {
    let cfg = parse_send_nsca_config(text)?;
    Ok((cfg.password, cfg.encryption))
}

/// Reads and parses a `send_nsca.cfg` file.
pub fn load_send_nsca_config(path: &std::path::Path) -> Result<SendNscaConfig, NscaError> {
    let text = std::fs::read_to_string(path).map_err(|source| NscaError::ConfigFile {
        path: path.display().to_string(),
        source,
    })?;
    parse_send_nsca_config(&text)
}

/// CRC-32 as NSCA computes it: the IEEE polynomial, as zlib and crc32fast do.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Splits an init packet into its IV and the server's timestamp.
pub fn parse_init_packet(buf: &[u8; INIT_PACKET_LEN]) -> ([u8; IV_LEN], u32) {
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&buf[..IV_LEN]);
    let ts = u32::from_be_bytes([
        buf[IV_LEN],
        buf[IV_LEN + 1],
        buf[IV_LEN + 2],
        buf[IV_LEN + 3],
    ]);
    (iv, ts)
}

/// Plugin output goes into one line of the server's command file. NSCA 2.10
/// daemons escape newlines themselves (so escaping here would double it), 2.9
/// daemons write them raw (splitting the command): so control characters,
/// newlines included, become spaces and the text stays one line everywhere.
fn clean_output(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Host and service names go into a `;`-separated command line: control
/// characters (newline above all) would split or truncate it.
fn clean_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// Writes `s` as a C string into `field`, truncated on a UTF-8 boundary so
/// the terminating NUL always fits; bytes after the NUL keep the fill.
fn put_c_string(field: &mut [u8], s: &str) {
    let mut end = s.len().min(field.len() - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    field[..end].copy_from_slice(&s.as_bytes()[..end]);
    field[end] = 0;
}

/// Builds an unencrypted data packet (4304 bytes, or 720 with `legacy`).
///
/// As send_nsca does, every byte is first drawn from `fill` (so what follows a
/// string's NUL, and the struct padding, is noise rather than zeros that would
/// help an attacker), then the fields are written and the CRC set.
pub fn build_packet(
    timestamp: u32,
    return_code: i16,
    host: &str,
    service: &str,
    output: &str,
    legacy: bool,
    fill: &mut impl FnMut() -> u8,
) -> Vec<u8> {
    let (len, output_len) = if legacy {
        (LEGACY_PACKET_LEN, LEGACY_OUTPUT_LEN)
    } else {
        (PACKET_LEN, OUTPUT_LEN)
    };
    let mut p: Vec<u8> = (0..len).map(|_| fill()).collect();
    p[0..2].copy_from_slice(&PACKET_VERSION.to_be_bytes());
    p[TIMESTAMP_AT..TIMESTAMP_AT + 4].copy_from_slice(&timestamp.to_be_bytes());
    p[CODE_AT..CODE_AT + 2].copy_from_slice(&return_code.to_be_bytes());
    put_c_string(&mut p[HOST_AT..HOST_AT + HOST_LEN], &clean_name(host));
    put_c_string(
        &mut p[SERVICE_AT..SERVICE_AT + SERVICE_LEN],
        &clean_name(service),
    );
    put_c_string(
        &mut p[OUTPUT_AT..OUTPUT_AT + output_len],
        &clean_output(output),
    );
    p[CRC_AT..CRC_AT + 4].fill(0);
    let crc = crc32(&p);
    p[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    p
}

/// True when the packet's CRC field matches its contents (decrypted packets only).
pub fn packet_crc_ok(packet: &[u8]) -> bool {
    if packet.len() < CRC_AT + 4 {
        return false;
    }
    let mut copy = packet.to_vec();
    let stored = u32::from_be_bytes([copy[4], copy[5], copy[6], copy[7]]);
    copy[CRC_AT..CRC_AT + 4].fill(0);
    crc32(&copy) == stored
}

/// The password as the C code sees it: a C string, so it ends at the first NUL.
fn c_password(password: &[u8]) -> &[u8] {
    let end = password
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(password.len());
    &password[..end]
}

/// mcrypt's key: the password truncated or zero-padded to the cipher's key size.
fn mcrypt_key<const N: usize>(password: &[u8]) -> [u8; N] {
    let pw = c_password(password);
    let mut key = [0u8; N];
    let n = pw.len().min(N);
    key[..n].copy_from_slice(&pw[..n]);
    key
}

fn xor_in_place(buf: &mut [u8], iv: &[u8; IV_LEN], password: &[u8]) {
    // Two passes in this order, as NSCA's encrypt_buffer does: IV, then password.
    for (b, k) in buf.iter_mut().zip(iv.iter().cycle()) {
        *b ^= k;
    }
    let pw = c_password(password);
    if !pw.is_empty() {
        for (b, k) in buf.iter_mut().zip(pw.iter().cycle()) {
            *b ^= k;
        }
    }
}

/// Encrypts a data packet in place with the server's IV and the password.
///
/// The mcrypt methods are 8-bit CFB with the IV's first block-size bytes; key
/// sizes are mcrypt's maximum for the algorithm (DES 8, 3DES 24, RIJNDAEL-128 32).
pub fn encrypt(packet: &mut [u8], iv: &[u8; IV_LEN], password: &[u8], method: Encryption) {
    match method {
        Encryption::None => {}
        Encryption::Xor => xor_in_place(packet, iv, password),
        Encryption::Des => {
            let key = mcrypt_key::<8>(password);
            cfb8::Encryptor::<des::Des>::new(&key.into(), iv[..8].into()).encrypt(packet);
        }
        Encryption::TripleDes => {
            let key = mcrypt_key::<24>(password);
            cfb8::Encryptor::<des::TdesEde3>::new(&key.into(), iv[..8].into()).encrypt(packet);
        }
        Encryption::Rijndael128 => {
            let key = mcrypt_key::<32>(password);
            cfb8::Encryptor::<aes::Aes256>::new(&key.into(), iv[..16].into()).encrypt(packet);
        }
    }
}

/// Inverse of [`encrypt`]: what the server does (used to verify captures).
pub fn decrypt(packet: &mut [u8], iv: &[u8; IV_LEN], password: &[u8], method: Encryption) {
    match method {
        Encryption::None => {}
        Encryption::Xor => xor_in_place(packet, iv, password),
        Encryption::Des => {
            let key = mcrypt_key::<8>(password);
            cfb8::Decryptor::<des::Des>::new(&key.into(), iv[..8].into()).decrypt(packet);
        }
        Encryption::TripleDes => {
            let key = mcrypt_key::<24>(password);
            cfb8::Decryptor::<des::TdesEde3>::new(&key.into(), iv[..8].into()).decrypt(packet);
        }
        Encryption::Rijndael128 => {
            let key = mcrypt_key::<32>(password);
            cfb8::Decryptor::<aes::Aes256>::new(&key.into(), iv[..16].into()).decrypt(packet);
        }
    }
}

/// Padding noise in send_nsca's alphabet (`'0' + rand % 72`), so the end of the
/// text is not obvious; not cryptographic, as in send_nsca.
pub fn padding_fill() -> impl FnMut() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded by the OS: a free, dependency-less random seed.
    let mut state = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        | 1;
    move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
        b'0' + (r % 72) as u8
    }
}

/// Where and how to send passive checks.
#[derive(Debug, Clone)]
pub struct NscaClient {
    /// NSCA server host name or IP literal.
    pub host: String,
    /// NSCA server TCP port (5667 by default).
    pub port: u16,
    /// Shared secret; empty for none.
    pub password: Vec<u8>,
    /// Must match the server's `decryption_method`.
    pub encryption: Encryption,
    /// Send 720-byte NSCA 2.7 packets instead of 4304-byte ones.
    pub legacy_packet: bool,
    /// Bound on one whole exchange: connect, init packet, send.
    pub timeout: Duration,
}

impl NscaClient {
    /// A client with send_nsca's defaults: XOR, no password, 10 s timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        NscaClient {
            host: host.into(),
            port,
            password: Vec::new(),
            encryption: Encryption::Xor,
            legacy_packet: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Applies what a `send_nsca.cfg` sets, keeping the rest.
    pub fn with_config(mut self, cfg: &SendNscaConfig) -> Self {
        if let Some(p) = &cfg.password {
            self.password = p.clone();
        }
        if let Some(e) = cfg.encryption {
            self.encryption = e;
        }
        if let Some(l) = cfg.legacy_packet {
            self.legacy_packet = l;
        }
        self
    }

    /// Builds and encrypts the data packet answering an init packet. Pure.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &self,
        iv: &[u8; IV_LEN],
        timestamp: u32,
        host_name: &str,
        service: &str,
        return_code: i16,
        output: &str,
        fill: &mut impl FnMut() -> u8,
    ) -> Vec<u8> {
        let mut p = build_packet(
            timestamp,
            return_code,
            host_name,
            service,
            output,
            self.legacy_packet,
            fill,
        );
        encrypt(&mut p, iv, &self.password, self.encryption);
        p
    }

    /// Sends one passive service check; the whole exchange is bounded by `timeout`.
    pub async fn send_check(
        &self,
        host_name: &str,
        service: &str,
        code: CheckStatus,
        output: &str,
    ) -> Result<(), NscaError> {
        let addr = format!("{}:{}", self.host, self.port);
        let deadline = Instant::now() + self.timeout;
        let timed_out = |stage| NscaError::Timeout {
            addr: addr.clone(),
            stage,
            after: self.timeout,
        };
        let io_err = |stage, source| NscaError::Io {
            addr: addr.clone(),
            stage,
            source,
        };

        let mut stream = timeout_at(
            deadline,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(|e| io_err("connect", e))?;

        let mut init = [0u8; INIT_PACKET_LEN];
        timeout_at(deadline, stream.read_exact(&mut init))
            .await
            .map_err(|_| timed_out("read init packet"))?
            .map_err(|e| io_err("read init packet", e))?;
        let (iv, timestamp) = parse_init_packet(&init);

        let packet = self.seal(
            &iv,
            timestamp,
            host_name,
            service,
            code as i16,
            output,
            &mut padding_fill(),
        );
        // shutdown() sends FIN: a 2.7-style (short) packet is only recognised by
        // the server when the client closes its side right after it.
        timeout_at(deadline, async {
            stream.write_all(&packet).await?;
            stream.shutdown().await
        })
        .await
        .map_err(|_| timed_out("send check"))?
        .map_err(|e| io_err("send check", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn method_numbers_round_trip() {
        for n in [0, 1, 2, 3, 14] {
            let e = Encryption::from_method_number(n).expect("supported");
            assert_eq!(e.method_number(), n);
            assert_eq!(e.name().parse::<Encryption>().expect("name"), e);
            assert_eq!(n.to_string().parse::<Encryption>().expect("number"), e);
        }
    }

    #[test]
    fn unsupported_methods_are_refused() {
        for n in [4, 8, 13, 15, 16, 26, 99] {
            let err = Encryption::from_method_number(n).expect_err("unsupported");
            assert!(err
                .to_string()
                .contains("unsupported NSCA encryption method"));
        }
        assert!("blowfish".parse::<Encryption>().is_err());
        assert!("".parse::<Encryption>().is_err());
    }

    #[test]
    fn encryption_names() {
        assert_eq!("XOR".parse::<Encryption>().ok(), Some(Encryption::Xor));
        assert_eq!(
            "tripledes".parse::<Encryption>().ok(),
            Some(Encryption::TripleDes)
        );
        assert_eq!(
            "RIJNDAEL_128".parse::<Encryption>().ok(),
            Some(Encryption::Rijndael128)
        );
        assert_eq!(Encryption::Rijndael128.to_string(), "14 (rijndael-128)");
    }

    #[test]
    fn cfg_password_and_method() {
        let text = "# send_nsca.cfg\n\npassword=s3cr3t pw \nencryption_method=14\n";
        let (pw, enc) = parse_send_nsca_cfg(text).expect("valid");
        assert_eq!(pw.as_deref(), Some(&b"s3cr3t pw "[..]));
        assert_eq!(enc, Some(Encryption::Rijndael128));
    }

    #[test]
    fn cfg_silent_file_sets_nothing() {
        let cfg = parse_send_nsca_config("#password=x\n   # indented comment\n\n").expect("valid");
        assert_eq!(cfg, SendNscaConfig::default());
    }

    #[test]
    fn cfg_value_keeps_equals_and_drops_cr() {
        let cfg =
            parse_send_nsca_config("password=a=b\r\nlegacy_2_7_mode=true\r\n").expect("valid");
        assert_eq!(cfg.password.as_deref(), Some(&b"a=b"[..]));
        assert_eq!(cfg.legacy_packet, Some(true));
    }

    #[test]
    fn cfg_errors_name_the_line() {
        let cases = [
            ("encryption_method=4\n", 1, "unsupported"),
            ("# c\nencryption_method=xor\n", 2, "must be a number"),
            ("password=\n", 1, "no value"),
            ("\nserver=1\n", 2, "unknown option"),
            ("password\n", 1, "name=value"),
            ("legacy_2_7_mode=maybe\n", 1, "true or false"),
        ];
        for (text, line, needle) in cases {
            match parse_send_nsca_config(text) {
                Err(NscaError::Config { line: l, reason }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(reason.contains(needle), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: expected a config error, got {other:?}"),
            }
        }
    }

    fn counter_fill() -> impl FnMut() -> u8 {
        let mut n = 0u8;
        move || {
            n = n.wrapping_add(1);
            n
        }
    }

    #[test]
    fn packet_layout() {
        let p = build_packet(0x0102_0304, 2, "h", "s", "o", false, &mut counter_fill());
        assert_eq!(p.len(), PACKET_LEN);
        assert_eq!(&p[0..2], &[0, 3]);
        assert_eq!(&p[2..4], &[3, 4], "struct padding keeps the fill");
        assert_eq!(&p[8..14], &[1, 2, 3, 4, 0, 2]);
        assert_eq!(&p[14..16], b"h\0");
        assert_eq!(p[16], 17, "fill after the NUL");
        assert_eq!(&p[78..80], b"s\0");
        assert_eq!(&p[206..208], b"o\0");
        assert!(packet_crc_ok(&p));
        let legacy = build_packet(0, 0, "h", "s", "o", true, &mut counter_fill());
        assert_eq!(legacy.len(), LEGACY_PACKET_LEN);
        assert!(packet_crc_ok(&legacy));
    }

    #[test]
    fn long_fields_are_truncated_on_char_boundaries() {
        let host = "é".repeat(40); // 80 bytes
        let output = "x".repeat(600);
        let p = build_packet(0, 0, &host, "s", &output, true, &mut || 0xAA);
        // 63 bytes fit; 'é' is 2 bytes, so 31 of them (62 bytes), then NUL.
        assert_eq!(&p[14..14 + 62], "é".repeat(31).as_bytes());
        assert_eq!(p[14 + 62], 0);
        assert_eq!(&p[206..206 + 511], &output.as_bytes()[..511]);
        assert_eq!(p[206 + 511], 0);
    }

    #[test]
    fn control_characters_are_replaced() {
        let p = build_packet(0, 0, "a\nb", "s;\r", "x\\y\nz\0!", false, &mut || 0);
        assert_eq!(&p[14..18], b"a_b\0");
        assert_eq!(&p[78..82], b"s;_\0");
        assert_eq!(&p[206..214], b"x\\y z !\0");
    }

    #[test]
    fn encrypt_decrypt_round_trip() {
        let iv: [u8; IV_LEN] = std::array::from_fn(|i| (i * 7) as u8);
        for e in [
            Encryption::None,
            Encryption::Xor,
            Encryption::Des,
            Encryption::TripleDes,
            Encryption::Rijndael128,
        ] {
            let plain = build_packet(5, 1, "h", "s", "o", false, &mut counter_fill());
            let mut p = plain.clone();
            encrypt(&mut p, &iv, b"pw", e);
            if e != Encryption::None {
                assert_ne!(p, plain, "{e}");
            }
            decrypt(&mut p, &iv, b"pw", e);
            assert_eq!(p, plain, "{e}");
        }
    }

    #[test]
    fn xor_is_iv_then_password() {
        let iv = [0x0Fu8; IV_LEN];
        let mut buf = [0u8; 4];
        encrypt(&mut buf, &iv, b"ab", Encryption::Xor);
        assert_eq!(buf, [0x0F ^ b'a', 0x0F ^ b'b', 0x0F ^ b'a', 0x0F ^ b'b']);
        // An empty password (C: XOR with the terminating NUL) changes nothing.
        let mut buf = [0u8; 2];
        encrypt(&mut buf, &iv, b"", Encryption::Xor);
        assert_eq!(buf, [0x0F, 0x0F]);
    }

    #[test]
    fn padding_fill_uses_send_nsca_alphabet() {
        let mut f = padding_fill();
        for _ in 0..1000 {
            let b = f();
            assert!((b'0'..b'0' + 72).contains(&b));
        }
    }
}
