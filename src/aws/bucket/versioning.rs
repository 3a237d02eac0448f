//! Versioning: read, and turned on (never suspended).

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::observed::Versioning;
use crate::plan::Facet;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<Versioning>, AwsError> {
    let sent = bucket
        .s3()
        .get_bucket_versioning()
        .bucket(bucket.name)
        .send();
    read_setting(
        bucket,
        Facet::Versioning,
        sent,
        codes::NO_SUCH_BUCKET,
        "reading versioning",
        |output| match output.status().map(|status| status.as_str()) {
            Some("Enabled") => Versioning::Enabled,
            Some("Suspended") => Versioning::Suspended,
            _ => Versioning::Never,
        },
    )
    .await
}

/// There is deliberately no way here to suspend versioning.
pub(super) async fn enable(bucket: &BucketAt<'_>) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_bucket_versioning()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send(),
    )
    .await
}
