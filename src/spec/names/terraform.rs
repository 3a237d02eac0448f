//! Names Terraform's S3 backend defines: profiles, state keys, workspaces, assumed-role
//! sessions; and the project's own environment and stack names.

use std::fmt;

use super::*;

impl ProfileName {
    /// Profile names become `[profile NAME]` section headers and `profile = "NAME"` in
    /// backend.hcl; brackets, quotes, `=` and whitespace break one or the other.
    pub fn parse(text: &str) -> Result<ProfileName, Problem> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || "-_.@+/:".contains(c);
        if text.is_empty() || text.len() > 128 || !text.chars().all(valid_char) {
            return Err(Problem::new(format!("`{text}` is not a usable AWS profile name")).hint(
                "use letters, digits and `-_.@+/:` (no spaces, brackets, quotes or `=`), as in `[profile terraform]` of ~/.aws/config",
            ));
        }
        Ok(ProfileName(text.to_owned()))
    }
}

impl StateKey {
    /// Terraform's S3 backend: not empty, no leading or trailing `/`, no `//`
    /// (`validateStringS3Path` and PrepareConfig). S3 keys are at most 1024 bytes and the
    /// backend appends `.tflock` and the workspace prefix, so we keep room for both.
    pub fn parse(text: &str) -> Result<StateKey, Problem> {
        let hint = "use a path such as `networking/terraform.tfstate`";
        if text.trim().is_empty() {
            return Err(Problem::new("the state key is empty").hint(hint));
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err(Problem::new(format!(
                "state key `{text}` starts or ends with `/`, which Terraform refuses"
            ))
            .hint("remove the leading or trailing `/`"));
        }
        if text.contains("//") {
            return Err(Problem::new(format!(
                "state key `{text}` contains `//`, which Terraform refuses"
            ))
            .hint("use single `/` between path segments"));
        }
        if text.len() > 900 {
            return Err(Problem::new(format!(
                "state key is {} bytes; S3 keys are at most 1024 bytes including the workspace prefix and `.tflock`",
                text.len()
            ))
            .hint(hint));
        }
        if text.ends_with(".tflock") {
            return Err(Problem::new(format!(
                "state key `{text}` ends with `.tflock`, the suffix Terraform uses for lock files"
            ))
            .hint(hint));
        }
        if text.chars().any(char::is_control) {
            return Err(Problem::new("the state key contains a control character").hint(hint));
        }
        Ok(StateKey(text.to_owned()))
    }
}

impl WorkspacePrefix {
    pub fn parse(text: &str) -> Result<WorkspacePrefix, Problem> {
        if text.starts_with('/') || text.ends_with('/') {
            return Err(Problem::new(format!(
                "workspace_key_prefix `{text}` starts or ends with `/`, which Terraform refuses"
            ))
            .hint("remove the leading or trailing `/` (the default is `env:`)"));
        }
        if text.contains("//") || text.chars().any(char::is_control) || text.len() > 100 {
            return Err(Problem::new(format!(
                "workspace_key_prefix `{text}` is not a usable S3 path"
            ))
            .hint("use a short path such as `workspaces`"));
        }
        Ok(WorkspacePrefix(text.to_owned()))
    }

    pub fn terraform_default() -> WorkspacePrefix {
        WorkspacePrefix("env:".to_owned())
    }
}

impl WorkspaceName {
    /// Terraform's rule (`terraform workspace new`): not empty, URL-safe characters only,
    /// no path separator (the characters `url.PathEscape` leaves as they are).
    pub fn parse(text: &str) -> Result<WorkspaceName, Problem> {
        let url_safe = |c: char| c.is_ascii_alphanumeric() || "-_.~$&+,:;=@".contains(c);
        if text.is_empty() || !text.chars().all(url_safe) {
            return Err(Problem::new(format!(
                "`{text}` is not a Terraform workspace name"
            ))
            .hint("workspace names are URL-safe and have no `/`, as `terraform workspace list` shows them"));
        }
        Ok(WorkspaceName(text.to_owned()))
    }

    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }
}

/// `duration` of an assumed role session: a Go duration (`1h`, `90m`, `1h30m`, `3600s`)
/// from 15 minutes to 12 hours, as Terraform's S3 backend accepts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleDuration {
    text: String,
    seconds: u32,
}

impl SessionName {
    pub fn parse(text: &str) -> Result<SessionName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        if !(2..=64).contains(&text.len()) || !text.chars().all(valid) {
            return Err(
                Problem::new(format!("`{text}` is not a valid session name"))
                    .hint("2-64 letters, digits and `_+=,.@-`, e.g. `terraform-ci`"),
            );
        }
        Ok(SessionName(text.to_owned()))
    }
}

impl ExternalId {
    pub fn parse(text: &str) -> Result<ExternalId, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
        if !(2..=1224).contains(&text.len()) || !text.chars().all(valid) {
            return Err(Problem::new("the external id is not valid").hint(
                "2-1224 letters, digits and `_+=,.@:/-`, as the role's trust policy names it",
            ));
        }
        Ok(ExternalId(text.to_owned()))
    }
}

impl RoleDuration {
    pub fn parse(text: &str) -> Result<RoleDuration, Problem> {
        let refused = || {
            Problem::new(format!("`{text}` is not a session duration"))
                .hint("a duration from 15m to 12h, e.g. `1h`, `90m` or `1h30m`")
        };
        let mut seconds: u64 = 0;
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(refused()),
            };
            let value: u64 = number.parse().map_err(|_| refused())?;
            seconds = seconds.saturating_add(value.saturating_mul(unit));
            number.clear();
        }
        if !number.is_empty() || text.is_empty() {
            return Err(refused());
        }
        if !(15 * 60..=12 * 3600).contains(&seconds) {
            return Err(Problem::new(format!(
                "`{text}` is outside what STS allows for a backend session"
            ))
            .hint("from 15m to 12h (the role's own maximum session duration may be lower)"));
        }
        Ok(RoleDuration {
            text: text.to_owned(),
            seconds: seconds as u32,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn seconds(&self) -> u32 {
        self.seconds
    }
}

impl fmt::Display for RoleDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StackName {
    pub fn parse(text: &str) -> Result<StackName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if text.is_empty()
            || text.len() > 64
            || !text.chars().all(valid)
            || !text.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(Problem::new(format!("`{text}` is not a usable stack name"))
                .hint("stack names are 1-64 letters, digits, `-`, `_` and `.`, starting with a letter or digit, e.g. `network` or `app-eu`"));
        }
        Ok(StackName(text.to_owned()))
    }

    /// The stack's name as policy statement ids allow it (letters and digits only): each
    /// part between `-`, `_` and `.` capitalised, `app-eu` → `AppEu`.
    pub fn sid_token(&self) -> String {
        self.0
            .split(['-', '_', '.'])
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect()
    }
}

impl From<&EnvName> for StackName {
    /// The one stack of a `backend:` spec is named after its environment (same rules).
    fn from(env: &EnvName) -> StackName {
        StackName(env.as_str().to_owned())
    }
}

impl EnvName {
    pub fn parse(text: &str) -> Result<EnvName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if text.is_empty() || text.len() > 64 || !text.chars().all(valid) {
            return Err(Problem::new(format!("`{text}` is not a usable environment name"))
                .hint("name spec files like `dev.yaml` or `prod-eu.yaml`: letters, digits, `-`, `_`, `.`"));
        }
        Ok(EnvName(text.to_owned()))
    }
}
