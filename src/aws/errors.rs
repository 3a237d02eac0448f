//! AWS errors turned into messages that say what failed, why, and what to do next.

use std::error::Error as StdError;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;

/// The AWS error codes statebucket decides on, in one place. S3's "not configured" codes
/// mean absence, not failure.
pub mod codes {
    pub const NO_SUCH_BUCKET: &str = "NoSuchBucket";
    pub const SSE_NOT_FOUND: &str = "ServerSideEncryptionConfigurationNotFoundError";
    pub const NO_PUBLIC_ACCESS_BLOCK: &str = "NoSuchPublicAccessBlockConfiguration";
    pub const NO_BUCKET_POLICY: &str = "NoSuchBucketPolicy";
    pub const NO_OWNERSHIP_CONTROLS: &str = "OwnershipControlsNotFoundError";
    pub const NO_TAG_SET: &str = "NoSuchTagSet";
    pub const NO_LIFECYCLE: &str = "NoSuchLifecycleConfiguration";
    pub const BUCKET_ALREADY_OWNED_BY_YOU: &str = "BucketAlreadyOwnedByYou";
    pub const BUCKET_ALREADY_EXISTS: &str = "BucketAlreadyExists";
    pub const KMS_NOT_FOUND: &str = "NotFoundException";
    pub const KMS_ALREADY_EXISTS: &str = "AlreadyExistsException";
    pub const IAM_NO_SUCH_ENTITY: &str = "NoSuchEntity";
    pub const IAM_ENTITY_EXISTS: &str = "EntityAlreadyExists";
    pub const MALFORMED_POLICY: &str = "MalformedPolicy";
    pub const DYNAMODB_RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
    pub const DYNAMODB_TABLE_NOT_FOUND: &str = "TableNotFoundException";
    pub const DYNAMODB_RESOURCE_IN_USE: &str = "ResourceInUseException";
    pub const DYNAMODB_BACKUPS_UNAVAILABLE: &str = "ContinuousBackupsUnavailableException";
    pub const NO_SUCH_KEY: &str = "NoSuchKey";
    pub const NO_REPLICATION: &str = "ReplicationConfigurationNotFoundError";
    pub const NO_OBJECT_LOCK: &str = "ObjectLockConfigurationNotFoundError";
    pub const NO_SUCH_VERSION: &str = "NoSuchVersion";
    /// GetObject of a delete marker's version id.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    pub const INVALID_ARGUMENT: &str = "InvalidArgument";
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    pub const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailedException";
    pub const ACCESS_DENIED: &[&str] = &["AccessDenied", "AccessDeniedException"];
    /// An S3-compatible store's answer to an API it does not have (HTTP 501).
    pub const NOT_IMPLEMENTED: &str = "NotImplemented";

    /// The store answered that it does not implement the request: HTTP 501, or its code.
    pub fn not_implemented(status: Option<u16>, code: Option<&str>) -> bool {
        status == Some(501) || code == Some(NOT_IMPLEMENTED)
    }
    pub const EXPIRED_TOKEN: &[&str] = &["ExpiredToken", "ExpiredTokenException"];
}

/// A failed AWS call: what we were doing, what AWS (or the network) said, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{doing}: {cause}")]
pub struct AwsError {
    pub doing: String,
    pub cause: String,
    pub hint: Option<String>,
    /// The AWS error code, when there was one.
    pub code: Option<String>,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
}

impl AwsError {
    pub fn new(
        doing: impl Into<String>,
        cause: impl Into<String>,
        hint: Option<String>,
    ) -> AwsError {
        AwsError {
            doing: doing.into(),
            cause: cause.into(),
            hint,
            code: None,
            status: None,
        }
    }

    /// The store answered that it does not implement the request (HTTP 501, as
    /// S3-compatible stores answer an API they lack).
    pub fn is_not_implemented(&self) -> bool {
        codes::not_implemented(self.status, self.code.as_deref())
    }

    /// Names the `compat.lacks` entry to add when the store does not implement what
    /// `feature` needs; any other error is left as it is.
    pub fn lacking(mut self, feature: Option<crate::spec::StoreFeature>) -> AwsError {
        if let Some(feature) = feature.filter(|_| self.is_not_implemented()) {
            self.hint = Some(format!(
                "this store does not implement {}: add `{}` to the spec's `compat.lacks` (`statebucket probe` lists everything a store lacks)",
                feature.describe(),
                feature.name()
            ));
        }
        self
    }

    /// S3 and IAM are eventually consistent: a bucket created a moment ago can still answer
    /// NoSuchBucket, and a principal created a moment ago can make PutBucketPolicy fail with
    /// "Invalid principal in policy". Both pass once AWS has caught up.
    pub fn is_eventual_consistency(&self) -> bool {
        match self.code.as_deref() {
            Some(codes::NO_SUCH_BUCKET) => true,
            Some(codes::MALFORMED_POLICY) => self.cause.contains("Invalid principal"),
            // DynamoDB turns point-in-time recovery on only a while after a table is ACTIVE.
            Some(codes::DYNAMODB_BACKUPS_UNAVAILABLE) => true,
            // PutBucketReplication right after PutBucketVersioning of either bucket (Terraform's
            // AWS provider retries the same answer).
            Some(codes::INVALID_REQUEST) => self.cause.contains("Versioning must be 'Enabled'"),
            _ => false,
        }
    }
}

/// `DisplayErrorContext` ends with the error's `Debug` form in parentheses, e.g.
/// `… permissions. (DispatchFailure(DispatchFailure { source: … }))`; the readable chain
/// before it says the same for people.
fn without_debug_dump(message: &str) -> String {
    let mut search = message.len();
    while let Some(open) = message[..search].rfind(" (") {
        let rest = &message[open + 2..];
        let identifier: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let starts_debug = identifier
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            && matches!(
                rest[identifier.len()..].chars().next(),
                Some('(' | ' ' | '{')
            )
            && message.ends_with(')');
        if starts_debug {
            return message[..open].to_owned();
        }
        search = open;
    }
    message.to_owned()
}

/// The parts of an SDK error we decide on.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub code: Option<String>,
    pub status: Option<u16>,
    pub region_header: Option<String>,
    /// `x-amz-request-id`, for a store's operators.
    pub request_id: Option<String>,
    pub message: String,
    kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    Service,
    Unreachable,
    Credentials,
    Other,
}

/// Whose credentials a request goes out with ("profile `admin`"). Every error names it, so
/// that a refusal says who was refused.
pub(crate) trait Signer {
    fn identity_source(&self) -> &str;
}

impl Signer for str {
    fn identity_source(&self) -> &str {
        self
    }
}

impl Signer for super::Clients {
    fn identity_source(&self) -> &str {
        &self.identity_source
    }
}

/// A read whose "not there" answers are absence, not failure: `Some` of what `read` makes of
/// the answer, `None` when AWS answers one of `absent` (error codes), the error (saying what
/// was `doing`) otherwise.
pub(crate) async fn read_or_absent<O, E, T>(
    sent: impl std::future::Future<Output = Result<O, SdkError<E, Response>>>,
    absent: &[&str],
    doing: impl FnOnce() -> String,
    signer: &(impl Signer + ?Sized),
    read: impl FnOnce(O) -> T,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match sent.await {
        Ok(output) => Ok(Some(read(output))),
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if absent.iter().any(|code| failure.is(code)) {
                Ok(None)
            } else {
                Err(failure.into_error(doing(), signer))
            }
        }
    }
}

/// An SDK call's answer as the user reads it: on failure, what we were doing and whose
/// credentials were used.
pub(crate) trait Explained<O> {
    fn explained(
        self,
        signer: &(impl Signer + ?Sized),
        doing: impl FnOnce() -> String,
    ) -> Result<O, AwsError>;
}

impl<O, E> Explained<O> for Result<O, SdkError<E, Response>>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn explained(
        self,
        signer: &(impl Signer + ?Sized),
        doing: impl FnOnce() -> String,
    ) -> Result<O, AwsError> {
        self.map_err(|error| Failure::from_sdk(&error).into_error(doing(), signer))
    }
}

impl Failure {
    pub fn from_sdk<E>(error: &SdkError<E, Response>) -> Failure
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let raw = error.raw_response();
        let status = raw.map(|response| response.status().as_u16());
        let header = |name: &str| {
            raw.and_then(|response| response.headers().get(name))
                .map(str::to_owned)
        };
        let region_header = header("x-amz-bucket-region");
        let request_id = header("x-amz-request-id");
        let chain = without_debug_dump(&DisplayErrorContext(error).to_string());
        // A service's answer says it best in its own message; the SDK's chain around it
        // ("service error: unhandled error (Code): Error { … }") repeats the code.
        let message = match (error, error.message()) {
            (SdkError::ServiceError(_), Some(message)) if !message.is_empty() => message.to_owned(),
            // A body the SDK could not parse: an XML error to a JSON API, say, from an
            // endpoint that routes the request to something else.
            (SdkError::ServiceError(_), _) if chain.contains("Error at offset") => {
                "the answer is not in this API's format: the endpoint does not serve this API"
                    .to_owned()
            }
            (SdkError::ServiceError(_), _) => "the answer carried no message".to_owned(),
            _ => chain,
        };
        let kind = match error {
            SdkError::ServiceError(_) => FailureKind::Service,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => FailureKind::Unreachable,
            _ if message.contains("credential") => FailureKind::Credentials,
            _ => FailureKind::Other,
        };
        let kind = if kind == FailureKind::Unreachable && message.contains("credential") {
            FailureKind::Credentials
        } else {
            kind
        };
        Failure {
            code: error.code().map(str::to_owned),
            status,
            region_header,
            request_id,
            message,
            kind,
        }
    }

    /// A conditional write refused as S3 refuses it: 412, the condition failed (the key
    /// exists, or changed); 409, another conditional write of the key is in flight. Either
    /// way someone else holds what was to be taken.
    pub fn is_condition_refused(&self) -> bool {
        matches!(self.status, Some(412 | 409))
    }

    /// The store itself failed (HTTP 5xx other than 501): not a permission problem.
    pub fn is_store_failure(&self) -> bool {
        self.status
            .is_some_and(|status| status >= 500 && status != 501)
    }

    /// ` (request id ID)` when the answer carried one, to quote to the store's operators.
    pub fn request_id_note(&self) -> String {
        self.request_id
            .as_deref()
            .map(|id| format!(" (request id {id})"))
            .unwrap_or_default()
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// Worth another attempt: the network, a timeout, throttling, or a server error.
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Unreachable
            || self
                .status
                .is_some_and(|status| status >= 500 || status == 429)
            || self.code.as_deref().is_some_and(|code| {
                code.contains("Throttl") || code == "SlowDown" || code == "RequestTimeout"
            })
    }

    /// The endpoint did not answer (connection, timeout).
    pub fn is_unreachable(&self) -> bool {
        self.kind == FailureKind::Unreachable
    }

    /// No service answered: no usable credentials, or the endpoint could not be reached.
    pub fn is_unanswered(&self) -> bool {
        self.is_credentials() || self.is_unreachable()
    }

    /// No usable credentials were found (every provider of the chain failed).
    pub fn is_credentials(&self) -> bool {
        self.kind == FailureKind::Credentials
    }

    pub fn is_denied(&self) -> bool {
        self.status == Some(403) || codes::ACCESS_DENIED.iter().any(|code| self.is(code))
    }

    /// In one line, as doctor reports a probe: the status and code when there are any.
    pub fn short(&self) -> String {
        match (self.status, &self.code) {
            (Some(status), Some(code)) => format!("HTTP {status} {code}"),
            (Some(403), None) => "HTTP 403 (access denied)".to_owned(),
            (Some(status), None) => format!("HTTP {status}"),
            (None, Some(code)) => code.clone(),
            (None, None) => self.message.clone(),
        }
    }

    /// Turns the failure into an error for the user, naming whose credentials were used.
    pub fn into_error(self, doing: impl Into<String>, signer: &(impl Signer + ?Sized)) -> AwsError {
        let doing = doing.into();
        let identity = signer.identity_source();
        let hint = match self.kind {
            FailureKind::Credentials => Some(format!(
                "no usable credentials for {identity}: configure it in ~/.aws/config (or run `aws sso login`), or pass --profile NAME"
            )),
            FailureKind::Unreachable => Some(
                "the AWS endpoint could not be reached: check the network, the region, and --endpoint-url / AWS_ENDPOINT_URL".to_owned(),
            ),
            _ if codes::not_implemented(self.status, self.code.as_deref()) => Some(
                "the store does not implement this request: if it is an S3-compatible store, list what it lacks under the spec's `compat.lacks` (`statebucket probe` prints the block)".to_owned(),
            ),
            _ if self.is_store_failure() => Some(format!(
                "the store failed{}: this is not a permission problem, and the SDK's retries did not get past it; check the store's health and logs{}",
                self.status.map(|status| format!(" (HTTP {status})")).unwrap_or_default(),
                self.request_id_note()
            )),
            _ if self.is_denied() => Some(format!(
                "{identity} is not allowed to do this: grant the permission, or run statebucket as an identity that has it (--profile ADMIN)"
            )),
            _ if codes::EXPIRED_TOKEN.iter().any(|code| self.is(code)) => Some(format!(
                "the session of {identity} has expired: refresh it (e.g. `aws sso login`)"
            )),
            _ => None,
        };
        let cause = match (&self.code, self.status) {
            (Some(code), Some(status)) => format!("{code} (HTTP {status}): {}", self.message),
            (None, Some(status)) => format!("HTTP {status}: {}", self.message),
            _ => self.message.clone(),
        };
        AwsError {
            code: self.code,
            status: self.status,
            ..AwsError::new(doing, cause, hint)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_debug_dump_is_dropped_and_the_chain_kept() {
        assert_eq!(
            super::without_debug_dump(
                "dispatch failure: other: no credentials (see docs). (DispatchFailure(DispatchFailure { source: x }))"
            ),
            "dispatch failure: other: no credentials (see docs)."
        );
        assert_eq!(
            super::without_debug_dump("plain message (with a note)"),
            "plain message (with a note)"
        );
    }

    #[test]
    fn versioning_not_yet_seen_by_replication_is_retried_and_other_invalid_requests_are_not() {
        let answer = |cause: &str| super::AwsError {
            code: Some(super::codes::INVALID_REQUEST.to_owned()),
            ..super::AwsError::new("writing the replication configuration", cause, None)
        };
        assert!(answer("Versioning must be 'Enabled' on the bucket").is_eventual_consistency());
        assert!(!answer("Priority must be unique").is_eventual_consistency());
    }
}
