//! The reads of `statebucket audit`: the bucket policy, the key and its policy, CloudTrail's
//! record of the key, and each stack's current state. A read the caller may not make is
//! recorded as lacked and the audit goes on; only no credentials, or no endpoint, stop it.

use std::time::Duration;

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::DateTime;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Clients;
use super::errors::{AwsError, Failure, codes};
use crate::audit::{Gathered, GatheredIdentity, GatheredKey, Lacked};
use crate::progress::Task;
use crate::spec::{Encryption, EnvSpec, PrincipalKind};

/// CloudTrail serves LookupEvents at 2 requests per second per account and region.
const LOOKUP_PAUSE: Duration = Duration::from_millis(500);

/// What the audit of `spec` reads, over the last `days` days until `now`.
pub async fn gather(
    clients: &Clients,
    spec: &EnvSpec,
    days: u32,
    now: DateTime,
    progress: &dyn Task,
) -> Result<Gathered, AwsError> {
    let bucket = spec.bucket.name.as_str();
    let start = DateTime::from_secs(now.secs() - i64::from(days) * 86_400);
    progress.step("reading the bucket policy and the states");
    let (bucket_policy, states) = tokio::join!(
        bucket_policy(clients, bucket),
        futures::future::join_all(spec.stacks.iter().map(|stack| state(
            clients,
            bucket,
            stack.key.as_str()
        ))),
    );
    let bucket_policy = bucket_policy?;
    let states = states.into_iter().collect::<Result<Vec<_>, AwsError>>()?;
    // The account's IAM policies and CloudTrail are independent: read side by side.
    let identities = async {
        if spec.lacks(crate::spec::StoreFeature::Iam) {
            return Ok(None);
        }
        progress.step("reading the account's IAM policies");
        identities(clients).await.map(Some)
    };
    let trail = async {
        match &spec.bucket.encryption {
            Encryption::Kms(key) => Ok((
                Some(key_facts(clients, bucket, key.reference(), start, now, progress).await?),
                None,
            )),
            _ => Ok((None, Some(data_event_trail(clients, bucket).await?))),
        }
    };
    let (identities, (key, data_event_trail)) = tokio::try_join!(identities, trail)?;
    Ok(Gathered {
        identities,
        bucket_policy,
        key,
        states,
        data_event_trail,
        since: (
            days,
            start
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default(),
        ),
    })
}

/// A refused read as lacked; no credentials or no endpoint as the error that stops all.
fn lacked<E>(
    error: &SdkError<E, Response>,
    permission: &'static str,
    clients: &Clients,
) -> Result<Lacked, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = Failure::from_sdk(error);
    if failure.is_unanswered() {
        return Err(failure.into_error(format!("auditing ({permission})"), clients));
    }
    Ok(refusal(&failure, permission))
}

/// What the audit lacked, as AWS said it.
fn refusal(failure: &Failure, permission: &'static str) -> Lacked {
    Lacked {
        permission,
        cause: format!("{}: {}", failure.short(), failure.message),
    }
}

async fn bucket_policy(
    clients: &Clients,
    bucket: &str,
) -> Result<Result<Option<String>, Lacked>, AwsError> {
    match clients.s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(output) => Ok(Ok(output.policy().map(str::to_owned))),
        Err(error) if Failure::from_sdk(&error).is(codes::NO_BUCKET_POLICY) => Ok(Ok(None)),
        Err(error) if Failure::from_sdk(&error).is(codes::NO_SUCH_BUCKET) => Err(AwsError::new(
            format!("auditing bucket `{bucket}`"),
            "the bucket does not exist",
            Some("run `statebucket apply` for this environment first, or check the spec's bucket name and --endpoint-url".to_owned()),
        )),
        Err(error) => lacked(&error, "s3:GetBucketPolicy", clients).map(Err),
    }
}

async fn state(
    clients: &Clients,
    bucket: &str,
    key: &str,
) -> Result<Result<Option<Vec<u8>>, Lacked>, AwsError> {
    match clients.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(output) => match output.body.collect().await {
            Ok(bytes) => Ok(Ok(Some(bytes.into_bytes().to_vec()))),
            Err(error) => Ok(Err(Lacked {
                permission: "s3:GetObject on state",
                cause: format!("the object could not be read to its end: {error}"),
            })),
        },
        Err(error) if Failure::from_sdk(&error).is(codes::NO_SUCH_KEY) => Ok(Ok(None)),
        Err(error) => lacked(
            &error,
            "s3:GetObject on state (and kms:Decrypt with a KMS key)",
            clients,
        )
        .map(Err),
    }
}

async fn key_facts(
    clients: &Clients,
    bucket: &str,
    reference: &str,
    start: DateTime,
    end: DateTime,
    progress: &dyn Task,
) -> Result<GatheredKey, AwsError> {
    let arn = match clients.kms.describe_key().key_id(reference).send().await {
        Ok(output) => output
            .key_metadata()
            .and_then(|metadata| metadata.arn())
            .unwrap_or(reference)
            .to_owned(),
        Err(error) => {
            let missing = lacked(&error, "kms:DescribeKey", clients)?;
            return Ok(GatheredKey {
                arn: reference.to_owned(),
                policy: Err(missing.clone()),
                events: Err(Lacked {
                    permission: "cloudtrail:LookupEvents",
                    cause: "not asked: the key could not be described".to_owned(),
                }),
                bucket_key: false,
            });
        }
    };
    let policy = match clients
        .kms
        .get_key_policy()
        .key_id(&arn)
        .policy_name("default")
        .send()
        .await
    {
        Ok(output) => Ok(output.policy().map(str::to_owned)),
        Err(error) => Err(lacked(&error, "kms:GetKeyPolicy", clients)?),
    };
    let bucket_key = clients
        .s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .ok()
        .and_then(|output| {
            output
                .server_side_encryption_configuration()
                .and_then(|configuration| configuration.rules().first())
                .and_then(|rule| rule.bucket_key_enabled())
        })
        .unwrap_or(false);
    let events = key_events(clients, &arn, start, end, progress).await?;
    Ok(GatheredKey {
        arn,
        policy,
        events,
        bucket_key,
    })
}

/// Every CloudTrail event of the window that names the key, page by page, at CloudTrail's
/// rate; the `CloudTrailEvent` JSON of each.
async fn key_events(
    clients: &Clients,
    key_arn: &str,
    start: DateTime,
    end: DateTime,
    progress: &dyn Task,
) -> Result<Result<Vec<String>, Lacked>, AwsError> {
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::ResourceName)
        .attribute_value(key_arn)
        .build()
        .expect("key and value are set");
    let cloudtrail = clients.cloudtrail();
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    for page in 1.. {
        if page > 1 {
            tokio::time::sleep(LOOKUP_PAUSE).await;
        }
        progress.step(&format!("CloudTrail: page {page}, {} events", events.len()));
        let answer = cloudtrail
            .lookup_events()
            .lookup_attributes(attribute.clone())
            .start_time(start)
            .end_time(end)
            .max_results(50)
            .set_next_token(token.take())
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(error) => {
                return lacked(&error, "cloudtrail:LookupEvents", clients).map(Err);
            }
        };
        events.extend(
            output
                .events()
                .iter()
                .filter_map(|event| event.cloud_trail_event().map(str::to_owned)),
        );
        match output.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(Ok(events))
}

/// A user or a role of the account.
struct Identity {
    kind: PrincipalKind,
    name: String,
    arn: String,
}

/// Every user and role of the account (service-linked roles left out) with the documents of
/// its inline and attached policies. Managed policies are read once.
async fn identities(clients: &Clients) -> Result<Result<Vec<GatheredIdentity>, Lacked>, AwsError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let iam = &clients.iam;
    let mut found = Vec::new();
    let mut users = iam.list_users().into_paginator().send();
    while let Some(page) = users.next().await {
        match page {
            Ok(page) => found.extend(page.users().iter().map(|user| Identity {
                kind: PrincipalKind::User,
                name: user.user_name().to_owned(),
                arn: user.arn().to_owned(),
            })),
            Err(error) => return lacked(&error, "iam:ListUsers", clients).map(Err),
        }
    }
    let mut roles = iam.list_roles().into_paginator().send();
    while let Some(page) = roles.next().await {
        match page {
            Ok(page) => found.extend(
                page.roles()
                    .iter()
                    .filter(|role| !role.path().starts_with("/aws-service-role/"))
                    .map(|role| Identity {
                        kind: PrincipalKind::Role,
                        name: role.role_name().to_owned(),
                        arn: role.arn().to_owned(),
                    }),
            ),
            Err(error) => return lacked(&error, "iam:ListRoles", clients).map(Err),
        }
    }
    let managed = tokio::sync::Mutex::new(std::collections::HashMap::<String, String>::new());
    let gathered: Result<Vec<GatheredIdentity>, Lacked> = stream::iter(found)
        .map(|principal| {
            let managed = &managed;
            async move {
                let documents = policy_documents(clients, &principal, managed).await?;
                Ok::<_, Lacked>(GatheredIdentity {
                    principal: principal.arn,
                    documents,
                })
            }
        })
        .buffer_unordered(8)
        .try_collect()
        .await;
    Ok(gathered)
}

/// The inline and attached policy documents of one user or role, decoded.
async fn policy_documents(
    clients: &Clients,
    principal: &Identity,
    managed: &tokio::sync::Mutex<std::collections::HashMap<String, String>>,
) -> Result<Vec<(String, String)>, Lacked> {
    let iam = &clients.iam;
    let name = principal.name.as_str();
    let arns = |policies: &[aws_sdk_iam::types::AttachedPolicy]| -> Vec<String> {
        policies
            .iter()
            .filter_map(|policy| policy.policy_arn().map(str::to_owned))
            .collect()
    };
    let kind = principal.kind;
    let refused = |user_permission, role_permission| {
        let permission = match kind {
            PrincipalKind::User => user_permission,
            PrincipalKind::Role => role_permission,
        };
        move |failure: Failure| refusal(&failure, permission)
    };
    let inline = super::iam::user_or_role!(kind, iam, name,
        list_user_policies | list_role_policies => |output| output.policy_names().to_vec())
    .map_err(refused("iam:ListUserPolicies", "iam:ListRolePolicies"))?;
    let attached = super::iam::user_or_role!(kind, iam, name,
        list_attached_user_policies | list_attached_role_policies
        => |output| arns(output.attached_policies()))
    .map_err(refused(
        "iam:ListAttachedUserPolicies",
        "iam:ListAttachedRolePolicies",
    ))?;
    let mut documents = Vec::new();
    for policy in inline {
        let document = super::iam::user_or_role!(kind, iam, name,
            get_user_policy | get_role_policy, policy_name(&policy)
            => |output| output.policy_document().to_owned())
        .map_err(refused("iam:GetUserPolicy", "iam:GetRolePolicy"))?;
        // IAM returns policy documents URL-encoded (RFC 3986).
        documents.push((policy, super::iam::percent_decode(&document)));
    }
    for arn in attached {
        if let Some(known) = managed.lock().await.get(&arn) {
            documents.push((arn.clone(), known.clone()));
            continue;
        }
        let sent = iam.get_policy().policy_arn(&arn).send().await;
        let version = iam_answer(sent, "iam:GetPolicy")?
            .policy()
            .and_then(|policy| policy.default_version_id().map(str::to_owned))
            .unwrap_or_else(|| "v1".to_owned());
        let sent = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send();
        let document = iam_answer(sent.await, "iam:GetPolicyVersion")?
            .policy_version()
            .and_then(|version| version.document().map(super::iam::percent_decode))
            .unwrap_or_default();
        managed.lock().await.insert(arn.clone(), document.clone());
        documents.push((arn, document));
    }
    Ok(documents)
}

/// An IAM read's answer, or what the audit lacked for it.
fn iam_answer<O, E>(
    sent: Result<O, SdkError<E, Response>>,
    permission: &'static str,
) -> Result<O, Lacked>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    sent.map_err(|error| refusal(&Failure::from_sdk(&error), permission))
}

/// A trail that records S3 data events for `bucket`: its name, `None` when none does.
async fn data_event_trail(
    clients: &Clients,
    bucket: &str,
) -> Result<Result<Option<String>, Lacked>, AwsError> {
    let cloudtrail = clients.cloudtrail();
    let trails = match cloudtrail.describe_trails().send().await {
        Ok(output) => output.trail_list().to_vec(),
        Err(error) => return lacked(&error, "cloudtrail:DescribeTrails", clients).map(Err),
    };
    for trail in trails {
        let Some(name) = trail.trail_arn().or(trail.name()) else {
            continue;
        };
        let selectors = match cloudtrail
            .get_event_selectors()
            .trail_name(name)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                return lacked(&error, "cloudtrail:GetEventSelectors", clients).map(Err);
            }
        };
        let classic = selectors.event_selectors().iter().any(|selector| {
            selector.data_resources().iter().any(|resource| {
                resource.r#type() == Some("AWS::S3::Object")
                    && resource.values().iter().any(|value| covers(value, bucket))
            })
        });
        let advanced = selectors.advanced_event_selectors().iter().any(|selector| {
            let fields = selector.field_selectors();
            let field = |name: &str| fields.iter().find(|field| field.field() == name);
            field("resources.type").is_some_and(|field| {
                field
                    .equals()
                    .iter()
                    .any(|value| value == "AWS::S3::Object")
            }) && field("resources.ARN").is_none_or(|field| {
                field
                    .starts_with()
                    .iter()
                    .chain(field.equals())
                    .any(|value| covers(value, bucket))
            })
        });
        if classic || advanced {
            return Ok(Ok(Some(trail.name().unwrap_or(name).to_owned())));
        }
    }
    Ok(Ok(None))
}

/// Whether a selector's ARN value covers the bucket's objects.
fn covers(value: &str, bucket: &str) -> bool {
    let objects = format!("arn:aws:s3:::{bucket}/");
    value == "arn:aws:s3"
        || value == "arn:aws:s3:::"
        || objects.starts_with(value)
        || value.starts_with(&objects)
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudtrail::Client;
    use aws_sdk_cloudtrail::error::ErrorMetadata;
    use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
    use aws_sdk_cloudtrail::types::Event;
    use aws_smithy_mocks::mock;
    use serde_json::json;

    use super::*;
    use crate::progress::Silent;

    /// A Decrypt S3 made for `principal`, as the `CloudTrailEvent` string carries it.
    fn decrypt(principal: &str, object: &str) -> Event {
        let record = json!({
            "eventVersion": "1.11",
            "userIdentity": {"type": "AssumedRole", "arn": principal, "accountId": "123456789012", "invokedBy": "s3.amazonaws.com"},
            "eventTime": "2026-12-01T10:00:00Z",
            "eventSource": "kms.amazonaws.com",
            "eventName": "Decrypt",
            "sourceIPAddress": "s3.amazonaws.com",
            "userAgent": "s3.amazonaws.com",
            "requestParameters": {"encryptionContext": {"aws:s3:arn": if object.is_empty() {
                "arn:aws:s3:::central-state".to_owned()
            } else {
                format!("arn:aws:s3:::central-state/{object}")
            }}},
        });
        Event::builder()
            .event_name("Decrypt")
            .cloud_trail_event(record.to_string())
            .build()
    }

    /// The events of the test key over one week, read through `clients`' mocked CloudTrail.
    async fn week_of_key_events(clients: &Clients) -> Result<Vec<String>, Lacked> {
        let (start, end) = (
            DateTime::from_secs(1_764_000_000),
            DateTime::from_secs(1_764_604_800),
        );
        let key = "arn:aws:kms:eu-west-1:123456789012:key/k";
        key_events(clients, key, start, end, &Silent).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn every_page_is_read_at_cloudtrails_rate_and_throttling_is_waited_out() {
        let pages = mock!(Client::lookup_events)
            .sequence()
            .output(|| {
                LookupEventsOutput::builder()
                    .events(decrypt(
                        "arn:aws:sts::123456789012:assumed-role/network-ci/run-1",
                        "network/terraform.tfstate",
                    ))
                    .events(decrypt(
                        "arn:aws:iam::123456789012:user/intruder",
                        "network/terraform.tfstate",
                    ))
                    .next_token("page-2")
                    .build()
            })
            .error(|| {
                LookupEventsError::generic(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
            .output(|| {
                LookupEventsOutput::builder()
                    .events(decrypt(
                        "arn:aws:sts::123456789012:assumed-role/network-ci/run-2",
                        "env:/staging/network/terraform.tfstate",
                    ))
                    // With an S3 Bucket Key the context is the bucket itself.
                    .events(decrypt(
                        "arn:aws:sts::123456789012:assumed-role/network-ci/run-3",
                        "",
                    ))
                    .build()
            })
            .build();
        let clients = crate::aws::mocked::clients_with_cloudtrail(&[], &[&pages]);
        let started = tokio::time::Instant::now();
        let events = week_of_key_events(&clients).await.unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(
            pages.num_calls(),
            3,
            "two pages, one throttled answer retried"
        );
        assert!(
            started.elapsed() >= LOOKUP_PAUSE,
            "the second page waited for CloudTrail's rate"
        );
        let stacks = [crate::audit::StackKeys {
            stack: "network",
            key: "network/terraform.tfstate",
            workspace_prefix: "env:",
        }];
        let listed = ["arn:aws:iam::123456789012:role/network-ci".to_owned()];
        let uses: Vec<crate::audit::KeyUse> = events
            .iter()
            .filter_map(|event| {
                crate::audit::trail::key_use(event, "central-state", &stacks, &listed)
            })
            .collect();
        let unlisted: Vec<&str> = uses
            .iter()
            .filter(|key_use| !key_use.listed)
            .map(|key_use| key_use.principal.as_str())
            .collect();
        assert_eq!(unlisted, vec!["arn:aws:iam::123456789012:user/intruder"]);
        assert!(matches!(
            &uses[2].touched,
            crate::audit::Touched::Stack { workspace: Some(workspace), .. } if workspace == "staging"
        ));
        assert_eq!(uses[3].touched, crate::audit::Touched::Bucket);
    }

    #[tokio::test]
    async fn a_denied_lookup_is_named_as_lacked_and_the_audit_goes_on() {
        let denied = mock!(Client::lookup_events).then_error(|| {
            LookupEventsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("User is not authorized to perform: cloudtrail:LookupEvents")
                    .build(),
            )
        });
        let clients = crate::aws::mocked::clients_with_cloudtrail(&[], &[&denied]);
        let lacked = week_of_key_events(&clients).await.unwrap_err();
        assert_eq!(lacked.permission, "cloudtrail:LookupEvents");
        assert!(lacked.cause.contains("not authorized"), "{}", lacked.cause);
    }
}
