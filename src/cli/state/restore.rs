//! `statebucket state restore`: an earlier version copied onto the key under Terraform's
//! lock, after a plan that shows what changes; nothing is deleted.

use std::time::SystemTime;

use aws_smithy_types::date_time::Format;

use super::{Target, environment, target};
use crate::aws::tfstate::{self as remote, LockOutcome, LockSlot, VersionContent};
use crate::aws::{self};
use crate::cli::args::{ConnectionArgs, StateArgs};
use crate::cli::{Context, Outcome, json};
use crate::error::Error;
use crate::spec::Locking;
use crate::tfstate::{
    RestoreDiff, RestoreRefusal, StatePath, StateSummary, TerraformLockInfo, digest, lock_id,
    summarize,
};

/// What a restore asks for.
pub struct RestoreRequest<'a> {
    pub version_id: &'a str,
    pub auto_approve: bool,
    pub allow_other_lineage: bool,
}

pub fn restore(
    context: &Context<'_>,
    arguments: &StateArgs,
    request: &RestoreRequest<'_>,
    connection: &ConnectionArgs,
) -> Result<Outcome, Error> {
    let environment = environment(arguments)?;
    let target = target(&environment, arguments, connection)?;
    let slot = LockSlot::default();
    crate::cli::interruptible(
        run_restore(context, &target, request, &slot),
        // Interrupted: Terraform's lock is released, not left for a force-unlock.
        async {
            for problem in slot.release().await {
                context.printer.warn(&unreleased(&problem));
            }
        },
    )
}

fn unreleased(problem: &str) -> String {
    format!(
        "{problem}; release it with `terraform force-unlock <ID>` (the ID is in the lock file or item) before the next Terraform run"
    )
}

async fn run_restore(
    context: &Context<'_>,
    target: &Target<'_>,
    request: &RestoreRequest<'_>,
    slot: &LockSlot,
) -> Result<Outcome, Error> {
    let path = &target.path;
    let version_id = request.version_id;
    let clients = target.clients().await?;
    let (current, wanted) = tokio::try_join!(
        remote::current(&clients, path),
        remote::read_version(&clients, path, version_id)
    )?;
    let (restored_bytes, restored) = restorable(target, version_id, wanted)?;
    let current_summary = current
        .as_ref()
        .and_then(|current| summarize(&current.content).ok());
    let diff = RestoreDiff::between(current_summary.as_ref(), &restored);
    let table = target.stack.lock.table().map(|table| table.as_str());
    let lock_file = matches!(target.stack.lock, Locking::Lockfile | Locking::Both(_));
    let mut report = Report {
        target,
        version_id,
        diff: &diff,
        status: "restored",
        new_version_id: None,
        locked: [lock_file.then_some("lock file"), table.map(|_| "dynamodb")]
            .into_iter()
            .flatten()
            .collect(),
        digest_updated: false,
    };
    // The version is the current one, or the current one has its content already (it was
    // restored before): another copy would only add a version.
    if current.as_ref().is_some_and(|current| {
        current.version_id == version_id || current.content == restored_bytes
    }) {
        report.status = "current";
        report.locked.clear();
        report.print(context, &target.log.counts());
        return Ok(Outcome::Success);
    }
    if diff.other_lineage() && !request.allow_other_lineage {
        return Err(RestoreRefusal::OtherLineage {
            version: version_id.to_owned(),
            current: diff.lineage.0.clone().unwrap_or_default(),
            restored: diff.lineage.1.clone(),
        }
        .into());
    }
    if !context.json() {
        context.printer.data(&report.plan_text(table));
    }
    if !request.auto_approve {
        crate::cli::confirm(
            context,
            "restore",
            "Do you want to restore this version? Only 'yes' will be accepted: ",
        )?;
    }

    let encryption = current
        .as_ref()
        .map(|current| current.encryption.clone())
        .unwrap_or_default();
    let info = lock_info(path, version_id);
    match remote::lock(&clients, path, info, lock_file, table, &encryption, slot).await? {
        LockOutcome::Taken => {}
        LockOutcome::Held(holder) => {
            return Err(RestoreRefusal::LockHeld {
                path: path.to_string(),
                holder,
            }
            .into());
        }
    }
    let expected = current.as_ref().map(|current| current.version_id.clone());
    let written = copy_under_lock(
        &clients,
        path,
        version_id,
        expected,
        &encryption,
        table.map(|table| (table, digest(&restored_bytes))),
    )
    .await;
    for problem in slot.release().await {
        context.printer.warn(&unreleased(&problem));
    }
    report.new_version_id = Some(written?);
    report.digest_updated = table.is_some();
    report.print(context, &target.log.counts());
    Ok(Outcome::Success)
}

/// The version's content and its summary; a version that is not a state cannot be restored.
fn restorable(
    target: &Target<'_>,
    version_id: &str,
    wanted: VersionContent,
) -> Result<(Vec<u8>, StateSummary), Error> {
    let path = &target.path;
    let bytes = match wanted {
        VersionContent::Content(bytes) => bytes,
        VersionContent::Missing => {
            return Err(RestoreRefusal::NoSuchVersion {
                path: path.to_string(),
                version: version_id.to_owned(),
                listing: target.listing(),
            }
            .into());
        }
        VersionContent::DeleteMarker => {
            return Err(RestoreRefusal::DeleteMarker {
                path: path.to_string(),
                version: version_id.to_owned(),
                listing: target.listing(),
            }
            .into());
        }
    };
    let summary = summarize(&bytes).map_err(|why| RestoreRefusal::NotAState {
        path: path.to_string(),
        version: version_id.to_owned(),
        why,
        listing: target.listing(),
    })?;
    Ok((bytes, summary))
}

/// Under Terraform's lock: the version copied onto the key (and the lock table's digest
/// updated), unless a run wrote the state since it was read (`expected`).
async fn copy_under_lock(
    clients: &crate::aws::Clients,
    path: &StatePath,
    version_id: &str,
    expected: Option<String>,
    encryption: &remote::ObjectEncryption,
    digest: Option<(&str, String)>,
) -> Result<String, Error> {
    // Under the lock no Terraform run writes; one may have written before it was taken.
    let found = remote::current_version_id(clients, path).await?;
    if found != expected {
        return Err(Error::from(RestoreRefusal::ChangedMeanwhile {
            path: path.to_string(),
            expected: expected.unwrap_or_else(|| "(none)".into()),
            found: found.unwrap_or_else(|| "(none)".into()),
        }));
    }
    let new_version = remote::restore_version(clients, path, version_id, encryption).await?;
    if let Some((table, digest)) = digest {
        remote::put_digest(clients, path, table, &digest).await?;
    }
    Ok(new_version)
}

/// The lock info a restore writes, in Terraform's format: `terraform force-unlock` and
/// Terraform's "Error acquiring the state lock" show it.
fn lock_info(path: &StatePath, version_id: &str) -> TerraformLockInfo {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let user = std::env::var("USER").unwrap_or_else(|_| "statebucket".into());
    let now = SystemTime::now();
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    TerraformLockInfo::for_restore(
        path,
        version_id,
        lock_id(&host, std::process::id(), nanos),
        format!("{user}@{host}"),
        aws_smithy_types::DateTime::from(now)
            .fmt(Format::DateTime)
            .unwrap_or_default(),
    )
}

struct Report<'a> {
    target: &'a Target<'a>,
    version_id: &'a str,
    diff: &'a RestoreDiff,
    status: &'static str,
    new_version_id: Option<String>,
    locked: Vec<&'static str>,
    digest_updated: bool,
}

impl Report<'_> {
    fn plan_text(&self, table: Option<&str>) -> String {
        let diff = self.diff;
        let path = &self.target.path;
        let mut text = format!(
            "{} ({}): restore {path} to version {}\n",
            self.target.label(),
            self.target.spec.source,
            self.version_id
        );
        let from = |value: Option<String>| value.unwrap_or_else(|| "(no current state)".into());
        text.push_str(&format!(
            "  ~ serial: {} → {}\n",
            from(diff.serial.0.map(|serial| serial.to_string())),
            diff.serial.1
        ));
        if diff.other_lineage() {
            text.push_str(&format!(
                "  ~ lineage: {} → {} (another state; --allow-other-lineage)\n",
                from(diff.lineage.0.clone()),
                diff.lineage.1
            ));
        } else {
            text.push_str(&format!("  = lineage: {}\n", diff.lineage.1));
        }
        text.push_str(&format!(
            "  ~ resources: {} → {}\n",
            from(diff.resource_count.0.map(|count| count.to_string())),
            diff.resource_count.1
        ));
        if !diff.only_current.is_empty() {
            text.push_str("    not in the restored state: Terraform plans to create these again while the configuration has them (if the real objects still exist, `terraform import` them instead):\n");
        }
        for address in &diff.only_current {
            text.push_str(&format!("      - {address}\n"));
        }
        for address in &diff.only_restored {
            text.push_str(&format!("      + {address}\n"));
        }
        text.push_str(&format!(
            "  + {}: a new current version, copied from {}; no version is deleted\n",
            path.key, self.version_id
        ));
        if let Some(table) = table {
            text.push_str(&format!(
                "  ~ digest: {} in DynamoDB table {table}, set to the restored state's MD5\n",
                path.digest_id()
            ));
        }
        text.push_str(&format!(
            "  Terraform's state lock ({}) is taken for the copy; while another run holds it, nothing is written.\n",
            self.locked.join(" and ")
        ));
        text
    }

    fn print(&self, context: &Context<'_>, requests: &aws::RequestCounts) {
        let diff = self.diff;
        if context.json() {
            context.printer.data(&json::document(
                "state restore",
                json::StateRestored {
                    state: self.target.reference(),
                    version_id: self.version_id,
                    status: self.status,
                    new_version_id: self.new_version_id.clone(),
                    serial: json::FromTo {
                        from: diff.serial.0,
                        to: diff.serial.1,
                    },
                    lineage: json::FromTo {
                        from: diff.lineage.0.clone(),
                        to: diff.lineage.1.clone(),
                    },
                    resources: json::FromTo {
                        from: diff.resource_count.0,
                        to: diff.resource_count.1,
                    },
                    only_current: diff.only_current.clone(),
                    only_restored: diff.only_restored.clone(),
                    locked: self.locked.clone(),
                    digest_updated: self.digest_updated,
                    requests,
                },
            ));
            return;
        }
        let path = &self.target.path;
        let text = match &self.new_version_id {
            None => format!(
                "{}: the current state of {path} already is version {}'s content; nothing to restore.\n",
                self.target.label(),
                self.version_id
            ),
            Some(new_version) => format!(
                "\nRestored: {path} is now version {new_version}, a copy of {} (serial {}); no version was deleted{}.\nRun `terraform plan` to see what the restored state lacks.\n",
                self.version_id,
                diff.serial.1,
                if self.digest_updated {
                    ", and the lock table's digest matches it"
                } else {
                    ""
                }
            ),
        };
        context.printer.data(&text);
    }
}
