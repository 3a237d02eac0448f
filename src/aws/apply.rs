//! Carries out a plan's AWS changes. Only what must be ordered is: the bucket before its
//! settings, the KMS key before the encryption that names it; everything else runs at once.
//! There is deliberately no call here that deletes, suspends or loosens anything.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag as KmsTag};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention, LoggingEnabled,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging, TransitionDefaultMinimumObjectSize,
    VersioningConfiguration,
};
use futures::future::try_join_all;

use super::Clients;
use super::errors::{AwsError, Failure, codes};
use crate::observed::Retention;
use crate::plan::{Change, EnvPlan, SseTarget};
use crate::policy::PolicyDocument;
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
    create_bucket_in_region(clients, bucket, region.as_str(), new_bucket).await?;
    let retention_set = match retention_to_set(plan) {
        Some(retention) => {
            put_object_lock(clients, bucket, account, retention)
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

/// What CreateBucket sets itself.
#[derive(Debug, Clone, Copy)]
struct NewBucket<'a> {
    tags: &'a std::collections::BTreeMap<String, String>,
    owner_enforced: bool,
    object_lock: bool,
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

/// Where the environment's key comes from, when the plan creates one.
enum NewKey {
    /// Created by this run: id and ARN; its alias and rotation follow.
    Created(String, String),
    /// Created by another run while this one waited for the lock: ARN.
    Found(String),
}

/// The default retention the plan sets.
fn retention_to_set(plan: &EnvPlan) -> Option<&Retention> {
    plan.changes.iter().find_map(|change| match change {
        Change::SetObjectLock { to, .. } => Some(to),
        _ => None,
    })
}

/// PutObjectLockConfiguration: Object Lock on, with `retention` as the default.
async fn put_object_lock(
    clients: &Clients,
    bucket: &str,
    account: &str,
    retention: &Retention,
) -> Result<(), Failure> {
    clients
        .s3
        .put_object_lock_configuration()
        .bucket(bucket)
        .expected_bucket_owner(account)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::from(retention.mode.as_str()))
                                .set_days(retention.days)
                                .set_years(retention.years)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map(drop)
        .map_err(|error| Failure::from_sdk(&error))
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
    let identity = clients.identity_source.as_str();
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
            create_bucket_in_region(clients, bucket, region, new_bucket).await?;
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

    let logging_step = apply_logging(clients, plan, bucket, account);
    let tofu_key_step = apply_tofu_key(clients, plan, bucket);
    let setting = |change: &'a Change, created_key_arn: Option<String>| {
        until_consistent(move || {
            let created_key_arn = created_key_arn.clone();
            async move {
                let s3 = &clients.s3;
                let doing = format!("{} of bucket `{bucket}`", change.facet());
                let result = match change {
                    Change::CreateBucket { .. }
                    | Change::CreateKmsKey { .. }
                    | Change::CreateTofuKey { .. }
                    | Change::AliasTofuKey { .. }
                    | Change::WriteBackendFile { .. }
                    | Change::GrantLogDelivery { .. }
                    | Change::EnableLogging { .. }
                    | Change::CreateLockTable { .. }
                    | Change::UpdateLockTable { .. }
                    | Change::EnablePointInTimeRecovery { .. }
                    | Change::TagLockTable { .. }
                    | Change::CreateReplicationRole { .. }
                    | Change::PutReplication { .. } => return Ok(None),
                    Change::SetObjectLock { .. } if retention_set => return Ok(None),
                    Change::SetObjectLock { to, .. } => {
                        put_object_lock(clients, bucket, account, to).await
                    }
                    Change::SetLifecycle {
                        rules,
                        minimum_object_size,
                        ..
                    } => s3
                        .put_bucket_lifecycle_configuration()
                        .bucket(bucket)
                        .expected_bucket_owner(account)
                        .set_transition_default_minimum_object_size(
                            minimum_object_size
                                .as_deref()
                                .map(TransitionDefaultMinimumObjectSize::from),
                        )
                        .lifecycle_configuration(
                            BucketLifecycleConfiguration::builder()
                                .set_rules(Some(
                                    rules.iter().map(super::lifecycle::to_sdk).collect(),
                                ))
                                .build()
                                .expect("rules are set"),
                        )
                        .send()
                        .await
                        .map(drop)
                        .map_err(|error| Failure::from_sdk(&error)),
                    Change::PutIdentityPolicy {
                        principal,
                        policy_name,
                        to,
                        ..
                    } => {
                        let principal = IamArn::parse(principal).map_err(|problem| {
                            AwsError::new(doing.clone(), problem.message, None)
                        })?;
                        return super::iam::write_inline_policy(
                            clients,
                            &principal,
                            policy_name,
                            to,
                        )
                        .await
                        .map(|()| None);
                    }
                    Change::AliasKmsKey { alias, key_arn } => {
                        return alias_and_rotation(clients, alias, key_arn, key_arn).await;
                    }
                    Change::PutKeyPolicy { key_arn, to, .. } => {
                        return clients
                            .kms
                            .put_key_policy()
                            .key_id(key_arn)
                            .policy_name("default")
                            .policy(to)
                            .send()
                            .await
                            .map(|_| None)
                            .map_err(|error| {
                                Failure::from_sdk(&error).into_error(
                                    format!("writing the key policy of KMS key {key_arn}"),
                                    identity,
                                )
                            });
                    }
                    Change::EnableKeyRotation { key_arn } => {
                        return clients
                            .kms
                            .enable_key_rotation()
                            .key_id(key_arn)
                            .send()
                            .await
                            .map(|_| None)
                            .map_err(|error| {
                                Failure::from_sdk(&error).into_error(
                                    format!("enabling rotation of KMS key {key_arn}"),
                                    identity,
                                )
                            });
                    }
                    Change::EnableVersioning { .. } => s3
                        .put_bucket_versioning()
                        .bucket(bucket)
                        .expected_bucket_owner(account)
                        .versioning_configuration(
                            VersioningConfiguration::builder()
                                .status(BucketVersioningStatus::Enabled)
                                .build(),
                        )
                        .send()
                        .await
                        .map(drop)
                        .map_err(|error| Failure::from_sdk(&error)),
                    Change::SetEncryption { to, .. } => {
                        let default = match to {
                            SseTarget::Aes256 => ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256),
                            SseTarget::Kms { key_arn } => {
                                let Some(arn) = key_arn.as_deref().or(created_key_arn.as_deref())
                                else {
                                    return Err(AwsError::new(
                                        doing,
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
                            .apply_server_side_encryption_by_default(
                                default.build().expect("sse_algorithm is set"),
                            )
                            .bucket_key_enabled(matches!(to, SseTarget::Kms { .. }))
                            .build();
                        s3.put_bucket_encryption()
                            .bucket(bucket)
                            .expected_bucket_owner(account)
                            .server_side_encryption_configuration(
                                ServerSideEncryptionConfiguration::builder()
                                    .rules(rule)
                                    .build()
                                    .expect("one rule is set"),
                            )
                            .send()
                            .await
                            .map(drop)
                            .map_err(|error| Failure::from_sdk(&error))
                    }
                    Change::BlockPublicAccess { .. } => s3
                        .put_public_access_block()
                        .bucket(bucket)
                        .expected_bucket_owner(account)
                        .public_access_block_configuration(
                            PublicAccessBlockConfiguration::builder()
                                .block_public_acls(true)
                                .ignore_public_acls(true)
                                .block_public_policy(true)
                                .restrict_public_buckets(true)
                                .build(),
                        )
                        .send()
                        .await
                        .map(drop)
                        .map_err(|error| Failure::from_sdk(&error)),
                    Change::EnforceBucketOwner { .. } => s3
                        .put_bucket_ownership_controls()
                        .bucket(bucket)
                        .expected_bucket_owner(account)
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
                        .send()
                        .await
                        .map(drop)
                        .map_err(|error| Failure::from_sdk(&error)),
                    Change::PutPolicy { to, .. } => s3
                        .put_bucket_policy()
                        .bucket(bucket)
                        .expected_bucket_owner(account)
                        .policy(to)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|error| Failure::from_sdk(&error)),
                    Change::MergeTags { to, .. } => {
                        let tags = s3_tags(to);
                        s3.put_bucket_tagging()
                            .bucket(bucket)
                            .expected_bucket_owner(account)
                            .tagging(
                                Tagging::builder()
                                    .set_tag_set(Some(tags))
                                    .build()
                                    .expect("tag set is set"),
                            )
                            .send()
                            .await
                            .map(drop)
                            .map_err(|error| Failure::from_sdk(&error))
                    }
                };
                result
                    .map(|()| None)
                    .map_err(|failure| failure.into_error(doing, identity))
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

/// OpenTofu's dedicated key: created (tagged, with the account's default key policy) and
/// aliased with rotation on, or an interrupted run's key aliased. Not retried as a whole:
/// `create_key` never sends a second CreateKey without searching for the first.
async fn apply_tofu_key(
    clients: &Clients,
    plan: &EnvPlan,
    bucket: &str,
) -> Result<Option<String>, AwsError> {
    for change in &plan.changes {
        match change {
            Change::CreateTofuKey {
                alias,
                description,
                tags,
                policy,
            } => {
                let marker = format!("{bucket}.creating-opentofu-key");
                let (key_id, arn) =
                    create_key(clients, &marker, alias, description, tags, policy).await?;
                return alias_and_rotation(clients, alias, &key_id, &arn).await;
            }
            Change::AliasTofuKey { alias, key_arn } => {
                return alias_and_rotation(clients, alias, key_arn, key_arn).await;
            }
            _ => {}
        }
    }
    Ok(None)
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

/// Log buckets whose policy a task of this process is rewriting. Environments of one run may
/// share a log bucket; each adds its own statement to the policy as it is at that moment,
/// one at a time. (Runs on the same machine are kept apart by `project::lock_buckets`.)
static LOG_BUCKET_LOCKS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// Grants delivery on the log bucket, then turns logging on: S3 checks the grant when
/// logging is enabled.
async fn apply_logging(
    clients: &Clients,
    plan: &EnvPlan,
    bucket: &str,
    account: &str,
) -> Result<(), AwsError> {
    let identity = clients.identity_source.as_str();
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
                    return Err(failure.into_error(doing, identity));
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
                .map_err(|error| Failure::from_sdk(&error).into_error(doing, identity))?;
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
                .map_err(|error| {
                    Failure::from_sdk(&error).into_error(
                        format!("turning on access logging of bucket `{bucket}`"),
                        identity,
                    )
                })
        })
        .await?;
    }
    Ok(())
}

fn s3_tags(tags: &std::collections::BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

/// Retries `write` while AWS answers in a way that only means it has not caught up yet (see
/// `AwsError::is_eventual_consistency`), with bounded exponential backoff: 6 retries, about
/// 12 s in all. Every other answer, success or error, is returned at once.
async fn until_consistent<T, F, Fut>(write: F) -> Result<T, AwsError>
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

/// CreateBucket with the LocationConstraint S3 wants: none for us-east-1 (an explicit
/// `us-east-1` is rejected), the region everywhere else.
/// Tags go into the request too (SCPs may require them on s3:CreateBucket; it then also needs
/// s3:TagResource); the plan's PutBucketTagging follows for stores that ignore them.
async fn create_bucket_in_region(
    clients: &Clients,
    bucket: &str,
    region: &str,
    new_bucket: NewBucket<'_>,
) -> Result<(), AwsError> {
    let identity = clients.identity_source.as_str();
    let tags = new_bucket.tags;
    let mut request = clients
        .s3
        .create_bucket()
        .bucket(bucket)
        .set_object_ownership(
            new_bucket
                .owner_enforced
                .then_some(ObjectOwnership::BucketOwnerEnforced),
        )
        // Object Lock at creation turns versioning on with it.
        .set_object_lock_enabled_for_bucket(new_bucket.object_lock.then_some(true));
    if region != "us-east-1" || !tags.is_empty() {
        let location = (region != "us-east-1").then(|| BucketLocationConstraint::from(region));
        let tags = (!tags.is_empty()).then(|| s3_tags(tags));
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .set_location_constraint(location)
                .set_tags(tags)
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(error) => {
            let modeled = error.as_service_error();
            let failure = Failure::from_sdk(&error);
            if failure.is(codes::BUCKET_ALREADY_OWNED_BY_YOU)
                || modeled.is_some_and(|e| e.is_bucket_already_owned_by_you())
            {
                return Ok(());
            }
            if failure.is(codes::BUCKET_ALREADY_EXISTS)
                || modeled.is_some_and(|e| e.is_bucket_already_exists())
            {
                return Err(AwsError::new(
                    format!("creating bucket `{bucket}` in {region}"),
                    "BucketAlreadyExists: the name is taken by another AWS account",
                    Some("bucket names are global across all accounts: choose another `bucket.name` (e.g. add your account id or org prefix)".to_owned()),
                ));
            }
            Err(failure.into_error(format!("creating bucket `{bucket}` in {region}"), identity))
        }
    }
}

/// A symmetric key for the environment with `policy` as its key policy (or the one an
/// earlier attempt left, whose policy the next plan repairs): its id and ARN. The alias and
/// rotation are the caller's next step.
async fn create_key(
    clients: &Clients,
    marker: &str,
    alias: &str,
    description: &str,
    tags: &std::collections::BTreeMap<String, String>,
    policy: &str,
) -> Result<(String, String), AwsError> {
    let identity = clients.identity_source.as_str();
    let kms = &clients.kms;
    let kms_tags = tags
        .iter()
        .map(|(key, value)| {
            KmsTag::builder()
                .tag_key(key)
                .tag_value(value)
                .build()
                .expect("key and value are set")
        })
        .collect::<Vec<_>>();
    // A key an interrupted run created (tagged for this environment) is reused, not doubled.
    // CreateKey is not idempotent: when an attempt fails in a way that may have created the
    // key anyway (a timeout, a lost response), the SDK must not simply send it again. The
    // plan's observation already searched for a key tagged for this environment (a run
    // interrupted before CreateAlias); every further attempt searches again first, so a key
    // created by a lost attempt is reused instead of doubled.
    // A run killed while its CreateKey was on the wire leaves this marker behind (apply holds
    // the bucket's lock, so no other run on this machine writes it). That CreateKey can still
    // take effect after we search, so give it time to show up before making another key.
    let marker = std::env::temp_dir().join(format!("statebucket-apply-{marker}"));
    if marker.exists() {
        let mut wait = std::time::Duration::from_millis(250);
        for _ in 0..5 {
            tokio::time::sleep(wait).await;
            if let Some(found) = super::kms::find_tagged_key(clients, tags).await? {
                tracing::debug!(%alias, key = %found.1, "found the key an interrupted run was creating");
                let _ = std::fs::remove_file(&marker);
                return Ok(found);
            }
            wait *= 2;
        }
    }
    let _ = std::fs::write(&marker, alias);
    let mut delay = std::time::Duration::from_millis(500);
    let mut attempt = 0;
    let (key_id, arn) = loop {
        attempt += 1;
        if attempt > 1
            && let Some(found) = super::kms::find_tagged_key(clients, tags).await?
        {
            tracing::debug!(%alias, key = %found.1, "reusing the key created earlier for this environment");
            break found;
        }
        tracing::debug!(%alias, attempt, "creating KMS key");
        let sent = kms
            .create_key()
            .description(description)
            .policy(policy)
            .key_spec(KeySpec::SymmetricDefault)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .set_tags(Some(kms_tags.clone()))
            .customize()
            .config_override(
                aws_sdk_kms::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        match sent {
            Ok(created) => {
                let metadata = created.key_metadata().ok_or_else(|| {
                    AwsError::new(
                        format!("creating the KMS key for {alias}"),
                        "KMS returned no key metadata",
                        None,
                    )
                })?;
                // Tagged and findable from here on: a later run will see it.
                let _ = std::fs::remove_file(&marker);
                break (
                    metadata.key_id().to_owned(),
                    metadata.arn().unwrap_or_default().to_owned(),
                );
            }
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                if !failure.is_transient() || attempt >= 5 {
                    // Refused (not lost): no key can land later.
                    if !failure.is_transient() {
                        let _ = std::fs::remove_file(&marker);
                    }
                    return Err(
                        failure.into_error(format!("creating the KMS key for {alias}"), identity)
                    );
                }
                tracing::debug!(%alias, cause = %failure.message, "CreateKey failed; checking whether the key exists before trying again");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    };
    Ok((key_id, arn))
}

/// Points `alias` at the key and turns rotation on, at once. If another run created the
/// alias first, that run's key is the environment's key; ours is left (never deleted), and
/// the warning returned says so.
async fn alias_and_rotation(
    clients: &Clients,
    alias: &str,
    key_id: &str,
    arn: &str,
) -> Result<Option<String>, AwsError> {
    let identity = clients.identity_source.as_str();
    let kms = &clients.kms;
    let alias_step = async {
        match kms
            .create_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                if !failure.is(codes::KMS_ALREADY_EXISTS) {
                    return Err(failure.into_error(format!("creating alias {alias}"), identity));
                }
                let existing = kms
                    .describe_key()
                    .key_id(alias)
                    .send()
                    .await
                    .map_err(|error| {
                        Failure::from_sdk(&error)
                            .into_error(format!("looking up {alias}"), identity)
                    })?;
                let theirs = existing
                    .key_metadata()
                    .and_then(|metadata| metadata.arn())
                    .unwrap_or_default()
                    .to_owned();
                Ok(Some(format!(
                    "another run created {alias} at the same time, for {theirs}, which is now the environment's key; the key this run created, {arn}, is left unused (statebucket never deletes keys): once you have checked it encrypts nothing, schedule its deletion with `aws kms schedule-key-deletion --key-id {arn}`"
                )))
            }
        }
    };
    let rotation_step = async {
        kms.enable_key_rotation()
            .key_id(key_id)
            .send()
            .await
            .map(drop)
            .map_err(|error| {
                Failure::from_sdk(&error).into_error(
                    format!("enabling rotation of the key for {alias}"),
                    identity,
                )
            })
    };
    let (warning, ()) = tokio::try_join!(alias_step, rotation_step)?;
    Ok(warning)
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
