//! What each client needs of every policy statebucket writes, one row per permission, each
//! row naming the document it comes from; and the check of a bucket's generated documents
//! against every row. Pure: `unmet` evaluates the documents of a `DesiredBucket` with the
//! project's policy evaluator (`evaluate`).
//!
//! Rows that `expect` a denial state least privilege: a reader never writes state, a stack's
//! writers never reach another stack's, a principal the spec does not list reaches nothing,
//! and S3 acts with the replication role only for this account's buckets.
//!
//! The sources, cited by tag in each row:
//! - TF-S3: Terraform's S3 backend documentation, "Permissions Required" (1.10–1.15), and the
//!   backend's code (`backend_state.go` lists `<workspace_key_prefix>/`, `client.go` puts,
//!   gets and deletes the `.tflock` object).
//! - TOFU-S3: OpenTofu's S3 backend documentation (same calls; `state_tags` and `lock_tags`
//!   not generated) and its `aws_kms` key provider (GenerateDataKey, Decrypt, called directly).
//! - S3-KMS: S3 User Guide, "Using server-side encryption with AWS KMS keys", permissions:
//!   PutObject needs kms:GenerateDataKey, GetObject kms:Decrypt; with an S3 Bucket Key the
//!   encryption context is the bucket's ARN.
//! - S3-REPL: S3 User Guide, "Setting up permissions" for live replication (the role's
//!   source and destination actions) and "Replicating encrypted objects" (kms:Decrypt on the
//!   source key, kms:Encrypt on the destination key, and kms:Decrypt on it too when the
//!   destination uses an S3 Bucket Key).
//! - S3-OLOCK: S3 User Guide, "Object Lock and replication" (s3:GetObjectRetention and
//!   s3:GetObjectLegalHold on the source objects).
//! - IAM-DEPUTY: IAM User Guide, "The confused deputy problem" (aws:SourceAccount on a
//!   service's trust).
//! - S3-LOGS: S3 User Guide, "Permissions for log delivery" (logging.s3.amazonaws.com,
//!   s3:PutObject, aws:SourceArn and aws:SourceAccount).
//! - TF-DDB: Terraform's S3 backend documentation, DynamoDB table permissions.

use std::fmt;

use crate::desired::DesiredBucket;

/// A policy document statebucket writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    BucketPolicy,
    /// The inline policy `access.attach_identity_policy` attaches, and `policy --identity`
    /// prints.
    IdentityPolicy,
    /// The grants statebucket owns in the policy of a key it creates (the account root
    /// statement aside: it delegates to IAM, and a principal of another account has only
    /// the grants).
    KeyPolicy,
    ReplicationRolePolicy,
    ReplicationTrustPolicy,
    /// The statement statebucket owns in the log bucket's policy.
    LogBucketPolicy,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::BucketPolicy => "bucket policy",
            Document::IdentityPolicy => "identity policy",
            Document::KeyPolicy => "key policy",
            Document::ReplicationRolePolicy => "replication role policy",
            Document::ReplicationTrustPolicy => "replication trust policy",
            Document::LogBucketPolicy => "log bucket policy",
        })
    }
}

/// Who makes the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Every writer of a stack.
    Writer,
    /// Every reader of a stack that does not write it.
    Reader,
    /// A writer of another stack of the bucket that does not write this one.
    OtherStackWriter,
    /// A principal of the account that the spec does not list.
    Unlisted,
    ReplicationRole,
    /// S3 assuming the replication role; `for_account` false: for a bucket of another account.
    S3 {
        for_account: bool,
    },
    /// S3's log delivery; `for_bucket` false: delivering another bucket's logs.
    LogDelivery {
        for_bucket: bool,
    },
}

/// What the request is made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bucket,
    /// The default workspace's state.
    State,
    /// Another workspace's state (`<prefix>/<workspace>/<key>`).
    WorkspaceState,
    Lock,
    WorkspaceLock,
    /// The bucket's KMS key, through S3 (`kms:ViaService`).
    StateKey,
    /// The bucket's KMS key, called directly (no `kms:ViaService`).
    StateKeyDirectly,
    /// The key of OpenTofu's state encryption, called directly.
    TofuKey,
    SourceObjects,
    ReplicaObjects,
    /// The replica's KMS key, through S3 in the replica's region.
    ReplicaKey,
    ReplicationRole,
    LogObjects,
    LockTable,
}

/// When a row applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The bucket uses a KMS key.
    Kms,
    /// statebucket creates the bucket's key, and so writes its key policy.
    CreatedKey,
    /// OpenTofu's state encryption with a key of its own.
    TofuKey,
    /// The bucket holds several stacks with different writers.
    SeveralStacks,
    Replica,
    ReplicaKms,
    ReplicaObjectLock,
    Logging,
    LockTable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allowed,
    Denied,
}

/// One permission a client needs (or must not have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub client: &'static str,
    pub operation: &'static str,
    pub who: Who,
    pub action: &'static str,
    pub target: Target,
    pub documents: &'static [Document],
    pub when: When,
    pub expect: Expect,
    pub source: &'static str,
}

use Document::{
    BucketPolicy as Bucket, IdentityPolicy as Identity, KeyPolicy as Key, LogBucketPolicy as Logs,
    ReplicationRolePolicy as Role, ReplicationTrustPolicy as Trust,
};
use Expect::{Allowed, Denied};

const BUCKET_AND_IDENTITY: &[Document] = &[Bucket, Identity];
const KEY_AND_IDENTITY: &[Document] = &[Key, Identity];

// One argument per column of the table below.
#[allow(clippy::too_many_arguments)]
const fn row(
    client: &'static str,
    operation: &'static str,
    who: Who,
    action: &'static str,
    target: Target,
    documents: &'static [Document],
    when: When,
    expect: Expect,
    source: &'static str,
) -> Requirement {
    Requirement {
        client,
        operation,
        who,
        action,
        target,
        documents,
        when,
        expect,
        source,
    }
}

/// Every requirement, in the order the README's permissions table lists them.
#[rustfmt::skip]
pub const REQUIREMENTS: &[Requirement] = &[
    row("Terraform", "init (lists workspaces)", Who::Writer, "s3:ListBucket", Target::Bucket, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "init, plan, apply", Who::Writer, "s3:GetObject", Target::State, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "apply", Who::Writer, "s3:PutObject", Target::State, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "lock", Who::Writer, "s3:PutObject", Target::Lock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "lock (reads a held lock)", Who::Writer, "s3:GetObject", Target::Lock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "unlock", Who::Writer, "s3:DeleteObject", Target::Lock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "workspace new, apply in a workspace", Who::Writer, "s3:PutObject", Target::WorkspaceState, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "plan in a workspace", Who::Writer, "s3:GetObject", Target::WorkspaceState, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "lock in a workspace", Who::Writer, "s3:PutObject", Target::WorkspaceLock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "unlock in a workspace", Who::Writer, "s3:DeleteObject", Target::WorkspaceLock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "workspace delete", Who::Writer, "s3:DeleteObject", Target::WorkspaceState, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform", "never deletes the default workspace's state", Who::Writer, "s3:DeleteObject", Target::State, BUCKET_AND_IDENTITY, When::Always, Denied, "TF-S3"),
    row("Terraform", "apply (S3 encrypts state)", Who::Writer, "kms:GenerateDataKey", Target::StateKey, KEY_AND_IDENTITY, When::Kms, Allowed, "S3-KMS"),
    row("Terraform", "plan (S3 decrypts state)", Who::Writer, "kms:Decrypt", Target::StateKey, KEY_AND_IDENTITY, When::Kms, Allowed, "S3-KMS"),
    row("Terraform", "S3 never asks for Encrypt", Who::Writer, "kms:Encrypt", Target::StateKey, KEY_AND_IDENTITY, When::Kms, Denied, "S3-KMS"),
    row("Terraform", "the state key is used only through S3", Who::Writer, "kms:Decrypt", Target::StateKeyDirectly, KEY_AND_IDENTITY, When::Kms, Denied, "S3-KMS"),
    row("Terraform (reader)", "init (lists workspaces)", Who::Reader, "s3:ListBucket", Target::Bucket, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform (reader)", "plan", Who::Reader, "s3:GetObject", Target::State, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform (reader)", "plan in a workspace", Who::Reader, "s3:GetObject", Target::WorkspaceState, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform (reader)", "lock (plan locks)", Who::Reader, "s3:PutObject", Target::Lock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform (reader)", "unlock", Who::Reader, "s3:DeleteObject", Target::Lock, BUCKET_AND_IDENTITY, When::Always, Allowed, "TF-S3"),
    row("Terraform (reader)", "plan (S3 decrypts state)", Who::Reader, "kms:Decrypt", Target::StateKey, KEY_AND_IDENTITY, When::Kms, Allowed, "S3-KMS"),
    row("Terraform (reader)", "lock (S3 encrypts the lock file)", Who::Reader, "kms:GenerateDataKey", Target::StateKey, KEY_AND_IDENTITY, When::Kms, Allowed, "S3-KMS"),
    row("Terraform (reader)", "never writes state", Who::Reader, "s3:PutObject", Target::State, BUCKET_AND_IDENTITY, When::Always, Denied, "TF-S3"),
    row("Terraform (reader)", "never writes a workspace's state", Who::Reader, "s3:PutObject", Target::WorkspaceState, BUCKET_AND_IDENTITY, When::Always, Denied, "TF-S3"),
    row("Terraform (reader)", "never deletes a workspace", Who::Reader, "s3:DeleteObject", Target::WorkspaceState, BUCKET_AND_IDENTITY, When::Always, Denied, "TF-S3"),
    row("Terraform (another stack)", "never reads this stack's state", Who::OtherStackWriter, "s3:GetObject", Target::State, BUCKET_AND_IDENTITY, When::SeveralStacks, Denied, "TF-S3"),
    row("Terraform (another stack)", "never writes this stack's state", Who::OtherStackWriter, "s3:PutObject", Target::State, BUCKET_AND_IDENTITY, When::SeveralStacks, Denied, "TF-S3"),
    row("anyone unlisted", "never reads state", Who::Unlisted, "s3:GetObject", Target::State, &[Bucket], When::Always, Denied, "TF-S3"),
    row("anyone unlisted", "never decrypts state", Who::Unlisted, "kms:Decrypt", Target::StateKey, &[Key], When::CreatedKey, Denied, "S3-KMS"),
    row("OpenTofu", "state encryption (aws_kms key provider)", Who::Writer, "kms:GenerateDataKey", Target::TofuKey, &[Identity], When::TofuKey, Allowed, "TOFU-S3"),
    row("OpenTofu", "state decryption", Who::Writer, "kms:Decrypt", Target::TofuKey, &[Identity], When::TofuKey, Allowed, "TOFU-S3"),
    row("Terraform", "lock table (use_lockfile off or both)", Who::Writer, "dynamodb:PutItem", Target::LockTable, &[Identity], When::LockTable, Allowed, "TF-DDB"),
    row("Terraform", "lock table: read the lock and digest", Who::Writer, "dynamodb:GetItem", Target::LockTable, &[Identity], When::LockTable, Allowed, "TF-DDB"),
    row("Terraform", "lock table: unlock", Who::Writer, "dynamodb:DeleteItem", Target::LockTable, &[Identity], When::LockTable, Allowed, "TF-DDB"),
    row("Terraform", "lock table: documented", Who::Writer, "dynamodb:DescribeTable", Target::LockTable, &[Identity], When::LockTable, Allowed, "TF-DDB"),
    row("S3 replication", "reads the configuration", Who::ReplicationRole, "s3:GetReplicationConfiguration", Target::Bucket, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "lists the source", Who::ReplicationRole, "s3:ListBucket", Target::Bucket, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "reads each version", Who::ReplicationRole, "s3:GetObjectVersionForReplication", Target::SourceObjects, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "reads each version's ACL", Who::ReplicationRole, "s3:GetObjectVersionAcl", Target::SourceObjects, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "reads each version's tags", Who::ReplicationRole, "s3:GetObjectVersionTagging", Target::SourceObjects, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "writes replicas", Who::ReplicationRole, "s3:ReplicateObject", Target::ReplicaObjects, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "replicates delete markers", Who::ReplicationRole, "s3:ReplicateDelete", Target::ReplicaObjects, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "replicates tags", Who::ReplicationRole, "s3:ReplicateTags", Target::ReplicaObjects, &[Role], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "never writes the source", Who::ReplicationRole, "s3:PutObject", Target::State, &[Role], When::Replica, Denied, "S3-REPL"),
    row("S3 replication", "decrypts source versions", Who::ReplicationRole, "kms:Decrypt", Target::StateKey, &[Role], When::ReplicaKms, Allowed, "S3-REPL"),
    row("S3 replication", "encrypts replicas", Who::ReplicationRole, "kms:Encrypt", Target::ReplicaKey, &[Role], When::ReplicaKms, Allowed, "S3-REPL"),
    row("S3 replication", "into a replica with an S3 Bucket Key", Who::ReplicationRole, "kms:Decrypt", Target::ReplicaKey, &[Role], When::ReplicaKms, Allowed, "S3-REPL"),
    row("S3 replication", "into a replica with Object Lock: retention", Who::ReplicationRole, "s3:GetObjectRetention", Target::SourceObjects, &[Role], When::ReplicaObjectLock, Allowed, "S3-OLOCK"),
    row("S3 replication", "into a replica with Object Lock: legal hold", Who::ReplicationRole, "s3:GetObjectLegalHold", Target::SourceObjects, &[Role], When::ReplicaObjectLock, Allowed, "S3-OLOCK"),
    row("S3 replication", "S3 assumes the role", Who::S3 { for_account: true }, "sts:AssumeRole", Target::ReplicationRole, &[Trust], When::Replica, Allowed, "S3-REPL"),
    row("S3 replication", "never for another account's bucket", Who::S3 { for_account: false }, "sts:AssumeRole", Target::ReplicationRole, &[Trust], When::Replica, Denied, "IAM-DEPUTY"),
    row("S3 log delivery", "delivers the bucket's access logs", Who::LogDelivery { for_bucket: true }, "s3:PutObject", Target::LogObjects, &[Logs], When::Logging, Allowed, "S3-LOGS"),
    row("S3 log delivery", "never another bucket's logs under this grant", Who::LogDelivery { for_bucket: false }, "s3:PutObject", Target::LogObjects, &[Logs], When::Logging, Denied, "S3-LOGS"),
];

/// A requirement a generated document does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    pub requirement: &'static Requirement,
    pub document: Document,
    pub principal: String,
    pub resource: String,
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requirement = self.requirement;
        let verb = match requirement.expect {
            Allowed => "does not allow",
            Denied => "allows",
        };
        write!(
            f,
            "the {} {verb} {} {} on {} ({}: {}; {})",
            self.document,
            self.principal,
            requirement.action,
            self.resource,
            requirement.client,
            requirement.operation,
            requirement.source
        )
    }
}

/// Every requirement that applies to the bucket, checked on each document it names: the
/// ones not met. A requirement that applies to no principal here (no reader, one stack) is
/// not checked. `checked[i]` counts the evaluations of `REQUIREMENTS[i]`, so a test can
/// tell a row that was checked from one that never applied.
pub fn unmet(desired: &DesiredBucket<'_>) -> (Vec<Unmet>, Vec<usize>) {
    let documents = Documents::of(desired);
    let mut found = Vec::new();
    let mut checked = vec![0; REQUIREMENTS.len()];
    for (index, requirement) in REQUIREMENTS.iter().enumerate() {
        if !documents.applies(requirement.when) {
            continue;
        }
        for request in documents.requests(requirement) {
            for document in requirement.documents {
                let Some(verdict) = documents.evaluate(*document, &request, requirement) else {
                    continue;
                };
                checked[index] += 1;
                if verdict != requirement.expect {
                    found.push(Unmet {
                        requirement,
                        document: *document,
                        principal: request.principal.clone(),
                        resource: request.resource.clone(),
                    });
                }
            }
        }
    }
    (found, checked)
}

/// One request a requirement stands for.
mod check;
mod markdown;

use check::Documents;
pub use check::generated_documents;
pub use markdown::markdown_table;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::PrincipalArns;
    use crate::policy::{BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME};
    use crate::spec::EnvSpec;
    use crate::spec::{AccountId, THREE_STACKS, parse_spec};
    use serde_json::{Value, json};

    /// Specs that together reach every row: the shipped examples, and fixtures with what
    /// they lack (a created key with readers, an OpenTofu key, access logs, a lock table).
    fn fixtures() -> Vec<EnvSpec> {
        let examples = [
            (
                "environments/dev.yaml",
                "dev",
                include_str!("../../../environments/dev.yaml"),
            ),
            (
                "environments/prod.yaml",
                "prod",
                include_str!("../../../environments/prod.yaml"),
            ),
            (
                "environments/platform.yaml",
                "platform",
                include_str!("../../../environments/platform.yaml"),
            ),
        ];
        let kms_stacks = THREE_STACKS.replace(
            "bucket: { name: central-state }",
            "bucket:\n  name: central-state\n  encryption: { kms_key: alias/central, create_key: true }\n  logging: { bucket: central-logs, prefix: state/ }\nopentofu:\n  encryption: { kms_key: alias/tofu-state }",
        );
        let lock_table = THREE_STACKS.replace(
            "    key: app/terraform.tfstate\n",
            "    key: app/terraform.tfstate\n    lock: both\n",
        );
        let mut specs: Vec<EnvSpec> = examples
            .iter()
            .map(|(path, name, text)| parse_spec(path, name, text).expect("an example parses"))
            .collect();
        for (name, text) in [("central", kms_stacks), ("tables", lock_table)] {
            specs.push(
                parse_spec(&format!("environments/{name}.yaml"), name, &text)
                    .expect("a fixture parses"),
            );
        }
        specs
    }

    fn desired(spec: &EnvSpec) -> DesiredBucket<'_> {
        let account = spec
            .account_id
            .clone()
            .unwrap_or_else(|| AccountId::parse("123456789012").unwrap());
        DesiredBucket::build(
            spec,
            &account,
            &PrincipalArns::offline(spec, &account),
            None,
            (BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE),
        )
        .expect("the builtin template renders")
    }

    fn replica_of(spec: &EnvSpec) -> Option<EnvSpec> {
        spec.replica_spec()
    }

    #[test]
    fn every_row_is_checked_and_met_by_the_generated_documents() {
        let specs = fixtures();
        let replicas: Vec<EnvSpec> = specs.iter().filter_map(replica_of).collect();
        let mut checked = vec![0; REQUIREMENTS.len()];
        let mut failures = Vec::new();
        for spec in specs.iter().chain(&replicas) {
            let (unmet, counts) = unmet(&desired(spec));
            failures.extend(
                unmet
                    .iter()
                    .map(|unmet| format!("{}: {unmet}", spec.source)),
            );
            for (total, count) in checked.iter_mut().zip(counts) {
                *total += count;
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        let never: Vec<String> = REQUIREMENTS
            .iter()
            .zip(&checked)
            .filter(|(_, count)| **count == 0)
            .map(|(requirement, _)| {
                format!(
                    "{}: {} {}",
                    requirement.client, requirement.operation, requirement.action
                )
            })
            .collect();
        assert!(never.is_empty(), "rows no fixture reaches: {never:#?}");
    }

    /// The unmet rows of `spec` after `change` edited its documents.
    fn unmet_after(spec: &EnvSpec, change: impl FnOnce(&mut DesiredBucket<'_>)) -> Vec<String> {
        let mut edited = desired(spec);
        change(&mut edited);
        unmet(&edited)
            .0
            .iter()
            .map(|unmet| {
                format!(
                    "{}: {}",
                    unmet.requirement.client, unmet.requirement.operation
                )
            })
            .collect()
    }

    fn prod() -> EnvSpec {
        fixtures().remove(1)
    }

    /// The statement `sid` of the replication role's policy.
    fn replication_statement<'v>(desired: &'v mut DesiredBucket<'_>, sid: &str) -> &'v mut Value {
        let replication = desired.replication.as_mut().unwrap();
        replication
            .role_policy
            .statements
            .iter_mut()
            .find(|statement| statement["Sid"] == sid)
            .unwrap_or_else(|| panic!("{sid}"))
    }

    #[test]
    fn replication_into_a_bucket_key_replica_needs_decrypt_on_the_replica_key() {
        let unmet = unmet_after(&prod(), |desired| {
            replication_statement(desired, "StatebucketReplicationEncryptReplica")["Action"] =
                json!(["kms:Encrypt"]);
        });
        assert_eq!(
            unmet,
            ["S3 replication: into a replica with an S3 Bucket Key"]
        );
    }

    #[test]
    fn replication_into_an_object_lock_replica_needs_retention_and_legal_hold() {
        let unmet = unmet_after(&prod(), |desired| {
            replication_statement(desired, "StatebucketReplicationSourceObjects")["Action"] =
                json!([
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging"
                ]);
        });
        assert_eq!(
            unmet,
            [
                "S3 replication: into a replica with Object Lock: retention",
                "S3 replication: into a replica with Object Lock: legal hold"
            ]
        );
    }

    #[test]
    fn a_writer_without_delete_on_workspace_state_cannot_delete_a_workspace() {
        let unmet = unmet_after(&prod(), |desired| {
            desired
                .policy
                .retain(|statement| statement["Sid"] != "StatebucketDeleteWorkspaceState");
        });
        assert!(!unmet.is_empty());
        assert!(
            unmet.iter().all(|row| row == "Terraform: workspace delete"),
            "{unmet:?}"
        );
    }

    #[test]
    fn a_trust_without_source_account_is_a_confused_deputy() {
        let unmet = unmet_after(&prod(), |desired| {
            let replication = desired.replication.as_mut().unwrap();
            for statement in &mut replication.trust_policy.statements {
                statement.as_object_mut().unwrap().remove("Condition");
            }
        });
        assert_eq!(
            unmet,
            ["S3 replication: never for another account's bucket"]
        );
    }

    #[test]
    fn a_reader_granted_put_on_state_or_a_key_usable_outside_s3_is_reported() {
        let platform = fixtures().remove(2);
        let unmet = unmet_after(&platform, |desired| {
            for statement in &mut desired.policy {
                if statement["Sid"] == "StatebucketReadState" {
                    statement["Action"] = json!(["s3:GetObject", "s3:PutObject"]);
                }
            }
        });
        assert!(
            unmet.contains(&"Terraform (reader): never writes state".to_owned()),
            "{unmet:?}"
        );
        let central = fixtures().remove(3);
        let unmet = unmet_after(&central, |desired| {
            for statement in &mut desired.key_grants {
                statement.as_object_mut().unwrap().remove("Condition");
            }
        });
        assert!(
            unmet.contains(&"Terraform: the state key is used only through S3".to_owned()),
            "{unmet:?}"
        );
    }

    #[test]
    fn the_readme_lists_every_row() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's permissions table differs from the requirements; it should read:\n{}",
            markdown_table()
        );
    }
}
