use super::*;

fn frame_bodies(data: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        frames.push(&rest[4..4 + length]);
        rest = &rest[4 + length..];
    }
    frames
}

#[test]
fn one_line_exact_bytes() {
    let got = encode(b"a.b 1.5 1700000000\n", MAX_FRAME);
    let mut want = vec![0, 0, 0, 0, 0x80, 2, b']', b'(', b'X', 3, 0, 0, 0];
    want.extend_from_slice(b"a.b");
    want.push(b'J');
    want.extend_from_slice(&1_700_000_000i32.to_le_bytes());
    want.push(b'G');
    want.extend_from_slice(&1.5f64.to_be_bytes());
    want.extend_from_slice(&[0x86, 0x86, b'e', b'.']);
    let length = (want.len() - 4) as u32;
    want[..4].copy_from_slice(&length.to_be_bytes());
    assert_eq!(got.data, want);
    assert_eq!((got.frames, got.skipped), (1, 0));
}

#[test]
fn integers_take_the_smallest_opcode() {
    let cases: [(i64, &[u8]); 8] = [
        (0, &[b'K', 0]),
        (255, &[b'K', 255]),
        (256, &[b'M', 0, 1]),
        (65_536, &[b'J', 0, 0, 1, 0]),
        (-1, &[b'J', 0xff, 0xff, 0xff, 0xff]),
        (1 << 31, &[0x8a, 5, 0, 0, 0, 0x80, 0]),
        (-(1 << 31) - 1, &[0x8a, 5, 0xff, 0xff, 0xff, 0x7f, 0xff]),
        (1 << 40, &[0x8a, 6, 0, 0, 0, 0, 0, 1]),
    ];
    for (int, want) in cases {
        let mut out = Vec::new();
        write_int(int, &mut out);
        assert_eq!(out, want, "{int}");
    }
}

#[test]
fn nothing_in_nothing_out() {
    assert_eq!(encode(b"", MAX_FRAME), Frames::default());
    assert_eq!(encode(b"\n\n", MAX_FRAME), Frames::default());
}

#[test]
fn bad_and_oversized_lines_are_skipped() {
    let long = format!("{} 1 2\n", "x".repeat(300));
    let input = format!("ok 1 2\nno-fields\na nan 3\na 1 x\n{long}b 2 3\n");
    let got = encode(input.as_bytes(), 200);
    assert_eq!((got.frames, got.skipped), (1, 4));
}

#[test]
fn a_flush_is_cut_into_frames_under_the_bound() {
    let mut input = String::new();
    for i in 0..2000 {
        input.push_str(&format!("stats.some.metric_{i} {i}.25 1700000000\n"));
    }
    let max = 4096;
    let got = encode(input.as_bytes(), max);
    let bodies = frame_bodies(&got.data);
    assert_eq!(bodies.len(), got.frames);
    assert!(got.frames > 10, "{}", got.frames);
    assert!(bodies.iter().all(|b| b.len() + 4 <= max));
    assert_eq!(got.skipped, 0);
    // Every line lands once: count the path opcodes.
    let paths: usize = bodies
        .iter()
        .map(|b| b.windows(11).filter(|w| w[5..] == *b"stats.").count())
        .sum();
    assert_eq!(paths, 2000);
}

/// Python's own unpickler and carbon's SafeUnpickler both read the frames
/// back to the values the plaintext lines say (bit for bit for floats).
#[test]
fn python_and_carbon_safe_unpickler_accept_it() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let values = [
        "0",
        "-7",
        "300",
        "70000",
        "2147483648",
        "-99999999999999",
        "0.1",
        "1.5e-7",
        "1e+300",
        "-2.5",
        "1.7976931348623157e308",
    ];
    let mut input = String::new();
    for (i, value) in values.iter().enumerate() {
        input.push_str(&format!("stats.p{i};tag=x {value} 1700000{i:03}\n"));
    }
    // A small bound, so several frames go through.
    let got = encode(input.as_bytes(), 120);
    assert!(got.frames > 2);
    let script = r#"
import pickle, struct, sys
from carbon.util import SafeUnpickler
data = sys.stdin.buffer.read()
while data:
    (n,) = struct.unpack('>I', data[:4])
    assert n + 4 < 2 ** 20
    frame, data = data[4:4 + n], data[4 + n:]
    plain = pickle.loads(frame)
    assert SafeUnpickler.loads(frame) == plain
    assert isinstance(plain, list)
    for path, (ts, value) in plain:
        assert isinstance(path, str) and isinstance(ts, int)
        print(path, ts, type(value).__name__, struct.pack('>d', float(value)).hex())
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (Debian python3 with graphite-carbon; run scripts/test.sh)");
    child.stdin.take().unwrap().write_all(&got.data).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python3 refused the frames: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), values.len());
    for (i, (line, value)) in lines.iter().zip(values).enumerate() {
        let float: f64 = value.parse().unwrap();
        let kind = if value.contains(['.', 'e']) {
            "float"
        } else {
            "int"
        };
        let hex: String = float
            .to_be_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            *line,
            format!("stats.p{i};tag=x 1700000{i:03} {kind} {hex}"),
            "{value}"
        );
    }
}
