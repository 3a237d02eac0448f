//! Replication into the replica, planned on the primary: the role S3 assumes (created with
//! its policy, never deleted), its policy compared by meaning, and statebucket's rule in the
//! replication configuration, with the rules of other owners kept as they are.

use super::identity_policy::comparable;
use super::{Change, Facet, PlanError, Planner};
use crate::observed::ReplicationState;
use crate::policy::PolicyDocument;
use crate::replication::{DesiredReplication, ROLE_POLICY_NAME, trusts_s3};

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredReplication,
    observed: &ReplicationState,
    bucket: &str,
) -> Result<(), PlanError> {
    let role_arn = match &observed.role {
        None => {
            planner.record(
                Facet::ReplicationRole,
                Some(Change::CreateReplicationRole {
                    role: desired.role_name.clone(),
                    trust_policy: desired.trust_policy.clone(),
                    policy_name: ROLE_POLICY_NAME.to_owned(),
                    policy: desired.role_policy.clone(),
                }),
            );
            desired.role_arn.to_string()
        }
        Some(role) => {
            let limited_to_account = |trust: &str| {
                PolicyDocument::parse(trust).is_ok_and(|document| {
                    document.statements.iter().all(|statement| {
                        statement["Condition"]["StringEquals"]["aws:SourceAccount"].is_string()
                    })
                })
            };
            if trusts_s3(&role.trust_policy) && !limited_to_account(&role.trust_policy) {
                planner.note(format!(
                    "role {} lets {} assume it for any account's bucket (no `aws:SourceAccount` condition; IAM User Guide, \"The confused deputy problem\"): statebucket does not rewrite trust policies; limit it with `aws iam update-assume-role-policy --role-name {} --policy-document '{}'`",
                    role.arn,
                    crate::replication::S3_SERVICE,
                    desired.role_name,
                    desired.trust_policy.to_compact_json()
                ));
            }
            if !trusts_s3(&role.trust_policy) {
                planner.note(format!(
                    "role {} does not let {} assume it, so S3 cannot replicate with it: statebucket does not rewrite trust policies; restore it with `aws iam update-assume-role-policy --role-name {} --policy-document '{}'`",
                    role.arn,
                    crate::replication::S3_SERVICE,
                    desired.role_name,
                    desired.trust_policy.to_compact_json()
                ));
            }
            let same = role
                .policy
                .as_deref()
                .and_then(|text| PolicyDocument::parse(text).ok())
                .is_some_and(|live| comparable(&live) == comparable(&desired.role_policy));
            planner.record(
                Facet::ReplicationRole,
                (!same).then(|| Change::PutIdentityPolicy {
                    // The role as statebucket names it: S3 assumes it by this ARN.
                    principal: desired.role_arn.clone(),
                    policy_name: ROLE_POLICY_NAME.to_owned(),
                    from: role.policy.clone(),
                    to: desired.role_policy.clone(),
                }),
            );
            role.arn.clone()
        }
    };
    let (current, foreign, live_role) = match &observed.configuration {
        Some(configuration) => (
            configuration.owned.as_ref(),
            configuration.foreign.as_slice(),
            Some(configuration.role.as_str()),
        ),
        None => (None, &[][..], None),
    };
    if let Some(live_role) = live_role
        && live_role != role_arn
        && !foreign.is_empty()
    {
        return Err(PlanError::ReplicationRoleTaken {
            bucket: bucket.to_owned(),
            role: live_role.to_owned(),
            rules: foreign.iter().map(|rule| rule.id.clone()).collect(),
        });
    }
    let to = desired.rule_for(current, foreign);
    let in_sync = current == Some(&to) && live_role == Some(role_arn.as_str());
    planner.record(
        Facet::Replication,
        (!in_sync).then(|| Change::PutReplication {
            role: role_arn,
            from: current.cloned(),
            to,
            kept: foreign.iter().map(|rule| rule.id.clone()).collect(),
            foreign: foreign.to_vec(),
        }),
    );
    Ok(())
}
