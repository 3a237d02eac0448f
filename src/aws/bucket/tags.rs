//! Bucket tags: read, and written as the merged set (tags the tool does not own kept).

use std::collections::BTreeMap;

use aws_sdk_s3::types::{Tag, Tagging};

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::plan::Facet;

pub(super) async fn read(
    bucket: &BucketAt<'_>,
) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let sent = bucket.s3().get_bucket_tagging().bucket(bucket.name).send();
    read_setting(
        bucket,
        Facet::Tags,
        sent,
        codes::NO_TAG_SET,
        "reading tags",
        |output| {
            output
                .tag_set()
                .iter()
                .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                .collect()
        },
    )
    .await
}

pub(super) async fn write(
    bucket: &BucketAt<'_>,
    tags: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    written(
        bucket
            .s3()
            .put_bucket_tagging()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(s3_tags(tags)))
                    .build()
                    .expect("tag set is set"),
            )
            .send(),
    )
    .await
}

pub fn s3_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    crate::aws::sdk_tags!(Tag, tags)
}
