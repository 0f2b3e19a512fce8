//! Etsy's name cleaning (`sanitizeKeyName` in Etsy's stats.js):
//! `key.replace(/\s+/g, '_').replace(/\//g, '-').replace(/[^a-zA-Z_\-0-9\.;=]/g, '')`.
//! It differs from the original's only where white space repeats: Etsy
//! makes each run of it one `_` (`a  b` is `a_b`; the original: `a__b`).

/// The bytes both rules keep: `A-Z a-z 0-9 _ - .`.
fn is_clean_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Renames `key` to its Etsy-cleaned form where that differs. Out of
/// line, so the receive loop stays as tight as without it.
#[cold]
#[inline(never)]
pub fn rename(line: &[u8], key: &mut std::borrow::Cow<'_, str>) {
    if let Some(renamed) = self::key(line, key) {
        *key = renamed.into();
    }
}

/// The key with its name cleaned Etsy's way, when that differs from the
/// original's cleaning (the name holds white space); `key` is the parser's
/// (cleaned name, then its tags from the first `;`).
pub fn key(line: &[u8], key: &str) -> Option<String> {
    let end = memchr::memchr(b':', line).unwrap_or(line.len());
    let raw = &line[..end];
    let raw = &raw[..raw
        .iter()
        .position(|b| *b == b';' || *b == b',')
        .unwrap_or(raw.len())];
    if !raw.iter().any(u8::is_ascii_whitespace) && !raw.contains(&b'\x0b') {
        return None;
    }
    let mut name = String::with_capacity(raw.len());
    let mut in_space = false;
    for &b in raw {
        if b.is_ascii_whitespace() || b == b'\x0b' {
            if !in_space {
                name.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        match b {
            b'/' => name.push('-'),
            _ if is_clean_byte(b) => name.push(b as char),
            _ => {}
        }
    }
    let tags = key.find(';').map_or("", |at| &key[at..]);
    Some(name + tags)
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn runs_of_white_space_are_one_underscore() {
        assert_eq!(key(b"a  b:1|c", "a__b").as_deref(), Some("a_b"));
        assert_eq!(key(b"a \t b/c:1|c", "a___b-c").as_deref(), Some("a_b-c"));
        assert_eq!(key(b"a  b;k=v:1|c", "a__b;k=v").as_deref(), Some("a_b;k=v"));
        assert_eq!(key(b"plain.name:1|c", "plain.name"), None);
    }
}
