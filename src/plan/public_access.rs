//! All four public access block flags are always on; a flag is never cleared.

use super::{Change, Facet, Planner};
use crate::observed::{ObservedBucket, PublicAccessBlock};

pub(super) fn plan(planner: &mut Planner, bucket: &ObservedBucket) {
    planner.record(
        Facet::PublicAccessBlock,
        (bucket.public_access != PublicAccessBlock::ALL).then_some(Change::BlockPublicAccess {
            from: bucket.public_access,
        }),
    );
}
