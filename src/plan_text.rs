//! Plans as people read them, in the style of `terraform plan`: `+` create, `~` update,
//! `=` in sync, each update with its from → to values. Pure text rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plan::{Change, EnvPlan, SseTarget, Target};
use crate::policy::StatementChange;

/// Whether `change` creates something: it does so itself, or it sets up a bucket the same
/// plan creates (then there is nothing to change from).
fn creates(plan: &EnvPlan, change: &Change) -> bool {
    change.creates() || (creates_bucket(plan) && configures_bucket(change))
}

fn creates_bucket(plan: &EnvPlan) -> bool {
    plan.changes
        .iter()
        .any(|change| change.target() == Target::NewBucket)
}

/// A setting of the bucket itself (access logging included).
fn configures_bucket(change: &Change) -> bool {
    change.target() == Target::BucketSetting || matches!(change, Change::EnableLogging { .. })
}

/// One environment's plan as indented lines (without the environment heading).
pub fn plan_lines(plan: &EnvPlan) -> String {
    let mut out = String::new();
    let new_bucket = creates_bucket(plan);
    for change in &plan.changes {
        let (sign, text) = if new_bucket && configures_bucket(change) {
            ('+', describe_new(change))
        } else if change.creates() {
            ('+', describe(change))
        } else {
            ('~', describe(change))
        };
        let _ = writeln!(out, "  {sign} {}: {text}", change.facet());
        for detail in details(change) {
            let _ = writeln!(out, "      {detail}");
        }
    }
    if !plan.kept_statements.is_empty()
        && !plan
            .changes
            .iter()
            .any(|c| matches!(c, Change::PutPolicy { .. }))
    {
        let _ = writeln!(
            out,
            "  = bucket policy keeps {}",
            kept(&plan.kept_statements)
        );
    }
    for note in &plan.notes {
        let _ = writeln!(out, "  ! {note}");
    }
    if !plan.in_sync.is_empty() {
        let names: Vec<String> = plan.in_sync.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  = in sync: {}", names.join(", "));
    }
    if let Some(replica) = &plan.replica {
        let _ = writeln!(
            out,
            "  replica s3://{} in {}:",
            replica.bucket, replica.region
        );
        for line in plan_lines(&replica.plan).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `Plan: 1 to create, 6 to update, 2 in sync.`
pub fn plan_summary(plan: &EnvPlan) -> String {
    let (creates, updates, in_sync) = counts(plan);
    format!("Plan: {creates} to create, {updates} to update, {in_sync} in sync.")
}

/// Changes that create, that update, and facets in sync: the replica's counted too.
fn counts(plan: &EnvPlan) -> (usize, usize, usize) {
    let creates = plan
        .changes
        .iter()
        .filter(|change| creates(plan, change))
        .count();
    let own = (creates, plan.changes.len() - creates, plan.in_sync.len());
    match &plan.replica {
        Some(replica) => {
            let theirs = counts(&replica.plan);
            (own.0 + theirs.0, own.1 + theirs.1, own.2 + theirs.2)
        }
        None => own,
    }
}

fn kept(labels: &[String]) -> String {
    let noun = if labels.len() == 1 {
        "statement"
    } else {
        "statements"
    };
    format!(
        "{} {noun} statebucket does not own: {}",
        labels.len(),
        labels.join(", ")
    )
}

/// A setting of a bucket that is yet to be created: only what it will be.
fn describe_new(change: &Change) -> String {
    match change {
        Change::EnableVersioning { .. } => "Enabled".to_owned(),
        Change::SetEncryption { to, .. } => to.to_string(),
        Change::BlockPublicAccess { .. } => "all 4 blocked".to_owned(),
        Change::EnforceBucketOwner { .. } => crate::desired::OBJECT_OWNERSHIP.to_owned(),
        Change::MergeTags { to, .. } => tag_changes(&BTreeMap::new(), to).join("; "),
        Change::SetLifecycle { to, .. } => to
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        Change::EnableLogging { to, .. } => to.to_string(),
        Change::SetObjectLock { to, .. } => format!("default retention {to}"),
        other => describe(other),
    }
}

fn describe(change: &Change) -> String {
    match change {
        Change::CreateBucket {
            bucket,
            region,
            tags,
            object_lock: true,
            ..
        } => format!(
            "create {bucket} in {region} with Object Lock{}",
            if tags.is_empty() {
                ""
            } else {
                ", tagged at creation"
            }
        ),
        Change::CreateBucket {
            bucket,
            region,
            tags,
            ..
        } if tags.is_empty() => format!("create {bucket} in {region}"),
        Change::CreateBucket { bucket, region, .. } => {
            format!("create {bucket} in {region}, tagged at creation")
        }
        Change::SetObjectLock { from, to, enable } => format!(
            "{} -> default retention {to}",
            match (from, enable) {
                (Some(from), _) => format!("default retention {from}"),
                (None, true) => "off".to_owned(),
                (None, false) => "no default retention".to_owned(),
            }
        ),
        Change::EnableVersioning { from } => format!("{from} -> Enabled"),
        Change::SetEncryption { from, to } => {
            let from = from.as_ref().map_or("none".to_owned(), ToString::to_string);
            let to = match to {
                SseTarget::Aes256 => "AES256".to_owned(),
                other => other.to_string(),
            };
            format!("{from} -> {to}")
        }
        Change::BlockPublicAccess { from } => format!("{from} -> all 4 blocked"),
        Change::EnforceBucketOwner { from } => format!(
            "{} -> {}",
            from.as_deref().unwrap_or("none"),
            crate::desired::OBJECT_OWNERSHIP
        ),
        Change::PutPolicy { statements, .. } => statement_changes(statements),
        Change::MergeTags { from, to } | Change::TagLockTable { from, to, .. } => {
            tag_changes(from, to).join("; ")
        }
        Change::SetLifecycle { from, to, .. } => {
            let list = |rules: &[crate::observed::LifecycleRule]| {
                if rules.is_empty() {
                    "none".to_owned()
                } else {
                    rules
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            };
            format!("{} -> {}", list(from), list(to))
        }
        Change::GrantLogDelivery {
            log_bucket, from, ..
        } => {
            let verb = if from.is_some() { "add to" } else { "create" };
            format!(
                "{verb} the policy of log bucket {log_bucket}: allow logging.s3.amazonaws.com to deliver this bucket's logs"
            )
        }
        Change::EnableLogging { from, to } => format!(
            "{} -> {to}",
            from.as_ref().map_or("off".to_owned(), ToString::to_string)
        ),
        Change::WriteBackendFile { path, from, to, .. } => match (from, to) {
            (None, _) => format!("write {path}"),
            (Some(_), Some(_)) => format!("rewrite {path}"),
            (Some(_), None) => format!("rewrite {path} (kms_key_id known after apply)"),
        },
        // Listed, not `_`: a new kind of change does not compile until it is described.
        beyond @ (Change::CreateReplicationRole { .. }
        | Change::PutReplication { .. }
        | Change::CreateKmsKey { .. }
        | Change::EnableKeyRotation { .. }
        | Change::AliasKmsKey { .. }
        | Change::CreateTofuKey { .. }
        | Change::AliasTofuKey { .. }
        | Change::PutKeyPolicy { .. }
        | Change::CreateLockTable { .. }
        | Change::UpdateLockTable { .. }
        | Change::EnablePointInTimeRecovery { .. }
        | Change::PutIdentityPolicy { .. }) => describe_beyond_bucket(beyond),
    }
}

/// The changes beyond the bucket's own settings: its key, OpenTofu's key, replication, lock
/// tables and identity policies, exactly those `describe` hands over.
fn describe_beyond_bucket(change: &Change) -> String {
    match change {
        Change::CreateReplicationRole { role, .. } => format!(
            "create role {role}, assumable by {} only, with inline policy `{}`",
            crate::replication::S3_SERVICE,
            crate::replication::ROLE_POLICY_NAME
        ),
        Change::PutReplication { from, to, .. } => match from {
            Some(from) if from.priority != to.priority && from.destination == to.destination => {
                format!(
                    "rule {}: {from} (priority {}) -> {to} (priority {})",
                    to.id, from.priority, to.priority
                )
            }
            Some(from) => format!("rule {}: {from} -> {to}", to.id),
            None => format!("rule {}: {to}", to.id),
        },
        Change::CreateKmsKey { alias, .. } => {
            format!("create a symmetric key as {alias}, rotation on")
        }
        Change::EnableKeyRotation { key_arn } => format!("off -> on ({key_arn})"),
        Change::AliasKmsKey { alias, key_arn } => {
            format!("create alias {alias} for {key_arn}, created earlier for this environment")
        }
        Change::CreateTofuKey { alias, .. } => {
            format!("create OpenTofu's dedicated key as {alias}, rotation on")
        }
        Change::AliasTofuKey { alias, key_arn } => {
            format!("create alias {alias} for {key_arn}, OpenTofu's key created earlier")
        }
        Change::PutKeyPolicy {
            key_arn,
            statements,
            ..
        } => format!("{} ({key_arn})", statement_changes(statements)),
        Change::CreateLockTable { table, .. } => format!(
            "create DynamoDB table {table}: hash key LockID (S), {}, KMS encryption (AWS managed key), deletion protection on",
            crate::desired::TABLE_BILLING_MODE
        ),
        Change::UpdateLockTable { table, from, to } => format!("{table}: {from} -> {to}"),
        Change::EnablePointInTimeRecovery { table, from } => match from {
            Some(_) => format!("{table}: point-in-time recovery off -> on"),
            None => format!("{table}: point-in-time recovery on, once the table is ACTIVE"),
        },
        Change::PutIdentityPolicy {
            principal,
            policy_name,
            from,
            ..
        } => {
            let verb = if from.is_some() { "update" } else { "attach" };
            format!("{verb} inline policy `{policy_name}` on {principal}")
        }
        other => unreachable!("`describe` hands {other:?} to the bucket's settings"),
    }
}

fn statement_changes(statements: &[StatementChange]) -> String {
    statements
        .iter()
        .map(|statement| match statement {
            StatementChange::Add { sid } => format!("+ {sid}"),
            StatementChange::Update { sid } => format!("~ {sid}"),
            StatementChange::Remove { sid } => format!("- {sid}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn details(change: &Change) -> Vec<String> {
    match change {
        Change::PutPolicy { kept: labels, .. } | Change::PutKeyPolicy { kept: labels, .. }
            if !labels.is_empty() =>
        {
            vec![format!("keeps {}", kept(labels))]
        }
        Change::PutReplication { kept, role, .. } if !kept.is_empty() => {
            let noun = if kept.len() == 1 { "rule" } else { "rules" };
            vec![format!(
                "keeps {} replication {noun} statebucket does not own: {}; role {role}",
                kept.len(),
                kept.join(", ")
            )]
        }
        Change::SetLifecycle { kept, .. } if !kept.is_empty() => {
            let noun = if kept.len() == 1 { "rule" } else { "rules" };
            vec![format!(
                "keeps {} lifecycle {noun} statebucket does not own: {}",
                kept.len(),
                kept.join(", ")
            )]
        }
        Change::WriteBackendFile {
            path,
            from: Some(from),
            to,
            ..
        } => {
            let mut lines = to
                .as_deref()
                .map(|to| line_diff(from, to))
                .unwrap_or_default();
            lines.push(format!("working directories initialised with the old file need `terraform init -reconfigure -backend-config={path}`"));
            lines
        }
        _ => Vec::new(),
    }
}

fn tag_changes(from: &BTreeMap<String, String>, to: &BTreeMap<String, String>) -> Vec<String> {
    to.iter()
        .filter_map(|(key, value)| match from.get(key) {
            None => Some(format!("+ {key} = {value:?}")),
            Some(old) if old != value => Some(format!("~ {key} = {old:?} -> {value:?}")),
            Some(_) => None,
        })
        .collect()
}

/// Lines only in `from` (`-`) and only in `to` (`+`), each in its file's order.
fn line_diff(from: &str, to: &str) -> Vec<String> {
    let old: Vec<&str> = from.lines().collect();
    let new: Vec<&str> = to.lines().collect();
    let removed = old
        .iter()
        .filter(|line| !new.contains(line))
        .map(|line| format!("- {line}"));
    let added = new
        .iter()
        .filter(|line| !old.contains(line))
        .map(|line| format!("+ {line}"));
    removed.chain(added).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{PublicAccessBlock, Versioning};
    use crate::plan::Facet;

    #[test]
    fn plan_text_shows_from_and_to() {
        let plan = EnvPlan {
            changes: vec![
                Change::EnableVersioning {
                    from: Versioning::Suspended,
                },
                Change::BlockPublicAccess {
                    from: PublicAccessBlock {
                        block_public_acls: true,
                        ..PublicAccessBlock::default()
                    },
                },
                Change::PutPolicy {
                    from: Some("{}".into()),
                    to: crate::policy::PolicyDocument::of(Vec::new()),
                    statements: vec![StatementChange::Add {
                        sid: "StatebucketA".into(),
                    }],
                    kept: vec!["AuditorRead".into()],
                },
                Change::MergeTags {
                    from: BTreeMap::from([
                        ("team".into(), "old".into()),
                        ("keep".into(), "x".into()),
                    ]),
                    to: BTreeMap::from([
                        ("team".into(), "platform".into()),
                        ("keep".into(), "x".into()),
                        ("env".into(), "dev".into()),
                    ]),
                },
                Change::WriteBackendFile {
                    stack: "dev".into(),
                    path: "environments/dev/backend.hcl".into(),
                    from: Some("bucket = \"a\"\nregion = \"eu-west-1\"\n".into()),
                    to: Some("bucket = \"b\"\nregion = \"eu-west-1\"\n".into()),
                },
            ],
            in_sync: vec![Facet::Bucket, Facet::Encryption],
            kept_statements: vec!["AuditorRead".into()],
            notes: vec!["a note".into()],
            replica: None,
        };
        assert_eq!(
            plan_lines(&plan),
            "  ~ versioning: Suspended -> Enabled
  ~ public access block: only BlockPublicAcls -> all 4 blocked
  ~ bucket policy: + StatebucketA
      keeps 1 statement statebucket does not own: AuditorRead
  ~ tags: + env = \"dev\"; ~ team = \"old\" -> \"platform\"
  ~ backend file: rewrite environments/dev/backend.hcl
      - bucket = \"a\"
      + bucket = \"b\"
      working directories initialised with the old file need `terraform init -reconfigure -backend-config=environments/dev/backend.hcl`
  ! a note
  = in sync: bucket, encryption
"
        );
        assert_eq!(
            plan_summary(&plan),
            "Plan: 0 to create, 5 to update, 2 in sync."
        );
    }

    #[test]
    fn a_bucket_to_be_created_shows_its_settings_as_created() {
        let plan = EnvPlan {
            changes: vec![
                Change::CreateBucket {
                    bucket: "b".into(),
                    region: "eu-west-1".into(),
                    tags: BTreeMap::new(),
                    owner_enforced: true,
                    object_lock: false,
                },
                Change::EnableVersioning {
                    from: Versioning::Never,
                },
                Change::SetEncryption {
                    from: None,
                    to: SseTarget::Aes256,
                },
                Change::BlockPublicAccess {
                    from: PublicAccessBlock::default(),
                },
            ],
            in_sync: Vec::new(),
            kept_statements: Vec::new(),
            notes: Vec::new(),
            replica: None,
        };
        assert_eq!(
            plan_lines(&plan),
            "  + bucket: create b in eu-west-1
  + versioning: Enabled
  + encryption: AES256
  + public access block: all 4 blocked
"
        );
        assert_eq!(
            plan_summary(&plan),
            "Plan: 4 to create, 0 to update, 0 in sync."
        );
    }

    #[test]
    fn a_replica_plan_is_indented_under_its_bucket_and_counted_in_the_summary() {
        let replica = EnvPlan {
            changes: vec![
                Change::CreateBucket {
                    bucket: "b-replica".into(),
                    region: "eu-central-1".into(),
                    tags: BTreeMap::new(),
                    owner_enforced: true,
                    object_lock: true,
                },
                Change::SetObjectLock {
                    from: None,
                    to: crate::observed::Retention {
                        mode: "GOVERNANCE".into(),
                        days: Some(30),
                        years: None,
                    },
                    enable: false,
                },
            ],
            in_sync: vec![Facet::Tags],
            kept_statements: Vec::new(),
            notes: Vec::new(),
            replica: None,
        };
        let plan = EnvPlan {
            changes: vec![Change::EnableVersioning {
                from: Versioning::Suspended,
            }],
            in_sync: vec![Facet::Bucket],
            kept_statements: Vec::new(),
            notes: Vec::new(),
            replica: Some(Box::new(crate::plan::ReplicaPlan {
                bucket: "b-replica".into(),
                region: "eu-central-1".into(),
                plan: replica,
            })),
        };
        assert_eq!(
            plan_lines(&plan),
            "  ~ versioning: Suspended -> Enabled
  = in sync: bucket
  replica s3://b-replica in eu-central-1:
    + bucket: create b-replica in eu-central-1 with Object Lock
    + object lock: default retention GOVERNANCE for 30 days
    = in sync: tags
"
        );
        assert_eq!(
            plan_summary(&plan),
            "Plan: 2 to create, 1 to update, 2 in sync."
        );
    }
}
