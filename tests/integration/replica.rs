//! Disaster recovery: a replica of the state bucket in a second region, with its own KMS
//! key and Object Lock, the replication role and rule on the primary, and a failover
//! backend file that real Terraform initialises and applies against. moto stores the
//! replication configuration but copies no objects.

use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectLockRetentionMode, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, VersioningConfiguration,
};

use crate::support::{
    ACCOUNT, Moto, Project, Spec, block_on, change_kinds, spec_yaml, terraform_dir, unique,
};

/// A KMS primary in eu-west-1 and its replica in eu-central-1 with a key of its own and
/// Object Lock (governance, 30 days).
fn replica_spec(bucket: &str, alias: &str) -> String {
    Spec::new(bucket)
        .created_key(alias)
        .replica(
            &format!("{alias}-replica"),
            "    object_lock: { mode: governance, days: 30 }\n",
        )
        .yaml()
}

fn replication(project: &Project, bucket: &str) -> ReplicationConfiguration {
    block_on(async {
        project
            .s3("eu-west-1")
            .await
            .get_bucket_replication()
            .bucket(bucket)
            .send()
            .await
            .expect("a replication configuration")
            .replication_configuration()
            .expect("a configuration")
            .clone()
    })
}

/// The replica's Object Lock default retention: mode and days.
async fn default_retention(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> (ObjectLockRetentionMode, i32) {
    let lock = s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let retention = lock
        .object_lock_configuration()
        .and_then(|configuration| configuration.rule())
        .and_then(|rule| rule.default_retention())
        .expect("a default retention");
    (
        retention.mode().expect("a mode").clone(),
        retention.days().expect("days"),
    )
}

#[test]
fn apply_creates_both_buckets_the_role_and_the_rule_then_repairs_drift_and_terraform_fails_over() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("dr");
    let replica = format!("{bucket}-replica");
    let alias = format!("alias/{}", unique("dr-key"));
    project.spec("prod", &replica_spec(&bucket, &alias));

    let plan = project.statebucket(&["check", "--output", "json"]);
    plan.expect_code(2);
    crate::contract::assert_valid(&[("check-replica".to_owned(), plan.stdout.clone())]);
    let env = &plan.json()["environments"][0];
    let kinds = change_kinds(env);
    for kind in [
        "create_bucket",
        "create_replication_role",
        "put_replication",
    ] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
    let replica_kinds = change_kinds(&env["replica"]);
    for kind in [
        "create_bucket",
        "create_kms_key",
        "set_object_lock",
        "put_policy",
    ] {
        assert!(
            replica_kinds.contains(&kind.to_owned()),
            "{kind} in {replica_kinds:?}"
        );
    }
    assert_eq!(env["replica"]["bucket"], replica.as_str());
    assert_eq!(env["replica"]["region"], "eu-central-1");

    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    assert_eq!(
        second.json()["requests"]["writes"],
        0,
        "a converged environment with a replica makes no write call"
    );

    // What apply made: the replica in its region with Object Lock and its own key, the role
    // trusted by S3, and the rule re-encrypting into the replica's key.
    let configuration = replication(&project, &bucket);
    let role = format!("arn:aws:iam::{ACCOUNT}:role/statebucket-replication-{bucket}");
    assert_eq!(configuration.role(), role);
    let rule = &configuration.rules()[0];
    assert_eq!(rule.id(), Some("statebucket-state-replica"));
    assert_eq!(
        rule.destination().map(|destination| destination.bucket()),
        Some(format!("arn:aws:s3:::{replica}").as_str())
    );
    assert_eq!(
        rule.destination()
            .and_then(|destination| destination.encryption_configuration())
            .and_then(|encryption| encryption.replica_kms_key_id()),
        Some(format!("arn:aws:kms:eu-central-1:{ACCOUNT}:{alias}-replica").as_str())
    );
    block_on(async {
        let replica_s3 = project.s3("eu-central-1").await;
        assert_eq!(
            default_retention(&replica_s3, &replica).await,
            (ObjectLockRetentionMode::Governance, 30)
        );
        let encryption = replica_s3
            .get_bucket_encryption()
            .bucket(&replica)
            .send()
            .await
            .unwrap();
        let key = encryption
            .server_side_encryption_configuration()
            .and_then(|configuration| configuration.rules().first())
            .and_then(|rule| rule.apply_server_side_encryption_by_default())
            .and_then(|default| default.kms_master_key_id())
            .expect("the replica's key")
            .to_owned();
        assert!(key.contains(":eu-central-1:"), "{key}");
        let iam = moto.iam_in(ACCOUNT).await;
        let trust = iam
            .get_role()
            .role_name(format!("statebucket-replication-{bucket}"))
            .send()
            .await
            .unwrap();
        let trust = trust.role().unwrap().assume_role_policy_document().unwrap();
        assert!(trust.contains("s3.amazonaws.com"), "{trust}");
    });

    // Drift: the replica's versioning suspended and the rule rewritten by hand.
    block_on(async {
        project
            .s3("eu-central-1")
            .await
            .put_bucket_versioning()
            .bucket(&replica)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let drifted = ReplicationConfiguration::builder()
            .role(&role)
            .rules(
                ReplicationRule::builder()
                    .id("statebucket-state-replica")
                    .priority(1)
                    .status(ReplicationRuleStatus::Disabled)
                    .filter(ReplicationRuleFilter::builder().prefix("").build())
                    .destination(
                        aws_sdk_s3::types::Destination::builder()
                            .bucket(format!("arn:aws:s3:::{replica}"))
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        project
            .s3("eu-west-1")
            .await
            .put_bucket_replication()
            .bucket(&bucket)
            .replication_configuration(drifted)
            .send()
            .await
            .unwrap();
    });
    let check = project.statebucket(&["check", "--output", "json"]);
    check.expect_code(2);
    let env = &check.json()["environments"][0];
    assert_eq!(change_kinds(env), vec!["put_replication"]);
    assert_eq!(change_kinds(&env["replica"]), vec!["enable_versioning"]);
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let repaired = replication(&project, &bucket);
    assert_eq!(
        repaired.rules()[0].status(),
        &ReplicationRuleStatus::Enabled
    );

    // Terraform on the primary; doctor reads replication for the failover file. moto copies
    // nothing and sets no ReplicationStatus: doctor says so instead of passing it.
    let primary_dir = terraform_dir("");
    project
        .terraform(
            "init",
            primary_dir.path(),
            Some(&project.path("environments/prod/backend.hcl")),
        )
        .expect_code(0);
    project
        .terraform("apply", primary_dir.path(), None)
        .expect_code(0);
    let doctor = project.statebucket(&["doctor", "--output", "json"]);
    crate::contract::assert_valid(&[
        ("doctor-replica".to_owned(), doctor.stdout.clone()),
        ("apply-replica".to_owned(), second.stdout.clone()),
    ]);
    let report = doctor.json();
    let failover_report = report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|report| report["failover"] == true)
        .expect("doctor checks the failover file");
    assert!(
        failover_report["backend_file"]
            .as_str()
            .unwrap()
            .ends_with("prod/backend.dr.hcl"),
        "{failover_report:#}"
    );
    let check = |name: &str| {
        failover_report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["check"] == name)
            .unwrap_or_else(|| panic!("{name} in {failover_report:#}"))
            .clone()
    };
    assert_eq!(check("replication")["status"], "ok");
    assert_eq!(check("replication role")["status"], "ok");
    assert_eq!(check("list workspaces")["status"], "ok");
    let replicated = check("replicated state");
    assert_eq!(replicated["status"], "warn");
    assert!(
        replicated["detail"]
            .as_str()
            .unwrap()
            .contains("no replication status"),
        "{replicated}"
    );
    assert_eq!(check("replica version")["status"], "warn");

    // The failover: real Terraform on the replica with backend.dr.hcl.
    let failover = project.path("environments/prod/backend.dr.hcl");
    let text = project.read("environments/prod/backend.dr.hcl");
    assert!(
        text.contains(&format!("bucket = \"{replica}\"")) || text.contains(&replica),
        "{text}"
    );
    assert!(text.contains("eu-central-1"), "{text}");
    assert!(text.contains("terraform init -reconfigure"), "{text}");
    let workdir = terraform_dir("");
    project
        .terraform("init", workdir.path(), Some(&failover))
        .expect_code(0);
    let apply = project.terraform("apply", workdir.path(), None);
    apply.expect_code(0);
    apply.expect_stdout(&["Apply complete!"]);
    block_on(async {
        let head = project
            .s3("eu-central-1")
            .await
            .head_object()
            .bucket(&replica)
            .key("app/terraform.tfstate")
            .send()
            .await
            .expect("Terraform wrote its state into the replica");
        assert!(
            head.ssekms_key_id()
                .unwrap_or_default()
                .contains(":eu-central-1:"),
            "encrypted with the replica's key"
        );
    });
}

#[test]
fn a_replica_in_the_buckets_own_region_or_a_kms_primary_with_an_aes256_replica_is_refused() {
    let project = Project::new();
    let same_region = spec_yaml("acme-state", "eu-west-1", "aes256").replace(
        "  tags: { team: platform }\n",
        "  tags: { team: platform }\n  replica: { region: eu-west-1 }\n",
    );
    project.spec("prod", &same_region);
    let run = project.statebucket(&["validate"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("would not survive the loss of that region"),
        "{}",
        run.stderr
    );
    let kms_to_aes = spec_yaml(
        "acme-state",
        "eu-west-1",
        "{ kms_key: alias/state, create_key: true }",
    )
    .replace(
        "  tags: { team: platform }\n",
        "  tags: { team: platform }\n  replica: { region: eu-central-1 }\n",
    );
    project.spec("prod", &kms_to_aes);
    let run = project.statebucket(&["validate"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("only into a KMS key in the replica's region"),
        "{}",
        run.stderr
    );
}

/// A bucket that replicates with statebucket's rule (its spec lost): import takes the
/// replica over with its region, name, key and Object Lock; the plan then only writes the
/// new spec's backend files, on both buckets.
#[test]
fn import_takes_the_replica_over() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("dr-import");
    let replica = format!("{bucket}-replica");
    let alias = format!("alias/{}", unique("dr-import-key"));
    project.spec("prod", &replica_spec(&bucket, &alias));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    std::fs::remove_file(project.path("environments/prod.yaml")).unwrap();

    let imported = project.statebucket(&[
        "import",
        &bucket,
        "--env",
        "adopted",
        "--region",
        "eu-west-1",
        "--terraform-profile",
        "terraform",
        "--profile",
        "admin",
        "--output",
        "json",
    ]);
    imported.expect_code(0);
    let notes = imported.json()["notes"].to_string();
    assert!(notes.contains("taken over as `bucket.replica`"), "{notes}");
    let text = project.read("environments/adopted.yaml");
    for expected in [
        "  replica:\n",
        "    region: eu-central-1",
        &format!("    name: {replica}"),
        &format!("kms_key: {alias}-replica"),
        "object_lock: { mode: governance, days: 30 }",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    project.statebucket(&["validate", "adopted"]).expect_code(0);
    let plan = project.statebucket(&["check", "adopted", "--output", "json"]);
    plan.expect_code(2);
    let env = &plan.json()["environments"][0];
    assert_eq!(change_kinds(env), vec!["write_backend_file"], "{env:#}");
    assert_eq!(
        change_kinds(&env["replica"]),
        vec!["write_backend_file"],
        "{env:#}"
    );
}

/// An existing replica bucket without versioning or Object Lock: apply turns versioning on,
/// then Object Lock with its retention (S3 takes it only on a versioned bucket); a rule of
/// another owner on the primary (same role) is kept beside statebucket's.
#[test]
fn an_existing_replica_gets_object_lock_after_versioning_and_a_foreign_rule_is_kept() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("dr-existing");
    let replica = format!("{bucket}-replica");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/statebucket-replication-{bucket}");
    let spec = spec_yaml(&bucket, "eu-west-1", "aes256").replace(
        "  tags: { team: platform }\n",
        "  tags: { team: platform }\n  replica:\n    region: eu-central-1\n    object_lock: { mode: compliance, days: 7 }\n",
    );
    project.spec("prod", &spec);
    block_on(async {
        let replica_s3 = project.s3("eu-central-1").await;
        replica_s3
            .create_bucket()
            .bucket(&replica)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuCentral1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let primary_s3 = project.s3("eu-west-1").await;
        primary_s3
            .create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        primary_s3
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let archive = ReplicationRule::builder()
            .id("archive")
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .filter(ReplicationRuleFilter::builder().prefix("archive/").build())
            .delete_marker_replication(
                aws_sdk_s3::types::DeleteMarkerReplication::builder()
                    .status(aws_sdk_s3::types::DeleteMarkerReplicationStatus::Disabled)
                    .build(),
            )
            .destination(
                aws_sdk_s3::types::Destination::builder()
                    .bucket("arn:aws:s3:::somewhere-else")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        primary_s3
            .put_bucket_replication()
            .bucket(&bucket)
            .replication_configuration(
                ReplicationConfiguration::builder()
                    .role(&role)
                    .rules(archive)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });

    let plan = project.statebucket(&["check", "--output", "json"]);
    plan.expect_code(2);
    let env = &plan.json()["environments"][0];
    let put = env["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["change"] == "put_replication")
        .expect("statebucket's rule is added");
    assert_eq!(put["kept"], serde_json::json!(["archive"]));
    let lock = env["replica"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["change"] == "set_object_lock")
        .expect("object lock is set");
    assert_eq!(lock["enable"], true, "{lock}");

    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let configuration = replication(&project, &bucket);
    let ids: Vec<&str> = configuration
        .rules()
        .iter()
        .filter_map(|rule| rule.id())
        .collect();
    assert_eq!(ids, ["archive", "statebucket-state-replica"]);
    assert_eq!(
        configuration.rules()[1].priority(),
        Some(2),
        "above the kept rule's priority"
    );
    block_on(async {
        let replica_s3 = project.s3("eu-central-1").await;
        assert_eq!(
            default_retention(&replica_s3, &replica).await,
            (ObjectLockRetentionMode::Compliance, 7)
        );
    });

    // Asking for less is refused with a note, and nothing is written.
    project.spec("prod", &spec.replace("days: 7", "days: 3"));
    let shorter = project.statebucket(&["check", "--output", "json"]);
    shorter.expect_code(0);
    let notes = shorter.json()["environments"][0]["replica"]["notes"].to_string();
    assert!(notes.contains("never does either"), "{notes}");
}

/// `policy ENV --replica` prints the replica's bucket policy, offline; without a replica it
/// is a usage error.
#[test]
fn the_replicas_bucket_policy_is_printed_offline() {
    let project = Project::new();
    project.spec("prod", &replica_spec("acme-state", "alias/acme-state"));
    let printed = project.statebucket(&["policy", "prod", "--replica"]);
    printed.expect_code(0);
    assert!(
        printed.stdout.contains("arn:aws:s3:::acme-state-replica/")
            && !printed.stdout.contains("arn:aws:s3:::acme-state/"),
        "{}",
        printed.stdout
    );
    project.spec("prod", &spec_yaml("acme-state", "eu-west-1", "aes256"));
    let none = project.statebucket(&["policy", "prod", "--replica"]);
    none.expect_code(64);
    none.expect_stderr(&["no `bucket.replica`"]);
}
