//! The per-environment spec: its typed form, and reading it from YAML with every problem
//! reported at once. Pure: text in, spec or diagnostics out; no files, no AWS.

mod bucket;
mod compat;
pub mod names;
mod parse;
pub mod schema;
mod stack;
pub mod yaml;

#[cfg(test)]
mod fuzz;

/// A spec of one bucket with one state (`backend:`), AES256, one writer and a tag: the
/// fixture of the plan and policy tests.
#[cfg(test)]
pub const ONE_STATE: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: my-state
  tags: { team: platform }
access:
  users: [terraform]
backend:
  key: app/terraform.tfstate
";

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

use std::fmt;

pub use names::ExternalId;
pub use names::{
    AccountId, BucketName, EndpointUrl, EnvName, IamArn, KmsAlias, KmsKeyRef, LogPrefix, PolicyArn,
    PrincipalKind, PrincipalRef, ProfileName, Region, RoleArn, RoleDuration, SessionName,
    StackName, StateKey, TableName, WorkspaceName, WorkspacePrefix,
};
pub use parse::{check_across_environments, parse_spec};
pub use yaml::Pos;

pub use bucket::*;
pub use compat::*;
pub use stack::*;
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

/// Where some values stood in the file, for problems found across environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Positions {
    pub bucket_name: Pos,
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
