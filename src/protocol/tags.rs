//! Tags from every dialect (DogStatsD `|#k:v,bare`, Graphite `;k=v`,
//! InfluxDB `,k=v`) merged into one Graphite tagged series key,
//! `name;a=1;b=2`: sorted by key, a repeated key keeping its last value.

use super::{ParseError, MAX_KEY_BYTES, MAX_TAGS};

/// Bytes Graphite does not allow in a tag key or value (and white space,
/// which carbon's plaintext protocol splits on), replaced, never dropped:
/// `;` `~` `=` become `_` as Etsy's statsd does, `!` `^` too in keys; `/`
/// becomes `-` as in names, since carbon may make a file name of the series.
#[inline]
fn tag_byte(b: u8, key: bool) -> u8 {
    match b {
        b';' | b'~' | b'=' => b'_',
        b'/' => b'-',
        b'!' | b'^' if key => b'_',
        // Control bytes, space, DEL and everything non-ASCII.
        0..=b' ' | 0x7f..=0xff => b'_',
        _ => b,
    }
}

/// A tag key as it is written: byte for byte through [`tag_byte`].
fn cleaned_key(key: &[u8]) -> impl Iterator<Item = u8> + '_ {
    key.iter().map(|b| tag_byte(*b, true))
}

/// One tag, still raw.
type RawTag<'a> = (&'a [u8], &'a [u8]);

/// Collects tags, checking each and the count.
#[derive(Debug, Default)]
struct Tags<'a> {
    /// Tags in arrival order.
    list: Vec<RawTag<'a>>,
}

impl<'a> Tags<'a> {
    fn push(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), ParseError> {
        if key.is_empty() || value.is_empty() {
            return Err(ParseError::BadTag);
        }
        if self.list.len() == MAX_TAGS {
            return Err(ParseError::TooManyTags);
        }
        self.list.push((key, value));
        Ok(())
    }
}

/// Builds the series key from a cleaned name, the `k=v` sections of the
/// name (`;` or `,` separated) and the DogStatsD `#` sections (`,`
/// separated `k:v` or bare `k`, which is `k=true`).
pub fn tagged_key(
    name: &str,
    name_tags: Option<&[u8]>,
    dog_sections: &[&[u8]],
) -> Result<String, ParseError> {
    let mut tags = Tags::default();
    if let Some(text) = name_tags {
        for section in text.split(|b| matches!(b, b';' | b',')) {
            if section.is_empty() {
                continue;
            }
            match section.iter().position(|b| *b == b'=') {
                Some(at) => tags.push(&section[..at], &section[at + 1..])?,
                // Only the InfluxDB form lets one through (see split_name).
                None => tags.push(section, b"true")?,
            }
        }
    }
    for section in dog_sections {
        for tag in section.split(|b| *b == b',') {
            if tag.is_empty() {
                continue;
            }
            match tag.iter().position(|b| *b == b':') {
                Some(at) => tags.push(&tag[..at], &tag[at + 1..])?,
                None => tags.push(tag, b"true")?,
            }
        }
    }
    let mut list = tags.list;
    // Sorted and deduplicated by the key as written (cleaned), not as sent:
    // `a b` and `a_b` are one tag, and `é` (`__`) sorts before `a`. Stable:
    // equal keys stay in arrival order, and the last one is kept.
    list.sort_by(|a, b| cleaned_key(a.0).cmp(cleaned_key(b.0)));
    let mut key = Vec::with_capacity(name.len() + 16 * list.len());
    key.extend_from_slice(name.as_bytes());
    for (i, (tag_key, value)) in list.iter().enumerate() {
        if list
            .get(i + 1)
            .is_some_and(|next| cleaned_key(next.0).eq(cleaned_key(tag_key)))
        {
            continue;
        }
        key.push(b';');
        key.extend(cleaned_key(tag_key));
        key.push(b'=');
        key.extend(value.iter().map(|b| tag_byte(*b, false)));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ParseError::NameTooLong);
    }
    // Every byte is ASCII: the name is clean, tag bytes are mapped to ASCII.
    String::from_utf8(key).map_err(|_| ParseError::BadTag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name_tags: Option<&str>, dog: &[&str]) -> Result<String, ParseError> {
        let dog: Vec<&[u8]> = dog.iter().map(|s| s.as_bytes()).collect();
        tagged_key("n", name_tags.map(str::as_bytes), &dog)
    }

    #[test]
    fn every_dialect_merges_sorted() {
        assert_eq!(
            key(Some("z=1;a=2"), &["m:x,bare", "b:y"]).unwrap(),
            "n;a=2;b=y;bare=true;m=x;z=1"
        );
    }

    #[test]
    fn repeated_key_keeps_the_last_value() {
        assert_eq!(key(Some("k=1"), &["k:2", "k:3"]).unwrap(), "n;k=3");
    }

    #[test]
    fn forbidden_bytes_become_underscores() {
        assert_eq!(key(None, &["a b:c;d~e=f"]).unwrap(), "n;a_b=c_d_e_f");
        assert_eq!(key(None, &["route:/home"]).unwrap(), "n;route=-home");
        assert_eq!(key(None, &["k:caf\u{e9}"]).unwrap(), "n;k=caf__");
    }

    #[test]
    fn keys_are_sorted_and_merged_as_written() {
        // Found by the dogstatsd_fields fuzz target: sorted as sent, `é`
        // (written `__`) came after `a b` (written `a_b`).
        assert_eq!(key(None, &["a b:c;d,\u{e9}"]).unwrap(), "n;__=true;a_b=c_d");
        // Keys that clean to the same text are one tag: the last value wins.
        assert_eq!(key(None, &["a b:1", "a_b:2"]).unwrap(), "n;a_b=2");
        assert_eq!(key(Some("a~b=1"), &["a;b:2"]).unwrap(), "n;a_b=2");
        // So two lines naming the same Graphite series get the same key.
        assert_eq!(
            key(None, &["\u{e9}:1,_z:2"]).unwrap(),
            key(None, &["__:1,_z:2"]).unwrap()
        );
    }

    #[test]
    fn empty_key_or_value_and_too_many_are_refused() {
        assert_eq!(key(None, &[":v"]), Err(ParseError::BadTag));
        assert_eq!(key(Some("=v"), &[]), Err(ParseError::BadTag));
        assert_eq!(key(None, &["k:"]), Err(ParseError::BadTag));
        let many: String = (0..=MAX_TAGS).map(|i| format!("t{i},")).collect();
        assert_eq!(key(None, &[&many]), Err(ParseError::TooManyTags));
    }
}
