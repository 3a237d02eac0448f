//! Who may reach an environment's state: its principals as ARNs, and the inputs the bucket
//! policy template is filled from. Pure.

use crate::policy::PolicyInputs;
use crate::spec::{AccountId, EndpointUrl, EnvSpec, IamArn, PrincipalKind, PrincipalRef};

/// The ARNs of an environment's users, roles and break-glass role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    pub users: Vec<IamArn>,
    pub roles: Vec<IamArn>,
    pub break_glass: Option<IamArn>,
}

impl Principals {
    /// Names resolved in `account` without asking IAM, so without a path: right for the
    /// common case, and replaced by IAM's answer before a policy is written.
    pub fn offline(spec: &EnvSpec, account: &AccountId) -> Principals {
        Principals::resolved_with(spec, |principal| {
            principal.resolve(spec.region.partition(), account)
        })
    }

    /// Each principal mapped through `resolve` (e.g. an IAM lookup's answer).
    pub fn resolved_with(
        spec: &EnvSpec,
        mut resolve: impl FnMut(&PrincipalRef) -> IamArn,
    ) -> Principals {
        let mut users = Vec::new();
        let mut roles = Vec::new();
        for principal in &spec.access.principals {
            let arn = resolve(principal);
            match principal.kind() {
                PrincipalKind::User => users.push(arn),
                PrincipalKind::Role => roles.push(arn),
            }
        }
        let break_glass = spec
            .access
            .exclusive
            .as_ref()
            .map(|exclusive| resolve(&exclusive.break_glass_role));
        Principals {
            users,
            roles,
            break_glass,
        }
    }

    /// Every principal the spec names: users, roles, then the break-glass role.
    pub fn all(&self) -> impl Iterator<Item = &IamArn> {
        self.users
            .iter()
            .chain(&self.roles)
            .chain(&self.break_glass)
    }
}

/// The inputs of an environment's policy template. `endpoint` is the one in effect: plain
/// HTTP leaves out the TLS-only deny.
pub fn policy_inputs<'a>(
    spec: &'a EnvSpec,
    account: &'a AccountId,
    principals: &Principals,
    endpoint: Option<&EndpointUrl>,
) -> PolicyInputs<'a> {
    PolicyInputs {
        bucket: &spec.bucket.name,
        region: &spec.region,
        account_id: account,
        state_key: &spec.backend.key,
        workspace_prefix: spec.backend.workspace_prefix(),
        users: principals.users.clone(),
        roles: principals.roles.clone(),
        require_tls: !endpoint.is_some_and(EndpointUrl::is_plain_http),
        exclusive: spec
            .access
            .exclusive
            .as_ref()
            .map(|_| principals.all().cloned().collect()),
    }
}
