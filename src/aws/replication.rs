//! Replication into the replica: reading and writing the replication role and the primary's
//! replication configuration. Rules of other owners are carried opaque (`kept`) and written
//! back exactly as read, since PutBucketReplication replaces the whole configuration.

use std::sync::Arc;

use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
    ReplicationConfiguration as SdkConfiguration, ReplicationRule as SdkRule,
    ReplicationRuleFilter, ReplicationRuleStatus, SourceSelectionCriteria, SseKmsEncryptedObjects,
    SseKmsEncryptedObjectsStatus,
};

use super::Clients;
use super::bucket::BucketAt;
use super::errors::{AwsError, Explained, Failure, codes};
use crate::observed::{
    ForeignReplicationRule, ReplicationConfiguration, ReplicationRule, ReplicationState, RoleState,
};
use crate::policy::PolicyDocument;
use crate::replication::{ROLE_POLICY_NAME, RULE_ID};
use crate::spec::IamArn;

/// The role (with its trust and inline policy) and the bucket's replication configuration,
/// all read at once.
pub async fn observe(bucket: BucketAt<'_>, role: &IamArn) -> Result<ReplicationState, AwsError> {
    let clients = bucket.clients;
    let (found, policy, configuration) = tokio::join!(
        read_role(clients, role.name()),
        super::iam::read_inline_policy(clients, role, ROLE_POLICY_NAME),
        read_configuration(clients, bucket.name, Some(bucket.account)),
    );
    let policy = policy?;
    Ok(ReplicationState {
        role: found?.map(|(arn, trust_policy)| RoleState {
            arn,
            trust_policy,
            policy,
        }),
        configuration: configuration?,
    })
}

/// The role's ARN and trust policy (decoded); `None` when it does not exist.
pub async fn read_role(
    clients: &Clients,
    role_name: &str,
) -> Result<Option<(String, String)>, AwsError> {
    match clients.iam.get_role().role_name(role_name).send().await {
        Ok(output) => Ok(output.role().map(|role| {
            (
                role.arn().to_owned(),
                role.assume_role_policy_document()
                    .map(super::iam::percent_decode)
                    .unwrap_or_default(),
            )
        })),
        Err(error) => match Failure::from_sdk(&error) {
            failure if failure.is(codes::IAM_NO_SUCH_ENTITY) => Ok(None),
            failure => Err(failure.into_error(
                format!("reading replication role `{role_name}` (iam:GetRole)"),
                clients,
            )),
        },
    }
}

/// The bucket's replication configuration; `None` when it has none or does not exist.
pub async fn read_configuration(
    clients: &Clients,
    bucket: &str,
    account: Option<&str>,
) -> Result<Option<ReplicationConfiguration>, AwsError> {
    match clients
        .s3
        .get_bucket_replication()
        .bucket(bucket)
        .set_expected_bucket_owner(account.map(str::to_owned))
        .send()
        .await
    {
        Ok(output) => Ok(output.replication_configuration().map(from_sdk)),
        Err(error) => match Failure::from_sdk(&error) {
            failure if failure.is(codes::NO_REPLICATION) || failure.is(codes::NO_SUCH_BUCKET) => {
                Ok(None)
            }
            failure => Err(failure.into_error(
                format!("reading the replication configuration of `{bucket}`"),
                clients,
            )),
        },
    }
}

fn from_sdk(configuration: &SdkConfiguration) -> ReplicationConfiguration {
    let mut owned = None;
    let mut foreign = Vec::new();
    for rule in configuration.rules() {
        if rule.id() == Some(RULE_ID) {
            owned = Some(owned_rule(rule));
        } else {
            foreign.push(ForeignReplicationRule {
                id: rule.id().unwrap_or("(no id)").to_owned(),
                priority: rule.priority(),
                destination: rule
                    .destination()
                    .map(|destination| destination.bucket().to_owned()),
                kept: Arc::new(rule.clone()),
            });
        }
    }
    ReplicationConfiguration {
        role: configuration.role().to_owned(),
        owned,
        foreign,
    }
}

/// statebucket's rule in the terms it is compared in.
fn owned_rule(rule: &SdkRule) -> ReplicationRule {
    // A rule without a filter is of the first schema version, which cannot replicate
    // delete markers: it is rewritten.
    let whole_bucket = rule.filter().is_some_and(|filter| {
        filter.prefix().unwrap_or_default().is_empty()
            && filter.tag().is_none()
            && filter.and().is_none()
    });
    let destination = rule.destination();
    ReplicationRule {
        id: rule.id().unwrap_or_default().to_owned(),
        priority: rule.priority().unwrap_or(0),
        enabled: rule.status() == &ReplicationRuleStatus::Enabled,
        whole_bucket,
        delete_markers: rule
            .delete_marker_replication()
            .and_then(DeleteMarkerReplication::status)
            == Some(&DeleteMarkerReplicationStatus::Enabled),
        destination: destination
            .map(Destination::bucket)
            .unwrap_or_default()
            .to_owned(),
        replica_kms_key: destination
            .and_then(Destination::encryption_configuration)
            .and_then(EncryptionConfiguration::replica_kms_key_id)
            .filter(|_| {
                rule.source_selection_criteria()
                    .and_then(SourceSelectionCriteria::sse_kms_encrypted_objects)
                    .map(SseKmsEncryptedObjects::status)
                    == Some(&SseKmsEncryptedObjectsStatus::Enabled)
            })
            .map(str::to_owned),
        storage_class: destination
            .and_then(Destination::storage_class)
            .map(|class| class.as_str().to_owned()),
    }
}

fn to_sdk(rule: &ReplicationRule) -> SdkRule {
    let mut destination = Destination::builder().bucket(&rule.destination);
    let mut builder = SdkRule::builder()
        .id(&rule.id)
        .priority(rule.priority)
        .status(if rule.enabled {
            ReplicationRuleStatus::Enabled
        } else {
            ReplicationRuleStatus::Disabled
        })
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(if rule.delete_markers {
                    DeleteMarkerReplicationStatus::Enabled
                } else {
                    DeleteMarkerReplicationStatus::Disabled
                })
                .build(),
        );
    if let Some(key) = &rule.replica_kms_key {
        destination = destination.encryption_configuration(
            EncryptionConfiguration::builder()
                .replica_kms_key_id(key)
                .build(),
        );
        builder = builder.source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::Enabled)
                        .build()
                        .expect("status is set"),
                )
                .build(),
        );
    }
    builder
        .destination(destination.build().expect("the bucket is set"))
        .build()
        .expect("status and destination are set")
}

/// Writes the configuration: the rules of other owners as read, then statebucket's.
pub async fn put_configuration(
    target: BucketAt<'_>,
    role: &str,
    rule: &ReplicationRule,
    foreign: &[ForeignReplicationRule],
) -> Result<(), AwsError> {
    let BucketAt {
        clients,
        name: bucket,
        account,
    } = target;
    // A rule of another owner is written back as read, or nothing is written.
    let mut rules = foreign
        .iter()
        .map(|rule| {
            rule.kept.downcast_ref::<SdkRule>().cloned().ok_or_else(|| {
                AwsError::new(
                    format!("writing the replication configuration of `{bucket}`"),
                    format!(
                        "rule `{}` was not read from S3, so it cannot be kept",
                        rule.id
                    ),
                    None,
                )
            })
        })
        .collect::<Result<Vec<SdkRule>, AwsError>>()?;
    rules.push(to_sdk(rule));
    let configuration = SdkConfiguration::builder()
        .role(role)
        .set_rules(Some(rules))
        .build()
        .expect("role and rules are set");
    clients
        .s3
        .put_bucket_replication()
        .bucket(bucket)
        .expected_bucket_owner(account)
        .replication_configuration(configuration)
        .send()
        .await
        .map(drop)
        .explained(clients, || {
            format!("writing the replication configuration of `{bucket}`")
        })
}

/// Creates the role S3 assumes, then its inline policy. A role that exists already (a run
/// stopped between the two calls, or another run) is taken as it is.
pub async fn create_role(
    clients: &Clients,
    role: &str,
    trust_policy: &PolicyDocument,
    policy_name: &str,
    policy: &PolicyDocument,
) -> Result<(), AwsError> {
    match clients
        .iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust_policy.to_compact_json())
        .description("S3 replication of Terraform state into its replica (statebucket)")
        .send()
        .await
    {
        Ok(_) => {}
        Err(error) => match Failure::from_sdk(&error) {
            failure if failure.is(codes::IAM_ENTITY_EXISTS) => {}
            failure => {
                return Err(failure.into_error(
                    format!("creating replication role `{role}` (iam:CreateRole)"),
                    clients,
                ));
            }
        },
    }
    clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy_name)
        .policy_document(policy.to_compact_json())
        .send()
        .await
        .map(drop)
        .explained(clients, || {
            format!("attaching policy `{policy_name}` to replication role `{role}`")
        })
}

/// The state object's replication as S3 reports it: the primary's current version and its
/// `ReplicationStatus`, and whether the replica holds that version (a replica keeps the
/// source version's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateReplication {
    pub version_id: Option<String>,
    /// `COMPLETED`, `PENDING`, `FAILED` or `REPLICA`; `None` for an object S3 was never
    /// asked to replicate (written before the rule existed).
    pub status: Option<String>,
    /// `None` when there is no version id to look for.
    pub replica_has_version: Option<bool>,
}

/// `Ok(None)`: no state at `key` yet.
pub async fn state_replication(
    primary: &Clients,
    replica: &Clients,
    bucket: &str,
    replica_bucket: &str,
    key: &str,
) -> Result<Option<StateReplication>, AwsError> {
    let head = match super::probe::head_object(primary, bucket, key).await {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(None),
        Err(failure) => {
            return Err(failure.into_error(
                format!("reading s3://{bucket}/{key} (s3:GetObject)"),
                primary,
            ));
        }
    };
    let version_id = head.version_id().map(str::to_owned);
    let replica_has_version = match &version_id {
        None => None,
        Some(version) => match replica
            .s3
            .head_object()
            .bucket(replica_bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
        {
            Ok(_) => Some(true),
            Err(error) => match Failure::from_sdk(&error) {
                failure if matches!(failure.status, Some(404 | 400)) => Some(false),
                failure => {
                    return Err(failure.into_error(
                        format!("reading version {version} of s3://{replica_bucket}/{key} (s3:GetObjectVersion)"),
                        replica,
                    ));
                }
            },
        },
    };
    Ok(Some(StateReplication {
        version_id,
        status: head
            .replication_status()
            .map(|status| status.as_str().to_owned()),
        replica_has_version,
    }))
}
