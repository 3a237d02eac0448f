//! The failover's checks that read replication (pure): is statebucket's rule there and on,
//! may S3 assume the role, and has the current state reached the replica.

use super::{Check, Status};
use crate::aws::replication::StateReplication;
use crate::observed::ReplicationConfiguration;
use crate::replication::{RULE_ID, S3_SERVICE, trusts_s3};
use crate::spec::IamArn;

/// statebucket's rule in the primary's configuration: present, enabled, into this replica.
pub fn configuration_check(
    configuration: Option<&ReplicationConfiguration>,
    primary: &str,
    replica_arn: &str,
) -> Check {
    let fix = "run `statebucket apply` to restore the replication rule";
    let Some(configuration) = configuration else {
        return Check::new(
            "replication",
            Status::Fail,
            format!("s3://{primary} has no replication configuration: nothing reaches the replica"),
        )
        .fix(fix);
    };
    match &configuration.owned {
        None => Check::new(
            "replication",
            Status::Fail,
            format!("s3://{primary} replicates, but not with statebucket's rule `{RULE_ID}`"),
        )
        .fix(fix),
        Some(rule) if !rule.enabled => Check::new(
            "replication",
            Status::Fail,
            format!("rule `{RULE_ID}` of s3://{primary} is disabled"),
        )
        .fix(fix),
        Some(rule) if rule.destination != replica_arn => Check::new(
            "replication",
            Status::Fail,
            format!(
                "rule `{RULE_ID}` of s3://{primary} replicates into {}, not {replica_arn}",
                rule.destination
            ),
        )
        .fix(fix),
        Some(rule) => Check::new(
            "replication",
            Status::Ok,
            format!(
                "s3://{primary} replicates {} into {replica_arn}{}, role {}",
                if rule.whole_bucket {
                    "every object"
                } else {
                    "some objects"
                },
                if rule.delete_markers {
                    " with delete markers"
                } else {
                    ""
                },
                configuration.role
            ),
        ),
    }
}

/// Whether S3 may assume the replication role (`found`: its ARN and trust policy; `None`: no
/// role).
pub fn role_check(role: &str, found: Option<(&str, &str)>) -> Check {
    match found {
        None => Check::new(
            "replication role",
            Status::Fail,
            format!("role `{role}` does not exist: S3 cannot replicate"),
        )
        .fix("run `statebucket apply` to create it"),
        Some((_, trust)) if trusts_s3(trust) => Check::new(
            "replication role",
            Status::Ok,
            format!("{S3_SERVICE} may assume role `{role}`"),
        ),
        Some((arn, _)) => {
            let check = Check::new(
                "replication role",
                Status::Fail,
                format!("the trust policy of role `{role}` does not let {S3_SERVICE} assume it"),
            );
            // The role's own ARN names the account its trust policy should be limited to.
            match IamArn::parse(arn) {
                Ok(arn) => check.fix(format!(
                    "restore it: aws iam update-assume-role-policy --role-name {role} --policy-document '{}'",
                    crate::replication::trust_policy(&arn.account).to_compact_json()
                )),
                Err(_) => check.fix("restore a trust policy that lets s3.amazonaws.com assume the role"),
            }
        }
    }
}

/// The current state version's `ReplicationStatus` on the primary, and whether the replica
/// holds that version: what a failover now would start from.
pub fn state_checks(reading: Option<&StateReplication>, key: &str) -> Vec<Check> {
    let Some(reading) = reading else {
        return vec![Check::new(
            "replicated state",
            Status::Ok,
            format!("no state at `{key}` yet: nothing to replicate"),
        )];
    };
    let version = reading.version_id.as_deref().unwrap_or("(unversioned)");
    let status = match reading.status.as_deref() {
        Some("COMPLETED") => Check::new(
            "replicated state",
            Status::Ok,
            format!("COMPLETED: version {version} of `{key}` is in the replica"),
        ),
        Some("PENDING") => Check::new(
            "replicated state",
            Status::Warn,
            format!("PENDING: S3 has not copied version {version} of `{key}` yet (usually seconds to minutes); a failover now would start from the version before"),
        )
        .fix("wait and run doctor again; a status that stays PENDING for hours means S3 cannot reach the replica (region, key or role)"),
        Some("FAILED") => Check::new(
            "replicated state",
            Status::Fail,
            format!("FAILED: S3 could not copy version {version} of `{key}` into the replica"),
        )
        .fix("check the replication role's policy and the replica key (`statebucket apply` repairs statebucket's side), then write the state again (any `terraform apply`) or retry with S3 Batch Replication"),
        Some("REPLICA") => Check::new(
            "replicated state",
            Status::Warn,
            format!("REPLICA: version {version} of `{key}` in the primary is itself a replica: something replicates into the primary"),
        ),
        Some(other) => Check::new(
            "replicated state",
            Status::Warn,
            format!("S3 reports `{other}` for version {version} of `{key}`"),
        ),
        None => Check::new(
            "replicated state",
            Status::Warn,
            format!("version {version} of `{key}` has no replication status: it was written before replication was configured, and S3 replicates only new writes"),
        )
        .fix("write the state once more (any `terraform apply`), or copy existing objects with S3 Batch Replication"),
    };
    let mut checks = vec![status];
    match reading.replica_has_version {
        Some(true) => checks.push(Check::new(
            "replica version",
            Status::Ok,
            format!(
                "the replica holds version {version}: a failover starts from the current state"
            ),
        )),
        Some(false) => {
            let completed = reading.status.as_deref() == Some("COMPLETED");
            checks.push(Check::new(
                "replica version",
                if completed {
                    Status::Fail
                } else {
                    Status::Warn
                },
                format!(
                    "the replica does not hold version {version} of `{key}`{}",
                    if completed {
                        ", although S3 reports it COMPLETED: someone deleted it there"
                    } else {
                        ": a failover now would not start from the current state"
                    }
                ),
            ));
        }
        None => {}
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(status: Option<&str>, held: Option<bool>) -> StateReplication {
        StateReplication {
            version_id: Some("v1".into()),
            status: status.map(str::to_owned),
            replica_has_version: held,
        }
    }

    fn statuses(checks: &[Check]) -> Vec<(String, Status)> {
        checks
            .iter()
            .map(|check| (check.check.clone(), check.status))
            .collect()
    }

    #[test]
    fn each_replication_status_reads_as_what_it_means_for_a_failover() {
        let key = "app/terraform.tfstate";
        assert_eq!(
            statuses(&state_checks(
                Some(&reading(Some("COMPLETED"), Some(true))),
                key
            )),
            [
                ("replicated state".to_owned(), Status::Ok),
                ("replica version".to_owned(), Status::Ok)
            ]
        );
        let pending = state_checks(Some(&reading(Some("PENDING"), Some(false))), key);
        assert_eq!(pending[0].status, Status::Warn);
        assert!(pending[0].detail.starts_with("PENDING"));
        assert_eq!(pending[1].status, Status::Warn);
        let failed = state_checks(Some(&reading(Some("FAILED"), Some(false))), key);
        assert_eq!(failed[0].status, Status::Fail);
        assert!(
            failed[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("replication role")
        );
        let never = state_checks(Some(&reading(None, Some(false))), key);
        assert!(
            never[0]
                .detail
                .contains("before replication was configured")
        );
        let deleted = state_checks(Some(&reading(Some("COMPLETED"), Some(false))), key);
        assert_eq!(deleted[1].status, Status::Fail);
        assert_eq!(state_checks(None, key)[0].status, Status::Ok);
    }

    #[test]
    fn a_missing_disabled_or_misdirected_rule_fails() {
        use crate::observed::ReplicationRule;
        let rule = ReplicationRule {
            id: RULE_ID.into(),
            priority: 1,
            enabled: true,
            whole_bucket: true,
            delete_markers: true,
            destination: "arn:aws:s3:::acme-replica".into(),
            replica_kms_key: None,
            storage_class: None,
        };
        let configuration = |rule: Option<ReplicationRule>| ReplicationConfiguration {
            role: "arn:aws:iam::123456789012:role/r".into(),
            owned: rule,
            foreign: Vec::new(),
        };
        let check = |configuration: Option<&ReplicationConfiguration>| {
            configuration_check(configuration, "acme", "arn:aws:s3:::acme-replica").status
        };
        assert_eq!(check(Some(&configuration(Some(rule.clone())))), Status::Ok);
        assert_eq!(check(None), Status::Fail);
        assert_eq!(check(Some(&configuration(None))), Status::Fail);
        let disabled = ReplicationRule {
            enabled: false,
            ..rule.clone()
        };
        assert_eq!(check(Some(&configuration(Some(disabled)))), Status::Fail);
        let elsewhere = ReplicationRule {
            destination: "arn:aws:s3:::other".into(),
            ..rule
        };
        assert_eq!(check(Some(&configuration(Some(elsewhere)))), Status::Fail);
    }

    /// The readings through the real SDK, HeadObject stubbed (moto sets no
    /// `ReplicationStatus`): the primary's status and version, then the replica's copy.
    #[tokio::test]
    async fn doctor_reads_the_replication_status_and_looks_for_the_version_in_the_replica() {
        use aws_sdk_s3::Client;
        use aws_sdk_s3::operation::head_object::HeadObjectOutput;
        use aws_sdk_s3::types::ReplicationStatus;
        use aws_smithy_mocks::mock;

        let key = "app/terraform.tfstate";
        for (status, in_replica, expected) in [
            (ReplicationStatus::Completed, true, [Status::Ok, Status::Ok]),
            (
                ReplicationStatus::Pending,
                false,
                [Status::Warn, Status::Warn],
            ),
            (
                ReplicationStatus::Failed,
                false,
                [Status::Fail, Status::Warn],
            ),
        ] {
            let answered = status.clone();
            let primary_head = mock!(Client::head_object)
                .match_requests(|request| {
                    request.bucket() == Some("acme") && request.version_id().is_none()
                })
                .then_output(move || {
                    HeadObjectOutput::builder()
                        .version_id("v7")
                        .replication_status(answered.clone())
                        .build()
                });
            let primary = crate::aws::mocked::clients(&[&primary_head]);
            let replica_head = if in_replica {
                mock!(Client::head_object)
                    .match_requests(|request| {
                        request.bucket() == Some("acme-replica")
                            && request.version_id() == Some("v7")
                    })
                    .then_output(|| HeadObjectOutput::builder().version_id("v7").build())
            } else {
                mock!(Client::head_object).then_http_response(|| crate::aws::mocked::status(404))
            };
            let replica = crate::aws::mocked::clients(&[&replica_head]);
            let reading = crate::aws::replication::state_replication(
                &primary,
                &replica,
                "acme",
                "acme-replica",
                key,
            )
            .await
            .unwrap()
            .expect("a state");
            assert_eq!(reading.version_id.as_deref(), Some("v7"));
            assert_eq!(reading.replica_has_version, Some(in_replica));
            let checks = state_checks(Some(&reading), key);
            assert_eq!(
                checks.iter().map(|check| check.status).collect::<Vec<_>>(),
                expected,
                "{status:?}: {checks:#?}"
            );
            assert_eq!(replica_head.num_calls(), 1, "{status:?}");
        }
    }

    #[test]
    fn the_role_must_exist_and_trust_s3() {
        let trust = crate::replication::trust_policy(
            &crate::spec::AccountId::parse("123456789012").unwrap(),
        )
        .to_compact_json();
        let arn = "arn:aws:iam::123456789012:role/r";
        assert_eq!(role_check("r", Some((arn, &trust))).status, Status::Ok);
        assert_eq!(role_check("r", None).status, Status::Fail);
        let ec2 = trust.replace(S3_SERVICE, "ec2.amazonaws.com");
        let failed = role_check("r", Some((arn, &ec2)));
        assert_eq!(failed.status, Status::Fail);
        assert!(
            failed
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains(r#""aws:SourceAccount":"123456789012""#)),
            "the fix restores the trust policy limited to the role's account: {failed:?}"
        );
    }
}
