//! `statebucket probe`: what a store implements, and the `compat:` block a spec needs.

use std::sync::Arc;

use super::args::ProbeArgs;
use super::{Context, Outcome, json};
use crate::aws::{self, RequestLog};
use crate::capability;
use crate::error::Error;
use crate::spec::{AccountId, BucketName, Region};

pub fn run(context: &Context<'_>, arguments: &ProbeArgs) -> Result<Outcome, Error> {
    let region = super::region_or_environment(arguments.region.as_deref(), "us-east-1");
    let region = super::given("--region", &region, Region::parse)?;
    let scratch = super::option(
        "--scratch-bucket",
        arguments.scratch_bucket.as_deref(),
        BucketName::parse,
    )?;
    let account = super::option(
        "--account-id",
        arguments.account_id.as_deref(),
        AccountId::parse,
    )?;
    let connection = super::connection(&arguments.connection)?;
    let endpoint = connection.command_line_endpoint();
    let log = Arc::new(RequestLog::default());
    let reporter = context.printer.reporter();
    let (caller, probed) = super::interruptible(
        async {
            let task = reporter.task(endpoint.map_or("AWS", |url| url.as_str()));
            task.step("reading each API");
            let clients = aws::clients(
                connection.profile_flag.as_ref(),
                &region,
                connection.command_line_transport(&log),
            )
            .await;
            let probed = aws::capability::probe_store(
                &clients,
                region.as_str(),
                scratch.as_ref().map(BucketName::as_str),
                account.as_ref().map(AccountId::as_str),
            )
            .await;
            task.finish();
            let probed = probed?;
            Ok::<_, Error>(probed)
        },
        async {},
    )?;
    let report = capability::report(
        endpoint.map(|url| url.as_str().to_owned()),
        caller,
        &probed,
        scratch.map(|bucket| bucket.to_string()),
    );
    if context.json() {
        context.printer.data(&json::document("probe", &report));
    } else {
        context.printer.data(&capability::text(&report));
    }
    Ok(Outcome::Success)
}
