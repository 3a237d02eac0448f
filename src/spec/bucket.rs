//! The bucket part of a spec: encryption, lifecycle, logging, Object Lock, the replica.

use std::collections::BTreeMap;
use std::fmt;

use super::*;

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
