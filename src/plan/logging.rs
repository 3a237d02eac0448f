//! Server access logging into another bucket of the same account and region. Delivery is
//! granted by one statement per state bucket in the log bucket's policy, never by ACLs; the
//! grant goes first, then logging is turned on.

use super::{Change, Facet, PlanError, Planner};
use crate::desired::DesiredBucket;
use crate::observed::{LogBucket, LoggingTarget, Observed, ObservedBucket};
use crate::policy::{self, PolicyDocument};

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &Observed,
    bucket: &ObservedBucket,
) -> Result<(), PlanError> {
    let spec = desired.spec;
    let Some(logging) = &spec.bucket.logging else {
        return Ok(());
    };
    let log_policy = match &observed.log_bucket {
        None | Some(LogBucket::Missing) => {
            return Err(PlanError::LogBucketMissing {
                bucket: logging.bucket.to_string(),
            });
        }
        Some(LogBucket::Found { region, .. }) if region != spec.region.as_str() => {
            return Err(PlanError::LogBucketElsewhere {
                bucket: logging.bucket.to_string(),
                actual: region.clone(),
                expected: spec.region.to_string(),
            });
        }
        Some(LogBucket::Found { policy, .. }) => policy,
    };
    if let Some(statement) = &desired.log_delivery {
        let live =
            match log_policy {
                Some(text) => Some(PolicyDocument::parse(text).map_err(|reason| {
                    PlanError::UnreadablePolicy {
                        bucket: logging.bucket.to_string(),
                        reason,
                    }
                })?),
                None => None,
            };
        planner.record(
            Facet::LogDelivery,
            policy::with_statement(live.as_ref(), statement).map(|merged| {
                Change::GrantLogDelivery {
                    log_bucket: logging.bucket.to_string(),
                    statement: statement.clone(),
                    from: log_policy.clone(),
                    to: merged.to_json(),
                }
            }),
        );
    }
    let target = LoggingTarget {
        bucket: logging.bucket.to_string(),
        prefix: logging.prefix.to_string(),
    };
    planner.record(
        Facet::Logging,
        (bucket.logging.as_ref() != Some(&target)).then(|| Change::EnableLogging {
            from: bucket.logging.clone(),
            to: target,
        }),
    );
    Ok(())
}
