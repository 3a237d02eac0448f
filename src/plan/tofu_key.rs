//! OpenTofu's dedicated key (`opentofu.encryption: { kms_key: alias/…, create_key: true }`):
//! created with its alias and rotation when missing, only aliased when an interrupted run
//! left it without one, and its rotation turned on again when someone turned it off. Its ARN
//! is never written: the encryption file names the alias.

use super::{Change, Facet, Planner};
use crate::desired::{DesiredBucket, tofu_key_tags};
use crate::observed::{Observed, ObservedTofuKey};
use crate::policy::PolicyDocument;
use crate::policy::key_policy::account_root_statement;
use crate::spec::{KmsKey, TofuEncryption};

pub(super) fn plan(planner: &mut Planner, desired: &DesiredBucket<'_>, observed: &Observed) {
    let spec = desired.spec;
    let Some(TofuEncryption {
        key: Some(KmsKey::Managed(alias)),
        ..
    }) = &spec.tofu_encryption
    else {
        return;
    };
    let change = match &observed.tofu_key {
        Some(ObservedTofuKey::Aliased {
            rotation_enabled: true,
            ..
        }) => None,
        // Rotation turned off by hand: on again, as at creation.
        Some(ObservedTofuKey::Aliased {
            arn,
            rotation_enabled: false,
        }) => Some(Change::EnableKeyRotation {
            key_arn: arn.clone(),
        }),
        Some(ObservedTofuKey::Unaliased { arn }) => Some(Change::AliasTofuKey {
            alias: alias.to_string(),
            key_arn: arn.clone(),
        }),
        Some(ObservedTofuKey::Missing) | None => {
            // The account's default key policy: IAM policies (the identity policy's
            // StatebucketOpenTofuEncryptionKey) decide who may use the key.
            let policy = PolicyDocument::of(vec![account_root_statement(
                spec.region.partition(),
                &desired.account,
            )]);
            Some(Change::CreateTofuKey {
                alias: alias.to_string(),
                description: format!(
                    "Encrypts OpenTofu state and plans of s3://{} (statebucket environment {})",
                    spec.bucket.name, spec.name
                ),
                tags: tofu_key_tags(spec),
                policy,
            })
        }
    };
    planner.record(Facet::TofuKey, change);
}
