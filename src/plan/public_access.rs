//! All four public access block flags are always on; a flag is never cleared.

use super::{Change, Facet, Planner};
use crate::observed::{BucketState, PublicAccessBlock};

pub(super) fn plan(planner: &mut Planner, bucket: &BucketState) {
    planner.record(
        Facet::PublicAccessBlock,
        (bucket.public_access != PublicAccessBlock::ALL).then_some(Change::BlockPublicAccess {
            from: bucket.public_access,
        }),
    );
}
