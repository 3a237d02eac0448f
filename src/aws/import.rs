//! What `statebucket import` reads of a bucket it did not create: where it is, everything
//! `observe_bucket` reads, the aliases of its KMS key, and the state objects it holds.
//! Read-only: not one write call.

use super::Clients;
use super::bucket::{BucketAt, BucketReads, observe_bucket};
use super::errors::{AwsError, Explained, Failure};
use crate::observed::{ObservedBucket, ReplicationConfiguration};
use crate::spec::Region;

/// The live bucket as import needs it.
#[derive(Debug, Clone)]
pub struct LiveBucket {
    pub state: ObservedBucket,
    /// The customer managed key of SSE-KMS: its ARN and its aliases (`alias/…`, without
    /// AWS managed ones). `None` without SSE-KMS or with the AWS managed key.
    pub kms_key: Option<(String, Vec<String>)>,
    /// Keys of `*.tfstate` objects (the first 1000 keys of the bucket).
    pub state_keys: Vec<String>,
    /// A DynamoDB table with Terraform's lock schema under a name teams give it.
    pub lock_table: Option<String>,
    /// The bucket's replication configuration, when it has one.
    pub replication: Option<ReplicationConfiguration>,
}

/// A bucket the state bucket replicates into, as import reads it.
#[derive(Debug, Clone)]
pub struct LiveReplica {
    pub name: String,
    pub region: Region,
    pub state: ObservedBucket,
    pub kms_key: Option<(String, Vec<String>)>,
}

/// The bucket's region (HeadBucket, asked in any region: S3 names the bucket's region in its
/// answer). An error says whether the bucket is missing or not the caller's.
pub async fn locate_bucket(
    target: BucketAt<'_>,
    fallback_region: &str,
) -> Result<String, AwsError> {
    let BucketAt {
        clients,
        name: bucket,
        account,
    } = target;
    let doing = format!("importing bucket `{bucket}` (s3:HeadBucket)");
    match clients
        .s3
        .head_bucket()
        .bucket(bucket)
        .expected_bucket_owner(account)
        .send()
        .await
    {
        Ok(output) => Ok(output.bucket_region().unwrap_or(fallback_region).to_owned()),
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            match failure.status {
                Some(301) if failure.region_header.is_some() => {
                    Ok(failure.region_header.expect("checked"))
                }
                Some(404) => Err(AwsError::new(
                    doing,
                    "no such bucket (HTTP 404)",
                    Some(format!(
                        "check the name and the endpoint; import adopts a bucket that exists: to start a new one, run `statebucket init --bucket {bucket}`"
                    )),
                )),
                Some(403) => Err(AwsError::new(
                    doing,
                    format!(
                        "access denied (HTTP 403): the bucket is not in account {account}, or {} may not read it",
                        clients.identity_source
                    ),
                    Some(format!(
                        "run import with credentials of the account that owns the bucket (--profile NAME), allowed s3:ListBucket and the s3:GetBucket* reads on `{bucket}`"
                    )),
                )),
                _ => Err(failure.into_error(doing, clients)),
            }
        }
    }
}

/// Everything import reads; `clients` must be in the bucket's region.
pub async fn read_bucket(target: BucketAt<'_>, region: &Region) -> Result<LiveBucket, AwsError> {
    let BucketAt {
        clients,
        name: bucket,
        account,
    } = target;
    let (state, state_keys, lock_table, replication) = tokio::join!(
        observe_bucket(target, region.as_str(), BucketReads::ALL),
        state_keys(clients, bucket),
        lock_table(target, region),
        super::replication::read_configuration(clients, bucket, Some(account)),
    );
    let state = state?.ok_or_else(|| {
        AwsError::new(
            format!("importing bucket `{bucket}`"),
            "the bucket disappeared while it was read",
            None,
        )
    })?;
    let kms_key = customer_key(clients, &state).await?;
    Ok(LiveBucket {
        state,
        kms_key,
        state_keys: state_keys?,
        lock_table,
        replication: replication?,
    })
}

/// The replica a bucket replicates into: its settings and KMS key's aliases, read in its own
/// region (`clients`); `None` when it does not exist (or is not the caller's).
pub async fn read_replica(
    target: BucketAt<'_>,
    region: &Region,
) -> Result<Option<LiveReplica>, AwsError> {
    // Every setting import can read, whatever a spec would ask for.
    let Some(state) = observe_bucket(target, region.as_str(), BucketReads::ALL).await? else {
        return Ok(None);
    };
    let kms_key = customer_key(target.clients, &state).await?;
    Ok(Some(LiveReplica {
        name: target.name.to_owned(),
        region: region.clone(),
        state,
        kms_key,
    }))
}

/// The names teams give a bucket's lock table, statebucket's default first.
fn lock_table_candidates(bucket: &str) -> Vec<String> {
    let mut names = vec![format!("{bucket}-locks"), format!("{bucket}-lock")];
    names.extend(
        [
            "terraform-locks",
            "terraform-lock",
            "terraform-state-lock",
            "terraform_locks",
        ]
        .map(str::to_owned),
    );
    names
}

/// The first candidate table with Terraform's lock schema (hash key `LockID`, a string, no
/// range key), all asked at once. A table that cannot be read counts as absent: the notes
/// still say to check.
async fn lock_table(target: BucketAt<'_>, region: &Region) -> Option<String> {
    let BucketAt {
        clients,
        name: bucket,
        account,
    } = target;
    let candidates = lock_table_candidates(bucket);
    let found = futures::future::join_all(candidates.iter().map(|table| async move {
        let arn = super::dynamodb::table_arn(region, account, table);
        super::dynamodb::observe_table(clients, table, &arn, false)
            .await
            .ok()
            .flatten()
            .filter(|state| {
                state.hash_key == [("LockID".to_owned(), "S".to_owned())] && !state.has_range_key
            })
            .map(|_| table.clone())
    }))
    .await;
    found.into_iter().flatten().next()
}

/// The customer managed key of the bucket's SSE-KMS, with its aliases; `None` without one.
async fn customer_key(
    clients: &Clients,
    state: &ObservedBucket,
) -> Result<Option<(String, Vec<String>)>, AwsError> {
    match state
        .encryption
        .as_ref()
        .filter(|rule| rule.algorithm.starts_with("aws:kms"))
        .and_then(|rule| rule.kms_key_id.as_deref())
    {
        Some(key) => kms_key_and_aliases(clients, key).await,
        None => Ok(None),
    }
}

/// The key's ARN and its customer aliases; `None` for the AWS managed `aws/s3` key.
async fn kms_key_and_aliases(
    clients: &Clients,
    key: &str,
) -> Result<Option<(String, Vec<String>)>, AwsError> {
    let described = clients
        .kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .explained(clients, || {
            format!("looking up the bucket's KMS key `{key}` (kms:DescribeKey)")
        })?;
    let Some(metadata) = described.key_metadata() else {
        return Ok(None);
    };
    if metadata.key_manager().map(|manager| manager.as_str()) == Some("AWS") {
        return Ok(None);
    }
    let mut aliases = Vec::new();
    let mut pages = clients
        .kms
        .list_aliases()
        .key_id(metadata.key_id())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.explained(clients, || {
            format!(
                "listing the aliases of KMS key `{}` (kms:ListAliases)",
                metadata.key_id()
            )
        })?;
        aliases.extend(
            page.aliases()
                .iter()
                .filter(|alias| alias.target_key_id() == Some(metadata.key_id()))
                .filter_map(|alias| alias.alias_name())
                .filter(|name| !name.starts_with("alias/aws/"))
                .map(str::to_owned),
        );
    }
    aliases.sort();
    Ok(Some((metadata.arn().unwrap_or(key).to_owned(), aliases)))
}

/// Keys ending in `.tfstate` among the bucket's first 1000 keys.
async fn state_keys(clients: &Clients, bucket: &str) -> Result<Vec<String>, AwsError> {
    let listed = clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .explained(clients, || {
            format!("listing the objects of bucket `{bucket}` (s3:ListBucket)")
        })?;
    Ok(listed
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .filter(|key| key.ends_with(".tfstate"))
        .map(str::to_owned)
        .collect())
}
