//! Object ownership: read, and set to BucketOwnerEnforced (ACLs disabled).

use aws_sdk_s3::types::{ObjectOwnership, OwnershipControls, OwnershipControlsRule};

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::plan::Facet;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<Option<String>>, AwsError> {
    let sent = bucket
        .s3()
        .get_bucket_ownership_controls()
        .bucket(bucket.name)
        .send();
    read_setting(
        bucket,
        Facet::Ownership,
        sent,
        codes::NO_OWNERSHIP_CONTROLS,
        "reading object ownership",
        |output| {
            output
                .ownership_controls()
                .and_then(|controls| controls.rules().first())
                .map(|rule| rule.object_ownership().as_str().to_owned())
        },
    )
    .await
}

pub(super) async fn enforce_owner(bucket: &BucketAt<'_>) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_bucket_ownership_controls()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .ownership_controls(
                OwnershipControls::builder()
                    .rules(
                        OwnershipControlsRule::builder()
                            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                            .build()
                            .expect("ownership is set"),
                    )
                    .build()
                    .expect("one rule is set"),
            )
            .send(),
    )
    .await
}
