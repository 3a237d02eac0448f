//! `statebucket state versions` and `state restore`: one stack's state object, its history,
//! and the way back to an earlier version that deletes nothing. They run as statebucket's
//! own identity (`--profile`, `bootstrap_profile`, then `profile`): reading old versions
//! takes `s3:ListBucketVersions` and `s3:GetObjectVersion`, which Terraform's own identity
//! does not need and usually lacks.

use std::sync::Arc;

use super::args::{ConnectionArgs, StateArgs, StateCommand};
use super::{Context, Outcome, json};
use crate::aws::tfstate::{self as remote, ObjectVersion, VersionContent};
use crate::aws::{Clients, RequestLog};
use crate::engine::Connection;
use crate::error::Error;
use crate::project::Environment;
use crate::spec::{EnvSpec, StackSpec, WorkspaceName};
mod restore;

pub use restore::{RestoreRequest, restore};

use crate::tfstate::{StatePath, StateSummary, summarize};

/// The state a command works on, resolved from the command line and the spec, and how
/// statebucket reaches it.
struct Target<'e> {
    spec: &'e EnvSpec,
    stack: &'e StackSpec,
    workspace: WorkspaceName,
    path: StatePath,
    connection: Connection,
    log: Arc<RequestLog>,
}

impl Target<'_> {
    fn reference(&self) -> json::StateRef<'_> {
        json::StateRef {
            environment: self.spec.name.as_str(),
            spec: &self.spec.source,
            stack: self.stack.name.as_str(),
            workspace: self.workspace.as_str(),
            bucket: &self.path.bucket,
            key: &self.path.key,
        }
    }

    /// The command that lists this state's versions.
    fn listing(&self) -> String {
        let mut command = format!("statebucket state versions {}", self.spec.name);
        if self.spec.stacks.len() > 1 {
            command.push_str(&format!(" --stack {}", self.stack.name));
        }
        if !self.workspace.is_default() {
            command.push_str(&format!(" --workspace {}", self.workspace));
        }
        command
    }

    /// `dev`, `dev stack network`, and the workspace unless it is the default one.
    fn label(&self) -> String {
        let stack = super::stack_label(self.spec, self.stack);
        if self.workspace.is_default() {
            stack
        } else {
            format!("{stack} workspace {}", self.workspace)
        }
    }
}

/// The one environment a `state` command names.
fn environment(arguments: &StateArgs) -> Result<Environment, Error> {
    Ok(super::load(std::slice::from_ref(&arguments.env))?.remove(0))
}

fn target<'e>(
    environment: &'e Environment,
    arguments: &StateArgs,
    connection: &ConnectionArgs,
) -> Result<Target<'e>, Error> {
    let spec = &environment.spec;
    let stack = super::select_stack(
        spec,
        arguments.stack.as_deref(),
        "each has its own state",
        "",
    )?;
    let workspace = super::option(
        "--workspace",
        Some(arguments.workspace.as_str()),
        WorkspaceName::parse,
    )?
    .expect("a value was given");
    let path = StatePath::of(spec.bucket.name.as_str(), stack, &workspace);
    Ok(Target {
        spec,
        stack,
        workspace,
        path,
        connection: super::connection(connection)?,
        log: Arc::new(RequestLog::default()),
    })
}

impl Target<'_> {
    /// Clients for statebucket's own identity in the bucket's region, after the account
    /// guard.
    async fn clients(&self) -> Result<Clients, Error> {
        let (clients, _) = self
            .connection
            .guarded_tool_clients(self.spec, &self.log)
            .await?;
        Ok(clients)
    }
}

/// `statebucket state versions` or `state restore`.
pub fn run(context: &Context<'_>, command: &StateCommand) -> Result<Outcome, Error> {
    match command {
        StateCommand::Versions {
            state,
            limit,
            connection,
        } => versions(context, state, *limit, connection),
        StateCommand::Restore {
            state,
            version_id,
            auto_approve,
            allow_other_lineage,
            connection,
        } => restore(
            context,
            state,
            &RestoreRequest {
                version_id,
                auto_approve: *auto_approve,
                allow_other_lineage: *allow_other_lineage,
            },
            connection,
        ),
    }
}

pub fn versions(
    context: &Context<'_>,
    arguments: &StateArgs,
    limit: u16,
    connection: &ConnectionArgs,
) -> Result<Outcome, Error> {
    let environment = environment(arguments)?;
    let target = target(&environment, arguments, connection)?;
    let reporter = context.printer.reporter();
    let (versions, more, contents) = super::interruptible(
        async {
            let task = reporter.task(&target.label());
            task.step("listing versions");
            let clients = target.clients().await?;
            let (versions, more) =
                remote::versions(&clients, &target.path, usize::from(limit)).await?;
            task.step(&format!(
                "reading {}",
                super::plural(versions.len() as u64, "version")
            ));
            let contents = remote::read_versions(&clients, &target.path, &versions).await;
            task.finish();
            Ok((versions, more, contents))
        },
        async {},
    )?;
    let mut failed = false;
    let rows: Vec<json::StateVersion> = versions
        .iter()
        .zip(contents)
        .map(|(version, content)| {
            let summary = match content {
                Ok(VersionContent::Content(bytes)) => Some(summarize(&bytes)),
                Ok(VersionContent::DeleteMarker) => None,
                Ok(VersionContent::Missing) => Some(Err("removed while it was listed".to_owned())),
                Err(error) => {
                    failed = true;
                    Some(Err(format!("unreadable: {error}")))
                }
            };
            row(version, summary)
        })
        .collect();
    let counts = target.log.counts();
    if context.json() {
        context.printer.data(&json::document(
            "state versions",
            json::StateVersions {
                state: target.reference(),
                versions: rows,
                more,
                requests: &counts,
            },
        ));
    } else {
        context
            .printer
            .data(&versions_text(&target, &rows, more, limit));
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

fn row(
    version: &ObjectVersion,
    summary: Option<Result<StateSummary, String>>,
) -> json::StateVersion {
    let (summary, problem) = match summary {
        Some(Ok(summary)) => (Some(summary), None),
        Some(Err(problem)) => (None, Some(problem)),
        None => (None, None),
    };
    json::StateVersion {
        version_id: version.version_id.clone(),
        last_modified: version.last_modified.clone(),
        size: version.size,
        current: version.is_latest && !version.delete_marker,
        delete_marker: version.delete_marker,
        serial: summary.as_ref().map(|state| state.serial),
        lineage: summary.as_ref().map(|state| state.lineage.clone()),
        terraform_version: summary
            .as_ref()
            .map(|state| state.terraform_version.clone()),
        resources: summary.as_ref().map(|state| state.resources.len()),
        problem,
    }
}

fn versions_text(
    target: &Target<'_>,
    rows: &[json::StateVersion],
    more: bool,
    limit: u16,
) -> String {
    let mut text = format!(
        "{} ({}): {}, {}, newest first\n",
        target.label(),
        target.spec.source,
        target.path,
        super::plural(rows.len() as u64, "version"),
    );
    if rows.is_empty() {
        text.push_str("  no versions: Terraform has not written this state yet\n");
        return text;
    }
    let width = rows
        .iter()
        .map(|row| row.version_id.len())
        .max()
        .unwrap_or(0)
        .max("VERSION ID".len());
    text.push_str(&format!(
        "    {:<width$}  {:<20}  {:>9}  {:>6}  {:>9}  {:<9}  LINEAGE\n",
        "VERSION ID", "LAST MODIFIED", "SIZE", "SERIAL", "RESOURCES", "TERRAFORM"
    ));
    for row in rows {
        let marker = if row.current { "*" } else { " " };
        let described = if row.delete_marker {
            "(delete marker: the state was deleted here)".to_owned()
        } else if let Some(problem) = &row.problem {
            format!("({problem})")
        } else {
            format!(
                "{:>6}  {:>9}  {:<9}  {}",
                row.serial
                    .map(|serial| serial.to_string())
                    .unwrap_or_default(),
                row.resources
                    .map(|count| count.to_string())
                    .unwrap_or_default(),
                row.terraform_version.as_deref().unwrap_or(""),
                row.lineage.as_deref().unwrap_or(""),
            )
        };
        text.push_str(&format!(
            "  {marker} {:<width$}  {:<20}  {:>9}  {described}\n",
            row.version_id,
            row.last_modified,
            format!("{} B", row.size),
        ));
    }
    text.push_str("  * the current version: what Terraform reads now\n");
    if more {
        text.push_str(&format!(
            "  older versions exist: --limit {} shows more\n",
            (u32::from(limit) * 2).min(1000)
        ));
    }
    text
}
