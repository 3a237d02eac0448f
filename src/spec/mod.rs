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
    AccountId, BucketName, EndpointUrl, EnvName, IamArn, KmsAlias, KmsKeyRef, LogPrefix,
    PrincipalKind, PrincipalRef, ProfileName, Region, RoleArn, StateKey, TableName,
    WorkspacePrefix,
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
    /// Put on the bucket (and a lock table) when it is created, merged in afterwards.
    pub tags: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    /// Server access logging into another bucket; `None` leaves logging as it is.
    pub logging: Option<Logging>,
}

/// The lifecycle rules the tool owns on the state bucket. Rules of other owners are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// S3 expires a state version this many days after a newer one replaced it; `None`
    /// (`never`) keeps every version forever. The current version is never expired.
    pub expire_noncurrent_after: Option<Days>,
    /// Parts of multipart uploads that never completed are removed after this many days.
    pub abort_incomplete_uploads_after: Days,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            expire_noncurrent_after: Some(Days(90)),
            abort_incomplete_uploads_after: Days(7),
        }
    }
}

/// A whole number of days, 1 to 36500, as S3 lifecycle rules take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Days(u32);

impl Days {
    pub fn new(days: u32) -> Option<Days> {
        (1..=36_500).contains(&days).then_some(Days(days))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Server access logs of the state bucket go to `bucket` under `prefix`. Delivery is granted
/// by the log bucket's policy to the S3 logging service, never by ACLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub bucket: BucketName,
    pub prefix: LogPrefix,
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
    pub lock: Locking,
}

/// How Terraform locks the state. Terraform 1.11 deprecates DynamoDB locking; `Both` is the
/// bridge while runners older than 1.10 remain (both locks are taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locking {
    /// `use_lockfile = true`: a `.tflock` object next to the state (Terraform/OpenTofu >= 1.10).
    Lockfile,
    /// `dynamodb_table` only.
    DynamoDb(TableName),
    /// `use_lockfile = true` and `dynamodb_table`.
    Both(TableName),
}

impl Locking {
    pub fn table(&self) -> Option<&TableName> {
        match self {
            Locking::Lockfile => None,
            Locking::DynamoDb(table) | Locking::Both(table) => Some(table),
        }
    }

    pub fn uses_lockfile(&self) -> bool {
        !matches!(self, Locking::DynamoDb(_))
    }
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
    pub logging_bucket: Pos,
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
