//! Reads everything a bucket's plan depends on, once per bucket whatever its number of
//! stacks. The engine first asks who the credentials belong to (so a wrong account or
//! missing credentials stop the run after one call, before anything else is touched);
//! `observe` then reads the bucket, its settings, the lock tables and the KMS key all at
//! once: one round trip for AES256, two with a KMS key (its rotation status and key policy
//! need the key id first).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Clients;
use super::errors::{AwsError, Failure, codes};
use crate::desired::{kms_key_tags, tofu_key_tags};
use crate::observed::{
    BucketState, KeyPolicyReading, KmsKeyState, LogBucket, LoggingTarget, ObjectLockState,
    Observed, PublicAccessBlock, Retention, SseRule, TofuKeyState, Versioning,
};
use crate::spec::{Encryption, EnvSpec, IamArn, KmsKey, StoreFeature, TofuEncryption};
use futures::future::try_join_all;

/// What the engine read from disk for a bucket: every stack's backend.hcl, and files left
/// by stacks the spec no longer has.
#[derive(Debug, Clone, Default)]
pub struct OnDisk {
    pub backend_files: BTreeMap<String, String>,
    pub orphan_backend_files: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

/// Who the credentials belong to (sts:GetCallerIdentity needs no permission).
pub async fn caller_identity(clients: &Clients) -> Result<CallerIdentity, AwsError> {
    let output = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|error| {
            let failure = Failure::from_sdk(&error);
            match &clients.profile {
                // The SDK tries every source before it gives up, and its message lists them
                // all (the last, IMDS, often reads first in a terminal): say the cause.
                Some(profile)
                    if failure.is_credentials()
                        && !super::profiles::configured().contains(&profile.to_string()) =>
                {
                    let [config, credentials] = super::profiles::files();
                    AwsError::new(
                        format!("loading the credentials of profile `{profile}`"),
                        format!("profile `{profile}` is not configured: neither {config} nor {credentials} defines it"),
                        Some(format!(
                            "create it (`aws configure --profile {profile}`, or `aws configure sso --profile {profile}`), point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at the files that define it, or name another profile (`profile` in the spec, or --profile)"
                        )),
                    )
                }
                _ => failure.into_error(
                    "looking up who the credentials belong to (sts:GetCallerIdentity)",
                    &clients.identity_source,
                ),
            }
        })?;
    Ok(CallerIdentity {
        account: output.account().unwrap_or_default().to_owned(),
        arn: output.arn().unwrap_or_default().to_owned(),
    })
}

/// Observes a bucket's AWS side, all reads at once. `account` is the caller's: S3 answers
/// HeadBucket with 403 when another account owns the bucket. `on_disk` is read by the caller
/// (files, not AWS) and placed into the result unchanged. `identity_policy` names the inline
/// policy and the principals whose copy of it is read.
pub async fn observe(
    clients: &Clients,
    spec: &EnvSpec,
    account: &str,
    on_disk: OnDisk,
    identity_policy: Option<(&str, &[IamArn])>,
    kms_key_hint: Option<&str>,
) -> Result<Observed, AwsError> {
    let bucket_state = observe_bucket(
        clients,
        spec.bucket.name.as_str(),
        spec.region.as_str(),
        account,
        BucketReads::for_spec(spec),
    );
    let log_bucket = async {
        match &spec.bucket.logging {
            Some(logging) => observe_log_bucket(
                clients,
                logging.bucket.as_str(),
                account,
                spec.region.as_str(),
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    };

    let lock_tables = try_join_all(spec.lock_tables().into_iter().map(|table| async move {
        let arn = super::dynamodb::table_arn(&spec.region, account, table.as_str());
        let state = super::dynamodb::observe_table(
            clients,
            table.as_str(),
            &arn,
            !spec.bucket.tags.is_empty(),
        )
        .await?;
        Ok::<_, AwsError>(state.map(|state| (table.to_string(), state)))
    }));

    let kms_key = observe_kms_key(clients, spec, kms_key_hint);
    let identity_policies = async {
        let Some((name, principals)) = identity_policy else {
            return Ok(Vec::new());
        };
        try_join_all(principals.iter().map(|principal| async move {
            let document = super::iam::read_inline_policy(clients, principal, name).await?;
            Ok::<_, AwsError>((principal.to_string(), document))
        }))
        .await
    };

    let tofu_key = observe_tofu_key(clients, spec);
    let replication = async {
        if spec.bucket.replica.is_none() {
            return Ok(None);
        }
        let role =
            crate::replication::role_arn(spec.region.partition(), account, &spec.bucket.name);
        super::replication::observe(clients, &role, spec.bucket.name.as_str(), account)
            .await
            .map(Some)
    };
    let (bucket_state, log_bucket, lock_tables, kms_key, identity_policies, tofu_key, replication) = tokio::join!(
        bucket_state,
        log_bucket,
        lock_tables,
        kms_key,
        identity_policies,
        tofu_key,
        replication
    );
    let bucket_state = bucket_state?;
    // A key is created only under the apply lock, which lives in the bucket: without the
    // bucket no run can have left a key without its alias, and the search (ListKeys, then
    // the keys' tags: two round trips more) is skipped. From nothing, observing is one round
    // trip.
    let bucket_exists = bucket_state.is_some();
    let (kms_key, tofu_key) = tokio::join!(
        async {
            match kms_key? {
                KeyLookup::Found(state) => Ok(state),
                KeyLookup::AliasMissing if bucket_exists => {
                    find_unaliased_state_key(clients, spec).await
                }
                KeyLookup::AliasMissing => Ok(None),
            }
        },
        async {
            match tofu_key? {
                KeyLookup::Found(state) => Ok(state),
                KeyLookup::AliasMissing if bucket_exists => Ok(Some(
                    match super::kms::find_tagged_key(clients, &tofu_key_tags(spec)).await? {
                        Some((_, arn)) => TofuKeyState::Unaliased { arn },
                        None => TofuKeyState::Missing,
                    },
                )),
                KeyLookup::AliasMissing => Ok(Some(TofuKeyState::Missing)),
            }
        }
    );
    Ok(Observed {
        bucket: bucket_state,
        kms_key: kms_key?,
        backend_files: on_disk.backend_files,
        orphan_backend_files: on_disk.orphan_backend_files,
        identity_policies: identity_policies?,
        lock_tables: lock_tables?.into_iter().flatten().collect(),
        log_bucket: log_bucket?,
        tofu_key: tofu_key?,
        replication: replication?,
    })
}

/// What an alias lookup found. `AliasMissing`: a key statebucket manages has no alias yet;
/// whether an interrupted run left one is for the caller to search, when it can exist.
enum KeyLookup<T> {
    Found(Option<T>),
    AliasMissing,
}

/// OpenTofu's dedicated key, when statebucket manages one: behind its alias, or not aliased.
async fn observe_tofu_key(
    clients: &Clients,
    spec: &EnvSpec,
) -> Result<KeyLookup<TofuKeyState>, AwsError> {
    let Some(TofuEncryption {
        key: Some(KmsKey::Managed(alias)),
        ..
    }) = &spec.tofu_encryption
    else {
        return Ok(KeyLookup::Found(None));
    };
    let Some(arn) = super::kms::aliased_key(clients, alias.as_str()).await? else {
        return Ok(KeyLookup::AliasMissing);
    };
    let rotation_enabled = clients
        .kms
        .get_key_rotation_status()
        .key_id(&arn)
        .send()
        .await
        .map(|output| output.key_rotation_enabled())
        .map_err(|error| {
            Failure::from_sdk(&error).into_error(
                format!("reading rotation of OpenTofu's KMS key {arn}"),
                &clients.identity_source,
            )
        })?;
    Ok(KeyLookup::Found(Some(TofuKeyState::Aliased {
        arn,
        rotation_enabled,
    })))
}

/// Which of a bucket's optional settings to read: logging only when the spec asks for it,
/// and nothing an S3-compatible store lacks (it would answer with an error, or not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketReads {
    pub logging: bool,
    /// Object Lock (GetObjectLockConfiguration), read only when the spec asks for it.
    pub object_lock: bool,
    pub public_access: bool,
    pub ownership: bool,
    pub tags: bool,
}

impl BucketReads {
    pub const ALL: BucketReads = BucketReads {
        logging: true,
        object_lock: true,
        public_access: true,
        ownership: true,
        tags: true,
    };

    pub fn for_spec(spec: &EnvSpec) -> BucketReads {
        BucketReads {
            logging: spec.bucket.logging.is_some(),
            // A replica's always: Object Lock cannot be turned off, and the plan says so
            // when the spec no longer asks for it.
            object_lock: spec.bucket.object_lock.is_some() || spec.replica_of.is_some(),
            public_access: !spec.lacks(StoreFeature::PublicAccessBlock),
            ownership: !spec.lacks(StoreFeature::OwnershipControls),
            tags: !spec.lacks(StoreFeature::Tagging),
        }
    }
}

/// Reads one bucket and its settings, all at once; `None` when it does not exist.
/// `region` is the one to report when S3 does not name it.
pub async fn observe_bucket(
    clients: &Clients,
    bucket: &str,
    region: &str,
    account: &str,
    reads: BucketReads,
) -> Result<Option<BucketState>, AwsError> {
    let identity = clients.identity_source.as_str();
    let s3 = &clients.s3;

    let head = async {
        match s3
            .head_bucket()
            .bucket(bucket)
            .expected_bucket_owner(account)
            .send()
            .await
        {
            Ok(output) => Ok(Some(output.bucket_region().unwrap_or(region).to_owned())),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                match failure.status {
                    Some(404) => Ok(None),
                    // S3 answers a request to the wrong regional endpoint with a redirect
                    // that names the bucket's region.
                    Some(301) if failure.region_header.is_some() => Ok(failure.region_header),
                    Some(403) => Err(AwsError::new(
                        format!("checking bucket `{bucket}` (s3:HeadBucket)"),
                        "access denied (HTTP 403)",
                        Some(format!(
                            "the bucket exists but {identity} may not read it: either another account owns the name (choose another bucket name) or this identity lacks s3:ListBucket on it"
                        )),
                    )),
                    _ => Err(failure.into_error(
                        format!("checking bucket `{bucket}` (s3:HeadBucket)"),
                        identity,
                    )),
                }
            }
        }
    };

    let versioning = async {
        match s3.get_bucket_versioning().bucket(bucket).send().await {
            Ok(output) => Ok(Some(match output.status().map(|status| status.as_str()) {
                Some("Enabled") => Versioning::Enabled,
                Some("Suspended") => Versioning::Suspended,
                _ => Versioning::Never,
            })),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_SUCH_BUCKET,
                "reading versioning",
                bucket,
                identity,
            ),
        }
    };

    let encryption = async {
        match s3.get_bucket_encryption().bucket(bucket).send().await {
            Ok(output) => Ok(Some(
                output
                    .server_side_encryption_configuration()
                    .and_then(|config| {
                        let rule = config.rules().first()?;
                        let default = rule.apply_server_side_encryption_by_default()?;
                        Some(SseRule {
                            algorithm: default.sse_algorithm().as_str().to_owned(),
                            kms_key_id: default.kms_master_key_id().map(str::to_owned),
                            bucket_key: rule.bucket_key_enabled().unwrap_or(false),
                        })
                    }),
            )),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::SSE_NOT_FOUND,
                "reading default encryption",
                bucket,
                identity,
            ),
        }
    };

    let public_access = async {
        if !reads.public_access {
            return Ok(None);
        }
        match s3.get_public_access_block().bucket(bucket).send().await {
            Ok(output) => Ok(Some(
                output
                    .public_access_block_configuration()
                    .map(|config| PublicAccessBlock {
                        block_public_acls: config.block_public_acls().unwrap_or(false),
                        ignore_public_acls: config.ignore_public_acls().unwrap_or(false),
                        block_public_policy: config.block_public_policy().unwrap_or(false),
                        restrict_public_buckets: config.restrict_public_buckets().unwrap_or(false),
                    })
                    .unwrap_or_default(),
            )),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_PUBLIC_ACCESS_BLOCK,
                "reading the public access block",
                bucket,
                identity,
            ),
        }
    };

    let ownership = async {
        if !reads.ownership {
            return Ok(None);
        }
        match s3
            .get_bucket_ownership_controls()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(output) => Ok(Some(
                output
                    .ownership_controls()
                    .and_then(|controls| controls.rules().first())
                    .map(|rule| rule.object_ownership().as_str().to_owned()),
            )),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_OWNERSHIP_CONTROLS,
                "reading object ownership",
                bucket,
                identity,
            ),
        }
    };

    let policy = async {
        match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(output) => Ok(Some(output.policy().map(str::to_owned))),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_BUCKET_POLICY,
                "reading the bucket policy",
                bucket,
                identity,
            ),
        }
    };

    let tags = async {
        if !reads.tags {
            return Ok(None);
        }
        match s3.get_bucket_tagging().bucket(bucket).send().await {
            Ok(output) => Ok(Some(
                output
                    .tag_set()
                    .iter()
                    .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            )),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_TAG_SET,
                "reading tags",
                bucket,
                identity,
            ),
        }
    };

    let lifecycle = async {
        match s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(output) => Ok(Some((
                output
                    .rules()
                    .iter()
                    .map(super::lifecycle::from_sdk)
                    .collect::<Vec<_>>(),
                output
                    .transition_default_minimum_object_size()
                    .map(|size| size.as_str().to_owned()),
            ))),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_LIFECYCLE,
                "reading lifecycle rules",
                bucket,
                identity,
            ),
        }
    };

    let logging = async {
        if !reads.logging {
            return Ok(None);
        }
        match s3.get_bucket_logging().bucket(bucket).send().await {
            Ok(output) => Ok(Some(output.logging_enabled().map(|enabled| {
                LoggingTarget {
                    bucket: enabled.target_bucket().to_owned(),
                    prefix: enabled.target_prefix().to_owned(),
                }
            }))),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_SUCH_BUCKET,
                "reading access logging",
                bucket,
                identity,
            ),
        }
    };
    let object_lock = async {
        if !reads.object_lock {
            return Ok(None);
        }
        match s3
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(output) => Ok(Some(object_lock_state(output.object_lock_configuration()))),
            Err(error) => absent_or(
                Failure::from_sdk(&error),
                codes::NO_OBJECT_LOCK,
                "reading object lock",
                bucket,
                identity,
            ),
        }
    };
    let (
        head,
        versioning,
        encryption,
        public_access,
        ownership,
        policy,
        tags,
        lifecycle,
        logging,
        object_lock,
    ) = tokio::join!(
        head,
        versioning,
        encryption,
        public_access,
        ownership,
        policy,
        tags,
        lifecycle,
        logging,
        object_lock
    );
    let Some(region) = head? else {
        return Ok(None);
    };
    let (lifecycle, lifecycle_minimum_object_size) = lifecycle?.unwrap_or_default();
    Ok(Some(BucketState {
        region,
        versioning: versioning?.unwrap_or(Versioning::Never),
        encryption: encryption?.flatten(),
        public_access: public_access?.unwrap_or_default(),
        ownership: ownership?.flatten(),
        policy: policy?.flatten(),
        tags: tags?.unwrap_or_default(),
        lifecycle,
        lifecycle_minimum_object_size,
        logging: logging?.flatten(),
        // Read and absent: Object Lock is off.
        object_lock: object_lock?.or(reads.object_lock.then_some(ObjectLockState {
            enabled: false,
            default_retention: None,
        })),
    }))
}

fn object_lock_state(
    configuration: Option<&aws_sdk_s3::types::ObjectLockConfiguration>,
) -> ObjectLockState {
    let enabled = configuration
        .and_then(|configuration| configuration.object_lock_enabled())
        .is_some_and(|enabled| enabled.as_str() == "Enabled");
    let default_retention = configuration
        .and_then(|configuration| configuration.rule())
        .and_then(|rule| rule.default_retention())
        .map(|retention| Retention {
            mode: retention
                .mode()
                .map(|mode| mode.as_str().to_owned())
                .unwrap_or_default(),
            // Some servers answer the unit not set with 0.
            days: retention.days().filter(|days| *days != 0),
            years: retention.years().filter(|years| *years != 0),
        });
    ObjectLockState {
        enabled,
        default_retention,
    }
}

/// The log bucket's region and policy, both at once. S3 delivers logs only within one
/// account and region; a bucket of another account answers 403 and counts as missing here.
async fn observe_log_bucket(
    clients: &Clients,
    log_bucket: &str,
    account: &str,
    // Some S3-compatible stores do not send `x-amz-bucket-region`.
    default_region: &str,
) -> Result<LogBucket, AwsError> {
    let identity = clients.identity_source.as_str();
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
                        identity,
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
                        identity,
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

/// `Ok(None)` when the failure is `absent_code` ("not configured") or NoSuchBucket; the
/// error otherwise. The `Some` side is never produced here; it keeps the caller's types uniform.
fn absent_or<T>(
    failure: Failure,
    absent_code: &str,
    doing: &str,
    bucket: &str,
    identity: &str,
) -> Result<Option<T>, AwsError> {
    if failure.is(absent_code) || failure.is(codes::NO_SUCH_BUCKET) {
        Ok(None)
    } else {
        Err(failure.into_error(format!("{doing} of bucket `{bucket}`"), identity))
    }
}

/// `hint`: the key's ARN when the caller already knows it (after an apply), so rotation and
/// the key policy are read at the same time as the alias instead of after it.
async fn observe_kms_key(
    clients: &Clients,
    spec: &EnvSpec,
    hint: Option<&str>,
) -> Result<KeyLookup<KmsKeyState>, AwsError> {
    let Encryption::Kms(key) = &spec.bucket.encryption else {
        return Ok(KeyLookup::Found(None));
    };
    let identity = clients.identity_source.as_str();
    let reference = key.reference();
    let managed = matches!(key, KmsKey::Managed(_));
    let early = async {
        match hint {
            Some(arn) => Some(key_details(clients, arn, managed).await),
            None => None,
        }
    };
    let (described, early) =
        tokio::join!(clients.kms.describe_key().key_id(reference).send(), early);
    let described = match described {
        Ok(output) => output,
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if failure.is(codes::KMS_NOT_FOUND) {
                return Ok(if managed {
                    KeyLookup::AliasMissing
                } else {
                    KeyLookup::Found(None)
                });
            }
            return Err(failure.into_error(
                format!("looking up KMS key `{reference}` (kms:DescribeKey)"),
                identity,
            ));
        }
    };
    let Some(metadata) = described.key_metadata() else {
        return Ok(KeyLookup::Found(None));
    };
    let hinted = hint.is_some_and(|arn| metadata.arn() == Some(arn));
    let (rotation_enabled, policy) = match early {
        Some(details) if hinted => details?,
        _ => key_details(clients, metadata.key_id(), managed).await?,
    };
    Ok(KeyLookup::Found(Some(KmsKeyState {
        arn: metadata.arn().unwrap_or_default().to_owned(),
        id: metadata.key_id().to_owned(),
        state: metadata
            .key_state()
            .map(|state| state.as_str().to_owned())
            .unwrap_or_else(|| "Enabled".to_owned()),
        rotation_enabled,
        aliased: true,
        policy,
    })))
}

/// The state key a run interrupted between CreateKey and CreateAlias left, tagged for this
/// environment.
async fn find_unaliased_state_key(
    clients: &Clients,
    spec: &EnvSpec,
) -> Result<Option<KmsKeyState>, AwsError> {
    let Some((key_id, arn)) = super::kms::find_tagged_key(clients, &kms_key_tags(spec)).await?
    else {
        return Ok(None);
    };
    let (rotation_enabled, policy) = key_details(clients, &key_id, true).await?;
    Ok(Some(KmsKeyState {
        arn,
        id: key_id,
        state: "Enabled".to_owned(),
        rotation_enabled,
        aliased: false,
        policy,
    }))
}

/// Rotation (read only for keys the tool manages) and the key policy, at once. A key policy
/// the caller may not read is a reading, not an error: for a key statebucket did not create
/// the plan says so and goes on.
async fn key_details(
    clients: &Clients,
    key_id: &str,
    managed: bool,
) -> Result<(Option<bool>, KeyPolicyReading), AwsError> {
    let identity = clients.identity_source.as_str();
    let rotation = async {
        if !managed {
            return Ok(None);
        }
        clients
            .kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .map(|output| Some(output.key_rotation_enabled()))
            .map_err(|error| {
                Failure::from_sdk(&error)
                    .into_error(format!("reading rotation of KMS key {key_id}"), identity)
            })
    };
    let policy = async {
        match clients
            .kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send()
            .await
        {
            Ok(output) => Ok(KeyPolicyReading::Read(
                output.policy().unwrap_or_default().to_owned(),
            )),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                if failure.is_denied() {
                    Ok(KeyPolicyReading::Denied(failure.message))
                } else {
                    Err(failure.into_error(
                        format!("reading the key policy of KMS key {key_id} (kms:GetKeyPolicy)"),
                        identity,
                    ))
                }
            }
        }
    };
    let (rotation, policy) = tokio::join!(rotation, policy);
    Ok((rotation?, policy?))
}
