//! The incident this product exists for, reproduced on moto in its IAM-enforcing mode with
//! real Terraform: `terraform init` fails with 403 although the Terraform user exists,
//! because backend.hcl has no `profile` (the backend falls back to `[default]`, another
//! identity) and the Terraform user has no grant. `doctor` names every cause; after the spec
//! lists both principals, sets the profile and attaches the identity policy, it works.
//!
//! moto enforces identity policies but not bucket-policy Allows, so access here comes from
//! the identity policy statebucket attaches; the bucket-policy logic has unit tests.

use crate::support::{
    ACCOUNT, FAKE_ACCESS_KEY, FAKE_SECRET_KEY, Moto, Project, block_on, create_principals,
    terraform_dir, unique, users_with_keys,
};

/// Users with access keys; `admin` may do anything.
async fn iam_setup(moto: &Moto) -> Vec<(String, String, String)> {
    let iam = moto.iam_in(ACCOUNT).await;
    create_principals(&iam, &[], &["terraform-access-role"]).await;
    users_with_keys(
        moto,
        &[
            ("admin", "admin"),
            ("default", "personal"),
            ("terraform", "terraform-access"),
        ],
    )
    .await
}

const SPEC_ONLY_ROLE: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: BUCKET
access:
  roles: [terraform-access-role]
backend:
  key: app/terraform.tfstate
";

#[test]
fn the_403_incident_is_diagnosed_and_fixed() {
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "100000")]);
    let keys = block_on(iam_setup(&moto));
    let _ = (FAKE_ACCESS_KEY, FAKE_SECRET_KEY);
    moto.enforce_iam();

    let project = Project::with_moto(&moto);
    let profiles: Vec<(&str, &str, &str)> = keys
        .iter()
        .map(|(p, k, s)| (p.as_str(), k.as_str(), s.as_str()))
        .collect();
    project.write_key_profiles(&profiles);
    let bucket = unique("incident");
    project.spec("dev", &SPEC_ONLY_ROLE.replace("BUCKET", &bucket));

    // Bootstrapped by an admin; the policy names only the role.
    project
        .statebucket(&["apply", "--profile", "admin", "--auto-approve"])
        .expect_code(0);
    // The hand-written backend.hcl of the post-mortem: no `profile` line.
    let generated = project.read("environments/dev/backend.hcl");
    let without_profile: String = generated
        .lines()
        .filter(|line| !line.starts_with("profile"))
        .map(|line| format!("{line}\n"))
        .collect();
    project.write("environments/dev/backend.hcl", &without_profile);

    let workdir = terraform_dir("");
    project.terraform_init_refused_as_in_the_incident(workdir.path());

    let doctor = project.statebucket(&[
        "doctor",
        "--profile",
        "admin",
        "--terraform-dir",
        workdir.path().to_str().unwrap(),
    ]);
    doctor.expect_code(1);
    doctor.expect_stdout(&[
        &format!(
            "ok    identity          arn:aws:iam::{ACCOUNT}:user/personal (account {ACCOUNT}), from the `default` profile"
        ),
        "FAIL  profile           backend.hcl has no `profile` line, so the S3 backend uses the `default` profile (or container/instance credentials) although 3 profiles exist (admin, default, terraform)",
        "fix: add `profile = \"terraform\"` to backend.hcl",
        &format!(
            "FAIL  listed in access  arn:aws:iam::{ACCOUNT}:user/personal is not among the users and roles of environments/dev.yaml"
        ),
        "fix: add `personal` to `access.users`",
        "FAIL  read state        HeadObject",
        "HTTP 403",
    ]);

    // The fix: both principals, the profile, and the identity policy attached.
    let fixed = SPEC_ONLY_ROLE.replace("BUCKET", &bucket).replace(
        "access:\n",
        "access:\n  users: [terraform-access]\n  attach_identity_policy: true\n",
    );
    project.spec("dev", &fixed);
    project
        .statebucket(&["apply", "--profile", "admin", "--auto-approve"])
        .expect_code(0);
    assert!(
        project
            .read("environments/dev/backend.hcl")
            .contains("profile             = \"terraform\"\n")
    );
    // A fresh working directory: the old one would ask for `init -reconfigure`.
    let workdir = terraform_dir("");
    project.terraform_init_and_apply_dev(workdir.path());

    let healthy = project.statebucket(&["doctor", "--profile", "admin"]);
    healthy.expect_code(0);
    healthy.expect_stdout(&["Doctor: every check passed."]);
    healthy.expect_stdout(&[&format!(
        "ok    identity          arn:aws:iam::{ACCOUNT}:user/terraform-access"
    )]);
    healthy.expect_stdout(&["ok    release lock"]);

    // Nothing but the state is left in the bucket: the probe lock was removed.
    let keys = block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &keys[0].1, &keys[0].2, None, None, "admin",
            ))
            .endpoint_url(&moto.endpoint)
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let listing = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
        listing
            .contents()
            .iter()
            .map(|object| object.key().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    });
    assert_eq!(keys, vec!["app/terraform.tfstate".to_owned()]);
}
