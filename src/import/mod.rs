//! `statebucket import`'s core: from a live bucket (read by `aws::import`) to the spec that
//! reproduces what statebucket manages, and the notes the reader must see. Pure.
//!
//! What the spec can say is taken from the bucket: region, encryption and the KMS key's
//! alias, tags, lifecycle retention, logging, and the principals the bucket policy grants
//! state access to (with the state keys they are granted, when the policy names them).
//! What statebucket always enforces (versioning, the public access block, object
//! ownership, TLS-only access) has no key in a spec: the notes name what the bucket lacks,
//! which is exactly what `plan` will then show.

use crate::observed::{ObservedBucket, ReplicationConfiguration};
use crate::scaffold::NewSpec;
use crate::spec::{
    AccountId, BucketName, Days, Encryption, EnvName, LogPrefix, Logging, ObjectLock, ProfileName,
    Region, ReplicaSpec, RetentionMode, TableName,
};

mod grants;
mod layout;
mod settings;

use grants::*;
use layout::*;
use settings::*;

/// What import knows besides the bucket.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub env: EnvName,
    pub bucket: BucketName,
    pub region: Region,
    /// The account of the identity that read the bucket (HeadBucket checked it owns it).
    pub account: AccountId,
    /// Written as `profile` (Terraform's identity); `None`: the placeholder `terraform`.
    pub terraform_profile: Option<ProfileName>,
    /// The identity that read the bucket (`--profile`), written as `bootstrap_profile`.
    pub bootstrap_profile: Option<ProfileName>,
}

/// The live bucket, as `aws::import` read it.
#[derive(Debug, Clone)]
pub struct LiveBucket<'a> {
    pub state: &'a ObservedBucket,
    /// The SSE-KMS customer managed key's ARN and aliases.
    pub kms_key: Option<(&'a str, &'a [String])>,
    /// Keys of `*.tfstate` objects in the bucket.
    pub state_keys: &'a [String],
    /// A DynamoDB table with Terraform's lock schema, found under a usual name.
    pub lock_table: Option<&'a str>,
    /// The bucket it replicates into, when it does and import could read it.
    pub replica: Option<LiveReplica<'a>>,
}

/// A bucket the state bucket replicates into, and the rule that does.
#[derive(Debug, Clone)]
pub struct LiveReplica<'a> {
    pub name: &'a str,
    pub region: &'a Region,
    pub state: &'a ObservedBucket,
    pub kms_key: Option<(&'a str, &'a [String])>,
    pub rule: &'a ReplicationTarget,
}

/// Where a replication configuration sends the state: statebucket's rule first, else the
/// first rule of another owner that names a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationTarget {
    pub bucket: String,
    pub rule: String,
    pub owned: bool,
    /// The configuration's role.
    pub role: String,
}

pub fn replication_target(configuration: &ReplicationConfiguration) -> Option<ReplicationTarget> {
    let (destination, rule, owned) = match &configuration.owned {
        Some(rule) => (rule.destination.clone(), rule.id.clone(), true),
        None => {
            let rule = configuration
                .foreign
                .iter()
                .find(|rule| rule.destination.is_some())?;
            (rule.destination.clone()?, rule.id.clone(), false)
        }
    };
    Some(ReplicationTarget {
        bucket: destination
            .rsplit_once(":::")
            .map_or(destination.as_str(), |(_, name)| name)
            .to_owned(),
        rule,
        owned,
        role: configuration.role.clone(),
    })
}

#[derive(Debug, Clone)]
pub struct Adopted {
    pub spec: NewSpec,
    /// Each says what the spec assumed, what to fill in, or what `apply` will add.
    pub notes: Vec<String>,
}

pub fn adopt(request: &ImportRequest, live: &LiveBucket<'_>) -> Adopted {
    let mut notes = Vec::new();
    let grants = match &live.state.policy {
        Some(policy) => policy_grants(policy, request.bucket.as_str(), &mut notes),
        None => {
            notes.push("the bucket has no policy: no principals to take over".to_owned());
            Vec::new()
        }
    };
    let (access, states) = layout(request, &grants, live.state_keys, &mut notes);
    let (encryption, encryption_note) = encryption(
        &request.region,
        live.state,
        live.kms_key,
        "bucket.encryption.kms_key",
        &mut notes,
    );
    let replica = live
        .replica
        .as_ref()
        .and_then(|replica| adopt_replica(request, replica, &encryption, &mut notes));
    let (lifecycle, lifecycle_note) = lifecycle(live.state);
    notes.extend(lifecycle_note.clone());
    let logging = live.state.logging.as_ref().and_then(|target| {
        let bucket = BucketName::parse(&target.bucket).ok()?;
        let prefix = LogPrefix::parse(&target.prefix).ok()?;
        Some(Logging { bucket, prefix })
    });
    notes.extend(hardening(live.state));
    let lock_table = live
        .lock_table
        .and_then(|table| TableName::parse(table).ok());
    notes.push(match &lock_table {
        Some(table) => format!(
            "DynamoDB table `{table}` has Terraform's lock schema: the spec keeps locking in it beside the lockfile (`lock: both`); once every runner is on Terraform >= 1.10, switch to `lock: lockfile`"
        ),
        None => "no DynamoDB lock table under a usual name (<bucket>-locks, terraform-locks, …): if your backend locks in one, set `lock: both` and `dynamodb_table` before `apply`, or the backend.hcl it writes drops the table".to_owned(),
    });
    let profile_note = match &request.terraform_profile {
        Some(_) => "the AWS profile Terraform's backend uses (written into backend.hcl)".to_owned(),
        None => {
            notes.push("`profile: terraform` is a placeholder: set the AWS profile Terraform's backend runs as (--terraform-profile)".to_owned());
            "PLACEHOLDER: the AWS profile Terraform's backend uses".to_owned()
        }
    };
    let spec = NewSpec {
        env: request.env.clone(),
        header: vec![
            format!(
                "Imported from bucket `{}` by `statebucket import`: what statebucket manages, as the",
                request.bucket
            ),
            "bucket had it. Read the notes import printed; `statebucket plan` shows what apply adds.".to_owned(),
        ],
        region: request.region.clone(),
        account_id: Some(request.account.clone()),
        profile: request
            .terraform_profile
            .clone()
            .unwrap_or_else(|| ProfileName::parse("terraform").expect("a valid name")),
        profile_note,
        bootstrap_profile: request.bootstrap_profile.clone(),
        bucket: request.bucket.clone(),
        bucket_note: None,
        encryption,
        encryption_note,
        tags: live
            .state
            .tags
            .iter()
            .filter(|(key, _)| !key.to_ascii_lowercase().starts_with("aws:"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        lifecycle,
        lifecycle_note,
        logging,
        access,
        states,
        lock_table,
        replica,
    };
    Adopted { spec, notes }
}

/// The replica as `bucket.replica`, or `None` (with a note) when a spec could not say it.
fn adopt_replica(
    request: &ImportRequest,
    replica: &LiveReplica<'_>,
    primary_encryption: &Encryption,
    notes: &mut Vec<String>,
) -> Option<ReplicaSpec> {
    let name = BucketName::parse(replica.name).ok()?;
    let rule = replica.rule;
    if *replica.region == request.region {
        notes.push(format!(
            "rule `{}` replicates into `{name}` in the bucket's own region: a statebucket replica must survive the loss of that region, so the spec has no `replica`; the rule is kept",
            rule.rule
        ));
        return None;
    }
    let (encryption, _) = encryption(
        replica.region,
        replica.state,
        replica.kms_key,
        "bucket.replica.encryption.kms_key",
        notes,
    );
    if matches!(primary_encryption, Encryption::Kms(_)) && matches!(encryption, Encryption::Aes256)
    {
        notes.push(format!(
            "the bucket replicates into `{name}` ({}), which has no customer managed KMS key while the bucket has one: name a key in the replica's region as `bucket.replica.encryption` to take it over; the spec has no `replica` until then",
            replica.region
        ));
        return None;
    }
    let object_lock = replica
        .state
        .object_lock
        .as_ref()
        .and_then(|lock| lock.default_retention.as_ref())
        .and_then(|retention| {
            let mode = RetentionMode::from_s3(&retention.mode)?;
            let days = Days::new(u32::try_from(retention.in_days()).ok()?)?;
            Some(ObjectLock { mode, days })
        });
    notes.push(if rule.owned {
        format!(
            "the bucket replicates into `{name}` ({}) with statebucket's rule: taken over as `bucket.replica`",
            replica.region
        )
    } else {
        format!(
            "the bucket replicates into `{name}` ({}) with rule `{}` (role {}): taken over as `bucket.replica`. apply adds statebucket's rule `{}` and role beside it, and a configuration has one role: remove rule `{}` first if it uses another role (statebucket's rule replaces it), else plan refuses",
            replica.region,
            rule.rule,
            rule.role,
            crate::replication::RULE_ID,
            rule.rule
        )
    });
    Some(ReplicaSpec {
        name,
        region: replica.region.clone(),
        encryption,
        object_lock,
        backend_file: None,
        positions: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::PublicAccessBlock;
    use crate::observed::Versioning;
    use crate::observed::{LifecycleRule, NoncurrentExpiration, RuleFilter, SseRule};
    use crate::plan::NONCURRENT_RULE_ID;
    use crate::scaffold::spec_text;
    use crate::spec::KmsKey;
    use crate::spec::KmsKeyRef;
    use crate::spec::parse_spec;
    use crate::testing::assert_noted;
    use std::collections::BTreeMap;

    const ACCOUNT: &str = "123456789012";

    fn request() -> ImportRequest {
        ImportRequest {
            env: EnvName::parse("legacy").unwrap(),
            bucket: BucketName::parse("hand-made-state").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            account: AccountId::parse(ACCOUNT).unwrap(),
            terraform_profile: Some(ProfileName::parse("terraform").unwrap()),
            bootstrap_profile: None,
        }
    }

    fn bucket(policy: Option<&str>) -> ObservedBucket {
        ObservedBucket {
            region: "eu-west-1".into(),
            versioning: Versioning::Enabled,
            encryption: Some(SseRule {
                algorithm: "AES256".into(),
                kms_key_id: None,
                bucket_key: false,
            }),
            public_access: PublicAccessBlock::ALL,
            ownership: None,
            policy: policy.map(str::to_owned),
            tags: BTreeMap::from([("team".into(), "platform".into())]),
            lifecycle: Vec::new(),
            lifecycle_minimum_object_size: None,
            logging: None,
            object_lock: None,
        }
    }

    /// The policy the setup articles show: a role and a user on one key, a foreign deny.
    const HAND_MADE: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Sid": "List", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::123456789012:role/terraform-ci", "arn:aws:iam::123456789012:user/terraform"]},
         "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::hand-made-state"},
        {"Sid": "State", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::123456789012:role/terraform-ci", "arn:aws:iam::123456789012:user/terraform"]},
         "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::hand-made-state/prod/terraform.tfstate", "arn:aws:s3:::hand-made-state/prod/terraform.tfstate.tflock"]},
        {"Sid": "Audit", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::123456789012:role/ops/auditor"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::hand-made-state/*"},
        {"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::hand-made-state/*"}
      ]}"#;

    /// The bucket alone: no KMS key, no state objects listed, no lock table, no replica.
    fn live(state: &ObservedBucket) -> LiveBucket<'_> {
        LiveBucket {
            state,
            kms_key: None,
            state_keys: &[],
            lock_table: None,
            replica: None,
        }
    }

    fn import(state: &ObservedBucket, keys: &[String]) -> (Adopted, crate::spec::EnvSpec) {
        adopt_and_parse(&LiveBucket {
            state_keys: keys,
            ..live(state)
        })
    }

    /// What import makes of `bucket`, and the spec it writes, parsed back.
    fn adopt_and_parse(bucket: &LiveBucket<'_>) -> (Adopted, crate::spec::EnvSpec) {
        let adopted = adopt(&request(), bucket);
        let text = spec_text(&adopted.spec);
        let spec = parse_spec("environments/legacy.yaml", "legacy", &text)
            .unwrap_or_else(|diagnostics| panic!("{text}\n{diagnostics:#?}"));
        (adopted, spec)
    }

    #[test]
    fn one_granted_key_becomes_the_backend_with_its_writers_and_readers() {
        let state = bucket(Some(HAND_MADE));
        let (adopted, spec) = import(&state, &[]);
        assert_eq!(spec.stacks.len(), 1);
        assert_eq!(spec.stacks[0].key.as_str(), "prod/terraform.tfstate");
        let names = |principals: &[crate::spec::PrincipalRef]| -> Vec<String> {
            principals.iter().map(ToString::to_string).collect()
        };
        assert_eq!(names(&spec.access.writers), ["terraform", "terraform-ci"]);
        assert_eq!(
            names(&spec.access.readers),
            ["arn:aws:iam::123456789012:role/ops/auditor"]
        );
        assert_eq!(
            spec.account_id.as_ref().map(AccountId::as_str),
            Some(ACCOUNT)
        );
        assert_eq!(
            spec.bucket.tags.get("team").map(String::as_str),
            Some("platform")
        );
        assert_eq!(spec.bucket.lifecycle.expire_noncurrent_after, None);
        let notes = adopted.notes.join("\n");
        for expected in [
            "arn:aws:iam::123456789012:root",
            "object ownership to BucketOwnerEnforced",
            "4 statement(s) stay as they are",
            "keeps every old state version",
        ] {
            assert!(notes.contains(expected), "{expected}: {notes}");
        }
        assert!(!notes.contains("public access"), "{notes}");
    }

    #[test]
    fn several_keys_become_stacks_with_their_own_principals() {
        let policy = r#"{"Statement": [
          {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/network-ci"},
           "Action": "s3:*", "Resource": "arn:aws:s3:::hand-made-state/network/terraform.tfstate"},
          {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:role/app-ci"]},
           "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::hand-made-state/app/terraform.tfstate"}
        ]}"#;
        let state = bucket(Some(policy));
        let (_, spec) = import(&state, &[]);
        let stacks: Vec<(String, String, Vec<String>)> = spec
            .stacks
            .iter()
            .map(|stack| {
                (
                    stack.name.to_string(),
                    stack.key.to_string(),
                    stack
                        .writers
                        .iter()
                        .flatten()
                        .map(ToString::to_string)
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            stacks,
            [
                (
                    "app".into(),
                    "app/terraform.tfstate".into(),
                    vec!["app-ci".into()]
                ),
                (
                    "network".into(),
                    "network/terraform.tfstate".into(),
                    vec!["network-ci".into()]
                ),
            ]
        );
    }

    #[test]
    fn a_wildcard_policy_takes_the_keys_of_the_states_in_the_bucket() {
        let policy = r#"{"Statement": {"Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::123456789012:user/terraform"},
          "Action": "s3:*", "Resource": "arn:aws:s3:::hand-made-state/*"}}"#;
        let state = bucket(Some(policy));
        let (_, spec) = import(
            &state,
            &[
                "live/terraform.tfstate".into(),
                "env:/staging/live/terraform.tfstate".into(),
            ],
        );
        assert_eq!(spec.stacks[0].key.as_str(), "live/terraform.tfstate");
        let (adopted, spec) = import(&state, &[]);
        assert_eq!(spec.stacks[0].key.as_str(), "terraform.tfstate");
        assert_noted(&adopted.notes, &["placeholder `terraform.tfstate`"]);
        assert!(spec_text(&adopted.spec).contains("PLACEHOLDER"));
    }

    #[test]
    fn no_policy_gives_a_placeholder_writer_said_clearly() {
        let mut state = bucket(None);
        state.public_access = PublicAccessBlock::default();
        state.versioning = Versioning::Suspended;
        let (adopted, spec) = import(&state, &["terraform.tfstate".into()]);
        assert_eq!(spec.access.writers[0].to_string(), "terraform");
        let notes = adopted.notes.join("\n");
        for expected in [
            "placeholder user `terraform`",
            "enable versioning (now: Suspended)",
            "block all public access (now: none blocked)",
        ] {
            assert!(notes.contains(expected), "{expected}: {notes}");
        }
    }

    #[test]
    fn retention_follows_the_bucket_never_the_default_that_deletes_history() {
        let mut state = bucket(Some(HAND_MADE));
        state.lifecycle = vec![LifecycleRule {
            id: Some("expire-old-versions".into()),
            enabled: true,
            filter: RuleFilter::Prefix(String::new()),
            expiration: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
            noncurrent_expiration: Some(NoncurrentExpiration {
                noncurrent_days: Some(30),
                newer_noncurrent_versions: None,
            }),
            abort_incomplete_upload_days: None,
        }];
        let (adopted, spec) = import(&state, &[]);
        assert_eq!(spec.bucket.lifecycle.expire_noncurrent_after, None);
        assert!(
            adopted
                .notes
                .iter()
                .chain(&adopted.spec.lifecycle_note)
                .any(|note| note.contains("`expire-old-versions`"))
        );
        let mut owned = state.lifecycle[0].clone();
        owned.id = Some(NONCURRENT_RULE_ID.into());
        state.lifecycle = vec![owned];
        let (_, spec) = import(&state, &[]);
        assert_eq!(spec.bucket.lifecycle.expire_noncurrent_after, Days::new(30));
    }

    #[test]
    fn a_kms_bucket_names_its_key_by_alias() {
        let mut state = bucket(Some(HAND_MADE));
        state.encryption = Some(SseRule {
            algorithm: "aws:kms".into(),
            kms_key_id: Some(
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into(),
            ),
            bucket_key: true,
        });
        let aliases = vec!["alias/terraform-state".to_owned()];
        let (adopted, spec) = adopt_and_parse(&LiveBucket {
            kms_key: Some((
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                &aliases,
            )),
            ..live(&state)
        });
        let text = spec_text(&adopted.spec);
        assert_eq!(
            spec.bucket.encryption,
            Encryption::Kms(KmsKey::Existing(
                KmsKeyRef::parse("alias/terraform-state", None).unwrap()
            ))
        );
        assert!(!text.contains("create_key"), "{text}");
    }

    #[test]
    fn a_lock_table_in_use_is_kept_with_lock_both() {
        let several = r#"{"Statement": [
          {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"},
           "Action": "s3:*", "Resource": ["arn:aws:s3:::hand-made-state/a/terraform.tfstate", "arn:aws:s3:::hand-made-state/b/terraform.tfstate"]}
        ]}"#;
        for policy in [HAND_MADE, several] {
            let state = bucket(Some(policy));
            let (adopted, spec) = adopt_and_parse(&LiveBucket {
                lock_table: Some("terraform-locks"),
                ..live(&state)
            });
            let text = spec_text(&adopted.spec);
            for stack in &spec.stacks {
                assert_eq!(
                    stack.lock,
                    crate::spec::Locking::Both(TableName::parse("terraform-locks").unwrap()),
                    "{text}"
                );
            }
            assert_noted(
                &adopted.notes,
                &["`terraform-locks` has Terraform's lock schema"],
            );
        }
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(matches("*", "a/b.tfstate"));
        assert!(matches("a/*", "a/b/terraform.tfstate"));
        assert!(matches("a/?.tfstate", "a/b.tfstate"));
        assert!(!matches("a/*.tflock", "a/terraform.tfstate"));
        assert!(!matches("b/*", "a/b"));
    }

    #[test]
    fn a_replica_in_another_region_is_taken_over_and_one_in_the_same_region_is_not() {
        let state = bucket(Some(HAND_MADE));
        let mut replica_state = bucket(None);
        replica_state.object_lock = Some(crate::observed::ObjectLockState {
            enabled: true,
            default_retention: Some(crate::observed::Retention {
                mode: "COMPLIANCE".into(),
                days: None,
                years: Some(1),
            }),
        });
        let rule = ReplicationTarget {
            bucket: "hand-made-state-dr".into(),
            rule: "to-frankfurt".into(),
            owned: false,
            role: "arn:aws:iam::123456789012:role/replication".into(),
        };
        for (region, taken) in [("eu-central-1", true), ("eu-west-1", false)] {
            let region = Region::parse(region).unwrap();
            let (adopted, spec) = adopt_and_parse(&LiveBucket {
                replica: Some(LiveReplica {
                    name: "hand-made-state-dr",
                    region: &region,
                    state: &replica_state,
                    kms_key: None,
                    rule: &rule,
                }),
                ..live(&state)
            });
            let text = spec_text(&adopted.spec);
            let notes = adopted.notes.join("\n");
            match spec.bucket.replica {
                Some(replica) => {
                    assert!(taken, "{text}");
                    assert_eq!(replica.name.as_str(), "hand-made-state-dr");
                    assert_eq!(
                        replica.object_lock,
                        Some(ObjectLock {
                            mode: RetentionMode::Compliance,
                            days: Days::new(365).unwrap()
                        })
                    );
                    assert!(
                        notes.contains("remove rule `to-frankfurt` first"),
                        "{notes}"
                    );
                }
                None => {
                    assert!(!taken, "{text}");
                    assert!(notes.contains("in the bucket's own region"), "{notes}");
                }
            }
        }
    }
}
