//! The plan step: clients, the caller and the account guard, observation of both buckets,
//! the desired state, the plan and its notes.

use crate::access::PrincipalArns;
use crate::access::Tier;
use crate::aws::{self, CallerIdentity, Clients, OnDisk};
use crate::desired::{DesiredBucket, DesiredEnvironment, identity_policy_principals};
use crate::error::Error;
use crate::observed::Observed;
use crate::plan::{Change, plan_with_replica};
use crate::policy::identity_policy_name;
use crate::project::{Environment, local_state_note, orphan_backend_files, read_backend_files};
use crate::spec::{AccountId, EndpointUrl, EnvSpec, Layout, ProfileName, StackSpec, StoreFeature};

use super::*;

/// How an environment is reached: statebucket's own profile, the endpoint, and clients in
/// the primary's region and the replica's.
struct Reach<'a> {
    profile: Option<&'a ProfileName>,
    endpoint: Option<&'a EndpointUrl>,
    clients: Clients,
    replica_clients: Option<Clients>,
}

impl Reach<'_> {
    /// statebucket's own identity, asked once per run for every environment that shares it.
    async fn caller(&self, lookups: &aws::Lookups) -> Result<CallerIdentity, aws::AwsError> {
        lookups
            .profile_caller(self.profile, self.endpoint, &self.clients)
            .await
    }
}

/// What the environment's one round trip of reads found.
struct Observation {
    caller: CallerIdentity,
    terraform_profiles: Vec<(ProfileName, TerraformIdentity)>,
    observed: Observed,
    replica_observed: Option<Observed>,
    /// The principals' ARNs as IAM knows them (a role's path is part of its ARN), or as the
    /// spec names them when IAM could not be asked (`unverified` says why).
    arns: PrincipalArns,
    unverified: Option<aws::AwsError>,
}

impl Engine {
    /// Observes the environment, builds what it should be and plans the difference, with the
    /// notes the user should read and the lockout guard's verdict.
    pub(super) async fn plan_one<'e>(
        &self,
        environment: &'e Environment,
    ) -> Result<Planned<'e>, Error> {
        let spec = &environment.spec;
        let reach = self.reach(environment).await;
        // With `account_id` in the spec, STS, IAM and every S3/KMS read go out at once (one
        // round trip) and the account guard runs on the answers, before anything is written.
        // Without it, STS must answer first: reads need the account.
        let caller_first = match &spec.account_id {
            Some(_) => None,
            None => Some(reach.caller(&self.lookups).await?),
        };
        let account = match (&spec.account_id, &caller_first) {
            (Some(account), _) => account.clone(),
            (None, Some(caller)) => guard_account(spec, caller, &reach.clients)?,
            (None, None) => {
                unreachable!("the caller is asked first when the spec names no account")
            }
        };
        let observation = self
            .observe_environment(environment, &reach, &account, caller_first)
            .await?;
        let Observation {
            caller,
            terraform_profiles,
            observed,
            replica_observed,
            arns,
            unverified,
        } = observation;
        let DesiredEnvironment {
            primary: desired,
            replica,
        } = DesiredEnvironment::build(
            spec,
            environment.replica.as_ref(),
            &account,
            &arns,
            reach.endpoint,
            environment.template(),
        )
        .map_err(Error::Spec)?;
        let replica = replica
            .zip(reach.replica_clients)
            .map(|(desired, clients)| ReplicaTarget { clients, desired });
        let mut env_plan = plan_with_replica(
            &desired,
            &observed,
            replica
                .as_ref()
                .map(|replica| &replica.desired)
                .zip(replica_observed.as_ref()),
        )?;
        env_plan.notes.extend(store_notes(spec, &account));
        let writes_access = env_plan.all_changes().any(Change::writes_access);
        if let Some(error) = unverified {
            if writes_access {
                return Err(error.into());
            }
            env_plan.notes.push(format!(
                "the principals could not be checked in IAM: {error}"
            ));
        }
        let terraform = terraform_identities(spec, &terraform_profiles, &caller);
        let warnings = if writes_access {
            let protected = guard::Protected {
                tool: &caller,
                terraform: &terraform,
            };
            self.guard_environment(environment, &env_plan, protected)?
        } else {
            Vec::new()
        };
        env_plan.notes.extend(identity_notes(
            spec,
            &desired,
            &terraform_profiles,
            &terraform,
        ));
        tracing::debug!(env = %spec.name, bucket_exists = observed.bucket.is_some(), changes = env_plan.changes.len(), in_sync = env_plan.in_sync.len(), "planned");
        Ok(Planned {
            environment,
            caller,
            plan: env_plan,
            warnings,
            clients: reach.clients,
            account,
            desired,
            replica,
        })
    }

    /// Clients for the environment's buckets, as statebucket's own identity.
    async fn reach<'a>(&'a self, environment: &'a Environment) -> Reach<'a> {
        let spec = &environment.spec;
        let endpoint = self.connection.endpoint(spec);
        let profile = self.connection.tool_profile(spec);
        let transport = self.connection.transport(spec, &self.log);
        let clients_in = |region| self.lookups.clients(profile, region, transport);
        let clients = clients_in(&spec.region).await;
        let replica_clients = match &environment.replica {
            Some(replica) => Some(clients_in(&replica.region).await),
            None => None,
        };
        tracing::debug!(env = %spec.name, profile = ?profile, endpoint = ?endpoint.map(EndpointUrl::as_str), "resolving identity");
        Reach {
            profile,
            endpoint,
            clients,
            replica_clients,
        }
    }

    /// Every read the plan needs, at once: the caller (unless asked first), Terraform's
    /// profiles, both buckets, and the principals in IAM. The account guard runs on the
    /// caller before anything else is used.
    async fn observe_environment(
        &self,
        environment: &Environment,
        reach: &Reach<'_>,
        account: &AccountId,
        caller_first: Option<CallerIdentity>,
    ) -> Result<Observation, Error> {
        let spec = &environment.spec;
        let on_disk = read_on_disk(spec)?;
        let offline = PrincipalArns::offline(spec, account);
        let identity_principals = identity_policy_principals(spec, &offline, account);
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
                None => reach.caller(&self.lookups).await,
            }
        };
        let replica_observed = async {
            match (&environment.replica, &reach.replica_clients) {
                (Some(replica), Some(clients)) => {
                    observe_replica(clients, replica, account.as_str(), None)
                        .await
                        .map(Some)
                }
                _ => Ok(None),
            }
        };
        let verified = async {
            if spec.lacks(StoreFeature::Iam) {
                return Ok(offline.clone());
            }
            aws::verify_principals(&reach.clients, spec, account, &self.lookups).await
        };
        let (caller, terraform_profiles, observed, replica_observed, verified) = tokio::join!(
            caller,
            self.terraform_profiles(spec, reach.profile, reach.endpoint),
            aws::observe(
                &reach.clients,
                spec,
                account.as_str(),
                on_disk,
                identity_observation,
                None,
            ),
            replica_observed,
            verified,
        );
        let caller = caller?;
        tracing::debug!(env = %spec.name, arn = %caller.arn, account = %caller.account, "credentials resolved");
        guard_account(spec, &caller, &reach.clients)?;
        // Before any policy is written, every principal must exist, and the policy must name
        // them by their real ARNs (a role's path is part of it).
        let (arns, unverified) = match verified {
            Ok(verified) => (verified, None),
            Err(error) => (offline, Some(error)),
        };
        Ok(Observation {
            caller,
            terraform_profiles,
            observed: observed?,
            replica_observed: replica_observed?,
            arns,
            unverified,
        })
    }

    /// Terraform's identity for every profile the stacks use that is not statebucket's own
    /// (whose identity the caller already asks for), each resolved once.
    pub(super) async fn terraform_profiles(
        &self,
        spec: &EnvSpec,
        tool_profile: Option<&ProfileName>,
        endpoint: Option<&EndpointUrl>,
    ) -> Vec<(ProfileName, TerraformIdentity)> {
        if spec.lacks(StoreFeature::Sts) {
            return Vec::new();
        }
        let transport = self.connection.transport(spec, &self.log);
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
                .clients(Some(profile), &spec.region, transport)
                .await;
            let identity = match self
                .lookups
                .profile_caller(Some(profile), endpoint, &clients)
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
    let tier = desired_stack.tier_of(&caller);
    if tier == Some(Tier::Writer) {
        return None;
    }
    let via = stack.identity_label();
    let subject = match spec.layout {
        Layout::Backend => "Terraform".to_owned(),
        Layout::Stacks => format!("Terraform for stack `{}`", stack.name),
    };
    if tier == Some(Tier::Reader) {
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

/// What the plan cannot manage on a store that lacks STS or IAM.
fn store_notes(spec: &EnvSpec, account: &AccountId) -> Vec<String> {
    let mut notes = Vec::new();
    if spec.lacks(StoreFeature::Sts) {
        notes.push("the store has no STS (`compat.lacks`): no identity is looked up, so the lockout check cannot tell who statebucket and Terraform run as".to_owned());
    }
    if spec.lacks(StoreFeature::Iam) {
        notes.push(format!(
            "the store has no IAM (`compat.lacks`): principals are not looked up; the policy names them as ARNs in account {account}"
        ));
    }
    notes
}

/// Who Terraform's backend runs as for each stack: the role it assumes, or its profile's
/// identity (statebucket's own when the profile is the same).
fn terraform_identities<'s>(
    spec: &'s EnvSpec,
    terraform_profiles: &[(ProfileName, TerraformIdentity)],
    caller: &CallerIdentity,
) -> Vec<(&'s StackSpec, TerraformIdentity)> {
    spec.stacks
        .iter()
        .map(|stack| {
            let identity = match (stack.backend_role(), stack.credentials.profile()) {
                (Some(role), _) => TerraformIdentity::AssumedRole(role.to_string()),
                (None, profile) => terraform_profiles
                    .iter()
                    .find(|(name, _)| Some(name) == profile)
                    .map(|(_, identity)| identity.clone())
                    .unwrap_or_else(|| TerraformIdentity::Profile(caller.clone())),
            };
            (stack, identity)
        })
        .collect()
}

/// Notes on Terraform's identities: a profile that could not be resolved, a stack whose
/// identity the spec does not list, local state left beside a stack's configuration.
fn identity_notes(
    spec: &EnvSpec,
    desired: &DesiredBucket<'_>,
    terraform_profiles: &[(ProfileName, TerraformIdentity)],
    terraform: &[(&StackSpec, TerraformIdentity)],
) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, identity) in terraform_profiles {
        if let TerraformIdentity::Unresolved(cause) = identity {
            notes.push(format!(
                "Terraform's identity (profile `{name}`) could not be resolved here ({cause}); the lockout check covered statebucket's own identity only"
            ));
        }
    }
    for (stack, identity) in terraform {
        if let Some(guidance) = stack
            .terraform_dir
            .as_deref()
            .and_then(|directory| local_state_note(spec, stack, std::path::Path::new(directory)))
        {
            notes.push(guidance);
        }
        if let Some(note) = unlisted_note(spec, desired, stack, identity) {
            notes.push(note);
        }
    }
    notes
}
