//! The spec's tags are merged into the bucket's; tags of other owners are kept.

use super::{Change, Facet, Planner};
use crate::desired::DesiredBucket;
use crate::observed::ObservedBucket;

pub(super) fn plan(planner: &mut Planner, desired: &DesiredBucket<'_>, bucket: &ObservedBucket) {
    let mut tags = bucket.tags.clone();
    tags.extend(desired.spec.bucket.tags.clone());
    planner.record(
        Facet::Tags,
        (tags != bucket.tags).then(|| Change::MergeTags {
            from: bucket.tags.clone(),
            to: tags,
        }),
    );
}
