//! Who may reach a bucket's state: the spec's principals as ARNs, and how they group into
//! grants. Pure.

use std::collections::BTreeMap;

use crate::spec::{AccountId, EnvSpec, IamArn, PrincipalRef, StackName, StackSpec};

/// The ARN of every principal a spec names, either assumed from its name and the account
/// (offline) or as IAM reported it (a role's path is part of its ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalArns {
    arns: BTreeMap<PrincipalRef, IamArn>,
}

impl PrincipalArns {
    /// Names resolved in `account` without asking IAM, so without a path: right for the
    /// common case, and replaced by IAM's answer before a policy is written.
    pub fn offline(spec: &EnvSpec, account: &AccountId) -> PrincipalArns {
        PrincipalArns::resolved_with(spec, |principal| {
            principal.resolve(spec.region.partition(), account)
        })
    }

    /// Each principal mapped through `resolve` (e.g. an IAM lookup's answer).
    pub fn resolved_with(
        spec: &EnvSpec,
        mut resolve: impl FnMut(&PrincipalRef) -> IamArn,
    ) -> PrincipalArns {
        PrincipalArns {
            arns: spec
                .all_principals()
                .into_iter()
                .map(|principal| (principal.clone(), resolve(principal)))
                .collect(),
        }
    }

    /// The ARN of a principal of the spec it was built from.
    pub fn arn(&self, principal: &PrincipalRef) -> &IamArn {
        self.arns
            .get(principal)
            .expect("every principal of the spec is resolved")
    }

    pub fn arns<'a>(&'a self, principals: &'a [PrincipalRef]) -> impl Iterator<Item = &'a IamArn> {
        principals.iter().map(|principal| self.arn(principal))
    }
}

/// Which tier a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Read and write the state, take and release the lock.
    Writer,
    /// Read the state, take and release the lock (`terraform plan` locks), never write state.
    Reader,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Writer => "writers",
            Tier::Reader => "readers",
        })
    }
}

/// One tier's principals on a group of stacks. The stacks that take their principals from the
/// spec's `access` share one grant (`owner` is `None`); a stack that names its own has a grant
/// of its own. Grants become policy statements whose Sid names the owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant<'s> {
    pub tier: Tier,
    /// `None`: the spec's `access`; `Some(stack)`: that stack's own `access`.
    pub owner: Option<&'s StackName>,
    pub stacks: Vec<&'s StackSpec>,
    pub principals: Vec<IamArn>,
}

impl Grant<'_> {
    /// Statement ids of this grant: `Statebucket` + the owning stack (if any) + `rest`.
    pub fn sid(&self, rest: &str) -> String {
        let owner = self.owner.map(StackName::sid_token).unwrap_or_default();
        format!("{}{owner}{rest}", crate::policy::OWNED_SID_PREFIX)
    }
}

/// Every grant of the spec: writers, then readers; the spec-level grant first, then the
/// stacks' own, in spec order. Grants without principals are left out.
pub fn grants<'s>(spec: &'s EnvSpec, arns: &PrincipalArns) -> Vec<Grant<'s>> {
    let mut grants = Vec::new();
    for tier in [Tier::Writer, Tier::Reader] {
        let own = |stack: &'s StackSpec| match tier {
            Tier::Writer => stack.writers.as_deref(),
            Tier::Reader => stack.readers.as_deref(),
        };
        let shared: Vec<&StackSpec> = spec
            .stacks
            .iter()
            .filter(|stack| own(stack).is_none())
            .collect();
        let spec_level = match tier {
            Tier::Writer => &spec.access.writers,
            Tier::Reader => &spec.access.readers,
        };
        if !shared.is_empty() && !spec_level.is_empty() {
            grants.push(Grant {
                tier,
                owner: None,
                stacks: shared,
                principals: arns.arns(spec_level).cloned().collect(),
            });
        }
        for stack in &spec.stacks {
            if let Some(principals) = own(stack).filter(|principals| !principals.is_empty()) {
                grants.push(Grant {
                    tier,
                    owner: Some(&stack.name),
                    stacks: vec![stack],
                    principals: arns.arns(principals).cloned().collect(),
                });
            }
        }
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;

    const STACKS: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket: { name: central-state }
access: { users: [terraform-access], roles: [terraform-access-role], readers: { roles: [terraform-plan] } }
stacks:
  network: { key: network/terraform.tfstate, access: { roles: [network-ci] } }
  app: { key: app/terraform.tfstate }
  data: { key: data/terraform.tfstate, access: { readers: { users: [auditor] } } }
";

    #[test]
    fn stacks_that_name_no_principals_share_the_spec_level_grant() {
        let spec = parse_spec("environments/central.yaml", "central", STACKS).unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        let grants = grants(&spec, &PrincipalArns::offline(&spec, &account));
        type Summary<'a> = (Tier, Option<&'a str>, Vec<&'a str>, Vec<String>);
        let summary: Vec<Summary<'_>> = grants
            .iter()
            .map(|grant| {
                (
                    grant.tier,
                    grant.owner.map(StackName::as_str),
                    grant
                        .stacks
                        .iter()
                        .map(|stack| stack.name.as_str())
                        .collect(),
                    grant.principals.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Tier::Writer,
                    None,
                    vec!["app", "data"],
                    vec![
                        "arn:aws:iam::123456789012:user/terraform-access".into(),
                        "arn:aws:iam::123456789012:role/terraform-access-role".into()
                    ]
                ),
                (
                    Tier::Writer,
                    Some("network"),
                    vec!["network"],
                    vec!["arn:aws:iam::123456789012:role/network-ci".into()]
                ),
                (
                    Tier::Reader,
                    None,
                    vec!["network", "app"],
                    vec!["arn:aws:iam::123456789012:role/terraform-plan".into()]
                ),
                (
                    Tier::Reader,
                    Some("data"),
                    vec!["data"],
                    vec!["arn:aws:iam::123456789012:user/auditor".into()]
                ),
            ]
        );
        assert_eq!(grants[1].sid("LockFiles"), "StatebucketNetworkLockFiles");
        assert_eq!(grants[0].sid("LockFiles"), "StatebucketLockFiles");
    }
}
