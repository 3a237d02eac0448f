//! With `attach_identity_policy`: the inline policy of each user and role in the account,
//! compared by meaning, and kept within IAM's size quota.

use super::{Change, Facet, PlanError, Planner};
use crate::desired::DesiredBucket;
use crate::observed::Observed;
use crate::policy::{self, PolicyDocument, inline_policy_quota};

pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &Observed,
) -> Result<(), PlanError> {
    if !desired.spec.access.attach_identity_policy {
        return Ok(());
    }
    let mut any = false;
    for target in &desired.identity_policies {
        let principal = target.principal.to_string();
        let chars = target.document.to_compact_json().len();
        let limit = inline_policy_quota(target.principal.kind);
        if chars > limit {
            return Err(PlanError::IdentityPolicyTooLarge {
                principal,
                kind: target.principal.kind.to_string(),
                chars,
                limit,
            });
        }
        let wanted = comparable(&target.document);
        let live = observed
            .identity_policies
            .iter()
            .find(|(arn, _)| *arn == principal)
            .and_then(|(_, document)| document.as_deref());
        let same = live
            .and_then(|text| PolicyDocument::parse(text).ok())
            .is_some_and(|document| comparable(&document) == wanted);
        if !same {
            any = true;
            planner.record(
                Facet::IdentityPolicy,
                Some(Change::PutIdentityPolicy {
                    principal: target.principal.clone(),
                    policy_name: target.name.clone(),
                    from: live.map(str::to_owned),
                    to: target.document.clone(),
                }),
            );
        }
    }
    if !any {
        planner.record(Facet::IdentityPolicy, None);
    }
    Ok(())
}

/// The statements as compared: each in IAM's canonical form, in no particular order.
pub(super) fn comparable(document: &PolicyDocument) -> Vec<serde_json::Value> {
    let mut statements: Vec<serde_json::Value> =
        document.statements.iter().map(policy::normalize).collect();
    statements.sort_by_key(ToString::to_string);
    statements
}
