//! The bucket itself: created in its region (with the spec's tags, for SCPs that require
//! them on CreateBucket), and never moved.

use std::borrow::Cow;

use super::{Change, Facet, PlanError, Planner};
use crate::desired::DesiredBucket;
use crate::observed::{ObjectLockState, Observed, ObservedBucket};
use crate::spec::StoreFeature;

pub(super) fn check_region(
    desired: &DesiredBucket<'_>,
    observed: &Observed,
) -> Result<(), PlanError> {
    let spec = desired.spec;
    match &observed.bucket {
        Some(bucket) if bucket.region != spec.region.as_str() => Err(PlanError::WrongRegion {
            bucket: spec.bucket.name.to_string(),
            actual: bucket.region.clone(),
            expected: spec.region.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The bucket as it is, or, when it is yet to be created, as CreateBucket leaves it: every
/// other facet is planned against that.
pub(super) fn plan<'o>(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &'o Observed,
) -> Cow<'o, ObservedBucket> {
    let spec = desired.spec;
    match &observed.bucket {
        Some(bucket) => {
            planner.record(Facet::Bucket, None);
            Cow::Borrowed(bucket)
        }
        None => {
            planner.record(
                Facet::Bucket,
                Some(Change::CreateBucket {
                    bucket: spec.bucket.name.to_string(),
                    region: spec.region.to_string(),
                    tags: spec.bucket.tags.clone(),
                    owner_enforced: !spec.lacks(StoreFeature::OwnershipControls),
                    object_lock: spec.bucket.object_lock.is_some(),
                }),
            );
            Cow::Owned(ObservedBucket {
                // Object Lock is enabled by CreateBucket itself, without a default retention.
                object_lock: spec.bucket.object_lock.map(|_| ObjectLockState {
                    enabled: true,
                    default_retention: None,
                }),
                ..ObservedBucket::unconfigured(spec.region.as_str())
            })
        }
    }
}
