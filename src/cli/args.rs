//! The command line, as clap parses it. Each command offers only the options it uses:
//! `validate` reaches nothing, `render` and `policy` only the endpoint (it is written into
//! backend.hcl, and a plain-HTTP endpoint leaves out the TLS-only deny), the online commands
//! the identity, timeouts and concurrency. Doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const EXAMPLES: &str = "\
Examples:
  statebucket validate                         check every environments/*.yaml, offline
  statebucket plan dev                         show what apply would change in environments/dev.yaml
  statebucket apply --auto-approve             bootstrap or repair every environment
  statebucket check --output json              CI drift check: exit 0 in sync, 2 drift, 1 error
  statebucket render                           write every stack's backend.hcl, offline
  statebucket policy prod                      print the bucket policy for environments/prod.yaml
  statebucket policy prod --identity --stack network --reader
                                               the IAM policy of stack network's read-only tier
  statebucket apply prod --profile admin       bootstrap as `admin`; backend.hcl keeps the spec's profile
  statebucket apply --endpoint-url http://127.0.0.1:5000 --auto-approve
                                               run against a local S3 (moto, MinIO)
  statebucket state versions prod --stack network
                                               the state's versions, to go back to one
                                               with `statebucket state restore`
  statebucket init prod --bucket my-org-terraform-state-prod --kms
                                               start a commented spec, offline
  statebucket import my-org-terraform-state --env prod
                                               adopt an existing bucket: write its spec, read-only
  source <(statebucket completions bash)       shell completion (also zsh, fish, powershell)

Exit codes: 0 success / in sync, 1 error, 2 changes present (plan --detailed-exitcode, check),
64 usage error (the command line itself), 130 interrupted.";

#[derive(Debug, Parser)]
#[command(
    name = "statebucket",
    version,
    about = "Bootstrap and guard the S3 bucket behind Terraform/OpenTofu remote state",
    long_about = "Bootstrap and guard the S3 bucket behind Terraform/OpenTofu remote state.\n\n\
Each environments/<env>.yaml describes one state bucket: its region, encryption, the stacks \
whose state it holds, the users and roles Terraform runs as, and the backend.hcl files to \
write. statebucket creates what is missing, repairs drift, and never deletes, suspends or \
loosens anything.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Run as if started in DIR (the project root holding environments/).
    #[arg(long, global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Output format for results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More detail on stderr (-v: statebucket's steps, -vv: AWS SDK requests).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors and warnings on stderr (a warning that changes what you must do is
    /// always shown).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Never draw progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Which spec files to work on.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Spec files or environment names (default: every environments/*.yaml).
    pub specs: Vec<String>,
}

/// The endpoint, for commands whose output depends on it.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Send every AWS request to URL (S3-compatible store or local test server); also
    /// written into backend.hcl. Default: AWS_ENDPOINT_URL, then the spec's `endpoint`.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// How the online commands of many environments reach AWS.
#[derive(Debug, Args)]
pub struct AwsArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How many environments to work on at once.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

/// How an online command reaches AWS.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    #[command(flatten)]
    pub endpoint: EndpointArgs,

    /// Run statebucket itself as this AWS profile (e.g. an admin). Never changes the
    /// `profile` written into backend.hcl, which is the spec's.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Seconds one attempt of an AWS request may take before it is retried (the SDK's
    /// standard retry mode, 5 attempts).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout: u64,
}

/// The lockout override of the commands that may write a policy.
#[derive(Debug, Args)]
pub struct LockoutArgs {
    /// Write a bucket or key policy even if it denies statebucket's own identity or the
    /// identity Terraform runs as (refused otherwise, with the statements that deny).
    #[arg(long)]
    pub allow_lockout: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files and policy templates offline; every problem with file:line:column.
    Validate {
        #[command(flatten)]
        specs: SpecArgs,
    },
    /// Write every stack's backend.hcl offline (only when its content changes).
    Render {
        #[command(flatten)]
        specs: SpecArgs,
        #[command(flatten)]
        endpoint: EndpointArgs,
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
        #[arg(long, value_name = "NAME", requires = "identity")]
        stack: Option<String>,
        /// The read-only tier's identity policy: read state, take and release the lock.
        #[arg(long, requires = "identity")]
        reader: bool,
        /// The bucket policy of the replica (`bucket.replica`) instead of the bucket's.
        #[arg(long, conflicts_with = "identity")]
        replica: bool,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Show what apply would change. Read-only.
    Plan {
        #[command(flatten)]
        specs: SpecArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[command(flatten)]
        lockout: LockoutArgs,
        /// Exit 0 when in sync, 2 when there are changes, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Show the plan, ask, then create and repair what differs; verify afterwards.
    Apply {
        #[command(flatten)]
        specs: SpecArgs,
        #[command(flatten)]
        aws: AwsArgs,
        #[command(flatten)]
        lockout: LockoutArgs,
        /// Apply without asking. Required when stdin is not a terminal.
        #[arg(long)]
        auto_approve: bool,
        /// Seconds to wait for another apply's lock on the same bucket (taken only to create
        /// a KMS key or rewrite a shared log bucket's policy) before giving up.
        #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
        lock_timeout: u64,
        /// Seconds verify keeps reading a setting that does not show what apply wrote yet
        /// (bucket settings are eventually consistent) before it reports the difference.
        #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=600))]
        settle_timeout: u64,
    },
    /// For CI: never writes. Exit 0 in sync, 2 drift, 1 error.
    Check {
        #[command(flatten)]
        specs: SpecArgs,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Will `terraform init -backend-config=<backend.hcl>` work for me, here, now? For every
    /// stack, resolves the identity the backend will use, checks it against the bucket
    /// policy, and probes what Terraform does (list, read, lock, release, KMS). Exit 0 all
    /// ok, 1 otherwise.
    Doctor {
        #[command(flatten)]
        specs: SpecArgs,
        #[command(flatten)]
        aws: AwsArgs,
        /// The Terraform directory, to look for `provider "aws"` credentials the backend
        /// would ignore.
        #[arg(long, value_name = "DIR")]
        terraform_dir: Option<PathBuf>,
    },
    /// A stack's Terraform state: its versions, and a way back to one of them.
    #[command(subcommand)]
    State(StateCommand),
    /// Start a project: a commented spec, the policy template and the schema, offline.
    ///
    /// Writes a commented spec for ENV (environments/ENV.yaml), the bucket policy template
    /// (policies/state-access.json) when absent, and the spec's JSON Schema for editors.
    /// Never overwrites a spec.
    #[command(after_help = "\
Examples:
  statebucket init                                  environments/dev.yaml with placeholders
  statebucket init prod --region eu-west-1 --bucket my-org-terraform-state-prod \\
      --account-id 123456789012 --profile terraform-prod \\
      --user terraform --role terraform-ci --kms")]
    Init(InitArgs),
    /// Adopt an existing bucket: write the spec that reproduces it, reading only.
    ///
    /// Reads the bucket (region, encryption and key alias, tags, lifecycle, logging, and the
    /// principals and state keys its policy grants) and writes environments/ENV.yaml
    /// reproducing what statebucket manages. Writes nothing to AWS and never overwrites a
    /// spec; the notes say what was assumed and what `apply` will add.
    #[command(after_help = "\
Examples:
  statebucket import my-org-terraform-state                writes environments/my-org-terraform-state.yaml
  statebucket import my-org-terraform-state --env prod --profile prod-admin --terraform-profile terraform-prod

Then: statebucket validate, statebucket plan ENV (shows only the hardening the bucket lacks),
statebucket apply ENV.")]
    Import(ImportArgs),
    /// Who can read each stack's state, who did, and what they could see.
    ///
    /// Who can: the principals the bucket policy and the key policy, as they are in AWS
    /// now, let read, write or decrypt each stack's state, each with the statement that
    /// grants it; `!` marks one the spec does not list. Who did (KMS state): CloudTrail's
    /// Decrypt and GenerateDataKey events on the state key, tied to stacks by the
    /// encryption context. What they could see: the paths of sensitive and secret-looking
    /// values in each state, never the values. A read the caller may not make is named
    /// and the rest of the audit still runs. Exit 0 when every reader is listed, 2 when an
    /// unlisted principal can read state or did, 1 on error.
    #[command(after_help = "\
Examples:
  statebucket audit prod                          the last 7 days of CloudTrail
  statebucket audit prod --since 90d --output json
                                                  for a scheduled CI job: exit 2 alerts")]
    Audit(AuditArgs),
    /// What an S3-compatible store implements: the `compat:` block a spec for it needs.
    ///
    /// Reads each API statebucket and Terraform's S3 backend use (STS, IAM, KMS, public
    /// access block, ownership controls, tagging, versioning, encryption, lifecycle, bucket
    /// policy) against names nobody has, and prints what the store lacks. With
    /// --scratch-bucket it also writes, in that bucket only: a second conditional PutObject
    /// (which a store must refuse for Terraform's lockfile to work), a PutObject under
    /// default encryption, and each setting apply writes (versioning, public access block,
    /// ownership controls, a tag), read back to see that the store keeps it. The scratch
    /// bucket, its settings and its objects are left in place.
    #[command(after_help = "\
Examples:
  statebucket probe --endpoint-url http://127.0.0.1:8333 --profile admin
  statebucket probe --endpoint-url https://s3.example.internal --scratch-bucket statebucket-probe")]
    Probe(ProbeArgs),
    /// Print the shell completion script for SHELL.
    #[command(after_help = "\
Examples:
  source <(statebucket completions bash)                   this bash session
  statebucket completions bash > ~/.local/share/bash-completion/completions/statebucket
  statebucket completions zsh > \"${fpath[1]}/_statebucket\"
  statebucket completions fish > ~/.config/fish/completions/statebucket.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `statebucket man | man -l -`.
    Man,
    /// Print the JSON Schema of spec files, for editors.
    ///
    /// What schema/statebucket.schema.json holds: `# yaml-language-server:
    /// $schema=../schema/statebucket.schema.json` at the top of a spec turns on completion
    /// and checking. `validate` remains the authority: it also checks naming rules and how
    /// the keys fit together.
    Schema,
}

/// Which environment `audit` reads, and how far back.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The environment (a name, or a spec file).
    pub env: String,
    /// How far back to read CloudTrail: `Nd` days, up to 90 (CloudTrail's event history).
    #[arg(long, default_value = "7d", value_name = "DAYS")]
    pub since: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Which store `probe` reads, and where it may write.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The region to sign requests for (default: AWS_REGION, AWS_DEFAULT_REGION, then
    /// us-east-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Also try the writes reading cannot show, in this bucket only (created when absent,
    /// left in place afterwards).
    #[arg(long, value_name = "BUCKET")]
    pub scratch_bucket: Option<String>,
    /// The account that owns the scratch bucket, sent as the expected bucket owner with the
    /// settings written there (default: the account STS names; a store without STS needs it).
    #[arg(long, value_name = "ID", requires = "scratch_bucket")]
    pub account_id: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Which bucket `import` reads, and where its spec goes.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The existing bucket.
    pub bucket: String,
    /// The region to ask first (default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1);
    /// the spec gets the region S3 reports for the bucket.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The environment's name: the spec is environments/NAME.yaml (default: the bucket's name).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// The AWS profile Terraform's backend uses, written as the spec's `profile` (default:
    /// a placeholder `terraform`, said in the notes). `--profile` is who reads the bucket,
    /// written as `bootstrap_profile`.
    #[arg(long, value_name = "NAME")]
    pub terraform_profile: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What `init` puts into the new spec.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The environment's name: the spec is environments/ENV.yaml.
    #[arg(default_value = "dev")]
    pub env: String,
    /// The bucket's region (default: AWS_REGION, AWS_DEFAULT_REGION, then eu-west-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The bucket's name (default: terraform-state-ENV; bucket names are global).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The account the bucket belongs to: statebucket then refuses credentials of any other.
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// The AWS profile Terraform's backend uses, written into the spec and backend.hcl.
    #[arg(long, value_name = "NAME", default_value = "terraform")]
    pub profile: String,
    /// An IAM user Terraform runs as (name or ARN); repeat for several.
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// An IAM role Terraform runs as (name or ARN); repeat for several.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Encrypt with a KMS key that statebucket creates (alias/BUCKET) instead of AES256.
    #[arg(long)]
    pub kms: bool,
    /// Keep a replica of the state in this second region, with a failover backend file (its
    /// own key, alias/BUCKET-replica, with --kms).
    #[arg(long, value_name = "REGION")]
    pub replica_region: Option<String>,
}

/// Which state of an environment: its stack and workspace.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Environment name or spec file.
    pub env: String,
    /// The stack (needed when the spec has several).
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The Terraform workspace.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub workspace: String,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The state object's versions, newest first: version id, time, size, and from each
    /// version's content its serial, lineage, Terraform version and resource count.
    /// Read-only; reading N versions costs N GETs.
    #[command(after_help = "\
Examples:
  statebucket state versions dev                   the last 10 versions of dev's state
  statebucket state versions central --stack network --limit 30
  statebucket state versions dev --output json     for scripts")]
    Versions {
        #[command(flatten)]
        state: StateArgs,
        /// How many versions to show (and read).
        #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Make an earlier version the current state again, by copying it onto the key: the
    /// restored content becomes a new version and no version is deleted. Shows what changes
    /// and asks; holds Terraform's state lock (lock file and DynamoDB item, as backend.hcl
    /// uses them) while it works, and refuses while another holds it.
    #[command(after_help = "\
Examples:
  statebucket state versions dev                   pick the version to go back to
  statebucket state restore dev 3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY
  statebucket state restore central VERSION --stack network --auto-approve

Afterwards `terraform plan` shows what the restored state lacks as changes to make again.")]
    Restore {
        #[command(flatten)]
        state: StateArgs,
        /// The version to restore, as `statebucket state versions` lists it.
        version_id: String,
        /// Restore without asking. Required when stdin is not a terminal.
        #[arg(long)]
        auto_approve: bool,
        /// Restore a version whose lineage differs from the current state's (another state,
        /// not an earlier one of this state): refused otherwise.
        #[arg(long)]
        allow_other_lineage: bool,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Validate { .. } => "validate",
            Command::Render { .. } => "render",
            Command::Policy { .. } => "policy",
            Command::Plan { .. } => "plan",
            Command::Apply { .. } => "apply",
            Command::Check { .. } => "check",
            Command::Doctor { .. } => "doctor",
            Command::State(StateCommand::Versions { .. }) => "state versions",
            Command::State(StateCommand::Restore { .. }) => "state restore",
            Command::Init(_) => "init",
            Command::Import(_) => "import",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
            Command::Schema => "schema",
            Command::Probe(_) => "probe",
            Command::Audit(_) => "audit",
        }
    }
}

/// Options that go after the command since they became per-command: named in the hint of a
/// usage error when one is given before it.
pub const COMMAND_OPTIONS: &[&str] = &[
    "--endpoint-url",
    "--profile",
    "--concurrency",
    "--request-timeout",
    "--allow-lockout",
];
