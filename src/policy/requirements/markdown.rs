//! The table as the README shows it.

use super::*;

/// The README's permissions table: one line per requirement.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| client | operation | who | action | on | in | expected | source |\n|---|---|---|---|---|---|---|---|\n",
    );
    for requirement in REQUIREMENTS {
        let documents: Vec<String> = requirement
            .documents
            .iter()
            .map(ToString::to_string)
            .collect();
        table.push_str(&format!(
            "| {} | {} | {} | `{}` | {} | {} | {} | {} |\n",
            requirement.client,
            requirement.operation,
            who(requirement.who),
            requirement.action,
            on(requirement.target),
            documents.join(", "),
            match requirement.expect {
                Allowed => "allowed",
                Denied => "denied",
            },
            requirement.source
        ));
    }
    table
}

pub(super) fn who(who: Who) -> &'static str {
    match who {
        Who::Writer => "writers",
        Who::Reader => "readers",
        Who::OtherStackWriter => "another stack's writers",
        Who::Unlisted => "an unlisted principal",
        Who::ReplicationRole => "replication role",
        Who::S3 { for_account: true } => "s3.amazonaws.com (this account)",
        Who::S3 { for_account: false } => "s3.amazonaws.com (another account)",
        Who::LogDelivery { for_bucket: true } => "logging.s3.amazonaws.com (this bucket)",
        Who::LogDelivery { for_bucket: false } => "logging.s3.amazonaws.com (another bucket)",
    }
}

pub(super) fn on(target: Target) -> &'static str {
    match target {
        Target::Bucket => "bucket",
        Target::State => "state",
        Target::WorkspaceState => "`<prefix>/*/<key>`",
        Target::Lock => "`<key>.tflock`",
        Target::WorkspaceLock => "`<prefix>/*/<key>.tflock`",
        Target::StateKey => "state key via S3",
        Target::StateKeyDirectly => "state key, directly",
        Target::TofuKey => "OpenTofu key, directly",
        Target::SourceObjects => "source objects",
        Target::ReplicaObjects => "replica objects",
        Target::ReplicaKey => "replica key via S3",
        Target::ReplicationRole => "replication role",
        Target::LogObjects => "log prefix",
        Target::LockTable => "lock table",
    }
}
