use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::access::PrincipalArns;
use crate::desired::{DesiredBucket, OBJECT_OWNERSHIP, TABLE_BILLING_MODE};
use crate::observed::{
    KeyPolicyReading, LifecycleRule, LogBucket, LoggingTarget, NoncurrentExpiration,
    ObservedBucket, ObservedKey, ObservedLockTable, PublicAccessBlock, RuleFilter, SseRule,
    Versioning,
};
use crate::policy::{
    self, BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME, PolicyDocument, StatementChange,
};
use crate::render::KmsKeyId;
use crate::spec::{AccountId, EnvSpec, ONE_STATE as DEV, THREE_STACKS, parse_spec};
use crate::testing::assert_noted;

const KEY_ARN: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn spec(text: &str) -> EnvSpec {
    parse_spec("environments/dev.yaml", "dev", text).unwrap()
}

fn account() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn desired(spec: &EnvSpec) -> DesiredBucket<'_> {
    DesiredBucket::build(
        spec,
        &account(),
        &PrincipalArns::offline(spec, &account()),
        None,
        (BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE),
    )
    .unwrap()
}

/// The key policy a key statebucket created has once converged.
fn converged_key_policy(desired: &DesiredBucket<'_>) -> String {
    key_policy::for_new_key(desired).to_json()
}

/// What the bucket looks like once everything has been applied.
fn converged(desired: &DesiredBucket<'_>, key: Option<ObservedKey>) -> Observed {
    let key_arn = key.as_ref().map(|key| key.arn.clone());
    let key_id = key_arn
        .as_deref()
        .map_or(KmsKeyId::FromSpec, KmsKeyId::Resolved);
    Observed {
        bucket: Some(ObservedBucket {
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
            policy: Some(policy::merge(None, &desired.policy).to_json()),
            tags: desired.spec.bucket.tags.clone(),
            lifecycle: owned_lifecycle_rules(&desired.spec.bucket.lifecycle),
            lifecycle_minimum_object_size: None,
            logging: None,
            object_lock: None,
        }),
        backend_files: desired
            .stacks
            .iter()
            .map(|stack| (stack.spec.file.clone(), desired.backend_file(stack, key_id)))
            .collect(),
        kms_key: key,
        ..Observed::default()
    }
}

/// The desired state of `text`, and the bucket converged to it (AES256).
fn converged_spec(text: &str) -> (DesiredBucket<'static>, Observed) {
    let spec: &'static EnvSpec = Box::leak(Box::new(spec(text)));
    let desired = desired(spec);
    let observed = converged(&desired, None);
    (desired, observed)
}

/// Converged, with the key statebucket created (rotation on).
fn converged_with_key(desired: &DesiredBucket<'_>) -> Observed {
    converged(desired, Some(key_state(desired, Some(true))))
}

fn live_bucket(observed: &mut Observed) -> &mut ObservedBucket {
    observed.bucket.as_mut().expect("the bucket exists")
}

fn sse_rule(observed: &mut Observed) -> &mut SseRule {
    live_bucket(observed)
        .encryption
        .as_mut()
        .expect("the bucket is encrypted")
}

fn facets(plan: &EnvPlan) -> Vec<Facet> {
    plan.changes.iter().map(Change::facet).collect()
}

fn key_state(desired: &DesiredBucket<'_>, rotation: Option<bool>) -> ObservedKey {
    ObservedKey {
        arn: KEY_ARN.into(),
        id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        state: "Enabled".into(),
        rotation_enabled: rotation,
        aliased: true,
        policy: KeyPolicyReading::Read(converged_key_policy(desired)),
    }
}

const KMS: &str = "  encryption: { kms_key: alias/tf-state, create_key: true }\n  tags:";

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
    let (desired, mut observed) = converged_spec(DEV);
    let bucket = live_bucket(&mut observed);
    bucket.versioning = Versioning::Suspended;
    bucket.public_access.restrict_public_buckets = false;
    bucket.ownership = Some("ObjectWriter".into());
    bucket.encryption = Some(SseRule {
        algorithm: "aws:kms".into(),
        kms_key_id: None,
        bucket_key: false,
    });
    observed.backend_files.insert(
        "environments/dev/backend.hcl".into(),
        "bucket = \"edited\"\n".into(),
    );
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
        matches!(&plan.changes[4], Change::WriteBackendFile { stack, from: Some(old), to: Some(_), .. } if old.contains("edited") && stack == "dev")
    );
}

#[test]
fn foreign_statements_and_tags_are_kept() {
    let (desired, mut observed) = converged_spec(DEV);
    let bucket = live_bucket(&mut observed);
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
    assert_eq!(statements.len(), 5);
    assert!(
        statements
            .iter()
            .all(|change| matches!(change, StatementChange::Add { .. }))
    );
    assert_eq!(to.statements[0], foreign);
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

/// `value` with every list reversed: the same policy, written another way.
fn reversed_lists(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().rev().map(reversed_lists).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), reversed_lists(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn a_policy_equal_in_meaning_is_in_sync() {
    let (desired, mut observed) = converged_spec(DEV);
    let rewritten: Value =
        serde_json::from_str(&policy::merge(None, &desired.policy).to_json()).unwrap();
    live_bucket(&mut observed).policy = Some(reversed_lists(&rewritten).to_string());
    assert!(plan(&desired, &observed).unwrap().is_empty());
}

#[test]
fn managed_kms_key_is_created_with_its_policy_and_backend_waits_for_its_arn() {
    let spec = spec(&DEV.replace("  tags:", KMS));
    let desired = desired(&spec);
    let plan = plan(&desired, &Observed::default()).unwrap();
    let Change::CreateKmsKey {
        alias,
        tags,
        policy,
        ..
    } = &plan.changes[0]
    else {
        panic!("{plan:#?}")
    };
    assert_eq!(alias, "alias/tf-state");
    assert_eq!(tags["statebucket:environment"], "dev");
    assert_eq!(
        policy.sids(),
        vec!["StatebucketAccountRoot", "StatebucketStateWriters"]
    );
    assert!(plan.changes.contains(&Change::SetEncryption {
        from: None,
        to: SseTarget::Kms {
            key_arn: KeyArn::AfterApply
        }
    }));
    assert!(matches!(
        plan.changes.last(),
        Some(Change::WriteBackendFile { to: None, .. })
    ));
}

#[test]
fn kms_in_sync_by_any_name_of_the_key_and_rotation_is_repaired() {
    let spec = spec(&DEV.replace("  tags:", KMS));
    let desired = desired(&spec);
    let mut observed = converged_with_key(&desired);
    assert!(plan(&desired, &observed).unwrap().is_empty());
    for id in ["alias/tf-state", "1234abcd-12ab-34cd-56ef-1234567890ab"] {
        sse_rule(&mut observed).kms_key_id = Some(id.into());
        assert!(plan(&desired, &observed).unwrap().is_empty(), "{id}");
    }
    observed.kms_key = Some(key_state(&desired, Some(false)));
    assert_eq!(
        plan(&desired, &observed).unwrap().changes,
        vec![Change::EnableKeyRotation {
            key_arn: KEY_ARN.into()
        }]
    );
    sse_rule(&mut observed).bucket_key = false;
    observed.kms_key = Some(key_state(&desired, Some(true)));
    assert_eq!(
        facets(&plan(&desired, &observed).unwrap()),
        vec![Facet::Encryption]
    );
}

#[test]
fn a_key_policy_over_kmss_32_kb_is_refused_in_the_plan() {
    let spec = spec(&DEV.replace("  tags:", KMS));
    let desired = desired(&spec);
    let mut observed = converged_with_key(&desired);
    // Someone else's statements, kept as they are, leave no room for statebucket's grants.
    let foreign: Vec<String> = (0..200)
        .map(|index| format!(r#"{{"Sid":"Audit{index}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:role/audit-{index}"}},"Action":"kms:DescribeKey","Resource":"*"}}"#))
        .collect();
    let live = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        foreign.join(",")
    );
    observed.kms_key.as_mut().unwrap().policy = KeyPolicyReading::Read(live);
    let error = plan(&desired, &observed).unwrap_err();
    let PlanError::KeyPolicyTooLarge { bytes, limit, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(limit, 32 * 1024);
    assert!(bytes > limit, "{bytes}");
}

#[test]
fn the_key_policy_of_a_created_key_gains_its_grants_and_keeps_the_rest() {
    let spec = spec(&DEV.replace("  tags:", KMS));
    let desired = desired(&spec);
    let mut observed = converged_with_key(&desired);
    // AWS's default key policy, plus a statement of someone else's.
    let default = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Auditors","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/audit"},"Action":"kms:DescribeKey","Resource":"*"}]}"#;
    observed.kms_key.as_mut().unwrap().policy = KeyPolicyReading::Read(default.into());
    let plan = plan(&desired, &observed).unwrap();
    let [
        Change::PutKeyPolicy {
            to,
            statements,
            kept,
            ..
        },
    ] = plan.changes.as_slice()
    else {
        panic!("{plan:#?}")
    };
    assert_eq!(
        kept,
        &vec![
            "Enable IAM User Permissions".to_owned(),
            "Auditors".to_owned()
        ]
    );
    assert_eq!(
        statements,
        &vec![StatementChange::Add {
            sid: "StatebucketStateWriters".into()
        }],
        "the account root statement is already there: no second one"
    );
    assert_eq!(to.id, Some(json!("key-default-1")));
    assert_eq!(to.statements.len(), 3);

    observed.kms_key.as_mut().unwrap().policy = KeyPolicyReading::Read(to.to_json());
    assert!(super::plan(&desired, &observed).unwrap().is_empty());

    observed.kms_key.as_mut().unwrap().policy = KeyPolicyReading::Denied("AccessDenied".into());
    assert!(matches!(
        super::plan(&desired, &observed),
        Err(PlanError::UnreadableKeyPolicy { .. })
    ));
}

#[test]
fn a_key_statebucket_did_not_create_is_left_alone_with_a_note_on_missing_grants() {
    let spec = spec(
        &DEV.replace(
            "  tags:",
            "  encryption: { kms_key: alias/shared }\n  tags:",
        )
        .replace(
            "users: [terraform]",
            "users: [terraform]\n  roles: [\"arn:aws:iam::999999999999:role/ci\"]",
        ),
    );
    let desired = desired(&spec);
    let mut key = key_state(&desired, None);
    key.policy = KeyPolicyReading::Read(
        r#"{"Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#.into(),
    );
    let observed = converged(&desired, Some(key));
    let plan = plan(&desired, &observed).unwrap();
    assert!(plan.is_empty(), "{plan:#?}");
    let notes: Vec<&String> = plan
        .notes
        .iter()
        .filter(|note| note.contains("does not let"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", plan.notes);
    assert!(
        notes[0].contains("arn:aws:iam::999999999999:role/ci"),
        "{}",
        notes[0]
    );
    assert!(
        notes[0].contains("kms:Decrypt, kms:GenerateDataKey"),
        "{}",
        notes[0]
    );
}

#[test]
fn a_removed_stack_loses_its_statements_and_nothing_else() {
    let three = spec(THREE_STACKS);
    let before = desired(&three);
    let mut observed = converged(&before, None);
    let two = spec(&THREE_STACKS.replace(
        "  app:\n    key: app/terraform.tfstate\n    access: { roles: [app-ci] }\n",
        "",
    ));
    let after = desired(&two);
    observed.orphan_backend_files = vec![(
        "environments/dev/app/backend.hcl".into(),
        before.backend_file(&before.stacks[1], KmsKeyId::FromSpec),
    )];
    let plan = plan(&after, &observed).unwrap();
    let [Change::PutPolicy { statements, .. }] = plan.changes.as_slice() else {
        panic!("{plan:#?}")
    };
    assert_eq!(
        statements,
        &vec![
            StatementChange::Update {
                sid: "StatebucketReadState".into()
            },
            StatementChange::Update {
                sid: "StatebucketReaderLockFiles".into()
            },
            StatementChange::Remove {
                sid: "StatebucketAppDeleteWorkspaceState".into()
            },
            StatementChange::Remove {
                sid: "StatebucketAppListStateBucket".into()
            },
            StatementChange::Remove {
                sid: "StatebucketAppLockFiles".into()
            },
            StatementChange::Remove {
                sid: "StatebucketAppReadWriteState".into()
            },
        ]
    );
    assert!(
        plan.notes.iter().any(|note| note
            .starts_with("environments/dev/app/backend.hcl was written for a stack")
            && note.contains("s3://central-state/app/terraform.tfstate")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_policy_over_twenty_kilobytes_is_refused_before_any_write() {
    let mut text = THREE_STACKS.to_owned();
    for index in 0..60 {
        text.push_str(&format!(
            "  stack-{index}:\n    key: teams/stack-{index}/terraform.tfstate\n    access: {{ roles: [stack-{index}-ci] }}\n"
        ));
    }
    let spec = spec(&text);
    let error = plan(&desired(&spec), &Observed::default()).unwrap_err();
    let PlanError::BucketPolicyTooLarge {
        bytes,
        stacks,
        limit,
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!((stacks, limit), (63, 20_480));
    assert!(bytes > limit);
}

#[test]
fn identity_policies_are_compared_by_meaning_per_principal_and_kept_within_quota() {
    let (desired, mut observed) = converged_spec(&DEV.replace(
        "access:\n  users: [terraform]",
        "access:\n  users: [terraform]\n  roles: [ci]\n  attach_identity_policy: true",
    ));
    let written = desired.identity_policies[0].document.to_json();
    let reordered = reversed_lists(&serde_json::from_str::<Value>(&written).unwrap()).to_string();
    observed.identity_policies = vec![
        (
            "arn:aws:iam::123456789012:user/terraform".into(),
            Some(reordered.clone()),
        ),
        ("arn:aws:iam::123456789012:role/ci".into(), None),
    ];
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(facets(&plan), vec![Facet::IdentityPolicy]);
    assert!(
        matches!(&plan.changes[0], Change::PutIdentityPolicy { principal, from: None, .. } if principal.to_string().ends_with("role/ci"))
    );
    observed.identity_policies[1].1 = Some(reordered);
    assert!(super::plan(&desired, &observed).unwrap().is_empty());

    // One user writing many stacks needs more than IAM's 2,048 characters for a user.
    let mut many = "region: eu-west-1\naccount_id: \"123456789012\"\nprofile: terraform\nbucket: { name: central-state }\naccess: { users: [terraform], attach_identity_policy: true }\nstacks:\n".to_owned();
    for index in 0..12 {
        many.push_str(&format!(
            "  s{index}: {{ key: teams/s{index}/terraform.tfstate }}\n"
        ));
    }
    let many = spec_named(&many);
    assert!(matches!(
        super::plan(&desired_of(&many), &Observed::default()),
        Err(PlanError::IdentityPolicyTooLarge { limit: 2_048, .. })
    ));
}

fn spec_named(text: &str) -> EnvSpec {
    parse_spec("environments/central.yaml", "central", text).unwrap()
}

fn desired_of(spec: &EnvSpec) -> DesiredBucket<'_> {
    desired(spec)
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
    let (desired, mut observed) = converged_spec(DEV);
    let bucket = live_bucket(&mut observed);
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
    assert_eq!(to, &owned_lifecycle_rules(&desired.spec.bucket.lifecycle));
    assert_eq!(rules[0], rule("archive-old-exports"));
    assert_eq!(rules.len(), 3);

    // The whole bucket said another way, and rules in another order, are in sync.
    let bucket = live_bucket(&mut observed);
    bucket.lifecycle = owned_lifecycle_rules(&desired.spec.bucket.lifecycle);
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
    live_bucket(&mut observed).lifecycle = live;
    let plan = plan(&desired, &observed).unwrap();
    let [Change::SetLifecycle { rules, .. }] = plan.changes.as_slice() else {
        panic!("{plan:#?}")
    };
    let ids: Vec<_> = rules.iter().map(|rule| rule.id.clone().unwrap()).collect();
    assert_eq!(ids, vec!["keep-me", ABORT_UPLOADS_RULE_ID]);
}

#[test]
fn a_foreign_rule_expiring_current_objects_is_pointed_out() {
    let (desired, mut observed) = converged_spec(DEV);
    let mut dangerous = rule("cleanup");
    dangerous.expiration = Some(crate::observed::Expiration {
        days: Some(30),
        date: None,
        expired_object_delete_marker: None,
    });
    live_bucket(&mut observed).lifecycle.push(dangerous);
    let plan = plan(&desired, &observed).unwrap();
    assert!(plan.is_empty());
    assert_noted(&plan.notes, &["`cleanup`", "expires current objects"]);
}

#[test]
fn logging_is_granted_on_the_log_bucket_then_enabled() {
    let spec = spec(&DEV.replace("  tags:", "  logging: { bucket: my-logs }\n  tags:"));
    assert_eq!(
        spec.bucket.logging.as_ref().unwrap().prefix.as_str(),
        "my-state/"
    );
    let desired = desired(&spec);
    let grant =
        policy::log_delivery_statement("aws", "my-logs", "my-state/", "my-state", "123456789012");
    assert_eq!(desired.log_delivery, Some(grant.clone()));
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
    live_bucket(&mut observed).logging = Some(LoggingTarget {
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

fn good_table() -> ObservedLockTable {
    ObservedLockTable {
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
    let (desired, mut observed) = converged_spec(&DEV.replace(
        "  key: app/terraform.tfstate",
        "  key: app/terraform.tfstate\n  lock: both",
    ));
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(
        plan.changes,
        vec![
            Change::CreateLockTable {
                table: "my-state-locks".into(),
                tags: desired.spec.bucket.tags.clone()
            },
            Change::EnablePointInTimeRecovery {
                table: "my-state-locks".into(),
                from: None
            },
        ]
    );
    assert_noted(&plan.notes, &["deprecated in Terraform 1.11"]);

    observed
        .lock_tables
        .insert("my-state-locks".into(), good_table());
    assert!(super::plan(&desired, &observed).unwrap().is_empty());

    let mut drifted = good_table();
    drifted.billing_mode = "PROVISIONED".into();
    drifted.deletion_protection = false;
    drifted.point_in_time_recovery = Some(false);
    drifted.tags = BTreeMap::from([("owner".into(), "alice".into())]);
    drifted.kms_encrypted = false;
    observed
        .lock_tables
        .insert("my-state-locks".into(), drifted);
    let plan = super::plan(&desired, &observed).unwrap();
    assert_noted(&plan.notes, &["AWS owned key", "--sse-specification"]);
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
    observed
        .lock_tables
        .insert("my-state-locks".into(), wrong_key);
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
    let both_desired = desired(&both);
    let old_file = both_desired.backend_file(&both_desired.stacks[0], KmsKeyId::FromSpec);
    assert!(old_file.contains("dynamodb_table") && old_file.contains("use_lockfile"));
    let lockfile = spec(DEV);
    let desired = desired(&lockfile);
    let mut observed = converged(&desired, None);
    observed
        .backend_files
        .insert("environments/dev/backend.hcl".into(), old_file);
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
    let dynamodb_desired = super::tests::desired(&dynamodb_only);
    observed.backend_files.insert(
        "environments/dev/backend.hcl".into(),
        dynamodb_desired.backend_file(&dynamodb_desired.stacks[0], KmsKeyId::FromSpec),
    );
    let plan = super::plan(&desired, &observed).unwrap();
    assert_noted(&plan.notes, &["set `lock: both` first"]);
}

#[test]
fn errors_that_stop_a_plan() {
    let spec_aes = spec(DEV);
    let desired_aes = desired(&spec_aes);
    let mut observed = converged(&desired_aes, None);
    live_bucket(&mut observed).region = "us-east-1".into();
    let error = plan(&desired_aes, &observed).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bucket `my-state` exists in us-east-1, but the spec says eu-west-1"
    );

    live_bucket(&mut observed).region = "eu-west-1".into();
    live_bucket(&mut observed).policy = Some("{not json".into());
    assert!(matches!(
        plan(&desired_aes, &observed),
        Err(PlanError::UnreadablePolicy { .. })
    ));

    let existing = spec(&DEV.replace(
        "  tags:",
        "  encryption: { kms_key: alias/somebody-elses }\n  tags:",
    ));
    let existing_desired = desired(&existing);
    assert!(matches!(
        plan(&existing_desired, &Observed::default()),
        Err(PlanError::KmsKeyMissing { .. })
    ));
    let mut pending = key_state(&existing_desired, None);
    pending.state = "PendingDeletion".into();
    let observed = Observed {
        kms_key: Some(pending),
        ..Observed::default()
    };
    assert!(matches!(
        plan(&existing_desired, &observed),
        Err(PlanError::KmsKeyUnusable { .. })
    ));
}

/// DEV with a replica in eu-central-1 holding Object Lock (governance, 30 days).
fn with_replica() -> EnvSpec {
    spec(&DEV.replace(
        "  tags: { team: platform }\n",
        "  tags: { team: platform }\n  replica:\n    region: eu-central-1\n    object_lock: { mode: governance, days: 30 }\n",
    ))
}

/// The replica's converged state, its Object Lock retention as given.
fn converged_replica(
    desired: &DesiredBucket<'_>,
    retention: Option<crate::observed::Retention>,
) -> Observed {
    let mut observed = converged(desired, None);
    if let Some(bucket) = &mut observed.bucket {
        bucket.region = "eu-central-1".into();
        bucket.object_lock = Some(crate::observed::ObjectLockState {
            enabled: true,
            default_retention: retention,
        });
    }
    observed
}

fn retention(mode: &str, days: i32) -> crate::observed::Retention {
    crate::observed::Retention {
        mode: mode.into(),
        days: Some(days),
        years: None,
    }
}

#[test]
fn the_replica_is_created_with_object_lock_and_its_failover_file() {
    let primary = with_replica();
    let replica = primary.replica_spec().unwrap();
    let desired = desired(&replica);
    let plan = plan(&desired, &Observed::default()).unwrap();
    let create = plan
        .changes
        .iter()
        .find(|change| matches!(change, Change::CreateBucket { .. }))
        .unwrap();
    assert!(matches!(
        create,
        Change::CreateBucket { bucket, region, object_lock: true, .. }
            if bucket == "my-state-replica" && region == "eu-central-1"
    ));
    assert!(plan.changes.iter().any(|change| matches!(
        change,
        Change::SetObjectLock { from: None, to, enable: false } if *to == retention("GOVERNANCE", 30)
    )));
    let file = plan
        .changes
        .iter()
        .find_map(|change| match change {
            Change::WriteBackendFile { path, to, .. } => Some((path.clone(), to.clone().unwrap())),
            _ => None,
        })
        .unwrap();
    assert_eq!(file.0, "environments/dev/backend.dr.hcl");
    assert!(
        file.1
            .contains("bucket              = \"my-state-replica\""),
        "{}",
        file.1
    );
    assert!(
        file.1.contains("region              = \"eu-central-1\""),
        "{}",
        file.1
    );
    assert!(
        file.1.contains(
            "terraform init -reconfigure -backend-config=environments/dev/backend.dr.hcl"
        ),
        "{}",
        file.1
    );
    assert!(file.1.contains("use_lockfile        = true"), "{}", file.1);
}

#[test]
fn object_lock_is_set_when_missing_or_shorter_but_never_shortened_or_weakened() {
    let primary = with_replica();
    let replica = primary.replica_spec().unwrap();
    let desired = desired(&replica);
    let same = plan(
        &desired,
        &converged_replica(&desired, Some(retention("GOVERNANCE", 30))),
    )
    .unwrap();
    assert!(same.is_empty(), "{same:#?}");
    assert!(same.in_sync.contains(&Facet::ObjectLock));

    let shorter_live = plan(
        &desired,
        &converged_replica(&desired, Some(retention("GOVERNANCE", 7))),
    )
    .unwrap();
    assert_eq!(facets(&shorter_live), vec![Facet::ObjectLock]);

    for live in [retention("GOVERNANCE", 60), retention("COMPLIANCE", 30)] {
        let refused = plan(&desired, &converged_replica(&desired, Some(live.clone()))).unwrap();
        assert!(refused.is_empty(), "{live}: {refused:#?}");
        assert_noted(&refused.notes, &["never does either"]);
    }

    // An existing replica without Object Lock gets it with the retention, in one request.
    let mut off = converged_replica(&desired, None);
    off.bucket.as_mut().unwrap().object_lock = Some(crate::observed::ObjectLockState {
        enabled: false,
        default_retention: None,
    });
    let enable = plan(&desired, &off).unwrap();
    assert!(matches!(
        enable.changes.as_slice(),
        [Change::SetObjectLock {
            enable: true,
            from: None,
            ..
        }]
    ));
}

#[test]
fn replication_keeps_foreign_rules_repairs_its_own_and_refuses_another_role() {
    use crate::observed::{
        ForeignReplicationRule, ReplicationConfiguration, ReplicationState, RoleState,
    };
    let primary = with_replica();
    let desired = desired(&primary);
    let replication = desired.replication.clone().unwrap();
    let role = RoleState {
        arn: replication.role_arn.to_string(),
        trust_policy: replication.trust_policy.to_compact_json(),
        policy: Some(replication.role_policy.to_compact_json()),
    };
    let foreign = ForeignReplicationRule {
        id: "archive".into(),
        priority: Some(1),
        destination: None,
        kept: std::sync::Arc::new(()),
    };
    let mut observed = converged(&desired, None);
    let own = replication.rule_for(None, std::slice::from_ref(&foreign));
    assert_eq!(own.priority, 2, "above the foreign rule's priority");
    observed.replication = Some(ReplicationState {
        role: Some(role.clone()),
        configuration: Some(ReplicationConfiguration {
            role: replication.role_arn.to_string(),
            owned: Some(own.clone()),
            foreign: vec![foreign.clone()],
        }),
    });
    let in_sync = plan(&desired, &observed).unwrap();
    assert!(in_sync.is_empty(), "{in_sync:#?}");
    assert!(in_sync.in_sync.contains(&Facet::Replication));
    assert!(in_sync.in_sync.contains(&Facet::ReplicationRole));
    assert!(
        !in_sync
            .notes
            .iter()
            .any(|note| note.contains("aws:SourceAccount")),
        "{:?}",
        in_sync.notes
    );

    // A role made before its trust named the account: left alone, with a note saying how to
    // limit it (statebucket does not rewrite trust policies).
    let mut unlimited = observed.clone();
    unlimited
        .replication
        .as_mut()
        .unwrap()
        .role
        .as_mut()
        .unwrap()
        .trust_policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into();
    let noted = plan(&desired, &unlimited).unwrap();
    assert!(noted.changes.is_empty(), "{noted:#?}");
    assert_noted(
        &noted.notes,
        &[
            "for any account's bucket",
            &replication.trust_policy.to_compact_json(),
        ],
    );

    // Drift in statebucket's rule: rewritten with the foreign rule kept.
    let drifted = crate::observed::ReplicationRule {
        delete_markers: false,
        ..own.clone()
    };
    live_configuration(&mut observed).owned = Some(drifted);
    let repair = plan(&desired, &observed).unwrap();
    assert!(matches!(
        repair.changes.as_slice(),
        [Change::PutReplication { kept, to, foreign, .. }]
            if kept == &["archive".to_owned()] && to.delete_markers && foreign.len() == 1
    ));

    // The role's policy edited by hand: rewritten on the role.
    let mut edited = observed.clone();
    edited
        .replication
        .as_mut()
        .unwrap()
        .role
        .as_mut()
        .unwrap()
        .policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into());
    let rewrite = plan(&desired, &edited).unwrap();
    assert!(rewrite.changes.iter().any(|change| matches!(
        change,
        Change::PutIdentityPolicy { principal, policy_name, .. }
            if *principal == replication.role_arn && policy_name == crate::replication::ROLE_POLICY_NAME
    )));

    // Foreign rules replicating with another role: one configuration has one role.
    live_configuration(&mut observed).role = "arn:aws:iam::123456789012:role/theirs".into();
    assert!(matches!(
        plan(&desired, &observed),
        Err(PlanError::ReplicationRoleTaken { .. })
    ));
}

/// The replication configuration an observation holds.
fn live_configuration(observed: &mut Observed) -> &mut crate::observed::ReplicationConfiguration {
    observed
        .replication
        .as_mut()
        .and_then(|replication| replication.configuration.as_mut())
        .expect("a replication configuration")
}

#[test]
fn identity_policies_grant_the_same_access_on_the_replica() {
    let primary = spec(&with_replica_text().replace(
        "access:\n  users: [terraform]\n",
        "access:\n  users: [terraform]\n  attach_identity_policy: true\n",
    ));
    let desired = desired(&primary);
    let document = &desired.identity_policies[0].document;
    let resources: Vec<String> = document
        .statements
        .iter()
        .map(|statement| statement["Resource"].to_string())
        .collect();
    assert!(
        resources
            .iter()
            .any(|resource| resource.contains("arn:aws:s3:::my-state/"))
    );
    assert!(
        resources
            .iter()
            .any(|resource| resource.contains("arn:aws:s3:::my-state-replica/"))
    );
    assert!(document.statements.iter().any(|statement| {
        statement["Sid"]
            .as_str()
            .unwrap()
            .starts_with("StatebucketReplica")
    }));
}

fn with_replica_text() -> String {
    DEV.replace(
        "  tags: { team: platform }\n",
        "  tags: { team: platform }\n  replica:\n    region: eu-central-1\n",
    )
}

#[test]
fn object_lock_left_out_of_the_spec_stays_on_and_the_plan_says_so() {
    let primary = spec(&with_replica_text());
    let replica = primary.replica_spec().unwrap();
    let desired = desired(&replica);
    let observed = converged_replica(&desired, Some(retention("GOVERNANCE", 30)));
    let plan = plan(&desired, &observed).unwrap();
    assert!(plan.is_empty(), "{plan:#?}");
    assert_noted(&plan.notes, &["S3 cannot turn it off"]);
}

/// moto enforces neither key policies nor bucket-policy denies: the policy evaluator shows
/// that the replication role may use both keys statebucket creates (their policies leave
/// the account's IAM policies in charge) and that the exclusive deny lets it read the
/// primary.
#[test]
fn the_replication_role_may_use_both_created_keys_and_is_not_denied_by_exclusive_access() {
    use crate::policy::evaluate::{Caller, Request, explicit_deny};
    use crate::policy::key_policy::{key_allows, via_s3};
    let primary = spec(
        &DEV.replace(
            "  tags: { team: platform }\n",
            "  encryption: { kms_key: alias/state, create_key: true }\n  tags: { team: platform }\n  replica:\n    region: eu-central-1\n    encryption: { kms_key: alias/state-replica, create_key: true }\n",
        )
        .replace(
            "access:\n  users: [terraform]\n",
            "access:\n  users: [terraform]\n  exclusive: true\n  break_glass_role: break-glass\n",
        ),
    );
    let replica = primary.replica_spec().unwrap();
    let primary_desired = desired(&primary);
    let replica_desired = desired(&replica);
    let role = primary_desired
        .replication
        .as_ref()
        .unwrap()
        .role_arn
        .clone();
    let caller = Caller::for_principal(&role);
    for (desired, action) in [
        (&primary_desired, "kms:Decrypt"),
        (&replica_desired, "kms:Encrypt"),
    ] {
        let key_policy = key_policy::for_new_key(desired);
        let service = via_s3(&desired.spec.region);
        assert!(
            key_allows(
                &key_policy,
                &caller,
                action,
                &[("kms:ViaService", service.as_str())]
            ),
            "{action} on the key of {}",
            desired.spec.bucket.name
        );
    }
    let bucket_policy =
        PolicyDocument::parse(&policy::merge(None, &primary_desired.policy).to_json()).unwrap();
    for (action, resource) in [
        ("s3:ListBucket", "arn:aws:s3:::my-state"),
        (
            "s3:GetObject",
            "arn:aws:s3:::my-state/app/terraform.tfstate",
        ),
    ] {
        assert_eq!(
            explicit_deny(&bucket_policy, &Request::new(&caller, action, resource)),
            None,
            "{action}"
        );
    }
}
