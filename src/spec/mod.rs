//! The per-environment spec: its typed form, and reading it from YAML with every problem
//! reported at once. Pure: text in, spec or diagnostics out; no files, no AWS.

pub mod names;
mod parse;
pub mod schema;
pub mod yaml;

#[cfg(test)]
mod fuzz;

/// A spec of one bucket with three stacks, each with writers of its own and the spec's
/// reader, one with its own workspace prefix: the fixture of the policy and plan tests.
#[cfg(test)]
pub const THREE_STACKS: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket: { name: central-state }
access:
  readers: { roles: [terraform-plan] }
stacks:
  network:
    key: network/terraform.tfstate
    access: { roles: [network-ci] }
  app:
    key: app/terraform.tfstate
    access: { roles: [app-ci] }
  data:
    key: data/terraform.tfstate
    workspace_key_prefix: ws
    access: { users: [data-ci] }
";

use std::collections::BTreeMap;
use std::fmt;

pub use names::ExternalId;
pub use names::{
    AccountId, BucketName, EndpointUrl, EnvName, IamArn, KmsAlias, KmsKeyRef, LogPrefix, PolicyArn,
    PrincipalKind, PrincipalRef, ProfileName, Region, RoleArn, RoleDuration, SessionName,
    StackName, StateKey, TableName, WorkspaceName, WorkspacePrefix,
};
pub use parse::{check_across_environments, parse_spec};
pub use yaml::Pos;

/// One spec file: one state bucket, fully validated, with the stacks whose state it holds.
/// Versioning, the public access block, the TLS-only policy statement and
/// BucketOwnerEnforced are not here: they are always on.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    pub name: EnvName,
    /// The spec file as the user named it; appears in messages and in backend.hcl's header.
    pub source: String,
    pub region: Region,
    /// When set, the tool refuses to act with credentials of any other account, and
    /// backend.hcl carries it as `allowed_account_ids`.
    pub account_id: Option<AccountId>,
    /// The profile Terraform's backend uses unless a stack names its own (or authenticates
    /// with a web identity); written into backend.hcl. `None` only when every stack uses a
    /// web identity.
    pub profile: Option<ProfileName>,
    /// The profile the tool itself runs as when bootstrapping (often an admin). Never
    /// written into backend.hcl.
    pub bootstrap_profile: Option<ProfileName>,
    /// An S3-compatible endpoint (or a local test server) for this environment.
    pub endpoint: Option<EndpointUrl>,
    /// What the S3-compatible store behind the endpoint lacks; `None` for AWS itself.
    pub compat: Option<Compat>,
    /// OpenTofu's client-side state encryption: an encryption file beside each backend.hcl.
    pub tofu_encryption: Option<TofuEncryption>,
    pub bucket: BucketSpec,
    pub access: AccessSpec,
    /// Never empty; names and keys are unique.
    pub stacks: Vec<StackSpec>,
    pub layout: Layout,
    pub positions: Positions,
    /// Set only on the spec `replica_spec` derives: the bucket this one replicates.
    pub replica_of: Option<PrimaryBucket>,
}

/// OpenTofu state encryption (`opentofu.encryption`): an `aws_kms` key provider and
/// `aes_gcm` for state and plans, written beside each backend.hcl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TofuEncryption {
    /// The key provider's key: an existing one, or one statebucket creates (a dedicated
    /// key, as OpenTofu recommends); `None`: the bucket's KMS key.
    pub key: Option<KmsKey>,
    pub phase: TofuPhase,
}

/// OpenTofu's two steps into encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TofuPhase {
    /// Reads unencrypted state (the `unencrypted` fallback), writes encrypted: for the
    /// first apply after turning encryption on.
    Migrate,
    /// `enforced = true`: unencrypted state and plans are refused.
    Enforce,
}

/// An S3-compatible store (MinIO, Ceph RGW, Cloudflare R2, …): the AWS features it does not
/// implement are not managed (each named in the plan), and backend.hcl skips the AWS-only
/// checks Terraform's backend would otherwise make.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Compat {
    pub lacks: std::collections::BTreeSet<StoreFeature>,
    /// The store rejects the SDK's checksum headers (`skip_s3_checksum = true`).
    pub skip_s3_checksum: bool,
}

impl Compat {
    pub fn lacks(&self, feature: StoreFeature) -> bool {
        self.lacks.contains(&feature)
    }
}

/// An AWS feature an S3-compatible store may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreFeature {
    /// IAM: principals are not looked up (ARNs are built from names and the account).
    Iam,
    /// KMS: only `encryption: aes256`.
    Kms,
    PublicAccessBlock,
    OwnershipControls,
    /// Bucket tagging: no `bucket.tags`.
    Tagging,
    /// STS (sts:GetCallerIdentity): no identity is looked up; the account is the spec's
    /// `account_id`, which is then required.
    Sts,
}

impl StoreFeature {
    pub const ALL: [(&'static str, StoreFeature); 6] = [
        ("iam", StoreFeature::Iam),
        ("kms", StoreFeature::Kms),
        ("public_access_block", StoreFeature::PublicAccessBlock),
        ("ownership_controls", StoreFeature::OwnershipControls),
        ("tagging", StoreFeature::Tagging),
        ("sts", StoreFeature::Sts),
    ];

    pub fn name(self) -> &'static str {
        StoreFeature::ALL
            .iter()
            .find(|(_, feature)| *feature == self)
            .map(|(name, _)| *name)
            .expect("every feature is named")
    }
}

impl EnvSpec {
    /// Whether the store lacks `feature` (never on AWS itself).
    pub fn lacks(&self, feature: StoreFeature) -> bool {
        self.compat
            .as_ref()
            .is_some_and(|compat| compat.lacks(feature))
    }
}

/// How the spec names its states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `backend:`: one state, a stack named after the environment.
    Backend,
    /// `stacks:`: several states in one bucket.
    Stacks,
}

impl EnvSpec {
    /// The users and roles that write `stack`'s state: its own, else the spec's.
    pub fn writers_of<'a>(&'a self, stack: &'a StackSpec) -> &'a [PrincipalRef] {
        stack.writers.as_deref().unwrap_or(&self.access.writers)
    }

    /// The users and roles that only read `stack`'s state: its own, else the spec's.
    pub fn readers_of<'a>(&'a self, stack: &'a StackSpec) -> &'a [PrincipalRef] {
        stack.readers.as_deref().unwrap_or(&self.access.readers)
    }

    /// The spec's `profile`, else the one profile every stack names (`backend.profile`
    /// alone); `None` when there is none or they differ.
    pub fn common_profile(&self) -> Option<&ProfileName> {
        if let Some(profile) = &self.profile {
            return Some(profile);
        }
        let mut profiles = self.stacks.iter().map(|stack| self.profile_of(stack));
        let first = profiles.next().flatten()?;
        profiles
            .all(|profile| profile == Some(first))
            .then_some(first)
    }

    /// The profile Terraform's backend uses for `stack`; `None` with a web identity.
    pub fn profile_of<'a>(&'a self, stack: &'a StackSpec) -> Option<&'a ProfileName> {
        stack.credentials.profile()
    }

    pub fn stack(&self, name: &str) -> Option<&StackSpec> {
        self.stacks.iter().find(|stack| stack.name.as_str() == name)
    }

    /// Every principal any stack grants access to (writers and readers), each once, in spec
    /// order, then the break-glass role.
    pub fn all_principals(&self) -> Vec<&PrincipalRef> {
        let mut all: Vec<&PrincipalRef> = Vec::new();
        for stack in &self.stacks {
            for principal in self.writers_of(stack).iter().chain(self.readers_of(stack)) {
                if !all.contains(&principal) {
                    all.push(principal);
                }
            }
        }
        if let Some(exclusive) = &self.access.exclusive
            && !all.contains(&&exclusive.break_glass_role)
        {
            all.push(&exclusive.break_glass_role);
        }
        all
    }

    /// The replica reconciled like a bucket of its own: its name, region, encryption and
    /// Object Lock; the spec's tags, lifecycle, access and stacks, whose backend files are
    /// the failover files. Lock tables do not carry over (a DynamoDB table lives in the
    /// primary's region, which a failover assumes lost): the failover files lock with the
    /// lockfile. Logging, OpenTofu encryption and identity policies stay the primary's (the
    /// primary's identity policies cover the replica).
    pub fn replica_spec(&self) -> Option<EnvSpec> {
        let replica = self.bucket.replica.as_ref()?;
        let mut spec = self.clone();
        spec.region = replica.region.clone();
        spec.bucket = BucketSpec {
            name: replica.name.clone(),
            encryption: replica.encryption.clone(),
            tags: self.bucket.tags.clone(),
            lifecycle: self.bucket.lifecycle,
            logging: None,
            replica: None,
            object_lock: replica.object_lock,
        };
        spec.tofu_encryption = None;
        spec.access.attach_identity_policy = false;
        spec.replica_of = Some(PrimaryBucket {
            name: self.bucket.name.clone(),
            region: self.region.clone(),
        });
        for stack in &mut spec.stacks {
            stack.file = self.failover_file(stack);
            stack.lock = Locking::Lockfile;
            stack.terraform_dir = None;
        }
        Some(spec)
    }

    /// Where `stack`'s failover backend file goes (with a replica).
    pub fn failover_file(&self, stack: &StackSpec) -> String {
        match &self.bucket.replica {
            Some(replica) => replica.failover_file(stack),
            None => stack.failover_file(),
        }
    }

    /// Every backend file the spec writes: each stack's, and with a replica its failover file.
    pub fn written_files(&self) -> Vec<String> {
        let mut files: Vec<String> = self.stacks.iter().map(|stack| stack.file.clone()).collect();
        if self.bucket.replica.is_some() {
            files.extend(self.stacks.iter().map(|stack| self.failover_file(stack)));
        }
        files
    }

    /// The DynamoDB lock tables the stacks use, each once, by name.
    pub fn lock_tables(&self) -> Vec<&TableName> {
        let mut tables: Vec<&TableName> = self
            .stacks
            .iter()
            .filter_map(|stack| stack.lock.table())
            .collect();
        tables.sort();
        tables.dedup();
        tables
    }
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
    /// `bucket.replica`: every state copied to a bucket in a second region by S3
    /// replication, with a failover backend file for each stack.
    pub replica: Option<ReplicaSpec>,
    /// Object Lock's default retention. Only a replica's bucket has one (the parser takes it
    /// from `bucket.replica.object_lock`): S3 forbids deleting a locked version, so a locked
    /// primary would also refuse Terraform's `DeleteObject` of its lockfile's versions.
    pub object_lock: Option<ObjectLock>,
}

/// The replica of the state bucket in a second region (`bucket.replica`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSpec {
    /// Never the primary's name; default `<bucket>-replica`.
    pub name: BucketName,
    /// Never the primary's region.
    pub region: Region,
    /// The replica's own encryption: a KMS key lives in one region, so the replica needs a
    /// key of its own (default AES256).
    pub encryption: Encryption,
    pub object_lock: Option<ObjectLock>,
    /// `backend_file` (one-state specs only): where the failover file goes; `None`: beside
    /// each stack's backend file (`StackSpec::failover_file`).
    pub backend_file: Option<String>,
    pub positions: ReplicaPositions,
}

impl ReplicaSpec {
    /// Where `stack`'s failover file goes: `backend_file`, else beside its backend file.
    pub fn failover_file(&self, stack: &StackSpec) -> String {
        self.backend_file
            .clone()
            .unwrap_or_else(|| stack.failover_file())
    }
}

/// Where a replica's values stood in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaPositions {
    pub name: Pos,
    pub backend_file: Pos,
}

/// Object Lock's default retention: every new object version is locked for `days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: RetentionMode,
    pub days: Days,
}

/// S3 Object Lock's retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RetentionMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete or shorten.
    Governance,
    /// Nobody, the root user included, can delete a locked version before it expires.
    Compliance,
}

impl RetentionMode {
    /// As S3 writes it.
    pub fn as_s3(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    /// From S3's word for it.
    pub fn from_s3(mode: &str) -> Option<RetentionMode> {
        [RetentionMode::Governance, RetentionMode::Compliance]
            .into_iter()
            .find(|candidate| candidate.as_s3() == mode)
    }
}

impl fmt::Display for ObjectLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {} days", self.mode.as_s3(), self.days)
    }
}

/// What a replica's derived spec remembers of the primary it copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryBucket {
    pub name: BucketName,
    pub region: Region,
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

#[derive(Debug, Clone, PartialEq, Eq)]
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

/// `assume_role_with_web_identity = { … }`. The token itself is a credential and is never
/// written: only the file CI puts it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    pub role_arn: RoleArn,
    pub token_file: String,
    pub session_name: Option<SessionName>,
    pub duration: Option<RoleDuration>,
    pub policy_arns: Vec<PolicyArn>,
}

/// `assume_role = { … }` with every attribute Terraform's S3 backend documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: RoleArn,
    pub external_id: Option<ExternalId>,
    pub session_name: Option<SessionName>,
    pub duration: Option<RoleDuration>,
    /// Session tags.
    pub tags: BTreeMap<String, String>,
    /// Keys of `tags` that pass on to roles assumed from this session.
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<SessionName>,
    pub policy_arns: Vec<PolicyArn>,
    /// An inline session policy, a JSON object.
    pub policy: Option<String>,
}

impl AssumeRole {
    /// `assume_role: ARN`, the shorthand for a role with nothing else set.
    pub fn of(role_arn: RoleArn) -> AssumeRole {
        AssumeRole {
            role_arn,
            external_id: None,
            session_name: None,
            duration: None,
            tags: BTreeMap::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
            policy_arns: Vec::new(),
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

    /// How Terraform's backend reaches the state for this stack, for messages:
    /// ``assume_role `ARN` ``, ``web identity `ARN` `` or ``profile `NAME` ``.
    pub fn identity_label(&self) -> String {
        match (&self.assume_role, &self.credentials) {
            (Some(role), _) => format!("assume_role `{}`", role.role_arn),
            (None, BackendCredentials::WebIdentity(web)) => {
                format!("web identity `{}`", web.role_arn)
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

/// Where some values stood in the file, for problems found across environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Positions {
    pub bucket_name: Pos,
    pub logging_bucket: Pos,
}

/// Where a stack's values stood in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackPositions {
    pub name: Pos,
    pub key: Pos,
    pub file: Pos,
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
