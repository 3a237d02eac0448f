//! The plan step: clients, the caller and the account guard, observation of both buckets,
//! the desired state, the plan and its notes.

use crate::access::{PrincipalArns, grants};
use crate::aws::{self, CallerIdentity, Clients, OnDisk};
use crate::desired::DesiredBucket;
use crate::error::Error;
use crate::plan::{Change, plan_with_replica};
use crate::policy::identity_policy_name;
use crate::project::{Environment, local_state_note, orphan_backend_files, read_backend_files};
use crate::spec::{
    AccountId, BackendCredentials, EndpointUrl, EnvSpec, IamArn, Layout, ProfileName, StackSpec,
    StoreFeature,
};

use super::*;

impl Engine {
    pub(super) async fn plan_one<'e>(
        &self,
        environment: &'e Environment,
    ) -> Result<Planned<'e>, Error> {
        let spec = &environment.spec;
        let endpoint = self.connection.endpoint(spec);
        let profile = self.connection.tool_profile(spec);
        let clients = self
            .lookups
            .clients(
                profile,
                &spec.region,
                endpoint.as_ref(),
                self.connection.attempt_timeout,
                &self.log,
            )
            .await;
        let on_disk = read_on_disk(spec)?;
        let replica_spec = environment.replica.as_ref();
        let replica_clients = match replica_spec {
            Some(replica) => Some(
                self.lookups
                    .clients(
                        profile,
                        &replica.region,
                        endpoint.as_ref(),
                        self.connection.attempt_timeout,
                        &self.log,
                    )
                    .await,
            ),
            None => None,
        };

        tracing::debug!(env = %spec.name, profile = ?profile, endpoint = ?endpoint.as_ref().map(EndpointUrl::as_str), "resolving identity");
        let endpoint_key = endpoint.as_ref().map_or("", EndpointUrl::as_str);
        let tool_key = format!("{profile:?}@{endpoint_key}");
        // With `account_id` in the spec, STS, IAM and every S3/KMS read go out at once (one
        // round trip) and the account guard runs on the answers, before anything is written.
        // Without it, STS must answer first: reads need the account.
        let caller_first = match &spec.account_id {
            Some(_) => None,
            None => Some(self.lookups.caller(&tool_key, &clients).await?),
        };
        let account = match (&spec.account_id, &caller_first) {
            (Some(account), _) => account.clone(),
            (None, Some(caller)) => guard_account(spec, caller, &clients)?,
            (None, None) => {
                unreachable!("the caller is asked first when the spec names no account")
            }
        };
        let offline = PrincipalArns::offline(spec, &account);
        let identity_principals = identity_policy_principals(spec, &offline, &account);
        let identity_name = identity_policy_name(spec);
        let identity_observation = spec
            .access
            .attach_identity_policy
            .then_some((identity_name.as_str(), identity_principals.as_slice()));
        let caller = async {
            match caller_first {
                Some(caller) => Ok(caller),
                // A store without STS cannot say who the credentials are: the spec's account
                // stands (the parser requires it then).
                None if spec.lacks(StoreFeature::Sts) => Ok(CallerIdentity {
                    account: account.to_string(),
                    arn: UNKNOWN_CALLER.to_owned(),
                }),
                None => self.lookups.caller(&tool_key, &clients).await,
            }
        };
        let replica_observed = async {
            match (replica_spec, &replica_clients) {
                (Some(replica), Some(replica_clients)) => {
                    observe_replica(replica_clients, replica, account.as_str(), None)
                        .await
                        .map(Some)
                }
                _ => Ok(None),
            }
        };
        let (caller, terraform_profiles, observed, replica_observed, verified) = tokio::join!(
            caller,
            self.terraform_profiles(spec, profile, endpoint.as_ref(), endpoint_key),
            aws::observe(
                &clients,
                spec,
                account.as_str(),
                on_disk,
                identity_observation,
                None,
            ),
            replica_observed,
            async {
                if spec.lacks(StoreFeature::Iam) {
                    return Ok(offline.clone());
                }
                aws::verify_principals(&clients, spec, &account, &self.lookups).await
            },
        );
        let caller = caller?;
        tracing::debug!(env = %spec.name, arn = %caller.arn, account = %caller.account, "credentials resolved");
        guard_account(spec, &caller, &clients)?;
        let observed = observed?;
        let replica_observed = replica_observed?;
        // Before any policy is written, every principal must exist, and the policy must name
        // them by their real ARNs (a role's path is part of it).
        let (arns, unverified) = match verified {
            Ok(verified) => (verified, None),
            Err(error) => (offline, Some(error)),
        };
        let desired = DesiredBucket::build(
            spec,
            &account,
            &arns,
            endpoint.as_ref(),
            environment.template(),
        )
        .map_err(Error::Spec)?;
        let replica = match (replica_spec, replica_clients) {
            (Some(replica), Some(replica_clients)) => Some(ReplicaTarget {
                clients: replica_clients,
                desired: DesiredBucket::build(
                    replica,
                    &account,
                    &arns,
                    endpoint.as_ref(),
                    environment.template(),
                )
                .map_err(Error::Spec)?,
            }),
            _ => None,
        };
        let mut env_plan = plan_with_replica(
            &desired,
            &observed,
            replica
                .as_ref()
                .map(|replica| &replica.desired)
                .zip(replica_observed.as_ref()),
        )?;
        if spec.lacks(StoreFeature::Sts) {
            env_plan.notes.push("the store has no STS (`compat.lacks`): no identity is looked up, so the lockout check cannot tell who statebucket and Terraform run as".to_owned());
        }
        if spec.lacks(StoreFeature::Iam) {
            env_plan.notes.push(format!(
                "the store has no IAM (`compat.lacks`): principals are not looked up; the policy names them as ARNs in account {account}"
            ));
        }
        let writes_access = env_plan.all_changes().any(Change::writes_access);
        if let Some(error) = unverified {
            if writes_access {
                return Err(error.into());
            }
            env_plan.notes.push(format!(
                "the principals could not be checked in IAM: {error}"
            ));
        }
        let terraform: Vec<(&StackSpec, TerraformIdentity)> = spec
            .stacks
            .iter()
            .map(|stack| {
                let identity = match (&stack.assume_role, &stack.credentials) {
                    (Some(role), _) => TerraformIdentity::AssumedRole(role.role_arn.to_string()),
                    (None, BackendCredentials::WebIdentity(web)) => {
                        TerraformIdentity::AssumedRole(web.role_arn.to_string())
                    }
                    (None, BackendCredentials::Profile(profile)) => terraform_profiles
                        .iter()
                        .find(|(name, _)| name == profile)
                        .map(|(_, identity)| identity.clone())
                        .unwrap_or_else(|| TerraformIdentity::Profile(caller.clone())),
                };
                (stack, identity)
            })
            .collect();
        let mut warnings = if writes_access {
            self.guard_lockout(spec, &env_plan, &caller, &terraform)?
        } else {
            Vec::new()
        };
        // A failover needs Terraform's identity to keep its access to the replica too.
        if let (Some(replica), Some(replica_plan)) = (replica_spec, &env_plan.replica)
            && writes_access
        {
            warnings.extend(self.guard_lockout(
                replica,
                &replica_plan.plan,
                &caller,
                &terraform,
            )?);
        }
        for (name, identity) in &terraform_profiles {
            if let TerraformIdentity::Unresolved(cause) = identity {
                env_plan.notes.push(format!(
                    "Terraform's identity (profile `{name}`) could not be resolved here ({cause}); the lockout check covered statebucket's own identity only"
                ));
            }
        }
        for (stack, identity) in &terraform {
            if let Some(guidance) = stack.terraform_dir.as_deref().and_then(|directory| {
                local_state_note(spec, stack, std::path::Path::new(directory))
            }) {
                env_plan.notes.push(guidance);
            }
            if let Some(note) = unlisted_note(spec, &desired, stack, identity) {
                env_plan.notes.push(note);
            }
        }
        tracing::debug!(env = %spec.name, bucket_exists = observed.bucket.is_some(), changes = env_plan.changes.len(), in_sync = env_plan.in_sync.len(), "planned");
        Ok(Planned {
            environment,
            caller,
            plan: env_plan,
            warnings,
            clients,
            account,
            desired,
            replica,
        })
    }

    /// Terraform's identity for every profile the stacks use that is not statebucket's own
    /// (whose identity the caller already asks for), each resolved once.
    pub(super) async fn terraform_profiles(
        &self,
        spec: &EnvSpec,
        tool_profile: Option<&ProfileName>,
        endpoint: Option<&EndpointUrl>,
        endpoint_key: &str,
    ) -> Vec<(ProfileName, TerraformIdentity)> {
        if spec.lacks(StoreFeature::Sts) {
            return Vec::new();
        }
        let mut profiles: Vec<&ProfileName> = spec
            .stacks
            .iter()
            .filter(|stack| stack.assume_role.is_none())
            .filter_map(|stack| spec.profile_of(stack))
            .filter(|profile| Some(*profile) != tool_profile)
            .collect();
        profiles.sort();
        profiles.dedup();
        let lookups = profiles.into_iter().map(|profile| async move {
            let clients = self
                .lookups
                .clients(
                    Some(profile),
                    &spec.region,
                    endpoint,
                    self.connection.attempt_timeout,
                    &self.log,
                )
                .await;
            let identity = match self
                .lookups
                .caller(&format!("{profile}@{endpoint_key}"), &clients)
                .await
            {
                Ok(identity) => TerraformIdentity::Profile(identity),
                Err(error) => TerraformIdentity::Unresolved(error.cause),
            };
            (profile.clone(), identity)
        });
        futures::future::join_all(lookups).await
    }
}

/// The replica's AWS side and its failover files. Orphaned files are the primary's to find
/// (their header names the same spec).
pub(super) async fn observe_replica(
    clients: &Clients,
    replica: &EnvSpec,
    account: &str,
    key_hint: Option<&str>,
) -> Result<crate::observed::Observed, Error> {
    let backend_files =
        read_backend_files(replica).map_err(|(path, error)| Error::file("read", &path, &error))?;
    let on_disk = OnDisk {
        backend_files,
        orphan_backend_files: Vec::new(),
    };
    Ok(aws::observe(clients, replica, account, on_disk, None, key_hint).await?)
}

/// Every stack's backend.hcl, and those left by stacks the spec no longer has.
pub(super) fn read_on_disk(spec: &EnvSpec) -> Result<OnDisk, Error> {
    let backend_files =
        read_backend_files(spec).map_err(|(path, error)| Error::file("read", &path, &error))?;
    Ok(OnDisk {
        backend_files,
        orphan_backend_files: orphan_backend_files(spec),
    })
}

/// The principals of the account whose inline policy `attach_identity_policy` manages.
pub(super) fn identity_policy_principals(
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

/// The note when a stack's Terraform identity is not among its writers.
pub(super) fn unlisted_note(
    spec: &EnvSpec,
    desired: &DesiredBucket<'_>,
    stack: &StackSpec,
    identity: &TerraformIdentity,
) -> Option<String> {
    let caller = identity.caller()?;
    let arn = identity.arn()?;
    let desired_stack = desired
        .stacks
        .iter()
        .find(|candidate| candidate.spec.name == stack.name)?;
    let named = |list: &[IamArn]| {
        list.iter()
            .any(|principal| caller.is_named_by(&principal.to_string()))
    };
    if named(&desired_stack.writers) {
        return None;
    }
    let via = stack.identity_label();
    let subject = match spec.layout {
        Layout::Backend => "Terraform".to_owned(),
        Layout::Stacks => format!("Terraform for stack `{}`", stack.name),
    };
    if named(&desired_stack.readers) {
        return Some(format!(
            "{subject} runs as {arn} ({via}), one of its readers: `terraform plan` works, `terraform apply` will be denied; list it among the writers if it applies"
        ));
    }
    let lists = match spec.layout {
        Layout::Backend => "`access.users` or `access.roles`".to_owned(),
        Layout::Stacks if stack.writers.is_some() => {
            format!("`stacks.{}.access`", stack.name)
        }
        Layout::Stacks => "`access.users` or `access.roles`".to_owned(),
    };
    Some(format!(
        "{subject} runs as {arn} ({via}), which `access` does not list: the bucket policy grants it nothing; add it to {lists}"
    ))
}
