//! The bytes on the wire, before encryption: init packet and data packet.
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
    let stored = u32::from_be_bytes([
        copy[CRC_AT],
        copy[CRC_AT + 1],
        copy[CRC_AT + 2],
        copy[CRC_AT + 3],
    ]);
    copy[CRC_AT..CRC_AT + 4].fill(0);
    crc32(&copy) == stored
}

/// Padding noise in send_nsca's alphabet (`'0' + rand % 72`), so the end of the
/// text is not obvious; not cryptographic, as in send_nsca.
pub fn padding_fill() -> impl FnMut() -> u8 {
    let mut rng = fastrand::Rng::new();
    move || b'0' + rng.u8(..72)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A predictable fill, so tests can tell fill bytes from field bytes.
    fn counter_fill() -> impl FnMut() -> u8 {
        let mut n = 0u8;
        move || {
            n = n.wrapping_add(1);
            n
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn init_packet_fields() {
        let mut buf = [0u8; INIT_PACKET_LEN];
        buf[0] = 0xAB;
        buf[IV_LEN..].copy_from_slice(&[0x65, 0x43, 0x21, 0x00]);
        let (iv, ts) = parse_init_packet(&buf);
        assert_eq!((iv[0], iv[IV_LEN - 1], ts), (0xAB, 0, 0x6543_2100));
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
    fn crc_check_rejects_damage_and_short_input() {
        let mut p = build_packet(0, 0, "h", "s", "o", false, &mut counter_fill());
        p[300] ^= 1;
        assert!(!packet_crc_ok(&p));
        assert!(!packet_crc_ok(&[0; CRC_AT + 3]));
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
    fn padding_fill_uses_send_nsca_alphabet() {
        let mut f = padding_fill();
        for _ in 0..1000 {
            let b = f();
            assert!((b'0'..b'0' + 72).contains(&b));
        }
    }
}
