//! A change: one facet moving from an observed value to the desired one. The values travel
//! with the change so that it can be printed, serialised and applied as it is.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use crate::observed::{
    ForeignReplicationRule, LifecycleRule, LoggingTarget, PublicAccessBlock, ReplicationRule,
    Retention, SseRule, Versioning,
};
use crate::policy::{PolicyDocument, StatementChange};
use crate::spec::IamArn;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Facet {
    Bucket,
    KmsKey,
    KeyRotation,
    Versioning,
    Encryption,
    PublicAccessBlock,
    Ownership,
    Policy,
    KeyPolicy,
    Tags,
    Lifecycle,
    LogDelivery,
    Logging,
    LockTable,
    PointInTimeRecovery,
    LockTableTags,
    IdentityPolicy,
    BackendFile,
    TofuKey,
    ObjectLock,
    ReplicationRole,
    Replication,
}

impl Facet {
    /// What a change of this facet is made on.
    pub fn target(self) -> Target {
        match self {
            Facet::Bucket => Target::NewBucket,
            Facet::Versioning
            | Facet::Encryption
            | Facet::PublicAccessBlock
            | Facet::Ownership
            | Facet::Policy
            | Facet::Tags
            | Facet::Lifecycle
            | Facet::ObjectLock => Target::BucketSetting,
            Facet::KmsKey | Facet::KeyRotation | Facet::KeyPolicy => Target::StateKey,
            Facet::TofuKey => Target::TofuKey,
            Facet::LogDelivery | Facet::Logging => Target::Logging,
            Facet::LockTable | Facet::PointInTimeRecovery | Facet::LockTableTags => {
                Target::LockTable
            }
            Facet::IdentityPolicy => Target::IdentityPolicy,
            Facet::ReplicationRole => Target::ReplicationRole,
            Facet::Replication => Target::Replication,
            Facet::BackendFile => Target::BackendFile,
        }
    }

    /// The feature of an S3-compatible store this facet needs, when a store may lack it
    /// (`compat.lacks`).
    pub fn store_feature(self) -> Option<crate::spec::StoreFeature> {
        use crate::spec::StoreFeature;
        match self {
            Facet::PublicAccessBlock => Some(StoreFeature::PublicAccessBlock),
            Facet::Ownership => Some(StoreFeature::OwnershipControls),
            Facet::Tags => Some(StoreFeature::Tagging),
            Facet::KmsKey | Facet::KeyRotation | Facet::KeyPolicy | Facet::TofuKey => {
                Some(StoreFeature::Kms)
            }
            Facet::IdentityPolicy | Facet::ReplicationRole => Some(StoreFeature::Iam),
            _ => None,
        }
    }
}

impl fmt::Display for Facet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Facet::Bucket => "bucket",
            Facet::KmsKey => "kms key",
            Facet::KeyRotation => "key rotation",
            Facet::Versioning => "versioning",
            Facet::Encryption => "encryption",
            Facet::PublicAccessBlock => "public access block",
            Facet::Ownership => "object ownership",
            Facet::Policy => "bucket policy",
            Facet::KeyPolicy => "key policy",
            Facet::Tags => "tags",
            Facet::Lifecycle => "lifecycle rules",
            Facet::LogDelivery => "log delivery grant",
            Facet::Logging => "access logging",
            Facet::LockTable => "lock table",
            Facet::PointInTimeRecovery => "lock table backups",
            Facet::LockTableTags => "lock table tags",
            Facet::IdentityPolicy => "identity policy",
            Facet::BackendFile => "backend file",
            Facet::TofuKey => "opentofu key",
            Facet::ObjectLock => "object lock",
            Facet::ReplicationRole => "replication role",
            Facet::Replication => "replication",
        })
    }
}

/// The bucket's default encryption as planned, decided once (`kms_key::plan`) for every
/// facet that names the key: SSE-S3, or SSE-KMS with an S3 Bucket Key and a key whose ARN
/// is known now or only once apply has created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum SseTarget {
    Aes256,
    Kms { key_arn: KeyArn },
}

impl SseTarget {
    /// The key's ARN when it is known now.
    pub fn known_key(&self) -> Option<&str> {
        match self {
            SseTarget::Kms {
                key_arn: KeyArn::Known(arn),
            } => Some(arn),
            _ => None,
        }
    }
}

impl fmt::Display for SseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseTarget::Aes256 => f.write_str("AES256"),
            SseTarget::Kms {
                key_arn: KeyArn::Known(arn),
            } => write!(f, "aws:kms ({arn}), bucket key"),
            SseTarget::Kms {
                key_arn: KeyArn::AfterApply,
            } => f.write_str("aws:kms (key known after apply), bucket key"),
        }
    }
}

/// A KMS key's ARN: known now (observed), or only once apply has created the key.
/// Serialized as the ARN, or `null` until it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyArn {
    Known(String),
    AfterApply,
}

impl Serialize for KeyArn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            KeyArn::Known(arn) => serializer.serialize_some(arn),
            KeyArn::AfterApply => serializer.serialize_none(),
        }
    }
}

/// A policy as the document carries it: its compact JSON, as sent.
fn compact_json<S: serde::Serializer>(
    document: &PolicyDocument,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&document.to_compact_json())
}

fn indented_json<S: serde::Serializer>(
    document: &PolicyDocument,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&document.to_json())
}

/// A value as its text (an ARN).
fn text<S: serde::Serializer, T: fmt::Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// One change, carrying the values it moves between.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// With the spec's tags in the request, for organisations whose SCPs require tags on
    /// `s3:CreateBucket`.
    CreateBucket {
        bucket: String,
        region: String,
        tags: BTreeMap<String, String>,
        /// CreateBucket's `ObjectOwnership: BucketOwnerEnforced` (left out for a store that
        /// lacks ownership controls).
        #[serde(skip)]
        owner_enforced: bool,
        /// Object Lock enabled at creation (a replica with `object_lock`).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        object_lock: bool,
    },
    /// Object Lock's default retention (PutObjectLockConfiguration). `enable`: Object Lock is
    /// not on yet on this existing bucket, and is turned on by the same request (S3 allows
    /// it on a versioned bucket).
    SetObjectLock {
        from: Option<Retention>,
        to: Retention,
        enable: bool,
    },
    /// The role S3 assumes to replicate (trusted by s3.amazonaws.com only), with its inline
    /// policy. Created, never deleted.
    CreateReplicationRole {
        role: String,
        #[serde(serialize_with = "compact_json")]
        trust_policy: PolicyDocument,
        policy_name: String,
        #[serde(serialize_with = "compact_json")]
        policy: PolicyDocument,
    },
    /// The replication configuration of the primary: statebucket's rule, the rules of other
    /// owners as they were, and the role.
    PutReplication {
        role: String,
        from: Option<ReplicationRule>,
        to: ReplicationRule,
        /// Ids of the rules of other owners, kept.
        kept: Vec<String>,
        #[serde(skip)]
        foreign: Vec<ForeignReplicationRule>,
    },
    /// A symmetric key with the alias, tags naming the environment, rotation on, and
    /// `policy` as its key policy.
    CreateKmsKey {
        alias: String,
        description: String,
        tags: BTreeMap<String, String>,
        #[serde(serialize_with = "compact_json")]
        policy: PolicyDocument,
    },
    EnableKeyRotation {
        key_arn: String,
    },
    /// Points the alias at a key created earlier for this environment (found by its tags).
    AliasKmsKey {
        alias: String,
        key_arn: String,
    },
    /// OpenTofu's dedicated key (`opentofu.encryption.create_key`): symmetric, rotation on,
    /// the account's default key policy (IAM policies grant its use), and the alias.
    CreateTofuKey {
        alias: String,
        description: String,
        tags: BTreeMap<String, String>,
        #[serde(skip)]
        policy: PolicyDocument,
    },
    /// The alias of a dedicated key an interrupted run created without one.
    AliasTofuKey {
        alias: String,
        key_arn: String,
    },
    EnableVersioning {
        from: Versioning,
    },
    SetEncryption {
        from: Option<SseRule>,
        to: SseTarget,
    },
    BlockPublicAccess {
        from: PublicAccessBlock,
    },
    EnforceBucketOwner {
        from: Option<String>,
    },
    PutPolicy {
        from: Option<String>,
        /// Sent as compact JSON (S3 counts the bytes it is given).
        #[serde(serialize_with = "compact_json")]
        to: PolicyDocument,
        statements: Vec<StatementChange>,
        /// Statements the tool does not own, kept as they are.
        kept: Vec<String>,
    },
    /// The key policy of a key statebucket created: its grant statements, and the account
    /// root statement when no other statement gives the account the key.
    PutKeyPolicy {
        key_arn: String,
        from: Option<String>,
        /// Sent as written, indented (KMS counts the bytes it is given).
        #[serde(serialize_with = "indented_json")]
        to: PolicyDocument,
        statements: Vec<StatementChange>,
        kept: Vec<String>,
    },
    MergeTags {
        from: BTreeMap<String, String>,
        to: BTreeMap<String, String>,
    },
    /// Replaces the bucket's lifecycle configuration with `rules`: the rules of other owners
    /// as they were, then the tool's.
    SetLifecycle {
        from: Vec<LifecycleRule>,
        to: Vec<LifecycleRule>,
        rules: Vec<LifecycleRule>,
        /// IDs of the rules of other owners, kept.
        kept: Vec<String>,
        /// The configuration-wide transition size setting, kept as it was.
        minimum_object_size: Option<String>,
    },
    /// Adds (or corrects) this bucket's statement in the log bucket's policy. Apply reads the
    /// log bucket's policy again and merges `statement`, since several environments may
    /// share the log bucket.
    GrantLogDelivery {
        log_bucket: String,
        statement: Value,
        from: Option<String>,
        to: String,
    },
    EnableLogging {
        from: Option<LoggingTarget>,
        to: LoggingTarget,
    },
    /// Hash key `LockID` (string), on-demand billing, encryption with the AWS managed KMS
    /// key, deletion protection, and the spec's tags, all in CreateTable.
    CreateLockTable {
        table: String,
        tags: BTreeMap<String, String>,
    },
    UpdateLockTable {
        table: String,
        from: TableSettings,
        to: TableSettings,
    },
    EnablePointInTimeRecovery {
        table: String,
        from: Option<bool>,
    },
    TagLockTable {
        table: String,
        from: BTreeMap<String, String>,
        to: BTreeMap<String, String>,
    },
    /// The inline identity policy of one user or role (IAM Put{User,Role}Policy).
    PutIdentityPolicy {
        #[serde(serialize_with = "text")]
        principal: IamArn,
        policy_name: String,
        from: Option<String>,
        /// Sent as compact JSON (IAM counts the characters against its quota).
        #[serde(serialize_with = "compact_json")]
        to: PolicyDocument,
    },
    WriteBackendFile {
        stack: String,
        path: String,
        from: Option<String>,
        /// `None` when it depends on a key created by this plan.
        to: Option<String>,
    },
}

/// What a change is made on. Apply orders changes by it; the plan text groups by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// CreateBucket: before everything else of the bucket (the apply lock lives in it).
    NewBucket,
    /// One of the bucket's own settings (a Put* on the bucket).
    BucketSetting,
    /// The state key: created, aliased, its rotation or policy.
    StateKey,
    /// OpenTofu's dedicated key.
    TofuKey,
    /// The log bucket's policy; then the bucket's logging, which S3 checks against it.
    Logging,
    LockTable,
    IdentityPolicy,
    ReplicationRole,
    /// The primary's replication configuration: after both buckets and the role.
    Replication,
    /// A file on disk, not AWS.
    BackendFile,
}

impl Change {
    pub fn target(&self) -> Target {
        self.facet().target()
    }

    /// Whether two runs on two machines must not both make the change: a KMS key created (or
    /// an orphan key aliased: CreateKey is not idempotent), or a shared log bucket's policy
    /// rewritten (read, merged, written). Such a change is applied under the apply lock.
    pub fn needs_lock(&self) -> bool {
        matches!(
            self,
            Change::CreateKmsKey { .. }
                | Change::AliasKmsKey { .. }
                | Change::CreateTofuKey { .. }
                | Change::AliasTofuKey { .. }
                | Change::GrantLogDelivery { .. }
        )
    }

    /// Whether the change grants or takes access: a policy written, a key created with its
    /// policy, a role created. Such a plan passes the lockout guard first.
    pub fn writes_access(&self) -> bool {
        matches!(
            self,
            Change::PutPolicy { .. }
                | Change::PutIdentityPolicy { .. }
                | Change::PutKeyPolicy { .. }
                | Change::CreateKmsKey { .. }
                | Change::CreateReplicationRole { .. }
        )
    }

    pub fn facet(&self) -> Facet {
        match self {
            Change::CreateBucket { .. } => Facet::Bucket,
            Change::CreateKmsKey { .. } => Facet::KmsKey,
            Change::EnableKeyRotation { .. } => Facet::KeyRotation,
            Change::AliasKmsKey { .. } => Facet::KmsKey,
            Change::CreateTofuKey { .. } | Change::AliasTofuKey { .. } => Facet::TofuKey,
            Change::EnableVersioning { .. } => Facet::Versioning,
            Change::SetEncryption { .. } => Facet::Encryption,
            Change::BlockPublicAccess { .. } => Facet::PublicAccessBlock,
            Change::EnforceBucketOwner { .. } => Facet::Ownership,
            Change::PutPolicy { .. } => Facet::Policy,
            Change::PutKeyPolicy { .. } => Facet::KeyPolicy,
            Change::MergeTags { .. } => Facet::Tags,
            Change::SetLifecycle { .. } => Facet::Lifecycle,
            Change::GrantLogDelivery { .. } => Facet::LogDelivery,
            Change::EnableLogging { .. } => Facet::Logging,
            Change::CreateLockTable { .. } | Change::UpdateLockTable { .. } => Facet::LockTable,
            Change::EnablePointInTimeRecovery { .. } => Facet::PointInTimeRecovery,
            Change::TagLockTable { .. } => Facet::LockTableTags,
            Change::PutIdentityPolicy { .. } => Facet::IdentityPolicy,
            Change::WriteBackendFile { .. } => Facet::BackendFile,
            Change::SetObjectLock { .. } => Facet::ObjectLock,
            Change::CreateReplicationRole { .. } => Facet::ReplicationRole,
            Change::PutReplication { .. } => Facet::Replication,
        }
    }

    /// The values the change moves between: what is there now (`null` for what does not
    /// exist yet) and what will be. Every change has both, in JSON too.
    pub fn from_to(&self) -> (Value, Value) {
        match self {
            Change::CreateBucket {
                bucket,
                region,
                tags,
                object_lock,
                ..
            } => {
                let mut to = json!({"bucket": bucket, "region": region, "tags": tags});
                if *object_lock {
                    to["object_lock"] = json!(true);
                }
                (Value::Null, to)
            }
            Change::SetObjectLock { from, to, .. } => (value(from), value(to)),
            Change::CreateReplicationRole {
                role,
                trust_policy,
                policy,
                ..
            } => (
                Value::Null,
                json!({
                    "role": role,
                    "trust_policy": trust_policy.to_compact_json(),
                    "policy": policy.to_compact_json(),
                }),
            ),
            Change::PutReplication { from, to, .. } => (value(from), value(to)),
            Change::CreateKmsKey {
                alias,
                description,
                tags,
                ..
            }
            | Change::CreateTofuKey {
                alias,
                description,
                tags,
                ..
            } => (
                Value::Null,
                json!({"alias": alias, "description": description, "tags": tags, "rotation": true}),
            ),
            Change::EnableKeyRotation { .. } => (json!(false), json!(true)),
            Change::AliasKmsKey { key_arn, .. } | Change::AliasTofuKey { key_arn, .. } => {
                (Value::Null, json!(key_arn))
            }
            Change::EnableVersioning { from } => (value(from), value(&Versioning::Enabled)),
            Change::SetEncryption { from, to } => (value(from), value(to)),
            Change::BlockPublicAccess { from } => (value(from), value(&PublicAccessBlock::ALL)),
            Change::EnforceBucketOwner { from } => {
                (value(from), json!(crate::desired::OBJECT_OWNERSHIP))
            }
            Change::PutPolicy { from, to, .. } | Change::PutIdentityPolicy { from, to, .. } => {
                (value(from), json!(to.to_compact_json()))
            }
            Change::PutKeyPolicy { from, to, .. } => (value(from), json!(to.to_json())),
            Change::GrantLogDelivery { from, to, .. } => (value(from), value(to)),
            Change::MergeTags { from, to } | Change::TagLockTable { from, to, .. } => {
                (value(from), value(to))
            }
            Change::SetLifecycle { from, to, .. } => (value(from), value(to)),
            Change::EnableLogging { from, to } => (value(from), value(to)),
            Change::CreateLockTable { table, tags } => (
                Value::Null,
                json!({
                    "table": table,
                    "hash_key": "LockID (S)",
                    "billing_mode": crate::desired::TABLE_BILLING_MODE,
                    "deletion_protection": true,
                    "tags": tags,
                }),
            ),
            Change::UpdateLockTable { from, to, .. } => (value(from), value(to)),
            Change::EnablePointInTimeRecovery { from, .. } => (value(from), json!(true)),
            Change::WriteBackendFile { from, to, .. } => (value(from), value(to)),
        }
    }

    /// Whether the change creates something that did not exist.
    pub fn creates(&self) -> bool {
        match self {
            Change::CreateBucket { .. }
            | Change::CreateKmsKey { .. }
            | Change::CreateTofuKey { .. }
            | Change::CreateReplicationRole { .. }
            | Change::CreateLockTable { .. } => true,
            Change::PutReplication { from, .. } => from.is_none(),
            Change::WriteBackendFile { from, .. } => from.is_none(),
            // `None`: the table is created by the same plan; its backups come with it.
            Change::EnablePointInTimeRecovery { from, .. } => from.is_none(),
            Change::PutPolicy { from, .. } | Change::PutIdentityPolicy { from, .. } => {
                from.is_none()
            }
            _ => false,
        }
    }
}

/// The lock table settings that UpdateTable can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSettings {
    pub billing_mode: String,
    pub deletion_protection: bool,
}

impl fmt::Display for TableSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, deletion protection {}",
            self.billing_mode,
            if self.deletion_protection {
                "on"
            } else {
                "off"
            }
        )
    }
}

fn value<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).expect("plan values are plain data")
}
