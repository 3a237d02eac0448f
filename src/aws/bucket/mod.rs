//! A bucket in the AWS shell, one facet a file: each file reads its setting (for
//! `observe`) and writes it (for `apply`). Adding a bucket setting adds a file here, its
//! read to `observe_bucket`, its write to `write_setting`, and its `plan/<facet>.rs`.

mod encryption;
pub mod lifecycle;
pub mod logging;
pub mod object_lock;
mod ownership;
mod policy;
mod public_access;
mod settings;
mod tags;
mod versioning;

use std::future::Future;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, ObjectOwnership};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Clients;
use super::errors::{AwsError, Failure, codes, read_or_absent};
use crate::observed::ObservedBucket;
use crate::plan::{Change, Facet};

pub use settings::{reread, rereadable, until_settled};
pub use tags::s3_tags;

/// One bucket, as the account that owns it reaches it. S3 requests carry `account` as the
/// expected bucket owner, so that a bucket of the same name in another account is never
/// read as ours nor modified.
#[derive(Clone, Copy)]
pub struct BucketAt<'a> {
    pub clients: &'a Clients,
    pub name: &'a str,
    pub account: &'a str,
}

impl<'a> BucketAt<'a> {
    pub fn new(clients: &'a Clients, name: &'a str, account: &'a str) -> Self {
        BucketAt {
            clients,
            name,
            account,
        }
    }

    fn s3(&self) -> &aws_sdk_s3::Client {
        &self.clients.s3
    }
}

/// A setting's GET: `Some` of what `read` makes of the answer; `None` when S3 answers
/// `absent_code` ("not configured") or NoSuchBucket. A store without the facet's API is
/// told which `compat.lacks` entry to add, whoever reads (observe, verify).
async fn read_setting<O, E, T>(
    bucket: &BucketAt<'_>,
    facet: Facet,
    sent: impl Future<Output = Result<O, SdkError<E, HttpResponse>>>,
    absent_code: &str,
    doing: &str,
    read: impl FnOnce(O) -> T,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    read_or_absent(
        sent,
        &[absent_code, codes::NO_SUCH_BUCKET],
        || format!("{doing} of bucket `{}`", bucket.name),
        bucket.clients,
        read,
    )
    .await
    .map_err(|error| error.lacking(facet.store_feature()))
}

/// A setting's PUT, its answer reduced to success or the failure.
async fn written<O, E>(
    sent: impl Future<Output = Result<O, SdkError<E, HttpResponse>>>,
) -> Result<(), Failure>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    sent.await
        .map(drop)
        .map_err(|error| Failure::from_sdk(&error))
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
}

impl BucketReads {
    /// The settings these reads cover, each one GET (`settings::read_facets`).
    fn facets(self) -> Vec<Facet> {
        let optional = [
            (self.public_access, Facet::PublicAccessBlock),
            (self.ownership, Facet::Ownership),
            (self.tags, Facet::Tags),
            (self.logging, Facet::Logging),
            (self.object_lock, Facet::ObjectLock),
        ];
        let always = [
            Facet::Versioning,
            Facet::Encryption,
            Facet::Policy,
            Facet::Lifecycle,
        ];
        always
            .into_iter()
            .chain(
                optional
                    .into_iter()
                    .filter_map(|(wanted, facet)| wanted.then_some(facet)),
            )
            .collect()
    }
}

/// Reads one bucket and its settings, all at once; `None` when it does not exist. A setting
/// not read is left as CreateBucket leaves it (`ObservedBucket::unconfigured`).
/// `region` is the one to report when S3 does not name it.
pub async fn observe_bucket(
    bucket: BucketAt<'_>,
    region: &str,
    reads: BucketReads,
) -> Result<Option<ObservedBucket>, AwsError> {
    let facets = reads.facets();
    let (head, settings) = tokio::join!(
        Box::pin(head(&bucket, region)),
        Box::pin(settings::read_facets(bucket, &facets))
    );
    let Some(region) = head? else {
        return Ok(None);
    };
    let mut observed = ObservedBucket::unconfigured(&region);
    for setting in settings? {
        setting(&mut observed);
    }
    Ok(Some(observed))
}

/// HeadBucket: the bucket's region, or `None` when it does not exist.
async fn head(bucket: &BucketAt<'_>, region: &str) -> Result<Option<String>, AwsError> {
    let name = bucket.name;
    match bucket
        .s3()
        .head_bucket()
        .bucket(name)
        .expected_bucket_owner(bucket.account)
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
                    format!("checking bucket `{name}` (s3:HeadBucket)"),
                    "access denied (HTTP 403)",
                    Some(format!(
                        "the bucket exists but {} may not read it: either another account owns the name (choose another bucket name) or this identity lacks s3:ListBucket on it",
                        bucket.clients.identity_source
                    )),
                )),
                _ => Err(failure.into_error(
                    format!("checking bucket `{name}` (s3:HeadBucket)"),
                    bucket.clients,
                )),
            }
        }
    }
}

/// Writes the bucket setting `change` sets; `Ok(false)` for a change that is not a bucket
/// setting (the caller's). `key_arn`: the key a `SetEncryption` waiting for a new key names.
pub async fn write_setting(
    bucket: &BucketAt<'_>,
    change: &Change,
    key_arn: Option<&str>,
) -> Result<bool, AwsError> {
    let written = match change {
        Change::EnableVersioning { .. } => versioning::enable(bucket).await,
        Change::SetEncryption { to, .. } => encryption::write(bucket, to, key_arn).await?,
        Change::BlockPublicAccess { .. } => public_access::block_all(bucket).await,
        Change::EnforceBucketOwner { .. } => ownership::enforce_owner(bucket).await,
        Change::PutPolicy { to, .. } => policy::write(bucket, &to.to_compact_json()).await,
        Change::MergeTags { to, .. } => tags::write(bucket, to).await,
        Change::SetLifecycle {
            rules,
            minimum_object_size,
            ..
        } => lifecycle::write(bucket, rules, minimum_object_size.as_deref()).await,
        Change::SetObjectLock { to, .. } => object_lock::write(bucket, to).await,
        _ => return Ok(false),
    };
    let facet = change.facet();
    written.map(|()| true).map_err(|failure| {
        failure
            .into_error(
                format!("{facet} of bucket `{}`", bucket.name),
                bucket.clients,
            )
            .lacking(facet.store_feature())
    })
}

/// What CreateBucket sets itself.
#[derive(Debug, Clone, Copy)]
pub struct NewBucket<'a> {
    pub tags: &'a std::collections::BTreeMap<String, String>,
    pub owner_enforced: bool,
    pub object_lock: bool,
}

/// CreateBucket with the LocationConstraint S3 wants: none for us-east-1 (an explicit
/// `us-east-1` is rejected), the region everywhere else.
/// Tags go into the request too (SCPs may require them on s3:CreateBucket; it then also needs
/// s3:TagResource); the plan's PutBucketTagging follows for stores that ignore them.
pub async fn create(
    clients: &Clients,
    bucket: &str,
    region: &str,
    new_bucket: NewBucket<'_>,
) -> Result<(), AwsError> {
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
            Err(failure.into_error(format!("creating bucket `{bucket}` in {region}"), clients))
        }
    }
}
