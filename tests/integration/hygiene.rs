//! DynamoDB lock tables (and leaving them), lifecycle rules and access logging, against moto
//! and real Terraform.

use aws_sdk_dynamodb::types::{BillingMode, KeyType, PointInTimeRecoveryStatus, SseStatus};
use aws_sdk_s3::operation::get_bucket_logging::GetBucketLoggingOutput;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, Transition, TransitionStorageClass,
};
use serde_json::Value;

use crate::support::{
    Moto, Project, block_on, change_kinds, object_exists, spec_yaml, terraform_dir, unique,
};

fn with_lock(spec: &str, lock: &str) -> String {
    spec.replace(
        "  key: app/terraform.tfstate\n",
        &format!("  key: app/terraform.tfstate\n  lock: {lock}\n"),
    )
}

/// Asserts the table is what Terraform's S3 backend needs, kept safe.
fn assert_lock_table(project: &Project, region: &str, table: &str) {
    block_on(async {
        let dynamodb = project.dynamodb(region).await;
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap_or_else(|error| panic!("table {table}: {error:?}"))
            .table
            .unwrap();
        let keys: Vec<_> = described
            .key_schema()
            .iter()
            .map(|key| (key.attribute_name().to_owned(), key.key_type().clone()))
            .collect();
        assert_eq!(keys, vec![("LockID".to_owned(), KeyType::Hash)]);
        assert_eq!(
            described.attribute_definitions()[0]
                .attribute_type()
                .as_str(),
            "S"
        );
        assert_eq!(
            described.billing_mode_summary().unwrap().billing_mode(),
            Some(&BillingMode::PayPerRequest)
        );
        assert_eq!(described.deletion_protection_enabled(), Some(true));
        assert_eq!(
            described.sse_description().unwrap().status(),
            Some(&SseStatus::Enabled)
        );
        let backups = dynamodb
            .describe_continuous_backups()
            .table_name(table)
            .send()
            .await
            .unwrap();
        assert_eq!(
            backups
                .continuous_backups_description()
                .unwrap()
                .point_in_time_recovery_description()
                .unwrap()
                .point_in_time_recovery_status(),
            Some(&PointInTimeRecoveryStatus::Enabled)
        );
        let tags = dynamodb
            .list_tags_of_resource()
            .resource_arn(described.table_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|tag| tag.key() == "team" && tag.value() == "platform"),
            "{tags:?}"
        );
    });
}

/// The LockID values in the table (Terraform's lock and state digest items).
fn lock_items(project: &Project, region: &str, table: &str) -> Vec<String> {
    block_on(async {
        let scan = project
            .dynamodb(region)
            .await
            .scan()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = scan
            .items()
            .iter()
            .filter_map(|item| item.get("LockID")?.as_s().ok().cloned())
            .collect();
        ids.sort();
        ids
    })
}

#[test]
fn dynamodb_and_both_create_one_correct_table_and_terraform_locks_with_it() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let region = "eu-west-1";
    let ddb_bucket = unique("ddb");
    let both_bucket = unique("both");
    project.spec(
        "ddb",
        &with_lock(&spec_yaml(&ddb_bucket, region, "aes256"), "dynamodb"),
    );
    project.spec(
        "both",
        &with_lock(&spec_yaml(&both_bucket, region, "aes256"), "both"),
    );

    let first = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    first.expect_code(0);
    let document = first.json();
    for env in document["environments"].as_array().unwrap() {
        let kinds = change_kinds(env);
        assert!(kinds.contains(&"create_lock_table".to_owned()), "{kinds:?}");
        assert!(
            kinds.contains(&"enable_point_in_time_recovery".to_owned()),
            "{kinds:?}"
        );
        let notes = env["notes"].as_array().unwrap();
        assert!(
            notes.iter().any(|note| note
                .as_str()
                .unwrap()
                .contains("deprecated in Terraform 1.11")),
            "{notes:?}"
        );
    }
    assert_eq!(
        document["requests"]["by_operation"]["CreateTable"], 2,
        "one CreateTable per environment"
    );
    let ddb_table = format!("{ddb_bucket}-locks");
    let both_table = format!("{both_bucket}-locks");
    assert_lock_table(&project, region, &ddb_table);
    assert_lock_table(&project, region, &both_table);

    let ddb_file = project.read("environments/ddb/backend.hcl");
    assert!(ddb_file.contains(&format!("dynamodb_table      = \"{ddb_table}\"")));
    assert!(!ddb_file.contains("use_lockfile"), "{ddb_file}");
    let both_file = project.read("environments/both/backend.hcl");
    assert!(both_file.contains(&format!("dynamodb_table      = \"{both_table}\"")));
    assert!(
        both_file.contains("use_lockfile        = true"),
        "{both_file}"
    );

    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    let document = second.json();
    assert_eq!(
        document["requests"]["writes"], 0,
        "{:#}",
        document["requests"]
    );
    project.statebucket(&["check"]).expect_code(0);

    for (env, bucket, table) in [
        ("ddb", &ddb_bucket, &ddb_table),
        ("both", &both_bucket, &both_table),
    ] {
        let workdir = terraform_dir("");
        let backend = project.path(&format!("environments/{env}/backend.hcl"));
        let init = project.terraform("init", workdir.path(), Some(&backend));
        init.expect_code(0);
        let apply = project.terraform("apply", workdir.path(), None);
        apply.expect_code(0);
        apply.expect_stdout(&["Apply complete!"]);
        // Terraform keeps the state digest in the table and removed its lock item.
        assert_eq!(
            lock_items(&project, region, table),
            vec![format!("{bucket}/app/terraform.tfstate-md5")],
            "{env}"
        );
        assert!(
            block_on(async {
                object_exists(&project.s3(region).await, bucket, "app/terraform.tfstate").await
            }),
            "{env}: state stored"
        );
        // (doctor also fails "listed in access": moto's default identity is not listed.)
        let doctor = project.statebucket(&["doctor", env]);
        let line = doctor
            .stdout
            .lines()
            .find(|line| line.contains("lock table"))
            .unwrap_or_else(|| panic!("{}", doctor.stdout));
        assert!(line.trim_start().starts_with("ok"), "{line}");
        // The S3 lockfile is probed only where backend.hcl uses it.
        assert_eq!(
            doctor.stdout.contains("take lock"),
            env == "both",
            "{}",
            doctor.stdout
        );
        assert!(
            line.contains(&format!("in DynamoDB table {table}")),
            "{line}"
        );
    }
}

#[test]
fn moving_from_both_to_lockfile_rewrites_backend_hcl_and_keeps_the_table() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let region = "ap-northeast-1";
    let bucket = unique("bridge");
    let table = format!("{bucket}-locks");
    let spec = spec_yaml(&bucket, region, "aes256");
    project.spec("dev", &with_lock(&spec, "both"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let workdir = terraform_dir("");
    project.terraform_init_and_apply_dev(workdir.path());
    let backend = project.path("environments/dev/backend.hcl");

    project.spec("dev", &spec);
    let plan = project.statebucket(&["plan", "--detailed-exitcode", "--output", "json"]);
    plan.expect_code(2);
    let document = plan.json();
    let env = &document["environments"][0];
    assert_eq!(change_kinds(env), vec!["write_backend_file"]);
    let note = env["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|note| note.contains(&table))
        .expect("a note about the table no longer used");
    assert!(
        note.contains("never deletes") && note.contains("aws dynamodb delete-table"),
        "{note}"
    );
    let text = project.statebucket(&["plan"]);
    text.expect_stdout(&["- dynamodb_table"]);

    let apply = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    apply.expect_code(0);
    assert_eq!(
        apply.json()["requests"]["writes"],
        0,
        "only the file changes"
    );
    let file = project.read("environments/dev/backend.hcl");
    assert!(!file.contains("dynamodb_table"), "{file}");
    assert!(file.contains("use_lockfile        = true"), "{file}");
    assert!(
        block_on(async {
            project
                .dynamodb(region)
                .await
                .describe_table()
                .table_name(&table)
                .send()
                .await
                .is_ok()
        }),
        "the table still exists"
    );
    // Terraform follows with -reconfigure and goes on with the lockfile alone.
    project
        .terraform("reinit", workdir.path(), Some(&backend))
        .expect_code(0);
    let apply = project.terraform("apply", workdir.path(), None);
    apply.expect_code(0);
    apply.expect_stdout(&["No changes."]);
    project.statebucket(&["check"]).expect_code(0);

    // A hand-edited file without any lock: doctor says so.
    let unlocked = project
        .read("environments/dev/backend.hcl")
        .replace("use_lockfile        = true\n", "");
    project.write("environments/dev/backend.hcl", &unlocked);
    let doctor = project.statebucket(&["doctor", "dev"]);
    assert!(
        doctor.stdout.contains("warn  locking") && !doctor.stdout.contains("take lock"),
        "{}",
        doctor.stdout
    );
}

fn foreign_rule() -> LifecycleRule {
    LifecycleRule::builder()
        .id("archive-exports")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("exports/").build())
        .transitions(
            Transition::builder()
                .days(30)
                .storage_class(TransitionStorageClass::Glacier)
                .build(),
        )
        .build()
        .unwrap()
}

/// The bucket's lifecycle rules and logging status, as S3 reports them.
fn lifecycle_and_logging(
    project: &Project,
    region: &str,
    bucket: &str,
) -> (Vec<LifecycleRule>, GetBucketLoggingOutput) {
    block_on(async {
        let s3 = project.s3(region).await;
        let rules = s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
            .rules()
            .to_vec();
        let logging = s3.get_bucket_logging().bucket(bucket).send().await.unwrap();
        (rules, logging)
    })
}

#[test]
fn lifecycle_and_logging_drift_is_detected_and_repaired_and_foreign_rules_survive() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let region = "eu-west-1";
    let logs = unique("logs");
    let dev_bucket = unique("hyg-dev");
    let qa_bucket = unique("hyg-qa");
    let auditors = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Auditors","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::LOGS/*"}]}"#.replace("LOGS", &logs);
    block_on(async {
        let s3 = project.s3(region).await;
        s3.create_bucket()
            .bucket(&logs)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        s3.put_bucket_policy()
            .bucket(&logs)
            .policy(&auditors)
            .send()
            .await
            .unwrap();
    });
    // Two environments share the log bucket; each gets its own grant.
    for (env, bucket) in [("dev", &dev_bucket), ("qa", &qa_bucket)] {
        project.spec(
            env,
            &spec_yaml(bucket, region, "aes256")
                .replace(
                    "  tags:",
                    &format!("  logging: {{ bucket: {logs}, prefix: tfstate/{env}/ }}\n  tags:"),
                )
                .replace("app/", &format!("{env}/")),
        );
    }
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);

    let (rules, logging) = lifecycle_and_logging(&project, region, &dev_bucket);
    let policy = block_on(project.bucket_policy(region, &logs));
    let ids: Vec<_> = rules.iter().filter_map(LifecycleRule::id).collect();
    assert_eq!(
        ids,
        vec![
            "statebucket-abort-incomplete-uploads",
            "statebucket-expire-noncurrent-versions"
        ]
    );
    let expire = &rules[1];
    assert_eq!(
        expire
            .noncurrent_version_expiration()
            .unwrap()
            .noncurrent_days(),
        Some(90)
    );
    assert_eq!(
        rules[0]
            .abort_incomplete_multipart_upload()
            .unwrap()
            .days_after_initiation(),
        Some(7)
    );
    let enabled = logging.logging_enabled().expect("logging on");
    assert_eq!(
        (enabled.target_bucket(), enabled.target_prefix()),
        (logs.as_str(), "tfstate/dev/")
    );
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 3, "{policy:#}");
    assert_eq!(statements[0]["Sid"], "Auditors");
    // The two environments ran at once; either may have written first.
    for bucket in [&dev_bucket, &qa_bucket] {
        let grant = statements[1..]
            .iter()
            .find(|statement| {
                statement["Condition"]["ArnLike"]["aws:SourceArn"]
                    == format!("arn:aws:s3:::{bucket}").as_str()
            })
            .unwrap_or_else(|| panic!("no grant for {bucket}: {policy:#}"));
        assert_eq!(grant["Principal"]["Service"], "logging.s3.amazonaws.com");
        assert_eq!(grant["Action"], "s3:PutObject");
        assert_eq!(
            grant["Condition"]["StringEquals"]["aws:SourceAccount"],
            "123456789012"
        );
    }

    // Drift: someone shortens the retention, adds a rule of their own, and turns logging off.
    block_on(async {
        let s3 = project.s3(region).await;
        let shortened = LifecycleRule::builder()
            .id("statebucket-expire-noncurrent-versions")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(1)
                    .build(),
            )
            .build()
            .unwrap();
        s3.put_bucket_lifecycle_configuration()
            .bucket(&dev_bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(foreign_rule())
                    .rules(shortened)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        s3.put_bucket_logging()
            .bucket(&dev_bucket)
            .bucket_logging_status(BucketLoggingStatus::builder().build())
            .send()
            .await
            .unwrap();
    });

    let check = project.statebucket(&["check", "--output", "json"]);
    check.expect_code(2);
    let document = check.json();
    let dev = document["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|env| env["name"] == "dev")
        .unwrap();
    assert_eq!(
        change_kinds(dev),
        vec!["set_lifecycle", "enable_logging"],
        "{dev:#}"
    );
    assert_eq!(dev["changes"][0]["kept"][0], "archive-exports");
    let text = project.statebucket(&["check"]);
    assert!(
        text.stdout
            .contains("keeps 1 lifecycle rule statebucket does not own: archive-exports"),
        "{}",
        text.stdout
    );

    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let (rules, logging) = lifecycle_and_logging(&project, region, &dev_bucket);
    assert_eq!(
        rules[0],
        foreign_rule(),
        "the foreign rule is written back as it was"
    );
    let expire = rules
        .iter()
        .find(|rule| rule.id() == Some("statebucket-expire-noncurrent-versions"))
        .unwrap();
    assert_eq!(
        expire
            .noncurrent_version_expiration()
            .unwrap()
            .noncurrent_days(),
        Some(90)
    );
    assert_eq!(rules.len(), 3);
    assert!(logging.logging_enabled().is_some());
}
