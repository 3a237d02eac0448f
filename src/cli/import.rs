//! `statebucket import BUCKET`: reads a bucket statebucket did not create and writes the
//! spec that reproduces what statebucket manages (`adopt` decides, pure), with notes on what
//! it assumed and what `apply` will add. Read-only in AWS; never overwrites a spec.

use std::sync::Arc;

use super::args::ImportArgs;
use super::{Context, Outcome, init, json};
use crate::aws::{self, RequestLog, bucket::BucketAt};
use crate::error::Error;
use crate::import::{self, ImportRequest, LiveBucket};
use crate::project::create_file_exclusively;
use crate::scaffold;
use crate::spec::{AccountId, BucketName, EnvName, ProfileName, Region};

pub fn run(context: &Context<'_>, arguments: &ImportArgs) -> Result<Outcome, Error> {
    let bucket = super::given("BUCKET", &arguments.bucket, BucketName::parse)?;
    let env = super::given(
        "--env",
        arguments.env.as_deref().unwrap_or(bucket.as_str()),
        EnvName::parse,
    )?;
    let terraform_profile = super::option(
        "--terraform-profile",
        arguments.terraform_profile.as_deref(),
        ProfileName::parse,
    )?;
    let first_region = super::region_or_environment(arguments.region.as_deref(), "us-east-1");
    let first_region = super::given("--region", &first_region, Region::parse)?;
    let path = format!("environments/{env}.yaml");
    // Refused before any request: the spec is never overwritten.
    if std::path::Path::new(&path).exists() {
        return Err(exists(&path));
    }
    let connection = super::connection(&arguments.connection)?;
    let log = Arc::new(RequestLog::default());
    let reporter = context.printer.reporter();
    let reach = Reach {
        profile: connection.profile_flag.as_ref(),
        transport: connection.command_line_transport(&log),
    };
    let task = reporter.task(bucket.as_str());
    let (clients, caller, region, live) = super::interruptible(
        read_bucket(&reach, &bucket, &first_region, task.as_ref()),
        async {},
    )?;
    // The bucket it replicates into, read in that bucket's region.
    let target = live
        .replication
        .as_ref()
        .and_then(import::replication_target);
    let mut replica = None;
    let mut replica_notes = Vec::new();
    if let Some(target) = &target {
        task.step("reading its replica");
        let found = read_replica(&reach, &clients, target, &caller.account, &region);
        match super::interruptible(async { Ok::<_, Error>(found.await) }, async {})? {
            Ok(found) => replica = found,
            Err(error) => replica_notes.push(format!(
                "the bucket replicates into `{}` (rule `{}`), which import could not read ({}): the spec has no `replica`; add it by hand to take the replica over",
                target.bucket, target.rule, error.cause
            )),
        }
    }
    task.finish();
    let account = AccountId::parse(&caller.account).map_err(|problem| Error::Usage {
        message: format!("the caller's account: {}", problem.message),
        hint: problem.hint,
    })?;
    let request = ImportRequest {
        env: env.clone(),
        bucket: bucket.clone(),
        region,
        account,
        terraform_profile,
        bootstrap_profile: connection.profile_flag.clone(),
    };
    let adopted = import::adopt(
        &request,
        &LiveBucket {
            state: &live.state,
            kms_key: live
                .kms_key
                .as_ref()
                .map(|(arn, aliases)| (arn.as_str(), aliases.as_slice())),
            state_keys: &live.state_keys,
            lock_table: live.lock_table.as_deref(),
            replica: replica
                .as_ref()
                .zip(target.as_ref())
                .map(|(replica, rule)| import::LiveReplica {
                    name: &replica.name,
                    region: &replica.region,
                    state: &replica.state,
                    kms_key: replica
                        .kms_key
                        .as_ref()
                        .map(|(arn, aliases)| (arn.as_str(), aliases.as_slice())),
                    rule,
                }),
        },
    );
    let mut notes = adopted.notes;
    notes.extend(replica_notes);
    write_spec(context, &path, &env, &adopted.spec, notes, &log)?;
    Ok(Outcome::Success)
}

/// How import reaches AWS: as `--profile`, through the endpoint, counting requests.
struct Reach<'a> {
    profile: Option<&'a ProfileName>,
    transport: aws::Transport<'a>,
}

impl Reach<'_> {
    async fn clients(&self, region: &Region) -> aws::Clients {
        aws::clients(self.profile, region, self.transport).await
    }
}

/// Who the caller is, the bucket's region (found from `first_region`), and the bucket as it
/// is.
async fn read_bucket(
    reach: &Reach<'_>,
    bucket: &BucketName,
    first_region: &Region,
    task: &dyn crate::progress::Task,
) -> Result<
    (
        aws::Clients,
        aws::CallerIdentity,
        Region,
        aws::import::LiveBucket,
    ),
    Error,
> {
    task.step("finding the bucket");
    let mut clients = reach.clients(first_region).await;
    let caller = aws::caller_identity(&clients).await?;
    let region = aws::import::locate_bucket(
        BucketAt::new(&clients, bucket.as_str(), &caller.account),
        first_region.as_str(),
    )
    .await?;
    let region = Region::parse(&region).map_err(|problem| Error::Usage {
        message: format!("bucket `{bucket}` is in `{region}`: {}", problem.message),
        hint: problem.hint,
    })?;
    if region != *first_region {
        clients = reach.clients(&region).await;
    }
    task.step("reading its settings and policy");
    let live = aws::import::read_bucket(
        BucketAt::new(&clients, bucket.as_str(), &caller.account),
        &region,
    )
    .await?;
    Ok((clients, caller, region, live))
}

/// The bucket `target` replicates into, located with the primary's `clients` (in `region`)
/// and read in its own region.
async fn read_replica(
    reach: &Reach<'_>,
    clients: &aws::Clients,
    target: &import::ReplicationTarget,
    account: &str,
    region: &Region,
) -> Result<Option<aws::import::LiveReplica>, aws::AwsError> {
    let replica_region = aws::import::locate_bucket(
        BucketAt::new(clients, &target.bucket, account),
        region.as_str(),
    )
    .await?;
    let replica_region = Region::parse(&replica_region).map_err(|problem| {
        aws::AwsError::new(
            format!("locating bucket `{}`", target.bucket),
            problem.message,
            None,
        )
    })?;
    let replica_clients = reach.clients(&replica_region).await;
    aws::import::read_replica(
        BucketAt::new(&replica_clients, &target.bucket, account),
        &replica_region,
    )
    .await
}

/// Writes the spec (never over an existing one) and reports it with the notes and what to
/// run next.
fn write_spec(
    context: &Context<'_>,
    path: &str,
    env: &EnvName,
    spec: &scaffold::NewSpec,
    notes: Vec<String>,
    log: &RequestLog,
) -> Result<(), Error> {
    let text = scaffold::spec_text(spec);
    if !create_file_exclusively(path, &text).map_err(|error| Error::file("write", path, &error))? {
        return Err(exists(path));
    }
    let mut files = vec![json::WrittenFile {
        path: path.to_owned(),
        status: "written",
    }];
    files.extend(init::support_files()?);
    let counts = log.counts();
    debug_assert_eq!(counts.writes, 0, "import only reads");
    let next = vec![
        format!("$EDITOR {path}              # fill in what the notes name"),
        "statebucket validate".to_owned(),
        format!("statebucket plan {env}        # what apply adds: the hardening the notes name"),
        format!("statebucket apply {env}"),
    ];
    init::report(context, "import", files, notes, next);
    Ok(())
}

fn exists(path: &str) -> Error {
    Error::Project {
        message: format!("{path} exists; import never overwrites a spec"),
        hint: "name another environment with --env NAME, or move the existing spec away first"
            .to_owned(),
    }
}
