//! `statebucket doctor`: will `terraform init -backend-config=<this backend.hcl>` work for
//! me, here, now, and if not, exactly why. This module holds the pure parts: the credential
//! order of Terraform's S3 backend, the classic traps in a Terraform directory and in the
//! AWS config files, and the shape of a check. backend.hcl is read by `render`.

mod policy_checks;
mod probes;
mod replication;
mod run;
mod session;

use std::fmt;

use serde::Serialize;

pub use run::{DoctorRun, diagnose};

use crate::aws::session::SessionRequest;
use crate::render::{BackendConfig, HclValue};
use crate::spec::RoleDuration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        })
    }
}

/// One line of the report, with the concrete fix when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn new(check: &str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            check: check.to_owned(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Where Terraform's S3 backend gets credentials, in its own order (aws-sdk-go-base): a
/// `profile` in the backend configuration wins over environment keys, which win over
/// `AWS_PROFILE`, then the `default` profile, then container and instance credentials. The
/// `provider "aws"` block is never consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `assume_role_with_web_identity` in backend.hcl: the OIDC token in `token_file`
    /// exchanged for the role's credentials. It replaces every other source.
    WebIdentity {
        role_arn: String,
        token_file: String,
    },
    BackendProfile(String),
    EnvironmentKeys,
    AwsProfile(String),
    DefaultChain,
}

impl CredentialSource {
    pub fn resolve(
        config: &BackendConfig,
        env_keys_set: bool,
        aws_profile: Option<&str>,
    ) -> CredentialSource {
        let web_identity = config.object("assume_role_with_web_identity");
        if let (Some(role_arn), Some(token_file)) = (
            web_identity.get("role_arn"),
            web_identity.get("web_identity_token_file"),
        ) {
            CredentialSource::WebIdentity {
                role_arn: role_arn.clone(),
                token_file: token_file.clone(),
            }
        } else if let Some(profile) = config.string("profile") {
            CredentialSource::BackendProfile(profile.to_owned())
        } else if env_keys_set {
            CredentialSource::EnvironmentKeys
        } else if let Some(profile) = aws_profile.filter(|profile| !profile.is_empty()) {
            CredentialSource::AwsProfile(profile.to_owned())
        } else {
            CredentialSource::DefaultChain
        }
    }

    /// The profile to load, if the source is one.
    pub fn profile(&self) -> Option<&str> {
        match self {
            CredentialSource::BackendProfile(profile) | CredentialSource::AwsProfile(profile) => {
                Some(profile)
            }
            _ => None,
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::WebIdentity {
                role_arn,
                token_file,
            } => write!(
                f,
                "web identity: role `{role_arn}` for the token in {token_file}"
            ),
            CredentialSource::BackendProfile(profile) => {
                write!(f, "profile `{profile}` named in backend.hcl")
            }
            CredentialSource::EnvironmentKeys => {
                f.write_str("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment")
            }
            CredentialSource::AwsProfile(profile) => write!(f, "AWS_PROFILE=`{profile}`"),
            CredentialSource::DefaultChain => {
                f.write_str("the `default` profile (or container/instance credentials)")
            }
        }
    }
}

/// The STS session an object attribute of backend.hcl (`assume_role`,
/// `assume_role_with_web_identity`) asks for, as Terraform's backend would ask STS;
/// `None` without the attribute or its `role_arn`.
pub fn session_request(config: &BackendConfig, attribute: &str) -> Option<SessionRequest> {
    let fields = config.fields(attribute)?;
    let text = |name: &str| match fields.get(name) {
        Some(HclValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    let list = |name: &str| match fields.get(name) {
        Some(HclValue::List(items)) => items.clone(),
        _ => Vec::new(),
    };
    let tags = fields
        .get("tags")
        .map(HclValue::string_fields)
        .unwrap_or_default()
        .into_iter()
        .collect();
    Some(SessionRequest {
        role_arn: text("role_arn")?,
        session_name: text("session_name"),
        duration_seconds: text("duration")
            .and_then(|duration| RoleDuration::parse(&duration).ok())
            .map(|duration| duration.seconds() as i32),
        policy_arns: list("policy_arns"),
        policy: text("policy"),
        external_id: text("external_id"),
        source_identity: text("source_identity"),
        tags,
        transitive_tag_keys: list("transitive_tag_keys"),
    })
}

/// A `provider "aws"` block that sets credentials the S3 backend will not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderTrap {
    pub file: String,
    pub line: usize,
    /// The credential settings found in the block (`profile = "x"`, `assume_role`, …).
    pub settings: Vec<String>,
}

const PROVIDER_CREDENTIAL_SETTINGS: &[&str] = &[
    "profile",
    "access_key",
    "secret_key",
    "token",
    "assume_role",
    "assume_role_with_web_identity",
    "shared_credentials_files",
    "shared_config_files",
];

/// Finds `provider "aws" { … }` blocks with credential settings in Terraform files.
pub fn provider_traps(files: &[(String, String)]) -> Vec<ProviderTrap> {
    let mut traps = Vec::new();
    for (file, text) in files {
        let mut search = 0;
        while let Some(found) = text[search..].find("provider \"aws\"") {
            let start = search + found;
            let Some(open) = text[start..].find('{').map(|offset| start + offset) else {
                break;
            };
            let mut depth = 0;
            let mut end = text.len();
            for (offset, c) in text[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + offset;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let body = &text[open + 1..end];
            let settings: Vec<String> = body
                .lines()
                .map(str::trim)
                .filter(|line| {
                    PROVIDER_CREDENTIAL_SETTINGS.iter().any(|setting| {
                        line.strip_prefix(setting).is_some_and(|rest| {
                            rest.trim_start().starts_with('=') || rest.trim_start().starts_with('{')
                        })
                    })
                })
                .map(|line| match line.split_once('=') {
                    Some((name, value)) if name.trim() == "profile" => {
                        format!("profile = {}", value.trim())
                    }
                    Some((name, _)) => name.trim().to_owned(),
                    None => line.trim_end_matches('{').trim().to_owned(),
                })
                .collect();
            if !settings.is_empty() {
                traps.push(ProviderTrap {
                    file: file.clone(),
                    line: text[..start].matches('\n').count() + 1,
                    settings,
                });
            }
            search = end.max(start + 1);
        }
    }
    traps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::parse_backend_hcl;

    #[test]
    fn the_backend_credential_order() {
        let with_profile = parse_backend_hcl("profile = \"terraform\"\n").unwrap();
        let without = BackendConfig::default();
        assert_eq!(
            CredentialSource::resolve(&with_profile, true, Some("x")),
            CredentialSource::BackendProfile("terraform".into())
        );
        assert_eq!(
            CredentialSource::resolve(&without, true, Some("x")),
            CredentialSource::EnvironmentKeys
        );
        assert_eq!(
            CredentialSource::resolve(&without, false, Some("x")),
            CredentialSource::AwsProfile("x".into())
        );
        assert_eq!(
            CredentialSource::resolve(&without, false, None),
            CredentialSource::DefaultChain
        );
    }

    #[test]
    fn provider_blocks_with_credentials_are_found() {
        let main = "terraform {\n  backend \"s3\" {}\n}\n\nprovider \"aws\" {\n  region  = \"eu-west-1\"\n  profile = \"terraform\"\n  assume_role {\n    role_arn = \"arn:aws:iam::1:role/x\"\n  }\n}\n\nprovider \"aws\" {\n  alias = \"plain\"\n}\n";
        let traps = provider_traps(&[("main.tf".into(), main.into())]);
        assert_eq!(
            traps,
            vec![ProviderTrap {
                file: "main.tf".into(),
                line: 5,
                settings: vec!["profile = \"terraform\"".into(), "assume_role".into()]
            }]
        );
    }
}
