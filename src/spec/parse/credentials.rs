//! Refusing credentials anywhere in a spec, without echoing them.

use super::Walker;
use crate::spec::names::Problem;
use crate::spec::yaml::{Node, Yaml};

/// Keys that would hold credentials. Spec files are committed, and whatever reaches
/// backend.hcl is stored in plain text in `.terraform/terraform.tfstate` and in plan files.
const CREDENTIAL_KEYS: &[&str] = &[
    "access_key",
    "secret_key",
    "token",
    "session_token",
    "security_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "access_key_id",
    "secret_access_key",
    "sse_customer_key",
    "web_identity_token",
    "password",
];

const CREDENTIAL_HINT: &str = "credentials never go in spec files (they are committed, and backend settings are stored in plain text under .terraform/); put the keys in ~/.aws/credentials under the profile named by `profile`, or use SSO, a web identity or environment variables";

pub(super) fn is_credential_key(key: &str) -> bool {
    let normalized = key.to_ascii_lowercase().replace('-', "_");
    CREDENTIAL_KEYS.contains(&normalized.as_str())
}

pub(super) fn looks_like_access_key_id(text: &str) -> bool {
    text.len() == 20
        && (text.starts_with("AKIA") || text.starts_with("ASIA"))
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Walker<'_> {
    /// Refuses credentials anywhere in the document, without echoing their values.
    pub(super) fn refuse_credentials(&mut self, node: &Node) {
        match &node.value {
            Yaml::Map(entries) => {
                for (key, value) in entries {
                    if let Yaml::String(name) = &key.value
                        && is_credential_key(name)
                    {
                        self.report(
                            key.pos,
                            Problem::new(format!("`{name}` holds a credential; specs must not contain credentials"))
                                .hint(CREDENTIAL_HINT),
                        );
                        continue;
                    }
                    self.refuse_credentials(value);
                }
            }
            Yaml::Seq(items) => items.iter().for_each(|item| self.refuse_credentials(item)),
            Yaml::String(text) if looks_like_access_key_id(text) => self.report(
                node.pos,
                Problem::new("this value looks like an AWS access key id; specs must not contain credentials")
                    .hint(CREDENTIAL_HINT),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn credentials_are_refused_without_echoing_them() {
        let text = format!(
            "{DEV}secret_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\naccess_key: AKIAIOSFODNN7EXAMPLE\n"
        );
        let diagnostics = parse_spec("environments/x.yaml", "x", &text).unwrap_err();
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        for diagnostic in &diagnostics {
            let shown = diagnostic.to_string();
            assert!(shown.contains("must not contain credentials"), "{shown}");
            assert!(
                !shown.contains("wJalr") && !shown.contains("AKIAIOSFODNN7EXAMPLE"),
                "{shown}"
            );
        }
        let nested = one_error(&DEV.replace("  key: eks", "  token: abc\n  key: eks"));
        assert!(nested.message.starts_with("`token` holds a credential"));
        let value = one_error(&DEV.replace("profile: terraform", "profile: AKIAIOSFODNN7EXAMPLE"));
        assert!(value.message.contains("access key id"), "{value:?}");
    }
}
