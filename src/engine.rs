//! Runs environments through observe → plan → (apply → verify). The imperative shell around
//! the pure plan: it picks credentials, reads files, calls AWS, and collects outcomes.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::aws::{self, AwsError, CallerIdentity, Clients, RequestLog};
use crate::plan::{Change, Desired, EnvPlan, Facet, PlanError, plan, render_backend};
use crate::policy::render_statements;
use crate::progress::Progress;
use crate::project::{Environment, policy_inputs, read_backend_file, write_file_atomically};
use crate::spec::{AccountId, EndpointUrl, EnvSpec, ProfileName};

/// Why an environment could not be planned or applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvFailure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<AwsError> for EnvFailure {
    fn from(error: AwsError) -> EnvFailure {
        EnvFailure {
            message: error.to_string(),
            hint: error.hint,
        }
    }
}

impl From<PlanError> for EnvFailure {
    fn from(error: PlanError) -> EnvFailure {
        EnvFailure {
            hint: Some(error.hint()),
            message: error.to_string(),
        }
    }
}

/// How the tool reaches AWS; the same for every environment of a run.
#[derive(Debug, Clone, Default)]
pub struct Connection {
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
    /// spec's `profile` (the one Terraform uses). backend.hcl always gets `profile`.
    pub fn tool_profile<'a>(&'a self, spec: &'a EnvSpec) -> &'a ProfileName {
        self.profile_flag
            .as_ref()
            .or(spec.bootstrap_profile.as_ref())
            .unwrap_or(&spec.profile)
    }
}

/// An environment with its plan, ready to be shown and applied.
pub struct Planned<'e> {
    pub environment: &'e Environment,
    pub caller: CallerIdentity,
    pub plan: EnvPlan,
    clients: Clients,
    account: AccountId,
    owned_statements: Vec<Value>,
    endpoint: Option<EndpointUrl>,
}

impl Planned<'_> {
    fn desired(&self) -> Desired<'_> {
        Desired {
            spec: &self.environment.spec,
            owned_statements: self.owned_statements.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

pub type EnvResult<'e> = Result<Planned<'e>, (&'e Environment, EnvFailure)>;

pub struct Engine {
    pub connection: Connection,
    pub concurrency: usize,
    pub log: Arc<RequestLog>,
    pub progress: Progress,
}

impl Engine {
    /// Plans every environment, up to `concurrency` at a time, in the given order.
    pub async fn plan_all<'e>(&self, environments: &'e [Environment]) -> Vec<EnvResult<'e>> {
        stream::iter(environments)
            .map(|environment| async move {
                let progress = self.progress.environment(environment.spec.name.as_str());
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

    async fn plan_one<'e>(&self, environment: &'e Environment) -> Result<Planned<'e>, EnvFailure> {
        let spec = &environment.spec;
        let endpoint = self.connection.endpoint(spec);
        let profile = self.connection.tool_profile(spec);
        let clients = aws::clients(Some(profile), &spec.region, endpoint.as_ref(), &self.log).await;
        let backend_file = read_backend_file(&spec.backend.file).map_err(|error| EnvFailure {
            message: format!("cannot read {}: {error}", spec.backend.file),
            hint: Some("check the file's permissions".into()),
        })?;
        tracing::debug!(env = %spec.name, profile = %profile, endpoint = ?endpoint.as_ref().map(EndpointUrl::as_str), "resolving identity");
        let caller = aws::caller_identity(&clients).await?;
        tracing::debug!(env = %spec.name, arn = %caller.arn, account = %caller.account, "credentials resolved");
        let account = guard_account(spec, &caller, &clients)?;
        let observed = aws::observe(&clients, spec, account.as_str(), backend_file).await?;
        let owned_statements = render_statements(
            &environment.template_name,
            &environment.template,
            &policy_inputs(spec, &account, endpoint.as_ref()),
        )
        .map_err(|diagnostics| EnvFailure {
            message: diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            hint: None,
        })?;
        let desired = Desired {
            spec,
            owned_statements,
            endpoint,
        };
        let plan = plan(&desired, &observed)?;
        tracing::debug!(env = %spec.name, bucket_exists = observed.bucket.is_some(), changes = plan.changes.len(), in_sync = plan.in_sync.len(), "planned");
        let Desired {
            owned_statements,
            endpoint,
            ..
        } = desired;
        Ok(Planned {
            environment,
            caller,
            plan,
            clients,
            account,
            owned_statements,
            endpoint,
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
                let progress = self.progress.environment(environment.spec.name.as_str());
                progress.step("applying");
                let outcome = self
                    .apply_one(planned, &progress)
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
        planned: Planned<'e>,
        progress: &crate::progress::EnvProgress,
    ) -> Result<Planned<'e>, EnvFailure> {
        let spec = &planned.environment.spec;
        let created_key = aws::apply(
            &planned.clients,
            &planned.plan,
            spec.bucket.name.as_str(),
            spec.region.as_str(),
            planned.account.as_str(),
        )
        .await?;
        for change in &planned.plan.changes {
            if let Change::WriteBackendFile { path, to, .. } = change {
                let content = match to {
                    Some(content) => content.clone(),
                    None => render_backend(&planned.desired(), created_key.as_deref()),
                };
                tracing::debug!(env = %spec.name, %path, "writing backend file");
                write_file_atomically(path, &content).map_err(|error| EnvFailure {
                    message: format!("cannot write {path}: {error}"),
                    hint: Some("check that the directory is writable; the AWS changes were applied, so a rerun only writes the file".into()),
                })?;
            }
        }
        progress.step("verifying");
        let backend_file = read_backend_file(&spec.backend.file).map_err(|error| EnvFailure {
            message: format!("cannot read {}: {error}", spec.backend.file),
            hint: None,
        })?;
        let observed = aws::observe(
            &planned.clients,
            spec,
            planned.account.as_str(),
            backend_file,
        )
        .await?;
        let remaining = plan(&planned.desired(), &observed)?;
        if !remaining.is_empty() {
            return Err(not_converged(&remaining));
        }
        Ok(planned)
    }
}

/// With `account_id` in the spec, refuses credentials of any other account; returns the
/// account to resolve principal names in.
fn guard_account(
    spec: &EnvSpec,
    caller: &CallerIdentity,
    clients: &Clients,
) -> Result<AccountId, EnvFailure> {
    match &spec.account_id {
        Some(expected) if expected.as_str() != caller.account => Err(EnvFailure {
            message: format!(
                "wrong AWS account: {} is in account {}, but {} requires account {expected}",
                caller.arn, caller.account, spec.source
            ),
            hint: Some(format!(
                "these credentials came from {}; use a profile for account {expected} (--profile, `bootstrap_profile`, or `profile` in the spec), or check AWS_PROFILE and AWS_ACCESS_KEY_ID in your environment",
                clients.identity_source
            )),
        }),
        Some(expected) => Ok(expected.clone()),
        None => AccountId::parse(&caller.account).map_err(|_| EnvFailure {
            message: format!(
                "STS returned `{}`, which is not an account id",
                caller.account
            ),
            hint: None,
        }),
    }
}

fn not_converged(remaining: &EnvPlan) -> EnvFailure {
    let facets: Vec<String> = remaining
        .changes
        .iter()
        .map(Change::facet)
        .map(|facet: Facet| facet.to_string())
        .collect();
    EnvFailure {
        message: format!("applied, but the environment still differs from its spec: {}", facets.join(", ")),
        hint: Some("another process may be changing the bucket at the same time, or the endpoint does not store what it accepts; rerun `statebucket plan` to see the difference".into()),
    }
}
