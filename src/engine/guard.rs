//! The guard step: a plan that would lock out statebucket or Terraform is refused.

use crate::aws::CallerIdentity;
use crate::error::Error;
use crate::plan::{Change, EnvPlan};
use crate::policy::evaluate::Caller;
use crate::policy::key_policy;
use crate::policy::lockout::{Needs, Subject, lockout_risks};
use crate::spec::{EnvSpec, Layout, StackSpec};

use super::*;

/// Whose access a plan must not take away: statebucket's own (this run's caller) and each
/// stack's Terraform identity.
#[derive(Clone, Copy)]
pub(super) struct Protected<'a> {
    pub tool: &'a CallerIdentity,
    pub terraform: &'a [(&'a StackSpec, TerraformIdentity)],
}

impl Engine {
    /// The lockout guard on both buckets' plans: a failover needs Terraform's identity to
    /// keep its access to the replica too. The warnings of `--allow-lockout`.
    pub(super) fn guard_environment(
        &self,
        environment: &Environment,
        env_plan: &EnvPlan,
        protected: Protected<'_>,
    ) -> Result<Vec<String>, Error> {
        let mut warnings = self.guard_lockout(&environment.spec, env_plan, protected)?;
        if let (Some(replica), Some(replica_plan)) = (&environment.replica, &env_plan.replica) {
            warnings.extend(self.guard_lockout(replica, &replica_plan.plan, protected)?);
        }
        Ok(warnings)
    }

    /// Refuses a bucket policy that would explicitly deny statebucket's own identity what it
    /// needs to observe and repair the bucket, or a stack's Terraform identity what it needs
    /// on that stack's state; and a key policy that would leave statebucket unable to read
    /// and rewrite it. `--allow-lockout` overrides.
    fn guard_lockout(
        &self,
        spec: &EnvSpec,
        env_plan: &EnvPlan,
        Protected { tool, terraform }: Protected<'_>,
    ) -> Result<Vec<String>, Error> {
        let mut details: Vec<String> = Vec::new();
        let mut policies: Vec<&str> = Vec::new();
        if let Some(document) = env_plan.changes.iter().find_map(|change| match change {
            Change::PutPolicy { to, .. } => Some(to),
            _ => None,
        }) {
            let mut subjects = Vec::new();
            if let Some(caller) = Caller::parse(&tool.arn) {
                subjects.push(Subject {
                    label: "statebucket (this run)".into(),
                    caller,
                    needs: Needs::ManageBucket,
                });
            }
            for (stack, identity) in terraform {
                let Some(caller) = identity.caller() else {
                    continue;
                };
                let via = stack.identity_label();
                let label = match spec.layout {
                    Layout::Backend => format!("Terraform ({via})"),
                    Layout::Stacks => format!("Terraform for stack `{}` ({via})", stack.name),
                };
                subjects.push(Subject {
                    label,
                    caller,
                    needs: Needs::UseState(stack),
                });
            }
            let risks = lockout_risks(document, spec, &subjects);
            if !risks.is_empty() {
                policies.push("bucket policy");
            }
            details.extend(risks.iter().map(|risk| risk.describe()));
        }
        for change in &env_plan.changes {
            let Change::PutKeyPolicy { key_arn, to, .. } = change else {
                continue;
            };
            let Some(caller) = Caller::parse(&tool.arn) else {
                continue;
            };
            for action in ["kms:GetKeyPolicy", "kms:PutKeyPolicy"] {
                if !key_policy::key_allows(to, &caller, action, &[]) {
                    if !policies.contains(&"key policy") {
                        policies.push("key policy");
                    }
                    details.push(format!(
                        "the key policy of {key_arn} would not let statebucket (this run) ({}) {action}",
                        tool.arn
                    ));
                }
            }
        }
        if details.is_empty() {
            return Ok(Vec::new());
        }
        if self.allow_lockout {
            return Ok(details
                .iter()
                .map(|detail| {
                    format!(
                        "{}: written with --allow-lockout although {detail}",
                        spec.name
                    )
                })
                .collect());
        }
        Err(Error::Lockout {
            env: spec.name.to_string(),
            policies,
            details,
        })
    }
}
