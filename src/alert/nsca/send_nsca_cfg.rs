//! The `send_nsca.cfg` file, so one file configures both send_nsca and us.

use std::path::Path;

use super::{Encryption, NscaError};

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

/// Reads and parses a `send_nsca.cfg` file.
pub fn load_send_nsca_config(path: &Path) -> Result<SendNscaConfig, NscaError> {
    let text = std::fs::read_to_string(path).map_err(|source| NscaError::ConfigFile {
        path: path.display().to_string(),
        source,
    })?;
    parse_send_nsca_config(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfg_password_and_method() {
        let text = "# send_nsca.cfg\n\npassword=s3cr3t pw \nencryption_method=14\n";
        let cfg = parse_send_nsca_config(text).expect("valid");
        assert_eq!(cfg.password.as_deref(), Some(&b"s3cr3t pw "[..]));
        assert_eq!(cfg.encryption, Some(Encryption::Rijndael128));
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

    #[test]
    fn missing_file_names_the_path() {
        let err = load_send_nsca_config(Path::new("/nonexistent/send_nsca.cfg"))
            .expect_err("no such file");
        assert!(matches!(err, NscaError::ConfigFile { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/send_nsca.cfg"));
    }
}
