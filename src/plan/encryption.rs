//! Default encryption: SSE-S3, or SSE-KMS with the spec's key and an S3 Bucket Key.

use super::{Change, Facet, Planner, SseTarget};
use crate::desired::DesiredBucket;
use crate::observed::{ObservedBucket, ObservedKey, SseRule};
use crate::spec::Encryption;

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    bucket: &ObservedBucket,
    key: Option<&ObservedKey>,
    target: &SseTarget,
) {
    let encryption = &desired.spec.bucket.encryption;
    let in_sync = bucket
        .encryption
        .as_ref()
        .is_some_and(|rule| matches(rule, encryption, key));
    planner.record(
        Facet::Encryption,
        (!in_sync).then(|| Change::SetEncryption {
            from: bucket.encryption.clone(),
            to: target.clone(),
        }),
    );
}

/// S3 echoes the key id as it was set: an ARN, a key id, or an alias. Any of the names of
/// the right key counts; the AWS managed `aws/s3` key (no id) does not.
fn matches(rule: &SseRule, encryption: &Encryption, key: Option<&ObservedKey>) -> bool {
    match encryption {
        Encryption::Aes256 => rule.algorithm == "AES256",
        Encryption::Kms(wanted) => {
            rule.algorithm == "aws:kms"
                && rule.bucket_key
                && rule.kms_key_id.as_deref().is_some_and(|id| {
                    id == wanted.reference() || key.is_some_and(|key| id == key.arn || id == key.id)
                })
        }
    }
}
