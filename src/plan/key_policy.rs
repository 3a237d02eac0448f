//! The key policy: reconciled on a key statebucket created (its grant statements, the
//! account root statement kept or owned, every other statement kept); on a key it did not
//! create, left alone, with a note naming the grants it lacks.

use serde_json::Value;

use super::{Change, Facet, PlanError, Planner, SseTarget};
use crate::desired::DesiredBucket;
use crate::observed::{KeyPolicyReading, Observed};
use crate::policy::{self, PolicyDocument, key_policy};
use crate::spec::{Encryption, KmsKey};

/// KMS refuses a key policy larger than 32 KB (`LimitExceededException`).
pub const KEY_POLICY_MAX_BYTES: usize = 32 * 1024;

/// The policy a key is created with: the account root statement, then the grants.
pub(super) fn for_new_key(desired: &DesiredBucket<'_>) -> PolicyDocument {
    policy::merge(None, &owned(desired, None))
}

/// The statements statebucket owns in the key policy: the grants, and the account root
/// statement unless another statement already gives the account the key.
fn owned(desired: &DesiredBucket<'_>, live: Option<&PolicyDocument>) -> Vec<Value> {
    let partition = desired.spec.region.partition();
    let mut statements = Vec::new();
    if !key_policy::foreign_root_statement(live, partition, &desired.account) {
        statements.push(key_policy::account_root_statement(
            partition,
            &desired.account,
        ));
    }
    statements.extend(desired.key_grants.iter().cloned());
    statements
}

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &Observed,
    encryption: &SseTarget,
) -> Result<(), PlanError> {
    let Encryption::Kms(key) = &desired.spec.bucket.encryption else {
        return Ok(());
    };
    // A key to be created gets its policy in CreateKey.
    let (Some(arn), Some(state)) = (encryption.known_key(), &observed.kms_key) else {
        return Ok(());
    };
    let live = match &state.policy {
        KeyPolicyReading::Read(text) => {
            Some(
                PolicyDocument::parse(text).map_err(|reason| PlanError::UnreadableKeyPolicy {
                    key: arn.to_owned(),
                    reason,
                })?,
            )
        }
        KeyPolicyReading::Denied(reason) => {
            if let KmsKey::Managed(_) = key {
                return Err(PlanError::UnreadableKeyPolicy {
                    key: arn.to_owned(),
                    reason: reason.clone(),
                });
            }
            planner.note(format!(
                "the key policy of {arn} could not be read ({reason}); statebucket cannot tell whether the writers and readers may use the key"
            ));
            return Ok(());
        }
    };
    match key {
        KmsKey::Managed(_) => {
            let owned = owned(desired, live.as_ref());
            let statements = policy::diff_owned(live.as_ref(), &owned);
            let kept = policy::foreign_labels(live.as_ref());
            // Sent as written: KMS counts the bytes of the document it is given.
            let to = policy::merge(live.as_ref(), &owned);
            let bytes = to.to_json().len();
            if !statements.is_empty() && bytes > KEY_POLICY_MAX_BYTES {
                return Err(PlanError::KeyPolicyTooLarge {
                    key: arn.to_owned(),
                    bytes,
                    limit: KEY_POLICY_MAX_BYTES,
                });
            }
            planner.record(
                Facet::KeyPolicy,
                (!statements.is_empty()).then(|| Change::PutKeyPolicy {
                    key_arn: arn.to_owned(),
                    from: match &state.policy {
                        KeyPolicyReading::Read(text) => Some(text.clone()),
                        KeyPolicyReading::Denied(_) => None,
                    },
                    to,
                    statements,
                    kept,
                }),
            );
        }
        KmsKey::Existing(reference) => {
            let Some(live) = live else {
                return Ok(());
            };
            for (principal, actions) in
                key_policy::missing_key_grants(&live, &desired.spec.region, &desired.grants)
            {
                planner.note(format!(
                    "the policy of KMS key `{reference}` does not let {principal} use it ({}): S3 cannot read or write its state; statebucket leaves keys it did not create alone, so add the grant to the key policy (with `kms:ViaService` = `{}`)",
                    actions.join(", "),
                    key_policy::via_s3(&desired.spec.region)
                ));
            }
        }
    }
    Ok(())
}
