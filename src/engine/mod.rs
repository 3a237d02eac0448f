//! Runs environments through observe → plan → (apply → verify). The imperative shell around
//! the pure plan: it picks credentials, reads files, calls AWS, and collects outcomes.

mod apply;
mod guard;
mod plan;
mod verify;

use std::sync::Arc;

use crate::aws::{self, CallerIdentity, Clients, RequestLog, Transport};
use crate::desired::DesiredBucket;
use crate::error::Error;
use crate::plan::EnvPlan;
use crate::policy::evaluate::Caller;
use crate::progress::{self, Reporter};
use crate::project::Environment;
use crate::spec::{AccountId, EndpointUrl, EnvSpec, IamArn, ProfileName, Region};

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
    pub fn endpoint<'a>(&'a self, spec: &'a EnvSpec) -> Option<&'a EndpointUrl> {
        self.endpoint_flag
            .as_ref()
            .or(self.endpoint_env.as_ref())
            .or(spec.endpoint.as_ref())
    }

    /// `--endpoint-url`, then `AWS_ENDPOINT_URL`: for commands without a spec.
    pub fn command_line_endpoint(&self) -> Option<&EndpointUrl> {
        self.endpoint_flag.as_ref().or(self.endpoint_env.as_ref())
    }

    /// How requests to `endpoint` (AWS itself when `None`) reach it.
    pub fn transport_to<'a>(
        &self,
        endpoint: Option<&'a EndpointUrl>,
        log: &'a Arc<RequestLog>,
    ) -> Transport<'a> {
        Transport {
            endpoint,
            attempt_timeout: self.attempt_timeout,
            log,
        }
    }

    /// How requests of a command without a spec reach AWS.
    pub fn command_line_transport<'a>(&'a self, log: &'a Arc<RequestLog>) -> Transport<'a> {
        self.transport_to(self.command_line_endpoint(), log)
    }

    /// How requests for `spec` reach AWS.
    pub fn transport<'a>(&'a self, spec: &'a EnvSpec, log: &'a Arc<RequestLog>) -> Transport<'a> {
        self.transport_to(self.endpoint(spec), log)
    }

    /// Clients of statebucket's own identity (`tool_profile`) for `spec`, in `region`.
    pub async fn tool_clients(
        &self,
        spec: &EnvSpec,
        region: &Region,
        log: &Arc<RequestLog>,
    ) -> Clients {
        aws::clients(self.tool_profile(spec), region, self.transport(spec, log)).await
    }

    /// `tool_clients` in the spec's region after the account guard, and the account they act
    /// in. A store without STS has no caller to guard: its spec names the account (the parser
    /// requires `account_id` with `lacks: [sts]`).
    pub async fn guarded_tool_clients(
        &self,
        spec: &EnvSpec,
        log: &Arc<RequestLog>,
    ) -> Result<(Clients, AccountId), Error> {
        let clients = self.tool_clients(spec, &spec.region, log).await;
        let account = match (&spec.account_id, spec.lacks(crate::spec::StoreFeature::Sts)) {
            (Some(account), true) => account.clone(),
            _ => {
                let caller = aws::caller_identity(&clients).await?;
                guard_account(spec, &caller, &clients)?
            }
        };
        Ok((clients, account))
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
    /// How long verify reads a setting again that does not show what apply wrote yet
    /// (`--settle-timeout`).
    pub settle_timeout: std::time::Duration,
    /// The apply locks this run holds, released at once if it is interrupted.
    pub held_locks: aws::lock::HeldLocks,
}

impl Engine {
    /// Plans every environment, up to `concurrency` at a time, in the given order.
    pub async fn plan_all<'e>(&self, environments: &'e [Environment]) -> Vec<EnvResult<'e>> {
        progress::run_each(
            environments,
            self.concurrency,
            self.reporter.as_ref(),
            |environment| Some((environment.spec.name.to_string(), "observing")),
            |environment, _task| async move {
                self.plan_one(environment)
                    .await
                    .map_err(|failure| (environment, failure))
            },
        )
        .await
    }

    /// Applies every planned environment with changes, then observes it again: an
    /// environment whose plan is not empty afterwards has failed. Each result keeps the plan
    /// that was applied.
    pub async fn apply_all<'e>(&self, planned: Vec<EnvResult<'e>>) -> Vec<EnvResult<'e>> {
        progress::run_each(
            planned,
            self.concurrency,
            self.reporter.as_ref(),
            |result| match result {
                Ok(planned) if !planned.plan.is_empty() => {
                    Some((planned.environment.spec.name.to_string(), "applying"))
                }
                _ => None,
            },
            |result, task| async move {
                let planned = result?;
                if planned.plan.is_empty() {
                    return Ok(planned);
                }
                let environment = planned.environment;
                self.apply_one(planned, task.as_ref())
                    .await
                    .map_err(|failure| (environment, failure))
            },
        )
        .await
    }
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
