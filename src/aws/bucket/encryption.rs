//! Default encryption: AES256, or SSE-KMS with an S3 Bucket Key.

use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};

use super::{BucketAt, read_setting, written};
use crate::aws::errors::{AwsError, Failure, codes};
use crate::observed::SseRule;
use crate::plan::Facet;
use crate::plan::SseTarget;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<Option<SseRule>>, AwsError> {
    let sent = bucket
        .s3()
        .get_bucket_encryption()
        .bucket(bucket.name)
        .send();
    read_setting(
        bucket,
        Facet::Encryption,
        sent,
        codes::SSE_NOT_FOUND,
        "reading default encryption",
        |output| {
            let rule = output
                .server_side_encryption_configuration()?
                .rules()
                .first()?;
            let default = rule.apply_server_side_encryption_by_default()?;
            Some(SseRule {
                algorithm: default.sse_algorithm().as_str().to_owned(),
                kms_key_id: default.kms_master_key_id().map(str::to_owned),
                bucket_key: rule.bucket_key_enabled().unwrap_or(false),
            })
        },
    )
    .await
}

/// `created_key`: the ARN of the key this run created, for a target that waited for it.
/// The outer error: the key was to be created and was not.
pub(super) async fn write(
    bucket: &BucketAt<'_>,
    to: &SseTarget,
    created_key: Option<&str>,
) -> Result<Result<(), Failure>, AwsError> {
    let default = match to {
        SseTarget::Aes256 => {
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
        }
        SseTarget::Kms { .. } => {
            let Some(arn) = to.known_key().or(created_key) else {
                return Err(AwsError::new(
                    format!("encryption of bucket `{}`", bucket.name),
                    "the KMS key to encrypt with was not created",
                    None,
                ));
            };
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(arn)
        }
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default.build().expect("sse_algorithm is set"))
        .bucket_key_enabled(matches!(to, SseTarget::Kms { .. }))
        .build();
    Ok(written(
        bucket
            .s3()
            .put_bucket_encryption()
            .bucket(bucket.name)
            .expected_bucket_owner(bucket.account)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .expect("one rule is set"),
            )
            .send(),
    )
    .await)
}
