//! The plan: what must change for a bucket to match its desired state. Pure: a plan is
//! computed from the desired and the observed state, printed, and then applied change by
//! change. Each facet is one file here: its comparison and its changes.
//!
//! Safety rules are structural here: no change can delete anything, suspend versioning,
//! clear a public-access flag, or drop a policy statement, rule or tag the tool does not own.

mod backend_file;
mod bucket;
mod bucket_policy;
mod change;
mod encryption;
mod identity_policy;
mod key_policy;
mod kms_key;
mod lifecycle;
mod lock_table;
mod logging;
mod object_lock;
mod ownership;
mod public_access;
mod replication;
mod tags;
#[cfg(test)]
mod tests;
mod tofu_key;
mod versioning;

use serde::Serialize;

pub use change::{Change, Facet, KeyArn, SseTarget, TableSettings, Target};
pub use lifecycle::{
    ABORT_UPLOADS_RULE_ID, NONCURRENT_RULE_ID, OWNED_RULE_PREFIX, owned_lifecycle_rules,
};

use crate::desired::DesiredBucket;
use crate::observed::Observed;
use crate::spec::StoreFeature;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvPlan {
    pub changes: Vec<Change>,
    pub in_sync: Vec<Facet>,
    /// Statements in the live policy that the tool does not own and keeps.
    pub kept_statements: Vec<String>,
    /// Things the user should know that are not changes.
    pub notes: Vec<String>,
    /// With `bucket.replica`: the replica's own plan (a bucket reconciled like this one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<Box<ReplicaPlan>>,
}

/// The plan of a replica bucket, with where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaPlan {
    pub bucket: String,
    pub region: String,
    #[serde(flatten)]
    pub plan: EnvPlan,
}

impl EnvPlan {
    /// No change here nor on the replica.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self
                .replica
                .as_ref()
                .is_none_or(|replica| replica.plan.is_empty())
    }

    /// Every change, the replica's after this bucket's.
    pub fn all_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().chain(
            self.replica
                .iter()
                .flat_map(|replica| replica.plan.changes.iter()),
        )
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
    #[error("the live policy of `{bucket}` cannot be read: {reason}")]
    UnreadablePolicy { bucket: String, reason: String },
    #[error("the key policy of KMS key {key} cannot be read: {reason}")]
    UnreadableKeyPolicy { key: String, reason: String },
    #[error("log bucket `{bucket}` does not exist (or is not in this account)")]
    LogBucketMissing { bucket: String },
    #[error("log bucket `{bucket}` is in {actual}, but the state bucket is in {expected}")]
    LogBucketElsewhere {
        bucket: String,
        actual: String,
        expected: String,
    },
    #[error(
        "the replication configuration of `{bucket}` uses role {role} for rules statebucket does not own ({}); one configuration has one role",
        rules.join(", ")
    )]
    ReplicationRoleTaken {
        bucket: String,
        role: String,
        rules: Vec<String>,
    },
    #[error(
        "DynamoDB table `{table}` exists, but its key is {key}; Terraform needs a single hash key `LockID` of type string"
    )]
    LockTableUnusable { table: String, key: String },
    #[error(
        "the bucket policy of `{bucket}` would be {bytes} bytes for {stacks} stacks; S3 refuses policies over {limit} bytes"
    )]
    BucketPolicyTooLarge {
        bucket: String,
        bytes: usize,
        stacks: usize,
        limit: usize,
    },
    #[error(
        "the key policy of KMS key {key} would be {bytes} bytes; KMS refuses policies over {limit} bytes"
    )]
    KeyPolicyTooLarge {
        key: String,
        bytes: usize,
        limit: usize,
    },
    #[error(
        "the inline policy for {principal} would be {chars} characters; IAM allows {limit} for all inline policies of a {kind}"
    )]
    IdentityPolicyTooLarge {
        principal: String,
        kind: String,
        chars: usize,
        limit: usize,
    },
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
            PlanError::UnreadableKeyPolicy { key, .. } => format!(
                "fix the key policy by hand (aws kms get-key-policy --key-id {key} --policy-name default); statebucket will not overwrite a policy it cannot read"
            ),
            PlanError::LogBucketMissing { .. } => {
                "create the log bucket first (same account and region, ACLs disabled), or correct `bucket.logging.bucket`; statebucket does not create log buckets".into()
            }
            PlanError::LogBucketElsewhere { expected, .. } => format!(
                "S3 delivers access logs only to a bucket in the same region: use a log bucket in {expected}"
            ),
            PlanError::ReplicationRoleTaken { role, .. } => format!(
                "replication with statebucket's rule would move those rules to statebucket's role; grant {role} what statebucket's rule needs and add the rule by hand, or move the other rules to another bucket's configuration"
            ),
            PlanError::LockTableUnusable { .. } => {
                "name another table in `backend.dynamodb_table`; statebucket never changes or deletes an existing table's key".into()
            }
            PlanError::BucketPolicyTooLarge { .. } => {
                "stacks that share their writers and readers share statements (give them no `access` of their own), and shorter keys and names take less; or split the stacks over two buckets, one spec file each".into()
            }
            PlanError::KeyPolicyTooLarge { key, .. } => format!(
                "statebucket keeps every statement it does not own: remove statements from the key policy by hand (aws kms get-key-policy --key-id {key} --policy-name default), or list fewer principals"
            ),
            PlanError::IdentityPolicyTooLarge { .. } => {
                "attach the policy yourself as a managed policy (`statebucket policy ENV --identity --stack S` prints each tier's), or grant through the bucket policy only: remove `access.attach_identity_policy`".into()
            }
        }
    }
}

/// Collects a plan facet by facet.
#[derive(Debug, Default)]
struct Planner {
    changes: Vec<Change>,
    in_sync: Vec<Facet>,
    kept_statements: Vec<String>,
    notes: Vec<String>,
}

impl Planner {
    /// The facet's change, or the facet as in sync.
    fn record(&mut self, facet: Facet, change: Option<Change>) {
        match change {
            Some(change) => self.changes.push(change),
            None => self.in_sync.push(facet),
        }
    }

    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

pub fn plan(desired: &DesiredBucket<'_>, observed: &Observed) -> Result<EnvPlan, PlanError> {
    let mut planner = Planner::default();
    bucket::check_region(desired, observed)?;
    // The key comes first: encryption, the key policy and backend.hcl depend on its ARN.
    let sse = kms_key::plan(&mut planner, desired, observed)?;
    let state = bucket::plan(&mut planner, desired, observed);
    versioning::plan(&mut planner, &state);
    encryption::plan(
        &mut planner,
        desired,
        &state,
        observed.kms_key.as_ref(),
        &sse,
    );
    let spec = desired.spec;
    if spec.lacks(StoreFeature::PublicAccessBlock) {
        planner.note("the store has no public access block (`compat.lacks`): not managed; keep the bucket private with the store's own settings".to_owned());
    } else {
        public_access::plan(&mut planner, &state);
    }
    if spec.lacks(StoreFeature::OwnershipControls) {
        planner.note(
            "the store has no object ownership controls (`compat.lacks`): not managed".to_owned(),
        );
    } else {
        ownership::plan(&mut planner, &state);
    }
    bucket_policy::plan(&mut planner, desired, &state)?;
    key_policy::plan(&mut planner, desired, observed, &sse)?;
    if spec.lacks(StoreFeature::Tagging) {
        planner.note("the store has no bucket tagging (`compat.lacks`): not managed".to_owned());
    } else {
        tags::plan(&mut planner, desired, &state);
    }
    lifecycle::plan(&mut planner, desired, &state);
    object_lock::plan(&mut planner, desired, &state);
    logging::plan(&mut planner, desired, observed, &state)?;
    lock_table::plan(&mut planner, desired, observed)?;
    identity_policy::plan(&mut planner, desired, observed)?;
    tofu_key::plan(&mut planner, desired, observed);
    if let (Some(replication), Some(state)) = (&desired.replication, &observed.replication) {
        replication::plan(&mut planner, replication, state, spec.bucket.name.as_str())?;
    }
    backend_file::plan(&mut planner, desired, observed, &sse);
    Ok(EnvPlan {
        changes: planner.changes,
        in_sync: planner.in_sync,
        kept_statements: planner.kept_statements,
        notes: planner.notes,
        replica: None,
    })
}

/// A bucket and its replica: each planned as a bucket of its own, the replica's plan
/// nested in the primary's. Replication itself (role, rule) is part of the primary's.
pub fn plan_with_replica(
    desired: &DesiredBucket<'_>,
    observed: &Observed,
    replica: Option<(&DesiredBucket<'_>, &Observed)>,
) -> Result<EnvPlan, PlanError> {
    let mut primary = plan(desired, observed)?;
    if let Some((replica_desired, replica_observed)) = replica {
        primary.replica = Some(Box::new(ReplicaPlan {
            bucket: replica_desired.spec.bucket.name.to_string(),
            region: replica_desired.spec.region.to_string(),
            plan: plan(replica_desired, replica_observed)?,
        }));
    }
    Ok(primary)
}
