//! The public access block: read, and all four flags set (never cleared).

use aws_sdk_s3::types::PublicAccessBlockConfiguration;

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::observed::PublicAccessBlock;
use crate::plan::Facet;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<PublicAccessBlock>, AwsError> {
    let sent = bucket
        .s3()
        .get_public_access_block()
        .bucket(bucket.name)
        .send();
    read_setting(
        bucket,
        Facet::PublicAccessBlock,
        sent,
        codes::NO_PUBLIC_ACCESS_BLOCK,
        "reading the public access block",
        |output| {
            output
                .public_access_block_configuration()
                .map(|config| PublicAccessBlock {
                    block_public_acls: config.block_public_acls().unwrap_or(false),
                    ignore_public_acls: config.ignore_public_acls().unwrap_or(false),
                    block_public_policy: config.block_public_policy().unwrap_or(false),
                    restrict_public_buckets: config.restrict_public_buckets().unwrap_or(false),
                })
                .unwrap_or_default()
        },
    )
    .await
}

pub(super) async fn block_all(bucket: &BucketAt<'_>) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_public_access_block()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send(),
    )
    .await
}
