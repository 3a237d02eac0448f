//! The verify step: backend files written, the environment observed again, the plan empty.

use crate::aws::{self};
use crate::desired::DesiredBucket;
use crate::error::Error;

use crate::observed::Observed;
use crate::plan::{Change, EnvPlan, Facet, plan_with_replica};
use crate::policy::identity_policy_name;
use crate::progress::Task;
use crate::project::write_file_atomically;
use crate::render::KmsKeyId;
use crate::spec::IamArn;

use super::apply::primary_bucket;
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
        let key_hints = KeyHints {
            primary: created_key
                .clone()
                .or_else(|| key_named_by(&planned.plan.changes)),
            replica: replica_key.clone().or_else(|| {
                planned
                    .plan
                    .replica
                    .as_ref()
                    .and_then(|replica| key_named_by(&replica.plan.changes))
            }),
        };
        let (mut observed, mut replica_observed) = observe_again(planned, &key_hints).await?;
        let remaining_of = |observed: &Observed, replica_observed: &Option<Observed>| {
            plan_with_replica(
                &planned.desired,
                observed,
                planned
                    .replica
                    .as_ref()
                    .map(|target| &target.desired)
                    .zip(replica_observed.as_ref()),
            )
        };
        let first = remaining_of(&observed, &replica_observed)?;
        let bucket = primary_bucket(planned).at;
        let (remaining, waited) = aws::bucket::until_settled(
            first,
            self.settle_timeout,
            EnvPlan::is_empty,
            async |remaining| {
                progress.step(&format!(
                    "reading {} again: not yet as written",
                    facet_list(remaining)
                ));
                let facets = facets_of(remaining);
                let bucket_settings_only =
                    remaining.replica.as_ref().is_none_or(|r| r.plan.is_empty())
                        && facets.iter().all(|facet| aws::bucket::rereadable(*facet));
                match observed.bucket.as_mut() {
                    Some(observed_bucket) if bucket_settings_only => {
                        aws::bucket::reread(bucket, &facets, observed_bucket).await?;
                    }
                    _ => (observed, replica_observed) = observe_again(planned, &key_hints).await?,
                }
                Ok::<_, Error>(remaining_of(&observed, &replica_observed)?)
            },
        )
        .await?;
        if remaining.is_empty() {
            return Ok(());
        }
        Err(Error::NotConverged {
            facets: remaining.all_changes().map(Change::facet).collect(),
            waited,
            // A change the first plan also had: the store still shows what was there before.
            not_visible_yet: remaining
                .all_changes()
                .all(|change| planned.plan.all_changes().any(|before| before == change)),
        })
    }
}

/// The facets of `changes`, each once.
fn distinct_facets<'a>(changes: impl Iterator<Item = &'a Change>) -> Vec<Facet> {
    let mut facets: Vec<Facet> = changes.map(Change::facet).collect();
    facets.sort();
    facets.dedup();
    facets
}

/// The facets the primary bucket's own plan changes (what `reread` can read again).
fn facets_of(plan: &EnvPlan) -> Vec<Facet> {
    distinct_facets(plan.changes.iter())
}

/// Every facet the plan changes, replica included, for people.
fn facet_list(plan: &EnvPlan) -> String {
    let names: Vec<String> = distinct_facets(plan.all_changes())
        .iter()
        .map(ToString::to_string)
        .collect();
    names.join(", ")
}

/// The keys to read back after apply: the ones it created, or the ones the plan named.
struct KeyHints {
    primary: Option<String>,
    replica: Option<String>,
}

/// Both buckets observed again, at once.
async fn observe_again(
    planned: &Planned<'_>,
    hints: &KeyHints,
) -> Result<(Observed, Option<Observed>), Error> {
    let spec = &planned.environment.spec;
    let on_disk = read_on_disk(spec)?;
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
        hints.primary.as_deref(),
    );
    let replica_observed = async {
        let Some(target) = &planned.replica else {
            return Ok(None);
        };
        observe_replica(
            &target.clients,
            target.desired.spec,
            planned.account.as_str(),
            hints.replica.as_deref(),
        )
        .await
        .map(Some)
    };
    let (observed, replica_observed) = tokio::join!(observed, replica_observed);
    Ok((observed?, replica_observed?))
}

/// The KMS key a plan's changes name, when one does: the key to read back after apply.
pub(super) fn key_named_by(changes: &[Change]) -> Option<String> {
    changes.iter().find_map(|change| match change {
        Change::SetEncryption { to, .. } => to.known_key().map(str::to_owned),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_s3::Client;
    use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
    use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningOutput;
    use aws_sdk_s3::types::BucketVersioningStatus;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::bucket::{BucketAt, reread};
    use crate::observed::{ObservedBucket, Versioning};

    fn plan_of(changes: Vec<Change>) -> EnvPlan {
        EnvPlan {
            changes,
            in_sync: Vec::new(),
            kept_statements: Vec::new(),
            notes: Vec::new(),
            replica: None,
        }
    }

    /// What plan makes of the versioning read back.
    fn versioning_plan(observed: &ObservedBucket) -> EnvPlan {
        plan_of(match observed.versioning {
            Versioning::Enabled => Vec::new(),
            from => vec![Change::EnableVersioning { from }],
        })
    }

    #[tokio::test]
    async fn a_stale_read_back_is_read_again_until_it_shows_the_write_and_nothing_is_written_twice()
    {
        let status = |status: BucketVersioningStatus| {
            move || {
                GetBucketVersioningOutput::builder()
                    .status(status.clone())
                    .build()
            }
        };
        let versioning = mock!(Client::get_bucket_versioning)
            .sequence()
            .output(status(BucketVersioningStatus::Suspended))
            .output(status(BucketVersioningStatus::Suspended))
            .output(status(BucketVersioningStatus::Enabled))
            .build();
        let write = mock!(Client::put_bucket_versioning)
            .then_output(|| PutBucketVersioningOutput::builder().build());
        let clients = crate::aws::mocked::clients(&[&versioning, &write]);
        let bucket = BucketAt::new(&clients, "mocked-bucket", "123456789012");
        // Apply enabled versioning; the first read after it still shows it suspended.
        let mut observed = ObservedBucket {
            versioning: Versioning::Suspended,
            ..ObservedBucket::unconfigured("eu-west-1")
        };
        reread(bucket, &[Facet::Versioning], &mut observed)
            .await
            .unwrap();
        let first = versioning_plan(&observed);
        assert!(!first.is_empty(), "the first read back is stale");
        let (remaining, waited) = aws::bucket::until_settled(
            first,
            Duration::from_secs(10),
            EnvPlan::is_empty,
            async |remaining| {
                reread(bucket, &facets_of(remaining), &mut observed).await?;
                Ok::<_, Error>(versioning_plan(&observed))
            },
        )
        .await
        .unwrap();
        assert!(remaining.is_empty());
        assert_eq!(
            versioning.num_calls(),
            3,
            "read again until it showed the write"
        );
        assert_eq!(write.num_calls(), 0, "never written a second time");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[tokio::test]
    async fn nothing_left_is_never_read_again_and_patience_bounds_the_reads() {
        let mut reads = 0;
        let (left, _) = aws::bucket::until_settled(
            plan_of(Vec::new()),
            Duration::from_secs(30),
            EnvPlan::is_empty,
            async |_| {
                reads += 1;
                Ok::<_, Error>(plan_of(Vec::new()))
            },
        )
        .await
        .unwrap();
        assert!(left.is_empty());
        assert_eq!(reads, 0, "a converged read back makes no extra read");
        let stale = || {
            plan_of(vec![Change::EnableVersioning {
                from: Versioning::Suspended,
            }])
        };
        let (left, waited) = aws::bucket::until_settled(
            stale(),
            Duration::from_secs(1),
            EnvPlan::is_empty,
            async |_| {
                reads += 1;
                Ok::<_, Error>(stale())
            },
        )
        .await
        .unwrap();
        assert_eq!(left, stale());
        assert!(waited <= Duration::from_secs(1), "{waited:?}");
        // 250 ms, then 500 ms: a third pause would pass the second of patience.
        assert_eq!(reads, 2);
    }
}
