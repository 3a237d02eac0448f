//! Object ownership is always BucketOwnerEnforced: ACLs disabled, the bucket owner owns
//! every object.

use super::{Change, Facet, Planner};
use crate::desired::OBJECT_OWNERSHIP;
use crate::observed::BucketState;

pub(super) fn plan(planner: &mut Planner, bucket: &BucketState) {
    planner.record(
        Facet::Ownership,
        (bucket.ownership.as_deref() != Some(OBJECT_OWNERSHIP)).then(|| {
            Change::EnforceBucketOwner {
                from: bucket.ownership.clone(),
            }
        }),
    );
}
