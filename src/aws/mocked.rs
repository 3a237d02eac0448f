//! AWS error semantics that moto does not reproduce, through the real SDK client with
//! responses stubbed at the HTTP boundary (aws-smithy-mocks).

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionError;
use aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationError;
use aws_sdk_s3::operation::get_bucket_ownership_controls::GetBucketOwnershipControlsError;
use aws_sdk_s3::operation::get_bucket_policy::GetBucketPolicyError;
use aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingError;
use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
use aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockError;
use aws_sdk_s3::operation::head_bucket::HeadBucketOutput;
use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;

use super::errors::AwsError;
use super::{Clients, OnDisk, apply, observe};
use crate::observed::{PublicAccessBlock, Versioning};
use crate::plan::{Change, EnvPlan};
use crate::spec::{EnvSpec, Region, parse_spec};
use crate::testing::assert_mentions;

/// Applies `changes` to `mocked-bucket` in eu-west-1 for account 123456789012.
async fn apply_changes(
    clients: &Clients,
    changes: Vec<Change>,
) -> Result<super::Applied, super::AwsError> {
    let plan = EnvPlan {
        changes,
        in_sync: Vec::new(),
        kept_statements: Vec::new(),
        notes: Vec::new(),
        replica: None,
    };
    let bucket_plan = super::BucketPlan {
        at: super::bucket::BucketAt::new(clients, "mocked-bucket", "123456789012"),
        region: &region(),
        plan: &plan,
    };
    apply(
        bucket_plan,
        super::Prepared::default(),
        super::SettingWrites::AtOnce,
    )
    .await
}

fn region() -> Region {
    Region::parse("eu-west-1").unwrap()
}

fn spec() -> EnvSpec {
    let text = "region: eu-west-1\nprofile: terraform\nbucket: { name: mocked-bucket }\naccess: { users: [terraform] }\nbackend: { key: app/terraform.tfstate }\n";
    parse_spec("environments/dev.yaml", "dev", text).unwrap()
}

/// Clients whose S3 side answers from `rules`; KMS, STS and IAM are never called here.
pub(crate) fn clients(rules: &[&Rule]) -> Clients {
    clients_with(rules, &[])
}

/// Clients whose S3 and CloudTrail sides answer from the rules given.
pub(crate) fn clients_with_cloudtrail(rules: &[&Rule], cloudtrail_rules: &[&Rule]) -> Clients {
    Clients {
        cloudtrail: super::CloudTrail::Ready(mock_client!(
            aws_sdk_cloudtrail,
            RuleMode::MatchAny,
            cloudtrail_rules,
            |config| config
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        )),
        ..clients_with(rules, &[])
    }
}

/// Clients whose S3 and DynamoDB sides answer from the rules given.
fn clients_with(rules: &[&Rule], dynamodb_rules: &[&Rule]) -> Clients {
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |config| config
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .force_path_style(true));
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb_rules);
    let region = aws_config::Region::new("eu-west-1");
    Clients {
        s3,
        kms: aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::Config::builder()
                .behavior_version_latest()
                .region(region.clone())
                .build(),
        ),
        sts: aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::Config::builder()
                .behavior_version_latest()
                .region(region.clone())
                .build(),
        ),
        iam: aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version_latest()
                .region(region)
                .build(),
        ),
        dynamodb,
        cloudtrail: super::CloudTrail::Ready(aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::Config::builder()
                .behavior_version_latest()
                .region(aws_config::Region::new("eu-west-1"))
                .build(),
        )),
        identity_source: "profile `terraform`".into(),
        profile: None,
    }
}

/// The error says it failed while `doing`, and its hint names each of `hint_parts`.
#[track_caller]
fn assert_failed(error: &AwsError, doing: &str, hint_parts: &[&str]) {
    assert_eq!(error.doing, doing);
    assert_mentions(error.hint.as_deref().unwrap_or_default(), hint_parts);
}

/// An answer with this HTTP status and no body.
pub(crate) fn status(code: u16) -> Response {
    Response::new(StatusCode::try_from(code).unwrap(), SdkBody::empty())
}

fn code(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("stubbed")
        .build()
}

/// A bucket that exists with nothing configured: every Get answers "not configured".
fn unconfigured_bucket() -> Vec<Rule> {
    vec![
        mock!(Client::head_bucket).then_output(|| {
            HeadBucketOutput::builder()
                .bucket_region("eu-west-1")
                .build()
        }),
        mock!(Client::get_bucket_versioning)
            .then_output(|| GetBucketVersioningOutput::builder().build()),
        mock!(Client::get_bucket_encryption).then_error(|| {
            GetBucketEncryptionError::generic(code(
                "ServerSideEncryptionConfigurationNotFoundError",
            ))
        }),
        mock!(Client::get_public_access_block).then_error(|| {
            GetPublicAccessBlockError::generic(code("NoSuchPublicAccessBlockConfiguration"))
        }),
        mock!(Client::get_bucket_ownership_controls).then_error(|| {
            GetBucketOwnershipControlsError::generic(code("OwnershipControlsNotFoundError"))
        }),
        mock!(Client::get_bucket_policy)
            .then_error(|| GetBucketPolicyError::generic(code("NoSuchBucketPolicy"))),
        mock!(Client::get_bucket_tagging)
            .then_error(|| GetBucketTaggingError::generic(code("NoSuchTagSet"))),
        mock!(Client::get_bucket_lifecycle_configuration).then_error(|| {
            GetBucketLifecycleConfigurationError::generic(code("NoSuchLifecycleConfiguration"))
        }),
    ]
}

/// Observes `mocked-bucket` as a bucket with nothing configured answers, but with
/// `replaced` (an index into `unconfigured_bucket` and the rule answering instead).
async fn observe_unconfigured(
    replaced: Option<(usize, Rule)>,
) -> Result<crate::observed::Observed, super::AwsError> {
    let mut rules = unconfigured_bucket();
    if let Some((index, rule)) = replaced {
        rules[index] = rule;
    }
    let clients = clients(&rules.iter().collect::<Vec<_>>());
    observe(
        &clients,
        &spec(),
        "123456789012",
        OnDisk::default(),
        None,
        None,
    )
    .await
}

#[tokio::test]
async fn not_configured_answers_are_absence_not_errors() {
    let observed = observe_unconfigured(None).await.unwrap();
    let bucket = observed.bucket.expect("the bucket exists");
    assert_eq!(bucket.region, "eu-west-1");
    assert_eq!(bucket.versioning, Versioning::Never);
    assert_eq!(bucket.encryption, None);
    assert_eq!(bucket.public_access, PublicAccessBlock::default());
    assert_eq!(bucket.ownership, None);
    assert_eq!(bucket.policy, None);
    assert_eq!(bucket.tags, BTreeMap::new());
    assert_eq!(bucket.lifecycle, Vec::new());
}

#[tokio::test]
async fn head_bucket_404_means_no_bucket() {
    let rule = mock!(Client::head_bucket).then_http_response(|| status(404));
    let observed = observe_unconfigured(Some((0, rule))).await.unwrap();
    assert_eq!(observed.bucket, None);
}

#[tokio::test]
async fn head_bucket_301_reports_the_bucket_region() {
    let rule = mock!(Client::head_bucket).then_http_response(|| {
        let mut response = status(301);
        response
            .headers_mut()
            .insert("x-amz-bucket-region", "us-west-2");
        response
    });
    let observed = observe_unconfigured(Some((0, rule))).await.unwrap();
    assert_eq!(observed.bucket.unwrap().region, "us-west-2");
}

#[tokio::test]
async fn head_bucket_403_explains_both_causes() {
    let rule = mock!(Client::head_bucket).then_http_response(|| status(403));
    let error = observe_unconfigured(Some((0, rule))).await.unwrap_err();
    assert_failed(
        &error,
        "checking bucket `mocked-bucket` (s3:HeadBucket)",
        &["another account owns the name", "s3:ListBucket"],
    );
}

#[tokio::test]
async fn access_denied_on_a_read_is_an_error_with_a_hint_not_absence() {
    let rule = mock!(Client::get_bucket_policy)
        .then_error(|| GetBucketPolicyError::generic(code("AccessDenied")));
    let error = observe_unconfigured(Some((5, rule))).await.unwrap_err();
    assert_failed(
        &error,
        "reading the bucket policy of bucket `mocked-bucket`",
        &["profile `terraform` is not allowed to do this"],
    );
}

#[tokio::test]
async fn slow_down_answers_are_absorbed_by_the_standard_retry() {
    let flaky = mock!(Client::put_bucket_versioning)
        .sequence()
        .http_status(503, None)
        .times(2)
        .output(|| PutBucketVersioningOutput::builder().build())
        .build();
    assert_eq!(calls_to_enable_versioning(&flaky).await, 3);
}

/// Enables versioning through `put_versioning` (a rule whose first answers fail): the
/// calls it took.
async fn calls_to_enable_versioning(put_versioning: &Rule) -> usize {
    apply_changes(
        &clients(&[put_versioning]),
        vec![Change::EnableVersioning {
            from: Versioning::Suspended,
        }],
    )
    .await
    .unwrap();
    put_versioning.num_calls()
}

#[tokio::test]
async fn an_empty_plan_makes_no_call_at_all() {
    let rules = [
        mock!(Client::create_bucket).then_output(|| {
            aws_sdk_s3::operation::create_bucket::CreateBucketOutput::builder().build()
        }),
        mock!(Client::put_bucket_versioning)
            .then_output(|| PutBucketVersioningOutput::builder().build()),
        mock!(Client::put_bucket_policy).then_output(|| {
            aws_sdk_s3::operation::put_bucket_policy::PutBucketPolicyOutput::builder().build()
        }),
    ];
    let clients = clients(&rules.iter().collect::<Vec<_>>());
    apply_changes(&clients, Vec::new()).await.unwrap();
    assert!(rules.iter().all(|rule| rule.num_calls() == 0));
}

#[tokio::test]
async fn a_name_taken_by_another_account_is_a_clear_error() {
    use aws_sdk_s3::operation::create_bucket::CreateBucketError;
    use aws_sdk_s3::types::error::BucketAlreadyExists;
    let taken = mock!(Client::create_bucket).then_error(|| {
        CreateBucketError::BucketAlreadyExists(BucketAlreadyExists::builder().build())
    });
    let clients = clients(&[&taken]);
    let error = apply_changes(
        &clients,
        vec![Change::CreateBucket {
            tags: Default::default(),
            bucket: "mocked-bucket".into(),
            region: "eu-west-1".into(),
            owner_enforced: true,
            object_lock: false,
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.cause,
        "BucketAlreadyExists: the name is taken by another AWS account"
    );
    assert!(error.hint.unwrap().contains("choose another `bucket.name`"));
}

#[tokio::test]
async fn a_just_created_bucket_answering_no_such_bucket_is_waited_for() {
    use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningError;
    let settling = mock!(Client::put_bucket_versioning)
        .sequence()
        .error(|| PutBucketVersioningError::generic(code("NoSuchBucket")))
        .times(2)
        .output(|| PutBucketVersioningOutput::builder().build())
        .build();
    assert_eq!(calls_to_enable_versioning(&settling).await, 3);
}

#[tokio::test]
async fn a_just_created_principal_is_waited_for_but_other_errors_are_not() {
    use aws_sdk_s3::operation::put_bucket_policy::{PutBucketPolicyError, PutBucketPolicyOutput};
    let invalid_principal = || {
        PutBucketPolicyError::generic(
            ErrorMetadata::builder()
                .code("MalformedPolicy")
                .message("Invalid principal in policy")
                .build(),
        )
    };
    let settling = mock!(Client::put_bucket_policy)
        .sequence()
        .error(invalid_principal)
        .output(|| PutBucketPolicyOutput::builder().build())
        .build();
    let put_policy = || {
        vec![Change::PutPolicy {
            from: None,
            to: crate::policy::PolicyDocument::of(Vec::new()),
            statements: Vec::new(),
            kept: Vec::new(),
        }]
    };
    apply_changes(&clients(&[&settling]), put_policy())
        .await
        .unwrap();
    assert_eq!(settling.num_calls(), 2);

    let denied = mock!(Client::put_bucket_policy)
        .then_error(|| PutBucketPolicyError::generic(code("AccessDenied")));
    let error = apply_changes(&clients(&[&denied]), put_policy())
        .await
        .unwrap_err();
    assert_eq!(denied.num_calls(), 1);
    assert!(error.cause.starts_with("AccessDenied"), "{error:?}");
}

#[tokio::test]
async fn a_table_created_meanwhile_is_awaited_and_backups_wait_until_dynamodb_allows_them() {
    use aws_sdk_dynamodb::Client as DynamoDb;
    use aws_sdk_dynamodb::operation::create_table::CreateTableError;
    use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
    use aws_sdk_dynamodb::operation::update_continuous_backups::{
        UpdateContinuousBackupsError, UpdateContinuousBackupsOutput,
    };
    use aws_sdk_dynamodb::types::{TableDescription, TableStatus};

    let described = |status: TableStatus| {
        move || {
            DescribeTableOutput::builder()
                .table(
                    TableDescription::builder()
                        .table_status(status.clone())
                        .build(),
                )
                .build()
        }
    };
    // Another run's CreateTable won the race; the table is still being created.
    let create = mock!(DynamoDb::create_table)
        .then_error(|| CreateTableError::generic(code("ResourceInUseException")));
    let describe = mock!(DynamoDb::describe_table)
        .sequence()
        .output(described(TableStatus::Creating))
        .output(described(TableStatus::Active))
        .build();
    let backups = mock!(DynamoDb::update_continuous_backups)
        .sequence()
        .error(|| {
            UpdateContinuousBackupsError::generic(code("ContinuousBackupsUnavailableException"))
        })
        .output(|| UpdateContinuousBackupsOutput::builder().build())
        .build();
    let clients = clients_with(&[], &[&create, &describe, &backups]);
    apply_changes(
        &clients,
        vec![
            Change::CreateLockTable {
                table: "mocked-bucket-locks".into(),
                tags: BTreeMap::new(),
            },
            Change::EnablePointInTimeRecovery {
                table: "mocked-bucket-locks".into(),
                from: None,
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(create.num_calls(), 1, "CreateTable is not repeated");
    assert_eq!(describe.num_calls(), 2, "waited until ACTIVE");
    assert_eq!(backups.num_calls(), 2, "retried once DynamoDB allowed it");
}

#[tokio::test]
async fn tags_go_into_create_bucket() {
    let tagged = mock!(Client::create_bucket)
        .match_requests(|request| {
            request
                .create_bucket_configuration()
                .is_some_and(|configuration| {
                    configuration.tags().len() == 1
                        && configuration
                            .location_constraint()
                            .map(|region| region.as_str())
                            == Some("eu-west-1")
                })
        })
        .then_output(|| {
            aws_sdk_s3::operation::create_bucket::CreateBucketOutput::builder().build()
        });
    apply_changes(
        &clients(&[&tagged]),
        vec![Change::CreateBucket {
            bucket: "mocked-bucket".into(),
            region: "eu-west-1".into(),
            tags: BTreeMap::from([("team".into(), "platform".into())]),
            owner_enforced: true,
            object_lock: false,
        }],
    )
    .await
    .unwrap();
    assert_eq!(tagged.num_calls(), 1);
}

mod apply_lock {
    //! The apply lock's races, as S3 answers them.

    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use aws_sdk_s3::Client;
    use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_smithy_mocks::mock;

    use super::clients;
    use crate::aws::lock::{Acquired, HeldLocks, LOCK_KEY, take_or_wait};
    use std::time::Instant;

    fn holder(lease_seconds: u64, written: SystemTime, etag: &'static str) -> GetObjectOutput {
        GetObjectOutput::builder()
            .e_tag(etag)
            .last_modified(aws_smithy_types::DateTime::from(written))
            .body(ByteStream::from(
                format!(r#"{{"id":"other-1","owner":"statebucket on runner-2 (pid 7)","operation":"apply","created":"2026-12-01T10:00:00Z","lease_seconds":{lease_seconds}}}"#).into_bytes(),
            ))
            .build()
    }

    #[tokio::test]
    async fn a_free_lock_is_taken_at_once_and_released_only_on_its_own_etag() {
        let take = mock!(Client::put_object)
            .match_requests(|request| {
                request.if_none_match() == Some("*") && request.key() == Some(LOCK_KEY)
            })
            .then_output(|| PutObjectOutput::builder().e_tag("\"mine\"").build());
        let release = mock!(Client::delete_object)
            .match_requests(|request| request.if_match() == Some("\"mine\""))
            .then_output(|| DeleteObjectOutput::builder().build());
        let clients = clients(&[&take, &release]);
        let told = Mutex::new(Vec::new());
        let waiting = |message: &str| told.lock().unwrap().push(message.to_owned());
        let Acquired::Taken(lock) = take_or_wait(
            &clients,
            "b",
            "apply",
            Instant::now() + Duration::from_secs(5),
            &waiting,
            &HeldLocks::default(),
        )
        .await
        .unwrap() else {
            panic!("a free lock is taken")
        };
        assert_eq!(lock.info().lease_seconds, 60);
        lock.release().await;
        assert_eq!((take.num_calls(), release.num_calls()), (1, 1));
        assert!(told.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_held_lock_is_waited_for_by_reading_until_its_holder_releases_it() {
        let take = mock!(Client::put_object)
            .sequence()
            .http_status(412, None)
            .output(|| PutObjectOutput::builder().e_tag("\"mine\"").build())
            .build();
        // Held when first read, gone when read again: a waiting run only reads, and is told
        // the holder left (its caller plans again before taking the lock).
        let read = mock!(Client::get_object)
            .sequence()
            .output(|| holder(60, SystemTime::now(), "\"theirs\""))
            .http_status(404, None)
            .build();
        let clients = clients(&[&take, &read]);
        let told = Mutex::new(Vec::new());
        let waiting = |message: &str| told.lock().unwrap().push(message.to_owned());
        let registry = HeldLocks::default();
        let attempt = || {
            take_or_wait(
                &clients,
                "b",
                "apply",
                Instant::now() + Duration::from_secs(30),
                &waiting,
                &registry,
            )
        };
        let released = attempt().await.unwrap();
        assert!(matches!(released, Acquired::Released), "{released:?}");
        assert_eq!((take.num_calls(), read.num_calls()), (1, 2));
        let taken = attempt().await.unwrap();
        assert!(matches!(taken, Acquired::Taken(_)), "then it is free");
        assert_eq!((take.num_calls(), read.num_calls()), (2, 2));
        assert_eq!(
            told.lock().unwrap().as_slice(),
            [
                "waiting for another apply: statebucket on runner-2 (pid 7) (apply, since 2026-12-01T10:00:00Z, lock other-1)"
            ]
        );
    }

    #[tokio::test]
    async fn a_stale_lock_is_taken_over_on_its_etag_and_a_lost_takeover_waits_for_the_winner() {
        let take = mock!(Client::put_object)
            .match_requests(|request| request.if_none_match() == Some("*"))
            .then_http_response(|| super::status(412));
        // Another waiter overwrote the stale lock first: this run's If-Match fails.
        let takeover = mock!(Client::put_object)
            .match_requests(|request| request.if_match() == Some("\"stale\""))
            .then_http_response(|| super::status(412));
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let read = mock!(Client::get_object)
            .sequence()
            .output(move || holder(60, an_hour_ago, "\"stale\""))
            .output(|| holder(60, SystemTime::now(), "\"winner\""))
            .repeatedly()
            .build();
        let clients = clients(&[&take, &takeover, &read]);
        let told = Mutex::new(Vec::new());
        let waiting = |message: &str| told.lock().unwrap().push(message.to_owned());
        let error = take_or_wait(
            &clients,
            "b",
            "apply",
            Instant::now(),
            &waiting,
            &HeldLocks::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            takeover.num_calls(),
            1,
            "the stale lock is replaced only on its ETag"
        );
        assert!(
            error
                .cause
                .starts_with("another apply holds the lock: statebucket on runner-2"),
            "{error:?}"
        );
        assert!(told.lock().unwrap()[0].starts_with("taking over the stale apply lock"));
    }
}

/// An S3 error answer with a status, code and request id, as a store sends it.
fn store_answer(status_code: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>req-7</RequestId></Error>"
    );
    let mut response = Response::new(
        StatusCode::try_from(status_code).unwrap(),
        SdkBody::from(body),
    );
    response.headers_mut().insert("x-amz-request-id", "req-7");
    response
}

#[tokio::test]
async fn a_store_without_the_api_names_the_compat_entry_to_add() {
    let lacking = mock!(Client::put_public_access_block).then_http_response(|| {
        store_answer(
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
        )
    });
    let error = apply_changes(
        &clients(&[&lacking]),
        vec![Change::BlockPublicAccess {
            from: PublicAccessBlock::default(),
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(lacking.num_calls(), 1, "501 is not retried");
    let hint = error.hint.unwrap();
    assert_mentions(
        &hint,
        &["add `public_access_block` to the spec's `compat.lacks`"],
    );
    assert!(!hint.contains("grant"), "{hint}");
}

#[tokio::test(start_paused = true)]
async fn a_store_failing_is_reported_as_the_store_failing_never_as_a_permission() {
    let failing = mock!(Client::put_bucket_versioning).then_http_response(|| {
        store_answer(500, "InternalError", "We encountered an internal error")
    });
    let error = apply_changes(
        &clients(&[&failing]),
        vec![Change::EnableVersioning {
            from: Versioning::Never,
        }],
    )
    .await
    .unwrap_err();
    assert_eq!(failing.num_calls(), 5, "retried by the SDK's standard mode");
    assert!(
        error.cause.starts_with("InternalError (HTTP 500)"),
        "{}",
        error.cause
    );
    let hint = error.hint.unwrap();
    assert_mentions(
        &hint,
        &[
            "the store failed (HTTP 500): this is not a permission problem",
            "request id req-7",
        ],
    );
    assert!(
        !hint.contains("grant") && !hint.contains("not allowed"),
        "{hint}"
    );
}

#[tokio::test]
async fn a_store_without_an_api_it_is_read_with_names_the_compat_entry_to_add() {
    let lacking = mock!(Client::get_public_access_block).then_http_response(|| {
        store_answer(
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented",
        )
    });
    let error = observe_unconfigured(Some((3, lacking))).await.unwrap_err();
    assert_failed(
        &error,
        "reading the public access block of bucket `mocked-bucket`",
        &["add `public_access_block` to the spec's `compat.lacks`"],
    );
}
