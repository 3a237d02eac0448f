//! The apply step: the environment's apply lock (when a change needs it), the buckets
//! created, every change applied.

use crate::aws::{self};
use crate::error::Error;
use crate::progress::Task;

use super::*;

impl Engine {
    pub(super) async fn apply_one<'e>(
        &self,
        mut planned: Planned<'e>,
        progress: &dyn Task,
    ) -> Result<Planned<'e>, Error> {
        let environment = planned.environment;
        let spec = &environment.spec;
        let waiting = |message: &str| {
            progress.step(message);
            self.reporter.message(&format!("{}: {message}", spec.name));
        };
        let deadline = std::time::Instant::now() + self.lock_timeout;
        let (mut prepared, mut replica_prepared) = (aws::Prepared::default(), None);
        // One lock covers the environment, in the primary bucket, whichever bucket's plan
        // needs it: no run holds one lock while it waits for another.
        let mut lock = None;
        while needs_environment_lock(&planned) {
            let (taken, replica_created) = tokio::join!(
                async {
                    let prepared = aws::create_planned_bucket(
                        &planned.clients,
                        &planned.plan,
                        spec.bucket.name.as_str(),
                        &spec.region,
                        planned.account.as_str(),
                    )
                    .await?;
                    let lock = aws::lock::take_or_wait(
                        &planned.clients,
                        spec.bucket.name.as_str(),
                        "apply",
                        deadline,
                        &waiting,
                        &self.held_locks,
                    )
                    .await?;
                    Ok::<_, aws::AwsError>((prepared, lock))
                },
                // The replica's bucket is created while the lock is taken.
                async {
                    match replica_with_changes(&planned) {
                        Some((target, plan)) => {
                            let replica_spec = target.desired.spec;
                            aws::create_planned_bucket(
                                &target.clients,
                                plan,
                                replica_spec.bucket.name.as_str(),
                                &replica_spec.region,
                                planned.account.as_str(),
                            )
                            .await
                            .map(Some)
                        }
                        None => Ok(None),
                    }
                },
            );
            let (bucket_prepared, acquired) = match (taken, replica_created) {
                (Ok(taken), Ok(replica_created)) => {
                    replica_prepared = replica_created;
                    taken
                }
                (Ok((_, acquired)), Err(error)) => {
                    if let aws::lock::Acquired::Taken(held) = acquired {
                        held.release().await;
                    }
                    return Err(error.into());
                }
                (Err(error), _) => return Err(error.into()),
            };
            prepared = bucket_prepared;
            if let aws::lock::Acquired::Taken(held) = acquired {
                lock = Some(*held);
                break;
            }
            // Another run held the lock and is done: it may have done what this run planned
            // (runners of one pipeline apply the same spec). Plan again; what is left is
            // applied, under the lock if it still needs it.
            // The fresh plan's warnings replace the old plan's: they speak of what is left.
            waiting("planning again: another apply held the lock");
            planned = self.plan_one(environment).await?;
            if planned.plan.is_empty() {
                // Observed just now: nothing to write, nothing to verify (as `apply_all`).
                return Ok(planned);
            }
            (prepared, replica_prepared) = (aws::Prepared::default(), None);
        }
        let account = planned.account.as_str();
        let primary = aws::apply(
            &planned.clients,
            &planned.plan,
            spec.bucket.name.as_str(),
            &spec.region,
            account,
            prepared,
        );
        // The replica is created and configured beside the primary, and so is the
        // replication role.
        let replica = async {
            match replica_with_changes(&planned) {
                Some((target, plan)) => {
                    let replica_spec = target.desired.spec;
                    aws::apply(
                        &target.clients,
                        plan,
                        replica_spec.bucket.name.as_str(),
                        &replica_spec.region,
                        account,
                        replica_prepared.unwrap_or_default(),
                    )
                    .await
                    .map(Some)
                }
                None => Ok(None),
            }
        };
        let role = aws::apply_replication_role(&planned.clients, &planned.plan);
        let outcome = async {
            let (primary, replica, ()) = tokio::try_join!(primary, replica, role)?;
            // Replication needs both buckets versioned and the role in place.
            aws::apply_replication(
                &planned.clients,
                &planned.plan,
                spec.bucket.name.as_str(),
                account,
            )
            .await?;
            Ok::<_, aws::AwsError>((primary, replica))
        }
        .await;
        // The AWS writes that needed the lock are done: it is released while the backend
        // files are written and the result verified (at once on failure).
        let release = async {
            if let Some(lock) = lock {
                lock.release().await;
            }
        };
        let (primary, replica) = match outcome {
            Ok(applied) => applied,
            Err(error) => {
                release.await;
                return Err(error.into());
            }
        };
        planned.warnings.extend(primary.warnings);
        let replica_key = replica.and_then(|replica| {
            planned.warnings.extend(replica.warnings);
            replica.created_key
        });
        let (verified, ()) = tokio::join!(
            self.write_and_verify(&mut planned, primary.created_key, replica_key, progress),
            release
        );
        verified.map(|()| planned)
    }
}

/// Whether either bucket's plan holds a change two runs must not both make.
pub(super) fn needs_environment_lock(planned: &Planned<'_>) -> bool {
    aws::needs_lock(&planned.plan)
        || replica_with_changes(planned).is_some_and(|(_, plan)| aws::needs_lock(plan))
}

/// The replica and its plan, when the plan changes anything on it.
pub(super) fn replica_with_changes<'p>(
    planned: &'p Planned<'_>,
) -> Option<(&'p ReplicaTarget<'p>, &'p crate::plan::EnvPlan)> {
    match (&planned.replica, &planned.plan.replica) {
        (Some(target), Some(replica_plan)) if !replica_plan.plan.changes.is_empty() => {
            Some((target, &replica_plan.plan))
        }
        _ => None,
    }
}
