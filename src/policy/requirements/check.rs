//! Checking the table: each row's request evaluated against the documents the environment
//! generates, with the project's evaluator.

use crate::desired::{DesiredBucket, DesiredStack};
use crate::policy::evaluate::{self, Caller};
use crate::policy::{
    PolicyDocument, StateArns, bucket_arn, identity_policy_for, key_resource, merge,
};
use crate::spec::{Encryption, EnvSpec, IamArn, KmsKey, TofuEncryption};

/// A policy document statebucket writes.
use super::*;

pub(super) struct Request {
    pub(super) caller: Caller,
    /// The principal as the spec or statebucket names it (for identity policies and the
    /// message).
    pub(super) principal: String,
    pub(super) resource: String,
    pub(super) context: Vec<(&'static str, String)>,
}

/// The documents statebucket writes for one bucket.
pub(super) struct Documents<'d> {
    pub(super) desired: &'d DesiredBucket<'d>,
    pub(super) replica: Option<EnvSpec>,
    pub(super) bucket_policy: PolicyDocument,
    pub(super) key_grants: PolicyDocument,
}

impl<'d> Documents<'d> {
    pub(super) fn of(desired: &'d DesiredBucket<'d>) -> Documents<'d> {
        Documents {
            desired,
            replica: desired.spec.replica_spec(),
            bucket_policy: merge(None, &desired.policy),
            key_grants: merge(None, &desired.key_grants),
        }
    }

    pub(super) fn spec(&self) -> &EnvSpec {
        self.desired.spec
    }

    pub(super) fn applies(&self, when: When) -> bool {
        let spec = self.spec();
        let kms = |spec: &EnvSpec| matches!(spec.bucket.encryption, Encryption::Kms(_));
        match when {
            When::Always => true,
            When::Kms => kms(spec),
            When::CreatedKey => {
                matches!(spec.bucket.encryption, Encryption::Kms(KmsKey::Managed(_)))
            }
            When::TofuKey => matches!(
                spec.tofu_encryption,
                Some(TofuEncryption { key: Some(_), .. })
            ),
            When::SeveralStacks => self.desired.stacks.len() > 1,
            When::Replica => self.desired.replication.is_some(),
            When::ReplicaKms => self.desired.replication.is_some() && kms(spec),
            When::ReplicaObjectLock => self
                .replica
                .as_ref()
                .is_some_and(|replica| replica.bucket.object_lock.is_some()),
            When::Logging => self.desired.log_delivery.is_some(),
            When::LockTable => !spec.lock_tables().is_empty(),
        }
    }

    pub(super) fn bucket_arn(&self) -> String {
        bucket_arn(self.spec().region.partition(), &self.spec().bucket.name)
    }

    /// The requests a requirement stands for: each principal it names on each stack, or the
    /// service's one request.
    pub(super) fn requests(&self, requirement: &Requirement) -> Vec<Request> {
        let spec = self.spec();
        let account = self.desired.account.as_str();
        let partition = spec.region.partition();
        match requirement.who {
            Who::S3 { for_account } => {
                let Some(replication) = &self.desired.replication else {
                    return Vec::new();
                };
                let source_account = if for_account { account } else { "999999999999" };
                vec![Request {
                    caller: Caller::service(
                        partition,
                        crate::replication::S3_SERVICE,
                        source_account,
                    ),
                    principal: crate::replication::S3_SERVICE.to_owned(),
                    resource: replication.role_arn.to_string(),
                    context: vec![("aws:SourceAccount", source_account.to_owned())],
                }]
            }
            Who::LogDelivery { for_bucket } => {
                let Some(logging) = &spec.bucket.logging else {
                    return Vec::new();
                };
                let source = if for_bucket {
                    self.bucket_arn()
                } else {
                    format!("arn:{partition}:s3:::another-bucket")
                };
                vec![Request {
                    caller: Caller::service(partition, "logging.s3.amazonaws.com", account),
                    principal: "logging.s3.amazonaws.com".to_owned(),
                    resource: format!(
                        "arn:{partition}:s3:::{}/{}2026-12-04-00-00-00-0000000000000000",
                        logging.bucket, logging.prefix
                    ),
                    context: vec![
                        ("aws:SourceArn", source),
                        ("aws:SourceAccount", account.to_owned()),
                    ],
                }]
            }
            who => {
                let mut requests = Vec::new();
                for stack in &self.desired.stacks {
                    let Some((resource, context)) = self.target(requirement.target, stack.spec)
                    else {
                        continue;
                    };
                    for arn in self.principals(who, stack) {
                        requests.push(Request {
                            caller: Caller::for_principal(&arn),
                            principal: arn.to_string(),
                            resource: resource.clone(),
                            context: context.clone(),
                        });
                    }
                }
                requests
            }
        }
    }

    /// The users and roles `who` stands for on `stack`.
    pub(super) fn principals(&self, who: Who, stack: &DesiredStack<'_>) -> Vec<IamArn> {
        let spec = self.spec();
        match who {
            Who::Writer => stack.writers.clone(),
            Who::Reader => stack
                .readers
                .iter()
                .filter(|reader| !stack.writers.contains(reader))
                .cloned()
                .collect(),
            Who::OtherStackWriter => self
                .desired
                .stacks
                .iter()
                .flat_map(|other| &other.writers)
                .filter(|writer| !stack.writers.contains(writer) && !stack.readers.contains(writer))
                .cloned()
                .collect(),
            Who::Unlisted => vec![
                IamArn::parse(&format!(
                    "arn:{}:iam::{}:user/statebucket-unlisted-principal",
                    spec.region.partition(),
                    self.desired.account
                ))
                .expect("a user ARN"),
            ],
            Who::ReplicationRole => self
                .desired
                .replication
                .iter()
                .map(|replication| replication.role_arn.clone())
                .collect(),
            Who::S3 { .. } | Who::LogDelivery { .. } => Vec::new(),
        }
    }

    /// The resource ARN and the condition keys of a request on `target` for `stack`.
    pub(super) fn target(
        &self,
        target: Target,
        stack: &crate::spec::StackSpec,
    ) -> Option<(String, Vec<(&'static str, String)>)> {
        let spec = self.spec();
        let bucket = self.bucket_arn();
        let arns = StateArns::of(&bucket, stack);
        let workspace = |pattern: &str| pattern.replacen('*', "staging", 1);
        Some(match target {
            Target::Bucket => (bucket, Vec::new()),
            Target::State | Target::SourceObjects => (arns.state, Vec::new()),
            Target::WorkspaceState => (workspace(&arns.workspace_state), Vec::new()),
            Target::Lock => (arns.lock, Vec::new()),
            Target::WorkspaceLock => (workspace(&arns.workspace_lock), Vec::new()),
            Target::StateKey => {
                let Encryption::Kms(key) = &spec.bucket.encryption else {
                    return None;
                };
                self.key_target(spec, key, Some(bucket))
            }
            Target::StateKeyDirectly => {
                let Encryption::Kms(key) = &spec.bucket.encryption else {
                    return None;
                };
                self.key_target(spec, key, None)
            }
            Target::TofuKey => {
                let key = spec.tofu_encryption.as_ref()?.key.as_ref()?;
                self.key_target(spec, key, None)
            }
            Target::ReplicaObjects => {
                let replica = self.replica.as_ref()?;
                let replica_bucket = bucket_arn(replica.region.partition(), &replica.bucket.name);
                (format!("{replica_bucket}/{}", stack.key), Vec::new())
            }
            Target::ReplicaKey => {
                let replica = self.replica.as_ref()?;
                let Encryption::Kms(key) = &replica.bucket.encryption else {
                    return None;
                };
                let replica_bucket = bucket_arn(replica.region.partition(), &replica.bucket.name);
                self.key_target(replica, key, Some(replica_bucket))
            }
            Target::ReplicationRole | Target::LogObjects => return None,
            Target::LockTable => {
                let table = stack.lock.table()?;
                (
                    format!(
                        "arn:{}:dynamodb:{}:{}:table/{table}",
                        spec.region.partition(),
                        spec.region,
                        self.desired.account
                    ),
                    Vec::new(),
                )
            }
        })
    }

    /// A request on `key` of `spec` (an alias's key by some id, carrying the alias as
    /// `kms:ResourceAliases`): made by S3 for objects of `via_s3_for` (a bucket ARN; every
    /// KMS bucket statebucket configures uses an S3 Bucket Key, so the encryption context is
    /// the bucket), or directly when `None` (no `kms:ViaService`).
    pub(super) fn key_target(
        &self,
        spec: &EnvSpec,
        key: &KmsKey,
        via_s3_for: Option<String>,
    ) -> (String, Vec<(&'static str, String)>) {
        let (resource, alias) = key_resource(spec, self.desired.account.as_str(), key);
        let arn = resource.replacen("key/*", "key/0b1e9c1c-0000-4000-8000-000000000000", 1);
        let mut context = match via_s3_for {
            Some(bucket) => vec![
                (
                    "kms:ViaService",
                    crate::policy::key_policy::via_s3(&spec.region),
                ),
                ("kms:EncryptionContext:aws:s3:arn", bucket),
            ],
            None => vec![("kms:ViaService", String::new())],
        };
        context.extend(alias.map(|alias| ("kms:ResourceAliases", alias)));
        (arn, context)
    }

    /// Whether `document` allows the request (no statement denies it and one allows it);
    /// `None` when statebucket writes no such document for this bucket or principal.
    pub(super) fn evaluate(
        &self,
        document: Document,
        request: &Request,
        requirement: &Requirement,
    ) -> Option<Expect> {
        let identity;
        let trust;
        let logs;
        let policy: &PolicyDocument = match document {
            Document::BucketPolicy => &self.bucket_policy,
            Document::KeyPolicy => {
                if !self.applies(When::CreatedKey) {
                    return None;
                }
                &self.key_grants
            }
            Document::IdentityPolicy => {
                let arn = IamArn::parse(&request.principal).ok()?;
                identity = identity_policy_for(
                    self.spec(),
                    &self.desired.account,
                    &self.desired.grants,
                    &arn,
                );
                // A principal with no grant here gets no identity policy from statebucket.
                if identity.statements.len() <= 1 {
                    return None;
                }
                &identity
            }
            Document::ReplicationRolePolicy => &self.desired.replication.as_ref()?.role_policy,
            Document::ReplicationTrustPolicy => {
                let mut document = self.desired.replication.as_ref()?.trust_policy.clone();
                // A trust policy names no resource: it is the role's own.
                for statement in &mut document.statements {
                    statement["Resource"] = request.resource.clone().into();
                }
                trust = document;
                &trust
            }
            Document::LogBucketPolicy => {
                logs = merge(
                    None,
                    std::slice::from_ref(self.desired.log_delivery.as_ref()?),
                );
                &logs
            }
        };
        let context: Vec<(&str, &str)> = request
            .context
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        let resource = request.resource.as_str();
        let allowed = evaluate::allows(
            policy,
            &evaluate::Request::new(&request.caller, requirement.action, resource)
                .with_context(&context),
        );
        Some(if allowed { Allowed } else { Denied })
    }
}

/// Every policy document statebucket generates for the bucket, named for a file: the bucket
/// policy, each principal's identity policy, the policy of a key it creates, the
/// replication role's policy and trust, and the log bucket's statement.
pub fn generated_documents(desired: &DesiredBucket<'_>) -> Vec<(String, PolicyDocument)> {
    let spec = desired.spec;
    let name = spec.name.as_str();
    let mut documents = vec![(format!("{name}-bucket"), merge(None, &desired.policy))];
    let mut principals: Vec<&IamArn> = Vec::new();
    for principal in desired.grants.iter().flat_map(|grant| &grant.principals) {
        if !principals.contains(&principal) {
            principals.push(principal);
        }
    }
    for principal in principals {
        documents.push((
            format!("{name}-identity-{}", principal.name()),
            identity_policy_for(spec, &desired.account, &desired.grants, principal),
        ));
    }
    if let Encryption::Kms(KmsKey::Managed(_)) = &spec.bucket.encryption {
        let mut statements = vec![crate::policy::key_policy::account_root_statement(
            spec.region.partition(),
            &desired.account,
        )];
        statements.extend(desired.key_grants.iter().cloned());
        documents.push((format!("{name}-key"), merge(None, &statements)));
    }
    if let Some(replication) = &desired.replication {
        documents.push((
            format!("{name}-replication-role"),
            replication.role_policy.clone(),
        ));
        documents.push((
            format!("{name}-replication-trust"),
            replication.trust_policy.clone(),
        ));
    }
    if let Some(statement) = &desired.log_delivery {
        documents.push((
            format!("{name}-log-delivery"),
            merge(None, std::slice::from_ref(statement)),
        ));
    }
    documents
}
