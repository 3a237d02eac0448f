//! Access safety on moto: principals must exist, a policy that locks out an identity it must
//! keep is refused unless `--allow-lockout`, and identity policies are attached idempotently.

use crate::support::{ACCOUNT, Moto, Project, block_on, changed, spec_yaml, unique};

#[test]
fn a_missing_principal_is_named_and_nothing_is_written() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("ghost");
    let spec = spec_yaml(&bucket, "eu-west-1", "aes256")
        .replace("[terraform-access]", "[terraform-access, ghost-user]");
    project.spec("dev", &spec);
    let run = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    run.expect_code(1);
    let document = run.json();
    let error = &document["environments"][0]["error"];
    assert_eq!(
        error["message"],
        format!(
            "checking the principals of environments/dev.yaml: IAM user `ghost-user` does not exist in account {ACCOUNT}"
        )
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("Invalid principal in policy")
    );
    assert_eq!(
        document["requests"]["writes"], 0,
        "{:#}",
        document["requests"]
    );
    let exists = project.bucket_exists("eu-west-1", &bucket);
    assert!(!exists);
}

#[test]
fn a_policy_that_locks_out_terraform_is_refused_unless_allowed() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("lockout");
    project.spec_locking_out_terraform("dev", &bucket);
    let refused = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    refused.expect_code(1);
    let error = refused.json()["environments"][0]["error"].clone();
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "refusing to write a bucket policy for dev that would lock out an identity it must keep"
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!("statement `StatebucketReadOnlyState` denies Terraform (profile `terraform`) (arn:aws:sts::{ACCOUNT}:user/moto) s3:PutObject on arn:aws:s3:::{bucket}/app/terraform.tfstate")),
        "{message}"
    );
    assert!(error["hint"].as_str().unwrap().contains("--allow-lockout"));
    assert_eq!(refused.json()["requests"]["writes"], 0);

    let allowed = project.statebucket(&["apply", "--allow-lockout", "--auto-approve"]);
    allowed.expect_code(0);
    block_on(async {
        let document = project.bucket_policy("eu-west-1", &bucket).await;
        assert_eq!(document["Statement"][0]["Sid"], "StatebucketReadOnlyState");
    });
}

#[test]
fn identity_policies_are_attached_once_to_every_listed_principal() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("identity");
    let env = unique("idp").replace('-', "_");
    let spec = spec_yaml(&bucket, "eu-west-1", "aes256")
        .replace("access:\n", "access:\n  attach_identity_policy: true\n");
    project.spec(&env, &spec);
    let first = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    first.expect_code(0);
    let changes = changed(
        &first.json()["environments"][0],
        "put_identity_policy",
        "principal",
    );
    assert_eq!(
        changes,
        vec![
            format!("arn:aws:iam::{ACCOUNT}:user/terraform-access"),
            format!("arn:aws:iam::{ACCOUNT}:role/terraform-access-role")
        ]
    );
    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    assert_eq!(
        second.json()["requests"]["writes"],
        0,
        "{:#}",
        second.json()["requests"]
    );
    block_on(async {
        let iam = moto.iam_in(ACCOUNT).await;
        let attached = iam
            .get_user_policy()
            .user_name("terraform-access")
            .policy_name(format!("statebucket-{env}"))
            .send()
            .await
            .unwrap();
        assert!(
            attached.policy_document().contains("s3:ListBucket")
                || attached.policy_document().contains("s3%3AListBucket")
        );
    });
    let printed = project.statebucket(&["policy", &env, "--identity"]);
    printed.expect_code(0);
    printed.expect_stdout(&[&format!(
        "arn:aws:s3:::{bucket}/app/terraform.tfstate.tflock"
    )]);
}

#[test]
fn local_state_and_kms_audit_guidance() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("migrate");
    let spec = spec_yaml(
        &bucket,
        "eu-west-1",
        &format!("{{ kms_key: alias/{bucket}, create_key: true }}"),
    )
    .replace("  key: app/", "  terraform_dir: stacks/app\n  key: app/");
    project.spec("dev", &spec);
    project.write("stacks/app/terraform.tfstate", "{\"version\": 4}\n");
    let plan = project.statebucket(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("! stacks/app/terraform.tfstate holds local state"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("`terraform -chdir=stacks/app init -migrate-state -backend-config="),
        "{}",
        plan.stdout
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    assert!(
        project.path("stacks/app/terraform.tfstate").exists(),
        "statebucket never moves or deletes state"
    );
    let doctor = project.statebucket(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("warn  local state       stacks/app/terraform.tfstate holds local state"),
        "{}",
        doctor.stdout
    );
    doctor.expect_stdout(&["ok    kms audit         who decrypted this state: aws cloudtrail lookup-events --region eu-west-1"]);
}

#[test]
fn an_exclusive_policy_is_refused_to_a_bootstrap_identity_that_could_not_read_it_back() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("exclusive");
    let spec = spec_yaml(&bucket, "eu-west-1", "aes256").replace(
        "access:\n",
        "access:\n  exclusive: true\n  break_glass_role: break-glass\n",
    );
    project.spec("dev", &spec);
    // The fake keys are `user/moto`: neither listed nor the break-glass role.
    let refused = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    refused.expect_code(1);
    let document = refused.json();
    let message = document["environments"][0]["error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains(&format!(
            "statement `StatebucketExclusiveStateAccess` denies statebucket (this run) (arn:aws:sts::{ACCOUNT}:user/moto) s3:ListBucket on arn:aws:s3:::{bucket}"
        )),
        "{message}"
    );
    assert_eq!(
        document["requests"]["writes"], 0,
        "{:#}",
        document["requests"]
    );
    assert!(!project.bucket_exists("eu-west-1", &bucket));
}
