//! Names as the original cleaned them, byte by byte, and Graphite or
//! InfluxDB tags carried in the name (`name;k=v`, `name,k=v`).

use std::borrow::Cow;

/// For each byte: does a cleaned name keep it as it is?
const CLEAN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.';
        b += 1;
    }
    table
};

/// True for the bytes a cleaned name keeps as they are.
#[inline]
pub fn is_clean_byte(b: u8) -> bool {
    CLEAN[b as usize]
}

/// `0x01` in every byte of a word, and `0x80`.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// For a word whose bytes are all below `0x80`: the high bit of each byte
/// is set where that byte is at least `least` (1..=0x80); no byte carries
/// into the next, as each sum stays below `0x100`.
#[inline]
fn at_least(word: u64, least: u8) -> u64 {
    word + ONES * u64::from(0x80 - least)
}

/// The high bit of each byte of `word` set where that byte is clean.
#[inline]
fn clean_bytes(word: u64) -> u64 {
    let ascii = !word & HIGH;
    let low = word & !HIGH;
    let folded = low | (ONES * 0x20);
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    let digit = at_least(low, b'0') & !at_least(low, b'9' + 1);
    let dash_or_dot = at_least(low, b'-') & !at_least(low, b'/');
    let underscore = !at_least(low ^ (ONES * u64::from(b'_')), 1);
    (letter | digit | dash_or_dot | underscore) & ascii
}

/// How many bytes at the start of `bytes` are clean, read eight at a time
/// (a byte at a time cost about six instructions; this, about three).
#[inline]
pub fn clean_prefix_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let dirty = !clean_bytes(u64::from_le_bytes(word)) & HIGH;
        if dirty != 0 {
            return at + (dirty.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && is_clean_byte(bytes[at]) {
        at += 1;
    }
    at
}

/// White space other than the space itself, as Python's `\s` on bytes.
#[inline]
fn is_other_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Cleans a name exactly as the original did, on raw bytes: each space
/// becomes `_`, each run of other white space one `_`, `/` becomes `-`, and
/// every other byte outside `A-Z a-z 0-9 _ - .` (non-ASCII and invalid
/// UTF-8 included) is removed. Borrows when the name is already clean.
pub fn clean_name(name: &[u8]) -> Cow<'_, str> {
    if name.iter().all(|b| is_clean_byte(*b)) {
        return Cow::Borrowed(clean_as_str(name));
    }
    let mut out = String::with_capacity(name.len());
    let mut in_other_space = false;
    for &b in name {
        if is_other_space(b) {
            if !in_other_space {
                out.push('_');
            }
            in_other_space = true;
            continue;
        }
        in_other_space = false;
        match b {
            b' ' => out.push('_'),
            b'/' => out.push('-'),
            _ if is_clean_byte(b) => out.push(b as char),
            _ => {}
        }
    }
    Cow::Owned(out)
}

/// A name whose every byte is clean, as text, without checking again.
///
/// # Panics
/// In debug builds, when a byte is not clean (a caller's bug).
#[inline]
pub fn clean_as_str(name: &[u8]) -> &str {
    debug_assert!(name.iter().all(|b| is_clean_byte(*b)));
    // SAFETY: the caller has checked that every byte is clean, and clean
    // bytes (A-Z a-z 0-9 _ - .) are ASCII, which is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(name) }
}

/// A name split into the series name and the tags it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts<'a> {
    /// The cleaned name.
    pub name: Cow<'a, str>,
    /// `k=v` sections after the first `;` or `,`, unparsed.
    pub tags: Option<&'a [u8]>,
}

/// Splits `name;k=v;k2=v2` (Graphite) or `name,k=v` (InfluxDB). The
/// sections count as tags only when every one of them has the `k=v` form,
/// or, in the InfluxDB form (first separator `,`), when one has it and the
/// others are bare tags (`name,canary,env=prod`, as hot-shots sends bare
/// tags with `telegraf: true`; a bare tag is `canary=true`); otherwise the
/// whole name is cleaned as the original did.
pub fn split_name(raw: &[u8]) -> NameParts<'_> {
    let Some(at) = raw.iter().position(|b| matches!(b, b';' | b',')) else {
        return NameParts {
            name: clean_name(raw),
            tags: None,
        };
    };
    let rest = &raw[at + 1..];
    let influx = raw[at] == b',';
    let all_tags = rest
        .split(|b| matches!(b, b';' | b','))
        .all(|section| influx || section.is_empty() || section.contains(&b'='));
    if all_tags && rest.contains(&b'=') {
        NameParts {
            name: clean_name(&raw[..at]),
            tags: Some(rest),
        }
    } else {
        NameParts {
            name: clean_name(raw),
            tags: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar rule, for comparison.
    fn clean_prefix_bytewise(bytes: &[u8]) -> usize {
        bytes.iter().take_while(|b| is_clean_byte(**b)).count()
    }

    #[test]
    fn clean_prefix_eight_at_a_time_agrees_with_the_table() {
        for at in 0..9 {
            for byte in 0..=255u8 {
                let mut text = b"abcdefghijZ_-.09".to_vec();
                text[at] = byte;
                assert_eq!(
                    clean_prefix_len(&text),
                    clean_prefix_bytewise(&text),
                    "byte {byte:#04x} at {at}"
                );
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"aZ09_-./:;,| \t\x7f\x80\xff@[`{";
        for _ in 0..20_000 {
            let len = rng.usize(0..40);
            let text: Vec<u8> = (0..len)
                .map(|_| match rng.u8(0..4) {
                    0 => rng.u8(..),
                    _ => alphabet[rng.usize(..alphabet.len())],
                })
                .collect();
            assert_eq!(
                clean_prefix_len(&text),
                clean_prefix_bytewise(&text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn spaces_one_each_other_white_space_one_per_run() {
        assert_eq!(clean_name(b"a  b"), "a__b");
        assert_eq!(clean_name(b"a \t b"), "a___b");
        assert_eq!(clean_name(b"a\t\tb"), "a_b");
        assert_eq!(clean_name(b"tab\t end"), "tab__end");
    }

    #[test]
    fn non_ascii_and_invalid_bytes_disappear() {
        assert_eq!(clean_name("a\u{a0}b".as_bytes()), "ab");
        assert_eq!(clean_name(b"a\xffb"), "ab");
        assert_eq!(clean_name(b"x/y z!"), "x-y_z");
        assert_eq!(clean_name(b"ok.name-1_x"), "ok.name-1_x");
    }

    #[test]
    fn tags_in_the_name_only_in_k_v_form() {
        let parts = split_name(b"req;route=home;method=get");
        assert_eq!(parts.name, "req");
        assert_eq!(parts.tags, Some(&b"route=home;method=get"[..]));
        assert_eq!(split_name(b"cpu,host=a").tags, Some(&b"host=a"[..]));
        let plain = split_name(b"a;b");
        assert_eq!((plain.name.as_ref(), plain.tags), ("ab", None));
        assert_eq!(split_name(b"a;b=1;c").tags, None);
        let influx = split_name(b"m,canary,env=prod");
        assert_eq!(
            (influx.name.as_ref(), influx.tags),
            ("m", Some(&b"canary,env=prod"[..]))
        );
        assert_eq!(split_name(b"a,b").tags, None, "no k=v at all: a plain name");
    }
}
