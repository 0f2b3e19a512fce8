//! Golden tests: our NSCA packets are byte-for-byte what the real `send_nsca`
//! (Debian nsca-client 2.10.2) sends, for every encryption method we support.
//!
//! The captures in tests/data/nsca/ (see its README.md) were made once with a
//! fixed IV and timestamp; the padding in them is send_nsca's random fill. Each
//! test decrypts a capture with our code, checks every field and the CRC, then
//! rebuilds the packet with a fill that replays those padding bytes and checks
//! that our encryption reproduces the capture exactly. Needs no packages at run
//! time (the captures are files).

use statsd::alert::nsca::{
    build_packet, crc32, decrypt, encrypt, packet_crc_ok, parse_init_packet, Encryption,
    NscaClient, INIT_PACKET_LEN, IV_LEN, LEGACY_PACKET_LEN, PACKET_LEN,
};

const PASSWORD: &[u8] = b"s3cr3t-password";
const TIMESTAMP: u32 = 0x6543_2100;
const HOST: &str = "web-01";
const SERVICE: &str = "statsd.my_prefix";
const OUTPUT: &str = "WARNING: 12 lines last published in 0.004s";

fn iv() -> [u8; IV_LEN] {
    std::array::from_fn(|i| ((i * 37 + 11) & 0xFF) as u8)
}

fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/nsca/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = text.trim();
    assert!(text.len() % 2 == 0, "{path}: odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

fn c_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).expect("NUL-terminated");
    &field[..end]
}

/// Decrypts a capture, checks its fields, and re-creates it with our code.
fn check_capture(name: &str, method: Encryption, legacy: bool) {
    let wire = capture(name);
    let len = if legacy {
        LEGACY_PACKET_LEN
    } else {
        PACKET_LEN
    };
    assert_eq!(wire.len(), len, "{name}: length");

    let mut plain = wire.clone();
    decrypt(&mut plain, &iv(), PASSWORD, method);
    assert_eq!(&plain[0..2], &[0, 3], "{name}: packet version");
    assert!(packet_crc_ok(&plain), "{name}: CRC");
    assert_eq!(&plain[8..12], &TIMESTAMP.to_be_bytes(), "{name}: timestamp");
    assert_eq!(&plain[12..14], &[0, 1], "{name}: return code");
    assert_eq!(c_str(&plain[14..78]), HOST.as_bytes(), "{name}: host");
    assert_eq!(
        c_str(&plain[78..206]),
        SERVICE.as_bytes(),
        "{name}: service"
    );
    assert_eq!(c_str(&plain[206..]), OUTPUT.as_bytes(), "{name}: output");

    // Replay send_nsca's random bytes as our fill: the packet must come out identical.
    let mut replay = plain.clone().into_iter();
    let mut fill = || replay.next().expect("fill drawn once per byte");
    let rebuilt = build_packet(TIMESTAMP, 1, HOST, SERVICE, OUTPUT, legacy, &mut fill);
    assert_eq!(rebuilt, plain, "{name}: rebuilt plaintext");

    let mut ours = rebuilt;
    encrypt(&mut ours, &iv(), PASSWORD, method);
    assert_eq!(
        ours, wire,
        "{name}: our encryption differs from send_nsca's"
    );

    // The client's own path (build + encrypt from an init packet) gives the same bytes.
    let mut init = [0u8; INIT_PACKET_LEN];
    init[..IV_LEN].copy_from_slice(&iv());
    init[IV_LEN..].copy_from_slice(&TIMESTAMP.to_be_bytes());
    let (got_iv, got_ts) = parse_init_packet(&init);
    let mut client = NscaClient::new("127.0.0.1", 5667);
    client.password = PASSWORD.to_vec();
    client.encryption = method;
    client.legacy_packet = legacy;
    let mut replay = plain.into_iter();
    let mut fill = || replay.next().expect("fill drawn once per byte");
    let sealed = client.seal(&got_iv, got_ts, HOST, SERVICE, 1, OUTPUT, &mut fill);
    assert_eq!(sealed, wire, "{name}: NscaClient::seal");
}

#[test]
fn golden_none_matches_send_nsca() {
    check_capture("send_nsca_m0.hex", Encryption::None, false);
}

#[test]
fn golden_xor_matches_send_nsca() {
    check_capture("send_nsca_m1.hex", Encryption::Xor, false);
}

#[test]
fn golden_des_matches_send_nsca() {
    check_capture("send_nsca_m2.hex", Encryption::Des, false);
}

#[test]
fn golden_3des_matches_send_nsca() {
    check_capture("send_nsca_m3.hex", Encryption::TripleDes, false);
}

#[test]
fn golden_rijndael128_matches_send_nsca() {
    check_capture("send_nsca_m14.hex", Encryption::Rijndael128, false);
}

#[test]
fn golden_legacy_xor_matches_send_nsca() {
    check_capture("send_nsca_m1_legacy.hex", Encryption::Xor, true);
}

#[test]
fn golden_legacy_rijndael128_matches_send_nsca() {
    check_capture("send_nsca_m14_legacy.hex", Encryption::Rijndael128, true);
}

/// The unencrypted capture's header, byte for byte, including send_nsca's CRC.
#[test]
fn golden_header_and_crc() {
    let wire = capture("send_nsca_m0.hex");
    // version 3, 2 random padding bytes, CRC, timestamp, return code 1.
    assert_eq!(
        &wire[..14],
        &[0x00, 0x03, 0x44, 0x38, 0x84, 0xe3, 0xc3, 0x33, 0x65, 0x43, 0x21, 0x00, 0x00, 0x01]
    );
    let mut zeroed = wire.clone();
    zeroed[4..8].fill(0);
    assert_eq!(crc32(&zeroed), 0x84e3_c333);
}

/// A wrong password or method garbles the packet, so the CRC check fails; this
/// is how the daemon rejects it.
#[test]
fn wrong_password_or_method_fails_crc() {
    let wire = capture("send_nsca_m14.hex");
    let mut plain = wire.clone();
    decrypt(
        &mut plain,
        &iv(),
        b"s3cr3t-passworx",
        Encryption::Rijndael128,
    );
    assert!(!packet_crc_ok(&plain));
    let mut plain = wire;
    decrypt(&mut plain, &iv(), PASSWORD, Encryption::Des);
    assert!(!packet_crc_ok(&plain));
}
