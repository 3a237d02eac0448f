//! `statebucket audit` against moto: who can read each stack's state (a statement added by
//! hand is flagged by its Sid), what a reader of a state written by real Terraform sees
//! (the sensitive output's path, never its value), and an AES256 environment told what
//! per-read audit needs instead of failing. moto serves no CloudTrail event history: the
//! attribution of events is unit-tested with aws-smithy-mocks (`src/aws/audit.rs`).

use crate::support::{Moto, Project, block_on, stacks_spec, unique};

/// The bucket's policy with one more statement, as someone would add it in the console.
fn add_statement(project: &Project, bucket: &str, statement: serde_json::Value) {
    block_on(async {
        let mut policy = project.bucket_policy("eu-west-1", bucket).await;
        policy["Statement"].as_array_mut().unwrap().push(statement);
        let s3 = project.s3("eu-west-1").await;
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(policy.to_string())
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn who_can_read_flags_a_principal_the_spec_does_not_list_by_its_statement() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("audit-who");
    project.spec(
        "central",
        &stacks_spec(&bucket, &format!("alias/{}", unique("audit-key"))),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let clean = project.statebucket(&["audit", "central", "--output", "json"]);
    clean.expect_code(0);
    let clean = clean.json();
    let network = &clean["stacks"][0];
    assert_eq!(network["stack"], "network");
    let can = network["can"].as_array().unwrap();
    assert!(
        can.iter().any(|access| access["principal"]
            == "arn:aws:iam::123456789012:user/terraform-access"
            && access["listed"] == true
            && access["write"].is_string()),
        "{clean:#}"
    );
    assert!(
        can.iter().any(|access| access["principal"]
            == "arn:aws:iam::123456789012:role/terraform-access-role"
            && access["read"].is_string()
            && access["write"].is_null()),
        "the reader tier reads and does not write: {clean:#}"
    );
    assert_eq!(clean["unlisted_reader"], false);

    add_statement(
        &project,
        &bucket,
        serde_json::json!({
            "Sid": "AuditorsByHand", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:user/auditor"},
            "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")
        }),
    );
    let flagged = project.statebucket(&["audit", "central"]);
    flagged.expect_code(2);
    flagged.expect_stdout(&[
        "! arn:aws:iam::123456789012:user/auditor  read (AuditorsByHand)  not listed in the spec",
    ]);
    // An identity whose own IAM policy reads every object: named, for review.
    let peeker = unique("peeker");
    block_on(async {
        let iam = moto.iam_in(crate::support::ACCOUNT).await;
        iam.create_user().user_name(&peeker).send().await.unwrap();
        iam.put_user_policy()
            .user_name(&peeker)
            .policy_name("peek")
            .policy_document(
                serde_json::json!({"Version": "2012-10-17", "Statement": [{
                    "Sid": "Peek", "Effect": "Allow", "Action": "s3:GetObject",
                    "Resource": format!("arn:aws:s3:::{bucket}/*")
                }]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
    });
    let reviewed = project.statebucket(&["audit", "central"]);
    assert!(
        reviewed.stdout.contains(&format!(
            "! arn:aws:iam::123456789012:user/{peeker}  read (IAM policy `peek` (Peek))  not listed in the spec"
        )),
        "{}",
        reviewed.stdout
    );
    assert!(
        flagged.stdout.contains("lacked: cloudtrail:LookupEvents")
            || flagged.stdout.contains("did ("),
        "who did is either read or said to be missing:\n{}",
        flagged.stdout
    );
}

#[test]
fn what_a_reader_sees_is_the_sensitive_outputs_path_never_its_value() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("audit-sees");
    project.spec(
        "dev",
        &crate::support::spec_yaml(&bucket, "eu-west-1", "aes256"),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let secret = "hunter2-do-not-print";
    let workdir = tempfile::tempdir().unwrap();
    std::fs::write(
        workdir.path().join("main.tf"),
        format!(
            "terraform {{\n  backend \"s3\" {{}}\n}}\n\nresource \"terraform_data\" \"db\" {{\n  input = sensitive(\"{secret}\")\n}}\n\noutput \"db_password\" {{\n  value     = terraform_data.db.output\n  sensitive = true\n}}\n"
        ),
    )
    .unwrap();
    project.terraform_init_and_apply_dev(workdir.path());
    let audit = project.statebucket(&["audit", "dev"]);
    audit.expect_code(0);
    assert!(
        audit
            .stdout
            .contains("marked sensitive: output.db_password"),
        "{}",
        audit.stdout
    );
    let json = project.statebucket(&["audit", "dev", "--output", "json"]);
    for printed in [&audit.stdout, &audit.stderr, &json.stdout, &json.stderr] {
        assert!(!printed.contains(secret), "the value must never be printed");
    }
    // AES256: no KMS record of reads; the audit says what per-read audit needs.
    audit.expect_stdout(&[
        "AES256 state: reads leave no record here. Per-read audit needs KMS encryption",
    ]);
}

#[test]
fn a_window_cloudtrail_does_not_keep_is_a_usage_error_before_any_request() {
    let project = Project::new();
    // No endpoint, no spec, no credentials: the flag is refused before anything is read.
    for since in ["91d", "0d", "a week"] {
        let run = project.statebucket(&["audit", "dev", "--since", since]);
        run.expect_code(64);
        run.expect_stderr(&[&format!(
            "--since `{since}` is not a number of days from 1 to 90"
        )]);
    }
}
