//! The per-environment spec: its typed form, and reading it from YAML with every problem
//! reported at once. Pure: text in, spec or diagnostics out; no files, no AWS.

pub mod names;
mod parse;
pub mod yaml;

#[cfg(test)]
mod fuzz;

use std::collections::BTreeMap;
use std::fmt;

pub use names::{
    AccountId, BucketName, EndpointUrl, EnvName, IamArn, KmsAlias, KmsKeyRef, PrincipalKind,
    PrincipalRef, ProfileName, Region, RoleArn, StateKey, WorkspacePrefix,
};
pub use parse::{check_across_environments, parse_spec};
pub use yaml::Pos;

/// One environment, fully validated. Versioning, the public access block, the TLS-only
/// policy statement and BucketOwnerEnforced are not here: they are always on.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    pub name: EnvName,
    /// The spec file as the user named it; appears in messages and in backend.hcl's header.
    pub source: String,
    pub region: Region,
    /// When set, the tool refuses to act with credentials of any other account, and
    /// backend.hcl carries it as `allowed_account_ids`.
    pub account_id: Option<AccountId>,
    /// The profile Terraform's backend uses; written into backend.hcl.
    pub profile: ProfileName,
    /// The profile the tool itself runs as when bootstrapping (often an admin). Never
    /// written into backend.hcl.
    pub bootstrap_profile: Option<ProfileName>,
    /// An S3-compatible endpoint (or a local test server) for this environment.
    pub endpoint: Option<EndpointUrl>,
    pub bucket: BucketSpec,
    pub access: AccessSpec,
    pub backend: BackendSpec,
    pub positions: Positions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketSpec {
    pub name: BucketName,
    pub encryption: Encryption,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Encryption {
    /// SSE-S3.
    Aes256,
    /// SSE-KMS with a customer managed key, always with an S3 Bucket Key.
    Kms(KmsKey),
}

#[derive(Debug, Clone, PartialEq)]
pub enum KmsKey {
    /// A key that must already exist; the tool never creates or changes it.
    Existing(KmsKeyRef),
    /// `create_key: true`: the key behind this alias is created (with rotation) when the
    /// alias does not exist yet, and reused when it does.
    Managed(KmsAlias),
}

impl KmsKey {
    /// The reference as DescribeKey accepts it.
    pub fn reference(&self) -> &str {
        match self {
            KmsKey::Existing(reference) => reference.as_str(),
            KmsKey::Managed(alias) => alias.as_str(),
        }
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encryption::Aes256 => f.write_str("AES256"),
            Encryption::Kms(key) => write!(f, "aws:kms ({})", key.reference()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessSpec {
    /// Users first, then roles, each in spec order. Never empty.
    pub principals: Vec<PrincipalRef>,
    /// A bucket policy template under the project root; the built-in one when absent.
    pub policy_template: Option<String>,
    /// `exclusive: true`: deny state access to every principal not listed.
    pub exclusive: Option<Exclusive>,
    /// Attach the least-privilege identity policy inline to each listed user and role.
    pub attach_identity_policy: bool,
}

/// Only the listed principals, and a break-glass role, may read or write state. A plain Allow
/// cannot achieve that in the same account, where IAM identity policies grant access too.
#[derive(Debug, Clone, PartialEq)]
pub struct Exclusive {
    /// Stays able to reach the state when every listed principal is gone.
    pub break_glass_role: PrincipalRef,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackendSpec {
    pub key: StateKey,
    /// Where backend.hcl is written, relative to the project root.
    pub file: String,
    /// `None` keeps Terraform's default (`env:`) and writes nothing.
    pub workspace_key_prefix: Option<WorkspacePrefix>,
    pub assume_role: Option<RoleArn>,
    /// The Terraform working directory that uses this backend, relative to the project
    /// root: checked for local state still to be migrated.
    pub terraform_dir: Option<String>,
}

impl BackendSpec {
    pub fn workspace_prefix(&self) -> WorkspacePrefix {
        self.workspace_key_prefix
            .clone()
            .unwrap_or_else(WorkspacePrefix::terraform_default)
    }
}

/// Where some values stood in the file, for problems found across environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Positions {
    pub bucket_name: Pos,
    pub backend_key: Pos,
    pub backend_file: Pos,
}

/// A problem in a spec (or a template), located in its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &str, pos: Pos, problem: names::Problem) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            message: problem.message,
            hint: problem.hint,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
