//! S3-compatible stores: `compat.lacks` turns off what the store does not implement, with a
//! note each and not one request for it; backend.hcl skips Terraform's AWS-only checks; and
//! doctor finds out whether the store takes the checksum header Terraform sends.

use crate::support::{ACCOUNT, Moto, Project, Proxy, Spec, terraform_dir, unique};

fn compat_spec(bucket: &str, compat: &str) -> String {
    Spec::new(bucket)
        .name_only()
        .then(&format!("compat:\n{compat}"))
        .yaml()
}

/// Profile `terraform` assumes the listed role, so doctor's probes run as a principal the
/// bucket policy grants.
fn terraform_as_listed_role(project: &Project) {
    project.write_aws_profiles(&[
        (
            "terraform",
            Some(&format!(
                "arn:aws:iam::{ACCOUNT}:role/terraform-access-role"
            )),
        ),
        ("admin", None),
    ]);
}

/// Operations an S3-compatible store without these features would refuse.
const NEVER_SENT: &[&str] = &[
    "GetCallerIdentity",
    "GetUser",
    "GetRole",
    "DescribeKey",
    "ListAliases",
    "CreateKey",
    "GetPublicAccessBlock",
    "PutPublicAccessBlock",
    "GetBucketOwnershipControls",
    "PutBucketOwnershipControls",
    "GetBucketTagging",
    "PutBucketTagging",
];

fn assert_never_sent(document: &serde_json::Value) {
    let operations = &document["requests"]["by_operation"];
    for operation in NEVER_SENT {
        assert!(
            operations.get(*operation).is_none(),
            "{operation} was sent: {operations:#}"
        );
    }
}

#[test]
fn what_the_store_lacks_is_never_asked_for_and_terraform_still_initialises() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    terraform_as_listed_role(&project);
    let bucket = unique("compat");
    project.spec(
        "dev",
        &compat_spec(
            &bucket,
            "  lacks: [iam, kms, public_access_block, ownership_controls, tagging, sts]\n",
        ),
    );
    let plan = project.statebucket(&["plan", "--output", "json"]);
    plan.expect_code(0);
    let plan = plan.json();
    assert_never_sent(&plan);
    let notes = plan["environments"][0]["notes"].to_string();
    for lacking in [
        "no public access block",
        "no object ownership controls",
        "no bucket tagging",
        "no IAM",
        "no STS",
    ] {
        assert!(notes.contains(lacking), "{lacking}: {notes}");
    }
    let apply = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    apply.expect_code(0);
    assert_never_sent(&apply.json());
    let check = project.statebucket(&["check", "--output", "json"]);
    check.expect_code(0);
    assert_never_sent(&check.json());

    let backend = project.read("environments/dev/backend.hcl");
    for line in [
        "skip_credentials_validation = true",
        "skip_region_validation      = true",
        "skip_requesting_account_id  = true",
        "skip_metadata_api_check     = true",
        "use_path_style              = true",
    ] {
        assert!(backend.contains(line), "{line}:\n{backend}");
    }
    assert!(!backend.contains("allowed_account_ids"), "{backend}");
    let workdir = terraform_dir("");
    project.terraform_init_and_apply_dev(workdir.path());

    let doctor = project.statebucket(&["doctor", "--output", "json"]);
    doctor.expect_code(0);
    let document = doctor.json();
    assert_never_sent(&document);
    let checks = document["environments"][0]["checks"].as_array().unwrap();
    let checksum = checks
        .iter()
        .find(|check| check["check"] == "checksum")
        .unwrap_or_else(|| panic!("{document:#}"));
    assert_eq!(checksum["status"], "ok", "{document:#}");
    let identity = checks
        .iter()
        .find(|check| check["check"] == "identity")
        .unwrap_or_else(|| panic!("{document:#}"));
    assert_eq!(identity["status"], "skip", "{document:#}");
}

#[test]
fn a_store_without_sts_needs_the_account_in_the_spec() {
    let project = Project::new();
    let spec = compat_spec("compat-no-sts", "  lacks: [sts]\n")
        .replace(&format!("account_id: \"{ACCOUNT}\"\n"), "");
    project.spec("dev", &spec);
    let run = project.statebucket(&["validate"]);
    run.expect_code(1);
    run.expect_stderr(&["`account_id` is required"]);
}

#[test]
fn doctor_names_skip_s3_checksum_for_a_store_that_rejects_the_checksum_header() {
    let moto = Moto::shared();
    let proxy = Proxy::start(moto, &["--reject-header", "x-amz-checksum-sha256"]);
    let mut project = Project::with_moto(moto);
    project.endpoint = Some(proxy.endpoint.clone());
    terraform_as_listed_role(&project);
    let bucket = unique("checksum");
    project.spec("dev", &compat_spec(&bucket, "  lacks: [kms]\n"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let doctor = project.statebucket(&["doctor", "--output", "json"]);
    doctor.expect_code(1);
    let document = doctor.json();
    let checks = document["environments"][0]["checks"].as_array().unwrap();
    let checksum = checks
        .iter()
        .find(|check| check["check"] == "checksum")
        .unwrap_or_else(|| panic!("{document:#}"));
    assert_eq!(checksum["status"], "fail", "{document:#}");
    assert!(
        checksum["fix"]
            .as_str()
            .unwrap()
            .contains("skip_s3_checksum"),
        "{document:#}"
    );
    // Terraform itself is refused by this store until backend.hcl skips the checksum.
    let workdir = terraform_dir("");
    let backend = project.path("environments/dev/backend.hcl");
    project
        .terraform("init", workdir.path(), Some(&backend))
        .expect_code(0);
    let refused = project.terraform("apply", workdir.path(), None);
    assert_ne!(refused.code, 0, "{}", refused.stdout);

    project.spec(
        "dev",
        &compat_spec(&bucket, "  lacks: [kms]\n  skip_s3_checksum: true\n"),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    assert!(
        project
            .read("environments/dev/backend.hcl")
            .contains("skip_s3_checksum            = true")
    );
    let doctor = project.statebucket(&["doctor", "--output", "json"]);
    doctor.expect_code(0);
    project
        .terraform("reinit", workdir.path(), Some(&backend))
        .expect_code(0);
    let apply = project.terraform("apply", workdir.path(), None);
    apply.expect_code(0);
}
