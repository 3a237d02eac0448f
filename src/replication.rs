//! Replication of the state bucket into its replica (`bucket.replica`): the role S3 assumes,
//! the role's least-privilege policy, and the one replication rule statebucket owns. Pure:
//! built from the spec and the account.
//!
//! AWS facts this relies on: a replication configuration names one role for all its rules;
//! PutBucketReplication replaces every rule at once; both buckets must have versioning on;
//! S3 replicates SSE-KMS objects only when the rule selects them (`SseKmsEncryptedObjects`)
//! and names the key to re-encrypt them with in the destination's region (a key ARN or an
//! alias ARN); a replica keeps the source version's id.

use serde_json::{Value, json};

use crate::observed::{ForeignReplicationRule, ReplicationRule};
use crate::policy::{PolicyDocument, allow, bucket_arn, kms_key_statement, only_through_s3};
use crate::spec::{AccountId, BucketName, Encryption, EnvSpec, IamArn, KmsKey, KmsKeyRef};

/// The id of statebucket's rule in the primary's replication configuration.
pub const RULE_ID: &str = "statebucket-state-replica";
/// The name of the replication role's inline policy.
pub const ROLE_POLICY_NAME: &str = "statebucket-replication";
const ROLE_PREFIX: &str = "statebucket-replication-";
/// IAM's limit on role names.
const ROLE_NAME_MAX: usize = 64;
/// The service that assumes the replication role.
pub const S3_SERVICE: &str = "s3.amazonaws.com";

/// What replication of one bucket into its replica needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredReplication {
    pub role_name: String,
    pub role_arn: IamArn,
    pub trust_policy: PolicyDocument,
    /// The role's inline policy (sent as compact JSON, as IAM takes it).
    pub role_policy: PolicyDocument,
    /// The rule as statebucket sets it, at priority `rule.priority` unless another owner's
    /// rule has it (see `rule_for`).
    pub rule: ReplicationRule,
}

impl DesiredReplication {
    /// `primary` is the spec with the replica; `replica` the spec `replica_spec` derived.
    pub fn build(primary: &EnvSpec, replica: &EnvSpec, account: &AccountId) -> DesiredReplication {
        let partition = primary.region.partition();
        let role_name = role_name(&primary.bucket.name);
        let role_arn = role_arn(partition, account.as_str(), &primary.bucket.name);
        let source = bucket_arn(partition, &primary.bucket.name);
        let destination = bucket_arn(partition, &replica.bucket.name);
        let mut statements = vec![
            allow(
                "StatebucketReplicationSourceBucket",
                json!(["s3:GetReplicationConfiguration", "s3:ListBucket"]),
                &source,
            ),
            allow(
                "StatebucketReplicationSourceObjects",
                json!(source_object_actions(replica)),
                format!("{source}/*"),
            ),
            allow(
                "StatebucketReplicationDestinationObjects",
                json!([
                    "s3:ReplicateObject",
                    "s3:ReplicateDelete",
                    "s3:ReplicateTags"
                ]),
                format!("{destination}/*"),
            ),
        ];
        // S3 decrypts each source object and encrypts its replica on the role's behalf:
        // each key only through S3 in its own region, and only for its own bucket's objects
        // (the encryption context is the object's ARN, or the bucket's with an S3 Bucket Key).
        // Every KMS bucket statebucket configures uses an S3 Bucket Key, and replicating into
        // a destination with a Bucket Key needs kms:Decrypt on the destination key besides
        // kms:Encrypt (S3 User Guide, "Replicating encrypted objects", S3 Bucket Keys and
        // replication).
        let keys = [
            (
                primary,
                &source,
                json!(["kms:Decrypt"]),
                "StatebucketReplicationDecryptSource",
            ),
            (
                replica,
                &destination,
                json!(["kms:Decrypt", "kms:Encrypt"]),
                "StatebucketReplicationEncryptReplica",
            ),
        ];
        for (spec, bucket, actions, sid) in keys {
            if let Encryption::Kms(key) = &spec.bucket.encryption {
                let mut statement = kms_key_statement(spec, account, key, actions, sid);
                only_through_s3(&mut statement, &spec.region);
                statement["Condition"]["StringLike"] =
                    json!({ "kms:EncryptionContext:aws:s3:arn": [bucket, format!("{bucket}/*")] });
                statements.push(statement);
            }
        }
        let rule = ReplicationRule {
            id: RULE_ID.to_owned(),
            priority: 1,
            enabled: true,
            whole_bucket: true,
            delete_markers: true,
            destination,
            replica_kms_key: match (&primary.bucket.encryption, &replica.bucket.encryption) {
                (Encryption::Kms(_), Encryption::Kms(key)) => {
                    Some(key_reference_arn(replica, account, key))
                }
                _ => None,
            },
            storage_class: None,
        };
        DesiredReplication {
            role_name,
            role_arn,
            trust_policy: trust_policy(account),
            role_policy: PolicyDocument::of(statements),
            rule,
        }
    }

    /// The rule at a priority no rule of another owner has: the one it has now when free,
    /// else one above all of theirs (S3 refuses two rules of one priority).
    pub fn rule_for(
        &self,
        current: Option<&ReplicationRule>,
        foreign: &[ForeignReplicationRule],
    ) -> ReplicationRule {
        let taken = |priority: i32| foreign.iter().any(|rule| rule.priority == Some(priority));
        let priority = match current.map(|rule| rule.priority) {
            Some(priority) if !taken(priority) => priority,
            _ if !taken(self.rule.priority) => self.rule.priority,
            _ => {
                foreign
                    .iter()
                    .filter_map(|rule| rule.priority)
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        ReplicationRule {
            priority,
            ..self.rule.clone()
        }
    }
}

/// `statebucket-replication-<bucket>`; a bucket name too long for IAM's 64 characters is
/// cut, and a digest of the whole name keeps two such names apart.
pub fn role_name(bucket: &BucketName) -> String {
    let name = format!("{ROLE_PREFIX}{bucket}");
    if name.len() <= ROLE_NAME_MAX {
        return name;
    }
    let digest = fnv1a(bucket.as_str().as_bytes());
    let suffix = format!("-{digest:08x}");
    format!("{}{suffix}", &name[..ROLE_NAME_MAX - suffix.len()])
}

/// The replication role of `bucket` (the primary) in `account`.
pub fn role_arn(partition: &str, account: &str, bucket: &BucketName) -> IamArn {
    IamArn::parse(&format!(
        "arn:{partition}:iam::{account}:role/{}",
        role_name(bucket)
    ))
    .expect("a role ARN from a valid account and role name")
}

/// What the role reads of each source object version: the object with its ACL and tags,
/// and, when the replica uses Object Lock, the version's retention and legal hold, which S3
/// replicates with it (S3 User Guide, "Object Lock and replication": the source role needs
/// s3:GetObjectRetention and s3:GetObjectLegalHold).
fn source_object_actions(replica: &EnvSpec) -> Vec<&'static str> {
    let mut actions = vec![
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
    ];
    if replica.bucket.object_lock.is_some() {
        actions.extend(["s3:GetObjectRetention", "s3:GetObjectLegalHold"]);
    }
    actions
}

/// S3 may assume the role, on behalf of `account`'s buckets only: `aws:SourceAccount`
/// keeps another account's bucket from having S3 act with this role (the confused deputy
/// problem, IAM User Guide "The confused deputy problem").
pub fn trust_policy(account: &AccountId) -> PolicyDocument {
    PolicyDocument::of(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": S3_SERVICE },
        "Action": "sts:AssumeRole",
        "Condition": { "StringEquals": { "aws:SourceAccount": account.as_str() } },
    })])
}

/// Whether a trust policy lets S3 assume the role: an Allow of `sts:AssumeRole` (or `sts:*`,
/// `*`) for the service principal. Conditions (e.g. `aws:SourceAccount`) are the owner's to
/// choose and are not second-guessed here.
pub fn trusts_s3(trust_policy: &str) -> bool {
    let Ok(document) = PolicyDocument::parse(trust_policy) else {
        return false;
    };
    document.statements.iter().any(|statement| {
        let allows = statement["Effect"] == "Allow";
        let service = &statement["Principal"]["Service"];
        let names_s3 = match service {
            Value::String(name) => name == S3_SERVICE,
            Value::Array(names) => names.iter().any(|name| name == S3_SERVICE),
            _ => false,
        };
        let action = &statement["Action"];
        let assumes =
            |name: &Value| matches!(name.as_str(), Some("sts:AssumeRole" | "sts:*" | "*"));
        let assumes = match action {
            Value::Array(actions) => actions.iter().any(assumes),
            other => assumes(other),
        };
        allows && names_s3 && assumes
    })
}

/// The key as S3's `ReplicaKmsKeyID` takes it, fully qualified: a key ARN, or an alias ARN
/// (known before a key statebucket creates exists).
fn key_reference_arn(spec: &EnvSpec, account: &AccountId, key: &KmsKey) -> String {
    let partition = spec.region.partition();
    let region = &spec.region;
    match key {
        KmsKey::Existing(KmsKeyRef::KeyArn(arn) | KmsKeyRef::AliasArn(arn)) => arn.to_string(),
        KmsKey::Existing(KmsKeyRef::KeyId(id)) => {
            format!("arn:{partition}:kms:{region}:{account}:key/{id}")
        }
        KmsKey::Existing(KmsKeyRef::Alias(alias)) | KmsKey::Managed(alias) => {
            format!("arn:{partition}:kms:{region}:{account}:{alias}")
        }
    }
}

/// FNV-1a, 32 bits: a stable digest for names, not for security.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;

    const KMS_PRIMARY: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: acme-state-prod
  encryption: { kms_key: alias/state-prod, create_key: true }
  replica:
    region: eu-central-1
    encryption: { kms_key: alias/state-prod-replica, create_key: true }
access: { users: [terraform] }
backend: { key: prod/terraform.tfstate }
";

    fn specs(text: &str) -> (EnvSpec, EnvSpec) {
        let spec = parse_spec("environments/prod.yaml", "prod", text).expect("valid");
        let replica = spec.replica_spec().expect("a replica");
        (spec, replica)
    }

    fn account() -> AccountId {
        AccountId::parse("123456789012").expect("12 digits")
    }

    #[test]
    fn the_role_policy_is_the_documented_least_privilege_with_each_key_through_s3_in_its_region() {
        let (primary, replica) = specs(KMS_PRIMARY);
        let desired = DesiredReplication::build(&primary, &replica, &account());
        assert_eq!(
            desired.role_arn.to_string(),
            "arn:aws:iam::123456789012:role/statebucket-replication-acme-state-prod"
        );
        let statements = &desired.role_policy.statements;
        let by_sid = |sid: &str| {
            statements
                .iter()
                .find(|statement| statement["Sid"] == sid)
                .unwrap_or_else(|| panic!("{sid} in {statements:#?}"))
        };
        assert_eq!(
            by_sid("StatebucketReplicationSourceBucket")["Resource"],
            "arn:aws:s3:::acme-state-prod"
        );
        assert_eq!(
            by_sid("StatebucketReplicationSourceObjects")["Action"],
            json!([
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging"
            ])
        );
        let destination = by_sid("StatebucketReplicationDestinationObjects");
        assert_eq!(
            destination["Resource"],
            "arn:aws:s3:::acme-state-prod-replica/*"
        );
        assert_eq!(
            destination["Action"],
            json!([
                "s3:ReplicateObject",
                "s3:ReplicateDelete",
                "s3:ReplicateTags"
            ])
        );
        let decrypt = by_sid("StatebucketReplicationDecryptSource");
        assert_eq!(decrypt["Action"], json!(["kms:Decrypt"]));
        assert_eq!(
            decrypt["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            decrypt["Resource"],
            "arn:aws:kms:eu-west-1:123456789012:key/*"
        );
        assert_eq!(
            decrypt["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            "alias/state-prod"
        );
        assert_eq!(
            decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"],
            json!([
                "arn:aws:s3:::acme-state-prod",
                "arn:aws:s3:::acme-state-prod/*"
            ])
        );
        // The replica uses an S3 Bucket Key: replicating into it decrypts with its key too.
        let encrypt = by_sid("StatebucketReplicationEncryptReplica");
        assert_eq!(encrypt["Action"], json!(["kms:Decrypt", "kms:Encrypt"]));
        assert_eq!(
            encrypt["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.eu-central-1.amazonaws.com"
        );
        assert_eq!(
            encrypt["Resource"],
            "arn:aws:kms:eu-central-1:123456789012:key/*"
        );
        assert_eq!(
            encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"],
            json!([
                "arn:aws:s3:::acme-state-prod-replica",
                "arn:aws:s3:::acme-state-prod-replica/*"
            ])
        );
        // Nothing else: no write to the source, no read of the destination.
        assert_eq!(statements.len(), 5);
    }

    #[test]
    fn into_an_object_lock_replica_the_role_reads_each_versions_retention_and_legal_hold() {
        let actions = |text: &str| {
            let (primary, replica) = specs(text);
            let desired = DesiredReplication::build(&primary, &replica, &account());
            desired
                .role_policy
                .statements
                .iter()
                .find(|statement| statement["Sid"] == "StatebucketReplicationSourceObjects")
                .map(|statement| statement["Action"].clone())
                .expect("the source objects statement")
        };
        let locked = KMS_PRIMARY.replace(
            "    region: eu-central-1\n",
            "    region: eu-central-1\n    object_lock: { mode: governance, days: 30 }\n",
        );
        let with_lock = actions(&locked);
        for needed in ["s3:GetObjectRetention", "s3:GetObjectLegalHold"] {
            assert!(
                with_lock
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|action| action == needed),
                "{needed} in {with_lock}"
            );
        }
        assert!(
            !actions(KMS_PRIMARY)
                .as_array()
                .unwrap()
                .iter()
                .any(|action| action == "s3:GetObjectRetention"),
            "without Object Lock the role reads no retention"
        );
    }

    #[test]
    fn s3_assumes_the_role_only_for_buckets_of_its_own_account() {
        let trust = trust_policy(&account());
        assert_eq!(
            trust.statements[0]["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": "123456789012"}})
        );
    }

    #[test]
    fn without_kms_the_role_has_no_key_statement_and_the_rule_selects_no_kms_objects() {
        let text = KMS_PRIMARY
            .replace(
                "  encryption: { kms_key: alias/state-prod, create_key: true }\n",
                "",
            )
            .replace(
                "    encryption: { kms_key: alias/state-prod-replica, create_key: true }\n",
                "",
            );
        let (primary, replica) = specs(&text);
        let desired = DesiredReplication::build(&primary, &replica, &account());
        assert_eq!(desired.role_policy.statements.len(), 3);
        assert_eq!(desired.rule.replica_kms_key, None);
    }

    #[test]
    fn the_rule_replicates_every_object_and_delete_markers_into_the_replica_key() {
        let (primary, replica) = specs(KMS_PRIMARY);
        let rule = DesiredReplication::build(&primary, &replica, &account()).rule;
        assert_eq!(
            rule,
            ReplicationRule {
                id: RULE_ID.into(),
                priority: 1,
                enabled: true,
                whole_bucket: true,
                delete_markers: true,
                destination: "arn:aws:s3:::acme-state-prod-replica".into(),
                replica_kms_key: Some(
                    "arn:aws:kms:eu-central-1:123456789012:alias/state-prod-replica".into()
                ),
                storage_class: None,
            }
        );
    }

    #[test]
    fn the_rule_takes_a_priority_no_foreign_rule_has() {
        let (primary, replica) = specs(KMS_PRIMARY);
        let desired = DesiredReplication::build(&primary, &replica, &account());
        let foreign = |priority| ForeignReplicationRule {
            id: format!("theirs-{priority}"),
            priority: Some(priority),
            destination: None,
            kept: std::sync::Arc::new(()),
        };
        assert_eq!(desired.rule_for(None, &[]).priority, 1);
        assert_eq!(
            desired.rule_for(None, &[foreign(1), foreign(4)]).priority,
            5
        );
        let current = ReplicationRule {
            priority: 3,
            ..desired.rule.clone()
        };
        assert_eq!(desired.rule_for(Some(&current), &[foreign(1)]).priority, 3);
        assert_eq!(desired.rule_for(Some(&current), &[foreign(3)]).priority, 1);
    }

    #[test]
    fn role_names_fit_iam_and_stay_apart() {
        let short = BucketName::parse("acme-state").expect("valid");
        assert_eq!(role_name(&short), "statebucket-replication-acme-state");
        let long_a = BucketName::parse(&format!("{}-a", "x".repeat(55))).expect("valid");
        let long_b = BucketName::parse(&format!("{}-b", "x".repeat(55))).expect("valid");
        assert_eq!(role_name(&long_a).len(), 64);
        assert_ne!(role_name(&long_a), role_name(&long_b));
    }

    #[test]
    fn trust_in_s3_is_recognised_and_anything_else_is_not() {
        let account = AccountId::parse("123456789012").unwrap();
        let trust = trust_policy(&account).to_compact_json();
        assert!(trusts_s3(&trust));
        let ec2 = trust.replace(S3_SERVICE, "ec2.amazonaws.com");
        assert!(!trusts_s3(&ec2));
        let denied = trust.replace("Allow", "Deny");
        assert!(!trusts_s3(&denied));
        assert!(!trusts_s3("not json"));
    }
}
