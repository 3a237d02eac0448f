//! Creating the environment's KMS keys, exactly once: CreateKey is not idempotent, so it runs
//! under the apply lock, searches for a key a lost attempt created before trying again, and
//! a key left unused by a race for the alias is reported, never deleted.

use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag as KmsTag};

use super::super::Clients;
use super::super::errors::{AwsError, Explained, Failure, codes};
use crate::plan::{Change, EnvPlan};
use crate::policy::PolicyDocument;

/// Where the environment's key comes from, when the plan creates one.
pub enum NewKey {
    /// Created by this run: id and ARN; its alias and rotation follow.
    Created(String, String),
    /// Created by another run while this one waited for the lock: ARN.
    Found(String),
}

/// OpenTofu's dedicated key: created (tagged, with the account's default key policy) and
/// aliased with rotation on, or an interrupted run's key aliased. Not retried as a whole:
/// `create_key` never sends a second CreateKey without searching for the first.
pub async fn apply_tofu_key(
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

/// A symmetric key for the environment with `policy` as its key policy (or the one an
/// earlier attempt left, whose policy the next plan repairs): its id and ARN. The alias and
/// rotation are the caller's next step.
pub async fn create_key(
    clients: &Clients,
    marker: &str,
    alias: &str,
    description: &str,
    tags: &std::collections::BTreeMap<String, String>,
    policy: &PolicyDocument,
) -> Result<(String, String), AwsError> {
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
    // interrupted before CreateAlias) when the bucket existed; every further attempt searches
    // again first, so a key created by a lost attempt is reused instead of doubled.
    let marker = std::env::temp_dir().join(format!("statebucket-apply-{marker}"));
    if let Some(found) = key_a_killed_run_was_creating(clients, &marker, alias, tags).await? {
        return Ok(found);
    }
    let _ = std::fs::write(&marker, alias);
    let mut delay = std::time::Duration::from_millis(500);
    let mut attempt = 0;
    let (key_id, arn) = loop {
        attempt += 1;
        if attempt > 1
            && let Some(found) = super::find_tagged_key(clients, tags).await?
        {
            tracing::debug!(%alias, key = %found.1, "reusing the key created earlier for this environment");
            break found;
        }
        tracing::debug!(%alias, attempt, "creating KMS key");
        let sent = kms
            .create_key()
            .description(description)
            .policy(policy.to_compact_json())
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
                        failure.into_error(format!("creating the KMS key for {alias}"), clients)
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

/// A run killed while its CreateKey was on the wire leaves `marker` behind (apply holds the
/// bucket's lock, so no other run on this machine writes it). That CreateKey can still take
/// effect after a search, so it is given time to show up (about 8 s) before another key is
/// made.
async fn key_a_killed_run_was_creating(
    clients: &Clients,
    marker: &std::path::Path,
    alias: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<Option<(String, String)>, AwsError> {
    if !marker.exists() {
        return Ok(None);
    }
    let mut wait = std::time::Duration::from_millis(250);
    for _ in 0..5 {
        tokio::time::sleep(wait).await;
        if let Some(found) = super::find_tagged_key(clients, tags).await? {
            tracing::debug!(%alias, key = %found.1, "found the key an interrupted run was creating");
            let _ = std::fs::remove_file(marker);
            return Ok(Some(found));
        }
        wait *= 2;
    }
    Ok(None)
}

/// Points `alias` at the key and turns rotation on, at once. If another run created the
/// alias first, that run's key is the environment's key; ours is left (never deleted), and
/// the warning returned says so.
pub async fn alias_and_rotation(
    clients: &Clients,
    alias: &str,
    key_id: &str,
    arn: &str,
) -> Result<Option<String>, AwsError> {
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
                    return Err(failure.into_error(format!("creating alias {alias}"), clients));
                }
                let existing = kms
                    .describe_key()
                    .key_id(alias)
                    .send()
                    .await
                    .explained(clients, || format!("looking up {alias}"))?;
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
            .explained(clients, || {
                format!("enabling rotation of the key for {alias}")
            })
    };
    let (warning, ()) = tokio::try_join!(alias_step, rotation_step)?;
    Ok(warning)
}

/// A setting of an existing key: its alias (an interrupted run's key), its policy, its
/// rotation.
pub async fn write_key_setting(
    clients: &Clients,
    change: &Change,
) -> Result<Option<String>, AwsError> {
    match change {
        Change::AliasKmsKey { alias, key_arn } => {
            alias_and_rotation(clients, alias, key_arn, key_arn).await
        }
        Change::PutKeyPolicy { key_arn, to, .. } => clients
            .kms
            .put_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .policy(to.to_json())
            .send()
            .await
            .map(|_| None)
            .explained(clients, || {
                format!("writing the key policy of KMS key {key_arn}")
            }),
        Change::EnableKeyRotation { key_arn } => clients
            .kms
            .enable_key_rotation()
            .key_id(key_arn)
            .send()
            .await
            .map(|_| None)
            .explained(clients, || {
                format!("enabling rotation of KMS key {key_arn}")
            }),
        _ => Ok(None),
    }
}
