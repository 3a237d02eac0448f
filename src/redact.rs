//! Keeps credential material out of logs. The AWS SDK already redacts secret keys and session
//! tokens in its debug output, but prints access key ids; everything written to stderr by
//! the log subscriber passes through `redact` so that none of them reaches a terminal or CI log.

use std::io::{self, Write};

/// Access key ids (`AKIA…`, `ASIA…`: 4 letters + 16 uppercase letters or digits) are masked,
/// and so is the value after a key that names a secret, should any code print one.
pub fn redact(text: &str) -> String {
    let masked = mask_access_key_ids(text);
    mask_secret_values(&masked)
}

fn mask_access_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let rest = &text[index..];
        let is_key = (rest.starts_with("AKIA") || rest.starts_with("ASIA"))
            && rest.len() >= 20
            && rest.as_bytes()[4..20]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && !rest
                .as_bytes()
                .get(20)
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && (index == 0 || !bytes[index - 1].is_ascii_alphanumeric());
        if is_key {
            out.push_str(&rest[..4]);
            out.push_str("****************");
            index += 20;
        } else {
            let c = rest.chars().next().expect("non-empty rest");
            out.push(c);
            index += c.len_utf8();
        }
    }
    out
}

const SECRET_NAMES: &[&str] = &[
    "secret_access_key",
    "aws_secret_access_key",
    "session_token",
    "aws_session_token",
    "x-amz-security-token",
    "SecretAccessKey",
    "SessionToken",
];

fn mask_secret_values(text: &str) -> String {
    let mut out = text.to_owned();
    for name in SECRET_NAMES {
        let mut search_from = 0;
        while let Some(found) = out[search_from..].find(name) {
            let start = search_from + found + name.len();
            let after = &out[start..];
            let separator = after.len() - after.trim_start_matches([' ', ':', '=', '"']).len();
            let value_start = start + separator;
            let value_len = out[value_start..]
                .find(|c: char| c == '"' || c == ',' || c == '}' || c.is_whitespace())
                .unwrap_or(out.len() - value_start);
            let value = &out[value_start..value_start + value_len];
            if separator > 0 && value_len > 0 && !value.starts_with("**") {
                out.replace_range(value_start..value_start + value_len, "** redacted **");
            }
            search_from = value_start.min(out.len());
            if search_from >= out.len() {
                break;
            }
        }
    }
    out
}

/// A writer for the log subscriber that redacts each chunk before it reaches stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedStderr;

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().lock().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_ids_are_masked() {
        assert_eq!(
            redact(r#"access_key_id: "AKIAIOSFODNN7EXAMPLE", other: ASIATCH6YDSY2JNX5A5J."#),
            r#"access_key_id: "AKIA****************", other: ASIA****************."#
        );
        assert_eq!(redact("XAKIAIOSFODNN7EXAMPLE"), "XAKIAIOSFODNN7EXAMPLE");
        assert_eq!(redact("AKIA-short"), "AKIA-short");
    }

    #[test]
    fn secret_values_are_masked_unless_already_redacted() {
        assert_eq!(
            redact(r#"secret_access_key: "wJalrXUtnFEMI/K7MDENG", x"#),
            r#"secret_access_key: "** redacted **", x"#
        );
        assert_eq!(
            redact("x-amz-security-token: FQoGZXIvYXdz\n"),
            "x-amz-security-token: ** redacted **\n"
        );
        assert_eq!(
            redact(r#"session_token: "** redacted **""#),
            r#"session_token: "** redacted **""#
        );
        assert_eq!(redact("no secrets here"), "no secrets here");
    }
}
