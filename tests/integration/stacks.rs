//! One bucket, many stacks: each stack's backend.hcl serves real Terraform, a removed stack
//! loses its grants and nothing else, and (in moto's IAM-enforcing mode, with the identity
//! policies statebucket attaches) a stack's writer reaches its own state only while a reader
//! can plan but not apply.
//!
//! moto enforces identity policies but not bucket-policy Allows or KMS key policies; the
//! bucket-policy and key-policy grants are proven with the policy evaluator in unit tests
//! (`policy::bucket`, `policy::key_policy`).

use serde_json::Value;

use crate::support::{
    ACCOUNT, Moto, Project, Proxy, Spec, block_on, change_kinds, changed, create_principals,
    object_exists, terraform_dir, unique, users_with_keys,
};

fn three_stacks(bucket: &str, alias: &str) -> String {
    Spec::new(bucket)
        .created_key(&format!("alias/{alias}"))
        .untagged()
        .access("  readers: { roles: [terraform-plan] }\n")
        .layout(
            "\
stacks:
  network:
    key: network/terraform.tfstate
    access: { roles: [network-ci] }
  app:
    key: app/terraform.tfstate
    access: { roles: [app-ci] }
  data:
    key: data/terraform.tfstate
    lock: both
    access: { roles: [data-ci] }
",
        )
        .yaml()
}

fn policy_sids(document: &Value) -> Vec<String> {
    document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|statement| statement["Sid"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn three_stacks_converge_serve_terraform_and_a_removed_stack_loses_only_its_grants() {
    let moto = Moto::shared();
    block_on(async {
        let iam = moto.iam_in(ACCOUNT).await;
        create_principals(
            &iam,
            &[],
            &["network-ci", "app-ci", "data-ci", "terraform-plan"],
        )
        .await;
    });
    let project = Project::with_moto(moto);
    let bucket = unique("stacks");
    let alias = unique("stacks-key");
    project.spec("central", &three_stacks(&bucket, &alias));

    let first = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    first.expect_code(0);

    // doctor checks each stack's file, and asks STS who the stacks' shared profile is, and
    // reads the bucket's live policy, once.
    let doctor = project.statebucket(&["doctor", "--output", "json"]).json();
    assert_eq!(
        doctor["environments"].as_array().unwrap().len(),
        3,
        "{doctor:#}"
    );
    for once in ["GetCallerIdentity", "GetBucketPolicy"] {
        assert_eq!(
            doctor["requests"]["by_operation"][once], 1,
            "{once}: {:#}",
            doctor["requests"]
        );
    }

    let document = first.json();
    let environment = &document["environments"][0];
    assert_eq!(environment["status"], "applied", "{environment:#}");
    let kinds = change_kinds(environment);
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| *kind == "write_backend_file")
            .count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| *kind == "create_lock_table")
            .count(),
        1,
        "one table for the one stack that uses it: {kinds:?}"
    );
    // One observation of the bucket, whatever the number of stacks.
    let requests = &document["requests"]["by_operation"];
    assert_eq!(requests["HeadBucket"], 2, "plan + verify: {requests:#}");
    assert_eq!(requests["GetBucketPolicy"], 2, "{requests:#}");

    let check = project.statebucket(&["check", "--output", "json"]);
    check.expect_code(0);
    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    assert_eq!(
        second.json()["requests"]["writes"],
        0,
        "{:#}",
        second.json()["requests"]
    );

    // The bucket policy names each stack's statements; the key policy grants the writers
    // and the reader through S3.
    let (policy, key_policy) = block_on(async {
        let policy = project.bucket_policy("eu-west-1", &bucket).await;
        let kms = project.kms("eu-west-1").await;
        let key = kms
            .describe_key()
            .key_id(format!("alias/{alias}"))
            .send()
            .await
            .unwrap();
        let key_id = key.key_metadata().unwrap().key_id().to_owned();
        let key_policy = kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap()
            .to_owned();
        (policy, key_policy)
    });
    let sids = policy_sids(&policy);
    for stack in ["Network", "App", "Data"] {
        for rest in ["ListStateBucket", "ReadWriteState", "LockFiles"] {
            assert!(
                sids.contains(&format!("Statebucket{stack}{rest}")),
                "{sids:?}"
            );
        }
    }
    assert!(
        sids.contains(&"StatebucketReadState".to_owned()),
        "{sids:?}"
    );
    assert_eq!(
        policy_sids(&serde_json::from_str(&key_policy).unwrap()),
        vec![
            "StatebucketAccountRoot",
            "StatebucketStateWriters",
            "StatebucketStateReaders"
        ]
    );
    assert!(key_policy.contains(&format!("arn:aws:iam::{ACCOUNT}:role/data-ci")));
    assert!(key_policy.contains("s3.eu-west-1.amazonaws.com"));

    // Each stack's backend.hcl lets real Terraform init and apply its own state.
    for stack in ["network", "app", "data"] {
        let file = project.path(&format!("environments/central/{stack}/backend.hcl"));
        let backend = std::fs::read_to_string(&file).unwrap();
        assert!(
            backend.starts_with(&format!(
                "# Generated by statebucket from environments/central.yaml (stack {stack})."
            )),
            "{backend}"
        );
        assert!(
            backend.contains(&format!("= \"{stack}/terraform.tfstate\"\n")),
            "{backend}"
        );
        let workdir = terraform_dir("");
        project
            .terraform("init", workdir.path(), Some(&file))
            .expect_code(0);
        project
            .terraform("apply", workdir.path(), None)
            .expect_code(0);
    }
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        for stack in ["network", "app", "data"] {
            let key = format!("{stack}/terraform.tfstate");
            assert!(object_exists(&s3, &bucket, &key).await, "{key}");
        }
    });

    // Removing a stack removes its statements, updates the reader grant it shared, and
    // leaves its backend.hcl and its state where they are.
    let without_app = three_stacks(&bucket, &alias).replace(
        "  app:\n    key: app/terraform.tfstate\n    access: { roles: [app-ci] }\n",
        "",
    );
    project.spec("central", &without_app);
    let plan = project.statebucket(&["plan", "--detailed-exitcode", "--output", "json"]);
    plan.expect_code(2);
    let environment = &plan.json()["environments"][0];
    let put_policy = environment["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["change"] == "put_policy")
        .expect("a bucket policy change");
    let statement_changes: Vec<(String, String)> = put_policy["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            (
                change["change"].as_str().unwrap().to_owned(),
                change["sid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let owned = |kind: &str, sid: &str| (kind.to_owned(), sid.to_owned());
    assert_eq!(
        statement_changes,
        vec![
            owned("update", "StatebucketReadState"),
            owned("update", "StatebucketReaderLockFiles"),
            owned("remove", "StatebucketAppDeleteWorkspaceState"),
            owned("remove", "StatebucketAppListStateBucket"),
            owned("remove", "StatebucketAppLockFiles"),
            owned("remove", "StatebucketAppReadWriteState"),
        ]
    );
    let text = project.statebucket(&["plan"]);
    text.expect_stdout(&["- StatebucketAppReadWriteState", "environments/central/app/backend.hcl was written for a stack environments/central.yaml no longer has"]);
    assert!(
        !change_kinds(environment).contains(&"write_backend_file".to_owned()),
        "the remaining stacks' files are untouched: {:?}",
        change_kinds(environment)
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    assert!(
        project
            .path("environments/central/app/backend.hcl")
            .exists()
    );
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        assert!(object_exists(&s3, &bucket, "app/terraform.tfstate").await);
    });
    project.statebucket(&["check"]).expect_code(0);
}

/// Users with access keys: an admin, one writer per stack and a reader.
async fn iam_setup(moto: &Moto) -> Vec<(String, String, String)> {
    let users = ["admin", "net-writer", "app-writer", "planner"];
    let profiles: Vec<(&str, &str)> = users.iter().map(|user| (*user, *user)).collect();
    users_with_keys(moto, &profiles).await
}

const ENFORCED: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: net-writer
bucket: { name: BUCKET }
access:
  readers: { users: [planner] }
  attach_identity_policy: true
stacks:
  network:
    key: network/terraform.tfstate
    access: { users: [net-writer] }
  app:
    key: app/terraform.tfstate
    profile: app-writer
    access: { users: [app-writer] }
";

/// backend.hcl of a stack with another profile in it: what someone holding those
/// credentials would get by pointing Terraform at this state.
fn with_profile(project: &Project, stack: &str, profile: &str) -> std::path::PathBuf {
    let original = project.read(&format!("environments/central/{stack}/backend.hcl"));
    let rewritten: String = original
        .lines()
        .map(|line| {
            if line.starts_with("profile") {
                format!("profile             = \"{profile}\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let path = format!("as-{profile}/{stack}.hcl");
    project.write(&path, &rewritten);
    project.path(&path)
}

#[test]
fn with_identity_policies_a_writer_reaches_only_its_stack_and_a_reader_plans_but_cannot_apply() {
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "100000")]);
    let keys = block_on(iam_setup(&moto));
    moto.enforce_iam();
    let project = Project::with_moto(&moto);
    let profiles: Vec<(&str, &str, &str)> = keys
        .iter()
        .map(|(p, k, s)| (p.as_str(), k.as_str(), s.as_str()))
        .collect();
    project.write_key_profiles(&profiles);
    let bucket = unique("enforced");
    project.spec("central", &ENFORCED.replace("BUCKET", &bucket));
    let applied = project.statebucket(&[
        "apply",
        "--profile",
        "admin",
        "--auto-approve",
        "--output",
        "json",
    ]);
    applied.expect_code(0);
    let attached = changed(
        &applied.json()["environments"][0],
        "put_identity_policy",
        "principal",
    );
    assert_eq!(
        attached,
        vec![
            format!("arn:aws:iam::{ACCOUNT}:user/net-writer"),
            format!("arn:aws:iam::{ACCOUNT}:user/app-writer"),
            format!("arn:aws:iam::{ACCOUNT}:user/planner"),
        ]
    );

    // Each writer keeps its own state.
    for stack in ["network", "app"] {
        let workdir = terraform_dir("");
        let file = project.path(&format!("environments/central/{stack}/backend.hcl"));
        project
            .terraform("init", workdir.path(), Some(&file))
            .expect_code(0);
        project
            .terraform("apply", workdir.path(), None)
            .expect_code(0);
    }

    // The network writer pointed at the app stack's state: 403 from S3.
    let workdir = terraform_dir("");
    let trespass = project.terraform(
        "init",
        workdir.path(),
        Some(&with_profile(&project, "app", "net-writer")),
    );
    assert_ne!(trespass.code, 0, "{}", trespass.stdout);
    let output = format!("{}{}", trespass.stdout, trespass.stderr);
    assert!(
        output.contains("Unable to access object \"app/terraform.tfstate\"")
            && output.contains("HeadObject")
            && output.contains("StatusCode: 403"),
        "{output}"
    );

    // The reader reads and locks (plan), but cannot write the state (apply).
    let workdir = terraform_dir("  triggers_replace = \"v2\"\n");
    let as_reader = with_profile(&project, "network", "planner");
    project
        .terraform("init", workdir.path(), Some(&as_reader))
        .expect_code(0);
    let plan = project.terraform("plan", workdir.path(), None);
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("1 to add") || plan.stdout.contains("must be replaced"),
        "{}",
        plan.stdout
    );
    let apply = project.terraform("apply", workdir.path(), None);
    assert_ne!(
        apply.code, 0,
        "a reader must not write state:\n{}",
        apply.stdout
    );
    let output = format!("{}{}", apply.stdout, apply.stderr);
    assert!(
        output.contains("Failed to save state")
            && output.contains("PutObject")
            && output.contains("StatusCode: 403"),
        "{output}"
    );

    // statebucket's own doctor sees the same from each stack's file.
    let doctor = project.statebucket(&["doctor", "--profile", "admin"]);
    doctor.expect_code(0);
    assert!(
        doctor
            .stdout
            .contains("doctor central stack app (environments/central.yaml), backend environments/central/app/backend.hcl"),
        "{}",
        doctor.stdout
    );
    doctor.expect_stdout(&[&format!(
            "ok    listed in access  arn:aws:iam::{ACCOUNT}:user/app-writer is a writer of stack `app` of environments/central.yaml"
        )]);
}

/// Why `s3:ListBucket` stays bucket-wide, measured with real Terraform: the only listing the
/// S3 backend makes (init, apply, workspace new, apply in the new workspace) is of `<workspace_key_prefix>/`, never
/// of a stack's key. With the default prefix `env:/` that listing is shared by every stack of
/// the bucket, so an `s3:prefix` condition cannot separate stacks; and without an
/// unconditioned ListBucket, S3 answers HeadObject on a missing state with 403 instead of
/// 404, so a new stack's first init would fail (AWS HeadObject documentation).
#[test]
fn terraform_lists_only_the_workspace_prefix_so_list_bucket_stays_bucket_wide() {
    let moto = Moto::shared();
    let proxy = Proxy::start(moto, &[]);
    let mut project = Project::with_moto(moto);
    project.endpoint = Some(proxy.endpoint.clone());
    let bucket = unique("listing");
    project.spec(
        "central",
        &format!(
            "region: eu-west-1\naccount_id: \"{ACCOUNT}\"\nprofile: terraform\nbucket: {{ name: {bucket} }}\naccess: {{ users: [terraform-access] }}\nstacks:\n  network: {{ key: network/terraform.tfstate }}\n  app: {{ key: app/terraform.tfstate, workspace_key_prefix: teams }}\n"
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    for (stack, prefix) in [("network", "env:/"), ("app", "teams/")] {
        proxy.take_requests();
        let workdir = terraform_dir("");
        let file = project.path(&format!("environments/central/{stack}/backend.hcl"));
        project
            .terraform("init", workdir.path(), Some(&file))
            .expect_code(0);
        project
            .terraform("apply", workdir.path(), None)
            .expect_code(0);
        project
            .terraform(
                "workspace",
                workdir.path(),
                Some(std::path::Path::new("staging")),
            )
            .expect_code(0);
        project
            .terraform("apply", workdir.path(), None)
            .expect_code(0);
        let requests = proxy.take_requests();
        let mut listed: Vec<String> = requests
            .iter()
            .filter(|line| line.starts_with("GET ") && line.contains("list-type=2"))
            .map(|line| {
                let query = line.split_once('?').map_or("", |(_, query)| query);
                let prefix = query
                    .split('&')
                    .find_map(|part| part.strip_prefix("prefix="))
                    .unwrap_or("");
                prefix.replace("%3A", ":").replace("%2F", "/")
            })
            .collect();
        assert!(listed.len() >= 3, "{stack}: {requests:#?}");
        listed.dedup();
        assert_eq!(listed, vec![prefix.to_owned()], "{stack}: {requests:#?}");
        let workspace_state = format!("PUT /{bucket}/{prefix}staging/{stack}/terraform.tfstate");
        assert!(
            requests.iter().any(|line| {
                line.split('?').next().unwrap().replace("%3A", ":") == workspace_state
            }),
            "{stack}: the workspace's state is written where the grants say: {requests:#?}"
        );
    }
}
