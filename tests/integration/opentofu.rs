//! OpenTofu client-side state encryption: an encryption file beside each backend.hcl, in
//! two phases, reconciled like backend.hcl, with its key's grants in the identity policy.
//! Every generated file is read back by a real HCL parser (python-hcl2).

use std::path::PathBuf;

use crate::support::{
    ACCOUNT, Moto, Project, change_kinds, manifest_dir, to_run, unique, venv_python,
};

/// The files as python-hcl2 parses them, by path.
pub fn parse_hcl(files: &[PathBuf]) -> serde_json::Value {
    let run = to_run(
        std::process::Command::new(venv_python())
            .arg(manifest_dir().join("tests/support/parse_hcl.py"))
            .args(files)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

/// python-hcl2 keeps string literals quoted.
fn unquoted(value: &serde_json::Value) -> String {
    value
        .as_str()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

fn spec(bucket: &str, alias: &str, phase: &str) -> String {
    format!(
        "\
region: eu-west-1
account_id: \"{ACCOUNT}\"
profile: terraform
bucket:
  name: {bucket}
  encryption: {{ kms_key: {alias}, create_key: true }}
access:
  users: [terraform-access]
  readers: {{ roles: [terraform-access-role] }}
stacks:
  network: {{ key: network/terraform.tfstate }}
  app: {{ key: app/terraform.tfstate }}
opentofu:
  encryption: {{ phase: {phase} }}
"
    )
}

#[test]
fn encryption_files_are_written_in_two_phases_and_parse_as_hcl() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("tofu");
    let alias = format!("alias/{}", unique("tofu-key"));
    project.spec("central", &spec(&bucket, &alias, "migrate"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);

    let files: Vec<PathBuf> = ["network", "app"]
        .iter()
        .map(|stack| project.path(&format!("environments/central/{stack}/encryption.hcl")))
        .collect();
    let parsed = parse_hcl(&files);
    let backend = project.read("environments/central/network/backend.hcl");
    let key_arn = backend
        .lines()
        .find_map(|line| line.strip_prefix("kms_key_id"))
        .map(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .expect("backend.hcl names the key");
    for file in &files {
        let body = &parsed[file.to_str().unwrap()];
        let provider = &body["key_provider"][0]["\"aws_kms\""]["\"state\""];
        assert_eq!(unquoted(&provider["kms_key_id"]), key_arn, "{body:#}");
        assert_eq!(unquoted(&provider["key_spec"]), "AES_256");
        assert_eq!(unquoted(&provider["region"]), "eu-west-1");
        assert_eq!(unquoted(&provider["profile"]), "terraform");
        assert_eq!(
            body["method"][0]["\"aes_gcm\""]["\"state\""]["keys"],
            "${key_provider.aws_kms.state}"
        );
        for target in ["state", "plan"] {
            assert_eq!(
                body[target][0]["fallback"][0]["method"], "${method.unencrypted.migration}",
                "{target}: {body:#}"
            );
        }
    }

    // Phase two: only the encryption files change.
    project.spec("central", &spec(&bucket, &alias, "enforce"));
    let plan = project.statebucket(&["plan", "--detailed-exitcode", "--output", "json"]);
    plan.expect_code(2);
    let plan = plan.json();
    let environment = &plan["environments"][0];
    assert_eq!(
        change_kinds(environment),
        ["write_backend_file", "write_backend_file"],
        "{plan:#}"
    );
    for change in environment["changes"].as_array().unwrap() {
        assert!(
            change["path"]
                .as_str()
                .unwrap()
                .ends_with("/encryption.hcl"),
            "{change:#}"
        );
    }
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let parsed = parse_hcl(&files);
    for file in &files {
        let body = &parsed[file.to_str().unwrap()];
        for target in ["state", "plan"] {
            assert_eq!(body[target][0]["enforced"], true, "{target}: {body:#}");
            assert!(body[target][0].get("fallback").is_none(), "{body:#}");
        }
        assert!(body["method"].as_array().unwrap().len() == 1, "{body:#}");
    }
}

#[test]
fn a_key_of_its_own_is_granted_in_the_identity_policy_and_every_backend_file_parses() {
    let project = Project::new();
    project.spec(
        "dev",
        &format!(
            "\
region: eu-west-1
account_id: \"{ACCOUNT}\"
profile: terraform
bucket: {{ name: example-terraform-state-tofu }}
access: {{ users: [terraform-access], readers: {{ roles: [terraform-plan] }} }}
backend:
  key: app/terraform.tfstate
  assume_role: {{ role_arn: \"arn:aws:iam::{ACCOUNT}:role/state\", session_name: tofu, tags: {{ team: platform }} }}
  forbidden_account_ids: []
opentofu:
  encryption: {{ kms_key: alias/tofu-state }}
"
        )
        .replace("  forbidden_account_ids: []\n", ""),
    );
    project.statebucket(&["render"]).expect_code(0);
    let files = [
        project.path("environments/dev/backend.hcl"),
        project.path("environments/dev/encryption.hcl"),
    ];
    let parsed = parse_hcl(&files);
    let provider =
        &parsed[files[1].to_str().unwrap()]["key_provider"][0]["\"aws_kms\""]["\"state\""];
    assert_eq!(unquoted(&provider["kms_key_id"]), "alias/tofu-state");
    assert_eq!(
        unquoted(&provider["assume_role"]["session_name"]),
        "tofu",
        "the key provider authenticates like the backend: {provider:#}"
    );
    let backend = &parsed[files[0].to_str().unwrap()];
    assert_eq!(
        unquoted(&backend["assume_role"]["role_arn"]),
        format!("arn:aws:iam::{ACCOUNT}:role/state")
    );

    for tier in [&["--identity"][..], &["--identity", "--reader"][..]] {
        let mut args = vec!["policy", "dev", "--output", "json"];
        args.extend_from_slice(tier);
        let run = project.statebucket(&args);
        run.expect_code(0);
        let policy = run.json()["policy"].clone();
        let statement = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|statement| statement["Sid"] == "StatebucketOpenTofuEncryptionKey")
            .unwrap_or_else(|| panic!("{tier:?}: {policy:#}"))
            .clone();
        assert_eq!(
            statement["Action"],
            serde_json::json!(["kms:Decrypt", "kms:GenerateDataKey"])
        );
        assert_eq!(
            statement["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            "alias/tofu-state"
        );
    }
}
