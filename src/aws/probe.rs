//! What `doctor` asks AWS, as the identity a backend.hcl makes Terraform use: the calls
//! Terraform's S3 backend makes, each answered with what happened in one line. The checks
//! built from the answers are `doctor`'s.

use aws_sdk_s3::config::RequestChecksumCalculation;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::Clients;
use super::errors::{Failure, codes};

/// A call that failed: in one line (`HTTP 403 AccessDenied`, `HTTP 404`, or the cause),
/// and whether the store itself failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub short: String,
    /// HTTP 5xx (but 501): the store failed, with its message and request id. Not a
    /// permission to grant.
    pub store_failure: Option<String>,
}

impl Refusal {
    pub fn new(short: impl Into<String>) -> Refusal {
        Refusal {
            short: short.into(),
            store_failure: None,
        }
    }

    fn of(failure: &Failure) -> Refusal {
        Refusal {
            short: failure.short(),
            store_failure: failure
                .is_store_failure()
                .then(|| format!("{}{}", failure.message, failure.request_id_note())),
        }
    }

    /// What to do about it: `permission` when access was refused, a look at the store when
    /// the store failed.
    pub fn fix(&self, permission: String) -> String {
        match &self.store_failure {
            Some(_) => "the store failed: this is not a permission problem. Check the store's logs and health; a store asked for default encryption it cannot do fails every PutObject (SeaweedFS needs WEED_S3_SSE_KEK), so turn that encryption off or configure the store for it".to_owned(),
            None => permission,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.store_failure {
            Some(detail) => write!(f, "{} ({detail})", self.short),
            None => f.write_str(&self.short),
        }
    }
}

fn refusal<E>(
    error: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Refusal
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Refusal::of(&Failure::from_sdk(error))
}

/// ListObjectsV2 of `prefix`, as Terraform lists workspaces.
pub async fn list(clients: &Clients, bucket: &str, prefix: &str) -> Result<(), Refusal> {
    clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .max_keys(1)
        .send()
        .await
        .map(drop)
        .map_err(|error| refusal(&error))
}

/// HeadObject: the object's size, or `None` when it does not exist (404; with
/// `s3:ListBucket`, S3 tells a missing object from a forbidden one).
pub async fn head(clients: &Clients, bucket: &str, key: &str) -> Result<Option<i64>, Refusal> {
    head_object(clients, bucket, key)
        .await
        .map(|head| head.map(|head| head.content_length().unwrap_or_default()))
        .map_err(|failure| Refusal::of(&failure))
}

/// HeadObject's answer, or `None` when the object does not exist (404).
pub(crate) async fn head_object(
    clients: &Clients,
    bucket: &str,
    key: &str,
) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>, Failure> {
    match clients
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(head) => Ok(Some(head)),
        Err(error) => match Failure::from_sdk(&error) {
            failure if failure.status == Some(404) => Ok(None),
            failure => Err(failure),
        },
    }
}

pub async fn get(clients: &Clients, bucket: &str, key: &str) -> Result<(), Refusal> {
    clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map(drop)
        .map_err(|error| refusal(&error))
}

/// The bucket's policy (`None` when it has none).
pub async fn bucket_policy(clients: &Clients, bucket: &str) -> Result<Option<String>, Refusal> {
    match clients.s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(output) => Ok(output.policy().map(str::to_owned)),
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if failure.is(codes::NO_BUCKET_POLICY) {
                Ok(None)
            } else {
                Err(Refusal {
                    short: failure.message.clone(),
                    ..Refusal::of(&failure)
                })
            }
        }
    }
}

/// How the probe lock is encrypted: as Terraform's lock file is, with the backend's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockEncryption {
    None,
    Aes256,
    Kms(String),
}

/// Probe lock objects that exist right now, so that an interrupt can remove them: a probe
/// must never be left behind. Also what this run swept of abandoned probe locks, once per
/// bucket and prefix however many stacks share them.
#[derive(Debug, Clone, Default)]
pub struct Leftovers {
    objects: Arc<Mutex<Vec<(aws_sdk_s3::Client, String, String)>>>,
    swept: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Leftovers {
    /// Whether `prefix` of `bucket` is yet to be swept in this run: true the first time.
    fn first_sweep(&self, bucket: &str, prefix: &str) -> bool {
        self.swept
            .lock()
            .expect("swept prefixes lock")
            .insert((bucket.to_owned(), prefix.to_owned()))
    }

    fn hold(&self, clients: &Clients, bucket: &str, key: &str) {
        self.objects.lock().expect("leftovers lock").push((
            clients.s3.clone(),
            bucket.to_owned(),
            key.to_owned(),
        ));
    }

    fn release(&self, bucket: &str, key: &str) {
        self.objects
            .lock()
            .expect("leftovers lock")
            .retain(|(_, held_bucket, held_key)| held_bucket != bucket || held_key != key);
    }

    /// Deletes every probe object still held (on Ctrl-C).
    pub async fn remove_all(&self) {
        let held = std::mem::take(&mut *self.objects.lock().expect("leftovers lock"));
        for (s3, bucket, key) in held {
            let _ = s3.delete_object().bucket(&bucket).key(&key).send().await;
        }
    }
}

/// The outcome of taking and releasing a probe lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockProbe {
    pub key: String,
    pub taken: Result<(), Refusal>,
    /// A second conditional PutObject of the lock while it is held, as a second Terraform
    /// run sends it: `Ok(true)` refused as S3 refuses it (412 PreconditionFailed, or 409
    /// ConditionalRequestConflict), `Ok(false)` accepted. `None` when the lock was not taken.
    pub exclusive: Option<Result<bool, Refusal>>,
    /// `None` when the lock was not taken.
    pub released: Option<Result<(), Refusal>>,
}

/// A probe lock older than this was left by a run that ended without releasing it (killed,
/// or its machine lost): a probe releases its lock within seconds. A younger one is another
/// probe at work (another stack's in this run, or another doctor run's) and is left alone:
/// deleting it would let that probe's second conditional PUT through, and it would report
/// that the store cannot keep two runs apart.
const ABANDONED_AFTER: Duration = Duration::from_secs(10 * 60);

/// Whether a probe lock last written at `written` was abandoned.
fn abandoned(written: Option<&aws_smithy_types::DateTime>, now: SystemTime) -> bool {
    written
        .and_then(|written| SystemTime::try_from(*written).ok())
        .and_then(|written| now.duration_since(written).ok())
        .is_some_and(|age| age > ABANDONED_AFTER)
}

/// Removes the probe locks interrupted runs abandoned under `prefix`; a listing refused
/// leaves them (the probe reports what matters: its own lock).
async fn remove_abandoned(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
    let Ok(listing) = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
    else {
        return;
    };
    let now = SystemTime::now();
    for object in listing.contents() {
        if let Some(leftover) = object
            .key()
            .filter(|name| name.ends_with(".tflock"))
            .filter(|_| abandoned(object.last_modified(), now))
        {
            let _ = s3.delete_object().bucket(bucket).key(leftover).send().await;
        }
    }
}

/// Takes a lock the way Terraform does (a conditional PutObject, `If-None-Match: *`, with
/// the state's encryption) on a probe object under `prefix`, and releases it (DeleteObject).
/// Probes an interrupted run abandoned under `prefix` are removed first (once per run).
pub async fn lock(
    clients: &Clients,
    bucket: &str,
    prefix: &str,
    key: &str,
    encryption: &LockEncryption,
    checksum: bool,
    leftovers: &Leftovers,
) -> LockProbe {
    let s3 = &clients.s3;
    if leftovers.first_sweep(bucket, prefix) {
        remove_abandoned(s3, bucket, prefix).await;
    }
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let probe_key = format!("{prefix}{}-{nonce}/{key}.tflock", std::process::id());
    // Without Terraform's SHA-256 checksum, no checksum at all (not even the SDK's default
    // CRC32), as Terraform sends with `skip_s3_checksum = true`.
    let calculation = if checksum {
        RequestChecksumCalculation::WhenSupported
    } else {
        RequestChecksumCalculation::WhenRequired
    };
    let take = || {
        let mut request = s3
            .put_object()
            .bucket(bucket)
            .key(&probe_key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from_static(
                b"{\"Info\":\"statebucket doctor lock probe\"}",
            ));
        if checksum {
            request = request.checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256);
        }
        request = match encryption {
            LockEncryption::None => request,
            LockEncryption::Aes256 => request.server_side_encryption(ServerSideEncryption::Aes256),
            LockEncryption::Kms(key_id) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id),
        };
        request
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::default().request_checksum_calculation(calculation),
            )
            .send()
    };
    leftovers.hold(clients, bucket, &probe_key);
    let taken = take().await.map(drop).map_err(|error| refusal(&error));
    let exclusive = match &taken {
        Ok(()) => Some(match take().await {
            Ok(_) => Ok(false),
            Err(error) => {
                let failure = Failure::from_sdk(&error);
                if failure.is_condition_refused() {
                    Ok(true)
                } else {
                    Err(Refusal::of(&failure))
                }
            }
        }),
        Err(_) => None,
    };
    let released = match &taken {
        Ok(()) => Some(
            s3.delete_object()
                .bucket(bucket)
                .key(&probe_key)
                .send()
                .await
                .map(drop)
                .map_err(|error| refusal(&error)),
        ),
        Err(_) => None,
    };
    if released.as_ref().is_none_or(Result::is_ok) {
        leftovers.release(bucket, &probe_key);
    }
    LockProbe {
        key: probe_key,
        taken,
        exclusive,
        released,
    }
}

/// GetItem of `lock_id` in the lock table, as Terraform reads the state digest.
pub async fn lock_table_item(clients: &Clients, table: &str, lock_id: &str) -> Result<(), Refusal> {
    clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S(lock_id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .map(drop)
        .map_err(|error| Refusal::of(&Failure::from_sdk(&error)))
}

/// Which step of the KMS round trip failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsRefusal {
    GenerateDataKey(Refusal),
    Decrypt(Refusal),
}

/// GenerateDataKey then Decrypt with the key: what S3 does to write and read SSE-KMS state.
pub async fn kms_round_trip(clients: &Clients, key_id: &str) -> Result<(), KmsRefusal> {
    let generated = clients
        .kms
        .generate_data_key()
        .key_id(key_id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .map_err(|error| KmsRefusal::GenerateDataKey(Refusal::of(&Failure::from_sdk(&error))))?;
    let blob = generated.ciphertext_blob().cloned().ok_or_else(|| {
        KmsRefusal::GenerateDataKey(Refusal::new("GenerateDataKey returned no ciphertext"))
    })?;
    clients
        .kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .map(drop)
        .map_err(|error| KmsRefusal::Decrypt(Refusal::of(&Failure::from_sdk(&error))))
}
