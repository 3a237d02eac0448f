//! Commands that never touch AWS: validate, render, policy, and bad input refused before
//! any request.

use crate::support::{Moto, Project, spec_yaml, unique};

const THREE_MISTAKES: &str = "\
region: eu-west1
profile: terraform
bucket:
  name: My_State_Bucket
access:
  users: [terraform-access]
backend:
  key: app/terraform.tfstate
  fiel: x.hcl
";

#[test]
fn validate_reports_every_problem_with_line_and_column() {
    let project = Project::new();
    project.spec("dev", THREE_MISTAKES);
    let run = project.statebucket(&["validate"]);
    run.expect_code(1);
    run.expect_stderr(&[
        "environments/dev.yaml:1:9: error: `eu-west1` is not an AWS region\n  hint: did you mean `eu-west-1`?",
        "environments/dev.yaml:4:9: error: bucket name `My_State_Bucket` contains `M`",
        "environments/dev.yaml:9:3: error: unknown key `fiel` in `backend`\n  hint: did you mean `file`?",
        "3 problems in 1 file; nothing was sent to AWS",
    ]);
    assert_eq!(run.stdout, "");
}

#[test]
fn validate_json_lists_diagnostics() {
    let project = Project::new();
    project.spec("dev", THREE_MISTAKES);
    let run = project.statebucket(&["--output", "json", "validate"]);
    run.expect_code(1);
    let document = run.json();
    assert_eq!(document["valid"], false);
    let diagnostics = document["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 3);
    assert_eq!(diagnostics[0]["line"], 1);
    assert_eq!(diagnostics[0]["column"], 9);
    assert_eq!(diagnostics[0]["file"], "environments/dev.yaml");
}

#[test]
fn the_shipped_examples_are_valid_and_render_byte_identically() {
    let project = Project::new();
    for example in ["dev", "prod"] {
        let text = std::fs::read_to_string(
            crate::support::manifest_dir().join(format!("environments/{example}.yaml")),
        )
        .unwrap();
        project.spec(example, &text);
    }
    project.statebucket(&["validate"]).expect_code(0);
    let first = project.statebucket(&["render"]);
    first.expect_code(0);
    assert_eq!(
        first.stdout,
        "wrote environments/dev/backend.hcl\nwrote environments/prod/backend.hcl\nwrote environments/prod/backend.dr.hcl\n"
    );
    let dev = project.read("environments/dev/backend.hcl");
    let prod = project.read("environments/prod/backend.hcl");
    let failover = project.read("environments/prod/backend.dr.hcl");
    let second = project.statebucket(&["render"]);
    assert_eq!(
        second.stdout,
        "unchanged environments/dev/backend.hcl\nunchanged environments/prod/backend.hcl\nunchanged environments/prod/backend.dr.hcl\n"
    );
    assert_eq!(project.read("environments/dev/backend.hcl"), dev);
    assert_eq!(project.read("environments/prod/backend.hcl"), prod);
    assert_eq!(project.read("environments/prod/backend.dr.hcl"), failover);
    // Several files are headed and kept apart; one prints as it is (to pipe into a file).
    let stdout = project.statebucket(&["render", "--stdout"]);
    assert_eq!(
        stdout.stdout,
        format!(
            "==> environments/dev/backend.hcl <==\n{dev}\n==> environments/prod/backend.hcl <==\n{prod}\n==> environments/prod/backend.dr.hcl <==\n{failover}"
        )
    );
    assert!(failover.contains("region              = \"eu-central-1\"\n"));
    let one = project.statebucket(&["render", "--stdout", "dev"]);
    assert_eq!(one.stdout, dev);
    assert!(dev.contains("profile             = \"terraform\"\n"));
    assert!(prod.contains("kms_key_id          = \"alias/terraform-state-prod\"\n"));
    assert!(!dev.contains("access_key") && !dev.contains("secret"));
}

#[test]
fn policy_prints_the_document_for_users_and_roles() {
    let project = Project::new();
    project.spec("dev", &spec_yaml("policy-bucket", "eu-west-1", "aes256"));
    let run = project.statebucket(&["policy", "dev"]);
    run.expect_code(0);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let statements = document["Statement"].as_array().unwrap();
    // List, read/write, delete a workspace's state, lock files, and the TLS-only deny.
    assert_eq!(statements.len(), 5);
    let principals = &statements[0]["Principal"]["AWS"];
    assert_eq!(
        principals,
        &serde_json::json!([
            "arn:aws:iam::123456789012:user/terraform-access",
            "arn:aws:iam::123456789012:role/terraform-access-role"
        ])
    );
    assert_eq!(statements[4]["Sid"], "StatebucketDenyInsecureTransport");
}

#[test]
fn a_bad_template_is_located_and_refused() {
    let project = Project::new();
    let spec = spec_yaml("template-bucket", "eu-west-1", "aes256").replace(
        "access:\n",
        "access:\n  policy_template: policies/custom.json\n",
    );
    project.spec("dev", &spec);
    project.write("policies/custom.json", "{\n  \"Statement\": [\n    {\"Sid\": \"StatebucketX\", \"Resource\": \"{{bucket_arm}}\"}\n  ]\n}\n");
    let run = project.statebucket(&["validate"]);
    run.expect_code(1);
    run.expect_stderr(&["policies/custom.json:3:42: error: unknown placeholder `{{bucket_arm}}`\n  hint: did you mean `{{bucket_arn}}`?"]);
}

#[test]
fn two_spec_files_naming_one_bucket_are_refused_before_any_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let project = Project::new();
    let spec = spec_yaml("shared-bucket", "eu-west-1", "aes256");
    project.spec("a", &spec);
    project.spec(
        "b",
        &spec.replace("app/terraform.tfstate", "other/terraform.tfstate"),
    );
    let commands: [&[&str]; 3] = [
        &["validate"],
        &["plan", "--endpoint-url", &endpoint],
        &["apply", "--endpoint-url", &endpoint, "--auto-approve"],
    ];
    for arguments in commands {
        let command = arguments[0];
        let run = project.statebucket(arguments);
        run.expect_code(1);
        assert!(
            run.stderr.contains("environments/b.yaml:5:9: error: environments/a.yaml and environments/b.yaml both manage bucket `shared-bucket`; each would rewrite the other's grants"),
            "{command}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("hint: one spec file is one bucket: make their states stacks of one spec (`stacks:` in environments/a.yaml, one stack per state) and remove environments/b.yaml"),
            "{command}: {}",
            run.stderr
        );
    }
    assert!(
        listener.accept().is_err(),
        "two specs on one bucket must not lead to any request"
    );
}

#[test]
fn bad_input_changes_nothing_in_aws() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("bad-input");
    let spec = spec_yaml(&bucket, "eu-west-1", "aes256").replace(
        "profile: terraform",
        "profile: terraform\nsecret_key: hunter2hunter2",
    );
    project.spec("dev", &spec);
    let run = project.statebucket(&["apply", "--auto-approve"]);
    run.expect_code(1);
    run.expect_stderr(&["`secret_key` holds a credential"]);
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
    let exists = project.bucket_exists("eu-west-1", &bucket);
    assert!(!exists, "a bad spec must not create the bucket");
}

#[test]
fn no_specs_is_a_clear_error() {
    let project = Project::new();
    let run = project.statebucket(&["plan"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("no spec files (*.yaml) in `environments/`"),
        "{}",
        run.stderr
    );
    let missing = project.statebucket(&["validate", "nope"]);
    missing.expect_code(1);
    assert!(
        missing
            .stderr
            .contains("environments/nope.yaml:1:1: error: cannot read the file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let project = Project::new();
    let run = project.statebucket(&["--help"]);
    run.expect_code(0);
    run.expect_stdout(&[
        "Examples:",
        "Exit codes: 0 success / in sync, 1 error, 2 changes present",
    ]);
}

#[test]
fn every_shipped_example_is_valid() {
    let project = Project::new();
    let root = crate::support::manifest_dir();
    let run = project.statebucket(&["--chdir", root.to_str().unwrap(), "validate"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "3 specs valid: environments/dev.yaml, environments/platform.yaml, environments/prod.yaml\n"
    );
}
