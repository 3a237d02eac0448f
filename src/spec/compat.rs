//! What a store lacks (`compat`) and OpenTofu's state encryption.

use super::*;

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

    /// In a sentence: the API the feature is.
    pub fn describe(self) -> &'static str {
        match self {
            StoreFeature::Iam => "IAM",
            StoreFeature::Kms => "KMS",
            StoreFeature::PublicAccessBlock => "S3 Block Public Access",
            StoreFeature::OwnershipControls => "S3 Object Ownership",
            StoreFeature::Tagging => "bucket tagging",
            StoreFeature::Sts => "STS",
        }
    }

    pub fn name(self) -> &'static str {
        StoreFeature::ALL
            .iter()
            .find(|(_, feature)| *feature == self)
            .map(|(name, _)| *name)
            .expect("every feature is named")
    }
}
