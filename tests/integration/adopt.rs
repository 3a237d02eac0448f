//! `statebucket import` of buckets made by hand with the AWS CLI, the way the setup
//! articles show: import → validate → plan lists only the hardening statebucket always
//! enforces → apply → check 0, the bucket's own policy statements and lifecycle rules intact.

use crate::support::{
    ACCOUNT, Moto, OTHER_ACCOUNT, Project, change_kinds, to_run, unique, venv_python,
};

/// Runs the AWS CLI from the project's venv as profile `admin`, against moto.
fn aws(project: &Project, args: &[&str]) -> String {
    let cli = venv_python().with_file_name("aws");
    let run = to_run(
        project
            .command(cli)
            .args(args)
            .args([
                "--profile",
                "admin",
                "--region",
                "eu-west-1",
                "--output",
                "json",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "aws {args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

fn create_bucket(project: &Project, bucket: &str) {
    aws(
        project,
        &[
            "s3api",
            "create-bucket",
            "--bucket",
            bucket,
            "--create-bucket-configuration",
            "LocationConstraint=eu-west-1",
        ],
    );
    aws(
        project,
        &[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            bucket,
            "--versioning-configuration",
            "Status=Enabled",
        ],
    );
}

fn put_bucket_policy(project: &Project, bucket: &str, policy: &str) {
    aws(
        project,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            bucket,
            "--policy",
            policy,
        ],
    );
}

fn bucket_policy(project: &Project, bucket: &str) -> serde_json::Value {
    let answer: serde_json::Value = serde_json::from_str(&aws(
        project,
        &["s3api", "get-bucket-policy", "--bucket", bucket],
    ))
    .unwrap();
    serde_json::from_str(answer["Policy"].as_str().unwrap()).unwrap()
}

fn sids(policy: &serde_json::Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|statement| statement["Sid"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `statebucket import BUCKET --env ENV` as `admin`, Terraform running as `terraform`.
fn import(project: &Project, bucket: &str, env: &str) -> crate::support::Run {
    project.statebucket(&[
        "import",
        bucket,
        "--env",
        env,
        "--terraform-profile",
        "terraform",
        "--profile",
        "admin",
        "--output",
        "json",
    ])
}

/// import → validate → plan (only `expected` kinds) → apply → check 0.
fn adopt_and_converge(
    project: &Project,
    bucket: &str,
    env: &str,
    expected: &[&str],
) -> serde_json::Value {
    let imported = import(project, bucket, env);
    imported.expect_code(0);
    project.statebucket(&["validate", env]).expect_code(0);
    crate::tooling::validate_against_spec_schema(
        false,
        &[project.path(&format!("environments/{env}.yaml"))],
    );
    let plan = project.statebucket(&["plan", env, "--detailed-exitcode", "--output", "json"]);
    plan.expect_code(2);
    let plan = plan.json();
    let mut kinds = change_kinds(&plan["environments"][0]);
    kinds.sort();
    assert_eq!(kinds, expected, "{plan:#}");
    project
        .statebucket(&["apply", env, "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check", env]).expect_code(0);
    let second = project.statebucket(&["apply", env, "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    assert_eq!(second.json()["requests"]["writes"], 0);
    imported.json()
}

#[test]
fn a_hand_made_aes256_bucket_is_adopted_with_its_principals_and_foreign_statements() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("hand-made");
    create_bucket(&project, &bucket);
    aws(
        &project,
        &[
            "s3api",
            "put-bucket-encryption",
            "--bucket",
            &bucket,
            "--server-side-encryption-configuration",
            r#"{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}"#,
        ],
    );
    aws(
        &project,
        &[
            "s3api",
            "put-public-access-block",
            "--bucket",
            &bucket,
            "--public-access-block-configuration",
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
        ],
    );
    let principals = format!(
        r#"["arn:aws:iam::{ACCOUNT}:role/terraform-access-role", "arn:aws:iam::{ACCOUNT}:user/terraform-access"]"#
    );
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
  {{"Sid": "TerraformList", "Effect": "Allow", "Principal": {{"AWS": {principals}}},
    "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::{bucket}"}},
  {{"Sid": "TerraformState", "Effect": "Allow", "Principal": {{"AWS": {principals}}},
    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
    "Resource": ["arn:aws:s3:::{bucket}/live/terraform.tfstate", "arn:aws:s3:::{bucket}/live/terraform.tfstate.tflock"]}},
  {{"Sid": "AuditorsReadEverything", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{ACCOUNT}:root"}},
    "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/*"}}
]}}"#
    );
    put_bucket_policy(&project, &bucket, &policy);
    let before = bucket_policy(&project, &bucket);

    let imported = adopt_and_converge(
        &project,
        &bucket,
        "legacy",
        &[
            "enforce_bucket_owner",
            "put_policy",
            "set_lifecycle",
            "write_backend_file",
        ],
    );
    let notes = imported["notes"].to_string();
    for expected in [
        "object ownership to BucketOwnerEnforced",
        "3 statement(s) stay as they are",
        "keeps every old state version",
        &format!("arn:aws:iam::{ACCOUNT}:root"),
    ] {
        assert!(notes.contains(expected), "{expected}: {notes}");
    }
    let spec = project.read("environments/legacy.yaml");
    for expected in [
        "key: live/terraform.tfstate",
        "users: [terraform-access]",
        "roles: [terraform-access-role]",
        "encryption: aes256",
        "expire_noncurrent_after_days: never",
        &format!("account_id: \"{ACCOUNT}\""),
        "bootstrap_profile: admin",
    ] {
        assert!(spec.contains(expected), "{expected}:\n{spec}");
    }
    let after = bucket_policy(&project, &bucket);
    for statement in before["Statement"].as_array().unwrap() {
        assert!(
            after["Statement"].as_array().unwrap().contains(statement),
            "the hand-made statement {} is kept as it was: {after:#}",
            statement["Sid"]
        );
    }
    assert!(
        sids(&after)
            .iter()
            .any(|sid| sid.starts_with("Statebucket")),
        "{after:#}"
    );
    let backend = project.read("environments/legacy/backend.hcl");
    assert!(
        backend
            .lines()
            .any(|line| line.starts_with("key ") && line.ends_with(" = \"live/terraform.tfstate\"")),
        "{backend}"
    );
}

#[test]
fn a_kms_bucket_with_an_alias_and_its_own_lifecycle_rule_is_adopted() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("hand-made-kms");
    let alias = format!("alias/{bucket}");
    let key: serde_json::Value = serde_json::from_str(&aws(
        &project,
        &["kms", "create-key", "--description", "terraform state"],
    ))
    .unwrap();
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    aws(
        &project,
        &[
            "kms",
            "create-alias",
            "--alias-name",
            &alias,
            "--target-key-id",
            &key_id,
        ],
    );
    create_bucket(&project, &bucket);
    aws(
        &project,
        &[
            "s3api",
            "put-bucket-encryption",
            "--bucket",
            &bucket,
            "--server-side-encryption-configuration",
            &format!(
                r#"{{"Rules":[{{"ApplyServerSideEncryptionByDefault":{{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"{key_arn}"}},"BucketKeyEnabled":true}}]}}"#
            ),
        ],
    );
    aws(
        &project,
        &[
            "s3api",
            "put-bucket-lifecycle-configuration",
            "--bucket",
            &bucket,
            "--lifecycle-configuration",
            r#"{"Rules":[{"ID":"expire-old-versions","Status":"Enabled","Filter":{"Prefix":""},"NoncurrentVersionExpiration":{"NoncurrentDays":30}}]}"#,
        ],
    );
    // A policy that grants the whole bucket: the state key comes from the objects in it.
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
  {{"Sid": "Terraform", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{ACCOUNT}:role/terraform-access-role"}},
    "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject"],
    "Resource": ["arn:aws:s3:::{bucket}", "arn:aws:s3:::{bucket}/*"]}}
]}}"#
    );
    put_bucket_policy(&project, &bucket, &policy);
    let state = project.path("terraform.tfstate");
    std::fs::write(
        &state,
        r#"{"version": 4, "serial": 1, "lineage": "x", "resources": []}"#,
    )
    .unwrap();
    aws(
        &project,
        &[
            "s3api",
            "put-object",
            "--bucket",
            &bucket,
            "--key",
            "team/terraform.tfstate",
            "--body",
            state.to_str().unwrap(),
        ],
    );

    let imported = adopt_and_converge(
        &project,
        &bucket,
        "team",
        &[
            "block_public_access",
            "enforce_bucket_owner",
            "put_policy",
            "set_lifecycle",
            "write_backend_file",
        ],
    );
    let notes = imported["notes"].to_string();
    for expected in [
        "block all public access (now: none blocked)",
        "`expire-old-versions`",
    ] {
        assert!(notes.contains(expected), "{expected}: {notes}");
    }
    let spec = project.read("environments/team.yaml");
    for expected in [
        format!("kms_key: {alias}"),
        "key: team/terraform.tfstate".to_owned(),
        "roles: [terraform-access-role]".to_owned(),
        "expire_noncurrent_after_days: never".to_owned(),
    ] {
        assert!(spec.contains(&expected), "{expected}:\n{spec}");
    }
    assert!(
        !spec.contains("create_key"),
        "an adopted key is never statebucket's:\n{spec}"
    );
    let rules: serde_json::Value = serde_json::from_str(&aws(
        &project,
        &[
            "s3api",
            "get-bucket-lifecycle-configuration",
            "--bucket",
            &bucket,
        ],
    ))
    .unwrap();
    let ids: Vec<&str> = rules["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["ID"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"expire-old-versions"), "{rules:#}");
    let encryption: serde_json::Value = serde_json::from_str(&aws(
        &project,
        &["s3api", "get-bucket-encryption", "--bucket", &bucket],
    ))
    .unwrap();
    assert_eq!(
        encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
            ["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
            .as_str()
            .map(|key| key == key_arn || key == alias),
        Some(true),
        "{encryption:#}"
    );
}

#[test]
fn import_of_a_missing_or_foreign_bucket_fails_clearly_and_writes_nothing() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let missing = unique("never-made");
    let run = project.statebucket(&["import", &missing, "--profile", "admin"]);
    run.expect_code(1);
    run.expect_stderr(&["no such bucket", "statebucket init"]);
    assert!(
        !project
            .path(&format!("environments/{missing}.yaml"))
            .exists()
    );

    let owner = Project::with_moto(moto);
    owner.write_aws_profiles(&[(
        "admin",
        Some(&format!("arn:aws:iam::{OTHER_ACCOUNT}:role/owner")),
    )]);
    let foreign = unique("foreign");
    create_bucket(&owner, &foreign);
    let run = project.statebucket(&["import", &foreign, "--profile", "admin"]);
    run.expect_code(1);
    run.expect_stderr(&[&format!("not in account {ACCOUNT}")]);
    assert!(
        !project
            .path(&format!("environments/{foreign}.yaml"))
            .exists()
    );

    project.write("environments/mine.yaml", "# mine\n");
    let run = project.statebucket(&["import", &foreign, "--env", "mine"]);
    run.expect_code(1);
    run.expect_stderr(&["never overwrites"]);
    assert_eq!(project.read("environments/mine.yaml"), "# mine\n");
}

#[test]
fn a_lock_table_the_backend_uses_is_kept_not_dropped() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("hand-made-locks");
    let table = format!("{bucket}-locks");
    create_bucket(&project, &bucket);
    aws(
        &project,
        &[
            "dynamodb",
            "create-table",
            "--table-name",
            &table,
            "--attribute-definitions",
            "AttributeName=LockID,AttributeType=S",
            "--key-schema",
            "AttributeName=LockID,KeyType=HASH",
            "--billing-mode",
            "PAY_PER_REQUEST",
        ],
    );
    let policy = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{ACCOUNT}:role/terraform-access-role"}},
  "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::{bucket}/live/terraform.tfstate"}}]}}"#
    );
    put_bucket_policy(&project, &bucket, &policy);
    let imported = import(&project, &bucket, "locks");
    imported.expect_code(0);
    assert!(
        imported.json()["notes"]
            .to_string()
            .contains(&format!("`{table}` has Terraform's lock schema")),
        "{}",
        imported.stdout
    );
    let spec = project.read("environments/locks.yaml");
    assert!(
        spec.contains("lock: both") && spec.contains(&format!("dynamodb_table: {table}")),
        "{spec}"
    );
    project.statebucket(&["validate", "locks"]).expect_code(0);
    project
        .statebucket(&["apply", "locks", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check", "locks"]).expect_code(0);
    let backend = project.read("environments/locks/backend.hcl");
    assert!(
        backend.contains(&format!("\"{table}\"")) && backend.contains("use_lockfile"),
        "the backend keeps locking in the table beside the lockfile:\n{backend}"
    );
}
