//! The requests of `statebucket probe`: one read of each API statebucket and Terraform's S3
//! backend use, against names the probe makes up (a bucket, a role) so that nothing is
//! read or written that exists; and, only with a scratch bucket, the writes that cannot be
//! probed by reading (conditional writes, writes under default encryption, settings written
//! and read back).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::bucket::BucketAt;
use super::errors::{AwsError, Failure, codes};
use super::{CallerIdentity, Clients};
use crate::capability::{Answer, Probed, Subject};
use crate::observed::{ObservedBucket, PublicAccessBlock, Versioning};
use crate::plan::{Change, Facet};
use crate::spec::StoreFeature;

/// The answers to a probe of the store `clients` reach; `caller` when the store has STS.
/// An error when no request could be sent or answered (no credentials, no endpoint): the
/// store said nothing about what it implements.
pub async fn probe_store(
    clients: &Clients,
    region: &str,
    scratch_bucket: Option<&str>,
    account: Option<&str>,
) -> Result<(Option<String>, Vec<Probed>), AwsError> {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    // Names nobody has: what exists is never read.
    let bucket = format!("statebucket-probe-{nonce}");
    let role = format!("statebucket-probe-{nonce}");
    let ((caller, apis), bucket_reads) =
        tokio::join!(api_probes(clients, &role), bucket_probes(clients, &bucket));
    let mut probed: Vec<Probed> = apis.into_iter().chain(bucket_reads?).collect();
    if let Some(scratch) = scratch_bucket {
        probed.extend(scratch_writes(clients, region, scratch).await);
        // S3 requests carry the account as the expected bucket owner, as apply sends them.
        let account = account.or(caller
            .as_ref()
            .map(|caller| caller.account.as_str())
            .filter(|account| !account.is_empty()));
        probed.extend(scratch_settings(clients, scratch, account).await);
    }
    Ok((caller.map(|caller| caller.arn), probed))
}

/// `served` for a read of a made-up bucket: NoSuchBucket, a 404, or one of `absent`
/// ("not configured") means the store has the API.
fn served_when_absent(absent: &'static [&'static str]) -> impl Fn(&Failure) -> bool {
    move |failure: &Failure| {
        failure.is(codes::NO_SUCH_BUCKET)
            || failure.status == Some(404)
            || absent.iter().any(|code| failure.is(code))
    }
}

/// STS, IAM and KMS, each as a whole API: the caller when STS answers.
async fn api_probes(clients: &Clients, role: &str) -> (Option<CallerIdentity>, Vec<Probed>) {
    let (caller, iam, kms) = tokio::join!(
        clients.sts.get_caller_identity().send(),
        clients.iam.get_role().role_name(role).send(),
        clients.kms.list_keys().limit(1).send(),
    );
    let caller_identity = caller
        .as_ref()
        .ok()
        .filter(|output| output.arn().is_some())
        .map(CallerIdentity::of);
    let optional =
        |feature, request, answer| Probed::new(Subject::Optional(feature), request, answer, true);
    (
        caller_identity,
        vec![
            optional(
                StoreFeature::Sts,
                "GetCallerIdentity",
                answer(caller, |_| false),
            ),
            optional(
                StoreFeature::Iam,
                "GetRole",
                answer(iam, served_when_absent(&[codes::IAM_NO_SUCH_ENTITY])),
            ),
            optional(StoreFeature::Kms, "ListKeys", answer(kms, |_| false)),
        ],
    )
}

/// The bucket APIs, read on a bucket nobody has; an error when nothing could be asked
/// (no credentials, no endpoint).
async fn bucket_probes(clients: &Clients, bucket: &str) -> Result<Vec<Probed>, AwsError> {
    let s3 = &clients.s3;
    let (public_access, ownership, tagging, versioning, encryption, lifecycle, policy) = tokio::join!(
        s3.get_public_access_block().bucket(bucket).send(),
        s3.get_bucket_ownership_controls().bucket(bucket).send(),
        s3.get_bucket_tagging().bucket(bucket).send(),
        s3.get_bucket_versioning().bucket(bucket).send(),
        s3.get_bucket_encryption().bucket(bucket).send(),
        s3.get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send(),
        s3.get_bucket_policy().bucket(bucket).send(),
    );
    if let Err(error) = &versioning {
        let failure = Failure::from_sdk(error);
        if failure.is_unanswered() {
            return Err(failure.into_error("probing the store (s3:GetBucketVersioning)", clients));
        }
    }
    let optional =
        |feature, request, answer| Probed::new(Subject::Optional(feature), request, answer, false);
    let required =
        |name, request, answer| Probed::new(Subject::Required(name), request, answer, false);
    Ok(vec![
        optional(
            StoreFeature::PublicAccessBlock,
            "GetPublicAccessBlock",
            answer(
                public_access,
                served_when_absent(&[codes::NO_PUBLIC_ACCESS_BLOCK]),
            ),
        ),
        optional(
            StoreFeature::OwnershipControls,
            "GetBucketOwnershipControls",
            answer(
                ownership,
                served_when_absent(&[codes::NO_OWNERSHIP_CONTROLS]),
            ),
        ),
        optional(
            StoreFeature::Tagging,
            "GetBucketTagging",
            answer(tagging, served_when_absent(&[codes::NO_TAG_SET])),
        ),
        required(
            "versioning",
            "GetBucketVersioning",
            answer(versioning, served_when_absent(&[])),
        ),
        required(
            "default encryption",
            "GetBucketEncryption",
            answer(encryption, served_when_absent(&[codes::SSE_NOT_FOUND])),
        ),
        required(
            "lifecycle rules",
            "GetBucketLifecycleConfiguration",
            answer(lifecycle, served_when_absent(&[codes::NO_LIFECYCLE])),
        ),
        required(
            "bucket policy",
            "GetBucketPolicy",
            answer(policy, served_when_absent(&[codes::NO_BUCKET_POLICY])),
        ),
    ])
}

fn answer<O, E>(sent: Result<O, SdkError<E, Response>>, served: impl Fn(&Failure) -> bool) -> Answer
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Answer::Served,
        Err(error) => refused(&Failure::from_sdk(&error), served),
    }
}

fn refused(failure: &Failure, served: impl Fn(&Failure) -> bool) -> Answer {
    if served(failure) {
        return Answer::Served;
    }
    Answer::Refused {
        status: failure.status,
        code: failure.code.clone(),
        message: failure.message.clone(),
    }
}

/// A request the shell's own calls (create, write_setting, reread) made and the store refused.
fn refused_with(error: AwsError) -> Answer {
    Answer::Refused {
        status: error.status,
        code: error.code,
        message: error.cause,
    }
}

/// The writes reading cannot show, in `bucket` (created when absent, never deleted):
/// a second conditional PutObject of a key that exists, as a second Terraform run sends
/// it, must be refused; a PutObject after default encryption is turned on must succeed.
async fn scratch_writes(clients: &Clients, region: &str, bucket: &str) -> Vec<Probed> {
    let s3 = &clients.s3;
    let required =
        |name, request, answer| Probed::new(Subject::Required(name), request, answer, true);
    // As apply creates a bucket (the region's location constraint; one this identity owns
    // already is taken as it is), with nothing a store may lack.
    let new_bucket = super::bucket::NewBucket {
        tags: &std::collections::BTreeMap::new(),
        owner_enforced: false,
        object_lock: false,
    };
    if let Err(error) = super::bucket::create(clients, bucket, region, new_bucket).await {
        return vec![required(
            "scratch bucket",
            "CreateBucket",
            refused_with(error),
        )];
    }
    let key = "statebucket-probe/terraform.tfstate.tflock";
    let take = || {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from_static(b"{\"Info\":\"statebucket probe\"}"))
            .send()
    };
    // A lock left by an earlier probe makes the first refused too; the second tells.
    let _ = take().await;
    let conditional = match take().await {
        Ok(_) => Answer::Refused {
            status: Some(200),
            code: None,
            message: "a second conditional PutObject of a key that exists succeeded".to_owned(),
        },
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            refused(&failure, Failure::is_condition_refused)
        }
    };
    let encrypted = async {
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .expect("the algorithm is set"),
            )
            .build();
        let configuration = ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .expect("a rule is set");
        if let Err(error) = s3
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
            .await
        {
            return refused(&Failure::from_sdk(&error), |_| false);
        }
        answer(
            s3.put_object()
                .bucket(bucket)
                .key("statebucket-probe/encrypted")
                .body(ByteStream::from_static(b"statebucket probe"))
                .send()
                .await,
            |_| false,
        )
    }
    .await;
    vec![
        required(
            "conditional writes",
            "PutObject If-None-Match: * (second)",
            conditional,
        ),
        required(
            "encrypted writes",
            "PutObject under default encryption AES256",
            encrypted,
        ),
    ]
}

/// The settings apply writes, each written to the scratch bucket and read back, one after
/// another: a store may answer a write it does not keep (SeaweedFS 4.48 loses one of
/// several configuration writes made at once; apply then never converges). Read back for
/// a few seconds, as S3 documents bucket configuration as eventually consistent.
async fn scratch_settings(clients: &Clients, bucket: &str, account: Option<&str>) -> Vec<Probed> {
    const PROBE_TAG: (&str, &str) = ("statebucket-probe", "kept");
    let requests = [
        (
            Subject::Required("versioning"),
            "PutBucketVersioning Enabled, read back",
        ),
        (
            Subject::Optional(StoreFeature::PublicAccessBlock),
            "PutPublicAccessBlock (all 4), read back",
        ),
        (
            Subject::Optional(StoreFeature::OwnershipControls),
            "PutBucketOwnershipControls BucketOwnerEnforced, read back",
        ),
        (
            Subject::Optional(StoreFeature::Tagging),
            "PutBucketTagging, read back",
        ),
    ];
    let Some(account) = account else {
        let unknown = Answer::Refused {
            status: None,
            code: None,
            message: "not tried: the store has no STS to name the account that apply sends as the expected bucket owner (--account-id names it)".to_owned(),
        };
        return requests
            .into_iter()
            .map(|(subject, request)| Probed::new(subject, request, unknown.clone(), false))
            .collect();
    };
    let at = BucketAt::new(clients, bucket, account);
    let mut observed = ObservedBucket::unconfigured("");
    // The scratch bucket's own tags are kept: PutBucketTagging replaces them all.
    if super::bucket::reread(at, &[Facet::Tags], &mut observed)
        .await
        .is_err()
    {
        observed.tags.clear();
    }
    let mut tags = observed.tags.clone();
    tags.insert(PROBE_TAG.0.to_owned(), PROBE_TAG.1.to_owned());
    let kept_tag: Kept =
        |observed| observed.tags.get(PROBE_TAG.0).map(String::as_str) == Some(PROBE_TAG.1);
    let settings: [(Change, Kept); 4] = [
        (
            Change::EnableVersioning {
                from: Versioning::Never,
            },
            |observed| observed.versioning == Versioning::Enabled,
        ),
        (
            Change::BlockPublicAccess {
                from: PublicAccessBlock::default(),
            },
            |observed| observed.public_access == PublicAccessBlock::ALL,
        ),
        (Change::EnforceBucketOwner { from: None }, |observed| {
            observed.ownership.as_deref() == Some(crate::desired::OBJECT_OWNERSHIP)
        }),
        (
            Change::MergeTags {
                from: observed.tags.clone(),
                to: tags,
            },
            kept_tag,
        ),
    ];
    let mut probed = Vec::new();
    for ((subject, request), (change, kept)) in requests.into_iter().zip(settings) {
        let answer = match super::bucket::write_setting(&at, &change, None).await {
            Err(error) => refused_with(error),
            Ok(_) => read_back(at, change.facet(), kept, &mut observed).await,
        };
        probed.push(Probed::new(subject, request, answer, false));
    }
    probed
}

/// Whether a read of the bucket shows the setting written.
type Kept = fn(&ObservedBucket) -> bool;

/// How long a setting written may take to show (S3 documents bucket configuration as
/// eventually consistent); apply's verify waits `--settle-timeout` the same way.
const READ_BACK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(4);

/// `Kept` once a read shows the setting, `NotKept` when none does within
/// `READ_BACK_PATIENCE` (read again as verify reads, `until_settled`).
async fn read_back(
    at: BucketAt<'_>,
    facet: Facet,
    kept: Kept,
    observed: &mut ObservedBucket,
) -> Answer {
    let mut read = async || {
        super::bucket::reread(at, &[facet], observed).await?;
        Ok::<_, AwsError>(kept(observed))
    };
    let first = match read().await {
        Ok(shown) => shown,
        Err(error) => return refused_with(error),
    };
    let settled = super::bucket::until_settled(
        first,
        READ_BACK_PATIENCE,
        |shown| *shown,
        async |_| read().await,
    );
    match settled.await {
        Ok((true, _)) => Answer::Kept,
        Ok((false, waited)) => Answer::NotKept {
            message: format!(
                "accepted, but {facet} read back without it for {:.1} s",
                waited.as_secs_f64()
            ),
        },
        Err(error) => refused_with(error),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::Client;
    use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
    use aws_sdk_s3::types::BucketVersioningStatus;
    use aws_smithy_mocks::mock;

    use super::*;

    /// The probe's read-back of versioning, as a store answers it with `statuses` in turn
    /// (the last one from then on).
    async fn versioning_read_back(statuses: &[BucketVersioningStatus]) -> (Answer, usize) {
        let mut reads = mock!(Client::get_bucket_versioning).sequence();
        for status in statuses {
            let status = status.clone();
            reads = reads.output(move || {
                GetBucketVersioningOutput::builder()
                    .status(status.clone())
                    .build()
            });
        }
        let last = statuses.last().unwrap().clone();
        let reads = reads
            .output(move || {
                GetBucketVersioningOutput::builder()
                    .status(last.clone())
                    .build()
            })
            .repeatedly()
            .build();
        let clients = crate::aws::mocked::clients(&[&reads]);
        let at = BucketAt::new(&clients, "mocked-bucket", "123456789012");
        let mut observed = ObservedBucket::unconfigured("");
        let kept: Kept = |observed| observed.versioning == Versioning::Enabled;
        let answer = read_back(at, Facet::Versioning, kept, &mut observed).await;
        (answer, reads.num_calls())
    }

    #[tokio::test(start_paused = true)]
    async fn a_setting_shown_late_is_kept_and_one_never_shown_is_not() {
        let (late, reads) = versioning_read_back(&[
            BucketVersioningStatus::Suspended,
            BucketVersioningStatus::Enabled,
        ])
        .await;
        assert_eq!(late, Answer::Kept);
        assert_eq!(reads, 2, "read again once");
        let (lost, reads) = versioning_read_back(&[BucketVersioningStatus::Suspended]).await;
        let Answer::NotKept { message } = lost else {
            panic!("{lost:?}")
        };
        assert!(
            message.starts_with("accepted, but versioning read back without it for 3."),
            "{message}"
        );
        // At once, then after 0.25, 0.5, 1 and 2 s: within the 4 s of patience.
        assert_eq!(reads, 5);
    }
}
