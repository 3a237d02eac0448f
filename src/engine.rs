//! Runs environments through observe → plan → (apply → verify). The imperative shell around
//! the pure plan: it picks credentials, reads files, calls AWS, and collects outcomes.

use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::access::{PrincipalArns, grants};
use crate::aws::{self, CallerIdentity, Clients, OnDisk, RequestLog};
use crate::desired::DesiredBucket;
use crate::error::Error;
use crate::plan::{Change, EnvPlan, plan_with_replica};
use crate::policy::evaluate::Caller;
use crate::policy::key_policy;
use crate::policy::lockout::{Needs, Subject, lockout_risks};
use crate::policy::{PolicyDocument, identity_policy_name};
use crate::progress::{Reporter, Task};
use crate::project::{
    Environment, local_state_note, orphan_backend_files, read_backend_files, write_file_atomically,
};
use crate::render::KmsKeyId;
use crate::spec::{
    AccountId, BackendCredentials, EndpointUrl, EnvSpec, IamArn, Layout, ProfileName, StackSpec,
    StoreFeature,
};

/// The caller's ARN where a store without STS cannot name it.
pub const UNKNOWN_CALLER: &str = "(unknown: the store has no STS)";

/// How the tool reaches AWS; the same for every environment of a run.
#[derive(Debug, Clone)]
pub struct Connection {
    /// How long one attempt of a request may take before the SDK retries it.
    pub attempt_timeout: std::time::Duration,
    /// `--endpoint-url`.
    pub endpoint_flag: Option<EndpointUrl>,
    /// `AWS_ENDPOINT_URL`, already validated.
    pub endpoint_env: Option<EndpointUrl>,
    /// `--profile`: the identity the tool runs as, for every environment.
    pub profile_flag: Option<ProfileName>,
}

impl Connection {
    /// `--endpoint-url`, then `AWS_ENDPOINT_URL`, then the spec's `endpoint`.
    pub fn endpoint(&self, spec: &EnvSpec) -> Option<EndpointUrl> {
        self.endpoint_flag
            .clone()
            .or_else(|| self.endpoint_env.clone())
            .or_else(|| spec.endpoint.clone())
    }

    /// The tool's own identity: `--profile`, then the spec's `bootstrap_profile`, then the
    /// profile Terraform uses (the spec's, or the one all its stacks name); `None`: the
    /// default credential chain (stacks that authenticate with a web identity name no
    /// profile). backend.hcl always gets the stack's own credentials, never these.
    pub fn tool_profile<'a>(&'a self, spec: &'a EnvSpec) -> Option<&'a ProfileName> {
        self.profile_flag
            .as_ref()
            .or(spec.bootstrap_profile.as_ref())
            .or_else(|| spec.common_profile())
    }
}

/// An environment with its plan, ready to be shown and applied.
pub struct Planned<'e> {
    pub environment: &'e Environment,
    pub caller: CallerIdentity,
    pub plan: EnvPlan,
    /// What the user must know that is not part of the plan (a policy written with
    /// `--allow-lockout`, a key left unused by a concurrent run); never hidden by `-q`.
    pub warnings: Vec<String>,
    clients: Clients,
    account: AccountId,
    desired: DesiredBucket<'e>,
    /// With `bucket.replica`: the replica, reached in its own region.
    replica: Option<ReplicaTarget<'e>>,
}

/// The replica bucket: its clients (its region) and desired state.
struct ReplicaTarget<'e> {
    clients: Clients,
    desired: DesiredBucket<'e>,
}

/// Who Terraform's backend runs as for a stack.
#[derive(Debug, Clone)]
enum TerraformIdentity {
    /// The profile's identity, as STS reported it.
    Profile(CallerIdentity),
    /// The role backend.hcl's `assume_role` names: its sessions reach the state.
    AssumedRole(String),
    /// The profile could not be resolved here (why).
    Unresolved(String),
}

impl TerraformIdentity {
    fn caller(&self) -> Option<Caller> {
        match self {
            TerraformIdentity::Profile(identity) => Caller::parse(&identity.arn),
            TerraformIdentity::AssumedRole(role) => IamArn::parse(role)
                .ok()
                .map(|arn| Caller::for_principal(&arn)),
            TerraformIdentity::Unresolved(_) => None,
        }
    }

    fn arn(&self) -> Option<&str> {
        match self {
            TerraformIdentity::Profile(identity) => Some(&identity.arn),
            TerraformIdentity::AssumedRole(role) => Some(role),
            TerraformIdentity::Unresolved(_) => None,
        }
    }
}

pub type EnvResult<'e> = Result<Planned<'e>, (&'e Environment, Error)>;

pub struct Engine {
    pub connection: Connection,
    pub lookups: aws::Lookups,
    /// `--allow-lockout`: write a policy even when it denies an identity that must keep access.
    pub allow_lockout: bool,
    pub concurrency: usize,
    pub log: Arc<RequestLog>,
    pub reporter: Arc<dyn Reporter>,
    /// How long `apply` waits for another run's apply lock (`aws::lock`).
    pub lock_timeout: std::time::Duration,
    /// The apply locks this run holds, released at once if it is interrupted.
    pub held_locks: aws::lock::HeldLocks,
}

impl Engine {
    /// Plans every environment, up to `concurrency` at a time, in the given order.
    pub async fn plan_all<'e>(&self, environments: &'e [Environment]) -> Vec<EnvResult<'e>> {
        stream::iter(environments)
            .map(|environment| async move {
                let progress = self.reporter.task(environment.spec.name.as_str());
                progress.step("observing");
                let result = self
                    .plan_one(environment)
                    .await
                    .map_err(|failure| (environment, failure));
                progress.finish();
                result
            })
            .buffered(self.concurrency.max(1))
            .collect()
            .await
    }

    async fn plan_one<'e>(&self, environment: &'e Environment) -> Result<Planned<'e>, Error> {
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
        let writes_access = env_plan.all_changes().any(|change| {
            matches!(
                change,
                Change::PutPolicy { .. }
                    | Change::PutIdentityPolicy { .. }
                    | Change::PutKeyPolicy { .. }
                    | Change::CreateKmsKey { .. }
                    | Change::CreateReplicationRole { .. }
            )
        });
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
    async fn terraform_profiles(
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

    /// Refuses a bucket policy that would explicitly deny statebucket's own identity what it
    /// needs to observe and repair the bucket, or a stack's Terraform identity what it needs
    /// on that stack's state; and a key policy that would leave statebucket unable to read
    /// and rewrite it. `--allow-lockout` overrides.
    fn guard_lockout(
        &self,
        spec: &EnvSpec,
        env_plan: &EnvPlan,
        tool: &CallerIdentity,
        terraform: &[(&StackSpec, TerraformIdentity)],
    ) -> Result<Vec<String>, Error> {
        let mut details: Vec<String> = Vec::new();
        let mut policies: Vec<&str> = Vec::new();
        if let Some(document) = env_plan.changes.iter().find_map(|change| match change {
            Change::PutPolicy { to, .. } => PolicyDocument::parse(to).ok(),
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
            let risks = lockout_risks(&document, spec, &subjects);
            if !risks.is_empty() {
                policies.push("bucket policy");
            }
            details.extend(risks.iter().map(|risk| risk.describe()));
        }
        for change in &env_plan.changes {
            let Change::PutKeyPolicy { key_arn, to, .. } = change else {
                continue;
            };
            let (Ok(document), Some(caller)) =
                (PolicyDocument::parse(to), Caller::parse(&tool.arn))
            else {
                continue;
            };
            for action in ["kms:GetKeyPolicy", "kms:PutKeyPolicy"] {
                if !key_policy::key_allows(&document, &caller, action, &[]) {
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

    /// Applies every planned environment with changes, then observes it again: an
    /// environment whose plan is not empty afterwards has failed. Each result keeps the plan
    /// that was applied.
    pub async fn apply_all<'e>(&self, planned: Vec<EnvResult<'e>>) -> Vec<EnvResult<'e>> {
        stream::iter(planned)
            .map(|result| async move {
                let planned = result?;
                if planned.plan.is_empty() {
                    return Ok(planned);
                }
                let environment = planned.environment;
                let progress = self.reporter.task(environment.spec.name.as_str());
                progress.step("applying");
                let outcome = self
                    .apply_one(planned, progress.as_ref())
                    .await
                    .map_err(|failure| (environment, failure));
                progress.finish();
                outcome
            })
            .buffered(self.concurrency.max(1))
            .collect()
            .await
    }

    async fn apply_one<'e>(
        &self,
        mut planned: Planned<'e>,
        progress: &dyn Task,
    ) -> Result<Planned<'e>, Error> {
        let environment = planned.environment;
        let spec = &environment.spec;
        let waiting = |message: &str| {
            progress.step(message);
            self.reporter.message(&format!("{}: {message}", spec.name));
        };
        let deadline = std::time::Instant::now() + self.lock_timeout;
        let (mut prepared, mut replica_prepared) = (aws::Prepared::default(), None);
        // One lock covers the environment, in the primary bucket, whichever bucket's plan
        // needs it: no run holds one lock while it waits for another.
        let mut lock = None;
        while needs_environment_lock(&planned) {
            let (taken, replica_created) = tokio::join!(
                async {
                    let prepared = aws::create_planned_bucket(
                        &planned.clients,
                        &planned.plan,
                        spec.bucket.name.as_str(),
                        &spec.region,
                        planned.account.as_str(),
                    )
                    .await?;
                    let lock = aws::lock::take_or_wait(
                        &planned.clients,
                        spec.bucket.name.as_str(),
                        "apply",
                        deadline,
                        &waiting,
                        &self.held_locks,
                    )
                    .await?;
                    Ok::<_, aws::AwsError>((prepared, lock))
                },
                // The replica's bucket is created while the lock is taken.
                async {
                    match replica_with_changes(&planned) {
                        Some((target, plan)) => {
                            let replica_spec = target.desired.spec;
                            aws::create_planned_bucket(
                                &target.clients,
                                plan,
                                replica_spec.bucket.name.as_str(),
                                &replica_spec.region,
                                planned.account.as_str(),
                            )
                            .await
                            .map(Some)
                        }
                        None => Ok(None),
                    }
                },
            );
            let (bucket_prepared, acquired) = match (taken, replica_created) {
                (Ok(taken), Ok(replica_created)) => {
                    replica_prepared = replica_created;
                    taken
                }
                (Ok((_, acquired)), Err(error)) => {
                    if let aws::lock::Acquired::Taken(held) = acquired {
                        held.release().await;
                    }
                    return Err(error.into());
                }
                (Err(error), _) => return Err(error.into()),
            };
            prepared = bucket_prepared;
            if let aws::lock::Acquired::Taken(held) = acquired {
                lock = Some(*held);
                break;
            }
            // Another run held the lock and is done: it may have done what this run planned
            // (runners of one pipeline apply the same spec). Plan again; what is left is
            // applied, under the lock if it still needs it.
            // The fresh plan's warnings replace the old plan's: they speak of what is left.
            waiting("planning again: another apply held the lock");
            planned = self.plan_one(environment).await?;
            if planned.plan.is_empty() {
                // Observed just now: nothing to write, nothing to verify (as `apply_all`).
                return Ok(planned);
            }
            (prepared, replica_prepared) = (aws::Prepared::default(), None);
        }
        let account = planned.account.as_str();
        let primary = aws::apply(
            &planned.clients,
            &planned.plan,
            spec.bucket.name.as_str(),
            &spec.region,
            account,
            prepared,
        );
        // The replica is created and configured beside the primary, and so is the
        // replication role.
        let replica = async {
            match replica_with_changes(&planned) {
                Some((target, plan)) => {
                    let replica_spec = target.desired.spec;
                    aws::apply(
                        &target.clients,
                        plan,
                        replica_spec.bucket.name.as_str(),
                        &replica_spec.region,
                        account,
                        replica_prepared.unwrap_or_default(),
                    )
                    .await
                    .map(Some)
                }
                None => Ok(None),
            }
        };
        let role = aws::apply_replication_role(&planned.clients, &planned.plan);
        let outcome = async {
            let (primary, replica, ()) = tokio::try_join!(primary, replica, role)?;
            // Replication needs both buckets versioned and the role in place.
            aws::apply_replication(
                &planned.clients,
                &planned.plan,
                spec.bucket.name.as_str(),
                account,
            )
            .await?;
            Ok::<_, aws::AwsError>((primary, replica))
        }
        .await;
        // The AWS writes that needed the lock are done: it is released while the backend
        // files are written and the result verified (at once on failure).
        let release = async {
            if let Some(lock) = lock {
                lock.release().await;
            }
        };
        let (primary, replica) = match outcome {
            Ok(applied) => applied,
            Err(error) => {
                release.await;
                return Err(error.into());
            }
        };
        planned.warnings.extend(primary.warnings);
        let replica_key = replica.and_then(|replica| {
            planned.warnings.extend(replica.warnings);
            replica.created_key
        });
        let (verified, ()) = tokio::join!(
            self.write_and_verify(&mut planned, primary.created_key, replica_key, progress),
            release
        );
        verified.map(|()| planned)
    }

    /// Writes the backend files (the failover files too) and observes again: the plan must
    /// now be empty. `created_key`, `replica_key`: the keys apply created in each bucket.
    async fn write_and_verify(
        &self,
        planned: &mut Planned<'_>,
        created_key: Option<String>,
        replica_key: Option<String>,
        progress: &dyn Task,
    ) -> Result<(), Error> {
        let spec = &planned.environment.spec;
        write_backend_files(
            &planned.desired,
            &planned.plan.changes,
            created_key.as_deref(),
        )?;
        if let (Some(target), Some(replica_plan)) = (&planned.replica, &planned.plan.replica) {
            write_backend_files(
                &target.desired,
                &replica_plan.plan.changes,
                replica_key.as_deref(),
            )?;
        }
        progress.step("verifying");
        let on_disk = read_on_disk(spec)?;
        let key_hint = created_key
            .clone()
            .or_else(|| key_named_by(&planned.plan.changes));
        let identity_principals: Vec<IamArn> = planned
            .desired
            .identity_policies
            .iter()
            .map(|target| target.principal.clone())
            .collect();
        let identity_name = identity_policy_name(spec);
        let observed = aws::observe(
            &planned.clients,
            spec,
            planned.account.as_str(),
            on_disk,
            spec.access
                .attach_identity_policy
                .then_some((identity_name.as_str(), identity_principals.as_slice())),
            key_hint.as_deref(),
        );
        let replica_observed = async {
            let Some(target) = &planned.replica else {
                return Ok(None);
            };
            let hint = replica_key.clone().or_else(|| {
                planned
                    .plan
                    .replica
                    .as_ref()
                    .and_then(|replica| key_named_by(&replica.plan.changes))
            });
            observe_replica(
                &target.clients,
                target.desired.spec,
                planned.account.as_str(),
                hint.as_deref(),
            )
            .await
            .map(Some)
        };
        let (observed, replica_observed) = tokio::join!(observed, replica_observed);
        let (observed, replica_observed) = (observed?, replica_observed?);
        let remaining = plan_with_replica(
            &planned.desired,
            &observed,
            planned
                .replica
                .as_ref()
                .map(|target| &target.desired)
                .zip(replica_observed.as_ref()),
        )?;
        if !remaining.is_empty() {
            return Err(Error::NotConverged {
                facets: remaining.all_changes().map(Change::facet).collect(),
            });
        }
        Ok(())
    }
}

/// Whether either bucket's plan holds a change two runs must not both make.
fn needs_environment_lock(planned: &Planned<'_>) -> bool {
    aws::needs_lock(&planned.plan)
        || replica_with_changes(planned).is_some_and(|(_, plan)| aws::needs_lock(plan))
}

/// The replica and its plan, when the plan changes anything on it.
fn replica_with_changes<'p>(
    planned: &'p Planned<'_>,
) -> Option<(&'p ReplicaTarget<'p>, &'p crate::plan::EnvPlan)> {
    match (&planned.replica, &planned.plan.replica) {
        (Some(target), Some(replica_plan)) if !replica_plan.plan.changes.is_empty() => {
            Some((target, &replica_plan.plan))
        }
        _ => None,
    }
}

/// The KMS key a plan's changes name, when one does: the key to read back after apply.
fn key_named_by(changes: &[Change]) -> Option<String> {
    changes.iter().find_map(|change| match change {
        Change::SetEncryption {
            to: crate::plan::SseTarget::Kms { key_arn },
            ..
        } => key_arn.clone(),
        Change::AliasKmsKey { key_arn, .. }
        | Change::EnableKeyRotation { key_arn }
        | Change::PutKeyPolicy { key_arn, .. } => Some(key_arn.clone()),
        _ => None,
    })
}

/// Writes the backend files `changes` name, rendering those that waited for a key this run
/// created.
fn write_backend_files(
    desired: &DesiredBucket<'_>,
    changes: &[Change],
    created_key: Option<&str>,
) -> Result<(), Error> {
    for change in changes {
        let Change::WriteBackendFile {
            stack, path, to, ..
        } = change
        else {
            continue;
        };
        let content = match to {
            Some(content) => content.clone(),
            None => {
                let desired_stack = desired
                    .stacks
                    .iter()
                    .find(|candidate| candidate.spec.name.as_str() == stack)
                    .expect("the plan's stacks are the desired state's");
                let key = created_key.map_or(KmsKeyId::FromSpec, KmsKeyId::Resolved);
                // The stack's backend.hcl, or OpenTofu's encryption file beside it.
                match desired.tofu_encryption_file(desired_stack, key) {
                    Some((encryption_path, content)) if &encryption_path == path => content,
                    _ => desired.backend_file(desired_stack, key),
                }
            }
        };
        tracing::debug!(env = %desired.spec.name, %path, "writing backend file");
        write_file_atomically(path, &content).map_err(|error| Error::File {
            doing: "write",
            path: path.clone(),
            cause: error.to_string(),
            hint: Some("check that the directory is writable; the AWS changes were applied, so a rerun only writes the file".into()),
        })?;
    }
    Ok(())
}

/// The replica's AWS side and its failover files. Orphaned files are the primary's to find
/// (their header names the same spec).
async fn observe_replica(
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
fn read_on_disk(spec: &EnvSpec) -> Result<OnDisk, Error> {
    let backend_files =
        read_backend_files(spec).map_err(|(path, error)| Error::file("read", &path, &error))?;
    Ok(OnDisk {
        backend_files,
        orphan_backend_files: orphan_backend_files(spec),
    })
}

/// The principals of the account whose inline policy `attach_identity_policy` manages.
fn identity_policy_principals(
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
fn unlisted_note(
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

/// With `account_id` in the spec, refuses credentials of any other account; returns the
/// account to resolve principal names in.
pub fn guard_account(
    spec: &EnvSpec,
    caller: &CallerIdentity,
    clients: &Clients,
) -> Result<AccountId, Error> {
    match &spec.account_id {
        Some(expected) if expected.as_str() != caller.account => Err(Error::WrongAccount {
            arn: caller.arn.clone(),
            actual: caller.account.clone(),
            expected: expected.to_string(),
            source_file: spec.source.clone(),
            identity_source: clients.identity_source.clone(),
        }),
        Some(expected) => Ok(expected.clone()),
        None => AccountId::parse(&caller.account).map_err(|_| {
            Error::Aws(aws::AwsError::new(
                "looking up who the credentials belong to (sts:GetCallerIdentity)",
                format!(
                    "STS returned `{}`, which is not an account id",
                    caller.account
                ),
                None,
            ))
        }),
    }
}
