//! Carries out a plan's AWS changes. Only what must be ordered is: the bucket before its
//! settings, the KMS key before the encryption that names it; everything else runs at once.
//! There is deliberately no call here that deletes, suspends or loosens anything.

use futures::future::try_join_all;

use super::Clients;
use super::bucket::{self, BucketAt, NewBucket};
use super::errors::AwsError;
use super::kms::create::{NewKey, alias_and_rotation, create_key};
use crate::observed::Retention;
use crate::plan::{Change, EnvPlan, SseTarget};
use crate::spec::{IamArn, Region};

/// What applying a plan's AWS changes produced besides the changes themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The ARN of a KMS key created on the way, which backend.hcl needs.
    pub created_key: Option<String>,
    /// What the user must know (e.g. a key left unused because another run won the alias).
    pub warnings: Vec<String>,
}

/// Whether the plan holds a change that two runs on two machines must not both make: a KMS
/// key created (or an orphan key aliased), or a shared log bucket's policy rewritten.
pub fn needs_lock(plan: &EnvPlan) -> bool {
    plan.changes.iter().any(|change| {
        matches!(
            change,
            Change::CreateKmsKey { .. }
                | Change::AliasKmsKey { .. }
                | Change::CreateTofuKey { .. }
                | Change::AliasTofuKey { .. }
                | Change::GrantLogDelivery { .. }
        )
    })
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
pub async fn create_planned_bucket(
    clients: &Clients,
    plan: &EnvPlan,
    bucket: &str,
    region: &Region,
    account: &str,
) -> Result<Prepared, AwsError> {
    let Some(new_bucket) = bucket_to_create(plan) else {
        return Ok(Prepared::default());
    };
    bucket::create(clients, bucket, region.as_str(), new_bucket).await?;
    let retention_set = match retention_to_set(plan) {
        Some(retention) => {
            let target = BucketAt {
                clients,
                name: bucket,
                account,
            };
            bucket::object_lock::write(&target, retention)
                .await
                .map_err(|failure| {
                    failure.into_error(
                        format!("object lock of bucket `{bucket}`"),
                        &clients.identity_source,
                    )
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
/// `account` is the caller's account; S3 writes carry it as the expected bucket owner so that
/// a bucket of the same name in another account is never modified.
pub async fn apply(
    clients: &Clients,
    plan: &EnvPlan,
    bucket: &str,
    region: &Region,
    account: &str,
    prepared: Prepared,
) -> Result<Applied, AwsError> {
    let (applied, ()) = tokio::try_join!(
        apply_bucket_and_key(
            clients,
            plan,
            bucket,
            region.as_str(),
            account,
            prepared.bucket_created,
            prepared.retention_set
        ),
        apply_lock_table(clients, plan, region, account)
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

/// `bucket_created`: the bucket was created before the lock was taken; `retention_set`:
/// and its default retention set.
async fn apply_bucket_and_key<'a>(
    clients: &'a Clients,
    plan: &'a EnvPlan,
    bucket: &'a str,
    region: &'a str,
    account: &'a str,
    bucket_created: bool,
    retention_set: bool,
) -> Result<Applied, AwsError> {
    let _identity = clients.identity_source.as_str();
    let key_to_create = plan.changes.iter().find_map(|change| match change {
        Change::CreateKmsKey {
            alias,
            description,
            tags,
            policy,
        } => Some((alias, description, tags, policy)),
        _ => None,
    });

    let new_bucket = bucket_to_create(plan).filter(|_| !bucket_created);
    let bucket_step = async {
        if let Some(new_bucket) = new_bucket {
            tracing::debug!(%bucket, %region, "creating bucket");
            bucket::create(clients, bucket, region, new_bucket).await?;
        }
        Ok::<_, AwsError>(())
    };
    // Under the apply lock (`needs_lock`): another run may have created the key since this
    // one observed it missing; then that key is the environment's.
    let key_step = async {
        let Some((alias, description, tags, policy)) = key_to_create else {
            return Ok(None);
        };
        if let Some(arn) = super::kms::aliased_key(clients, alias).await? {
            tracing::debug!(%alias, key = %arn, "another run created the key while this one waited for the lock");
            return Ok(Some(NewKey::Found(arn)));
        }
        create_key(
            clients,
            &format!("{bucket}.creating-key"),
            alias,
            description,
            tags,
            policy,
        )
        .await
        .map(|(id, arn)| Some(NewKey::Created(id, arn)))
    };
    // With a key to create, the bucket was created before the lock was taken (`apply`), and
    // this step is empty.
    bucket_step.await?;

    let logging_step = bucket::logging::apply_logging(clients, plan, bucket, account);
    let tofu_key_step = super::kms::create::apply_tofu_key(clients, plan, bucket);
    let target = BucketAt {
        clients,
        name: bucket,
        account,
    };
    let setting = |change: &'a Change, created_key_arn: Option<String>| {
        until_consistent(move || {
            let created_key_arn = created_key_arn.clone();
            async move {
                match change {
                    Change::SetObjectLock { .. } if retention_set => Ok(None),
                    Change::PutIdentityPolicy {
                        principal,
                        policy_name,
                        to,
                        ..
                    } => {
                        let principal = IamArn::parse(principal).map_err(|problem| {
                            AwsError::new(
                                format!("writing the identity policy of {principal}"),
                                problem.message,
                                None,
                            )
                        })?;
                        super::iam::write_inline_policy(clients, &principal, policy_name, to)
                            .await
                            .map(|()| None)
                    }
                    Change::AliasKmsKey { .. }
                    | Change::PutKeyPolicy { .. }
                    | Change::EnableKeyRotation { .. } => {
                        super::kms::create::write_key_setting(clients, change).await
                    }
                    _ => bucket::write_setting(&target, change, created_key_arn.as_deref())
                        .await
                        .map(|_| None),
                }
            }
        })
    };
    // Only the encryption naming a key this run creates waits for the key; every other
    // setting goes out at once, beside the key's creation.
    let needs_new_key = |change: &Change| {
        matches!(
            change,
            Change::SetEncryption {
                to: SseTarget::Kms { key_arn: None },
                ..
            }
        )
    };
    // Object Lock turned on for an existing bucket (`enable`: a bucket created with it has it
    // already) needs versioning on first.
    let locks_after_versioning = plan
        .changes
        .iter()
        .any(|change| matches!(change, Change::SetObjectLock { enable: true, .. }));
    let after_versioning = |change: &Change| {
        locks_after_versioning
            && matches!(
                change,
                Change::SetObjectLock { .. } | Change::EnableVersioning { .. }
            )
    };
    let independent = try_join_all(
        plan.changes
            .iter()
            .filter(|change| !needs_new_key(change) && !after_versioning(change))
            .map(|change| setting(change, None)),
    );
    let ordered = async {
        let mut warnings = Vec::new();
        // Versioning first: the plan lists it before Object Lock.
        for change in plan
            .changes
            .iter()
            .filter(|change| after_versioning(change))
        {
            warnings.push(setting(change, None).await?);
        }
        Ok::<_, AwsError>(warnings)
    };
    let key_chain = async {
        let new_key = key_step.await?;
        let created_key = new_key.as_ref().map(|key| match key {
            NewKey::Created(_, arn) | NewKey::Found(arn) => arn.clone(),
        });
        // The new key's alias and rotation go out with the encryption naming it: encryption
        // only needs the key's ARN, not its alias.
        let alias_step = async {
            match (&new_key, key_to_create) {
                (Some(NewKey::Created(key_id, arn)), Some((alias, _, _, _))) => {
                    alias_and_rotation(clients, alias, key_id, arn).await
                }
                _ => Ok(None),
            }
        };
        let dependent = try_join_all(
            plan.changes
                .iter()
                .filter(|change| needs_new_key(change))
                .map(|change| setting(change, created_key.clone())),
        );
        let (created_alias, dependent) = tokio::try_join!(alias_step, dependent)?;
        Ok::<_, AwsError>((created_key, created_alias, dependent))
    };
    let (independent, ordered, (), (created_key, created_alias, dependent)) =
        tokio::try_join!(independent, ordered, logging_step, key_chain)?;
    let tofu_key_warning = tofu_key_step.await?;
    Ok(Applied {
        created_key,
        warnings: independent
            .into_iter()
            .chain(ordered)
            .chain(dependent)
            .chain([created_alias, tofu_key_warning])
            .flatten()
            .collect(),
    })
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
pub async fn apply_replication(
    clients: &Clients,
    plan: &EnvPlan,
    bucket: &str,
    account: &str,
) -> Result<(), AwsError> {
    for change in &plan.changes {
        if let Change::PutReplication {
            role, to, foreign, ..
        } = change
        {
            until_consistent(|| {
                super::replication::put_configuration(clients, bucket, account, role, to, foreign)
            })
            .await?;
        }
    }
    Ok(())
}
