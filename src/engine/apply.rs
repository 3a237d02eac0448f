//! The apply step: the environment's apply lock (when a change needs it), the buckets
//! created, every change applied.

use crate::aws::{self, bucket::BucketAt};
use crate::error::Error;
use crate::progress::Task;

use super::*;

/// An environment ready for its changes: the apply lock taken when a change needs it, and
/// the buckets it creates created (the lock lives in the primary).
struct Ready<'e> {
    planned: Planned<'e>,
    lock: Option<aws::lock::HeldLock>,
    prepared: aws::Prepared,
    replica_prepared: Option<aws::Prepared>,
}

/// What taking the lock came to.
enum LockStep<'e> {
    Ready(Box<Ready<'e>>),
    /// Another run held the lock and left nothing for this one to do.
    NothingLeft(Box<Planned<'e>>),
}

impl Engine {
    pub(super) async fn apply_one<'e>(
        &self,
        planned: Planned<'e>,
        progress: &dyn Task,
    ) -> Result<Planned<'e>, Error> {
        let Ready {
            mut planned,
            lock,
            prepared,
            replica_prepared,
        } = match self.take_environment_lock(planned, progress).await? {
            LockStep::Ready(ready) => *ready,
            LockStep::NothingLeft(planned) => return Ok(*planned),
        };
        let outcome = apply_changes(&planned, prepared, replica_prepared).await;
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

    /// One lock covers the environment, in the primary bucket, whichever bucket's plan needs
    /// it: no run holds one lock while it waits for another. The buckets are created first
    /// (the primary before its lock, the replica while the lock is taken). A run that found
    /// the lock held plans again once it is free: the other run may have done what this one
    /// planned (runners of one pipeline apply the same spec).
    async fn take_environment_lock<'e>(
        &self,
        mut planned: Planned<'e>,
        progress: &dyn Task,
    ) -> Result<LockStep<'e>, Error> {
        let environment = planned.environment;
        let spec = &environment.spec;
        let waiting = |message: &str| {
            progress.step(message);
            self.reporter.message(&format!("{}: {message}", spec.name));
        };
        let deadline = std::time::Instant::now() + self.lock_timeout;
        while needs_environment_lock(&planned) {
            let (taken, replica_created) = tokio::join!(
                async {
                    let prepared = aws::create_planned_bucket(primary_bucket(&planned)).await?;
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
                create_replica_bucket(&planned),
            );
            let ((prepared, acquired), replica_prepared) = match (taken, replica_created) {
                (Ok(taken), Ok(replica_created)) => (taken, replica_created),
                (Ok((_, acquired)), Err(error)) => {
                    if let aws::lock::Acquired::Taken(held) = acquired {
                        held.release().await;
                    }
                    return Err(error.into());
                }
                (Err(error), _) => return Err(error.into()),
            };
            if let aws::lock::Acquired::Taken(held) = acquired {
                return Ok(LockStep::Ready(Box::new(Ready {
                    planned,
                    lock: Some(*held),
                    prepared,
                    replica_prepared,
                })));
            }
            // The fresh plan's warnings replace the old plan's: they speak of what is left.
            waiting("planning again: another apply held the lock");
            planned = self.plan_one(environment).await?;
            if planned.plan.is_empty() {
                // Observed just now: nothing to write, nothing to verify (as `apply_all`).
                return Ok(LockStep::NothingLeft(Box::new(planned)));
            }
        }
        Ok(LockStep::Ready(Box::new(Ready {
            planned,
            lock: None,
            prepared: aws::Prepared::default(),
            replica_prepared: None,
        })))
    }
}

/// The replica's bucket, when its plan creates it.
async fn create_replica_bucket(
    planned: &Planned<'_>,
) -> Result<Option<aws::Prepared>, aws::AwsError> {
    match replica_with_changes(planned) {
        Some(replica) => aws::create_planned_bucket(replica).await.map(Some),
        None => Ok(None),
    }
}

/// Every AWS change of both buckets: the replica and the replication role beside the
/// primary; the replication rule last, since it needs both buckets versioned and the role.
async fn apply_changes(
    planned: &Planned<'_>,
    prepared: aws::Prepared,
    replica_prepared: Option<aws::Prepared>,
) -> Result<(aws::Applied, Option<aws::Applied>), aws::AwsError> {
    let spec = &planned.environment.spec;
    // A spec with `compat` is for an S3-compatible store.
    let writes = if spec.compat.is_none() {
        aws::SettingWrites::AtOnce
    } else {
        aws::SettingWrites::OneAtATime
    };
    let primary = aws::apply(primary_bucket(planned), prepared, writes);
    let replica = async {
        match replica_with_changes(planned) {
            Some(replica) => aws::apply(replica, replica_prepared.unwrap_or_default(), writes)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let role = aws::apply_replication_role(&planned.clients, &planned.plan);
    let (primary, replica, ()) = tokio::try_join!(primary, replica, role)?;
    aws::apply_replication(primary_bucket(planned).at, &planned.plan).await?;
    Ok((primary, replica))
}

/// The primary bucket with its plan, as apply reaches it.
pub(super) fn primary_bucket<'p>(planned: &'p Planned<'_>) -> aws::BucketPlan<'p> {
    planned_bucket(
        &planned.clients,
        &planned.environment.spec,
        &planned.plan,
        &planned.account,
    )
}

/// A bucket of the environment (the primary, or the replica in its own region with its own
/// clients) with its plan.
fn planned_bucket<'p>(
    clients: &'p aws::Clients,
    spec: &'p EnvSpec,
    plan: &'p crate::plan::EnvPlan,
    account: &'p AccountId,
) -> aws::BucketPlan<'p> {
    aws::BucketPlan {
        at: BucketAt::new(clients, spec.bucket.name.as_str(), account.as_str()),
        region: &spec.region,
        plan,
    }
}

/// Whether either bucket's plan holds a change two runs must not both make.
pub(super) fn needs_environment_lock(planned: &Planned<'_>) -> bool {
    aws::needs_lock(&planned.plan)
        || replica_with_changes(planned).is_some_and(|replica| aws::needs_lock(replica.plan))
}

/// The replica and its plan, when the plan changes anything on it.
fn replica_with_changes<'p>(planned: &'p Planned<'_>) -> Option<aws::BucketPlan<'p>> {
    match (&planned.replica, &planned.plan.replica) {
        (Some(target), Some(replica_plan)) if !replica_plan.plan.changes.is_empty() => {
            Some(planned_bucket(
                &target.clients,
                target.desired.spec,
                &replica_plan.plan,
                &planned.account,
            ))
        }
        _ => None,
    }
}
