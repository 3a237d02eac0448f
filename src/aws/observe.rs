//! Reads everything a bucket's plan depends on, once per bucket whatever its number of
//! stacks. The engine first asks who the credentials belong to (so a wrong account or
//! missing credentials stop the run after one call, before anything else is touched);
//! `observe` then reads the bucket, its settings, the lock tables and the KMS key all at
//! once: one round trip for AES256, two with a KMS key (its rotation status and key policy
//! need the key id first).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Clients;
use super::bucket::{BucketAt, BucketReads};
use super::errors::{AwsError, Failure};
use crate::observed::Observed;
use crate::spec::{EnvSpec, IamArn, StoreFeature};
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

impl CallerIdentity {
    /// STS's answer to GetCallerIdentity.
    pub(super) fn of(
        output: &aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput,
    ) -> CallerIdentity {
        CallerIdentity {
            account: output.account().unwrap_or_default().to_owned(),
            arn: output.arn().unwrap_or_default().to_owned(),
        }
    }
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
                    clients,
                ),
            }
        })?;
    Ok(CallerIdentity::of(&output))
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
    let bucket = BucketAt::new(clients, spec.bucket.name.as_str(), account);
    let bucket_state =
        super::bucket::observe_bucket(bucket, spec.region.as_str(), bucket_reads(spec));
    let log_bucket = async {
        match &spec.bucket.logging {
            Some(logging) => super::bucket::logging::observe_log_bucket(
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

    let kms_key = super::kms::observe::state_key(clients, spec, kms_key_hint);
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

    let tofu_key = super::kms::observe::tofu_key(clients, spec);
    let replication = async {
        if spec.bucket.replica.is_none() {
            return Ok(None);
        }
        let role =
            crate::replication::role_arn(spec.region.partition(), account, &spec.bucket.name);
        super::replication::observe(bucket, &role).await.map(Some)
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
    let (kms_key, tofu_key) = super::kms::observe::resolve_lookups(
        clients,
        spec,
        (kms_key?, tofu_key?),
        bucket_state.is_some(),
    )
    .await?;
    Ok(Observed {
        bucket: bucket_state,
        kms_key,
        backend_files: on_disk.backend_files,
        orphan_backend_files: on_disk.orphan_backend_files,
        identity_policies: identity_policies?,
        lock_tables: lock_tables?.into_iter().flatten().collect(),
        log_bucket: log_bucket?,
        tofu_key,
        replication: replication?,
    })
}

/// The settings `observe_bucket` reads for `spec`: nothing the store lacks, logging only when
/// asked.
fn bucket_reads(spec: &EnvSpec) -> BucketReads {
    BucketReads {
        logging: spec.bucket.logging.is_some(),
        // A replica's always: Object Lock cannot be turned off, and the plan says so when the
        // spec no longer asks for it.
        object_lock: spec.bucket.object_lock.is_some() || spec.replica_of.is_some(),
        public_access: !spec.lacks(StoreFeature::PublicAccessBlock),
        ownership: !spec.lacks(StoreFeature::OwnershipControls),
        tags: !spec.lacks(StoreFeature::Tagging),
    }
}
