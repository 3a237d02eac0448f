//! Access and stacks: who may use each state, and how Terraform's backend reaches it.

use std::collections::BTreeMap;

use super::*;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessSpec {
    /// The writers of every stack that names none: users first, then roles, each in spec
    /// order. Empty only when every stack names its own.
    pub writers: Vec<PrincipalRef>,
    /// The read-only tier of every stack that names none (e.g. pipelines that only plan).
    pub readers: Vec<PrincipalRef>,
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

/// One Terraform state in the bucket, and the backend.hcl that points Terraform at it.
#[derive(Debug, Clone, PartialEq)]
pub struct StackSpec {
    /// The environment's name for the `backend:` layout.
    pub name: StackName,
    pub key: StateKey,
    /// Where backend.hcl is written, relative to the project root.
    pub file: String,
    /// Where Terraform's backend gets credentials for this stack.
    pub credentials: BackendCredentials,
    /// `None` keeps Terraform's default (`env:`) and writes nothing.
    pub workspace_key_prefix: Option<WorkspacePrefix>,
    /// A role the backend assumes on top of its credentials.
    pub assume_role: Option<AssumeRole>,
    /// The backend's other authentication settings.
    pub auth: BackendAuth,
    /// The Terraform working directory that uses this backend, relative to the project
    /// root: checked for local state still to be migrated.
    pub terraform_dir: Option<String>,
    pub lock: Locking,
    /// `Some`: this stack's own writers, replacing the spec's `access` users and roles.
    pub writers: Option<Vec<PrincipalRef>>,
    /// `Some`: this stack's own readers, replacing the spec's `access.readers`.
    pub readers: Option<Vec<PrincipalRef>>,
    pub positions: StackPositions,
}

/// Where Terraform's backend gets its credentials (before any `assume_role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendCredentials {
    /// `profile = "NAME"` from the shared config and credentials files.
    Profile(ProfileName),
    /// `assume_role_with_web_identity`: an OIDC token (GitHub Actions, GitLab CI) exchanged
    /// for the role's credentials; no profile at all.
    WebIdentity(WebIdentity),
}

impl BackendCredentials {
    pub fn profile(&self) -> Option<&ProfileName> {
        match self {
            BackendCredentials::Profile(profile) => Some(profile),
            BackendCredentials::WebIdentity(_) => None,
        }
    }
}

/// What Terraform's `assume_role` and `assume_role_with_web_identity` share: the role and
/// the session's name, duration and policy ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSession {
    pub role_arn: RoleArn,
    pub session_name: Option<SessionName>,
    pub duration: Option<RoleDuration>,
    pub policy_arns: Vec<PolicyArn>,
}

/// `assume_role_with_web_identity = { … }`. The token itself is a credential and is never
/// written: only the file CI puts it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    pub session: RoleSession,
    pub token_file: String,
}

/// `assume_role = { … }` with every attribute Terraform's S3 backend documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub session: RoleSession,
    pub external_id: Option<ExternalId>,
    /// Session tags.
    pub tags: BTreeMap<String, String>,
    /// Keys of `tags` that pass on to roles assumed from this session.
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<SessionName>,
    /// An inline session policy, a JSON object.
    pub policy: Option<String>,
}

impl AssumeRole {
    /// `assume_role: ARN`, the shorthand for a role with nothing else set.
    pub fn of(role_arn: RoleArn) -> AssumeRole {
        AssumeRole {
            session: RoleSession {
                role_arn,
                session_name: None,
                duration: None,
                policy_arns: Vec::new(),
            },
            external_id: None,
            tags: BTreeMap::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            policy: None,
        }
    }
}

/// The backend's authentication settings besides the credentials themselves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendAuth {
    /// Terraform refuses credentials of these accounts (exclusive with `account_id`, which
    /// writes `allowed_account_ids`).
    pub forbidden_account_ids: Vec<AccountId>,
    pub sts_region: Option<Region>,
    pub shared_config_files: Vec<String>,
    pub shared_credentials_files: Vec<String>,
    pub use_fips_endpoint: bool,
    pub use_dualstack_endpoint: bool,
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

impl StackSpec {
    /// Where OpenTofu's encryption file for this stack goes: beside its backend file,
    /// `encryption.hcl` for a `backend.hcl`, else `<stem>.encryption.hcl`.
    pub fn tofu_encryption_file(&self) -> String {
        let (directory, name) = match self.file.rsplit_once('/') {
            Some((directory, name)) => (format!("{directory}/"), name),
            None => (String::new(), self.file.as_str()),
        };
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        if stem == "backend" {
            format!("{directory}encryption.hcl")
        } else {
            format!("{directory}{stem}.encryption.hcl")
        }
    }

    /// The failover backend file beside this stack's backend file: `backend.dr.hcl` for a
    /// `backend.hcl`, `<stem>.dr.<ext>` for any other.
    pub fn failover_file(&self) -> String {
        match self.file.rsplit_once('.') {
            Some((stem, extension)) if !extension.contains('/') => {
                format!("{stem}.dr.{extension}")
            }
            _ => format!("{}.dr.hcl", self.file),
        }
    }

    /// The role Terraform's backend ends up as: its `assume_role` (on top of any
    /// credentials), else its web identity's role; `None` for a profile's own identity.
    pub fn backend_role(&self) -> Option<&RoleArn> {
        match (&self.assume_role, &self.credentials) {
            (Some(role), _) => Some(&role.session.role_arn),
            (None, BackendCredentials::WebIdentity(web)) => Some(&web.session.role_arn),
            (None, BackendCredentials::Profile(_)) => None,
        }
    }

    /// How Terraform's backend reaches the state for this stack, for messages:
    /// ``assume_role `ARN` ``, ``web identity `ARN` `` or ``profile `NAME` ``.
    pub fn identity_label(&self) -> String {
        match (&self.assume_role, &self.credentials) {
            (Some(role), _) => format!("assume_role `{}`", role.session.role_arn),
            (None, BackendCredentials::WebIdentity(web)) => {
                format!("web identity `{}`", web.session.role_arn)
            }
            (None, BackendCredentials::Profile(profile)) => format!("profile `{profile}`"),
        }
    }

    pub fn workspace_prefix(&self) -> WorkspacePrefix {
        self.workspace_key_prefix
            .clone()
            .unwrap_or_else(WorkspacePrefix::terraform_default)
    }
}

/// Where a stack's values stood in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackPositions {
    pub name: Pos,
    pub key: Pos,
    pub file: Pos,
}
