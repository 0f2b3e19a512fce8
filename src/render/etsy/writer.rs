//! Etsy's line shape: `namespace.name<suffix><globalSuffix>[;tags] value ts`.

use crate::render::write_number;

/// Writes lines at one timestamp and counts them.
pub struct Writer<'a> {
    /// The payload.
    out: &'a mut Vec<u8>,
    /// The flush's timestamp, as text once.
    timestamp: String,
    /// Etsy's `globalSuffix` with its dot, or empty.
    global_suffix: &'a str,
    /// Lines written.
    lines: usize,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>, timestamp: u64, global_suffix: &'a str) -> Writer<'a> {
        Writer {
            out,
            timestamp: timestamp.to_string(),
            global_suffix,
            lines: 0,
        }
    }

    /// Lines written so far.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// `prefix.name<first><second><globalSuffix>[;tags] value ts`: the key
    /// holds the name and its tags (`name;a=b`); suffixes go between them,
    /// as Etsy's `format()` puts them.
    pub fn line(&mut self, prefix: &str, key: &str, first: &str, second: &str, value: f64) {
        self.path_and_value(prefix, key, first, second, value);
        self.out.extend_from_slice(self.timestamp.as_bytes());
        self.out.push(b'\n');
        self.lines += 1;
    }

    /// The same at a timestamp of its own.
    pub fn line_at(&mut self, prefix: &str, key: &str, suffix: &str, value: f64, at: u64) {
        self.path_and_value(prefix, key, suffix, "", value);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(at).as_bytes());
        self.out.push(b'\n');
        self.lines += 1;
    }

    /// A whole path given as is, plus the global suffix.
    pub fn raw(&mut self, path: &str, value: f64) {
        self.line("", path, "", "", value);
    }

    fn path_and_value(&mut self, prefix: &str, key: &str, first: &str, second: &str, value: f64) {
        let (name, tags) = match key.find(';') {
            Some(at) => key.split_at(at),
            None => (key, ""),
        };
        if !prefix.is_empty() {
            self.out.extend_from_slice(prefix.as_bytes());
            self.out.push(b'.');
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(first.as_bytes());
        self.out.extend_from_slice(second.as_bytes());
        self.out.extend_from_slice(self.global_suffix.as_bytes());
        self.out.extend_from_slice(tags.as_bytes());
        self.out.push(b' ');
        write_number(self.out, value);
        self.out.push(b' ');
    }
}
