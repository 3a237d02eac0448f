//! Object Lock's default retention on a bucket that asks for it (a replica with
//! `object_lock`): set when missing or weaker, never shortened or weakened. S3 cannot turn
//! Object Lock off; a retention in COMPLIANCE mode cannot be shortened by anyone.

use super::{Change, Facet, Planner};
use crate::desired::DesiredBucket;
use crate::observed::{ObservedBucket, Retention};
use crate::spec::{ObjectLock, RetentionMode};

pub(super) fn plan(planner: &mut Planner, desired: &DesiredBucket<'_>, state: &ObservedBucket) {
    let Some(wanted) = desired.spec.bucket.object_lock else {
        if let Some(lock) = state.object_lock.as_ref().filter(|lock| lock.enabled) {
            let retention = lock
                .default_retention
                .as_ref()
                .map_or(String::new(), |retention| {
                    format!(" (default retention {retention})")
                });
            planner.note(format!(
                "object lock stays on for `{}`{retention}: the spec no longer asks for it, but S3 cannot turn it off and statebucket never shortens a retention",
                desired.spec.bucket.name
            ));
        }
        return;
    };
    let to = retention(wanted);
    let current = state.object_lock.as_ref();
    let enabled = current.is_some_and(|lock| lock.enabled);
    let from = current.and_then(|lock| lock.default_retention.clone());
    match &from {
        Some(live) if *live == to => planner.record(Facet::ObjectLock, None),
        Some(live) if weakens(live, wanted) => {
            planner.note(format!(
                "object lock on `{}` stays {live}: the spec asks {wanted}, which would shorten retention or weaken its mode, and statebucket never does either; match the spec to the bucket, or change the retention by hand (aws s3api put-object-lock-configuration) if your policies allow it",
                desired.spec.bucket.name
            ));
        }
        _ => planner.record(
            Facet::ObjectLock,
            Some(Change::SetObjectLock {
                from,
                to,
                enable: !enabled,
            }),
        ),
    }
}

/// The retention as S3 holds it.
pub(super) fn retention(lock: ObjectLock) -> Retention {
    Retention {
        mode: lock.mode.as_s3().to_owned(),
        days: Some(i32::try_from(lock.days.get()).expect("at most 36500 days")),
        years: None,
    }
}

/// Whether `wanted` is shorter than `live`, or GOVERNANCE where `live` is COMPLIANCE.
fn weakens(live: &Retention, wanted: ObjectLock) -> bool {
    let live_compliance = live.mode == RetentionMode::Compliance.as_s3();
    let shorter = i64::from(wanted.days.get()) < live.in_days();
    shorter || (live_compliance && wanted.mode == RetentionMode::Governance)
}
