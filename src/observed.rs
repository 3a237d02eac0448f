//! What exists, as read from AWS and disk. Plain data: the `aws` module fills it in, `plan`
//! compares it with the spec.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// `None`: the bucket does not exist.
    pub bucket: Option<ObservedBucket>,
    /// For KMS environments: the key the spec names, `None` when it does not exist.
    pub kms_key: Option<ObservedKey>,
    /// Each stack's backend.hcl as it is on disk, by path; a missing file is absent.
    pub backend_files: BTreeMap<String, String>,
    /// backend.hcl files generated from this spec for stacks it no longer has: path, content.
    pub orphan_backend_files: Vec<(String, String)>,
    /// With `attach_identity_policy`: the inline policy of each principal in this account,
    /// by principal ARN; `None` when the principal has no such policy.
    pub identity_policies: Vec<(String, Option<String>)>,
    /// The lock tables the stacks use that exist, by name.
    pub lock_tables: BTreeMap<String, ObservedLockTable>,
    /// With `bucket.logging`: the log bucket, `None` when not observed.
    pub log_bucket: Option<LogBucket>,
    /// With `opentofu.encryption.create_key`: the dedicated key; `None` when not observed.
    pub tofu_key: Option<ObservedTofuKey>,
    /// With `bucket.replica`: the replication role and configuration; `None` when not observed.
    pub replication: Option<ReplicationState>,
}

/// What replication into the replica depends on, as read from IAM and the primary bucket.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicationState {
    /// The replication role; `None` when it does not exist.
    pub role: Option<RoleState>,
    /// GetBucketReplication; `None` when the bucket has no replication configuration.
    pub configuration: Option<ReplicationConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    pub arn: String,
    /// The trust policy, decoded.
    pub trust_policy: String,
    /// statebucket's inline policy of the role, decoded; `None` when it has none.
    pub policy: Option<String>,
}

/// A bucket's replication configuration: one role for every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationConfiguration {
    pub role: String,
    /// statebucket's rule (by its id), as far as statebucket sets it.
    pub owned: Option<ReplicationRule>,
    /// Every other rule, kept as it is.
    pub foreign: Vec<ForeignReplicationRule>,
}

/// statebucket's replication rule, in the terms it is compared in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationRule {
    pub id: String,
    pub priority: i32,
    pub enabled: bool,
    /// The rule covers every object (an empty prefix filter, or none).
    pub whole_bucket: bool,
    /// Delete markers are replicated (so that a released lockfile is released there too).
    pub delete_markers: bool,
    /// The destination bucket's ARN.
    pub destination: String,
    /// SSE-KMS objects are selected and re-encrypted with this key in the replica's region.
    pub replica_kms_key: Option<String>,
    /// A storage class other than the source's; statebucket sets none.
    pub storage_class: Option<String>,
}

impl fmt::Display for ReplicationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}{}{}{}",
            if self.whole_bucket {
                "every object"
            } else {
                "some objects"
            },
            self.destination,
            match &self.replica_kms_key {
                Some(key) => format!(", SSE-KMS objects re-encrypted with {key}"),
                None => String::new(),
            },
            if self.delete_markers {
                ", delete markers too"
            } else {
                ", delete markers not replicated"
            },
            if self.enabled { "" } else { " (disabled)" },
        )
    }
}

/// A replication rule of another owner: the core reads its id, priority and destination; the S3
/// adapter keeps what it read (`kept`) and writes it back unchanged, since
/// PutBucketReplication replaces every rule at once.
#[derive(Clone)]
pub struct ForeignReplicationRule {
    pub id: String,
    pub priority: Option<i32>,
    /// The destination bucket's ARN.
    pub destination: Option<String>,
    pub kept: std::sync::Arc<dyn std::any::Any + Send + Sync>,
}

impl fmt::Debug for ForeignReplicationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignReplicationRule")
            .field("id", &self.id)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ForeignReplicationRule {
    fn eq(&self, other: &ForeignReplicationRule) -> bool {
        self.id == other.id && self.priority == other.priority
    }
}

impl Serialize for ForeignReplicationRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.id)
    }
}

/// Object Lock on a bucket (GetObjectLockConfiguration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectLockState {
    pub enabled: bool,
    pub default_retention: Option<Retention>,
}

/// A default retention as S3 holds it: in days or in years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

impl Retention {
    /// The retention in days (a year counted as 365).
    pub fn in_days(&self) -> i64 {
        i64::from(self.days.unwrap_or(0)) + 365 * i64::from(self.years.unwrap_or(0))
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.days, self.years) {
            (_, Some(years)) => write!(f, "{} for {years} years", self.mode),
            (days, None) => write!(f, "{} for {} days", self.mode, days.unwrap_or(0)),
        }
    }
}

/// OpenTofu's dedicated key as found: behind its alias, tagged for the environment but
/// without the alias (a run stopped between CreateKey and CreateAlias), or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedTofuKey {
    /// `rotation_enabled`: GetKeyRotationStatus.
    Aliased {
        arn: String,
        rotation_enabled: bool,
    },
    Unaliased {
        arn: String,
    },
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedLockTable {
    /// The key schema as `(attribute, type)`; Terraform needs exactly `[("LockID", "S")]`.
    pub hash_key: Vec<(String, String)>,
    pub has_range_key: bool,
    /// `PAY_PER_REQUEST` or `PROVISIONED`.
    pub billing_mode: String,
    /// Encrypted with a KMS key (AWS managed or customer managed) rather than an AWS owned one.
    pub kms_encrypted: bool,
    pub deletion_protection: bool,
    /// `None` when continuous backups could not be described (the table is still being created).
    pub point_in_time_recovery: Option<bool>,
    pub tags: BTreeMap<String, String>,
}

/// What the log bucket of `bucket.logging` looks like from the state bucket's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogBucket {
    Missing,
    Found {
        region: String,
        /// The log bucket's policy; `None` when it has none.
        policy: Option<String>,
    },
}

/// Where the state bucket's server access logs go (GetBucketLogging).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggingTarget {
    pub bucket: String,
    pub prefix: String,
}

impl fmt::Display for LoggingTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// One lifecycle rule, complete, so that rules of other owners can be written back exactly
/// as they were (PutBucketLifecycleConfiguration replaces the whole set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleRule {
    pub id: Option<String>,
    pub enabled: bool,
    pub filter: RuleFilter,
    pub expiration: Option<Expiration>,
    pub transitions: Vec<Transition>,
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    pub abort_incomplete_upload_days: Option<i32>,
}

/// Which objects a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleFilter {
    /// No filter at all (the whole bucket).
    Unfiltered,
    /// The deprecated rule-level `Prefix`.
    LegacyPrefix(String),
    Prefix(String),
    Tag(String, String),
    SizeGreaterThan(i64),
    SizeLessThan(i64),
    And {
        prefix: Option<String>,
        tags: Vec<(String, String)>,
        size_greater_than: Option<i64>,
        size_less_than: Option<i64>,
    },
}

impl RuleFilter {
    /// Whether the rule covers every object, however it says so.
    pub fn is_whole_bucket(&self) -> bool {
        match self {
            RuleFilter::Unfiltered => true,
            RuleFilter::LegacyPrefix(prefix) | RuleFilter::Prefix(prefix) => prefix.is_empty(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiration {
    pub days: Option<i32>,
    /// ISO 8601, as S3 returns it.
    pub date: Option<String>,
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub days: Option<i32>,
    pub date: Option<String>,
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoncurrentTransition {
    pub noncurrent_days: Option<i32>,
    pub newer_noncurrent_versions: Option<i32>,
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoncurrentExpiration {
    pub noncurrent_days: Option<i32>,
    pub newer_noncurrent_versions: Option<i32>,
}

impl LifecycleRule {
    /// Whether the rule (enabled) expires current objects, by age or on a date.
    pub fn expires_current_objects(&self) -> bool {
        self.enabled
            && self
                .expiration
                .as_ref()
                .is_some_and(|expiration| expiration.days.is_some() || expiration.date.is_some())
    }
}

impl fmt::Display for LifecycleRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id.as_deref().unwrap_or("(no id)"))?;
        let mut actions = Vec::new();
        if let Some(days) = self
            .noncurrent_expiration
            .as_ref()
            .and_then(|e| e.noncurrent_days)
        {
            actions.push(format!("noncurrent versions expire after {days} days"));
        }
        if let Some(days) = self.abort_incomplete_upload_days {
            actions.push(format!("incomplete uploads aborted after {days} days"));
        }
        if self.expiration.is_some() {
            actions.push("objects expire".to_owned());
        }
        if !self.transitions.is_empty() || !self.noncurrent_transitions.is_empty() {
            actions.push("storage class transitions".to_owned());
        }
        if !actions.is_empty() {
            write!(f, ": {}", actions.join(", "))?;
        }
        if !self.enabled {
            f.write_str(" (disabled)")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedBucket {
    /// The bucket's region as S3 reports it (`x-amz-bucket-region`).
    pub region: String,
    pub versioning: Versioning,
    /// The first default-encryption rule; `None` when none is configured.
    pub encryption: Option<SseRule>,
    pub public_access: PublicAccessBlock,
    /// `None` when no ownership controls are set.
    pub ownership: Option<String>,
    /// The policy as S3 returned it; `None` when the bucket has none.
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Every lifecycle rule, the tool's and others'.
    pub lifecycle: Vec<LifecycleRule>,
    /// The lifecycle configuration's `TransitionDefaultMinimumObjectSize`, when S3 reports
    /// one; written back as it was, since a PUT without it resets it to S3's default.
    pub lifecycle_minimum_object_size: Option<String>,
    /// Server access logging; `None` when off (or not read: read only with `bucket.logging`).
    pub logging: Option<LoggingTarget>,
    /// Object Lock; `None` when not read (read only when the spec asks for it).
    pub object_lock: Option<ObjectLockState>,
}

impl ObservedBucket {
    /// A bucket in `region` with nothing configured, as CreateBucket leaves it on a store
    /// without defaults.
    pub fn unconfigured(region: &str) -> ObservedBucket {
        ObservedBucket {
            region: region.to_owned(),
            versioning: Versioning::Never,
            encryption: None,
            public_access: PublicAccessBlock::default(),
            ownership: None,
            policy: None,
            tags: BTreeMap::new(),
            lifecycle: Vec::new(),
            lifecycle_minimum_object_size: None,
            logging: None,
            object_lock: None,
        }
    }
}

/// GetBucketVersioning omits `Status` when versioning was never configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Versioning {
    Never,
    Enabled,
    Suspended,
}

impl fmt::Display for Versioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Versioning::Never => "never enabled",
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SseRule {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key: bool,
}

impl fmt::Display for SseRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.algorithm)?;
        if let Some(key) = &self.kms_key_id {
            write!(f, " ({key})")?;
        }
        if self.bucket_key {
            f.write_str(", bucket key")?;
        }
        Ok(())
    }
}

/// The four flags; a bucket without a configuration has all four off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

impl fmt::Display for PublicAccessBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = [
            ("BlockPublicAcls", self.block_public_acls),
            ("IgnorePublicAcls", self.ignore_public_acls),
            ("BlockPublicPolicy", self.block_public_policy),
            ("RestrictPublicBuckets", self.restrict_public_buckets),
        ];
        let on: Vec<&str> = flags
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        match on.len() {
            0 => f.write_str("none blocked"),
            4 => f.write_str("all 4 blocked"),
            _ => write!(f, "only {}", on.join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedKey {
    pub arn: String,
    pub id: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, …
    pub state: String,
    /// Read only for keys the tool manages; `None` when not read.
    pub rotation_enabled: Option<bool>,
    /// False for a managed key found by its tags whose alias is missing (a run stopped
    /// between CreateKey and CreateAlias).
    pub aliased: bool,
    pub policy: KeyPolicyReading,
}

/// The key policy (GetKeyPolicy `default`), or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum KeyPolicyReading {
    Read(String),
    Denied(String),
}
