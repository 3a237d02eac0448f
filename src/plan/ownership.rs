//! Object ownership is always BucketOwnerEnforced: ACLs disabled, the bucket owner owns
//! every object.

use super::{Change, Facet, Planner};
use crate::desired::OBJECT_OWNERSHIP;
use crate::observed::ObservedBucket;

pub(super) fn plan(planner: &mut Planner, bucket: &ObservedBucket) {
    planner.record(
        Facet::Ownership,
        (bucket.ownership.as_deref() != Some(OBJECT_OWNERSHIP)).then(|| {
            Change::EnforceBucketOwner {
                from: bucket.ownership.clone(),
            }
        }),
    );
}
