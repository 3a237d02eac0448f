//! Lifecycle rules between the S3 SDK's types and `observed::LifecycleRule`. The mapping is
//! complete in both directions: rules of other owners are written back exactly as read,
//! because PutBucketLifecycleConfiguration replaces the whole set.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule as SdkRule, LifecycleRuleAndOperator, LifecycleRuleFilter,
    NoncurrentVersionExpiration, NoncurrentVersionTransition, Tag, Transition as SdkTransition,
    TransitionDefaultMinimumObjectSize, TransitionStorageClass,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::observed::{
    Expiration, LifecycleRule, NoncurrentExpiration, NoncurrentTransition, RuleFilter, Transition,
};
use crate::plan::Facet;

/// The rules and the bucket's default minimum size for transitions.
pub(super) async fn read(
    bucket: &BucketAt<'_>,
) -> Result<Option<(Vec<LifecycleRule>, Option<String>)>, AwsError> {
    let sent = bucket
        .s3()
        .get_bucket_lifecycle_configuration()
        .bucket(bucket.name)
        .send();
    read_setting(
        bucket,
        Facet::Lifecycle,
        sent,
        codes::NO_LIFECYCLE,
        "reading lifecycle rules",
        |output| {
            (
                output.rules().iter().map(from_sdk).collect(),
                output
                    .transition_default_minimum_object_size()
                    .map(|size| size.as_str().to_owned()),
            )
        },
    )
    .await
}

/// PutBucketLifecycleConfiguration replaces the whole set: `rules` holds every rule, the
/// other owners' as read.
pub(super) async fn write(
    bucket: &BucketAt<'_>,
    rules: &[LifecycleRule],
    minimum_object_size: Option<&str>,
) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_bucket_lifecycle_configuration()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .set_transition_default_minimum_object_size(
                minimum_object_size.map(TransitionDefaultMinimumObjectSize::from),
            )
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules.iter().map(to_sdk).collect()))
                    .build()
                    .expect("rules are set"),
            )
            .send(),
    )
    .await
}

fn date_text(date: &DateTime) -> String {
    date.fmt(Format::DateTime)
        .unwrap_or_else(|_| date.secs().to_string())
}

fn date_value(text: &str) -> Option<DateTime> {
    DateTime::from_str(text, Format::DateTime).ok()
}

fn class_text(class: Option<&TransitionStorageClass>) -> Option<String> {
    class.map(|class| class.as_str().to_owned())
}

fn class_value(text: &Option<String>) -> Option<TransitionStorageClass> {
    text.as_deref().map(TransitionStorageClass::from)
}

fn tag_pair(tag: &Tag) -> (String, String) {
    (tag.key().to_owned(), tag.value().to_owned())
}

fn sdk_tag((key, value): &(String, String)) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set")
}

/// The rule-level `Prefix` is deprecated, but rules written with it still exist and must
/// be written back as they are.
#[allow(deprecated)]
pub fn from_sdk(rule: &SdkRule) -> LifecycleRule {
    let filter = match (rule.filter(), rule.prefix()) {
        (Some(filter), _) => {
            if let Some(and) = filter.and() {
                RuleFilter::And {
                    prefix: and.prefix().map(str::to_owned),
                    tags: and.tags().iter().map(tag_pair).collect(),
                    size_greater_than: and.object_size_greater_than(),
                    size_less_than: and.object_size_less_than(),
                }
            } else if let Some(tag) = filter.tag() {
                RuleFilter::Tag(tag.key().to_owned(), tag.value().to_owned())
            } else if let Some(size) = filter.object_size_greater_than() {
                RuleFilter::SizeGreaterThan(size)
            } else if let Some(size) = filter.object_size_less_than() {
                RuleFilter::SizeLessThan(size)
            } else {
                RuleFilter::Prefix(filter.prefix().unwrap_or_default().to_owned())
            }
        }
        (None, Some(prefix)) => RuleFilter::LegacyPrefix(prefix.to_owned()),
        (None, None) => RuleFilter::Unfiltered,
    };
    LifecycleRule {
        id: rule.id().map(str::to_owned),
        enabled: *rule.status() == ExpirationStatus::Enabled,
        filter,
        expiration: rule.expiration().map(|expiration| Expiration {
            days: expiration.days(),
            date: expiration.date().map(date_text),
            expired_object_delete_marker: expiration.expired_object_delete_marker(),
        }),
        transitions: rule
            .transitions()
            .iter()
            .map(|transition| Transition {
                days: transition.days(),
                date: transition.date().map(date_text),
                storage_class: class_text(transition.storage_class()),
            })
            .collect(),
        noncurrent_transitions: rule
            .noncurrent_version_transitions()
            .iter()
            .map(|transition| NoncurrentTransition {
                noncurrent_days: transition.noncurrent_days(),
                newer_noncurrent_versions: transition.newer_noncurrent_versions(),
                storage_class: class_text(transition.storage_class()),
            })
            .collect(),
        noncurrent_expiration: rule.noncurrent_version_expiration().map(|expiration| {
            NoncurrentExpiration {
                noncurrent_days: expiration.noncurrent_days(),
                newer_noncurrent_versions: expiration.newer_noncurrent_versions(),
            }
        }),
        abort_incomplete_upload_days: rule
            .abort_incomplete_multipart_upload()
            .and_then(AbortIncompleteMultipartUpload::days_after_initiation),
    }
}

pub fn to_sdk(rule: &LifecycleRule) -> SdkRule {
    let mut builder = SdkRule::builder()
        .set_id(rule.id.clone())
        .status(if rule.enabled {
            ExpirationStatus::Enabled
        } else {
            ExpirationStatus::Disabled
        });
    builder = match &rule.filter {
        RuleFilter::Unfiltered => builder,
        #[allow(deprecated)]
        RuleFilter::LegacyPrefix(prefix) => builder.prefix(prefix),
        RuleFilter::Prefix(prefix) => {
            builder.filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        }
        RuleFilter::Tag(key, value) => builder.filter(
            LifecycleRuleFilter::builder()
                .tag(sdk_tag(&(key.clone(), value.clone())))
                .build(),
        ),
        RuleFilter::SizeGreaterThan(size) => builder.filter(
            LifecycleRuleFilter::builder()
                .object_size_greater_than(*size)
                .build(),
        ),
        RuleFilter::SizeLessThan(size) => builder.filter(
            LifecycleRuleFilter::builder()
                .object_size_less_than(*size)
                .build(),
        ),
        RuleFilter::And {
            prefix,
            tags,
            size_greater_than,
            size_less_than,
        } => builder.filter(
            LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .set_prefix(prefix.clone())
                        .set_tags(Some(tags.iter().map(sdk_tag).collect()))
                        .set_object_size_greater_than(*size_greater_than)
                        .set_object_size_less_than(*size_less_than)
                        .build(),
                )
                .build(),
        ),
    };
    if let Some(expiration) = &rule.expiration {
        builder = builder.expiration(
            LifecycleExpiration::builder()
                .set_days(expiration.days)
                .set_date(expiration.date.as_deref().and_then(date_value))
                .set_expired_object_delete_marker(expiration.expired_object_delete_marker)
                .build(),
        );
    }
    for transition in &rule.transitions {
        builder = builder.transitions(
            SdkTransition::builder()
                .set_days(transition.days)
                .set_date(transition.date.as_deref().and_then(date_value))
                .set_storage_class(class_value(&transition.storage_class))
                .build(),
        );
    }
    for transition in &rule.noncurrent_transitions {
        builder = builder.noncurrent_version_transitions(
            NoncurrentVersionTransition::builder()
                .set_noncurrent_days(transition.noncurrent_days)
                .set_newer_noncurrent_versions(transition.newer_noncurrent_versions)
                .set_storage_class(class_value(&transition.storage_class))
                .build(),
        );
    }
    if let Some(expiration) = &rule.noncurrent_expiration {
        builder = builder.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .set_noncurrent_days(expiration.noncurrent_days)
                .set_newer_noncurrent_versions(expiration.newer_noncurrent_versions)
                .build(),
        );
    }
    if let Some(days) = rule.abort_incomplete_upload_days {
        builder = builder.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days)
                .build(),
        );
    }
    builder.build().expect("status is set")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(rule: LifecycleRule) {
        assert_eq!(from_sdk(&to_sdk(&rule)), rule);
    }

    #[test]
    fn every_form_of_rule_survives_the_round_trip() {
        let base = LifecycleRule {
            id: Some("archive".into()),
            enabled: true,
            filter: RuleFilter::Unfiltered,
            expiration: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
            noncurrent_expiration: None,
            abort_incomplete_upload_days: None,
        };
        round_trip(base.clone());
        round_trip(LifecycleRule {
            filter: RuleFilter::LegacyPrefix("logs/".into()),
            enabled: false,
            expiration: Some(Expiration {
                days: None,
                date: Some("2030-01-01T00:00:00Z".into()),
                expired_object_delete_marker: None,
            }),
            ..base.clone()
        });
        round_trip(LifecycleRule {
            filter: RuleFilter::And {
                prefix: Some("a/".into()),
                tags: vec![("class".into(), "cold".into())],
                size_greater_than: Some(1024),
                size_less_than: None,
            },
            transitions: vec![Transition {
                days: Some(30),
                date: None,
                storage_class: Some("STANDARD_IA".into()),
            }],
            noncurrent_transitions: vec![NoncurrentTransition {
                noncurrent_days: Some(10),
                newer_noncurrent_versions: Some(3),
                storage_class: Some("GLACIER".into()),
            }],
            noncurrent_expiration: Some(NoncurrentExpiration {
                noncurrent_days: Some(400),
                newer_noncurrent_versions: None,
            }),
            abort_incomplete_upload_days: Some(2),
            ..base.clone()
        });
        round_trip(LifecycleRule {
            filter: RuleFilter::Tag("k".into(), "v".into()),
            ..base.clone()
        });
        round_trip(LifecycleRule {
            filter: RuleFilter::SizeLessThan(5),
            ..base
        });
    }
}
