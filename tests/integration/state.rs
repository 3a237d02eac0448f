//! `statebucket state versions` and `state restore` with real Terraform: a state goes back to
//! an earlier version, Terraform plans what it lacks and applies, nothing is deleted, and a
//! held Terraform lock stops the restore.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;

use crate::support::{Moto, Project, block_on, object_exists, spec_yaml, terraform_dir, unique};

const KEY: &str = "app/terraform.tfstate";
const SECOND: &str = "\nresource \"terraform_data\" \"second\" {\n  input = \"two\"\n}\n";

/// Every version id of the state object, newest first (delete markers included).
fn version_ids(project: &Project, bucket: &str) -> Vec<String> {
    let versions = project.statebucket(&[
        "state", "versions", "dev", "--limit", "1000", "--output", "json",
    ]);
    versions.expect_code(0);
    versions.json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| {
            assert_eq!(version["delete_marker"], false, "{bucket}: {version}");
            version["version_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A bucket statebucket applied (`lock` and `encryption` as given) and a Terraform directory
/// initialised with its backend.hcl, after one apply of one resource.
fn terraform_with_state(
    prefix: &str,
    lock: &str,
    encryption: &str,
) -> (Project, String, tempfile::TempDir) {
    let project = Project::with_moto(Moto::shared());
    let bucket = unique(prefix);
    project.spec(
        "dev",
        &spec_yaml(&bucket, "eu-west-1", encryption).replace(
            &format!("  key: {KEY}\n"),
            &format!("  key: {KEY}\n  lock: {lock}\n"),
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let workdir = terraform_dir("");
    project.terraform_init_and_apply_dev(workdir.path());
    (project, bucket, workdir)
}

fn restore_scenario(lock: &str, encryption: &str) {
    let (project, bucket, workdir) = terraform_with_state("restore", lock, encryption);
    let main_tf = workdir.path().join("main.tf");
    let one_resource = std::fs::read_to_string(&main_tf).unwrap();
    std::fs::write(&main_tf, format!("{one_resource}{SECOND}")).unwrap();
    project
        .terraform("apply", workdir.path(), None)
        .expect_code(0);

    // Both serials are listed, newest first, with their resource counts.
    let listed = project.statebucket(&["state", "versions", "dev", "--output", "json"]);
    listed.expect_code(0);
    let versions = listed.json()["versions"].as_array().unwrap().clone();
    assert_eq!(versions[0]["current"], true, "{lock}: {versions:#?}");
    assert_eq!(versions[0]["resources"], 2, "{lock}: {versions:#?}");
    let first = versions
        .iter()
        .find(|version| version["resources"] == 1)
        .unwrap_or_else(|| panic!("{lock}: no version with one resource: {versions:#?}"));
    assert!(
        first["serial"].as_u64() < versions[0]["serial"].as_u64(),
        "{lock}: {versions:#?}"
    );
    let text = project.statebucket(&["state", "versions", "dev"]);
    text.expect_code(0);
    text.expect_stdout(&[first["version_id"].as_str().unwrap()]);
    let before = version_ids(&project, &bucket);

    let restore = project.statebucket(&[
        "state",
        "restore",
        "dev",
        first["version_id"].as_str().unwrap(),
        "--auto-approve",
        "--output",
        "json",
    ]);
    restore.expect_code(0);
    let restored = restore.json();
    assert_eq!(restored["status"], "restored", "{restored:#}");
    assert_eq!(restored["resources"]["from"], 2);
    assert_eq!(restored["resources"]["to"], 1);
    assert_eq!(restored["only_current"][0], "terraform_data.second");
    assert_eq!(restored["digest_updated"], lock != "lockfile");

    // One version more, none deleted; the new current one is the copy.
    let after = version_ids(&project, &bucket);
    assert_eq!(after.len(), before.len() + 1, "{lock}");
    assert!(
        before.iter().all(|id| after.contains(id)),
        "{lock}: a version was deleted"
    );
    assert_eq!(after[0], restored["new_version_id"].as_str().unwrap());
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        assert!(
            !object_exists(&s3, &bucket, &format!("{KEY}.tflock")).await,
            "{lock}: Terraform's lock file was released"
        );
        let current = s3
            .get_object()
            .bucket(&bucket)
            .key(KEY)
            .send()
            .await
            .unwrap();
        let old = s3
            .get_object()
            .bucket(&bucket)
            .key(KEY)
            .version_id(first["version_id"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            current.server_side_encryption(),
            old.server_side_encryption(),
            "{lock}: encrypted as the state was"
        );
        assert_eq!(
            current.ssekms_key_id(),
            old.ssekms_key_id(),
            "{lock}: KMS key kept"
        );
        let body = current.body.collect().await.unwrap().into_bytes();
        let old_body = old.body.collect().await.unwrap().into_bytes();
        assert_eq!(body, old_body, "{lock}: the restored content");
        if lock != "lockfile" {
            let table = format!("{bucket}-locks");
            let dynamodb = project.dynamodb("eu-west-1").await;
            let digest = dynamodb
                .get_item()
                .table_name(&table)
                .key("LockID", AttributeValue::S(format!("{bucket}/{KEY}-md5")))
                .send()
                .await
                .unwrap();
            let digest = digest.item().unwrap()["Digest"].as_s().unwrap().clone();
            use md5::Digest;
            let expected: String = md5::Md5::digest(&body)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert_eq!(digest, expected, "{lock}");
            let lock_item = dynamodb
                .get_item()
                .table_name(&table)
                .key("LockID", AttributeValue::S(format!("{bucket}/{KEY}")))
                .send()
                .await
                .unwrap();
            assert!(
                lock_item.item().is_none(),
                "{lock}: the lock item was released"
            );
        }
    });

    // Terraform reads the restored state (with a table: no checksum error) and plans the
    // resource the restored state lacks.
    let plan = project.terraform("plan", workdir.path(), None);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("terraform_data.second will be created")
            && plan.stdout.contains("1 to add, 0 to change, 0 to destroy"),
        "{lock}:\n{}\n{}",
        plan.stdout,
        plan.stderr
    );
    let apply = project.terraform("apply", workdir.path(), None);
    apply.expect_code(0);
    apply.expect_stdout(&["Apply complete! Resources: 1 added"]);
    let newest = &project
        .statebucket(&["state", "versions", "dev", "--output", "json"])
        .json()["versions"][0];
    assert_eq!(newest["resources"], 2, "{lock}: {newest}");
}

#[test]
fn restoring_an_earlier_version_with_the_lockfile_brings_terraform_back_to_it() {
    restore_scenario(
        "lockfile",
        "{ kms_key: alias/restore-lockfile, create_key: true }",
    );
}

#[test]
fn restoring_an_earlier_version_with_a_lock_table_updates_the_digest_terraform_checks() {
    restore_scenario("both", "aes256");
}

/// A Terraform apply in progress holds the lock file: the restore is refused, names the
/// holder Terraform wrote, and writes nothing.
#[test]
fn a_restore_while_terraform_holds_the_lock_is_refused_naming_the_holder() {
    // A first state to restore; then an apply that creates a slow resource holds the lock.
    let (project, bucket, workdir) = terraform_with_state("restore-locked", "lockfile", "aes256");
    let version = version_ids(&project, &bucket)[0].clone();
    let main_tf = workdir.path().join("main.tf");
    let config = std::fs::read_to_string(&main_tf)
        .unwrap()
        .replace("input = \"statebucket\"", "input = \"changed\"");
    std::fs::write(&main_tf, &config).unwrap();
    project
        .terraform("apply", workdir.path(), None)
        .expect_code(0);
    std::fs::write(
        &main_tf,
        format!("{config}\nresource \"terraform_data\" \"slow\" {{\n  provisioner \"local-exec\" {{\n    command = \"sleep 8\"\n  }}\n}}\n"),
    )
    .unwrap();
    let running = project.spawn_terraform("apply", workdir.path());
    let lock_body = block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(lock) = s3
                .get_object()
                .bucket(&bucket)
                .key(format!("{KEY}.tflock"))
                .send()
                .await
            {
                return lock.body.collect().await.unwrap().into_bytes();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Terraform never took its lock");
    });
    let lock: serde_json::Value = serde_json::from_slice(&lock_body).unwrap();
    let versions_before = version_ids(&project, &bucket);

    let refused = project.statebucket(&["state", "restore", "dev", &version, "--auto-approve"]);
    refused.expect_code(1);
    refused.expect_stderr(&[
        "Terraform's state lock",
        lock["Who"].as_str().unwrap(),
        &format!("terraform force-unlock {}", lock["ID"].as_str().unwrap()),
    ]);
    let terraform = crate::support::to_run(running.wait_with_output().unwrap());
    terraform.expect_code(0);
    let versions_after = version_ids(&project, &bucket);
    assert!(
        versions_before.iter().all(|id| versions_after.contains(id)),
        "nothing deleted"
    );
    assert_eq!(
        versions_after.len(),
        versions_before.len() + 1,
        "only Terraform's own apply wrote a version (the refused restore wrote none)"
    );
}

/// Without Terraform: a version of another lineage is refused unless allowed; a version id
/// that does not exist, or a delete marker, is refused; a lock item held in the table makes
/// the restore release the lock file it had already taken.
#[test]
fn restores_that_would_be_wrong_are_refused_and_leave_no_lock_behind() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("restore-refused");
    project.spec(
        "dev",
        &spec_yaml(&bucket, "eu-west-1", "aes256").replace(
            &format!("  key: {KEY}\n"),
            &format!("  key: {KEY}\n  lock: both\n"),
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let state = |serial: u32, lineage: &str| {
        format!(
            r#"{{"version":4,"terraform_version":"1.15.0","serial":{serial},"lineage":"{lineage}","outputs":{{}},"resources":[],"check_results":null}}"#
        )
    };
    let put = |body: String| {
        block_on(async {
            project
                .s3("eu-west-1")
                .await
                .put_object()
                .bucket(&bucket)
                .key(KEY)
                .body(ByteStream::from(body.into_bytes()))
                .send()
                .await
                .unwrap()
                .version_id()
                .unwrap()
                .to_owned()
        })
    };
    let other = put(state(7, "other-lineage"));
    let _current = put(state(2, "this-lineage"));

    let refused = project.statebucket(&["state", "restore", "dev", &other, "--auto-approve"]);
    refused.expect_code(1);
    refused.expect_stderr(&["lineage other-lineage", "--allow-other-lineage"]);
    let missing = project.statebucket(&[
        "state",
        "restore",
        "dev",
        "no-such-version",
        "--auto-approve",
    ]);
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("does not exist")
            && missing
                .stderr
                .contains("`statebucket state versions dev` lists the versions"),
        "{}",
        missing.stderr
    );
    let without_terminal =
        project.statebucket(&["state", "restore", "dev", &other, "--allow-other-lineage"]);
    without_terminal.expect_code(1);
    assert!(
        without_terminal
            .stderr
            .contains("refusing to restore without confirmation"),
        "{}",
        without_terminal.stderr
    );

    // Another holder's lock item: refused, and the lock file taken first is released.
    block_on(async {
        project
            .dynamodb("eu-west-1")
            .await
            .put_item()
            .table_name(format!("{bucket}-locks"))
            .item("LockID", AttributeValue::S(format!("{bucket}/{KEY}")))
            .item(
                "Info",
                AttributeValue::S(
                    r#"{"ID":"1f2e3d4c-0000-4000-8000-000000000001","Operation":"OperationTypeApply","Who":"bob@legacy-runner","Version":"1.9.8","Created":"2026-12-01T10:00:00Z","Path":"x"}"#.into(),
                ),
            )
            .send()
            .await
            .unwrap();
    });
    let held = project.statebucket(&[
        "state",
        "restore",
        "dev",
        &other,
        "--auto-approve",
        "--allow-other-lineage",
    ]);
    held.expect_code(1);
    assert!(
        held.stderr.contains("bob@legacy-runner")
            && held.stderr.contains("DynamoDB table")
            && held
                .stderr
                .contains("terraform force-unlock 1f2e3d4c-0000-4000-8000-000000000001"),
        "{}",
        held.stderr
    );
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        assert!(
            !object_exists(&s3, &bucket, &format!("{KEY}.tflock")).await,
            "the lock file taken before the table refused is released"
        );
    });

    // With the lock free and the other lineage allowed, the restore goes through.
    block_on(async {
        project
            .dynamodb("eu-west-1")
            .await
            .delete_item()
            .table_name(format!("{bucket}-locks"))
            .key("LockID", AttributeValue::S(format!("{bucket}/{KEY}")))
            .send()
            .await
            .unwrap();
    });
    let allowed = project.statebucket(&[
        "state",
        "restore",
        "dev",
        &other,
        "--auto-approve",
        "--allow-other-lineage",
    ]);
    allowed.expect_code(0);
    allowed.expect_stdout(&["serial: 2 → 7"]);
    let again = project.statebucket(&["state", "restore", "dev", &other, "--auto-approve"]);
    again.expect_code(0);
    again.expect_stdout(&["nothing to restore"]);
}

/// Ctrl-C while the copy is on the wire: the command ends with 130 at once and Terraform's
/// lock file is released, not left for a `terraform force-unlock`.
#[test]
fn an_interrupted_restore_releases_terraforms_lock() {
    let moto = Moto::shared();
    // CopyObject (the only request with x-amz-copy-source) never gets an answer.
    let proxy = crate::support::Proxy::start(
        moto,
        &[
            "--stall-header",
            "x-amz-copy-source",
            "--stall-seconds",
            "60",
        ],
    );
    let mut project = Project::with_moto(moto);
    let bucket = unique("restore-interrupted");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let versions = crate::support::put_states(&project, &bucket, KEY, 2);
    project.endpoint = Some(proxy.endpoint.clone());
    let child = project
        .command(env!("CARGO_BIN_EXE_statebucket"))
        .args(["state", "restore", "dev", &versions[0], "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock_key = format!("{KEY}.tflock");
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let started = Instant::now();
        while !object_exists(&s3, &bucket, &lock_key).await {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the restore never took the lock"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // The lock is taken before the copy is sent; give the copy a moment to be on the wire.
    std::thread::sleep(Duration::from_millis(500));
    let interrupted = Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let run = crate::support::to_run(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{}{}", run.stdout, run.stderr);
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "{}",
        run.stderr
    );
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        assert!(
            !object_exists(&s3, &bucket, &lock_key).await,
            "Terraform's lock is released on Ctrl-C: {}",
            run.stderr
        );
    });
}
