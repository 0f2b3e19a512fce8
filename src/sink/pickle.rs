//! Carbon's pickle protocol, pure: Graphite plaintext lines (what the
//! backlog keeps) -> length-prefixed pickle frames for carbon's pickle
//! receiver (port 2004). Each frame is a 4-byte big-endian length and a
//! protocol 2 pickle of a list of `(path, (timestamp, value))` tuples.
//!
//! Only plain data opcodes are written (no GLOBAL, REDUCE, BUILD or memo),
//! so carbon's SafeUnpickler, which refuses every class but two, accepts
//! the frames. Carbon drops a connection whose frame is over
//! `PICKLE_RECEIVER_MAX_LENGTH` (1 MiB by default), so a flush is cut into
//! frames under [`MAX_FRAME`] bytes.
//!
//! Numbers keep the meaning they have as text: a value written as an
//! integer is pickled as an int, anything else as the double that the text
//! reads back to (the same one carbon's `float()` makes of plaintext).

/// Largest frame, length prefix included: under carbon's 1 MiB default.
pub const MAX_FRAME: usize = (1 << 20) - 1;

const PROTO: u8 = 0x80;
const EMPTY_LIST: u8 = b']';
const MARK: u8 = b'(';
const APPENDS: u8 = b'e';
const STOP: u8 = b'.';
const BINUNICODE: u8 = b'X';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const TUPLE2: u8 = 0x86;

/// Bytes of a frame around its items: length, PROTO 2, `]`, `(`, `e`, `.`.
const FRAME_OVERHEAD: usize = 4 + 2 + 1 + 1 + 1 + 1;

/// What [`encode`] made of a payload.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Frames {
    /// The frames, one after the other, ready to write.
    pub data: Vec<u8>,
    /// Number of frames in `data`.
    pub frames: usize,
    /// Lines left out: not `path value timestamp`, or too big for a frame
    /// (carbon would have refused the whole frame).
    pub skipped: usize,
}

/// Encodes every `path value timestamp` line of `plaintext` into frames of
/// at most `max_frame` bytes each (use [`MAX_FRAME`]).
pub fn encode(plaintext: &[u8], max_frame: usize) -> Frames {
    let mut out = Frames::default();
    let mut item = Vec::with_capacity(256);
    // Where the open frame starts in `out.data`, if one is open.
    let mut open: Option<usize> = None;
    for line in plaintext.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        item.clear();
        if !encode_line(line, &mut item) || item.len() + FRAME_OVERHEAD > max_frame {
            out.skipped += 1;
            continue;
        }
        if let Some(start) = open {
            // Room for this item and the frame's end?
            if out.data.len() - start + item.len() + 2 > max_frame {
                close_frame(&mut out.data, start);
                open = None;
            }
        }
        if open.is_none() {
            open = Some(out.data.len());
            out.frames += 1;
            out.data
                .extend_from_slice(&[0, 0, 0, 0, PROTO, 2, EMPTY_LIST, MARK]);
        }
        out.data.extend_from_slice(&item);
    }
    if let Some(start) = open {
        close_frame(&mut out.data, start);
    }
    out
}

/// Ends the frame that starts at `start` and writes its length prefix.
fn close_frame(data: &mut Vec<u8>, start: usize) {
    data.extend_from_slice(&[APPENDS, STOP]);
    let length = (data.len() - start - 4) as u32;
    data[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

/// Appends `(path, (timestamp, value))` for one plaintext line; false when
/// the line is not `path value timestamp` with numbers where they belong.
fn encode_line(line: &[u8], out: &mut Vec<u8>) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = line.rsplitn(3, |b| *b == b' ');
    let (Some(timestamp), Some(value), Some(path)) = (fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return false;
    };
    if path.is_empty() || path.len() > u32::MAX as usize {
        return false;
    }
    out.push(BINUNICODE);
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(path.as_bytes());
    if !(number(timestamp, out) && number(value, out)) {
        return false;
    }
    out.extend_from_slice(&[TUPLE2, TUPLE2]);
    true
}

/// Appends a number written as text: an int when the text is an integer
/// that fits in 64 bits, else the double it reads back to.
fn number(text: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(int) = text.parse::<i64>() {
            write_int(int, out);
            return true;
        }
    }
    match text.parse::<f64>() {
        Ok(float) if float.is_finite() => {
            out.push(BINFLOAT);
            out.extend_from_slice(&float.to_be_bytes());
            true
        }
        _ => false,
    }
}

/// The shortest int opcode for `int`: BININT1/2 (unsigned), BININT (32-bit
/// signed), else LONG1 (little-endian two's complement, fewest bytes).
fn write_int(int: i64, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(int) {
        out.extend_from_slice(&[BININT1, small]);
    } else if let Ok(short) = u16::try_from(int) {
        out.push(BININT2);
        out.extend_from_slice(&short.to_le_bytes());
    } else if let Ok(word) = i32::try_from(int) {
        out.push(BININT);
        out.extend_from_slice(&word.to_le_bytes());
    } else {
        let bytes = int.to_le_bytes();
        // Drop high bytes that only repeat the sign of the byte below them.
        let mut n = bytes.len();
        while n > 1 {
            let (top, below) = (bytes[n - 1], bytes[n - 2]);
            let sign_only = (top == 0 && below & 0x80 == 0) || (top == 0xff && below & 0x80 != 0);
            if !sign_only {
                break;
            }
            n -= 1;
        }
        out.extend_from_slice(&[LONG1, n as u8]);
        out.extend_from_slice(&bytes[..n]);
    }
}

#[cfg(test)]
mod tests;
