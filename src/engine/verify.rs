//! The verify step: backend files written, the environment observed again, the plan empty.

use crate::aws::{self};
use crate::desired::DesiredBucket;
use crate::error::Error;
use crate::plan::{Change, plan_with_replica};
use crate::policy::identity_policy_name;
use crate::progress::Task;
use crate::project::write_file_atomically;
use crate::render::KmsKeyId;
use crate::spec::IamArn;

use super::plan::{observe_replica, read_on_disk};
use super::*;

impl Engine {
    /// Writes the backend files (the failover files too) and observes again: the plan must
    /// now be empty. `created_key`, `replica_key`: the keys apply created in each bucket.
    pub(super) async fn write_and_verify(
        &self,
        planned: &mut Planned<'_>,
        created_key: Option<String>,
        replica_key: Option<String>,
        progress: &dyn Task,
    ) -> Result<(), Error> {
        let spec = &planned.environment.spec;
        write_backend_files(
            &planned.desired,
            &planned.plan.changes,
            created_key.as_deref(),
        )?;
        if let (Some(target), Some(replica_plan)) = (&planned.replica, &planned.plan.replica) {
            write_backend_files(
                &target.desired,
                &replica_plan.plan.changes,
                replica_key.as_deref(),
            )?;
        }
        progress.step("verifying");
        let on_disk = read_on_disk(spec)?;
        let key_hint = created_key
            .clone()
            .or_else(|| key_named_by(&planned.plan.changes));
        let identity_principals: Vec<IamArn> = planned
            .desired
            .identity_policies
            .iter()
            .map(|target| target.principal.clone())
            .collect();
        let identity_name = identity_policy_name(spec);
        let observed = aws::observe(
            &planned.clients,
            spec,
            planned.account.as_str(),
            on_disk,
            spec.access
                .attach_identity_policy
                .then_some((identity_name.as_str(), identity_principals.as_slice())),
            key_hint.as_deref(),
        );
        let replica_observed = async {
            let Some(target) = &planned.replica else {
                return Ok(None);
            };
            let hint = replica_key.clone().or_else(|| {
                planned
                    .plan
                    .replica
                    .as_ref()
                    .and_then(|replica| key_named_by(&replica.plan.changes))
            });
            observe_replica(
                &target.clients,
                target.desired.spec,
                planned.account.as_str(),
                hint.as_deref(),
            )
            .await
            .map(Some)
        };
        let (observed, replica_observed) = tokio::join!(observed, replica_observed);
        let (observed, replica_observed) = (observed?, replica_observed?);
        let remaining = plan_with_replica(
            &planned.desired,
            &observed,
            planned
                .replica
                .as_ref()
                .map(|target| &target.desired)
                .zip(replica_observed.as_ref()),
        )?;
        if !remaining.is_empty() {
            return Err(Error::NotConverged {
                facets: remaining.all_changes().map(Change::facet).collect(),
            });
        }
        Ok(())
    }
}

/// The KMS key a plan's changes name, when one does: the key to read back after apply.
pub(super) fn key_named_by(changes: &[Change]) -> Option<String> {
    changes.iter().find_map(|change| match change {
        Change::SetEncryption {
            to: crate::plan::SseTarget::Kms { key_arn },
            ..
        } => key_arn.clone(),
        Change::AliasKmsKey { key_arn, .. }
        | Change::EnableKeyRotation { key_arn }
        | Change::PutKeyPolicy { key_arn, .. } => Some(key_arn.clone()),
        _ => None,
    })
}

/// Writes the backend files `changes` name, rendering those that waited for a key this run
/// created.
pub(super) fn write_backend_files(
    desired: &DesiredBucket<'_>,
    changes: &[Change],
    created_key: Option<&str>,
) -> Result<(), Error> {
    for change in changes {
        let Change::WriteBackendFile {
            stack, path, to, ..
        } = change
        else {
            continue;
        };
        let content = match to {
            Some(content) => content.clone(),
            None => {
                let desired_stack = desired
                    .stacks
                    .iter()
                    .find(|candidate| candidate.spec.name.as_str() == stack)
                    .expect("the plan's stacks are the desired state's");
                let key = created_key.map_or(KmsKeyId::FromSpec, KmsKeyId::Resolved);
                // The stack's backend.hcl, or OpenTofu's encryption file beside it.
                match desired.tofu_encryption_file(desired_stack, key) {
                    Some((encryption_path, content)) if &encryption_path == path => content,
                    _ => desired.backend_file(desired_stack, key),
                }
            }
        };
        tracing::debug!(env = %desired.spec.name, %path, "writing backend file");
        write_file_atomically(path, &content).map_err(|error| Error::File {
            doing: "write",
            path: path.clone(),
            cause: error.to_string(),
            hint: Some("check that the directory is writable; the AWS changes were applied, so a rerun only writes the file".into()),
        })?;
    }
    Ok(())
}
