//! Each stack's backend.hcl, rendered from the desired state; with a KMS key yet to be
//! created, its content is known only after apply. Files of stacks the spec no longer has
//! are left on disk, with a note.

use super::{Change, Facet, KeyArn, Planner, SseTarget};
use crate::desired::DesiredBucket;
use crate::observed::Observed;
use crate::render::{KmsKeyId, parse_backend_hcl};
use crate::spec::{EnvSpec, StackSpec};

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &Observed,
    encryption: &SseTarget,
) {
    let spec = desired.spec;
    for stack in &desired.stacks {
        let key_id = match encryption {
            SseTarget::Aes256 => Some(KmsKeyId::FromSpec),
            SseTarget::Kms {
                key_arn: KeyArn::Known(arn),
            } => Some(KmsKeyId::Resolved(arn)),
            SseTarget::Kms {
                key_arn: KeyArn::AfterApply,
            } => None,
        };
        let content = key_id.map(|key_id| desired.backend_file(stack, key_id));
        let on_disk = observed.backend_files.get(&stack.spec.file);
        let in_sync = content.is_some() && content.as_ref() == on_disk;
        planner.record(
            Facet::BackendFile,
            (!in_sync).then(|| Change::WriteBackendFile {
                stack: stack.spec.name.to_string(),
                path: stack.spec.file.clone(),
                from: on_disk.cloned(),
                to: content,
            }),
        );
        if let Some(retired) = retired_lock_table(on_disk.map(String::as_str), spec, stack.spec) {
            planner.note(retired);
        }
        if spec.tofu_encryption.is_some() {
            // OpenTofu's encryption file beside it, planned like backend.hcl.
            let path = stack.spec.tofu_encryption_file();
            let content = key_id
                .and_then(|key_id| desired.tofu_encryption_file(stack, key_id))
                .map(|(_, content)| content);
            let on_disk = observed.backend_files.get(&path);
            let in_sync = content.is_some() && content.as_ref() == on_disk;
            planner.record(
                Facet::BackendFile,
                (!in_sync).then(|| Change::WriteBackendFile {
                    stack: stack.spec.name.to_string(),
                    path,
                    from: on_disk.cloned(),
                    to: content,
                }),
            );
        }
    }
    for (path, content) in &observed.orphan_backend_files {
        let config = parse_backend_hcl(content).ok();
        let read = |name: &str| {
            config
                .as_ref()
                .and_then(|config| config.string(name).map(str::to_owned))
        };
        // The file's own bucket: a failover file names the replica.
        let bucket = read("bucket").unwrap_or_else(|| spec.bucket.name.to_string());
        let state = match read("key") {
            Some(key) => format!("its state `s3://{bucket}/{key}` stays in the bucket and "),
            None => String::new(),
        };
        planner.note(format!(
            "{path} was written for a stack {} no longer has: {state}the file is left on disk (statebucket deletes neither); its grants are removed from the bucket policy. Delete the file once no working directory uses it",
            spec.source
        ));
    }
}

/// When backend.hcl on disk names a DynamoDB table that the spec no longer uses: the table
/// is kept, and this says how to remove it once nothing uses it.
fn retired_lock_table(
    backend_file: Option<&str>,
    spec: &EnvSpec,
    stack: &StackSpec,
) -> Option<String> {
    let on_disk = parse_backend_hcl(backend_file?).ok()?;
    let table = on_disk.string("dynamodb_table")?;
    if stack
        .lock
        .table()
        .is_some_and(|wanted| wanted.as_str() == table)
    {
        return None;
    }
    let region = spec.region.as_str();
    // Straight from DynamoDB-only to the lockfile, runners older than 1.10 would go on
    // taking only the table's lock, which newer runners no longer check.
    let skipped_bridge = if !on_disk.flag("use_lockfile") && stack.lock.table().is_none() {
        " Caution: the old file had no `use_lockfile`, so runners still on Terraform < 1.10 would lock only in the table while newer ones lock only the lockfile; if any remain, set `lock: both` first."
    } else {
        ""
    };
    let still_used = spec.lock_tables().iter().any(|used| used.as_str() == table);
    if still_used {
        return Some(format!(
            "{} stops using DynamoDB table `{table}`, which other stacks still use. Should this stack ever return to DynamoDB locking, first delete its stale digest item `{}/{}-md5`.",
            stack.file, spec.bucket.name, stack.key
        ));
    }
    Some(format!(
        "{} stops using DynamoDB table `{table}`. statebucket never deletes it: once no runner uses a Terraform older than 1.10 with this backend, remove it by hand with `aws dynamodb update-table --region {region} --table-name {table} --no-deletion-protection-enabled` then `aws dynamodb delete-table --region {region} --table-name {table}`. Should you ever return to DynamoDB locking, first delete its stale digest item `{}/{}-md5`.{skipped_bridge}",
        stack.file, spec.bucket.name, stack.key
    ))
}
