//! What exists, as read from AWS and disk. Plain data: the `aws` module fills it in, `plan`
//! compares it with the spec.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// `None`: the bucket does not exist.
    pub bucket: Option<BucketState>,
    /// For KMS environments: the key the spec names, `None` when it does not exist.
    pub kms_key: Option<KmsKeyState>,
    /// backend.hcl as it is on disk, `None` when absent.
    pub backend_file: Option<String>,
    /// With `attach_identity_policy`: the inline policy of each principal in this account,
    /// by principal ARN; `None` when the principal has no such policy.
    pub identity_policies: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
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
pub struct KmsKeyState {
    pub arn: String,
    pub id: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, …
    pub state: String,
    /// Read only for keys the tool manages; `None` when not read.
    pub rotation_enabled: Option<bool>,
    /// False for a managed key found by its tags whose alias is missing (a run stopped
    /// between CreateKey and CreateAlias).
    pub aliased: bool,
}
