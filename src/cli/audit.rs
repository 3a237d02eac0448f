//! `statebucket audit`: who can read each stack's state, who did, and what they could see.

use std::sync::Arc;

use super::args::AuditArgs;
use super::{Context, Outcome, json};
use crate::audit;
use crate::aws::{self, RequestLog};
use crate::error::Error;

/// CloudTrail's event history reaches back 90 days.
const MOST_DAYS: u32 = 90;

pub fn run(context: &Context<'_>, arguments: &AuditArgs) -> Result<Outcome, Error> {
    let days = days(&arguments.since)?;
    let environment = super::load(std::slice::from_ref(&arguments.env))?.remove(0);
    let spec = &environment.spec;
    let connection = super::connection(&arguments.connection)?;
    let log = Arc::new(RequestLog::default());
    let reporter = context.printer.reporter();
    let (account, gathered) = super::interruptible(
        async {
            let task = reporter.task(spec.name.as_str());
            task.step("who is asking");
            let (clients, account) = connection.guarded_tool_clients(spec, &log).await?;
            let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
            let gathered = aws::audit::gather(&clients, spec, days, now, task.as_ref()).await?;
            task.finish();
            Ok::<_, Error>((account, gathered))
        },
        async {},
    )?;
    let report = audit::report(spec, &account, gathered);
    if context.json() {
        context.printer.data(&json::document("audit", &report));
    } else {
        context.printer.data(&audit::text(&report));
    }
    Ok(if report.unlisted_reader {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

/// `7d` (or `7`): whole days from 1 to 90.
fn days(since: &str) -> Result<u32, Error> {
    let digits = since.strip_suffix('d').unwrap_or(since);
    match digits.parse::<u32>() {
        Ok(days) if (1..=MOST_DAYS).contains(&days) => Ok(days),
        _ => Err(Error::Usage {
            message: format!("--since `{since}` is not a number of days from 1 to {MOST_DAYS}"),
            hint: Some(
                "e.g. --since 7d or --since 90d (CloudTrail keeps 90 days of events)".into(),
            ),
        }),
    }
}
