//! The plan: what must change for an environment to match its spec. Pure: a plan is computed
//! from the desired and the observed state, printed, and then applied change by change.
//!
//! Safety rules are structural here: no change can delete anything, suspend versioning,
//! clear a public-access flag, or drop a policy statement or tag the tool does not own.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::observed::{
    BucketState, KmsKeyState, LifecycleRule, LockTableState, LogBucket, LoggingTarget,
    NoncurrentExpiration, Observed, PublicAccessBlock, RuleFilter, SseRule, Versioning,
};
use crate::policy::{self, PolicyDocument, StatementChange};
use crate::render::{KmsKeyId, parse_backend_hcl, render_backend_hcl};
use crate::spec::{Encryption, EndpointUrl, EnvSpec, KmsKey, Lifecycle, TableName};

/// Lifecycle rules whose ID starts with this are the tool's; all others are kept.
pub const OWNED_RULE_PREFIX: &str = "statebucket-";
pub const NONCURRENT_RULE_ID: &str = "statebucket-expire-noncurrent-versions";
pub const ABORT_UPLOADS_RULE_ID: &str = "statebucket-abort-incomplete-uploads";
/// On-demand capacity: a lock table sees a handful of requests per Terraform run.
pub const TABLE_BILLING_MODE: &str = "PAY_PER_REQUEST";

pub const OBJECT_OWNERSHIP: &str = "BucketOwnerEnforced";

/// What the environment should look like, beyond its spec: the owned policy statements
/// (rendered from the template for the resolved account) and the endpoint in effect.
#[derive(Debug, Clone)]
pub struct Desired<'a> {
    pub spec: &'a EnvSpec,
    pub owned_statements: Vec<Value>,
    pub endpoint: Option<EndpointUrl>,
    /// With `attach_identity_policy`: the inline policy every principal in this account gets.
    pub identity_policy: Option<IdentityPolicyTarget>,
    /// With `bucket.logging`: the statement the log bucket's policy must hold
    /// (`policy::log_delivery_statement`).
    pub log_delivery: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdentityPolicyTarget {
    pub name: String,
    pub document: PolicyDocument,
    /// ARNs of the principals to attach it to (those in the caller's account).
    pub principals: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Facet {
    Bucket,
    KmsKey,
    KeyRotation,
    Versioning,
    Encryption,
    PublicAccessBlock,
    Ownership,
    Policy,
    Tags,
    Lifecycle,
    LogDelivery,
    Logging,
    LockTable,
    PointInTimeRecovery,
    LockTableTags,
    IdentityPolicy,
    BackendFile,
}

impl fmt::Display for Facet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Facet::Bucket => "bucket",
            Facet::KmsKey => "kms key",
            Facet::KeyRotation => "key rotation",
            Facet::Versioning => "versioning",
            Facet::Encryption => "encryption",
            Facet::PublicAccessBlock => "public access block",
            Facet::Ownership => "object ownership",
            Facet::Policy => "bucket policy",
            Facet::Tags => "tags",
            Facet::Lifecycle => "lifecycle rules",
            Facet::LogDelivery => "log delivery grant",
            Facet::Logging => "access logging",
            Facet::LockTable => "lock table",
            Facet::PointInTimeRecovery => "lock table backups",
            Facet::LockTableTags => "lock table tags",
            Facet::IdentityPolicy => "identity policy",
            Facet::BackendFile => "backend file",
        })
    }
}

/// Encryption as it will be set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum SseTarget {
    Aes256,
    /// `key_arn` is `None` while the key is yet to be created ("known after apply").
    Kms {
        key_arn: Option<String>,
    },
}

impl fmt::Display for SseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseTarget::Aes256 => f.write_str("AES256"),
            SseTarget::Kms { key_arn: Some(arn) } => write!(f, "aws:kms ({arn}), bucket key"),
            SseTarget::Kms { key_arn: None } => {
                f.write_str("aws:kms (key known after apply), bucket key")
            }
        }
    }
}

/// One change, carrying the values it moves between.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// With the spec's tags in the request, for organisations whose SCPs require tags on
    /// `s3:CreateBucket`.
    CreateBucket {
        bucket: String,
        region: String,
        tags: BTreeMap<String, String>,
    },
    /// A symmetric key with the alias, tags naming the environment, and rotation on.
    CreateKmsKey {
        alias: String,
        description: String,
        tags: BTreeMap<String, String>,
    },
    EnableKeyRotation {
        key_arn: String,
    },
    /// Points the alias at a key created earlier for this environment (found by its tags).
    AliasKmsKey {
        alias: String,
        key_arn: String,
    },
    EnableVersioning {
        from: Versioning,
    },
    SetEncryption {
        from: Option<SseRule>,
        to: SseTarget,
    },
    BlockPublicAccess {
        from: PublicAccessBlock,
    },
    EnforceBucketOwner {
        from: Option<String>,
    },
    PutPolicy {
        from: Option<String>,
        to: String,
        statements: Vec<StatementChange>,
        /// Statements the tool does not own, kept as they are.
        kept: Vec<String>,
    },
    MergeTags {
        from: BTreeMap<String, String>,
        to: BTreeMap<String, String>,
    },
    /// Replaces the bucket's lifecycle configuration with `rules`: the rules of other owners
    /// as they were, then the tool's.
    SetLifecycle {
        from: Vec<LifecycleRule>,
        to: Vec<LifecycleRule>,
        rules: Vec<LifecycleRule>,
        /// IDs of the rules of other owners, kept.
        kept: Vec<String>,
        /// The configuration-wide transition size setting, kept as it was.
        minimum_object_size: Option<String>,
    },
    /// Adds (or corrects) this bucket's statement in the log bucket's policy. Apply reads the
    /// log bucket's policy again and merges `statement`, since several environments may
    /// share the log bucket.
    GrantLogDelivery {
        log_bucket: String,
        statement: Value,
        from: Option<String>,
        to: String,
    },
    EnableLogging {
        from: Option<LoggingTarget>,
        to: LoggingTarget,
    },
    /// Hash key `LockID` (string), on-demand billing, encryption with the AWS managed KMS
    /// key, deletion protection, and the spec's tags, all in CreateTable.
    CreateLockTable {
        table: String,
        tags: BTreeMap<String, String>,
    },
    UpdateLockTable {
        table: String,
        from: TableSettings,
        to: TableSettings,
    },
    EnablePointInTimeRecovery {
        table: String,
        from: Option<bool>,
    },
    TagLockTable {
        table: String,
        from: BTreeMap<String, String>,
        to: BTreeMap<String, String>,
    },
    /// The inline identity policy of one user or role (IAM Put{User,Role}Policy).
    PutIdentityPolicy {
        principal: String,
        policy_name: String,
        from: Option<String>,
        to: String,
    },
    WriteBackendFile {
        path: String,
        from: Option<String>,
        /// `None` when it depends on a key created by this plan.
        to: Option<String>,
    },
}

impl Change {
    pub fn facet(&self) -> Facet {
        match self {
            Change::CreateBucket { .. } => Facet::Bucket,
            Change::CreateKmsKey { .. } => Facet::KmsKey,
            Change::EnableKeyRotation { .. } => Facet::KeyRotation,
            Change::AliasKmsKey { .. } => Facet::KmsKey,
            Change::EnableVersioning { .. } => Facet::Versioning,
            Change::SetEncryption { .. } => Facet::Encryption,
            Change::BlockPublicAccess { .. } => Facet::PublicAccessBlock,
            Change::EnforceBucketOwner { .. } => Facet::Ownership,
            Change::PutPolicy { .. } => Facet::Policy,
            Change::MergeTags { .. } => Facet::Tags,
            Change::SetLifecycle { .. } => Facet::Lifecycle,
            Change::GrantLogDelivery { .. } => Facet::LogDelivery,
            Change::EnableLogging { .. } => Facet::Logging,
            Change::CreateLockTable { .. } | Change::UpdateLockTable { .. } => Facet::LockTable,
            Change::EnablePointInTimeRecovery { .. } => Facet::PointInTimeRecovery,
            Change::TagLockTable { .. } => Facet::LockTableTags,
            Change::PutIdentityPolicy { .. } => Facet::IdentityPolicy,
            Change::WriteBackendFile { .. } => Facet::BackendFile,
        }
    }

    /// Whether the change creates something that did not exist.
    pub fn creates(&self) -> bool {
        match self {
            Change::CreateBucket { .. }
            | Change::CreateKmsKey { .. }
            | Change::CreateLockTable { .. } => true,
            Change::WriteBackendFile { from, .. } => from.is_none(),
            Change::PutPolicy { from, .. } | Change::PutIdentityPolicy { from, .. } => {
                from.is_none()
            }
            _ => false,
        }
    }
}

/// The lock table settings that UpdateTable can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSettings {
    pub billing_mode: String,
    pub deletion_protection: bool,
}

impl fmt::Display for TableSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, deletion protection {}",
            self.billing_mode,
            if self.deletion_protection {
                "on"
            } else {
                "off"
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvPlan {
    pub changes: Vec<Change>,
    pub in_sync: Vec<Facet>,
    /// Statements in the live policy that the tool does not own and keeps.
    pub kept_statements: Vec<String>,
    /// Things the user should know that are not changes.
    pub notes: Vec<String>,
}

impl EnvPlan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("bucket `{bucket}` exists in {actual}, but the spec says {expected}")]
    WrongRegion {
        bucket: String,
        actual: String,
        expected: String,
    },
    #[error("KMS key `{reference}` does not exist in {region}")]
    KmsKeyMissing { reference: String, region: String },
    #[error("KMS key {arn} is {state}; S3 cannot encrypt with it")]
    KmsKeyUnusable { arn: String, state: String },
    #[error("the live bucket policy of `{bucket}` cannot be read: {reason}")]
    UnreadablePolicy { bucket: String, reason: String },
    #[error("log bucket `{bucket}` does not exist (or is not in this account)")]
    LogBucketMissing { bucket: String },
    #[error("log bucket `{bucket}` is in {actual}, but the state bucket is in {expected}")]
    LogBucketElsewhere {
        bucket: String,
        actual: String,
        expected: String,
    },
    #[error(
        "DynamoDB table `{table}` exists, but its key is {key}; Terraform needs a single hash key `LockID` of type string"
    )]
    LockTableUnusable { table: String, key: String },
}

impl PlanError {
    pub fn hint(&self) -> String {
        match self {
            PlanError::WrongRegion { expected, actual, .. } => format!(
                "a bucket cannot move between regions: set `region: {actual}` in the spec, or choose another bucket name for {expected}"
            ),
            PlanError::KmsKeyMissing { .. } => {
                "create the key first, correct `bucket.encryption.kms_key`, or use `{ kms_key: alias/NAME, create_key: true }` to have statebucket create it".into()
            }
            PlanError::KmsKeyUnusable { .. } => {
                "enable the key (or cancel its deletion) in KMS, or point the spec at another key".into()
            }
            PlanError::UnreadablePolicy { .. } => {
                "fix the policy by hand (aws s3api get-bucket-policy shows it); statebucket will not overwrite a policy it cannot read".into()
            }
            PlanError::LogBucketMissing { .. } => {
                "create the log bucket first (same account and region, ACLs disabled), or correct `bucket.logging.bucket`; statebucket does not create log buckets".into()
            }
            PlanError::LogBucketElsewhere { expected, .. } => format!(
                "S3 delivers access logs only to a bucket in the same region: use a log bucket in {expected}"
            ),
            PlanError::LockTableUnusable { .. } => {
                "name another table in `backend.dynamodb_table`; statebucket never changes or deletes an existing table's key".into()
            }
        }
    }
}

/// Tags put on keys the tool creates, so a key can be traced to its environment.
pub fn kms_key_tags(spec: &EnvSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("statebucket:environment".to_owned(), spec.name.to_string()),
        (
            "statebucket:bucket".to_owned(),
            spec.bucket.name.to_string(),
        ),
    ])
}

pub fn plan(desired: &Desired<'_>, observed: &Observed) -> Result<EnvPlan, PlanError> {
    let spec = desired.spec;
    let mut changes = Vec::new();
    let mut in_sync = Vec::new();
    let mut record = |facet: Facet, change: Option<Change>| match change {
        Some(change) => changes.push(change),
        None => in_sync.push(facet),
    };

    if let Some(bucket) = &observed.bucket
        && bucket.region != spec.region.as_str()
    {
        return Err(PlanError::WrongRegion {
            bucket: spec.bucket.name.to_string(),
            actual: bucket.region.clone(),
            expected: spec.region.to_string(),
        });
    }

    // The key comes first: encryption and backend.hcl depend on its ARN.
    let key_arn: Option<String> = match &spec.bucket.encryption {
        Encryption::Aes256 => None,
        Encryption::Kms(key) => match (&observed.kms_key, key) {
            (Some(state), _) if state.state != "Enabled" => {
                return Err(PlanError::KmsKeyUnusable {
                    arn: state.arn.clone(),
                    state: state.state.clone(),
                });
            }
            (Some(state), KmsKey::Managed(alias)) => {
                record(
                    Facet::KmsKey,
                    (!state.aliased).then(|| Change::AliasKmsKey {
                        alias: alias.to_string(),
                        key_arn: state.arn.clone(),
                    }),
                );
                let rotation =
                    (state.rotation_enabled == Some(false)).then(|| Change::EnableKeyRotation {
                        key_arn: state.arn.clone(),
                    });
                record(Facet::KeyRotation, rotation);
                Some(state.arn.clone())
            }
            (Some(state), KmsKey::Existing(_)) => Some(state.arn.clone()),
            (None, KmsKey::Managed(alias)) => {
                record(
                    Facet::KmsKey,
                    Some(Change::CreateKmsKey {
                        alias: alias.to_string(),
                        description: format!(
                            "Encrypts Terraform state in s3://{} (statebucket environment {})",
                            spec.bucket.name, spec.name
                        ),
                        tags: kms_key_tags(spec),
                    }),
                );
                None
            }
            (None, KmsKey::Existing(reference)) => {
                return Err(PlanError::KmsKeyMissing {
                    reference: reference.to_string(),
                    region: spec.region.to_string(),
                });
            }
        },
    };
    let sse_target = match &spec.bucket.encryption {
        Encryption::Aes256 => SseTarget::Aes256,
        Encryption::Kms(_) => SseTarget::Kms {
            key_arn: key_arn.clone(),
        },
    };

    let empty = BucketState {
        region: spec.region.to_string(),
        versioning: Versioning::Never,
        encryption: None,
        public_access: PublicAccessBlock::default(),
        ownership: None,
        policy: None,
        tags: BTreeMap::new(),
        lifecycle: Vec::new(),
        lifecycle_minimum_object_size: None,
        logging: None,
    };
    let bucket = match &observed.bucket {
        Some(bucket) => {
            record(Facet::Bucket, None);
            bucket
        }
        None => {
            record(
                Facet::Bucket,
                Some(Change::CreateBucket {
                    bucket: spec.bucket.name.to_string(),
                    region: spec.region.to_string(),
                    tags: spec.bucket.tags.clone(),
                }),
            );
            &empty
        }
    };

    record(
        Facet::Versioning,
        (bucket.versioning != Versioning::Enabled).then_some(Change::EnableVersioning {
            from: bucket.versioning,
        }),
    );

    let encryption_ok = bucket
        .encryption
        .as_ref()
        .is_some_and(|rule| encryption_matches(rule, spec, observed.kms_key.as_ref()));
    record(
        Facet::Encryption,
        (!encryption_ok).then(|| Change::SetEncryption {
            from: bucket.encryption.clone(),
            to: sse_target.clone(),
        }),
    );

    record(
        Facet::PublicAccessBlock,
        (bucket.public_access != PublicAccessBlock::ALL).then_some(Change::BlockPublicAccess {
            from: bucket.public_access,
        }),
    );

    record(
        Facet::Ownership,
        (bucket.ownership.as_deref() != Some(OBJECT_OWNERSHIP)).then(|| {
            Change::EnforceBucketOwner {
                from: bucket.ownership.clone(),
            }
        }),
    );

    let live_policy = match &bucket.policy {
        Some(text) => {
            Some(
                PolicyDocument::parse(text).map_err(|reason| PlanError::UnreadablePolicy {
                    bucket: spec.bucket.name.to_string(),
                    reason,
                })?,
            )
        }
        None => None,
    };
    let statement_changes = policy::diff_owned(live_policy.as_ref(), &desired.owned_statements);
    let kept_statements = policy::foreign_labels(live_policy.as_ref());
    record(
        Facet::Policy,
        (!statement_changes.is_empty()).then(|| Change::PutPolicy {
            from: bucket.policy.clone(),
            to: policy::merge(live_policy.as_ref(), &desired.owned_statements).to_json(),
            statements: statement_changes,
            kept: kept_statements.clone(),
        }),
    );

    let mut tags = bucket.tags.clone();
    tags.extend(spec.bucket.tags.clone());
    record(
        Facet::Tags,
        (tags != bucket.tags).then(|| Change::MergeTags {
            from: bucket.tags.clone(),
            to: tags,
        }),
    );

    let mut notes = Vec::new();
    let (lifecycle, lifecycle_notes) = plan_lifecycle(&spec.bucket.lifecycle, bucket);
    record(Facet::Lifecycle, lifecycle);
    notes.extend(lifecycle_notes);

    if let Some(logging) = &spec.bucket.logging {
        let log_policy = match &observed.log_bucket {
            None | Some(LogBucket::Missing) => {
                return Err(PlanError::LogBucketMissing {
                    bucket: logging.bucket.to_string(),
                });
            }
            Some(LogBucket::Found { region, .. }) if region != spec.region.as_str() => {
                return Err(PlanError::LogBucketElsewhere {
                    bucket: logging.bucket.to_string(),
                    actual: region.clone(),
                    expected: spec.region.to_string(),
                });
            }
            Some(LogBucket::Found { policy, .. }) => policy,
        };
        if let Some(statement) = &desired.log_delivery {
            let live = match log_policy {
                Some(text) => Some(PolicyDocument::parse(text).map_err(|reason| {
                    PlanError::UnreadablePolicy {
                        bucket: logging.bucket.to_string(),
                        reason,
                    }
                })?),
                None => None,
            };
            record(
                Facet::LogDelivery,
                policy::with_statement(live.as_ref(), statement).map(|merged| {
                    Change::GrantLogDelivery {
                        log_bucket: logging.bucket.to_string(),
                        statement: statement.clone(),
                        from: log_policy.clone(),
                        to: merged.to_json(),
                    }
                }),
            );
        }
        let target = LoggingTarget {
            bucket: logging.bucket.to_string(),
            prefix: logging.prefix.to_string(),
        };
        record(
            Facet::Logging,
            (bucket.logging.as_ref() != Some(&target)).then(|| Change::EnableLogging {
                from: bucket.logging.clone(),
                to: target,
            }),
        );
    }

    if let Some(table) = spec.backend.lock.table() {
        let (changes, table_notes) =
            plan_lock_table(table, &spec.bucket.tags, observed.lock_table.as_ref())?;
        for (facet, change) in changes {
            record(facet, change);
        }
        notes.extend(table_notes);
        notes.push(format!(
            "DynamoDB locking (table `{table}`) is deprecated in Terraform 1.11 and later; once every runner uses Terraform or OpenTofu 1.10+, set `backend.lock: lockfile` (via `both` while older runners remain)"
        ));
    }

    if let Some(target) = &desired.identity_policy {
        let wanted: Vec<Value> = target
            .document
            .statements
            .iter()
            .map(policy::normalize)
            .collect();
        let mut any = false;
        for principal in &target.principals {
            let live = observed
                .identity_policies
                .iter()
                .find(|(arn, _)| arn == principal)
                .and_then(|(_, document)| document.as_deref());
            let same = live
                .and_then(|text| PolicyDocument::parse(text).ok())
                .is_some_and(|document| {
                    document
                        .statements
                        .iter()
                        .map(policy::normalize)
                        .collect::<Vec<_>>()
                        == wanted
                });
            if !same {
                any = true;
                record(
                    Facet::IdentityPolicy,
                    Some(Change::PutIdentityPolicy {
                        principal: principal.clone(),
                        policy_name: target.name.clone(),
                        from: live.map(str::to_owned),
                        to: target.document.to_compact_json(),
                    }),
                );
            }
        }
        if !any {
            record(Facet::IdentityPolicy, None);
        }
    }

    let backend = match (&spec.bucket.encryption, &key_arn) {
        (Encryption::Kms(_), None) => None,
        (_, arn) => Some(render_backend(desired, arn.as_deref())),
    };
    let backend_ok = backend.is_some() && backend == observed.backend_file;
    record(
        Facet::BackendFile,
        (!backend_ok).then(|| Change::WriteBackendFile {
            path: spec.backend.file.clone(),
            from: observed.backend_file.clone(),
            to: backend,
        }),
    );

    if let Some(retired) = retired_lock_table(observed.backend_file.as_deref(), spec) {
        notes.push(retired);
    }
    if let Some(endpoint) = desired
        .endpoint
        .as_ref()
        .filter(|endpoint| endpoint.is_plain_http())
    {
        notes.push(format!(
            "endpoint {endpoint} is plain HTTP, so the bucket policy leaves out the TLS-only deny (no client could satisfy it)"
        ));
    }
    Ok(EnvPlan {
        changes,
        in_sync,
        kept_statements,
        notes,
    })
}

/// The tool's lifecycle rules for the spec: whole-bucket rules, IDs `statebucket-…`.
pub fn owned_lifecycle_rules(lifecycle: &Lifecycle) -> Vec<LifecycleRule> {
    let whole_bucket = |id: &str| LifecycleRule {
        id: Some(id.to_owned()),
        enabled: true,
        filter: RuleFilter::Prefix(String::new()),
        expiration: None,
        transitions: Vec::new(),
        noncurrent_transitions: Vec::new(),
        noncurrent_expiration: None,
        abort_incomplete_upload_days: None,
    };
    let mut rules = vec![LifecycleRule {
        abort_incomplete_upload_days: Some(lifecycle.abort_incomplete_uploads_after.get() as i32),
        ..whole_bucket(ABORT_UPLOADS_RULE_ID)
    }];
    if let Some(days) = lifecycle.expire_noncurrent_after {
        rules.push(LifecycleRule {
            noncurrent_expiration: Some(NoncurrentExpiration {
                noncurrent_days: Some(days.get() as i32),
                newer_noncurrent_versions: None,
            }),
            ..whole_bucket(NONCURRENT_RULE_ID)
        });
    }
    rules
}

fn is_owned_rule(rule: &LifecycleRule) -> bool {
    rule.id
        .as_deref()
        .is_some_and(|id| id.starts_with(OWNED_RULE_PREFIX))
}

/// A rule as compared: every way of saying "the whole bucket" is the same filter.
fn comparable(rule: &LifecycleRule) -> LifecycleRule {
    let mut rule = rule.clone();
    if rule.filter.is_whole_bucket() {
        rule.filter = RuleFilter::Prefix(String::new());
    }
    rule
}

/// The lifecycle change, if the tool's rules differ from the spec, and warnings about rules
/// of other owners that can remove state.
fn plan_lifecycle(lifecycle: &Lifecycle, bucket: &BucketState) -> (Option<Change>, Vec<String>) {
    let live = &bucket.lifecycle;
    let wanted = owned_lifecycle_rules(lifecycle);
    let mut live_owned: Vec<LifecycleRule> = live
        .iter()
        .filter(|rule| is_owned_rule(rule))
        .cloned()
        .collect();
    live_owned.sort_by(|a, b| a.id.cmp(&b.id));
    let mut wanted_sorted = wanted.clone();
    wanted_sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let foreign: Vec<&LifecycleRule> = live.iter().filter(|rule| !is_owned_rule(rule)).collect();
    let notes = foreign
        .iter()
        .filter(|rule| rule.expires_current_objects())
        .map(|rule| {
            format!(
                "lifecycle rule `{}` (not statebucket's) expires current objects: if its filter covers the state key, S3 will turn the state into a noncurrent version; check it with `aws s3api get-bucket-lifecycle-configuration`",
                rule.id.as_deref().unwrap_or("(no id)")
            )
        })
        .collect();
    let same = live_owned
        .iter()
        .map(comparable)
        .eq(wanted_sorted.iter().map(comparable));
    if same {
        return (None, notes);
    }
    let mut rules: Vec<LifecycleRule> = foreign.iter().map(|rule| (*rule).clone()).collect();
    rules.extend(wanted.iter().cloned());
    let change = Change::SetLifecycle {
        from: live_owned,
        to: wanted,
        rules,
        kept: foreign
            .iter()
            .map(|rule| rule.id.clone().unwrap_or_else(|| "(no id)".to_owned()))
            .collect(),
        minimum_object_size: bucket.lifecycle_minimum_object_size.clone(),
    };
    (Some(change), notes)
}

/// A facet and its change; `None` when it is in sync.
type FacetChange = (Facet, Option<Change>);

/// The lock table's changes by facet, and notes.
fn plan_lock_table(
    table: &TableName,
    tags: &BTreeMap<String, String>,
    live: Option<&LockTableState>,
) -> Result<(Vec<FacetChange>, Vec<String>), PlanError> {
    let name = table.to_string();
    let Some(live) = live else {
        return Ok((
            vec![
                (
                    Facet::LockTable,
                    Some(Change::CreateLockTable {
                        table: name.clone(),
                        tags: tags.clone(),
                    }),
                ),
                (
                    Facet::PointInTimeRecovery,
                    Some(Change::EnablePointInTimeRecovery {
                        table: name,
                        from: None,
                    }),
                ),
            ],
            Vec::new(),
        ));
    };
    if live.hash_key != [("LockID".to_owned(), "S".to_owned())] || live.has_range_key {
        let key = live
            .hash_key
            .iter()
            .map(|(attribute, kind)| format!("`{attribute}` ({kind})"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PlanError::LockTableUnusable {
            table: name,
            key: if live.has_range_key {
                format!("{key} with a range key")
            } else {
                key
            },
        });
    }
    let from = TableSettings {
        billing_mode: live.billing_mode.clone(),
        deletion_protection: live.deletion_protection,
    };
    let to = TableSettings {
        billing_mode: TABLE_BILLING_MODE.to_owned(),
        deletion_protection: true,
    };
    let mut merged_tags = live.tags.clone();
    merged_tags.extend(tags.clone());
    let changes = vec![
        (
            Facet::LockTable,
            (from != to).then(|| Change::UpdateLockTable {
                table: name.clone(),
                from,
                to,
            }),
        ),
        (
            Facet::PointInTimeRecovery,
            (live.point_in_time_recovery != Some(true)).then(|| {
                Change::EnablePointInTimeRecovery {
                    table: name.clone(),
                    from: live.point_in_time_recovery,
                }
            }),
        ),
        (
            Facet::LockTableTags,
            (merged_tags != live.tags).then(|| Change::TagLockTable {
                table: name.clone(),
                from: live.tags.clone(),
                to: merged_tags,
            }),
        ),
    ];
    let notes = if live.kms_encrypted {
        Vec::new()
    } else {
        vec![format!(
            "table `{name}` is encrypted with an AWS owned key, which CloudTrail cannot show; tables statebucket creates use the AWS managed key. To switch: aws dynamodb update-table --table-name {name} --sse-specification Enabled=true,SSEType=KMS"
        )]
    };
    Ok((changes, notes))
}

/// When backend.hcl on disk names a DynamoDB table that the spec no longer uses: the table
/// is kept, and this says how to remove it once nothing uses it.
fn retired_lock_table(backend_file: Option<&str>, spec: &EnvSpec) -> Option<String> {
    let on_disk = parse_backend_hcl(backend_file?).ok()?;
    let table = on_disk.string("dynamodb_table")?;
    if spec
        .backend
        .lock
        .table()
        .is_some_and(|wanted| wanted.as_str() == table)
    {
        return None;
    }
    let region = spec.region.as_str();
    // Straight from DynamoDB-only to the lockfile, runners older than 1.10 would go on
    // taking only the table's lock, which newer runners no longer check.
    let skipped_bridge = if !on_disk.flag("use_lockfile") && spec.backend.lock.table().is_none() {
        " Caution: the old file had no `use_lockfile`, so runners still on Terraform < 1.10 would lock only in the table while newer ones lock only the lockfile; if any remain, set `lock: both` first."
    } else {
        ""
    };
    Some(format!(
        "backend.hcl stops using DynamoDB table `{table}`. statebucket never deletes it: once no runner uses a Terraform older than 1.10 with this backend, remove it by hand with `aws dynamodb update-table --region {region} --table-name {table} --no-deletion-protection-enabled` then `aws dynamodb delete-table --region {region} --table-name {table}`. Should you ever return to DynamoDB locking, first delete its stale digest item `{}/{}-md5`.{skipped_bridge}",
        spec.bucket.name, spec.backend.key
    ))
}

/// backend.hcl for this environment, with the key ARN when there is a KMS key.
pub fn render_backend(desired: &Desired<'_>, key_arn: Option<&str>) -> String {
    let key = key_arn.map_or(KmsKeyId::FromSpec, KmsKeyId::Resolved);
    render_backend_hcl(desired.spec, key, desired.endpoint.as_ref())
}

/// S3 echoes the key id as it was set: an ARN, a key id, or an alias. Any of the names of
/// the right key counts; the AWS managed `aws/s3` key (no id) does not.
fn encryption_matches(rule: &SseRule, spec: &EnvSpec, key: Option<&KmsKeyState>) -> bool {
    match &spec.bucket.encryption {
        Encryption::Aes256 => rule.algorithm == "AES256",
        Encryption::Kms(wanted) => {
            rule.algorithm == "aws:kms"
                && rule.bucket_key
                && rule.kms_key_id.as_deref().is_some_and(|id| {
                    id == wanted.reference() || key.is_some_and(|key| id == key.arn || id == key.id)
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;
    use serde_json::json;

    const DEV: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: my-state
  tags: { team: platform }
access:
  users: [terraform]
backend:
  key: app/terraform.tfstate
";
    const KEY_ARN: &str =
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn spec(text: &str) -> EnvSpec {
        parse_spec("environments/dev.yaml", "dev", text).unwrap()
    }

    fn owned() -> Vec<Value> {
        vec![
            json!({"Sid": "StatebucketA", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/terraform"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::my-state"}),
        ]
    }

    fn desired(spec: &EnvSpec) -> Desired<'_> {
        Desired {
            spec,
            owned_statements: owned(),
            endpoint: None,
            identity_policy: None,
            log_delivery: None,
        }
    }

    /// What the bucket looks like once everything has been applied.
    fn converged(desired: &Desired<'_>, key: Option<KmsKeyState>) -> Observed {
        let key_arn = key.as_ref().map(|key| key.arn.clone());
        Observed {
            bucket: Some(BucketState {
                region: "eu-west-1".into(),
                versioning: Versioning::Enabled,
                encryption: Some(match &key_arn {
                    None => SseRule {
                        algorithm: "AES256".into(),
                        kms_key_id: None,
                        bucket_key: false,
                    },
                    Some(arn) => SseRule {
                        algorithm: "aws:kms".into(),
                        kms_key_id: Some(arn.clone()),
                        bucket_key: true,
                    },
                }),
                public_access: PublicAccessBlock::ALL,
                ownership: Some(OBJECT_OWNERSHIP.into()),
                policy: Some(policy::merge(None, &desired.owned_statements).to_json()),
                tags: desired.spec.bucket.tags.clone(),
                lifecycle: owned_lifecycle_rules(&desired.spec.bucket.lifecycle),
                lifecycle_minimum_object_size: None,
                logging: None,
            }),
            backend_file: Some(render_backend(desired, key_arn.as_deref())),
            kms_key: key,
            identity_policies: Vec::new(),
            lock_table: None,
            log_bucket: None,
        }
    }

    #[test]
    fn identity_policies_are_compared_by_meaning_per_principal() {
        let spec = spec(DEV);
        let mut desired = desired(&spec);
        let document = PolicyDocument::parse(r#"{"Statement": [{"Sid": "StatebucketX", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"}]}"#).unwrap();
        desired.identity_policy = Some(IdentityPolicyTarget {
            name: "statebucket-dev".into(),
            document,
            principals: vec![
                "arn:aws:iam::123456789012:user/a".into(),
                "arn:aws:iam::123456789012:role/b".into(),
            ],
        });
        let mut observed = converged(&desired, None);
        let reordered = r#"{"Version": "2012-10-17", "Statement": [{"Resource": ["*"], "Action": ["s3:PutObject", "s3:GetObject"], "Effect": "Allow", "Sid": "StatebucketX"}]}"#;
        observed.identity_policies = vec![
            (
                "arn:aws:iam::123456789012:user/a".into(),
                Some(reordered.into()),
            ),
            ("arn:aws:iam::123456789012:role/b".into(), None),
        ];
        let plan = plan(&desired, &observed).unwrap();
        assert_eq!(facets(&plan), vec![Facet::IdentityPolicy]);
        assert!(
            matches!(&plan.changes[0], Change::PutIdentityPolicy { principal, from: None, .. } if principal.ends_with("role/b"))
        );
        observed.identity_policies[1].1 = Some(reordered.into());
        assert!(super::plan(&desired, &observed).unwrap().is_empty());
    }

    fn facets(plan: &EnvPlan) -> Vec<Facet> {
        plan.changes.iter().map(Change::facet).collect()
    }

    fn key_state(rotation: Option<bool>) -> KmsKeyState {
        KmsKeyState {
            arn: KEY_ARN.into(),
            id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            state: "Enabled".into(),
            rotation_enabled: rotation,
            aliased: true,
        }
    }

    #[test]
    fn from_nothing_every_facet_is_created() {
        let spec = spec(DEV);
        let plan = plan(&desired(&spec), &Observed::default()).unwrap();
        assert_eq!(
            facets(&plan),
            vec![
                Facet::Bucket,
                Facet::Versioning,
                Facet::Encryption,
                Facet::PublicAccessBlock,
                Facet::Ownership,
                Facet::Policy,
                Facet::Tags,
                Facet::Lifecycle,
                Facet::BackendFile
            ]
        );
        assert!(plan.in_sync.is_empty());
    }

    #[test]
    fn a_converged_environment_has_an_empty_plan() {
        let spec = spec(DEV);
        let desired = desired(&spec);
        let plan = plan(&desired, &converged(&desired, None)).unwrap();
        assert!(plan.is_empty(), "{plan:#?}");
        assert_eq!(plan.in_sync.len(), 9);
    }

    #[test]
    fn each_drift_is_one_change_with_from_and_to() {
        let spec = spec(DEV);
        let desired = desired(&spec);
        let mut observed = converged(&desired, None);
        let bucket = observed.bucket.as_mut().unwrap();
        bucket.versioning = Versioning::Suspended;
        bucket.public_access.restrict_public_buckets = false;
        bucket.ownership = Some("ObjectWriter".into());
        bucket.encryption = Some(SseRule {
            algorithm: "aws:kms".into(),
            kms_key_id: None,
            bucket_key: false,
        });
        observed.backend_file = Some("bucket = \"edited\"\n".into());
        let plan = plan(&desired, &observed).unwrap();
        assert_eq!(
            plan.changes[..4],
            [
                Change::EnableVersioning {
                    from: Versioning::Suspended
                },
                Change::SetEncryption {
                    from: Some(SseRule {
                        algorithm: "aws:kms".into(),
                        kms_key_id: None,
                        bucket_key: false
                    }),
                    to: SseTarget::Aes256
                },
                Change::BlockPublicAccess {
                    from: PublicAccessBlock {
                        restrict_public_buckets: false,
                        ..PublicAccessBlock::ALL
                    }
                },
                Change::EnforceBucketOwner {
                    from: Some("ObjectWriter".into())
                },
            ]
        );
        assert!(
            matches!(&plan.changes[4], Change::WriteBackendFile { from: Some(old), to: Some(_), .. } if old.contains("edited"))
        );
    }

    #[test]
    fn foreign_statements_and_tags_are_kept() {
        let spec = spec(DEV);
        let desired = desired(&spec);
        let mut observed = converged(&desired, None);
        let bucket = observed.bucket.as_mut().unwrap();
        let foreign = json!({"Sid": "AuditorRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::my-state/*"});
        bucket.policy =
            Some(json!({"Version": "2012-10-17", "Statement": [foreign.clone()]}).to_string());
        bucket.tags = BTreeMap::from([
            ("owner".into(), "alice".into()),
            ("team".into(), "old".into()),
        ]);
        let plan = plan(&desired, &observed).unwrap();
        let Change::PutPolicy {
            to,
            statements,
            kept,
            ..
        } = &plan.changes[0]
        else {
            panic!("{plan:#?}")
        };
        assert_eq!(kept, &vec!["AuditorRead".to_owned()]);
        assert_eq!(
            statements,
            &vec![StatementChange::Add {
                sid: "StatebucketA".into()
            }]
        );
        let merged = PolicyDocument::parse(to).unwrap();
        assert_eq!(merged.statements[0], foreign);
        assert_eq!(
            plan.changes[1],
            Change::MergeTags {
                from: BTreeMap::from([
                    ("owner".into(), "alice".into()),
                    ("team".into(), "old".into())
                ]),
                to: BTreeMap::from([
                    ("owner".into(), "alice".into()),
                    ("team".into(), "platform".into())
                ]),
            }
        );
    }

    #[test]
    fn a_policy_equal_in_meaning_is_in_sync() {
        let spec = spec(DEV);
        let desired = desired(&spec);
        let mut observed = converged(&desired, None);
        let rewritten = json!({"Version": "2012-10-17", "Statement": [{"Resource": ["arn:aws:s3:::my-state"], "Action": ["s3:ListBucket"], "Principal": {"AWS": ["arn:aws:iam::123456789012:user/terraform"]}, "Effect": "Allow", "Sid": "StatebucketA"}]});
        observed.bucket.as_mut().unwrap().policy = Some(rewritten.to_string());
        assert!(plan(&desired, &observed).unwrap().is_empty());
    }

    #[test]
    fn managed_kms_key_is_created_and_backend_waits_for_its_arn() {
        let spec = spec(&DEV.replace(
            "  tags:",
            "  encryption: { kms_key: alias/tf-state, create_key: true }\n  tags:",
        ));
        let plan = plan(&desired(&spec), &Observed::default()).unwrap();
        assert!(
            matches!(&plan.changes[0], Change::CreateKmsKey { alias, tags, .. } if alias == "alias/tf-state" && tags["statebucket:environment"] == "dev")
        );
        assert!(plan.changes.contains(&Change::SetEncryption {
            from: None,
            to: SseTarget::Kms { key_arn: None }
        }));
        assert!(matches!(
            plan.changes.last(),
            Some(Change::WriteBackendFile { to: None, .. })
        ));
    }

    #[test]
    fn kms_in_sync_by_any_name_of_the_key_and_rotation_is_repaired() {
        let spec = spec(&DEV.replace(
            "  tags:",
            "  encryption: { kms_key: alias/tf-state, create_key: true }\n  tags:",
        ));
        let desired = desired(&spec);
        let mut observed = converged(&desired, Some(key_state(Some(true))));
        assert!(plan(&desired, &observed).unwrap().is_empty());
        for id in ["alias/tf-state", "1234abcd-12ab-34cd-56ef-1234567890ab"] {
            observed
                .bucket
                .as_mut()
                .unwrap()
                .encryption
                .as_mut()
                .unwrap()
                .kms_key_id = Some(id.into());
            assert!(plan(&desired, &observed).unwrap().is_empty(), "{id}");
        }
        observed.kms_key = Some(key_state(Some(false)));
        assert_eq!(
            plan(&desired, &observed).unwrap().changes,
            vec![Change::EnableKeyRotation {
                key_arn: KEY_ARN.into()
            }]
        );
        observed
            .bucket
            .as_mut()
            .unwrap()
            .encryption
            .as_mut()
            .unwrap()
            .bucket_key = false;
        observed.kms_key = Some(key_state(Some(true)));
        assert_eq!(
            facets(&plan(&desired, &observed).unwrap()),
            vec![Facet::Encryption]
        );
    }

    fn rule(id: &str) -> LifecycleRule {
        LifecycleRule {
            id: Some(id.into()),
            enabled: true,
            filter: RuleFilter::Prefix("archive/".into()),
            expiration: None,
            transitions: vec![crate::observed::Transition {
                days: Some(30),
                date: None,
                storage_class: Some("GLACIER".into()),
            }],
            noncurrent_transitions: Vec::new(),
            noncurrent_expiration: None,
            abort_incomplete_upload_days: None,
        }
    }

    #[test]
    fn lifecycle_drift_is_repaired_and_foreign_rules_are_kept() {
        let spec = spec(DEV);
        let desired = desired(&spec);
        let mut observed = converged(&desired, None);
        let bucket = observed.bucket.as_mut().unwrap();
        // Someone shortened the retention and added a rule of their own.
        bucket.lifecycle[1].noncurrent_expiration = Some(NoncurrentExpiration {
            noncurrent_days: Some(1),
            newer_noncurrent_versions: None,
        });
        bucket.lifecycle.insert(0, rule("archive-old-exports"));
        bucket.lifecycle_minimum_object_size = Some("varies_by_storage_class".into());
        let plan = plan(&desired, &observed).unwrap();
        let [
            Change::SetLifecycle {
                from,
                to,
                rules,
                kept,
                minimum_object_size,
            },
        ] = plan.changes.as_slice()
        else {
            panic!("{plan:#?}")
        };
        assert_eq!(kept, &vec!["archive-old-exports".to_owned()]);
        assert_eq!(
            minimum_object_size.as_deref(),
            Some("varies_by_storage_class")
        );
        assert_eq!(
            from[1]
                .noncurrent_expiration
                .as_ref()
                .unwrap()
                .noncurrent_days,
            Some(1)
        );
        assert_eq!(to, &owned_lifecycle_rules(&spec.bucket.lifecycle));
        assert_eq!(rules[0], rule("archive-old-exports"));
        assert_eq!(rules.len(), 3);

        // The whole bucket said another way, and rules in another order, are in sync.
        let bucket = observed.bucket.as_mut().unwrap();
        bucket.lifecycle = owned_lifecycle_rules(&spec.bucket.lifecycle);
        bucket.lifecycle.reverse();
        bucket.lifecycle[0].filter = RuleFilter::Unfiltered;
        bucket.lifecycle.push(rule("archive-old-exports"));
        assert!(super::plan(&desired, &observed).unwrap().is_empty());
    }

    #[test]
    fn never_expiring_versions_removes_only_the_owned_expiry_rule() {
        let never = spec(&DEV.replace(
            "  tags:",
            "  lifecycle: { expire_noncurrent_after_days: never, abort_incomplete_uploads_after_days: 3 }\n  tags:",
        ));
        let owned = owned_lifecycle_rules(&never.bucket.lifecycle);
        assert_eq!(owned.len(), 1);
        assert_eq!(owned[0].abort_incomplete_upload_days, Some(3));
        let default_spec = spec(DEV);
        let desired = desired(&never);
        let mut observed = converged(&desired, None);
        let mut live = owned_lifecycle_rules(&default_spec.bucket.lifecycle);
        live.push(rule("keep-me"));
        observed.bucket.as_mut().unwrap().lifecycle = live;
        let plan = plan(&desired, &observed).unwrap();
        let [Change::SetLifecycle { rules, .. }] = plan.changes.as_slice() else {
            panic!("{plan:#?}")
        };
        let ids: Vec<_> = rules.iter().map(|rule| rule.id.clone().unwrap()).collect();
        assert_eq!(ids, vec!["keep-me", ABORT_UPLOADS_RULE_ID]);
    }

    #[test]
    fn a_foreign_rule_expiring_current_objects_is_pointed_out() {
        let spec = spec(DEV);
        let desired = desired(&spec);
        let mut observed = converged(&desired, None);
        let mut dangerous = rule("cleanup");
        dangerous.expiration = Some(crate::observed::Expiration {
            days: Some(30),
            date: None,
            expired_object_delete_marker: None,
        });
        observed.bucket.as_mut().unwrap().lifecycle.push(dangerous);
        let plan = plan(&desired, &observed).unwrap();
        assert!(plan.is_empty());
        assert!(
            plan.notes
                .iter()
                .any(|note| note.contains("`cleanup`") && note.contains("expires current objects")),
            "{:?}",
            plan.notes
        );
    }

    const LOGGING: &str = "  logging: { bucket: my-logs }\n  tags:";

    #[test]
    fn logging_is_granted_on_the_log_bucket_then_enabled() {
        let spec = spec(&DEV.replace("  tags:", LOGGING));
        assert_eq!(
            spec.bucket.logging.as_ref().unwrap().prefix.as_str(),
            "my-state/"
        );
        let mut desired = desired(&spec);
        let grant = policy::log_delivery_statement(
            "aws",
            "my-logs",
            "my-state/",
            "my-state",
            "123456789012",
        );
        desired.log_delivery = Some(grant.clone());
        let mut observed = converged(&desired, None);
        let foreign = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Auditors","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::my-logs/*"}]}"#;
        observed.log_bucket = Some(LogBucket::Found {
            region: "eu-west-1".into(),
            policy: Some(foreign.into()),
        });
        let plan = plan(&desired, &observed).unwrap();
        assert_eq!(facets(&plan), vec![Facet::LogDelivery, Facet::Logging]);
        let Change::GrantLogDelivery { to, .. } = &plan.changes[0] else {
            panic!()
        };
        let merged = PolicyDocument::parse(to).unwrap();
        assert_eq!(merged.statements.len(), 2);
        assert_eq!(merged.statements[1], grant);
        assert_eq!(
            plan.changes[1],
            Change::EnableLogging {
                from: None,
                to: LoggingTarget {
                    bucket: "my-logs".into(),
                    prefix: "my-state/".into()
                }
            }
        );

        observed.log_bucket = Some(LogBucket::Found {
            region: "eu-west-1".into(),
            policy: Some(to.clone()),
        });
        observed.bucket.as_mut().unwrap().logging = Some(LoggingTarget {
            bucket: "my-logs".into(),
            prefix: "my-state/".into(),
        });
        assert!(super::plan(&desired, &observed).unwrap().is_empty());

        observed.log_bucket = Some(LogBucket::Found {
            region: "us-east-1".into(),
            policy: None,
        });
        assert!(matches!(
            super::plan(&desired, &observed),
            Err(PlanError::LogBucketElsewhere { .. })
        ));
        observed.log_bucket = Some(LogBucket::Missing);
        assert!(matches!(
            super::plan(&desired, &observed),
            Err(PlanError::LogBucketMissing { .. })
        ));
    }

    fn good_table() -> LockTableState {
        LockTableState {
            hash_key: vec![("LockID".into(), "S".into())],
            has_range_key: false,
            billing_mode: TABLE_BILLING_MODE.into(),
            kms_encrypted: true,
            deletion_protection: true,
            point_in_time_recovery: Some(true),
            tags: BTreeMap::from([("team".into(), "platform".into())]),
        }
    }

    #[test]
    fn lock_table_is_created_then_kept_in_shape() {
        let spec = spec(&DEV.replace(
            "  key: app/terraform.tfstate",
            "  key: app/terraform.tfstate\n  lock: both",
        ));
        let desired = desired(&spec);
        let mut observed = converged(&desired, None);
        let plan = plan(&desired, &observed).unwrap();
        assert_eq!(
            plan.changes,
            vec![
                Change::CreateLockTable {
                    table: "my-state-locks".into(),
                    tags: spec.bucket.tags.clone()
                },
                Change::EnablePointInTimeRecovery {
                    table: "my-state-locks".into(),
                    from: None
                },
            ]
        );
        assert!(
            plan.notes
                .iter()
                .any(|note| note.contains("deprecated in Terraform 1.11"))
        );

        observed.lock_table = Some(good_table());
        assert!(super::plan(&desired, &observed).unwrap().is_empty());

        let mut drifted = good_table();
        drifted.billing_mode = "PROVISIONED".into();
        drifted.deletion_protection = false;
        drifted.point_in_time_recovery = Some(false);
        drifted.tags = BTreeMap::from([("owner".into(), "alice".into())]);
        drifted.kms_encrypted = false;
        observed.lock_table = Some(drifted);
        let plan = super::plan(&desired, &observed).unwrap();
        assert!(
            plan.notes
                .iter()
                .any(|note| note.contains("AWS owned key") && note.contains("--sse-specification")),
            "{:?}",
            plan.notes
        );
        assert_eq!(
            facets(&plan),
            vec![
                Facet::LockTable,
                Facet::PointInTimeRecovery,
                Facet::LockTableTags
            ]
        );
        assert!(matches!(&plan.changes[2], Change::TagLockTable { to, .. } if to.len() == 2));

        let mut wrong_key = good_table();
        wrong_key.hash_key = vec![("id".into(), "N".into())];
        observed.lock_table = Some(wrong_key);
        assert!(matches!(
            super::plan(&desired, &observed),
            Err(PlanError::LockTableUnusable { .. })
        ));
    }

    #[test]
    fn leaving_dynamodb_keeps_the_table_and_says_how_to_remove_it() {
        let both = spec(&DEV.replace(
            "  key: app/terraform.tfstate",
            "  key: app/terraform.tfstate\n  lock: both",
        ));
        let old_file = render_backend(&desired(&both), None);
        assert!(old_file.contains("dynamodb_table") && old_file.contains("use_lockfile"));
        let lockfile = spec(DEV);
        let desired = desired(&lockfile);
        let mut observed = converged(&desired, None);
        observed.backend_file = Some(old_file);
        let plan = plan(&desired, &observed).unwrap();
        assert_eq!(facets(&plan), vec![Facet::BackendFile]);
        let note = plan
            .notes
            .iter()
            .find(|note| note.contains("my-state-locks"))
            .expect("a note on the table");
        assert!(
            note.contains("never deletes") && note.contains("aws dynamodb delete-table"),
            "{note}"
        );
        assert!(
            !plan
                .changes
                .iter()
                .any(|change| matches!(change, Change::CreateLockTable { .. }))
        );
        assert!(!note.contains("Caution"), "{note}");

        // Straight from dynamodb-only to the lockfile: older runners would lock elsewhere.
        let dynamodb_only = spec(&DEV.replace(
            "  key: app/terraform.tfstate",
            "  key: app/terraform.tfstate\n  lock: dynamodb",
        ));
        observed.backend_file = Some(render_backend(&super::tests::desired(&dynamodb_only), None));
        let plan = super::plan(&desired, &observed).unwrap();
        assert!(
            plan.notes
                .iter()
                .any(|note| note.contains("set `lock: both` first")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn errors_that_stop_a_plan() {
        let spec_aes = spec(DEV);
        let desired_aes = desired(&spec_aes);
        let mut observed = converged(&desired_aes, None);
        observed.bucket.as_mut().unwrap().region = "us-east-1".into();
        let error = plan(&desired_aes, &observed).unwrap_err();
        assert_eq!(
            error.to_string(),
            "bucket `my-state` exists in us-east-1, but the spec says eu-west-1"
        );

        observed.bucket.as_mut().unwrap().region = "eu-west-1".into();
        observed.bucket.as_mut().unwrap().policy = Some("{not json".into());
        assert!(matches!(
            plan(&desired_aes, &observed),
            Err(PlanError::UnreadablePolicy { .. })
        ));

        let existing = spec(&DEV.replace(
            "  tags:",
            "  encryption: { kms_key: alias/somebody-elses }\n  tags:",
        ));
        assert!(matches!(
            plan(&desired(&existing), &Observed::default()),
            Err(PlanError::KmsKeyMissing { .. })
        ));
        let mut pending = key_state(None);
        pending.state = "PendingDeletion".into();
        let observed = Observed {
            kms_key: Some(pending),
            ..Observed::default()
        };
        assert!(matches!(
            plan(&desired(&existing), &observed),
            Err(PlanError::KmsKeyUnusable { .. })
        ));
    }
}
