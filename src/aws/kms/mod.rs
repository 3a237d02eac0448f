//! Finding a key statebucket created for an environment when its alias is missing: a run
//! that was killed (or timed out) between CreateKey and CreateAlias left the key behind, and
//! creating another would leave two paid keys for one environment.

pub mod create;
pub mod observe;

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};

use super::Clients;
use super::errors::{AwsError, Explained, Failure};

/// The first enabled key carrying every one of `tags`; `None` when there is none. Walks
/// ListKeys, then ListResourceTags of up to 32 keys at once (one round trip for most
/// accounts): only done when the alias is missing, never on a converged run.
pub async fn find_tagged_key(
    clients: &Clients,
    tags: &BTreeMap<String, String>,
) -> Result<Option<(String, String)>, AwsError> {
    let mut key_ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .kms
            .list_keys()
            .set_marker(marker.clone())
            .send()
            .await
            .explained(clients, || {
                "listing KMS keys to find one created earlier for this environment".to_owned()
            })?;
        key_ids.extend(
            page.keys()
                .iter()
                .filter_map(|key| key.key_id().map(str::to_owned)),
        );
        match (page.truncated(), page.next_marker()) {
            (true, Some(next)) => marker = Some(next.to_owned()),
            _ => break,
        }
    }
    // A key whose tags could not be read must not count as "not ours": that is how a second
    // key gets created. Any failure (after the SDK's retries) fails the search.
    let tagged: Vec<Result<Option<String>, AwsError>> = stream::iter(key_ids)
        .map(|key_id| async move {
            let listed = clients
                .kms
                .list_resource_tags()
                .key_id(&key_id)
                .send()
                .await
                .explained(clients, || format!("reading the tags of KMS key {key_id}"))?;
            let all_match = tags.iter().all(|(key, value)| {
                listed
                    .tags()
                    .iter()
                    .any(|tag| tag.tag_key() == key && tag.tag_value() == value)
            });
            Ok(all_match.then_some(key_id))
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let tagged: Vec<Option<String>> = tagged.into_iter().collect::<Result<_, _>>()?;
    for key_id in tagged.into_iter().flatten() {
        let described = clients
            .kms
            .describe_key()
            .key_id(&key_id)
            .send()
            .await
            .explained(clients, || format!("describing KMS key {key_id}"))?;
        if let Some(metadata) = described.key_metadata()
            && metadata
                .key_state()
                .is_some_and(|state| state.as_str() == "Enabled")
        {
            return Ok(Some((
                metadata.key_id().to_owned(),
                metadata.arn().unwrap_or_default().to_owned(),
            )));
        }
    }
    Ok(None)
}

/// The ARN of the key `alias` names, or `None` when the alias does not exist.
pub async fn aliased_key(clients: &Clients, alias: &str) -> Result<Option<String>, AwsError> {
    match clients.kms.describe_key().key_id(alias).send().await {
        Ok(output) => Ok(output
            .key_metadata()
            .and_then(|metadata| metadata.arn())
            .map(str::to_owned)),
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if failure.is(super::errors::codes::KMS_NOT_FOUND) {
                Ok(None)
            } else {
                Err(failure.into_error(
                    format!("looking up KMS key {alias} (kms:DescribeKey)"),
                    clients,
                ))
            }
        }
    }
}
