//! Access logging: the bucket's own setting, the log bucket it delivers to (same account
//! and region), and the delivery grant in that bucket's policy.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::types::{BucketLoggingStatus, LoggingEnabled};

use super::{BucketAt, read_setting};
use crate::aws::Clients;
use crate::aws::errors::{AwsError, Explained, Failure, codes};
use crate::aws::until_consistent;
use crate::observed::{LogBucket, LoggingTarget};
use crate::plan::{Change, EnvPlan, Facet};
use crate::policy::PolicyDocument;

pub(super) async fn read(bucket: &BucketAt<'_>) -> Result<Option<Option<LoggingTarget>>, AwsError> {
    let sent = bucket.s3().get_bucket_logging().bucket(bucket.name).send();
    read_setting(
        bucket,
        Facet::Logging,
        sent,
        codes::NO_SUCH_BUCKET,
        "reading access logging",
        |output| {
            output.logging_enabled().map(|enabled| LoggingTarget {
                bucket: enabled.target_bucket().to_owned(),
                prefix: enabled.target_prefix().to_owned(),
            })
        },
    )
    .await
}

/// The log bucket's region and policy, both at once. S3 delivers logs only within one
/// account and region; a bucket of another account answers 403 and counts as missing here.
pub async fn observe_log_bucket(
    clients: &Clients,
    log_bucket: &str,
    account: &str,
    // Some S3-compatible stores do not send `x-amz-bucket-region`.
    default_region: &str,
) -> Result<LogBucket, AwsError> {
    let s3 = &clients.s3;
    let head = async {
        match s3
            .head_bucket()
            .bucket(log_bucket)
            .expected_bucket_owner(account)
            .send()
            .await
        {
            Ok(output) => Ok(Some(
                output.bucket_region().unwrap_or(default_region).to_owned(),
            )),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                match failure.status {
                    Some(404 | 403) => Ok(None),
                    Some(301) if failure.region_header.is_some() => Ok(failure.region_header),
                    _ => Err(failure.into_error(
                        format!("checking log bucket `{log_bucket}` (s3:HeadBucket)"),
                        clients,
                    )),
                }
            }
        }
    };
    let policy = async {
        match s3
            .get_bucket_policy()
            .bucket(log_bucket)
            .expected_bucket_owner(account)
            .send()
            .await
        {
            Ok(output) => Ok(output.policy().map(str::to_owned)),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                if failure.is(codes::NO_BUCKET_POLICY)
                    || failure.is(codes::NO_SUCH_BUCKET)
                    || matches!(failure.status, Some(301 | 403))
                {
                    Ok(None)
                } else {
                    Err(failure.into_error(
                        format!("reading the policy of log bucket `{log_bucket}`"),
                        clients,
                    ))
                }
            }
        }
    };
    let (head, policy) = tokio::join!(head, policy);
    Ok(match head? {
        None => LogBucket::Missing,
        Some(region) => LogBucket::Found {
            region,
            policy: policy?,
        },
    })
}

/// Log buckets whose policy a task of this process is rewriting. Environments of one run may
/// share a log bucket; each adds its own statement to the policy as it is at that moment,
/// one at a time. (Runs on the same machine are kept apart by `project::lock_buckets`.)
static LOG_BUCKET_LOCKS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// Grants delivery on the log bucket, then turns logging on: S3 checks the grant when
/// logging is enabled.
pub async fn apply_logging(target: &BucketAt<'_>, plan: &EnvPlan) -> Result<(), AwsError> {
    let BucketAt {
        clients,
        name: bucket,
        account,
    } = *target;
    let s3 = &clients.s3;
    for change in &plan.changes {
        let Change::GrantLogDelivery {
            log_bucket,
            statement,
            ..
        } = change
        else {
            continue;
        };
        let lock = Arc::clone(
            LOG_BUCKET_LOCKS
                .lock()
                .expect("log bucket locks")
                .entry(log_bucket.clone())
                .or_default(),
        );
        let _held = lock.lock().await;
        let doing = format!("granting log delivery in the policy of log bucket `{log_bucket}`");
        let live = match s3
            .get_bucket_policy()
            .bucket(log_bucket)
            .expected_bucket_owner(account)
            .send()
            .await
        {
            Ok(output) => output.policy().map(str::to_owned),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                if !failure.is(codes::NO_BUCKET_POLICY) {
                    return Err(failure.into_error(doing, clients));
                }
                None
            }
        };
        let live = live
            .as_deref()
            .map(PolicyDocument::parse)
            .transpose()
            .map_err(|reason| AwsError::new(doing.clone(), reason, None))?;
        if let Some(merged) = crate::policy::with_statement(live.as_ref(), statement) {
            s3.put_bucket_policy()
                .bucket(log_bucket)
                .expected_bucket_owner(account)
                .policy(merged.to_json())
                .send()
                .await
                .explained(clients, || doing)?;
        }
    }
    for change in &plan.changes {
        let Change::EnableLogging { to, .. } = change else {
            continue;
        };
        until_consistent(|| async {
            s3.put_bucket_logging()
                .bucket(bucket)
                .expected_bucket_owner(account)
                .bucket_logging_status(
                    BucketLoggingStatus::builder()
                        .logging_enabled(
                            LoggingEnabled::builder()
                                .target_bucket(&to.bucket)
                                .target_prefix(&to.prefix)
                                .build()
                                .expect("bucket and prefix are set"),
                        )
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .explained(clients, || {
                    format!("turning on access logging of bucket `{bucket}`")
                })
        })
        .await?;
    }
    Ok(())
}
