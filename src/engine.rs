//! Runs environments through observe → plan → (apply → verify). The imperative shell around
//! the pure plan: it picks credentials, reads files, calls AWS, and collects outcomes.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::access::{Principals, policy_inputs};
use crate::aws::{self, AwsError, CallerIdentity, Clients, RequestLog};
use crate::plan::{
    Change, Desired, EnvPlan, Facet, IdentityPolicyTarget, PlanError, plan, render_backend,
};
use crate::policy::evaluate::Caller;
use crate::policy::lockout::{Needs, Subject, lockout_risks};
use crate::policy::{PolicyDocument, identity_policy, identity_policy_name, render_statements};
use crate::progress::Progress;
use crate::project::{Environment, local_state_note, read_backend_file, write_file_atomically};
use crate::spec::{AccountId, EndpointUrl, EnvSpec, IamArn, ProfileName};

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
    /// Who Terraform's backend runs as (the spec's `profile`), when it could be resolved.
    pub terraform_caller: Option<CallerIdentity>,
    pub plan: EnvPlan,
    clients: Clients,
    account: AccountId,
    state: DesiredState,
}

/// What `Desired` borrows, owned, so a plan can be recomputed after apply.
#[derive(Debug, Clone)]
struct DesiredState {
    owned_statements: Vec<Value>,
    endpoint: Option<EndpointUrl>,
    identity_policy: Option<IdentityPolicyTarget>,
    /// The principals whose inline policy is observed (those in the caller's account).
    identity_principals: Vec<IamArn>,
    log_delivery: Option<Value>,
}

impl DesiredState {
    fn desired<'a>(&self, spec: &'a EnvSpec) -> Desired<'a> {
        Desired {
            spec,
            owned_statements: self.owned_statements.clone(),
            endpoint: self.endpoint.clone(),
            identity_policy: self.identity_policy.clone(),
            log_delivery: self.log_delivery.clone(),
        }
    }

    fn identity_observation(&self) -> Option<(&str, &[IamArn])> {
        self.identity_policy
            .as_ref()
            .map(|target| (target.name.as_str(), self.identity_principals.as_slice()))
    }
}

pub type EnvResult<'e> = Result<Planned<'e>, (&'e Environment, EnvFailure)>;

pub struct Engine {
    pub connection: Connection,
    pub lookups: aws::Lookups,
    /// `--allow-lockout`: write a policy even when it denies an identity that must keep access.
    pub allow_lockout: bool,
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
        let clients = self
            .lookups
            .clients(
                Some(profile),
                &spec.region,
                endpoint.as_ref(),
                self.connection.attempt_timeout,
                &self.log,
            )
            .await;
        let backend_file = read_backend_file(&spec.backend.file).map_err(|error| EnvFailure {
            message: format!("cannot read {}: {error}", spec.backend.file),
            hint: Some("check the file's permissions".into()),
        })?;

        // Both identities at once: the tool's, and Terraform's when it is another profile.
        tracing::debug!(env = %spec.name, profile = %profile, endpoint = ?endpoint.as_ref().map(EndpointUrl::as_str), "resolving identity");
        let terraform_clients = if *profile == spec.profile {
            None
        } else {
            Some(
                self.lookups
                    .clients(
                        Some(&spec.profile),
                        &spec.region,
                        endpoint.as_ref(),
                        self.connection.attempt_timeout,
                        &self.log,
                    )
                    .await,
            )
        };
        let endpoint_key = endpoint.as_ref().map_or("", EndpointUrl::as_str);
        let tool_key = format!("{profile}@{endpoint_key}");
        let terraform_key = format!("{}@{endpoint_key}", spec.profile);
        let terraform_identity = async {
            match &terraform_clients {
                Some(clients) => Some(self.lookups.caller(&terraform_key, clients).await),
                None => None,
            }
        };
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
        let principals = Principals::offline(spec, &account);
        let identity_principals: Vec<IamArn> = principals
            .users
            .iter()
            .chain(&principals.roles)
            .filter(|arn| arn.account == account)
            .cloned()
            .collect();
        let identity_policy = spec
            .access
            .attach_identity_policy
            .then(|| IdentityPolicyTarget {
                name: identity_policy_name(spec),
                document: identity_policy(spec, &account),
                principals: identity_principals
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            });
        let mut state = DesiredState {
            owned_statements: owned_statements(
                environment,
                &account,
                &principals,
                endpoint.as_ref(),
            )?,
            endpoint,
            identity_policy,
            identity_principals,
            log_delivery: spec.bucket.logging.as_ref().map(|logging| {
                crate::policy::log_delivery_statement(
                    spec.region.partition(),
                    logging.bucket.as_str(),
                    logging.prefix.as_str(),
                    spec.bucket.name.as_str(),
                    account.as_str(),
                )
            }),
        };
        let caller = async {
            match caller_first {
                Some(caller) => Ok(caller),
                None => self.lookups.caller(&tool_key, &clients).await,
            }
        };
        let (caller, terraform_caller, observed, verified) = tokio::join!(
            caller,
            terraform_identity,
            aws::observe(
                &clients,
                spec,
                account.as_str(),
                backend_file,
                state.identity_observation(),
                None,
            ),
            aws::verify_principals(&clients, spec, &account, &self.lookups),
        );
        let caller = caller?;
        tracing::debug!(env = %spec.name, arn = %caller.arn, account = %caller.account, "credentials resolved");
        guard_account(spec, &caller, &clients)?;
        let observed = observed?;
        let (terraform_caller, terraform_note) = match terraform_caller {
            None => (Some(caller.clone()), None),
            Some(Ok(identity)) => (Some(identity), None),
            Some(Err(error)) => (
                None,
                Some(format!(
                    "Terraform's identity (profile `{}`) could not be resolved here ({}); the lockout check covered statebucket's own identity only",
                    spec.profile, error.cause
                )),
            ),
        };
        let mut env_plan = plan(&state.desired(spec), &observed)?;

        // Before any policy is written, every principal must exist, and the policy must name
        // them by their real ARNs (a role's path is part of it).
        let writes_access = env_plan.changes.iter().any(|change| {
            matches!(
                change,
                Change::PutPolicy { .. } | Change::PutIdentityPolicy { .. }
            )
        });
        let principals = match verified {
            Ok(verified) => {
                if verified != principals {
                    state.owned_statements = owned_statements(
                        environment,
                        &account,
                        &verified,
                        state.endpoint.as_ref(),
                    )?;
                    env_plan = plan(&state.desired(spec), &observed)?;
                }
                verified
            }
            Err(error) if writes_access => return Err(error.into()),
            Err(error) => {
                env_plan.notes.push(format!(
                    "the principals could not be checked in IAM: {error}"
                ));
                principals
            }
        };
        if writes_access {
            self.guard_lockout(spec, &env_plan, &caller, terraform_caller.as_ref())?;
        }
        env_plan.notes.extend(terraform_note);
        if let Some(guidance) = spec
            .backend
            .terraform_dir
            .as_deref()
            .and_then(|directory| local_state_note(spec, std::path::Path::new(directory)))
        {
            env_plan.notes.push(guidance);
        }
        if let Some(terraform) = &terraform_caller
            && let Some(identity) = Caller::parse(&terraform.arn)
            && !principals
                .all()
                .any(|arn| identity.is_named_by(&arn.to_string()))
        {
            env_plan.notes.push(format!(
                "Terraform runs as {} (profile `{}`), which `access` does not list: the bucket policy grants it nothing; add it to `access.users` or `access.roles`",
                terraform.arn, spec.profile
            ));
        }
        tracing::debug!(env = %spec.name, bucket_exists = observed.bucket.is_some(), changes = env_plan.changes.len(), in_sync = env_plan.in_sync.len(), "planned");
        Ok(Planned {
            environment,
            caller,
            terraform_caller,
            plan: env_plan,
            clients,
            account,
            state,
        })
    }

    /// Refuses a bucket policy that would explicitly deny statebucket's own identity (which
    /// must be able to repair the policy later) or Terraform's (which must reach its state),
    /// unless `--allow-lockout`.
    fn guard_lockout(
        &self,
        spec: &EnvSpec,
        env_plan: &EnvPlan,
        tool: &CallerIdentity,
        terraform: Option<&CallerIdentity>,
    ) -> Result<(), EnvFailure> {
        let Some(document) = env_plan.changes.iter().find_map(|change| match change {
            Change::PutPolicy { to, .. } => PolicyDocument::parse(to).ok(),
            _ => None,
        }) else {
            return Ok(());
        };
        let mut subjects = Vec::new();
        if let Some(caller) = Caller::parse(&tool.arn) {
            subjects.push(Subject {
                label: "statebucket (this run)".into(),
                caller,
                needs: Needs::ManageBucket,
            });
        }
        if let Some(caller) = terraform.and_then(|identity| Caller::parse(&identity.arn)) {
            subjects.push(Subject {
                label: format!("Terraform (profile `{}`)", spec.profile),
                caller,
                needs: Needs::UseState,
            });
        }
        let risks = lockout_risks(&document, spec, &subjects);
        if risks.is_empty() {
            return Ok(());
        }
        let details: Vec<String> = risks
            .iter()
            .map(|risk| format!("  - {}", risk.describe()))
            .collect();
        if self.allow_lockout {
            tracing::warn!(env = %spec.name, "--allow-lockout: writing a policy that denies:\n{}", details.join("\n"));
            return Ok(());
        }
        Err(EnvFailure {
            message: format!(
                "refusing to write a bucket policy for {} that would lock out an identity it must keep:\n{}",
                spec.name,
                details.join("\n")
            ),
            hint: Some(
                "list the identity in `access.users` / `access.roles` (or as `break_glass_role`), or correct the policy template; pass --allow-lockout only if this is intended".into(),
            ),
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
            &spec.region,
            planned.account.as_str(),
        )
        .await?;
        for change in &planned.plan.changes {
            if let Change::WriteBackendFile { path, to, .. } = change {
                let content = match to {
                    Some(content) => content.clone(),
                    None => render_backend(&planned.state.desired(spec), created_key.as_deref()),
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
        let key_hint = created_key.clone().or_else(|| {
            planned.plan.changes.iter().find_map(|change| match change {
                Change::SetEncryption {
                    to: crate::plan::SseTarget::Kms { key_arn },
                    ..
                } => key_arn.clone(),
                Change::AliasKmsKey { key_arn, .. } | Change::EnableKeyRotation { key_arn } => {
                    Some(key_arn.clone())
                }
                _ => None,
            })
        });
        let observed = aws::observe(
            &planned.clients,
            spec,
            planned.account.as_str(),
            backend_file,
            planned.state.identity_observation(),
            key_hint.as_deref(),
        )
        .await?;
        let remaining = plan(&planned.state.desired(spec), &observed)?;
        if !remaining.is_empty() {
            return Err(not_converged(&remaining));
        }
        Ok(planned)
    }
}

/// The environment's owned bucket policy statements for these principals.
fn owned_statements(
    environment: &Environment,
    account: &AccountId,
    principals: &Principals,
    endpoint: Option<&EndpointUrl>,
) -> Result<Vec<Value>, EnvFailure> {
    render_statements(
        &environment.template_name,
        &environment.template,
        &policy_inputs(&environment.spec, account, principals, endpoint),
    )
    .map_err(|diagnostics| EnvFailure {
        message: diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        hint: None,
    })
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
