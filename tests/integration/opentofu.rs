//! OpenTofu client-side state encryption: an encryption file beside each backend.hcl, in
//! two phases, reconciled like backend.hcl, with its key's grants in the identity policy.
//! Every generated file is read back by a real HCL parser (python-hcl2).

use std::path::PathBuf;

use crate::support::{
    ACCOUNT, Moto, Project, Spec, change_kinds, manifest_dir, to_run, unique, venv_python,
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
    Spec::new(bucket)
        .created_key(alias)
        .access("  users: [terraform-access]\n  readers: { roles: [terraform-access-role] }\n")
        .layout("stacks:\n  network: { key: network/terraform.tfstate }\n  app: { key: app/terraform.tfstate }\n")
        .then(&format!("opentofu:\n  encryption: {{ phase: {phase} }}\n"))
        .yaml()
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

/// The tags statebucket puts on OpenTofu's dedicated key for environment `env`.
fn tofu_key_tags(env: &str, bucket: &str) -> Vec<aws_sdk_kms::types::Tag> {
    [
        ("statebucket:opentofu-environment", env),
        ("statebucket:opentofu-bucket", bucket),
    ]
    .map(|(key, value)| {
        aws_sdk_kms::types::Tag::builder()
            .tag_key(key)
            .tag_value(value)
            .build()
            .unwrap()
    })
    .to_vec()
}

/// Keys carrying both tags of `env`'s dedicated key.
async fn dedicated_keys(kms: &aws_sdk_kms::Client, env: &str, bucket: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in kms.list_keys().send().await.unwrap().keys() {
        let id = key.key_id().unwrap();
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        let has = |name: &str, value: &str| {
            tags.tags()
                .iter()
                .any(|tag| tag.tag_key() == name && tag.tag_value() == value)
        };
        if has("statebucket:opentofu-environment", env)
            && has("statebucket:opentofu-bucket", bucket)
        {
            found.push(id.to_owned());
        }
    }
    found
}

#[test]
fn a_dedicated_key_is_created_once_and_an_interrupted_runs_key_is_aliased_not_doubled() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("tofu-own-key");
    let alias = format!("alias/{}", unique("tofu-dedicated"));
    let tofu_spec = |bucket: &str, alias: &str| {
        format!(
            "\
region: eu-west-1
account_id: \"{ACCOUNT}\"
profile: terraform
bucket: {{ name: {bucket} }}
access: {{ users: [terraform-access] }}
backend: {{ key: app/terraform.tfstate }}
opentofu:
  encryption: {{ kms_key: {alias}, create_key: true }}
"
        )
    };
    project.spec("dev", &tofu_spec(&bucket, &alias));
    let plan = project.statebucket(&["plan", "--output", "json"]);
    plan.expect_code(0);
    assert!(
        change_kinds(&plan.json()["environments"][0]).contains(&"create_tofu_key".to_owned()),
        "{}",
        plan.stdout
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    assert_eq!(second.json()["requests"]["writes"], 0);
    project.statebucket(&["check"]).expect_code(0);
    crate::support::block_on(async {
        let kms = project.kms("eu-west-1").await;
        let described = kms.describe_key().key_id(&alias).send().await.unwrap();
        let key_id = described.key_metadata().unwrap().key_id().to_owned();
        let rotation = kms
            .get_key_rotation_status()
            .key_id(&key_id)
            .send()
            .await
            .unwrap();
        assert!(rotation.key_rotation_enabled());
        assert_eq!(
            dedicated_keys(&kms, "dev", &bucket).await,
            std::slice::from_ref(&key_id)
        );
        // Rotation turned off by hand is drift.
        kms.disable_key_rotation()
            .key_id(&key_id)
            .send()
            .await
            .unwrap();
    });
    let drift = project.statebucket(&["check", "--output", "json"]);
    drift.expect_code(2);
    assert_eq!(
        change_kinds(&drift.json()["environments"][0]),
        ["enable_key_rotation"]
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    project.statebucket(&["check"]).expect_code(0);
    let encryption = project.read("environments/dev/encryption.hcl");
    assert!(
        encryption.contains(&format!("kms_key_id = \"{alias}\"")),
        "{encryption}"
    );

    // A run stopped between CreateKey and CreateAlias left a tagged key without its alias
    // (and the bucket, created before the apply lock that lives in it): the next apply
    // aliases that key instead of creating a second one.
    let other_bucket = unique("tofu-interrupted");
    let other_alias = format!("alias/{}", unique("tofu-interrupted"));
    let orphan = crate::support::block_on(async {
        project.create_bucket("eu-west-1", &other_bucket).await;
        let kms = project.kms("eu-west-1").await;
        kms.create_key()
            .set_tags(Some(tofu_key_tags("other", &other_bucket)))
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_owned()
    });
    project.spec("other", &tofu_spec(&other_bucket, &other_alias));
    let plan = project.statebucket(&["plan", "other", "--output", "json"]);
    let kinds = change_kinds(&plan.json()["environments"][0]);
    assert!(
        kinds.contains(&"alias_tofu_key".to_owned())
            && !kinds.contains(&"create_tofu_key".to_owned()),
        "{kinds:?}"
    );
    project
        .statebucket(&["apply", "other", "--auto-approve"])
        .expect_code(0);
    crate::support::block_on(async {
        let kms = project.kms("eu-west-1").await;
        assert_eq!(
            dedicated_keys(&kms, "other", &other_bucket).await,
            std::slice::from_ref(&orphan)
        );
        let aliased = kms
            .describe_key()
            .key_id(&other_alias)
            .send()
            .await
            .unwrap();
        assert_eq!(aliased.key_metadata().unwrap().key_id(), orphan);
    });
    project.statebucket(&["check", "other"]).expect_code(0);
}
