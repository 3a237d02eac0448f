//! Versioning is always on: it is how a broken state is brought back. Never suspended.

use super::{Change, Facet, Planner};
use crate::observed::{ObservedBucket, Versioning};

pub(super) fn plan(planner: &mut Planner, bucket: &ObservedBucket) {
    planner.record(
        Facet::Versioning,
        (bucket.versioning != Versioning::Enabled).then_some(Change::EnableVersioning {
            from: bucket.versioning,
        }),
    );
}
