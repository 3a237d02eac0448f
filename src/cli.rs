//! Command line: arguments, output (text or JSON on stdout; progress and logs on stderr),
//! confirmation, and exit codes.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;

use crate::access::Tier;
use crate::aws::{CallerIdentity, RequestCounts, RequestLog};
use crate::engine::{Connection, Engine, EnvFailure, EnvResult};
use crate::plan::{Change, Facet};
use crate::policy;
use crate::progress::Progress;
use crate::project::{self, Environment, write_file_atomically};
use crate::render::KmsKeyId;
use crate::report;
use crate::spec::{Diagnostic, Encryption, EndpointUrl, Layout, ProfileName};

/// Exit codes, as `terraform plan -detailed-exitcode` uses them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES: u8 = 2;
}

const EXAMPLES: &str = "\
Examples:
  statebucket validate                         check every environments/*.yaml, offline
  statebucket plan dev                         show what apply would change in environments/dev.yaml
  statebucket apply --auto-approve             bootstrap or repair every environment
  statebucket check --output json              CI drift check: exit 0 in sync, 2 drift, 1 error
  statebucket render                           write each environment's backend.hcl, offline
  statebucket policy prod                      print the bucket policy for environments/prod.yaml
  statebucket --profile admin apply prod       bootstrap as `admin`; backend.hcl keeps the spec's profile
  statebucket --endpoint-url http://127.0.0.1:5000 apply --auto-approve
                                               run against a local S3 (moto, MinIO)

Exit codes: 0 success / in sync, 1 error, 2 changes present (plan --detailed-exitcode, check).";

#[derive(Debug, Parser)]
#[command(
    name = "statebucket",
    version,
    about = "Bootstrap and guard the S3 bucket behind Terraform/OpenTofu remote state",
    long_about = "Bootstrap and guard the S3 bucket behind Terraform/OpenTofu remote state.\n\n\
Each environments/<env>.yaml describes one state bucket: its region, encryption, the users and \
roles Terraform runs as, and the backend.hcl to write. statebucket creates what is missing, \
repairs drift, and never deletes, suspends or loosens anything.",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Run as if started in DIR (the project root holding environments/).
    #[arg(long, global = true, value_name = "DIR")]
    chdir: Option<PathBuf>,

    /// Send every AWS request to URL (S3-compatible store or local test server); also
    /// written into backend.hcl. Default: AWS_ENDPOINT_URL, then the spec's `endpoint`.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,

    /// Run statebucket itself as this AWS profile (e.g. an admin). Never changes the
    /// `profile` written into backend.hcl, which is the spec's.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,

    /// Output format for results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// How many environments to work on at once.
    #[arg(long, global = true, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,

    /// More detail on stderr (-v: statebucket's steps, -vv: AWS SDK requests).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Never draw progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    no_progress: bool,

    /// Seconds one attempt of an AWS request may take before it is retried (the SDK's
    /// standard retry mode, 5 attempts).
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    request_timeout: u64,

    /// Write a bucket policy even if it explicitly denies statebucket's own identity or the
    /// identity Terraform runs as (refused otherwise, with the statements that deny).
    #[arg(long, global = true)]
    allow_lockout: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check spec files and policy templates offline; every problem with file:line:column.
    Validate {
        /// Spec files or environment names (default: every environments/*.yaml).
        specs: Vec<String>,
    },
    /// Write each environment's backend.hcl offline (only when its content changes).
    Render {
        /// Spec files or environment names (default: every environments/*.yaml).
        specs: Vec<String>,
        /// Print to stdout instead of writing files.
        #[arg(long)]
        stdout: bool,
    },
    /// Print the bucket policy statebucket would attach for one environment, offline.
    Policy {
        /// Environment name or spec file.
        env: String,
        /// Print instead the least-privilege IAM policy a writer (or with --reader, a reader)
        /// of one stack needs; `access.attach_identity_policy` attaches to each principal the
        /// union of what its grants need.
        #[arg(long)]
        identity: bool,
        /// The stack whose identity policy to print (needed when the spec has `stacks:`).
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
        /// The read-only tier's identity policy: read state, take and release the lock.
        #[arg(long)]
        reader: bool,
    },
    /// Show what apply would change. Read-only.
    Plan {
        /// Spec files or environment names (default: every environments/*.yaml).
        specs: Vec<String>,
        /// Exit 0 when in sync, 2 when there are changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Show the plan, ask, then create and repair what differs; verify afterwards.
    Apply {
        /// Spec files or environment names (default: every environments/*.yaml).
        specs: Vec<String>,
        /// Apply without asking. Required when stdin is not a terminal.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Will `terraform init -backend-config=<backend.hcl>` work for me, here, now? Resolves
    /// the identity the backend will use, checks it against the bucket policy, and probes
    /// what Terraform does (list, read, lock, release, KMS). Exit 0 all ok, 1 otherwise.
    Doctor {
        /// Spec files or environment names (default: every environments/*.yaml).
        specs: Vec<String>,
        /// The Terraform directory, to look for `provider "aws"` credentials the backend
        /// would ignore.
        #[arg(long, value_name = "DIR")]
        terraform_dir: Option<PathBuf>,
    },
    /// For CI: never writes. Exit 0 in sync, 2 drift, 1 error.
    Check {
        /// Spec files or environment names (default: every environments/*.yaml).
        specs: Vec<String>,
    },
}

/// Where output goes: data to stdout, everything else to stderr.
struct Printer {
    quiet: bool,
}

impl Printer {
    #[allow(clippy::print_stdout)]
    fn data(&self, text: &str) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn info(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn error(&self, text: &str) {
        eprintln!("{text}");
    }

    fn failure(&self, failure: &EnvFailure) {
        self.error(&format!("error: {}", failure.message));
        if let Some(hint) = &failure.hint {
            self.error(&format!("  hint: {hint}"));
        }
    }

    fn diagnostics(&self, diagnostics: &[Diagnostic]) {
        for diagnostic in diagnostics {
            self.error(&diagnostic.to_string());
        }
        let files: std::collections::BTreeSet<&str> =
            diagnostics.iter().map(|d| d.file.as_str()).collect();
        self.error(&format!(
            "{} problem{} in {} file{}; nothing was sent to AWS",
            diagnostics.len(),
            if diagnostics.len() == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" },
        ));
    }
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    init_logging(cli.verbose, cli.quiet);
    if let Some(url) = &cli.endpoint_url {
        // Credential providers (assume-role profiles, SSO) build their own STS clients from
        // the environment, not from our client config; without this they would call real
        // AWS while every other request goes to the endpoint.
        // SAFETY: no other thread exists yet; the runtime is started later in `online`.
        unsafe { std::env::set_var("AWS_ENDPOINT_URL", url) };
    }
    let printer = Printer { quiet: cli.quiet };
    if let Some(directory) = &cli.chdir
        && let Err(error) = std::env::set_current_dir(directory)
    {
        printer.error(&format!(
            "error: cannot change to {}: {error}",
            directory.display()
        ));
        return exit::ERROR;
    }
    match &cli.command {
        Command::Validate { specs } => validate(&cli, &printer, specs),
        Command::Render { specs, stdout } => render(&cli, &printer, specs, *stdout),
        Command::Policy {
            env,
            identity,
            stack,
            reader,
        } => print_policy(&cli, &printer, env, *identity, stack.as_deref(), *reader),
        Command::Plan {
            specs,
            detailed_exitcode,
        } => online(
            &cli,
            &printer,
            specs,
            Mode::Plan {
                detailed_exitcode: *detailed_exitcode,
            },
        ),
        Command::Apply {
            specs,
            auto_approve,
        } => online(
            &cli,
            &printer,
            specs,
            Mode::Apply {
                auto_approve: *auto_approve,
            },
        ),
        Command::Check { specs } => online(&cli, &printer, specs, Mode::Check),
        Command::Doctor {
            specs,
            terraform_dir,
        } => doctor(&cli, &printer, specs, terraform_dir.as_deref()),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let filter = match (quiet, verbose) {
        (true, _) => "off",
        // The SDK's own warnings repeat what statebucket's error messages already say.
        (false, 0) => "off,statebucket=warn",
        (false, 1) => "off,statebucket=debug",
        // The SDK's request logs; signing internals (`aws_sigv4`) stay off so that no
        // credential material is ever printed.
        (false, _) => {
            "info,statebucket=debug,aws_smithy_runtime=debug,aws_config=debug,aws_sigv4=off,hyper=info"
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(crate::redact::RedactedStderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(verbose > 1)
        .without_time()
        .try_init();
}

fn load(printer: &Printer, specs: &[String]) -> Option<Vec<Environment>> {
    let paths = match project::spec_paths(specs) {
        Ok(paths) => paths,
        Err(message) => {
            printer.error(&format!("error: {message}"));
            return None;
        }
    };
    match project::load(&paths) {
        Ok(environments) => Some(environments),
        Err(diagnostics) => {
            printer.diagnostics(&diagnostics);
            None
        }
    }
}

/// The environments and how to reach AWS, or `None` after printing why not.
fn load_connected(
    cli: &Cli,
    printer: &Printer,
    specs: &[String],
) -> Option<(Vec<Environment>, Connection)> {
    let environments = load(printer, specs)?;
    match connection(cli) {
        Ok(connection) => Some((environments, connection)),
        Err(message) => {
            printer.error(&format!("error: {message}"));
            None
        }
    }
}

fn validate(cli: &Cli, printer: &Printer, specs: &[String]) -> u8 {
    let paths = match project::spec_paths(specs) {
        Ok(paths) => paths,
        Err(message) => {
            printer.error(&format!("error: {message}"));
            return exit::ERROR;
        }
    };
    let result = project::load(&paths);
    if cli.output == OutputFormat::Json {
        let diagnostics = result.as_ref().err().cloned().unwrap_or_default();
        printer.data(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({ "valid": diagnostics.is_empty(), "specs": paths, "diagnostics": diagnostics })).expect("JSON")
        ));
    }
    match result {
        Ok(environments) => {
            if cli.output == OutputFormat::Text {
                printer.data(&format!(
                    "{} spec{} valid: {}\n",
                    environments.len(),
                    if environments.len() == 1 { "" } else { "s" },
                    environments
                        .iter()
                        .map(|e| e.spec.source.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            exit::OK
        }
        Err(diagnostics) => {
            if cli.output == OutputFormat::Text {
                printer.diagnostics(&diagnostics);
            }
            exit::ERROR
        }
    }
}

fn endpoint_from_env() -> Result<Option<EndpointUrl>, String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(value) if !value.is_empty() => EndpointUrl::parse(&value)
            .map(Some)
            .map_err(|problem| format!("AWS_ENDPOINT_URL: {}", problem.message)),
        _ => Ok(None),
    }
}

fn connection(cli: &Cli) -> Result<Connection, String> {
    let endpoint_flag = cli
        .endpoint_url
        .as_deref()
        .map(EndpointUrl::parse)
        .transpose()
        .map_err(|problem| format!("--endpoint-url: {}", problem.message))?;
    let profile_flag = cli
        .profile
        .as_deref()
        .map(ProfileName::parse)
        .transpose()
        .map_err(|problem| format!("--profile: {}", problem.message))?;
    Ok(Connection {
        attempt_timeout: std::time::Duration::from_secs(cli.request_timeout),
        endpoint_flag,
        endpoint_env: endpoint_from_env()?,
        profile_flag,
    })
}

fn render(cli: &Cli, printer: &Printer, specs: &[String], to_stdout: bool) -> u8 {
    let Some((environments, connection)) = load_connected(cli, printer, specs) else {
        return exit::ERROR;
    };
    let mut status = exit::OK;
    for environment in &environments {
        let spec = &environment.spec;
        let desired = match environment.offline_desired(connection.endpoint(spec).as_ref()) {
            Ok(desired) => desired,
            Err(diagnostics) => {
                printer.diagnostics(&diagnostics);
                status = exit::ERROR;
                continue;
            }
        };
        for stack in &desired.stacks {
            let content = desired.backend_file(stack, KmsKeyId::FromSpec);
            let file = &stack.spec.file;
            if to_stdout {
                printer.data(&content);
                continue;
            }
            match write_file_atomically(file, &content) {
                Ok(true) => printer.data(&format!("wrote {file}\n")),
                Ok(false) => printer.data(&format!("unchanged {file}\n")),
                Err(error) => {
                    printer.error(&format!("error: cannot write {file}: {error}"));
                    status = exit::ERROR;
                }
            }
        }
        if let Encryption::Kms(key) = &spec.bucket.encryption {
            printer.info(&format!(
                "note: {}: kms_key_id is `{}` as the spec names it; `statebucket apply` writes the key's ARN",
                spec.name,
                key.reference()
            ));
        }
    }
    status
}

fn print_policy(
    cli: &Cli,
    printer: &Printer,
    env: &str,
    identity: bool,
    stack: Option<&str>,
    reader: bool,
) -> u8 {
    let Some((environments, connection)) = load_connected(cli, printer, &[env.to_owned()]) else {
        return exit::ERROR;
    };
    let environment = &environments[0];
    let spec = &environment.spec;
    if (stack.is_some() || reader) && !identity {
        printer.error("error: --stack and --reader select an identity policy\n  hint: add --identity (the bucket policy covers every stack and tier)");
        return exit::ERROR;
    }
    if spec.account_id.is_none() {
        let needs_account = if identity {
            matches!(&spec.bucket.encryption, Encryption::Kms(key) if !key.reference().starts_with("arn:"))
                || !spec.lock_tables().is_empty()
        } else {
            spec.all_principals()
                .iter()
                .any(|p| matches!(p, crate::spec::PrincipalRef::Name { .. }))
        };
        if needs_account {
            printer.error(&format!(
                "error: {} has no `account_id`, so the ARNs this policy needs are only known online\n  hint: set `account_id` in the spec, or use full ARNs; `statebucket plan` uses the live account",
                spec.source
            ));
            return exit::ERROR;
        }
    }
    if identity {
        let chosen = match (stack, spec.layout, spec.stacks.as_slice()) {
            (Some(name), _, _) => spec.stack(name),
            (None, Layout::Backend, [only]) => Some(only),
            (None, _, _) => None,
        };
        let Some(chosen) = chosen else {
            let names: Vec<&str> = spec
                .stacks
                .iter()
                .map(|stack| stack.name.as_str())
                .collect();
            let problem = match stack {
                Some(name) => format!("{} has no stack `{name}`", spec.source),
                None => format!(
                    "{} has several stacks; each tier of each has its own identity policy",
                    spec.source
                ),
            };
            printer.error(&format!(
                "error: {problem}\n  hint: name one with --stack ({}), and add --reader for the read-only tier",
                names.join(", ")
            ));
            return exit::ERROR;
        };
        let tier = if reader { Tier::Reader } else { Tier::Writer };
        printer.data(&format!(
            "{}\n",
            policy::tier_identity_policy(spec, &environment.offline_account(), chosen, tier)
                .to_json()
        ));
        return exit::OK;
    }
    match environment.offline_desired(connection.endpoint(spec).as_ref()) {
        Ok(desired) => {
            printer.data(&format!(
                "{}\n",
                policy::merge(None, &desired.policy).to_json()
            ));
            exit::OK
        }
        Err(diagnostics) => {
            printer.diagnostics(&diagnostics);
            exit::ERROR
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plan { detailed_exitcode: bool },
    Apply { auto_approve: bool },
    Check,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plan { .. } => "plan",
            Mode::Apply { .. } => "apply",
            Mode::Check => "check",
        }
    }
}

/// One environment in the JSON document.
#[derive(Debug, Serialize)]
struct EnvReport<'a> {
    name: &'a str,
    spec: &'a str,
    bucket: &'a str,
    region: &'a str,
    /// `in_sync`, `changes`, `applied` or `error`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<&'a CallerIdentity>,
    changes: Vec<&'a Change>,
    in_sync: Vec<Facet>,
    kept_statements: Vec<&'a str>,
    notes: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a EnvFailure>,
}

fn env_report<'a>(result: &'a EnvResult<'_>, applied: bool) -> EnvReport<'a> {
    let environment = match result {
        Ok(planned) => planned.environment,
        Err((environment, _)) => *environment,
    };
    let spec = &environment.spec;
    let mut report = EnvReport {
        name: spec.name.as_str(),
        spec: &spec.source,
        bucket: spec.bucket.name.as_str(),
        region: spec.region.as_str(),
        status: "error",
        caller: None,
        changes: Vec::new(),
        in_sync: Vec::new(),
        kept_statements: Vec::new(),
        notes: Vec::new(),
        error: None,
    };
    match result {
        Ok(planned) => {
            report.caller = Some(&planned.caller);
            report.changes = planned.plan.changes.iter().collect();
            report.in_sync = planned.plan.in_sync.clone();
            report.kept_statements = planned
                .plan
                .kept_statements
                .iter()
                .map(String::as_str)
                .collect();
            report.notes = planned.plan.notes.iter().map(String::as_str).collect();
            report.status = match (planned.plan.is_empty(), applied) {
                (true, _) => "in_sync",
                (false, true) => "applied",
                (false, false) => "changes",
            };
        }
        Err((_, failure)) => report.error = Some(failure),
    }
    report
}

fn print_text_plans(printer: &Printer, results: &[EnvResult<'_>]) {
    for result in results {
        match result {
            Ok(planned) => {
                let spec = &planned.environment.spec;
                let heading = format!(
                    "{} ({}): s3://{} in {}, as {}",
                    spec.name, spec.source, spec.bucket.name, spec.region, planned.caller.arn
                );
                if planned.plan.is_empty() {
                    let notes: String = planned
                        .plan
                        .notes
                        .iter()
                        .map(|note| format!("  ! {note}\n"))
                        .collect();
                    printer.data(&format!(
                        "{heading}\n  = in sync ({} facets checked)\n{notes}\n",
                        planned.plan.in_sync.len()
                    ));
                } else {
                    printer.data(&format!(
                        "{heading}\n{}  {}\n\n",
                        report::plan_lines(&planned.plan),
                        report::plan_summary(&planned.plan)
                    ));
                }
            }
            Err((environment, failure)) => {
                printer.data(&format!(
                    "{} ({}): error\n\n",
                    environment.spec.name, environment.spec.source
                ));
                printer.failure(failure);
            }
        }
    }
}

fn json_document(
    mode: Mode,
    results: &[EnvResult<'_>],
    applied: bool,
    requests: &RequestCounts,
) -> String {
    let environments: Vec<EnvReport<'_>> = results
        .iter()
        .map(|result| env_report(result, applied))
        .collect();
    let document = json!({
        "format_version": 1,
        "command": mode.name(),
        "environments": environments,
        "requests": requests,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&document).expect("JSON")
    )
}

fn online(cli: &Cli, printer: &Printer, specs: &[String], mode: Mode) -> u8 {
    let Some((environments, connection)) = load_connected(cli, printer, specs) else {
        return exit::ERROR;
    };
    let progress_enabled =
        !cli.no_progress && !cli.quiet && cli.verbose == 0 && io::stderr().is_terminal();
    let log = Arc::new(RequestLog::default());
    let engine = Engine {
        connection,
        lookups: crate::aws::Lookups::default(),
        allow_lockout: cli.allow_lockout,
        concurrency: usize::from(cli.concurrency),
        log: Arc::clone(&log),
        progress: Progress::new(progress_enabled),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let _locks = match mode {
        Mode::Apply { .. } => {
            // Log buckets too: their policies are read, merged and written back.
            let buckets: Vec<&str> = environments
                .iter()
                .flat_map(|environment| {
                    let bucket = &environment.spec.bucket;
                    std::iter::once(bucket.name.as_str()).chain(
                        bucket
                            .logging
                            .as_ref()
                            .map(|logging| logging.bucket.as_str()),
                    )
                })
                .collect();
            let waiting = |bucket: &str, path: &std::path::Path| {
                printer.info(&format!("waiting for another `statebucket apply` on bucket {bucket} to finish (lock {})", path.display()));
            };
            match project::lock_buckets(&buckets, waiting) {
                Ok(locks) => Some(locks),
                Err(error) => {
                    printer.error(&format!("error: cannot take the apply lock: {error}"));
                    return exit::ERROR;
                }
            }
        }
        _ => None,
    };
    runtime.block_on(async {
        let planned = engine.plan_all(&environments).await;
        let any_error = planned.iter().any(Result::is_err);
        let any_changes = planned
            .iter()
            .any(|result| result.as_ref().is_ok_and(|p| !p.plan.is_empty()));

        let Mode::Apply { auto_approve } = mode else {
            match cli.output {
                OutputFormat::Text => print_text_plans(printer, &planned),
                OutputFormat::Json => {
                    printer.data(&json_document(mode, &planned, false, &log.counts()))
                }
            }
            return match (any_error, any_changes, mode) {
                (true, _, _) => exit::ERROR,
                (
                    false,
                    true,
                    Mode::Check
                    | Mode::Plan {
                        detailed_exitcode: true,
                    },
                ) => exit::CHANGES,
                _ => exit::OK,
            };
        };

        if cli.output == OutputFormat::Text {
            print_text_plans(printer, &planned);
        }
        if any_changes && !auto_approve && !confirm(printer) {
            if cli.output == OutputFormat::Json {
                printer.data(&json_document(mode, &planned, false, &log.counts()));
            }
            return exit::ERROR;
        }
        let results = engine.apply_all(planned).await;
        let counts = log.counts();
        match cli.output {
            OutputFormat::Json => printer.data(&json_document(mode, &results, true, &counts)),
            OutputFormat::Text => {
                let mut applied = 0;
                for result in &results {
                    match result {
                        Ok(_) => applied += 1,
                        Err((environment, failure)) => {
                            printer.error(&format!("{}: apply failed", environment.spec.name));
                            printer.failure(failure);
                        }
                    }
                }
                printer.data(&format!(
                    "Apply complete: {applied} of {} converged ({}: {}, {}).\n",
                    plural(results.len() as u64, "environment"),
                    plural(counts.reads + counts.writes, "AWS request"),
                    plural(counts.reads, "read"),
                    plural(counts.writes, "write"),
                ));
            }
        }
        if results.iter().any(Result::is_err) {
            exit::ERROR
        } else {
            exit::OK
        }
    })
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn doctor(
    cli: &Cli,
    printer: &Printer,
    specs: &[String],
    terraform_dir: Option<&std::path::Path>,
) -> u8 {
    let Some((environments, connection)) = load_connected(cli, printer, specs) else {
        return exit::ERROR;
    };
    let log = Arc::new(RequestLog::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut desired = Vec::new();
    for environment in &environments {
        match environment.offline_desired(connection.endpoint(&environment.spec).as_ref()) {
            Ok(built) => desired.push(built),
            Err(diagnostics) => {
                printer.diagnostics(&diagnostics);
                return exit::ERROR;
            }
        }
    }
    // One report per stack: its backend.hcl, as the identity that file makes Terraform use.
    let reports: Vec<(
        &crate::desired::DesiredBucket<'_>,
        &crate::desired::DesiredStack<'_>,
        Vec<crate::doctor::Check>,
    )> = runtime.block_on(async {
        let mut reports = Vec::new();
        for bucket in &desired {
            for stack in &bucket.stacks {
                let checks =
                    crate::doctor::diagnose(bucket, stack, &connection, &log, terraform_dir).await;
                reports.push((bucket, stack, checks));
            }
        }
        reports
    });
    let failed = reports
        .iter()
        .flat_map(|(_, _, checks)| checks)
        .filter(|check| check.status == crate::doctor::Status::Fail)
        .count();
    match cli.output {
        OutputFormat::Json => {
            let environments: Vec<serde_json::Value> = reports
                .iter()
                .map(|(bucket, stack, checks)| {
                    json!({
                        "name": bucket.spec.name.as_str(),
                        "stack": stack.spec.name.as_str(),
                        "spec": bucket.spec.source,
                        "backend_file": stack.spec.file,
                        "ok": !checks.iter().any(|check| check.status == crate::doctor::Status::Fail),
                        "checks": checks,
                    })
                })
                .collect();
            printer.data(&format!(
                "{}\n",
                serde_json::to_string_pretty(&json!({"format_version": 1, "command": "doctor", "environments": environments, "failed": failed})).expect("JSON")
            ));
        }
        OutputFormat::Text => {
            for (bucket, stack, checks) in &reports {
                let spec = bucket.spec;
                let name = match spec.layout {
                    Layout::Backend => spec.name.to_string(),
                    Layout::Stacks => format!("{} stack {}", spec.name, stack.spec.name),
                };
                let mut text = format!(
                    "doctor {name} ({}), backend {}\n",
                    spec.source, stack.spec.file
                );
                for check in checks {
                    text.push_str(&format!(
                        "  {:<5} {:<17} {}\n",
                        check.status.to_string(),
                        check.check,
                        check.detail
                    ));
                    if let Some(fix) = check
                        .fix
                        .as_ref()
                        .filter(|_| check.status != crate::doctor::Status::Ok)
                    {
                        text.push_str(&format!("  {:<5} {:<17} fix: {fix}\n", "", ""));
                    }
                }
                printer.data(&format!("{text}\n"));
            }
            printer.data(&if failed == 0 {
                "Doctor: every check passed.\n".to_owned()
            } else {
                format!("Doctor: {} failed.\n", plural(failed as u64, "check"))
            });
        }
    }
    if failed == 0 { exit::OK } else { exit::ERROR }
}

/// Asks on the terminal. Without a terminal on stdin there is nobody to ask: never assume
/// yes; the caller must pass --auto-approve.
fn confirm(printer: &Printer) -> bool {
    if !io::stdin().is_terminal() {
        printer.error(
            "error: refusing to apply without confirmation: stdin is not a terminal\n  hint: review the plan above and rerun with --auto-approve (e.g. in CI)",
        );
        return false;
    }
    eprint!("Do you want to perform these actions? Only 'yes' will be accepted: ");
    let _ = io::stderr().flush();
    let mut answer = String::new();
    if io::stdin().lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
        printer.error("Apply cancelled: nothing was changed.");
        return false;
    }
    true
}
