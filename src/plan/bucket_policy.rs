//! The bucket policy: the tool's statements (`Statebucket…`) compared with the live ones by
//! meaning; every other statement kept as it is, first and byte for byte.

use super::{Change, Facet, PlanError, Planner};
use crate::desired::DesiredBucket;
use crate::observed::ObservedBucket;
use crate::policy::{self, BUCKET_POLICY_MAX_BYTES, PolicyDocument};

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    bucket: &ObservedBucket,
) -> Result<(), PlanError> {
    let spec = desired.spec;
    let live = match &bucket.policy {
        Some(text) => {
            Some(
                PolicyDocument::parse(text).map_err(|reason| PlanError::UnreadablePolicy {
                    bucket: spec.bucket.name.to_string(),
                    reason,
                })?,
            )
        }
        None => None,
    };
    let statements = policy::diff_owned(live.as_ref(), &desired.policy);
    let kept = policy::foreign_labels(live.as_ref());
    planner.kept_statements = kept.clone();
    if statements.is_empty() {
        planner.record(Facet::Policy, None);
        return Ok(());
    }
    let merged = policy::merge(live.as_ref(), &desired.policy);
    // Sent without whitespace: S3 counts the bytes of the document it is given.
    let to = merged.to_compact_json();
    if to.len() > BUCKET_POLICY_MAX_BYTES {
        return Err(PlanError::BucketPolicyTooLarge {
            bucket: spec.bucket.name.to_string(),
            bytes: to.len(),
            stacks: spec.stacks.len(),
            limit: BUCKET_POLICY_MAX_BYTES,
        });
    }
    planner.record(
        Facet::Policy,
        Some(Change::PutPolicy {
            from: bucket.policy.clone(),
            to: merged,
            statements,
            kept,
        }),
    );
    Ok(())
}
