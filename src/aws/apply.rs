//! Carries out a plan's AWS changes. Only what must be ordered is: the bucket before its
//! settings, the KMS key before the encryption that names it; everything else runs at once.
//! There is deliberately no call here that deletes, suspends or loosens anything.

use futures::future::try_join_all;

use super::Clients;
use super::bucket::{self, BucketAt, NewBucket};
use super::errors::AwsError;
use super::kms::create::{NewKey, alias_and_rotation, create_key};
use crate::observed::Retention;
use crate::plan::{Change, EnvPlan, KeyArn, SseTarget, Target};
use crate::spec::Region;

/// A bucket with its plan, as apply reaches it. `region` is the bucket's: CreateBucket's
/// location constraint and the lock table's ARN name it.
#[derive(Clone, Copy)]
pub struct BucketPlan<'a> {
    pub at: BucketAt<'a>,
    pub region: &'a Region,
    pub plan: &'a EnvPlan,
}

/// What applying a plan's AWS changes produced besides the changes themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The ARN of a KMS key created on the way, which backend.hcl needs.
    pub created_key: Option<String>,
    /// What the user must know (e.g. a key left unused because another run won the alias).
    pub warnings: Vec<String>,
}

/// Whether the plan holds a change that two runs on two machines must not both make
/// (`Change::needs_lock`).
pub fn needs_lock(plan: &EnvPlan) -> bool {
    plan.changes.iter().any(Change::needs_lock)
}

/// How a bucket's settings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingWrites {
    /// All at once (AWS): each setting is its own configuration.
    AtOnce,
    /// One after another, for an S3-compatible store: SeaweedFS 4.48 keeps a bucket's
    /// settings in one record and loses one of several concurrent writes to it (measured:
    /// 1 bucket in 10 lost its lifecycle rules after five concurrent Put*, none of 10 with
    /// the same writes one at a time).
    OneAtATime,
}

/// What was done before the rest of a plan: the bucket it creates, created, with its
/// default retention.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepared {
    pub bucket_created: bool,
    pub retention_set: bool,
}

/// Creates the bucket the plan creates (nothing when it creates none), with its default
/// retention before any object is written into it, so that the retention covers every
/// object from the first (and S3-compatible test servers that only take it on an empty
/// bucket accept it). The apply lock lives in the bucket: this comes before taking it.
pub async fn create_planned_bucket(bucket_plan: BucketPlan<'_>) -> Result<Prepared, AwsError> {
    let BucketPlan {
        at: target,
        region,
        plan,
    } = bucket_plan;
    let Some(new_bucket) = bucket_to_create(plan) else {
        return Ok(Prepared::default());
    };
    let BucketAt { clients, name, .. } = target;
    bucket::create(clients, name, region.as_str(), new_bucket).await?;
    let retention_set = match retention_to_set(plan) {
        Some(retention) => {
            bucket::object_lock::write(&target, retention)
                .await
                .map_err(|failure| {
                    failure.into_error(format!("object lock of bucket `{name}`"), clients)
                })?;
            true
        }
        None => false,
    };
    Ok(Prepared {
        bucket_created: true,
        retention_set,
    })
}

/// Applies every AWS change of `plan` (the backend file is the caller's); `prepared` says
/// what `create_planned_bucket` already did. A plan that `needs_lock` is applied by a
/// caller holding the environment's apply lock (`lock`).
///
/// `bucket_plan.at.account` is the caller's account; S3 writes carry it as the expected
/// bucket owner so that a bucket of the same name in another account is never modified.
pub async fn apply(
    bucket_plan: BucketPlan<'_>,
    prepared: Prepared,
    writes: SettingWrites,
) -> Result<Applied, AwsError> {
    let BucketPlan { at, region, plan } = bucket_plan;
    let (applied, ()) = tokio::try_join!(
        apply_bucket_and_key(bucket_plan, prepared, writes),
        apply_lock_table(at.clients, plan, region, at.account)
    )?;
    Ok(applied)
}

/// The bucket the plan creates.
fn bucket_to_create(plan: &EnvPlan) -> Option<NewBucket<'_>> {
    plan.changes.iter().find_map(|change| match change {
        Change::CreateBucket {
            tags,
            owner_enforced,
            object_lock,
            ..
        } => Some(NewBucket {
            tags,
            owner_enforced: *owner_enforced,
            object_lock: *object_lock,
        }),
        _ => None,
    })
}

/// The default retention the plan sets.
fn retention_to_set(plan: &EnvPlan) -> Option<&Retention> {
    plan.changes.iter().find_map(|change| match change {
        Change::SetObjectLock { to, .. } => Some(to),
        _ => None,
    })
}

/// The bucket's own changes and its key's, ordered only where AWS needs it: the bucket
/// before its settings, the key before the encryption that names it, versioning before
/// Object Lock on an existing bucket. `prepared`: what `create_planned_bucket` did.
async fn apply_bucket_and_key(
    bucket_plan: BucketPlan<'_>,
    prepared: Prepared,
    writes: SettingWrites,
) -> Result<Applied, AwsError> {
    let BucketPlan {
        at: target,
        region,
        plan,
    } = bucket_plan;
    let BucketAt {
        clients,
        name: bucket,
        ..
    } = target;
    if let Some(new_bucket) = bucket_to_create(plan).filter(|_| !prepared.bucket_created) {
        tracing::debug!(%bucket, %region, "creating bucket");
        bucket::create(clients, bucket, region.as_str(), new_bucket).await?;
    }
    let settings = plan.changes.iter().filter(|change| match change {
        Change::SetObjectLock { .. } => !prepared.retention_set,
        _ => matches!(
            change.target(),
            Target::BucketSetting | Target::IdentityPolicy | Target::StateKey
        ),
    });
    // Object Lock turned on for an existing bucket (`enable`: a bucket created with it has it
    // already) needs versioning on first.
    let locks_after_versioning = plan
        .changes
        .iter()
        .any(|change| matches!(change, Change::SetObjectLock { enable: true, .. }));
    let after_versioning = |change: &&Change| {
        locks_after_versioning
            && matches!(
                change,
                Change::SetObjectLock { .. } | Change::EnableVersioning { .. }
            )
    };
    let (independent, ordered): (Vec<&Change>, Vec<&Change>) = settings
        .filter(|change| !waits_for_new_key(change))
        .partition(|change| writes == SettingWrites::AtOnce && !after_versioning(change));
    let independent = try_join_all(
        independent
            .into_iter()
            .map(|change| write_change(&target, change, None)),
    );
    let ordered = async {
        let mut warnings = Vec::new();
        // In the plan's order: versioning before Object Lock.
        for change in ordered {
            warnings.push(write_change(&target, change, None).await?);
        }
        Ok::<_, AwsError>(warnings)
    };
    let logging = bucket::logging::apply_logging(&target, plan);
    let key_and_encryption = new_state_key_and_encryption(&target, plan);
    let tofu_key = super::kms::create::apply_tofu_key(clients, plan, bucket);
    let (independent, ordered, (), (created_key, key_warnings), tofu_key_warning) = match writes {
        SettingWrites::AtOnce => {
            tokio::try_join!(independent, ordered, logging, key_and_encryption, tofu_key)?
        }
        SettingWrites::OneAtATime => (
            independent.await?,
            ordered.await?,
            logging.await?,
            key_and_encryption.await?,
            tofu_key.await?,
        ),
    };
    Ok(Applied {
        created_key,
        warnings: independent
            .into_iter()
            .chain(ordered)
            .chain(key_warnings)
            .chain([tofu_key_warning])
            .flatten()
            .collect(),
    })
}

/// Only the encryption naming a key this run creates waits for the key; every other setting
/// goes out at once, beside the key's creation.
fn waits_for_new_key(change: &Change) -> bool {
    matches!(
        change,
        Change::SetEncryption {
            to: SseTarget::Kms {
                key_arn: KeyArn::AfterApply
            },
            ..
        }
    )
}

/// One change to an existing bucket, its key or an identity policy, retried while AWS has
/// not caught up (`until_consistent`); a warning when there is one. `created_key`: the ARN
/// of the key this run created, for the encryption that waited for it.
async fn write_change(
    target: &BucketAt<'_>,
    change: &Change,
    created_key: Option<&str>,
) -> Result<Option<String>, AwsError> {
    let clients = target.clients;
    until_consistent(|| async move {
        match change {
            Change::PutIdentityPolicy {
                principal,
                policy_name,
                to,
                ..
            } => super::iam::write_inline_policy(clients, principal, policy_name, to)
                .await
                .map(|()| None),
            Change::AliasKmsKey { .. }
            | Change::PutKeyPolicy { .. }
            | Change::EnableKeyRotation { .. } => {
                super::kms::create::write_key_setting(clients, change).await
            }
            _ => bucket::write_setting(target, change, created_key)
                .await
                .map(|_| None),
        }
    })
    .await
}

/// The state key the plan creates, then its alias and rotation beside the encryption naming
/// it (encryption needs the key's ARN, not its alias): the new key's ARN and the warnings.
/// Under the apply lock (`needs_lock`): another run may have created the key since this one
/// observed it missing; then that key is the environment's.
async fn new_state_key_and_encryption(
    target: &BucketAt<'_>,
    plan: &EnvPlan,
) -> Result<(Option<String>, Vec<Option<String>>), AwsError> {
    let clients = target.clients;
    let Some((alias, description, tags, policy)) =
        plan.changes.iter().find_map(|change| match change {
            Change::CreateKmsKey {
                alias,
                description,
                tags,
                policy,
            } => Some((alias, description, tags, policy)),
            _ => None,
        })
    else {
        return Ok((None, Vec::new()));
    };
    let new_key = match super::kms::aliased_key(clients, alias).await? {
        Some(arn) => {
            tracing::debug!(%alias, key = %arn, "another run created the key while this one waited for the lock");
            NewKey::Found(arn)
        }
        None => {
            let marker = format!("{}.creating-key", target.name);
            let (id, arn) = create_key(clients, &marker, alias, description, tags, policy).await?;
            NewKey::Created(id, arn)
        }
    };
    let created_key = match &new_key {
        NewKey::Created(_, arn) | NewKey::Found(arn) => arn.clone(),
    };
    let alias_step = async {
        match &new_key {
            NewKey::Created(key_id, arn) => alias_and_rotation(clients, alias, key_id, arn).await,
            NewKey::Found(_) => Ok(None),
        }
    };
    let dependent = try_join_all(
        plan.changes
            .iter()
            .filter(|change| waits_for_new_key(change))
            .map(|change| write_change(target, change, Some(&created_key))),
    );
    let (created_alias, mut warnings) = tokio::try_join!(alias_step, dependent)?;
    warnings.push(created_alias);
    Ok((Some(created_key), warnings))
}

/// The lock table's changes, in order: it must exist (and be ACTIVE) before point-in-time
/// recovery can be turned on. Runs alongside the bucket's changes.
async fn apply_lock_table(
    clients: &Clients,
    plan: &EnvPlan,
    region: &Region,
    account: &str,
) -> Result<(), AwsError> {
    for change in &plan.changes {
        match change {
            Change::CreateLockTable { table, tags } => {
                super::dynamodb::create_table(clients, table, tags).await?;
            }
            Change::UpdateLockTable { table, from, to } => {
                super::dynamodb::update_table(clients, table, from, to).await?;
            }
            Change::EnablePointInTimeRecovery { table, .. } => {
                until_consistent(|| super::dynamodb::enable_point_in_time_recovery(clients, table))
                    .await?;
            }
            Change::TagLockTable { table, to, .. } => {
                let arn = super::dynamodb::table_arn(region, account, table);
                super::dynamodb::tag_table(clients, &arn, to).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Retries `write` while AWS answers in a way that only means it has not caught up yet (see
/// `AwsError::is_eventual_consistency`), with bounded exponential backoff: 6 retries, about
/// 12 s in all. Every other answer, success or error, is returned at once.
pub(crate) async fn until_consistent<T, F, Fut>(write: F) -> Result<T, AwsError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    for _ in 0..6 {
        match write().await {
            Err(error) if error.is_eventual_consistency() => {
                tracing::debug!(%error, ?delay, "not consistent yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            other => return other,
        }
    }
    write().await
}

/// The replication role the plan creates (with its policy). Runs beside the buckets' own
/// changes: the role names the buckets but does not need them to exist.
pub async fn apply_replication_role(clients: &Clients, plan: &EnvPlan) -> Result<(), AwsError> {
    for change in &plan.changes {
        if let Change::CreateReplicationRole {
            role,
            trust_policy,
            policy_name,
            policy,
        } = change
        {
            super::replication::create_role(clients, role, trust_policy, policy_name, policy)
                .await?;
        }
    }
    Ok(())
}

/// The primary's replication configuration. S3 checks that both buckets have versioning on
/// and that the role exists, so this runs after both buckets' changes and the role's.
pub async fn apply_replication(target: BucketAt<'_>, plan: &EnvPlan) -> Result<(), AwsError> {
    for change in &plan.changes {
        if let Change::PutReplication {
            role, to, foreign, ..
        } = change
        {
            until_consistent(|| super::replication::put_configuration(target, role, to, foreign))
                .await?;
        }
    }
    Ok(())
}
