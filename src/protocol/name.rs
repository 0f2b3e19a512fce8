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
