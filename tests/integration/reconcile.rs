//! plan / apply / check against a real S3, KMS and STS API (moto).

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::{Value, json};

use crate::support::{
    ACCOUNT, Moto, OTHER_ACCOUNT, Project, block_on, change_kinds, spec_yaml, unique,
};

fn kms_encryption(alias: &str) -> String {
    format!("{{ kms_key: {alias}, create_key: true }}")
}

fn statuses(document: &Value) -> Vec<String> {
    document["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|env| env["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn apply_from_nothing_converges_and_a_second_apply_writes_nothing() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let dev_bucket = unique("converge-dev");
    let prod_bucket = unique("converge-prod");
    let alias = format!("alias/{}", unique("state"));
    project.spec("dev", &spec_yaml(&dev_bucket, "ap-northeast-1", "aes256"));
    project.spec(
        "prod",
        &spec_yaml(&prod_bucket, "eu-west-1", &kms_encryption(&alias)).replace("app/", "prod/"),
    );

    let plan = project.statebucket(&["plan", "--detailed-exitcode", "--output", "json"]);
    plan.expect_code(2);
    assert_eq!(plan.json()["requests"]["writes"], 0, "plan must not write");

    let first = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    first.expect_code(0);
    let document = first.json();
    assert_eq!(statuses(&document), vec!["applied", "applied"]);
    assert_eq!(
        change_kinds(&document["environments"][1])[0],
        "create_kms_key"
    );

    project.statebucket(&["check"]).expect_code(0);
    project
        .statebucket(&["plan", "--detailed-exitcode"])
        .expect_code(0);

    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    let document = second.json();
    assert_eq!(statuses(&document), vec!["in_sync", "in_sync"]);
    assert_eq!(
        document["requests"]["writes"], 0,
        "{:#}",
        document["requests"]
    );
    let operations = document["requests"]["by_operation"].as_object().unwrap();
    assert!(
        operations
            .keys()
            .all(|operation| operation.starts_with("Get")
                || operation == "HeadBucket"
                || operation == "DescribeKey"),
        "{operations:?}"
    );

    let backend = project.read("environments/prod/backend.hcl");
    assert!(
        backend.contains(&format!("bucket              = \"{prod_bucket}\"")),
        "{backend}"
    );
    assert!(
        backend.contains("kms_key_id          = \"arn:aws:kms:eu-west-1:123456789012:key/"),
        "{backend}"
    );
    assert!(
        backend.contains(&format!(
            "endpoints           = {{ s3 = \"{0}\", sts = \"{0}\" }}",
            moto.endpoint
        )),
        "{backend}"
    );

    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let versioning = s3
            .get_bucket_versioning()
            .bucket(&prod_bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
        let encryption = s3
            .get_bucket_encryption()
            .bucket(&prod_bucket)
            .send()
            .await
            .unwrap();
        let rule = &encryption
            .server_side_encryption_configuration()
            .unwrap()
            .rules()[0];
        assert_eq!(rule.bucket_key_enabled(), Some(true));
        let default = rule.apply_server_side_encryption_by_default().unwrap();
        assert_eq!(default.sse_algorithm(), &ServerSideEncryption::AwsKms);
        let kms = project.kms("eu-west-1").await;
        let key = kms.describe_key().key_id(&alias).send().await.unwrap();
        let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
        assert_eq!(default.kms_master_key_id(), Some(key_arn.as_str()));
        let rotation = kms
            .get_key_rotation_status()
            .key_id(&key_arn)
            .send()
            .await
            .unwrap();
        assert!(rotation.key_rotation_enabled());
        let tags = kms
            .list_resource_tags()
            .key_id(&key_arn)
            .send()
            .await
            .unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|tag| tag.tag_key() == "statebucket:environment" && tag.tag_value() == "prod")
        );
    });
}

#[test]
fn out_of_band_drift_is_named_by_check_and_repaired_by_apply() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("drift");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);

    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let kms = project.kms("eu-west-1").await;
        let key = kms
            .create_key()
            .description("someone else's key")
            .send()
            .await
            .unwrap();
        let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
        s3.put_bucket_encryption()
            .bucket(&bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(ServerSideEncryption::AwsKms)
                                    .kms_master_key_id(key_arn)
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        s3.put_public_access_block()
            .bucket(&bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(false)
                    .restrict_public_buckets(false)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut document = project.bucket_policy("eu-west-1", &bucket).await;
        document["Statement"]
            .as_array_mut()
            .unwrap()
            .retain(|statement| statement["Sid"] != "StatebucketLockFiles");
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(document.to_string())
            .send()
            .await
            .unwrap();
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let edited = project.read("environments/dev/backend.hcl").replace(
        "profile             = \"terraform\"",
        "profile             = \"default\"",
    );
    project.write("environments/dev/backend.hcl", &edited);

    let check = project.statebucket(&["check"]);
    check.expect_code(2);
    check.expect_stdout(&[
        "~ versioning: Suspended -> Enabled",
        "~ encryption: aws:kms (arn:aws:kms:eu-west-1:123456789012:key/",
        "-> AES256",
        "~ public access block: only BlockPublicAcls, IgnorePublicAcls -> all 4 blocked",
        "~ bucket policy: + StatebucketLockFiles",
        "~ backend file: rewrite environments/dev/backend.hcl",
        "- profile             = \"default\"",
        "+ profile             = \"terraform\"",
    ]);
    let json = project.statebucket(&["check", "--output", "json"]);
    json.expect_code(2);
    let kinds = change_kinds(&json.json()["environments"][0]);
    assert_eq!(
        kinds,
        [
            "enable_versioning",
            "set_encryption",
            "block_public_access",
            "put_policy",
            "write_backend_file"
        ]
    );
    assert_eq!(
        json.json()["requests"]["writes"],
        0,
        "check must never write"
    );
    assert_eq!(
        project.read("environments/dev/backend.hcl"),
        edited,
        "check must not touch files"
    );

    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let versioning = s3
            .get_bucket_versioning()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
    });
}

#[test]
fn statements_and_tags_the_tool_does_not_own_survive_apply() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("foreign");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    let foreign = json!({
        "Sid": "AuditorReadOnly",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{OTHER_ACCOUNT}:root")},
        "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{bucket}/*")
    });
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        s3.create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let policy = json!({"Version": "2012-10-17", "Statement": [foreign.clone()]});
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy.to_string())
            .send()
            .await
            .unwrap();
        let tags = aws_sdk_s3::types::Tagging::builder()
            .tag_set(
                aws_sdk_s3::types::Tag::builder()
                    .key("cost-center")
                    .value("42")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        s3.put_bucket_tagging()
            .bucket(&bucket)
            .tagging(tags)
            .send()
            .await
            .unwrap();
    });

    let plan = project.statebucket(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("keeps 1 statement statebucket does not own: AuditorReadOnly"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("= bucket: ") || plan.stdout.contains("= in sync: bucket"),
        "{}",
        plan.stdout
    );

    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let document = project.bucket_policy("eu-west-1", &bucket).await;
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(
            statements[0], foreign,
            "the foreign statement is kept verbatim and first"
        );
        assert_eq!(statements.len(), 5, "{document:#}");
        let tags = s3
            .get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let tags: Vec<(&str, &str)> = tags
            .tag_set()
            .iter()
            .map(|tag| (tag.key(), tag.value()))
            .collect();
        assert_eq!(tags, vec![("cost-center", "42"), ("team", "platform")]);
    });
    project.statebucket(&["check"]).expect_code(0);
}

#[test]
fn a_bucket_in_another_region_is_an_error_naming_both_regions() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("elsewhere");
    block_on(async {
        project
            .s3("us-west-2")
            .await
            .create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::UsWest2)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    let run = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    run.expect_code(1);
    let env = &run.json()["environments"][0];
    assert_eq!(
        env["error"]["message"],
        format!("bucket `{bucket}` exists in us-west-2, but the spec says eu-west-1")
    );
    assert!(
        env["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("set `region: us-west-2`")
    );
    assert_eq!(run.json()["requests"]["writes"], 0);
}

#[test]
fn a_bucket_name_taken_by_another_account_is_refused_without_writes() {
    let moto = Moto::shared();
    let bucket = unique("taken");
    let owner = Project::with_moto(moto);
    owner.write_aws_profiles(&[(
        "terraform",
        Some(&format!("arn:aws:iam::{OTHER_ACCOUNT}:role/owner")),
    )]);
    owner.spec(
        "dev",
        &spec_yaml(&bucket, "eu-west-1", "aes256").replace(ACCOUNT, OTHER_ACCOUNT),
    );
    owner
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);

    let project = Project::with_moto(moto);
    project.spec(
        "dev",
        &spec_yaml(&bucket, "eu-west-1", "aes256").replace("app/", "other/"),
    );
    let run = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    run.expect_code(1);
    let error = &run.json()["environments"][0]["error"];
    assert!(
        error["message"].as_str().unwrap().contains("access denied"),
        "{error:#}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("another account owns the name"),
        "{error:#}"
    );
    assert_eq!(run.json()["requests"]["writes"], 0);
    owner.statebucket(&["check"]).expect_code(0);
}

#[test]
fn apply_without_a_terminal_never_assumes_yes() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("no-tty");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    let run = project.statebucket(&["apply"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("refusing to apply without confirmation: stdin is not a terminal"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("+ bucket: create"),
        "the plan is shown first:\n{}",
        run.stdout
    );
    let exists = project.bucket_exists("eu-west-1", &bucket);
    assert!(!exists);
}

#[test]
fn the_account_guard_refuses_other_accounts_before_any_write() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("guarded");
    project.spec(
        "dev",
        &spec_yaml(&bucket, "eu-west-1", "aes256").replace(ACCOUNT, OTHER_ACCOUNT),
    );
    let run = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    run.expect_code(1);
    let document = run.json();
    let error = &document["environments"][0]["error"];
    assert_eq!(
        error["message"],
        format!(
            "wrong AWS account: arn:aws:sts::{ACCOUNT}:user/moto is in account {ACCOUNT}, but environments/dev.yaml requires account {OTHER_ACCOUNT}"
        )
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("profile `terraform`"),
        "{error:#}"
    );
    // Reads went out with the STS call (one round trip); nothing was written.
    assert_eq!(
        document["requests"]["writes"], 0,
        "{:#}",
        document["requests"]
    );
    let exists = project.bucket_exists("eu-west-1", &bucket);
    assert!(!exists);
}

/// statebucket runs as `terraform` for dev (its only profile) and as `admin` for ops, whose
/// backend runs as `terraform`: STS is asked once for each profile in the run.
#[test]
fn a_profile_is_asked_who_it_is_once_whether_statebucket_or_a_backend_runs_as_it() {
    // The project's profiles: `terraform` and `admin`.
    let project = Project::with_moto(Moto::shared());
    project.spec(
        "dev",
        &spec_yaml(&unique("asked-dev"), "eu-west-1", "aes256"),
    );
    project.spec(
        "ops",
        &spec_yaml(&unique("asked-ops"), "eu-west-1", "aes256").replace(
            "profile: terraform",
            "profile: terraform\nbootstrap_profile: admin",
        ),
    );
    let run = project.statebucket(&["check", "--output", "json"]);
    run.expect_code(2);
    let requests = &run.json()["requests"];
    assert_eq!(
        requests["by_operation"]["GetCallerIdentity"], 2,
        "{requests:#}"
    );
}

#[test]
fn the_bootstrap_identity_never_reaches_backend_hcl() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    project.write_aws_profiles(&[
        ("terraform", None),
        ("admin", Some(&format!("arn:aws:iam::{ACCOUNT}:role/admin"))),
    ]);
    let bucket = unique("bootstrap");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    let run = project.statebucket(&[
        "apply",
        "--profile",
        "admin",
        "--auto-approve",
        "--output",
        "json",
    ]);
    run.expect_code(0);
    let caller = run.json()["environments"][0]["caller"]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        caller.starts_with(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/admin/")),
        "{caller}"
    );
    let backend = project.read("environments/dev/backend.hcl");
    assert!(
        backend.contains("profile             = \"terraform\"\n"),
        "{backend}"
    );
    assert!(!backend.contains("admin"), "{backend}");

    let spec_with_bootstrap = spec_yaml(&bucket, "eu-west-1", "aes256").replace(
        "profile: terraform",
        "profile: terraform\nbootstrap_profile: admin",
    );
    project.spec("dev", &spec_with_bootstrap);
    let run = project.statebucket(&["check", "--output", "json"]);
    run.expect_code(0);
    assert!(
        run.json()["environments"][0]["caller"]["arn"]
            .as_str()
            .unwrap()
            .contains("assumed-role/admin/")
    );
}

#[test]
fn us_east_1_buckets_are_created_without_a_location_constraint() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("virginia");
    project.spec("dev", &spec_yaml(&bucket, "us-east-1", "aes256"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let location = block_on(async {
        project
            .s3("us-east-1")
            .await
            .head_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(location.bucket_region(), Some("us-east-1"));
}
