//! Reading the environment's KMS keys: the state key behind its alias (with rotation and key
//! policy), OpenTofu's dedicated key, and a key an interrupted run left without its alias.

use super::super::Clients;
use super::super::errors::{AwsError, Explained, Failure, codes};
use crate::desired::{kms_key_tags, tofu_key_tags};
use crate::observed::{KeyPolicyReading, ObservedKey, ObservedTofuKey};
use crate::spec::{Encryption, EnvSpec, KmsKey, TofuEncryption};

/// What an alias lookup found. `AliasMissing`: a key statebucket manages has no alias yet;
/// whether an interrupted run left one is for the caller to search, when it can exist.
pub enum KeyLookup<T> {
    Found(Option<T>),
    AliasMissing,
}

/// The keys whose alias is missing, searched for when an interrupted run can have left them.
/// A key is created only under the apply lock, which lives in the bucket: without the bucket
/// no run can have left a key without its alias, and the search (ListKeys, then the keys'
/// tags: two round trips more) is skipped. From nothing, observing is one round trip.
pub async fn resolve_lookups(
    clients: &Clients,
    spec: &EnvSpec,
    (state_key, tofu_key): (KeyLookup<ObservedKey>, KeyLookup<ObservedTofuKey>),
    bucket_exists: bool,
) -> Result<(Option<ObservedKey>, Option<ObservedTofuKey>), AwsError> {
    let state_key = async {
        match state_key {
            KeyLookup::Found(state) => Ok(state),
            KeyLookup::AliasMissing if bucket_exists => unaliased_state_key(clients, spec).await,
            KeyLookup::AliasMissing => Ok(None),
        }
    };
    let tofu_key = async {
        match tofu_key {
            KeyLookup::Found(state) => Ok(state),
            KeyLookup::AliasMissing if bucket_exists => Ok(Some(
                match super::find_tagged_key(clients, &tofu_key_tags(spec)).await? {
                    Some((_, arn)) => ObservedTofuKey::Unaliased { arn },
                    None => ObservedTofuKey::Missing,
                },
            )),
            KeyLookup::AliasMissing => Ok(Some(ObservedTofuKey::Missing)),
        }
    };
    tokio::try_join!(state_key, tofu_key)
}

/// OpenTofu's dedicated key, when statebucket manages one: behind its alias, or not aliased.
pub async fn tofu_key(
    clients: &Clients,
    spec: &EnvSpec,
) -> Result<KeyLookup<ObservedTofuKey>, AwsError> {
    let Some(TofuEncryption {
        key: Some(KmsKey::Managed(alias)),
        ..
    }) = &spec.tofu_encryption
    else {
        return Ok(KeyLookup::Found(None));
    };
    let Some(arn) = super::aliased_key(clients, alias.as_str()).await? else {
        return Ok(KeyLookup::AliasMissing);
    };
    let rotation_enabled = clients
        .kms
        .get_key_rotation_status()
        .key_id(&arn)
        .send()
        .await
        .map(|output| output.key_rotation_enabled())
        .explained(clients, || {
            format!("reading rotation of OpenTofu's KMS key {arn}")
        })?;
    Ok(KeyLookup::Found(Some(ObservedTofuKey::Aliased {
        arn,
        rotation_enabled,
    })))
}

/// `hint`: the key's ARN when the caller already knows it (after an apply), so rotation and
/// the key policy are read at the same time as the alias instead of after it.
pub async fn state_key(
    clients: &Clients,
    spec: &EnvSpec,
    hint: Option<&str>,
) -> Result<KeyLookup<ObservedKey>, AwsError> {
    let Encryption::Kms(key) = &spec.bucket.encryption else {
        return Ok(KeyLookup::Found(None));
    };
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
                clients,
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
    Ok(KeyLookup::Found(Some(ObservedKey {
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
pub async fn unaliased_state_key(
    clients: &Clients,
    spec: &EnvSpec,
) -> Result<Option<ObservedKey>, AwsError> {
    let Some((key_id, arn)) = super::find_tagged_key(clients, &kms_key_tags(spec)).await? else {
        return Ok(None);
    };
    let (rotation_enabled, policy) = key_details(clients, &key_id, true).await?;
    Ok(Some(ObservedKey {
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
            .explained(clients, || format!("reading rotation of KMS key {key_id}"))
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
                        clients,
                    ))
                }
            }
        }
    };
    let (rotation, policy) = tokio::join!(rotation, policy);
    Ok((rotation?, policy?))
}
