//! Object Lock's default retention (a replica's, against deletion of state versions).

use aws_sdk_s3::types::{
    DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
    ObjectLockRule,
};

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::observed::{ObjectLockState, Retention};
use crate::plan::Facet;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<ObjectLockState>, AwsError> {
    let sent = bucket
        .s3()
        .get_object_lock_configuration()
        .bucket(bucket.name)
        .send();
    read_setting(
        bucket,
        Facet::ObjectLock,
        sent,
        codes::NO_OBJECT_LOCK,
        "reading object lock",
        |output| state(output.object_lock_configuration()),
    )
    .await
}

fn state(configuration: Option<&ObjectLockConfiguration>) -> ObjectLockState {
    let enabled = configuration
        .and_then(|configuration| configuration.object_lock_enabled())
        .is_some_and(|enabled| enabled.as_str() == "Enabled");
    let default_retention = configuration
        .and_then(|configuration| configuration.rule())
        .and_then(|rule| rule.default_retention())
        .map(|retention| Retention {
            mode: retention
                .mode()
                .map(|mode| mode.as_str().to_owned())
                .unwrap_or_default(),
            // Some servers answer the unit not set with 0.
            days: retention.days().filter(|days| *days != 0),
            years: retention.years().filter(|years| *years != 0),
        });
    ObjectLockState {
        enabled,
        default_retention,
    }
}

/// PutObjectLockConfiguration: Object Lock on, with `retention` as the default.
pub(crate) async fn write(bucket: &BucketAt<'_>, retention: &Retention) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_object_lock_configuration()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(
                        ObjectLockRule::builder()
                            .default_retention(
                                DefaultRetention::builder()
                                    .mode(ObjectLockRetentionMode::from(retention.mode.as_str()))
                                    .set_days(retention.days)
                                    .set_years(retention.years)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send(),
    )
    .await
}
