//! The command line: parsing, the commands, and the one place where a command's result
//! becomes output and an exit code. Commands return `Result<Outcome, Error>`; they print
//! their data through the `Printer` and never exit the process themselves.

mod args;
mod audit;
mod doctor;
mod import;
mod init;
mod json;
mod output;
mod policy;
mod probe;
mod reconcile;
mod render;
mod state;
mod tooling;
mod validate;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

pub use args::Cli;
use args::{Command, ConnectionArgs, EndpointArgs, GlobalArgs, OutputFormat};
use output::{Printer, Verbosity};

use crate::engine::Connection;
use crate::error::{Error, exit};
use crate::project::{self, Environment};
use crate::spec::{EndpointUrl, EnvSpec, Layout, ProfileName, StackSpec};

/// What a command that did not fail found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for `check` and `plan --detailed-exitcode`: in sync.
    Success,
    /// `check` found drift, or `plan --detailed-exitcode` found changes.
    Changes,
    /// Some environments (or checks) failed; each failure was reported with the results.
    Failed,
}

impl Outcome {
    fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => exit::OK,
            Outcome::Changes => exit::CHANGES,
            Outcome::Failed => exit::ERROR,
        }
    }
}

/// What every command gets: where to print and in which format.
pub struct Context<'a> {
    pub printer: &'a Printer,
    pub output: OutputFormat,
}

impl Context<'_> {
    fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// Parses the process's arguments and runs the command; the exit code to end with.
pub fn main() -> u8 {
    let arguments: Vec<OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&arguments) {
        Ok(cli) => run(cli),
        Err(error) => usage_error(&error, &arguments),
    }
}

/// `--help` and `--version` succeed; every other parse error is a usage error (64), never
/// 2, which means "changes present".
fn usage_error(error: &clap::Error, arguments: &[OsString]) -> u8 {
    let _ = error.print();
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return exit::OK;
    }
    if let Some((option, command)) = misplaced_option(arguments) {
        Printer::new(Verbosity::Normal, true).info(&format!(
            "  hint: {option} belongs to the command now: put it after it, e.g. `statebucket {} {option} …`",
            command.unwrap_or("plan")
        ));
    }
    exit::USAGE
}

/// An option of the online commands given before the command name (older releases took it
/// there, and scripts still do),
/// and the command given after it, if any.
fn misplaced_option(arguments: &[OsString]) -> Option<(&'static str, Option<&'static str>)> {
    let commands = [
        "validate",
        "render",
        "policy",
        "plan",
        "apply",
        "check",
        "doctor",
        "state",
        "init",
        "import",
        "completions",
        "man",
        "schema",
    ];
    let mut misplaced = None;
    for argument in arguments.iter().skip(1) {
        let argument = argument.to_string_lossy();
        if let Some(command) = commands.iter().find(|command| **command == argument) {
            return misplaced.map(|option| (option, Some(*command)));
        }
        if misplaced.is_none() {
            misplaced = args::COMMAND_OPTIONS
                .iter()
                .copied()
                .find(|option| argument == *option || argument.starts_with(&format!("{option}=")));
        }
    }
    misplaced.map(|option| (option, None))
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    let global = &cli.global;
    let verbosity = match (global.quiet, global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, level) => Verbosity::Verbose(level),
    };
    init_logging(verbosity);
    let printer = Printer::new(verbosity, global.no_progress);
    let context = Context {
        printer: &printer,
        output: global.output,
    };
    let result = execute(&context, global, &cli.command);
    finish(&context, cli.command.name(), result)
}

fn execute(
    context: &Context<'_>,
    global: &GlobalArgs,
    command: &Command,
) -> Result<Outcome, Error> {
    if let Some(directory) = &global.chdir {
        change_directory(directory)?;
    }
    match command {
        Command::Validate { specs } => validate::run(context, &specs.specs),
        Command::Render {
            specs,
            endpoint,
            stdout,
        } => render::run(context, &specs.specs, endpoint, *stdout),
        Command::Policy {
            env,
            identity,
            stack,
            reader,
            replica,
            endpoint,
        } => policy::run(
            context,
            env,
            endpoint,
            *identity,
            stack.as_deref(),
            *reader,
            *replica,
        ),
        Command::Plan {
            specs,
            aws,
            lockout,
            detailed_exitcode,
        } => {
            let mode = reconcile::Mode::Plan {
                detailed_exitcode: *detailed_exitcode,
            };
            reconcile::run(context, &specs.specs, aws, lockout.allow_lockout, mode)
        }
        Command::Apply {
            specs,
            aws,
            lockout,
            auto_approve,
            lock_timeout,
            settle_timeout,
        } => {
            let mode = reconcile::Mode::Apply {
                auto_approve: *auto_approve,
                lock_timeout: Duration::from_secs(*lock_timeout),
                settle_timeout: Duration::from_secs(*settle_timeout),
            };
            reconcile::run(context, &specs.specs, aws, lockout.allow_lockout, mode)
        }
        Command::Check { specs, aws } => {
            reconcile::run(context, &specs.specs, aws, false, reconcile::Mode::Check)
        }
        Command::Doctor {
            specs,
            aws,
            terraform_dir,
        } => doctor::run(context, &specs.specs, aws, terraform_dir.as_deref()),
        Command::State(command) => state::run(context, command),
        Command::Init(arguments) => init::run(context, arguments),
        Command::Import(arguments) => import::run(context, arguments),
        Command::Probe(arguments) => probe::run(context, arguments),
        Command::Audit(arguments) => audit::run(context, arguments),
        Command::Completions { shell } => tooling::completions(context, *shell),
        Command::Man => tooling::man(context),
        Command::Schema => tooling::schema(context),
    }
}

/// `--chdir DIR`.
fn change_directory(directory: &std::path::Path) -> Result<(), Error> {
    std::env::set_current_dir(directory).map_err(|error| Error::File {
        doing: "change to",
        path: directory.display().to_string(),
        cause: error.to_string(),
        hint: Some("--chdir names the project root, the directory holding environments/".into()),
    })
}

/// The one place a result becomes an exit code. An error is printed in the format asked
/// for: a JSON document on stdout (and the message on stderr for people), or the message
/// and its hint on stderr.
fn finish(context: &Context<'_>, command: &str, result: Result<Outcome, Error>) -> u8 {
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            if context.json() {
                context.printer.data(&json::document(
                    command,
                    json::Failed {
                        error: error.report(),
                    },
                ));
            }
            context.printer.error(&error);
            error.exit_code()
        }
    }
}

fn init_logging(verbosity: Verbosity) {
    let filter = match verbosity {
        Verbosity::Quiet => "off",
        // statebucket's own messages go through the Printer; the SDK's warnings repeat what
        // statebucket's error messages already say.
        Verbosity::Normal => "off",
        Verbosity::Verbose(1) => "off,statebucket=debug",
        // The SDK's request logs; signing internals (`aws_sigv4`) stay off so that no
        // credential material is ever printed.
        Verbosity::Verbose(_) => {
            "info,statebucket=debug,aws_smithy_runtime=debug,aws_config=debug,aws_sigv4=off,hyper=info"
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(crate::redact::RedactedStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(matches!(verbosity, Verbosity::Verbose(level) if level > 1))
        .without_time()
        .try_init();
}

/// The spec files named (or all of them), read and validated.
fn load(specs: &[String]) -> Result<Vec<Environment>, Error> {
    project::load(&project::spec_paths(specs)?)
}

/// A value of the command line or the environment, validated by `parse`; a problem is a
/// usage error naming where the value came from.
fn option<T>(
    name: &str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, crate::spec::names::Problem>,
) -> Result<Option<T>, Error> {
    value
        .map(parse)
        .transpose()
        .map_err(|problem| Error::Usage {
            message: format!("{name}: {}", problem.message),
            hint: problem.hint,
        })
}

/// A command-line value parsed with a name type's rules; a usage error names the option.
fn given<T>(
    name: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, crate::spec::names::Problem>,
) -> Result<T, Error> {
    option(name, Some(text), parse).map(|parsed| parsed.expect("a value was given"))
}

/// `--region`, then AWS_REGION, then AWS_DEFAULT_REGION, then `default`.
fn region_or_environment(flag: Option<&str>, default: &str) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| default.to_owned())
}

/// The endpoint given on the command line, then in the environment, validated; for the
/// offline commands, which only need the endpoint (it shapes what they print).
fn offline_connection(endpoint: &EndpointArgs) -> Result<Connection, Error> {
    let from_environment = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|value| !value.is_empty());
    Ok(Connection {
        attempt_timeout: Duration::ZERO,
        endpoint_flag: option(
            "--endpoint-url",
            endpoint.endpoint_url.as_deref(),
            EndpointUrl::parse,
        )?,
        endpoint_env: option(
            "AWS_ENDPOINT_URL",
            from_environment.as_deref(),
            EndpointUrl::parse,
        )?,
        profile_flag: None,
    })
}

/// How the online commands reach AWS.
fn connection(aws: &ConnectionArgs) -> Result<Connection, Error> {
    let Connection {
        endpoint_flag,
        endpoint_env,
        ..
    } = offline_connection(&aws.endpoint)?;
    let profile_flag = option("--profile", aws.profile.as_deref(), ProfileName::parse)?;
    if let Some(url) = &endpoint_flag {
        // Credential providers (assume-role profiles, SSO) build their own STS clients from
        // the environment, not from our client config; without this they would call real
        // AWS while every other request goes to the endpoint.
        // SAFETY: no other thread exists yet; the runtime is started later.
        unsafe { std::env::set_var("AWS_ENDPOINT_URL", url.as_str()) };
    }
    Ok(Connection {
        attempt_timeout: Duration::from_secs(aws.request_timeout),
        endpoint_flag,
        endpoint_env,
        profile_flag,
    })
}

/// Runs `work` to completion, or stops it at Ctrl-C: dropping it cancels every request in
/// flight; `on_interrupt` then runs (e.g. removes a probe object) before the command ends
/// with `Error::Interrupted`.
fn interruptible<T, W, C>(work: W, on_interrupt: C) -> Result<T, Error>
where
    W: std::future::Future<Output = Result<T, Error>>,
    C: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        tokio::select! {
            result = work => result,
            _ = tokio::signal::ctrl_c() => {
                on_interrupt.await;
                Err(Error::Interrupted)
            }
        }
    })
}

/// The stack `--stack` names, or the spec's only one; with several and none named, a usage
/// error listing them (`several`: why one must be chosen; `hint_extra` ends the hint).
fn select_stack<'s>(
    spec: &'s EnvSpec,
    name: Option<&str>,
    several: &str,
    hint_extra: &str,
) -> Result<&'s StackSpec, Error> {
    let chosen = match (name, spec.stacks.as_slice()) {
        (Some(name), _) => spec.stack(name),
        (None, [only]) => Some(only),
        (None, _) => None,
    };
    chosen.ok_or_else(|| {
        let names: Vec<&str> = spec
            .stacks
            .iter()
            .map(|stack| stack.name.as_str())
            .collect();
        Error::Usage {
            message: match name {
                Some(name) => format!("{} has no stack `{name}`", spec.source),
                None => format!("{} has several stacks; {several}", spec.source),
            },
            hint: Some(format!(
                "name one with --stack ({}){hint_extra}",
                names.join(", ")
            )),
        }
    })
}

/// `dev` for the `backend:` layout, `dev stack network` for a spec with stacks.
fn stack_label(spec: &EnvSpec, stack: &StackSpec) -> String {
    match spec.layout {
        Layout::Backend => spec.name.to_string(),
        Layout::Stacks => format!("{} stack {}", spec.name, stack.name),
    }
}

/// Asks on the terminal. Without a terminal on stdin there is nobody to ask: never assume
/// yes; `--auto-approve` is required.
fn confirm(context: &Context<'_>, action: &'static str, question: &str) -> Result<(), Error> {
    match context.printer.ask(question) {
        None => Err(Error::NoTerminal { action }),
        Some(answer) if answer == "yes" => Ok(()),
        Some(_) => Err(Error::Cancelled { action }),
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_given_before_its_command_is_named() {
        let arguments =
            |line: &str| -> Vec<OsString> { line.split(' ').map(OsString::from).collect() };
        assert_eq!(
            misplaced_option(&arguments("statebucket --profile admin apply")),
            Some(("--profile", Some("apply")))
        );
        assert_eq!(
            misplaced_option(&arguments("statebucket --endpoint-url=http://x plan")),
            Some(("--endpoint-url", Some("plan")))
        );
        assert_eq!(
            misplaced_option(&arguments("statebucket --profile admin")),
            Some(("--profile", None))
        );
        assert_eq!(
            misplaced_option(&arguments("statebucket apply --profile admin")),
            None
        );
        assert_eq!(misplaced_option(&arguments("statebucket -q check")), None);
    }
}
