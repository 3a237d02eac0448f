//! The tooling around a spec file: shell completions and the manual page.

use crate::support::{Project, manifest_dir, to_run, venv_python};

/// Runs tests/support/validate_json.py on `documents` against the committed spec schema.
pub fn validate_against_spec_schema(
    expect_invalid: bool,
    documents: &[std::path::PathBuf],
) -> String {
    let mut command = std::process::Command::new(venv_python());
    command.arg(manifest_dir().join("tests/support/validate_json.py"));
    if expect_invalid {
        command.arg("--invalid");
    }
    let run = to_run(
        command
            .arg(manifest_dir().join("schema/statebucket.schema.json"))
            .args(documents)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.stdout
}

#[test]
fn init_scaffolds_a_valid_spec_and_never_overwrites_one() {
    let project = Project::new();
    let run = project.statebucket(&["init", "--output", "json"]);
    run.expect_code(0);
    let document = run.json();
    let statuses: Vec<(String, String)> = document["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            (
                file["path"].as_str().unwrap().to_owned(),
                file["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("environments/dev.yaml", "written"),
            ("policies/state-access.json", "written"),
            ("schema/statebucket.schema.json", "written"),
        ]
        .map(|(path, status)| (path.to_owned(), status.to_owned()))
    );
    let scaffold = project.read("environments/dev.yaml");
    assert!(scaffold.contains("FILL IN"), "{scaffold}");
    assert_eq!(
        project.read("policies/state-access.json"),
        std::fs::read_to_string(manifest_dir().join("policies/state-access.json")).unwrap()
    );
    assert_eq!(
        project.read("schema/statebucket.schema.json"),
        std::fs::read_to_string(manifest_dir().join("schema/statebucket.schema.json")).unwrap()
    );
    project
        .statebucket(&[
            "init",
            "prod",
            "--region",
            "ap-northeast-1",
            "--bucket",
            "my-org-terraform-state-prod",
            "--profile",
            "terraform-prod",
            "--account-id",
            "123456789012",
            "--user",
            "terraform",
            "--role",
            "arn:aws:iam::123456789012:role/ci/terraform",
            "--kms",
        ])
        .expect_code(0);
    let prod = project.read("environments/prod.yaml");
    assert!(
        prod.contains("kms_key: alias/my-org-terraform-state-prod") && !prod.contains("FILL IN"),
        "{prod}"
    );
    let validated = project.statebucket(&["validate", "--output", "json"]);
    validated.expect_code(0);
    assert_eq!(validated.json()["specs"].as_array().map(Vec::len), Some(2));
    validate_against_spec_schema(
        false,
        &[
            project.path("environments/dev.yaml"),
            project.path("environments/prod.yaml"),
        ],
    );
    // The policy `init prod` would attach names both principals, the role by its path.
    let policy = project.statebucket(&["policy", "prod"]);
    policy.expect_code(0);
    policy.expect_stdout(&["role/ci/terraform"]);

    project.write("environments/dev.yaml", "# mine\n");
    let again = project.statebucket(&["init"]);
    again.expect_code(1);
    again.expect_stderr(&["environments/dev.yaml exists"]);
    assert_eq!(project.read("environments/dev.yaml"), "# mine\n");

    let bad = project.statebucket(&["init", "qa", "--bucket", "My_Bucket"]);
    bad.expect_code(64);
    bad.expect_stderr(&["--bucket"]);
    assert!(!project.path("environments/qa.yaml").exists());

    // A replica in a second region, each bucket with a key of its own.
    project
        .statebucket(&[
            "init",
            "dr",
            "--region",
            "eu-west-1",
            "--bucket",
            "my-org-terraform-state-dr",
            "--kms",
            "--replica-region",
            "eu-central-1",
        ])
        .expect_code(0);
    let dr = project.read("environments/dr.yaml");
    for expected in [
        "  replica:\n",
        "    region: eu-central-1",
        "    name: my-org-terraform-state-dr-replica",
        "kms_key: alias/my-org-terraform-state-dr-replica, create_key: true",
    ] {
        assert!(dr.contains(expected), "{expected} in\n{dr}");
    }
    project.statebucket(&["validate", "dr"]).expect_code(0);
    validate_against_spec_schema(false, &[project.path("environments/dr.yaml")]);
    let same = project.statebucket(&[
        "init",
        "same",
        "--region",
        "eu-west-1",
        "--replica-region",
        "eu-west-1",
    ]);
    same.expect_code(64);
    same.expect_stderr(&["own region"]);
    assert!(!project.path("environments/same.yaml").exists());
}

#[test]
fn a_real_json_schema_validator_accepts_the_examples_and_refuses_what_a_schema_can_express() {
    let examples = crate::support::yaml_files(&manifest_dir().join("environments"));
    assert!(examples.len() >= 3, "{examples:?}");
    validate_against_spec_schema(false, &examples);
    for example in &examples {
        let text = std::fs::read_to_string(example).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/statebucket.schema.json\n"),
            "{} lacks the modeline that points editors at the schema",
            example.display()
        );
    }
    // Unknown keys, wrong types, bad enum values, missing keys, patterns: the part of the
    // malformed corpus a schema can express (naming rules, regions and cross-field rules are
    // the validator's alone).
    let expressible = [
        "unknown_top_key",
        "unknown_bucket_key",
        "secret_key_in_spec",
        "account_is_boolean",
        "key_is_number",
        "not_a_mapping",
        "lock_mode_typo",
        "kms_without_key",
        "lifecycle_zero_days",
        "missing_bucket",
        "missing_region",
        "missing_backend_key",
        "bucket_uppercase",
        "bucket_too_short",
        "account_too_short",
        "endpoint_without_scheme",
        "profile_with_space",
        "key_leading_slash",
        "tag_with_aws_prefix",
    ];
    let corpus: Vec<_> = expressible
        .iter()
        .map(|name| manifest_dir().join(format!("tests/malformed/{name}.yaml")))
        .collect();
    let refused = validate_against_spec_schema(true, &corpus);
    assert_eq!(
        refused.matches(": refused: ").count(),
        expressible.len(),
        "{refused}"
    );
}

#[test]
fn bash_sources_the_completion_script_and_completes_commands_and_options() {
    let project = Project::new();
    let run = project.statebucket(&["completions", "bash"]);
    run.expect_code(0);
    let script = project.path("statebucket.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    // `set -e`: a script bash cannot source fails the test; the two completions show it
    // completes what the binary accepts.
    let completed = to_run(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(
                r#"set -euo pipefail
source "$1"
complete -p statebucket
COMP_WORDS=(statebucket st); COMP_CWORD=1; COMP_LINE="statebucket st"; COMP_POINT=14
_statebucket statebucket st statebucket
echo "command: ${COMPREPLY[*]}"
COMP_WORDS=(statebucket apply --lock); COMP_CWORD=2; COMP_LINE="statebucket apply --lock"; COMP_POINT=24
_statebucket statebucket --lock apply
echo "option: ${COMPREPLY[*]}""#,
            )
            .arg("bash")
            .arg(&script)
            .output()
            .unwrap(),
    );
    completed.expect_code(0);
    assert!(
        completed.stdout.contains("command: state")
            && completed.stdout.contains("option: --lock-timeout"),
        "{}{}",
        completed.stdout,
        completed.stderr
    );
    for shell in ["zsh", "fish", "powershell"] {
        let run = project.statebucket(&["completions", shell]);
        run.expect_code(0);
        assert!(
            run.stdout.contains("statebucket"),
            "{shell}: {}",
            run.stdout
        );
    }
}

#[test]
fn the_manual_page_renders_with_a_section_per_command() {
    let project = Project::new();
    let run = project.statebucket(&["man"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with(".ie") || run.stdout.contains(".TH statebucket"));
    let page = project.path("statebucket.1");
    std::fs::write(&page, &run.stdout).unwrap();
    // man(1) formats the roff; a page it cannot format fails here, and every command has
    // its section.
    let rendered = to_run(
        std::process::Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .output()
            .unwrap(),
    );
    rendered.expect_code(0);
    for command in [
        "validate",
        "plan",
        "apply",
        "check",
        "doctor",
        "state",
        "completions",
    ] {
        assert!(
            rendered.stdout.contains(&format!("statebucket-{command}")),
            "no section for {command}: {}",
            rendered.stdout
        );
    }
    assert!(rendered.stderr.trim().is_empty(), "{}", rendered.stderr);
}
