//! An environment as it should be: its bucket and, with `bucket.replica`, the replica, built
//! together from the spec, the account and the principals' ARNs. The engine, doctor, render
//! and the `policy` command all start from it.

use super::DesiredBucket;
use crate::access::{PrincipalArns, grants};
use crate::spec::{AccountId, Diagnostic, EndpointUrl, EnvSpec, IamArn};

#[derive(Debug, Clone)]
pub struct DesiredEnvironment<'s> {
    pub primary: DesiredBucket<'s>,
    /// With `bucket.replica`: the replica, a bucket reconciled like the primary.
    pub replica: Option<DesiredBucket<'s>>,
}

impl<'s> DesiredEnvironment<'s> {
    /// `replica`: the replica's spec (`EnvSpec::replica_spec`); `template`: the bucket policy
    /// template's file name and text. The errors are the template's, located in its file.
    pub fn build(
        spec: &'s EnvSpec,
        replica: Option<&'s EnvSpec>,
        account: &AccountId,
        arns: &PrincipalArns,
        endpoint: Option<&EndpointUrl>,
        template: (&str, &str),
    ) -> Result<DesiredEnvironment<'s>, Vec<Diagnostic>> {
        let build = |spec| DesiredBucket::build(spec, account, arns, endpoint, template);
        Ok(DesiredEnvironment {
            primary: build(spec)?,
            replica: replica.map(build).transpose()?,
        })
    }

    /// The primary, then the replica.
    pub fn buckets(&self) -> impl Iterator<Item = &DesiredBucket<'s>> {
        std::iter::once(&self.primary).chain(self.replica.as_ref())
    }
}

/// The principals of `account` whose inline policy `access.attach_identity_policy` manages:
/// every principal of a grant that lives in the account, once, in grant order.
pub fn identity_policy_principals(
    spec: &EnvSpec,
    arns: &PrincipalArns,
    account: &AccountId,
) -> Vec<IamArn> {
    let mut principals: Vec<IamArn> = Vec::new();
    for grant in grants(spec, arns) {
        for principal in grant.principals {
            if principal.account == *account && !principals.contains(&principal) {
                principals.push(principal);
            }
        }
    }
    principals
}
