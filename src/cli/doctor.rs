//! `statebucket doctor`: every stack's backend.hcl checked as the identity it makes
//! Terraform use, stacks of all environments at once.

use std::sync::Arc;

use super::args::AwsArgs;
use super::{Context, Outcome, json};
use crate::aws::RequestLog;
use crate::aws::probe::Leftovers;
use crate::desired::{DesiredBucket, DesiredEnvironment, DesiredStack};
use crate::doctor::{Check, DoctorRun, Status, diagnose};
use crate::error::Error;
use crate::progress;

pub fn run(
    context: &Context<'_>,
    specs: &[String],
    aws: &AwsArgs,
    terraform_dir: Option<&std::path::Path>,
) -> Result<Outcome, Error> {
    let environments = super::load(specs)?;
    let connection = super::connection(&aws.connection)?;
    // Each bucket, and after it its replica (whose stacks' files are the failover files).
    let mut desired = Vec::new();
    for environment in &environments {
        let endpoint = connection.endpoint(&environment.spec);
        desired.push(environment.offline_desired(endpoint).map_err(Error::Spec)?);
    }
    let stacks: Vec<(&DesiredBucket<'_>, &DesiredStack<'_>)> = desired
        .iter()
        .flat_map(DesiredEnvironment::buckets)
        .flat_map(|bucket| bucket.stacks.iter().map(move |stack| (bucket, stack)))
        .collect();
    let log = Arc::new(RequestLog::default());
    let reporter = context.printer.reporter();
    let leftovers = Leftovers::default();
    let run = DoctorRun::new(&connection, &log, terraform_dir, &leftovers);
    let reports = super::interruptible(
        async {
            Ok(progress::run_each(
                &stacks,
                usize::from(aws.concurrency),
                reporter.as_ref(),
                |(bucket, stack)| Some((name(bucket, stack), "checking")),
                |(bucket, stack), _task| diagnose(bucket, stack, &run),
            )
            .await)
        },
        // Interrupted: no probe lock is left behind.
        leftovers.remove_all(),
    )?;
    let failed = reports
        .iter()
        .flatten()
        .filter(|check| check.status == Status::Fail)
        .count();
    if context.json() {
        print_json(context, &stacks, &reports, failed, &log);
    } else {
        print_text(context, &stacks, &reports, failed);
    }
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn name(bucket: &DesiredBucket<'_>, stack: &DesiredStack<'_>) -> String {
    super::stack_label(bucket.spec, stack.spec)
}

type Stacks<'a, 'd> = [(&'a DesiredBucket<'d>, &'a DesiredStack<'d>)];

fn print_json(
    context: &Context<'_>,
    stacks: &Stacks<'_, '_>,
    reports: &[Vec<Check>],
    failed: usize,
    log: &RequestLog,
) {
    let counts = log.counts();
    let environments = stacks
        .iter()
        .zip(reports)
        .map(|((bucket, stack), checks)| json::DoctorReport {
            name: bucket.spec.name.as_str(),
            stack: stack.spec.name.as_str(),
            spec: &bucket.spec.source,
            backend_file: &stack.spec.file,
            failover: bucket.spec.replica_of.is_some(),
            ok: !checks.iter().any(|check| check.status == Status::Fail),
            checks,
        })
        .collect();
    context.printer.data(&json::document(
        "doctor",
        json::Diagnosed {
            environments,
            failed,
            requests: &counts,
        },
    ));
}

fn print_text(
    context: &Context<'_>,
    stacks: &Stacks<'_, '_>,
    reports: &[Vec<Check>],
    failed: usize,
) {
    for ((bucket, stack), checks) in stacks.iter().zip(reports) {
        let role = if bucket.spec.replica_of.is_some() {
            "failover backend"
        } else {
            "backend"
        };
        let mut text = format!(
            "doctor {} ({}), {role} {}\n",
            name(bucket, stack),
            bucket.spec.source,
            stack.spec.file
        );
        for check in checks {
            text.push_str(&format!(
                "  {:<5} {:<17} {}\n",
                check.status.to_string(),
                check.check,
                check.detail
            ));
            if let Some(fix) = check.fix.as_ref().filter(|_| check.status != Status::Ok) {
                text.push_str(&format!("  {:<5} {:<17} fix: {fix}\n", "", ""));
            }
        }
        context.printer.data(&format!("{text}\n"));
    }
    context.printer.data(&if failed == 0 {
        "Doctor: every check passed.\n".to_owned()
    } else {
        format!(
            "Doctor: {} failed.\n",
            super::plural(failed as u64, "check")
        )
    });
}
