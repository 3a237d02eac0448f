//! What `statebucket state` asks S3 and DynamoDB: a state object's versions and their
//! content, Terraform's state lock (taken and released exactly as Terraform's S3 backend
//! does), the copy of one version onto the key, and the lock table's digest item. What is
//! shown and decided is in `crate::tfstate`.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_smithy_types::date_time::Format;
use futures::stream::{self, StreamExt};

use super::Clients;
use super::errors::{AwsError, Explained, Failure, codes};
use crate::tfstate::StatePath;

mod terraform_lock;

pub use terraform_lock::*;

/// One entry of the state object's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub version_id: String,
    /// RFC 3339.
    pub last_modified: String,
    pub size: i64,
    pub is_latest: bool,
    /// A delete marker hides the versions before it; it has no content.
    pub delete_marker: bool,
}

/// The state object's versions and delete markers, newest first, at most `limit`; `true`
/// when older ones exist beyond it.
pub async fn versions(
    clients: &Clients,
    path: &StatePath,
    limit: usize,
) -> Result<(Vec<ObjectVersion>, bool), AwsError> {
    let doing = || format!("listing the versions of {path} (s3:ListBucketVersions)");
    let mut found: Vec<ObjectVersion> = Vec::new();
    let mut markers: (Option<String>, Option<String>) = (None, None);
    loop {
        let page = clients
            .s3
            .list_object_versions()
            .bucket(&path.bucket)
            .prefix(&path.key)
            .set_key_marker(markers.0.clone())
            .set_version_id_marker(markers.1.clone())
            .send()
            .await
            .explained(clients, doing)?;
        let mut past_the_key = false;
        for version in page.versions() {
            if version.key() == Some(path.key.as_str()) {
                found.push(ObjectVersion {
                    version_id: version.version_id().unwrap_or("null").to_owned(),
                    last_modified: rfc3339(version.last_modified()),
                    size: version.size().unwrap_or_default(),
                    is_latest: version.is_latest().unwrap_or_default(),
                    delete_marker: false,
                });
            } else {
                past_the_key = true;
            }
        }
        for marker in page.delete_markers() {
            if marker.key() == Some(path.key.as_str()) {
                found.push(ObjectVersion {
                    version_id: marker.version_id().unwrap_or("null").to_owned(),
                    last_modified: rfc3339(marker.last_modified()),
                    size: 0,
                    is_latest: marker.is_latest().unwrap_or_default(),
                    delete_marker: true,
                });
            } else {
                past_the_key = true;
            }
        }
        // A page holds whole stretches of S3's order (key, then newest first), split into
        // versions and delete markers: after each page the newest entries are complete.
        let more = page.is_truncated().unwrap_or_default();
        if !more || past_the_key || found.len() > limit {
            found.sort_by(|a, b| {
                b.last_modified
                    .cmp(&a.last_modified)
                    .then(b.is_latest.cmp(&a.is_latest))
            });
            let beyond = found.len() > limit || (more && !past_the_key);
            found.truncate(limit);
            return Ok((found, beyond));
        }
        markers = (
            page.next_key_marker().map(str::to_owned),
            page.next_version_id_marker().map(str::to_owned),
        );
    }
}

/// RFC 3339 to the second, the width of a column.
fn rfc3339(time: Option<&aws_smithy_types::DateTime>) -> String {
    time.and_then(|time| {
        aws_smithy_types::DateTime::from_secs(time.secs())
            .fmt(Format::DateTime)
            .ok()
    })
    .unwrap_or_default()
}

/// What one version id holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionContent {
    Content(Vec<u8>),
    /// No such version of this key.
    Missing,
    /// A delete marker: no content (S3 answers its GET with 405).
    DeleteMarker,
}

/// The content of one version.
pub async fn read_version(
    clients: &Clients,
    path: &StatePath,
    version_id: &str,
) -> Result<VersionContent, AwsError> {
    match clients
        .s3
        .get_object()
        .bucket(&path.bucket)
        .key(&path.key)
        .version_id(version_id)
        .send()
        .await
    {
        Ok(output) => body(output.body, path).await.map(VersionContent::Content),
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if failure.is(codes::METHOD_NOT_ALLOWED) || failure.status == Some(405) {
                Ok(VersionContent::DeleteMarker)
            } else if failure.is(codes::NO_SUCH_VERSION)
                || failure.is(codes::NO_SUCH_KEY)
                || failure.status == Some(404)
                // S3 answers an id that cannot be a version id with InvalidArgument.
                || (failure.is(codes::INVALID_ARGUMENT)
                    && failure.message.to_lowercase().contains("version"))
            {
                Ok(VersionContent::Missing)
            } else {
                Err(failure.into_error(
                    format!("reading version {version_id} of {path} (s3:GetObjectVersion)"),
                    clients,
                ))
            }
        }
    }
}

/// Up to eight reads at once: a state can be large, and many are read.
pub const READ_CONCURRENCY: usize = 8;

/// The content of each version (delete markers have none), in the order given.
pub async fn read_versions(
    clients: &Clients,
    path: &StatePath,
    versions: &[ObjectVersion],
) -> Vec<Result<VersionContent, AwsError>> {
    stream::iter(versions)
        .map(|version| async move {
            if version.delete_marker {
                Ok(VersionContent::DeleteMarker)
            } else {
                read_version(clients, path, &version.version_id).await
            }
        })
        .buffered(READ_CONCURRENCY)
        .collect()
        .await
}

async fn body(stream: ByteStream, path: &StatePath) -> Result<Vec<u8>, AwsError> {
    stream
        .collect()
        .await
        .map(|bytes| bytes.into_bytes().to_vec())
        .map_err(|error| {
            AwsError::new(
                format!("reading {path}"),
                error.to_string(),
                Some("the connection broke while the state was read; run again".into()),
            )
        })
}

/// How the current state is encrypted: a restored copy is encrypted the same way (the KMS
/// key is kept), as is Terraform's lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectEncryption {
    pub algorithm: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub bucket_key: Option<bool>,
}

impl ObjectEncryption {
    pub fn describe(&self) -> String {
        match (&self.algorithm, &self.kms_key_id) {
            (Some(ServerSideEncryption::AwsKms), Some(key)) => format!("aws:kms with {key}"),
            (Some(algorithm), _) => algorithm.as_str().to_owned(),
            (None, _) => "the bucket's default encryption".to_owned(),
        }
    }
}

/// The current version of the state object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentState {
    pub version_id: String,
    pub content: Vec<u8>,
    pub encryption: ObjectEncryption,
}

/// The state as it is now; `None` when the key has no current version.
pub async fn current(
    clients: &Clients,
    path: &StatePath,
) -> Result<Option<CurrentState>, AwsError> {
    match clients
        .s3
        .get_object()
        .bucket(&path.bucket)
        .key(&path.key)
        .send()
        .await
    {
        Ok(output) => {
            let version_id = output.version_id().unwrap_or("null").to_owned();
            let encryption = ObjectEncryption {
                algorithm: output.server_side_encryption().cloned(),
                kms_key_id: output.ssekms_key_id().map(str::to_owned),
                bucket_key: output.bucket_key_enabled(),
            };
            Ok(Some(CurrentState {
                version_id,
                content: body(output.body, path).await?,
                encryption,
            }))
        }
        Err(error) => no_current_version(Failure::from_sdk(&error), clients, path),
    }
}

/// The current version's id, or `None` without one: checked again under the lock.
pub async fn current_version_id(
    clients: &Clients,
    path: &StatePath,
) -> Result<Option<String>, AwsError> {
    match crate::aws::probe::head_object(clients, &path.bucket, &path.key).await {
        Ok(head) => Ok(head.map(|head| head.version_id().unwrap_or("null").to_owned())),
        Err(failure) => no_current_version(failure, clients, path),
    }
}

/// A read of the current state that failed: `None` when the key has no current version
/// (NoSuchKey, or a bare 404 as HeadObject answers), the error otherwise.
fn no_current_version<T>(
    failure: Failure,
    clients: &Clients,
    path: &StatePath,
) -> Result<Option<T>, AwsError> {
    if failure.is(codes::NO_SUCH_KEY) || failure.status == Some(404) {
        return Ok(None);
    }
    Err(failure.into_error(
        format!("reading the current state {path} (s3:GetObject)"),
        clients,
    ))
}

/// `CopyObject`'s source: `bucket/key?versionId=id`, URL-encoded (`/` kept in the key).
pub fn copy_source(path: &StatePath, version_id: &str) -> String {
    format!(
        "{}/{}?versionId={}",
        path.bucket,
        percent_encode(&path.key, true),
        percent_encode(version_id, false)
    )
}

fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte);
        if unreserved || (keep_slash && byte == b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Copies `version_id` onto the key: its content becomes a new current version, encrypted
/// as `encryption` says; no version is removed. The new version's id.
pub async fn restore_version(
    clients: &Clients,
    path: &StatePath,
    version_id: &str,
    encryption: &ObjectEncryption,
) -> Result<String, AwsError> {
    let request = clients
        .s3
        .copy_object()
        .bucket(&path.bucket)
        .key(&path.key)
        .copy_source(copy_source(path, version_id))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Copy);
    let request = match &encryption.algorithm {
        Some(algorithm) => request
            .server_side_encryption(algorithm.clone())
            .set_ssekms_key_id(encryption.kms_key_id.clone())
            .set_bucket_key_enabled(encryption.bucket_key),
        None => request,
    };
    let output = request.send().await.explained(clients, || {
        format!("copying version {version_id} onto {path} (s3:GetObjectVersion, s3:PutObject)")
    })?;
    Ok(output.version_id().unwrap_or("null").to_owned())
}

/// Writes the digest item Terraform checks the state against (`<bucket>/<key>-md5`).
pub async fn put_digest(
    clients: &Clients,
    path: &StatePath,
    table: &str,
    digest: &str,
) -> Result<(), AwsError> {
    clients
        .dynamodb
        .put_item()
        .table_name(table)
        .item("LockID", AttributeValue::S(path.digest_id()))
        .item("Digest", AttributeValue::S(digest.to_owned()))
        .send()
        .await
        .map(drop)
        .explained(clients, || {
            format!(
                "updating the state digest {} in DynamoDB table {table} (dynamodb:PutItem)",
                path.digest_id()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_source_is_url_encoded_with_its_version() {
        let path = StatePath {
            bucket: "my-state".into(),
            key: "env:/staging/app state/terraform.tfstate".into(),
        };
        assert_eq!(
            copy_source(&path, "3/L4kqtJl+cpXroDTDmJ=rmSpXd3dIbrHY"),
            "my-state/env%3A/staging/app%20state/terraform.tfstate?versionId=3%2FL4kqtJl%2BcpXroDTDmJ%3DrmSpXd3dIbrHY"
        );
    }
}
