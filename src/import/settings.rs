//! Encryption, lifecycle retention and the hardening the bucket lacks, as a spec says them.

use serde_json::Value;

use crate::observed::{ObservedBucket, PublicAccessBlock, Versioning};
use crate::plan::{ABORT_UPLOADS_RULE_ID, NONCURRENT_RULE_ID};
use crate::spec::{Days, Encryption, KmsKey, KmsKeyRef, Lifecycle, Region};

/// A bucket's encryption as a spec says it; `key_field` names where it goes, for notes.
pub(super) fn encryption(
    region: &Region,
    state: &ObservedBucket,
    kms_key: Option<(&str, &[String])>,
    key_field: &str,
    notes: &mut Vec<String>,
) -> (Encryption, Option<String>) {
    let algorithm = state
        .encryption
        .as_ref()
        .map(|rule| rule.algorithm.as_str());
    match (algorithm, kms_key) {
        (Some(algorithm), Some((arn, aliases))) if algorithm.starts_with("aws:kms") => {
            let by_alias = aliases
                .first()
                .and_then(|alias| KmsKeyRef::parse(alias, Some(region)).ok());
            let reference = by_alias
                .clone()
                .or_else(|| KmsKeyRef::parse(arn, Some(region)).ok());
            match reference {
                Some(reference) => {
                    let note = if by_alias.is_some() {
                        format!("an existing key ({arn}): statebucket never changes it")
                    } else {
                        "an existing key without an alias: statebucket never changes it".to_owned()
                    };
                    (Encryption::Kms(KmsKey::Existing(reference)), Some(note))
                }
                None => {
                    notes.push(format!("the KMS key `{arn}` is not in {region}; the spec says aes256 until you name a key there in `{key_field}`"));
                    (Encryption::Aes256, None)
                }
            }
        }
        (Some(algorithm), None) if algorithm.starts_with("aws:kms") => {
            notes.push(format!("the AWS managed key aws/s3 encrypts it, which a spec cannot name: the spec says aes256, which apply would set; to keep KMS, name a customer managed key in `{key_field}` first"));
            (Encryption::Aes256, None)
        }
        _ => (Encryption::Aes256, None),
    }
}

/// The retention of statebucket's own rules when the bucket has them; otherwise what keeps
/// the bucket's history as it is: `never` (a rule of the bucket's own keeps expiring old
/// versions, or none did), never the 90-day default that would start deleting history.
pub(super) fn lifecycle(bucket: &ObservedBucket) -> (Lifecycle, Option<String>) {
    let defaults = Lifecycle::default();
    let rule = |id: &str| {
        bucket
            .lifecycle
            .iter()
            .find(|rule| rule.id.as_deref() == Some(id))
    };
    let abort = rule(ABORT_UPLOADS_RULE_ID)
        .and_then(|rule| rule.abort_incomplete_upload_days)
        .and_then(|days| Days::new(u32::try_from(days).ok()?))
        .unwrap_or(defaults.abort_incomplete_uploads_after);
    if let Some(owned) = rule(NONCURRENT_RULE_ID) {
        let days = owned
            .noncurrent_expiration
            .as_ref()
            .and_then(|expiration| expiration.noncurrent_days)
            .and_then(|days| Days::new(u32::try_from(days).ok()?));
        let lifecycle = Lifecycle {
            expire_noncurrent_after: days,
            abort_incomplete_uploads_after: abort,
        };
        return (lifecycle, None);
    }
    let foreign = bucket.lifecycle.iter().find(|rule| {
        rule.enabled
            && rule
                .noncurrent_expiration
                .as_ref()
                .is_some_and(|expiration| expiration.noncurrent_days.is_some())
    });
    let note = match foreign {
        Some(rule) => format!(
            "old versions already expire by the bucket's own rule `{}` (kept as it is), so statebucket adds no expiry of its own",
            rule.id.as_deref().unwrap_or("(no id)")
        ),
        None => "the bucket keeps every old state version; statebucket's default would expire them after 90 days: set a number of days to do so".to_owned(),
    };
    let lifecycle = Lifecycle {
        expire_noncurrent_after: None,
        abort_incomplete_uploads_after: abort,
    };
    (lifecycle, Some(note))
}

/// What statebucket always enforces that the bucket lacks: what `plan` will show.
pub(super) fn hardening(bucket: &ObservedBucket) -> Vec<String> {
    let mut notes = Vec::new();
    if bucket.versioning != Versioning::Enabled {
        notes.push(format!(
            "apply will enable versioning (now: {})",
            bucket.versioning
        ));
    }
    if bucket.public_access != PublicAccessBlock::ALL {
        notes.push(format!(
            "apply will block all public access (now: {})",
            bucket.public_access
        ));
    }
    if bucket.ownership.as_deref() != Some("BucketOwnerEnforced") {
        notes.push(format!(
            "apply will set object ownership to BucketOwnerEnforced (now: {})",
            bucket.ownership.as_deref().unwrap_or("not set")
        ));
    }
    let statements = bucket
        .policy
        .as_deref()
        .and_then(|policy| serde_json::from_str::<Value>(policy).ok())
        .map(|policy| match &policy["Statement"] {
            Value::Array(statements) => statements.len(),
            Value::Object(_) => 1,
            _ => 0,
        })
        .unwrap_or(0);
    if statements > 0 {
        notes.push(format!(
            "the bucket policy's {statements} statement(s) stay as they are; apply adds statebucket's own beside them (state access per principal, TLS-only)"
        ));
    }
    let owned = |id: &str| {
        bucket
            .lifecycle
            .iter()
            .any(|rule| rule.id.as_deref() == Some(id))
    };
    if !owned(ABORT_UPLOADS_RULE_ID) {
        notes.push("apply will add a lifecycle rule that removes unfinished uploads after 7 days; the bucket's own rules are kept".to_owned());
    }
    notes
}
