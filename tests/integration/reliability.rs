//! Faults, crashes and concurrency on moto: every environment ends converged with one bucket,
//! one key and one policy, and no secret is ever printed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    FAKE_ACCESS_KEY, FAKE_SECRET_KEY, Moto, Project, Proxy, Spec, block_on, spec_yaml, to_run,
    unique,
};

fn kms_spec(bucket: &str) -> String {
    Spec::new(bucket)
        .created_key(&format!("alias/{bucket}"))
        .yaml()
}

/// Keys tagged as created by statebucket for `bucket` (in eu-west-1).
fn keys_for(project: &Project, bucket: &str) -> usize {
    keys_in(project, "eu-west-1", bucket)
}

/// Keys in `region` tagged as created by statebucket for `bucket`.
fn keys_in(project: &Project, region: &str, bucket: &str) -> usize {
    block_on(async {
        let kms = project.kms(region).await;
        let mut count = 0;
        let keys = kms.list_keys().limit(1000).send().await.unwrap();
        for key in keys.keys() {
            let tags = kms
                .list_resource_tags()
                .key_id(key.key_id().unwrap())
                .send()
                .await
                .unwrap();
            if tags
                .tags()
                .iter()
                .any(|tag| tag.tag_key() == "statebucket:bucket" && tag.tag_value() == bucket)
            {
                count += 1;
            }
        }
        count
    })
}

/// `apply --auto-approve` in `project`, started and not waited for; `machine`: a temporary
/// directory of its own (another machine: the machine-wide lock cannot serialise it).
fn spawn_apply(project: &Project, machine: Option<&std::path::Path>) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_statebucket"));
    command
        .args(["apply", "--auto-approve"])
        .current_dir(project.dir.path())
        .envs(project.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(machine) = machine {
        command.env("TMPDIR", machine);
    }
    command.spawn().unwrap()
}

/// A project whose backend.hcl names the endpoint the tool itself used.
fn project_through(moto: &Moto, endpoint: &str) -> Project {
    let mut project = Project::with_moto(moto);
    project.endpoint = Some(endpoint.to_owned());
    project
}

#[test]
fn apply_converges_through_20_percent_injected_faults_without_duplicate_keys() {
    let moto = Moto::shared();
    let proxy = Proxy::start(
        moto,
        &[
            "--fault-rate",
            "0.2",
            "--faults",
            "503,500,reset,stall,lost",
            "--stall-seconds",
            "3",
            "--seed",
            "7",
        ],
    );
    let mut project = project_through(moto, &proxy.endpoint);
    let bucket = unique("faults");
    project.spec("dev", &kms_spec(&bucket));
    let mut attempts = Vec::new();
    let converged = (0..6).any(|_| {
        let run = project.statebucket(&["apply", "--request-timeout", "1", "--auto-approve"]);
        if run.code != 0 {
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(
                run.stderr.contains("error: ") && run.stderr.contains("hint: "),
                "a failed run says what failed and what to do:\n{}",
                run.stderr
            );
        }
        attempts.push(run.code);
        run.code == 0
    });
    assert!(
        converged,
        "no run converged through the faults: {attempts:?}"
    );
    // Verified without faults, through moto itself (backend.hcl names the proxy, so only the
    // AWS side is compared).
    project.endpoint = Some(moto.endpoint.clone());
    let check = project.statebucket(&["check", "--output", "json"]);
    let changes = check.json()["environments"][0]["changes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        changes
            .iter()
            .all(|change| change["change"] == "write_backend_file"),
        "{changes:#?}"
    );
    assert_eq!(
        keys_for(&project, &bucket),
        1,
        "one key for the environment, whatever was retried"
    );
}

#[test]
fn apply_killed_at_random_points_always_converges_on_rerun_without_duplicate_keys() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let mut seed: u64 = 0x5eed;
    let mut random = move |limit: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % limit
    };
    for round in 0..20 {
        let bucket = unique("crash");
        project.spec("dev", &kms_spec(&bucket));
        let mut child = Command::new(env!("CARGO_BIN_EXE_statebucket"))
            .args(["apply", "--auto-approve"])
            .current_dir(project.dir.path())
            .envs(project.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(random(450)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if let Ok(partial) = std::fs::read_to_string(project.path("environments/dev/backend.hcl")) {
            assert!(
                partial.ends_with("use_path_style      = true\n"),
                "round {round}: backend.hcl half-written:\n{partial}"
            );
        }
        let rerun = project.statebucket(&["apply", "--auto-approve"]);
        rerun.expect_code(0);
        project.statebucket(&["check"]).expect_code(0);
        assert_eq!(
            keys_for(&project, &bucket),
            1,
            "round {round}: duplicate keys; the rerun said:\n{}\n{}",
            rerun.stdout,
            rerun.stderr
        );
    }
}

#[test]
fn eight_concurrent_applies_on_one_environment_make_one_bucket_one_key_one_policy() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("concurrent");
    project.spec("dev", &kms_spec(&bucket));
    let started = Instant::now();
    let children: Vec<_> = (0..8).map(|_| spawn_apply(&project, None)).collect();
    for child in children {
        let run = to_run(child.wait_with_output().unwrap());
        run.expect_code(0);
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    project.statebucket(&["check"]).expect_code(0);
    assert_eq!(keys_for(&project, &bucket), 1);
    block_on(async {
        let document = project.bucket_policy("eu-west-1", &bucket).await;
        let sids: Vec<&str> = document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "StatebucketListStateBucket",
                "StatebucketReadWriteState",
                "StatebucketDeleteWorkspaceState",
                "StatebucketLockFiles"
            ]
        );
    });
}

#[test]
fn no_secret_is_printed_even_with_sdk_debug_logs() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    // A profile that assumes a role: STS hands out a session token too.
    project.write_aws_profiles(&[("terraform", Some("arn:aws:iam::123456789012:role/admin"))]);
    let bucket = unique("secrets");
    project.spec("dev", &spec_yaml(&bucket, "eu-west-1", "aes256"));
    let mut outputs = String::new();
    for args in [
        vec!["-vv", "apply", "--auto-approve"],
        vec!["-vv", "check"],
        vec!["-vv", "doctor"],
        vec!["-v", "--output", "json", "plan"],
    ] {
        let run = project.statebucket(&args);
        outputs.push_str(&run.stdout);
        outputs.push_str(&run.stderr);
    }
    assert!(
        outputs.len() > 10_000,
        "the debug logs ran ({} bytes)",
        outputs.len()
    );
    for secret in [FAKE_ACCESS_KEY, FAKE_SECRET_KEY, "FQoG"] {
        assert!(!outputs.contains(secret), "{secret} appears in the output");
    }
    let leaked_key_ids = outputs
        .match_indices("ASIA")
        .filter(|(at, _)| {
            outputs[at + 4..]
                .chars()
                .take(16)
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && outputs.len() > at + 20
        })
        .count();
    assert_eq!(
        leaked_key_ids, 0,
        "a session access key id appears in the output"
    );
}

/// Six CI runners at once, each its own machine: its own temporary directory, so the
/// machine-wide lock cannot serialise them; only the lock in the bucket can.
#[test]
fn six_runners_on_separate_machines_create_one_key_and_converge() {
    let moto = Moto::shared();
    for lock in ["lockfile", "both"] {
        let project = Project::with_moto(moto);
        let bucket = unique("runners");
        project.spec(
            "dev",
            &kms_spec(&bucket).replace(
                "  key: app/terraform.tfstate\n",
                &format!("  key: app/terraform.tfstate\n  lock: {lock}\n"),
            ),
        );
        let machines: Vec<tempfile::TempDir> =
            (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
        let children: Vec<_> = machines
            .iter()
            .map(|machine| spawn_apply(&project, Some(machine.path())))
            .collect();
        for child in children {
            let run = to_run(child.wait_with_output().unwrap());
            assert!(
                run.code == 0 || run.stderr.contains("another apply holds the lock"),
                "{lock}: exit {}\n{}{}",
                run.code,
                run.stdout,
                run.stderr
            );
        }
        project.statebucket(&["check"]).expect_code(0);
        assert_eq!(
            keys_for(&project, &bucket),
            1,
            "{lock}: exactly one customer key"
        );
    }
}

/// A runner killed while it held the apply lock stops renewing it: the next run waits while
/// the lock's lease lasts, then takes it over. A lock that is alive makes a run give up
/// after `--lock-timeout` with the documented error.
#[test]
fn a_killed_runners_lock_blocks_no_longer_than_its_lease() {
    let moto = Moto::shared();
    let project = Project::with_moto(moto);
    let bucket = unique("stale-lock");
    project.spec("dev", &kms_spec(&bucket));
    let place_lock = |lease_seconds: u64| {
        block_on(async {
            let s3 = project.s3("eu-west-1").await;
            let _ = s3
                .create_bucket()
                .bucket(&bucket)
                .create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                        .build(),
                )
                .send()
                .await;
            s3.put_object()
                .bucket(&bucket)
                .key(".statebucket/apply.lock")
                .body(aws_sdk_s3::primitives::ByteStream::from(
                    format!(r#"{{"id":"dead-1","owner":"statebucket on ghost (pid 1)","operation":"apply","created":"2026-12-01T00:00:00Z","lease_seconds":{lease_seconds}}}"#).into_bytes(),
                ))
                .send()
                .await
                .unwrap();
        })
    };
    place_lock(600);
    let blocked = project.statebucket(&["apply", "--auto-approve", "--lock-timeout", "2"]);
    blocked.expect_code(1);
    blocked.expect_stderr(&[&format!(
            "error: taking the apply lock s3://{bucket}/.statebucket/apply.lock: another apply holds the lock: statebucket on ghost (pid 1) (apply, since 2026-12-01T00:00:00Z, lock dead-1)"
        )]);
    assert_eq!(
        keys_for(&project, &bucket),
        0,
        "no key is created without the lock"
    );

    // The holder is gone: its lease (1 s) plus the clock skew allowance (10 s) pass.
    place_lock(1);
    let started = Instant::now();
    let taken = project.statebucket(&["apply", "--auto-approve"]);
    taken.expect_code(0);
    assert!(
        taken
            .stderr
            .contains("taking over the stale apply lock of statebucket on ghost (pid 1)"),
        "{}",
        taken.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    project.statebucket(&["check"]).expect_code(0);
    assert_eq!(keys_for(&project, &bucket), 1);
    // Released: nothing of statebucket's is left in the bucket but the lock's history.
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        assert!(!crate::support::object_exists(&s3, &bucket, ".statebucket/apply.lock").await);
    });
}

/// A KMS primary in eu-west-1 with a replica in eu-central-1 that has its own created key.
fn replica_kms_spec(bucket: &str) -> String {
    Spec::new(bucket)
        .created_key(&format!("alias/{bucket}"))
        .replica(&format!("alias/{bucket}-replica"), "")
        .yaml()
}

/// `apply --auto-approve` in each project at once, each as a machine of its own (its own
/// temporary directory): every run with how long it took, and how long until the last one
/// ended.
fn apply_at_once(projects: &[Project]) -> (Duration, Vec<(Duration, crate::support::Run)>) {
    let machines: Vec<tempfile::TempDir> = projects
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let started = Instant::now();
    let waiting: Vec<_> = projects
        .iter()
        .zip(&machines)
        .map(|(project, machine)| {
            let child = spawn_apply(project, Some(machine.path()));
            std::thread::spawn(move || {
                let output = child.wait_with_output().unwrap();
                (started.elapsed(), to_run(output))
            })
        })
        .collect();
    let runs: Vec<(Duration, crate::support::Run)> = waiting
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    (started.elapsed(), runs)
}

/// Six CI runners, each in its own working directory, apply a spec with a replica and KMS
/// keys in both regions at once. Each bucket used to have its own apply lock: one run held
/// the primary's and waited for the replica's while another held the replica's and waited
/// for the primary's, until both timed out. With one lock per environment every run exits
/// 0 and one key is created in each region; the runs that waited plan again and find the
/// work done. The figures it prints (all six against the lock's winner, and against one
/// apply alone) are in `docs/reliability.md`; time is measured, not asserted.
#[test]
fn six_runners_apply_a_replicated_kms_environment_at_once_without_deadlock() {
    let moto = Moto::shared();
    let alone_project = Project::with_moto(moto);
    alone_project.spec("prod", &replica_kms_spec(&unique("one-runner")));
    let (alone, runs) = apply_at_once(std::slice::from_ref(&alone_project));
    runs[0].1.expect_code(0);
    for round in 1..=3 {
        let bucket = unique("six-runners");
        let projects: Vec<Project> = (0..6)
            .map(|_| {
                let project = Project::with_moto(moto);
                project.spec("prod", &replica_kms_spec(&bucket));
                project
            })
            .collect();
        let (together, runs) = apply_at_once(&projects);
        for (_, run) in &runs {
            assert_eq!(
                run.code, 0,
                "round {round}: every runner converges\n{}{}",
                run.stdout, run.stderr
            );
        }
        let waited = |run: &crate::support::Run| run.stderr.contains("waiting for another apply");
        let winners: Vec<Duration> = runs
            .iter()
            .filter(|(_, run)| !waited(run))
            .map(|(took, _)| *took)
            .collect();
        // A run that planned after the winner released finds nothing to lock.
        assert!(!winners.is_empty(), "round {round}: a run took the lock");
        for (_, run) in runs.iter().filter(|(_, run)| waited(run)) {
            assert!(
                run.stderr
                    .contains("planning again: another apply held the lock"),
                "{}",
                run.stderr
            );
        }
        for project in &projects {
            project.statebucket(&["check"]).expect_code(0);
        }
        assert_eq!(
            keys_in(&projects[0], "eu-west-1", &bucket),
            1,
            "round {round}"
        );
        assert_eq!(
            keys_in(&projects[0], "eu-central-1", &format!("{bucket}-replica")),
            1,
            "round {round}"
        );
        let winner = winners.iter().copied().max().expect("a winner");
        eprintln!(
            "six runners, round {round}: all six {:.2} s, the lock's winner {:.2} s (ratio {:.2}); one apply alone {:.2} s (ratio {:.2})",
            together.as_secs_f64(),
            winner.as_secs_f64(),
            together.as_secs_f64() / winner.as_secs_f64(),
            alone.as_secs_f64(),
            together.as_secs_f64() / alone.as_secs_f64()
        );
    }
}
