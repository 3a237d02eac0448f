//! What every command prints, text and JSON, as snapshots reviewed like code
//! (tests/integration/snapshots/). Values that change from run to run (ports, unique bucket
//! names, key ids, temporary paths, role session names) are replaced by placeholders.
//!
//! After an intended change of output: `INSTA_UPDATE=always cargo test --test integration
//! snapshots`, then review `git diff tests/integration/snapshots/`.

use crate::support::{
    ACCOUNT, Moto, Project, Run, block_on, create_principals, stacks_spec, unique,
};

fn filters(project: &Project, bucket: &str) -> Vec<(String, &'static str)> {
    vec![
        (
            regex_escape(&project.dir.path().display().to_string()),
            "[project]",
        ),
        (regex_escape(bucket), "[bucket]"),
        (r"127\.0\.0\.1:\d+".to_owned(), "127.0.0.1:[port]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".to_owned(),
            "[uuid]",
        ),
        (r"alias/snapshots-key-\d+-\d+".to_owned(), "alias/[key]"),
        (r"assume-role-from-profile-\d+".to_owned(), "[session]"),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z".to_owned(),
            "[time]",
        ),
        (
            r"statebucket-doctor-\d+-\d+".to_owned(),
            "statebucket-doctor-[probe]",
        ),
    ]
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The run as uv's snapshots show one: exit code, stdout, stderr.
fn shown(run: &Run) -> String {
    format!(
        "exit_code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        run.code, run.stdout, run.stderr
    )
}

macro_rules! snapshot {
    ($filters:expr, $name:expr, $run:expr) => {{
        let mut settings = insta::Settings::clone_current();
        for (pattern, replacement) in $filters.iter() {
            settings.add_filter(pattern, *replacement);
        }
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!($name, shown(&$run)));
    }};
}

#[test]
fn every_command_text_and_json() {
    // A moto of its own: request counts depend on what else the account holds (the search
    // for a key an interrupted run left lists every key).
    let moto = Moto::start(&[]);
    block_on(async {
        let iam = moto.iam_in(ACCOUNT).await;
        create_principals(&iam, &["terraform-access"], &["terraform-access-role"]).await;
    });
    let project = Project::with_moto(&moto);
    let bucket = unique("snapshots");
    let alias = format!("alias/{}", unique("snapshots-key"));
    project.spec("central", &stacks_spec(&bucket, &alias));
    project.write(
        "broken/bad.yaml",
        "region: eu-west-9\nprofile: terraform\nbucket: { name: My_Bucket }\naccess: { users: [a] }\nbackend: { kee: x }\n",
    );
    let filters = filters(&project, &bucket);
    let run = |args: &[&str]| project.statebucket(args);

    snapshot!(filters, "validate", run(&["validate"]));
    snapshot!(
        filters,
        "validate_json",
        run(&["validate", "--output", "json"])
    );
    snapshot!(
        filters,
        "validate_invalid",
        run(&["validate", "broken/bad.yaml"])
    );
    snapshot!(
        filters,
        "validate_invalid_json",
        run(&["validate", "broken/bad.yaml", "--output", "json"])
    );
    snapshot!(filters, "render_stdout", run(&["render", "--stdout"]));
    snapshot!(
        filters,
        "render_stdout_json",
        run(&["render", "--stdout", "--output", "json"])
    );
    snapshot!(filters, "policy", run(&["policy", "central"]));
    snapshot!(
        filters,
        "policy_identity_reader_json",
        run(&[
            "policy",
            "central",
            "--identity",
            "--stack",
            "app",
            "--reader",
            "--output",
            "json"
        ])
    );
    snapshot!(
        filters,
        "policy_usage_error",
        run(&["policy", "central", "--identity"])
    );
    snapshot!(filters, "plan_from_nothing", run(&["plan"]));
    snapshot!(
        filters,
        "plan_from_nothing_json",
        run(&["plan", "--output", "json"])
    );
    snapshot!(filters, "apply", run(&["apply", "--auto-approve"]));
    snapshot!(filters, "check_in_sync", run(&["check"]));
    snapshot!(
        filters,
        "check_in_sync_json",
        run(&["check", "--output", "json"])
    );
    snapshot!(filters, "doctor", run(&["doctor"]));
    let versions = crate::support::put_states(&project, &bucket, "app/terraform.tfstate", 3);
    snapshot!(
        filters,
        "state_versions",
        run(&[
            "state", "versions", "central", "--stack", "app", "--limit", "2"
        ])
    );
    snapshot!(
        filters,
        "state_restore",
        run(&[
            "state",
            "restore",
            "central",
            &versions[0],
            "--stack",
            "app",
            "--auto-approve"
        ])
    );
    snapshot!(
        filters,
        "state_restore_no_such_version",
        run(&[
            "state",
            "restore",
            "central",
            &versions[0],
            "--stack",
            "network",
            "--auto-approve"
        ])
    );
    snapshot!(
        filters,
        "state_restore_stack_usage",
        run(&["state", "restore", "central", &versions[0]])
    );
    snapshot!(filters, "plan_broken", run(&["plan", "broken/bad.yaml"]));
    snapshot!(
        filters,
        "plan_broken_json",
        run(&["plan", "broken/bad.yaml", "--output", "json"])
    );
    snapshot!(
        filters,
        "usage_error",
        run(&["--profile", "admin", "apply"])
    );
}

/// backend.hcl for every authentication attribute the backend documents: an assume_role
/// map, a web identity (no profile), forbidden_account_ids with STS, shared-file and
/// endpoint settings. Offline, so the snapshot holds exactly what Terraform will read.
#[test]
fn backend_files_for_each_way_to_authenticate() {
    let project = Project::new();
    project.spec(
        "auth",
        "\
region: eu-west-1
bucket: { name: example-terraform-state-auth }
access: { roles: [terraform-access-role] }
stack_defaults:
  profile: terraform
stacks:
  cross-account:
    key: cross-account/terraform.tfstate
    assume_role:
      role_arn: arn:aws:iam::210987654321:role/terraform-state
      external_id: tenant-42
      session_name: terraform-ci
      duration: 1h
      tags: { team: platform, \"cost:center\": \"7\" }
      transitive_tag_keys: [team]
      source_identity: alice
      policy_arns: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]
      policy: '{\"Version\": \"2012-10-17\", \"Statement\": []}'
  github:
    key: github/terraform.tfstate
    web_identity:
      role_arn: arn:aws:iam::123456789012:role/github-terraform
      token_file: /tmp/web-identity-token
      session_name: github-actions
      duration: 30m
  guarded:
    key: guarded/terraform.tfstate
    forbidden_account_ids: [\"210987654321\"]
    sts_region: eu-central-1
    shared_config_files: [~/.aws/config, /etc/aws/config]
    shared_credentials_files: [~/.aws/credentials]
    use_fips_endpoint: true
    use_dualstack_endpoint: true
",
    );
    project.spec(
        "minio",
        "\
region: us-east-1
profile: terraform
endpoint: https://minio.internal:9000
bucket: { name: example-terraform-state-minio }
access: { users: [terraform] }
backend: { key: app/terraform.tfstate }
compat:
  lacks: [iam, kms, public_access_block, ownership_controls, tagging]
  skip_s3_checksum: true
",
    );
    let filters = filters(&project, "example-terraform-state-auth");
    snapshot!(
        filters,
        "render_authentication",
        project.statebucket(&["render", "--stdout"])
    );
    // A real HCL parser reads every file as Terraform would.
    project.statebucket(&["render"]).expect_code(0);
    let files: Vec<_> = ["cross-account", "github", "guarded"]
        .iter()
        .map(|stack| project.path(&format!("environments/auth/{stack}/backend.hcl")))
        .collect();
    let parsed = crate::opentofu::parse_hcl(&files);
    let role = &parsed[files[0].to_str().unwrap()]["assume_role"];
    assert_eq!(role["tags"]["\"cost:center\""], "\"7\"", "{parsed:#}");
    assert_eq!(
        parsed[files[1].to_str().unwrap()]["assume_role_with_web_identity"]["web_identity_token_file"],
        "\"/tmp/web-identity-token\""
    );
}

/// The failover files beside each stack's backend.hcl, for a bucket with a replica: the
/// replica's bucket, region and key, the same key, profile and lock (the lockfile: a
/// DynamoDB table lives in the primary's region). Offline, exactly what Terraform reads.
#[test]
fn failover_files_for_a_bucket_with_a_replica() {
    let project = Project::new();
    project.spec(
        "central",
        "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: example-terraform-state-central
  encryption: { kms_key: alias/central-state, create_key: true }
  replica:
    region: eu-central-1
    encryption: { kms_key: alias/central-state-replica, create_key: true }
    object_lock: { mode: compliance, days: 14 }
access: { users: [terraform-access] }
stacks:
  network:
    key: network/terraform.tfstate
    lock: both
  app:
    key: app/terraform.tfstate
    workspace_key_prefix: workspaces
",
    );
    let filters = filters(&project, "example-terraform-state-central");
    snapshot!(
        filters,
        "render_failover",
        project.statebucket(&["render", "--stdout"])
    );
    project.statebucket(&["render"]).expect_code(0);
    let files: Vec<_> = ["network", "app"]
        .iter()
        .map(|stack| project.path(&format!("environments/central/{stack}/backend.dr.hcl")))
        .collect();
    let parsed = crate::opentofu::parse_hcl(&files);
    for file in &files {
        let config = &parsed[file.to_str().unwrap()];
        assert_eq!(
            config["bucket"],
            "\"example-terraform-state-central-replica\""
        );
        assert_eq!(config["region"], "\"eu-central-1\"");
        assert_eq!(config["use_lockfile"], true, "{config:#}");
        assert!(config.get("dynamodb_table").is_none(), "{config:#}");
    }
}
