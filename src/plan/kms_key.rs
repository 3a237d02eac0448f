//! The KMS key of a KMS environment: an existing key must be usable; a managed key
//! (`create_key: true`) is created with its alias, rotation and key policy, or its alias and
//! rotation are repaired. The encryption target, and so the key's ARN, is decided here,
//! once, for every facet that names it.

use super::{Change, Facet, KeyArn, PlanError, Planner, SseTarget};
use crate::desired::DesiredBucket;
use crate::observed::Observed;
use crate::spec::{Encryption, KmsKey};

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &Observed,
) -> Result<SseTarget, PlanError> {
    let spec = desired.spec;
    let Encryption::Kms(key) = &spec.bucket.encryption else {
        return Ok(SseTarget::Aes256);
    };
    match (&observed.kms_key, key) {
        (Some(state), _) if state.state != "Enabled" => Err(PlanError::KmsKeyUnusable {
            arn: state.arn.clone(),
            state: state.state.clone(),
        }),
        (Some(state), KmsKey::Managed(alias)) => {
            planner.record(
                Facet::KmsKey,
                (!state.aliased).then(|| Change::AliasKmsKey {
                    alias: alias.to_string(),
                    key_arn: state.arn.clone(),
                }),
            );
            planner.record(
                Facet::KeyRotation,
                (state.rotation_enabled == Some(false)).then(|| Change::EnableKeyRotation {
                    key_arn: state.arn.clone(),
                }),
            );
            Ok(known(&state.arn))
        }
        (Some(state), KmsKey::Existing(_)) => Ok(known(&state.arn)),
        (None, KmsKey::Managed(alias)) => {
            planner.record(
                Facet::KmsKey,
                Some(Change::CreateKmsKey {
                    alias: alias.to_string(),
                    description: desired.kms_key_description(),
                    tags: desired.kms_key_tags(),
                    policy: super::key_policy::for_new_key(desired),
                }),
            );
            Ok(SseTarget::Kms {
                key_arn: KeyArn::AfterApply,
            })
        }
        (None, KmsKey::Existing(reference)) => Err(PlanError::KmsKeyMissing {
            reference: reference.to_string(),
            region: spec.region.to_string(),
        }),
    }
}

fn known(arn: &str) -> SseTarget {
    SseTarget::Kms {
        key_arn: KeyArn::Known(arn.to_owned()),
    }
}
