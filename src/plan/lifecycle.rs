//! Lifecycle rules: the tool owns the rules whose ID starts with `statebucket-`; every other
//! rule is read completely and written back exactly, since PutBucketLifecycleConfiguration
//! replaces the whole set.

use super::{Change, Facet, Planner};
use crate::desired::DesiredBucket;
use crate::observed::{LifecycleRule, NoncurrentExpiration, ObservedBucket, RuleFilter};
use crate::spec::Lifecycle;

/// Lifecycle rules whose ID starts with this are the tool's; all others are kept.
pub const OWNED_RULE_PREFIX: &str = "statebucket-";
pub const NONCURRENT_RULE_ID: &str = "statebucket-expire-noncurrent-versions";
pub const ABORT_UPLOADS_RULE_ID: &str = "statebucket-abort-incomplete-uploads";

/// The tool's lifecycle rules for the spec: whole-bucket rules, IDs `statebucket-…`.
pub fn owned_lifecycle_rules(lifecycle: &Lifecycle) -> Vec<LifecycleRule> {
    let whole_bucket = |id: &str| LifecycleRule {
        id: Some(id.to_owned()),
        enabled: true,
        filter: RuleFilter::Prefix(String::new()),
        expiration: None,
        transitions: Vec::new(),
        noncurrent_transitions: Vec::new(),
        noncurrent_expiration: None,
        abort_incomplete_upload_days: None,
    };
    let mut rules = vec![LifecycleRule {
        abort_incomplete_upload_days: Some(lifecycle.abort_incomplete_uploads_after.get() as i32),
        ..whole_bucket(ABORT_UPLOADS_RULE_ID)
    }];
    if let Some(days) = lifecycle.expire_noncurrent_after {
        rules.push(LifecycleRule {
            noncurrent_expiration: Some(NoncurrentExpiration {
                noncurrent_days: Some(days.get() as i32),
                newer_noncurrent_versions: None,
            }),
            ..whole_bucket(NONCURRENT_RULE_ID)
        });
    }
    rules
}

fn is_owned_rule(rule: &LifecycleRule) -> bool {
    rule.id
        .as_deref()
        .is_some_and(|id| id.starts_with(OWNED_RULE_PREFIX))
}

/// A rule as compared: every way of saying "the whole bucket" is the same filter.
fn comparable(rule: &LifecycleRule) -> LifecycleRule {
    let mut rule = rule.clone();
    if rule.filter.is_whole_bucket() {
        rule.filter = RuleFilter::Prefix(String::new());
    }
    rule
}

/// The lifecycle change, if the tool's rules differ from the spec, and warnings about rules
/// of other owners that can remove state.
pub(super) fn plan(planner: &mut Planner, desired: &DesiredBucket<'_>, bucket: &ObservedBucket) {
    let (change, notes) = compare(&desired.spec.bucket.lifecycle, bucket);
    planner.record(Facet::Lifecycle, change);
    for note in notes {
        planner.note(note);
    }
}

fn compare(lifecycle: &Lifecycle, bucket: &ObservedBucket) -> (Option<Change>, Vec<String>) {
    let live = &bucket.lifecycle;
    let wanted = owned_lifecycle_rules(lifecycle);
    let mut live_owned: Vec<LifecycleRule> = live
        .iter()
        .filter(|rule| is_owned_rule(rule))
        .cloned()
        .collect();
    live_owned.sort_by(|a, b| a.id.cmp(&b.id));
    let mut wanted_sorted = wanted.clone();
    wanted_sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let foreign: Vec<&LifecycleRule> = live.iter().filter(|rule| !is_owned_rule(rule)).collect();
    let notes = foreign
        .iter()
        .filter(|rule| rule.expires_current_objects())
        .map(|rule| {
            format!(
                "lifecycle rule `{}` (not statebucket's) expires current objects: if its filter covers the state key, S3 will turn the state into a noncurrent version; check it with `aws s3api get-bucket-lifecycle-configuration`",
                rule.id.as_deref().unwrap_or("(no id)")
            )
        })
        .collect();
    let same = live_owned
        .iter()
        .map(comparable)
        .eq(wanted_sorted.iter().map(comparable));
    if same {
        return (None, notes);
    }
    let mut rules: Vec<LifecycleRule> = foreign.iter().map(|rule| (*rule).clone()).collect();
    rules.extend(wanted.iter().cloned());
    let change = Change::SetLifecycle {
        from: live_owned,
        to: wanted,
        rules,
        kept: foreign
            .iter()
            .map(|rule| rule.id.clone().unwrap_or_else(|| "(no id)".to_owned()))
            .collect(),
        minimum_object_size: bucket.lifecycle_minimum_object_size.clone(),
    };
    (Some(change), notes)
}
