//! The bucket policy, as text: the plan parses it and writes it whole (statements the tool
//! does not own included).

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::plan::Facet;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<Option<String>>, AwsError> {
    let sent = bucket.s3().get_bucket_policy().bucket(bucket.name).send();
    read_setting(
        bucket,
        Facet::Policy,
        sent,
        codes::NO_BUCKET_POLICY,
        "reading the bucket policy",
        |output| output.policy().map(str::to_owned),
    )
    .await
}

pub(super) async fn write(bucket: &BucketAt<'_>, policy: &str) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_bucket_policy()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .policy(policy)
            .send(),
    )
    .await
}
