//! `statebucket plan`, `apply` and `check`: observe every bucket, plan, and (apply) carry
//! the plans out after a confirmation, then verify.

use std::sync::Arc;
use std::time::Duration;

use super::args::AwsArgs;
use super::{Context, Outcome, json};
use crate::aws::lock::HeldLocks;
use crate::aws::{Lookups, RequestCounts, RequestLog};
use crate::engine::{Connection, Engine, EnvResult};
use crate::error::Error;
use crate::plan_text;
use crate::project::{self, Environment};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plan {
        detailed_exitcode: bool,
    },
    Apply {
        auto_approve: bool,
        lock_timeout: Duration,
        settle_timeout: Duration,
    },
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

pub fn run(
    context: &Context<'_>,
    specs: &[String],
    aws: &AwsArgs,
    allow_lockout: bool,
    mode: Mode,
) -> Result<Outcome, Error> {
    let environments = super::load(specs)?;
    let connection = super::connection(&aws.connection)?;
    let notes = run_notes(&environments, &connection);
    let log = Arc::new(RequestLog::default());
    let engine = Engine {
        connection,
        lookups: Lookups::default(),
        allow_lockout,
        concurrency: usize::from(aws.concurrency),
        log: Arc::clone(&log),
        reporter: context.printer.reporter(),
        lock_timeout: match mode {
            Mode::Apply { lock_timeout, .. } => lock_timeout,
            _ => Duration::ZERO,
        },
        settle_timeout: match mode {
            Mode::Apply { settle_timeout, .. } => settle_timeout,
            _ => Duration::ZERO,
        },
        held_locks: HeldLocks::default(),
    };
    // `apply` holds a lock per bucket on this machine (log buckets too: their policies are
    // read, merged and written back) for as long as it runs.
    let _locks = match mode {
        Mode::Apply { .. } => Some(lock_buckets(context, &environments)?),
        _ => None,
    };
    super::interruptible(
        async {
            let planned = engine.plan_all(&environments).await;
            let any_error = planned.iter().any(Result::is_err);
            let any_changes = planned.iter().any(|result| {
                result
                    .as_ref()
                    .is_ok_and(|planned| !planned.plan.is_empty())
            });
            warn(context, &planned);
            let Mode::Apply { auto_approve, .. } = mode else {
                print_results(context, mode, &planned, false, &notes, &log.counts());
                return Ok(match (any_error, any_changes, mode) {
                    (true, _, _) => Outcome::Failed,
                    (
                        false,
                        true,
                        Mode::Check
                        | Mode::Plan {
                            detailed_exitcode: true,
                        },
                    ) => Outcome::Changes,
                    _ => Outcome::Success,
                });
            };
            if !context.json() {
                print_plans(context, &planned);
                print_notes(context, &notes);
            }
            if any_changes && !auto_approve {
                super::confirm(
                    context,
                    "apply",
                    "Do you want to perform these actions? Only 'yes' will be accepted: ",
                )?;
            }
            let results = engine.apply_all(planned).await;
            warn(context, &results);
            print_results(context, mode, &results, true, &notes, &log.counts());
            Ok(if results.iter().any(Result::is_err) {
                Outcome::Failed
            } else {
                Outcome::Success
            })
        },
        // Interrupted: an apply lock taken on the way is released, not left to its lease.
        engine.held_locks.release_all(),
    )
}

/// Notes that are the same for every environment that shares their cause: each once.
fn run_notes(environments: &[Environment], connection: &Connection) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    for environment in environments {
        if let Some(endpoint) = connection
            .endpoint(&environment.spec)
            .filter(|endpoint| endpoint.is_plain_http())
        {
            let note = format!(
                "endpoint {endpoint} is plain HTTP, so bucket policies leave out the TLS-only deny (no client could satisfy it)"
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes
}

fn lock_buckets(
    context: &Context<'_>,
    environments: &[Environment],
) -> Result<project::ApplyLocks, Error> {
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
        context.printer.info(&format!(
            "waiting for another `statebucket apply` on bucket {bucket} to finish (lock {})",
            path.display()
        ));
    };
    project::lock_buckets(&buckets, waiting).map_err(|error| Error::File {
        doing: "take the apply lock in",
        path: std::env::temp_dir().display().to_string(),
        cause: error.to_string(),
        hint: Some(
            "the lock files live in the temporary directory (TMPDIR); check that it is writable"
                .into(),
        ),
    })
}

/// Warnings go to stderr whatever the format: they say what the user must do.
fn warn(context: &Context<'_>, results: &[EnvResult<'_>]) {
    for planned in results.iter().flatten() {
        for warning in &planned.warnings {
            context.printer.warn(warning);
        }
    }
}

fn print_results(
    context: &Context<'_>,
    mode: Mode,
    results: &[EnvResult<'_>],
    applied: bool,
    notes: &[String],
    requests: &RequestCounts,
) {
    if context.json() {
        let environments = results
            .iter()
            .map(|result| env_report(result, applied))
            .collect();
        context.printer.data(&json::document(
            mode.name(),
            json::Reconciled {
                environments,
                notes: notes.to_vec(),
                requests,
            },
        ));
        return;
    }
    if !applied {
        print_plans(context, results);
        print_notes(context, notes);
        return;
    }
    let mut converged = 0;
    for result in results {
        match result {
            Ok(_) => converged += 1,
            Err((environment, error)) => {
                context
                    .printer
                    .info(&format!("{}: apply failed", environment.spec.name));
                context.printer.error(error);
            }
        }
    }
    context.printer.data(&format!(
        "Apply complete: {converged} of {} converged ({}: {}, {}).\n",
        super::plural(results.len() as u64, "environment"),
        super::plural(requests.reads + requests.writes, "AWS request"),
        super::plural(requests.reads, "read"),
        super::plural(requests.writes, "write"),
    ));
}

fn print_notes(context: &Context<'_>, notes: &[String]) {
    for note in notes {
        context.printer.note_once(note);
    }
}

fn print_plans(context: &Context<'_>, results: &[EnvResult<'_>]) {
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
                    context.printer.data(&format!(
                        "{heading}\n  = in sync ({} facets checked)\n{notes}\n",
                        planned.plan.in_sync.len()
                    ));
                } else {
                    context.printer.data(&format!(
                        "{heading}\n{}  {}\n\n",
                        plan_text::plan_lines(&planned.plan),
                        plan_text::plan_summary(&planned.plan)
                    ));
                }
            }
            Err((environment, error)) => {
                context.printer.data(&format!(
                    "{} ({}): error\n\n",
                    environment.spec.name, environment.spec.source
                ));
                context.printer.error(error);
            }
        }
    }
}

fn env_report<'a>(result: &'a EnvResult<'_>, applied: bool) -> json::EnvReport<'a> {
    let environment = match result {
        Ok(planned) => planned.environment,
        Err((environment, _)) => *environment,
    };
    let spec = &environment.spec;
    let mut report = json::EnvReport {
        name: spec.name.as_str(),
        spec: &spec.source,
        bucket: spec.bucket.name.as_str(),
        region: spec.region.as_str(),
        stacks: spec
            .stacks
            .iter()
            .map(|stack| stack.name.as_str())
            .collect(),
        status: "error",
        caller: None,
        changes: Vec::new(),
        in_sync: Vec::new(),
        kept_statements: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
        error: None,
        replica: None,
    };
    match result {
        Ok(planned) => {
            report.caller = Some(&planned.caller);
            report.changes = planned.plan.changes.iter().map(json::change).collect();
            report.in_sync = planned.plan.in_sync.clone();
            report.kept_statements = planned
                .plan
                .kept_statements
                .iter()
                .map(String::as_str)
                .collect();
            report.notes = planned.plan.notes.iter().map(String::as_str).collect();
            report.warnings = planned.warnings.iter().map(String::as_str).collect();
            report.replica = planned
                .plan
                .replica
                .as_deref()
                .map(|replica| json::ReplicaReport {
                    bucket: &replica.bucket,
                    region: &replica.region,
                    changes: replica.plan.changes.iter().map(json::change).collect(),
                    in_sync: replica.plan.in_sync.clone(),
                    kept_statements: replica
                        .plan
                        .kept_statements
                        .iter()
                        .map(String::as_str)
                        .collect(),
                    notes: replica.plan.notes.iter().map(String::as_str).collect(),
                });
            report.status = match (planned.plan.is_empty(), applied) {
                (true, _) => "in_sync",
                (false, true) => "applied",
                (false, false) => "changes",
            };
        }
        Err((_, error)) => report.error = Some(error.report()),
    }
    report
}
