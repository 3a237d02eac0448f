//! The AWS side: building clients for an identity, observing an environment, applying a
//! plan. Thin by design; decisions are made in `plan`.

mod apply;
pub mod audit;
pub mod bucket;
pub mod capability;
mod dynamodb;
mod errors;
mod iam;
pub mod import;
mod kms;
pub mod lock;
#[cfg(test)]
pub(crate) mod mocked;
mod observe;
pub mod probe;
pub mod profiles;
pub mod replication;
pub mod session;
pub mod tfstate;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;
use tokio::sync::OnceCell;

pub(crate) use apply::until_consistent;
pub use apply::{
    Applied, BucketPlan, Prepared, SettingWrites, apply, apply_replication, apply_replication_role,
    create_planned_bucket, needs_lock,
};
pub use errors::AwsError;
pub(crate) use errors::codes;
pub use iam::verify_principals;
pub use observe::{CallerIdentity, OnDisk, caller_identity, observe};

use crate::spec::{EndpointUrl, IamArn, ProfileName, Region};

/// Counts every HTTP request the SDK sends (retries included), by operation. This is how
/// "a second apply makes zero write calls" is checked: at the SDK boundary.
#[derive(Debug, Default)]
pub struct RequestLog {
    by_operation: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub reads: u64,
    pub writes: u64,
    pub by_operation: BTreeMap<String, u64>,
}

/// Operations that change something. Everything else the tool calls only reads.
fn is_write(operation: &str) -> bool {
    [
        "Put", "Create", "Copy", "Delete", "Enable", "Update", "Tag", "Untag", "Schedule",
        "Disable",
    ]
    .iter()
    .any(|verb| operation.starts_with(verb))
}

impl RequestLog {
    pub fn counts(&self) -> RequestCounts {
        let by_operation = self.by_operation.lock().expect("request log lock").clone();
        let (writes, reads) =
            by_operation
                .iter()
                .fold((0, 0), |(writes, reads), (operation, count)| {
                    if is_write(operation) {
                        (writes + count, reads)
                    } else {
                        (writes, reads + count)
                    }
                });
        RequestCounts {
            reads,
            writes,
            by_operation,
        }
    }

    fn record(&self, operation: &str) {
        *self
            .by_operation
            .lock()
            .expect("request log lock")
            .entry(operation.to_owned())
            .or_default() += 1;
    }
}

#[derive(Debug, Clone)]
pub struct CountRequests(Arc<RequestLog>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "statebucket::CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("Unknown", Metadata::name);
        self.0.record(operation);
        Ok(())
    }
}

/// Answers that are the same for every environment of a run, asked once: who a profile is
/// (STS) and what ARN a user or role has (IAM, whose API rate limits are low). With 200
/// environments sharing one profile and two principals this saves ~600 requests.
#[derive(Debug, Default)]
pub struct Lookups {
    callers: Memo<Result<CallerIdentity, AwsError>>,
    principals: Memo<Result<Option<IamArn>, AwsError>>,
    /// Clients per identity, region and endpoint: environments that share them share one
    /// loaded configuration, credential cache and HTTP/TLS client (200 environments in one
    /// account would otherwise hold 200 TLS root stores).
    clients: tokio::sync::Mutex<HashMap<String, Clients>>,
}

/// One answer per key, asked at most once even when many environments ask at the same time
/// (a failure is an answer too: it is not asked again).
pub(crate) type Memo<V> = Mutex<HashMap<String, Arc<OnceCell<V>>>>;

pub(crate) async fn memoised<V, F, Fut>(memo: &Memo<V>, key: &str, ask: F) -> V
where
    V: Clone,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = V>,
{
    let cell = Arc::clone(
        memo.lock()
            .expect("lookups lock")
            .entry(key.to_owned())
            .or_default(),
    );
    cell.get_or_init(ask).await.clone()
}

impl Lookups {
    /// The identity behind `clients`; `key` names the credentials (profile and endpoint).
    pub async fn caller(&self, key: &str, clients: &Clients) -> Result<CallerIdentity, AwsError> {
        memoised(&self.callers, key, || caller_identity(clients)).await
    }

    /// The identity of `profile` (`None`: the default chain) at `endpoint`, asked once per
    /// run whether statebucket runs as it or a stack's backend does.
    pub async fn profile_caller(
        &self,
        profile: Option<&ProfileName>,
        endpoint: Option<&EndpointUrl>,
        clients: &Clients,
    ) -> Result<CallerIdentity, AwsError> {
        let profile = profile.map_or("", ProfileName::as_str);
        let endpoint = endpoint.map_or("", EndpointUrl::as_str);
        self.caller(&format!("profile {profile}@{endpoint}"), clients)
            .await
    }

    /// `clients(…)`, built once per profile, region, endpoint and timeout.
    pub async fn clients(
        &self,
        profile: Option<&ProfileName>,
        region: &Region,
        transport: Transport<'_>,
    ) -> Clients {
        let key = format!(
            "{profile:?}|{region}|{:?}|{:?}",
            transport.endpoint, transport.attempt_timeout
        );
        let mut cache = self.clients.lock().await;
        if let Some(clients) = cache.get(&key) {
            return clients.clone();
        }
        let built = clients(profile, region, transport).await;
        cache.insert(key, built.clone());
        built
    }

    async fn principal(&self, clients: &Clients, arn: &IamArn) -> Result<Option<IamArn>, AwsError> {
        memoised(&self.principals, &arn.to_string(), || {
            iam::lookup(clients, arn)
        })
        .await
    }
}

/// A CloudTrail client, or what makes one.
#[derive(Debug, Clone)]
pub enum CloudTrail {
    Deferred(Box<SdkConfig>, CountRequests),
    Ready(aws_sdk_cloudtrail::Client),
}

/// `tags` as a list of the SDK's `$tag` (S3 and DynamoDB each have their own `Tag` type,
/// built the same way).
macro_rules! sdk_tags {
    ($tag:ty, $tags:expr) => {
        $tags
            .iter()
            .map(|(key, value)| {
                <$tag>::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .expect("key and value are set")
            })
            .collect()
    };
}
pub(crate) use sdk_tags;

/// An SDK client of crate `$sdk` on the shared `config`, its requests counted by `counter`
/// (`CountRequests`) in the run's log.
macro_rules! counted_client {
    ($sdk:ident, $config:expr, $counter:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .interceptor($counter.clone())
                .build(),
        )
    };
}

impl Clients {
    /// The CloudTrail client of this identity and region.
    pub fn cloudtrail(&self) -> aws_sdk_cloudtrail::Client {
        match &self.cloudtrail {
            CloudTrail::Ready(client) => client.clone(),
            CloudTrail::Deferred(config, counter) => {
                counted_client!(aws_sdk_cloudtrail, config.as_ref(), counter)
            }
        }
    }
}

/// The clients one identity uses in one region.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Asked by `audit` alone: made when asked for (`Clients::cloudtrail`).
    pub cloudtrail: CloudTrail,
    /// Where the credentials came from, for messages ("profile `admin`").
    pub identity_source: String,
    /// The profile the credentials come from, when one is named.
    pub profile: Option<ProfileName>,
}

/// How requests reach AWS, whoever signs them: the endpoint (`None`: AWS's own), how long
/// one attempt may take, and the log every request is counted in.
#[derive(Debug, Clone, Copy)]
pub struct Transport<'a> {
    pub endpoint: Option<&'a EndpointUrl>,
    pub attempt_timeout: Duration,
    pub log: &'a Arc<RequestLog>,
}

/// Builds clients from the standard credential chain (environment, profiles, SSO, web
/// identity, container, IMDS) with `profile` forced when given. Retries use the SDK's
/// standard mode; timeouts keep a dead endpoint from hanging a CI job.
pub async fn clients(
    profile: Option<&ProfileName>,
    region: &Region,
    transport: Transport<'_>,
) -> Clients {
    build_clients(Credentials::Chain(profile), region, transport).await
}

/// Clients without credentials, for calls STS accepts unsigned
/// (AssumeRoleWithWebIdentity): no credential source is looked for at all.
pub async fn anonymous_clients(region: &Region, transport: Transport<'_>) -> Clients {
    let mut clients = build_clients(Credentials::None, region, transport).await;
    clients.identity_source = "no credentials (an unsigned request)".to_owned();
    clients
}

/// Where a client's credentials come from.
enum Credentials<'a> {
    /// The standard chain, with this profile forced when given.
    Chain(Option<&'a ProfileName>),
    /// A session's credentials.
    Static(aws_sdk_s3::config::Credentials),
    None,
}

/// Clients with the credentials of an STS session (see `session`), for `identity`
/// (the assumed role, for messages).
pub async fn session_clients(
    credentials: aws_sdk_s3::config::Credentials,
    identity: String,
    region: &Region,
    transport: Transport<'_>,
) -> Clients {
    let mut clients = build_clients(Credentials::Static(credentials), region, transport).await;
    clients.identity_source = identity;
    clients
}

async fn build_clients(
    credentials: Credentials<'_>,
    region: &Region,
    Transport {
        endpoint,
        attempt_timeout,
        log,
    }: Transport<'_>,
) -> Clients {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        );
    let profile = match credentials {
        Credentials::Chain(profile) => {
            if let Some(profile) = profile {
                loader = loader.profile_name(profile.as_str());
            }
            profile
        }
        Credentials::Static(credentials) => {
            loader = loader.credentials_provider(credentials);
            None
        }
        Credentials::None => {
            loader = loader.no_credentials();
            None
        }
    };
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint.as_str());
    }
    let config: SdkConfig = loader.load().await;
    let counter = CountRequests(Arc::clone(log));
    // A custom endpoint is a local server or an S3-compatible store: `bucket.localhost`
    // does not resolve, so use path-style addressing. AWS_ENDPOINT_URL_S3 counts too.
    let path_style = endpoint.is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let s3 = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(path_style)
        .interceptor(counter.clone())
        .build();
    let identity_source = match profile {
        Some(profile) => format!("profile `{profile}`"),
        None => "the default credential chain (AWS_PROFILE, environment keys, SSO, instance role)"
            .to_owned(),
    };
    Clients {
        s3: aws_sdk_s3::Client::from_conf(s3),
        kms: counted_client!(aws_sdk_kms, &config, counter),
        sts: counted_client!(aws_sdk_sts, &config, counter),
        iam: counted_client!(aws_sdk_iam, &config, counter),
        dynamodb: counted_client!(aws_sdk_dynamodb, &config, counter),
        cloudtrail: CloudTrail::Deferred(Box::new(config), counter),
        identity_source,
        profile: profile.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_from_reads() {
        for write in [
            "PutBucketPolicy",
            "CreateBucket",
            "CreateKey",
            "EnableKeyRotation",
            "PutBucketTagging",
            "DeleteObject",
            "CopyObject",
        ] {
            assert!(is_write(write), "{write}");
        }
        for read in [
            "GetBucketPolicy",
            "HeadBucket",
            "DescribeKey",
            "GetCallerIdentity",
            "ListObjectsV2",
            "GetKeyRotationStatus",
        ] {
            assert!(!is_write(read), "{read}");
        }
        let log = RequestLog::default();
        log.record("HeadBucket");
        log.record("HeadBucket");
        log.record("PutBucketPolicy");
        let counts = log.counts();
        assert_eq!((counts.reads, counts.writes), (2, 1));
    }
}
