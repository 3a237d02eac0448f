//! The identity Terraform's backend will use: its profile or web identity, resolved as the
//! backend resolves it, and the provider settings that would send it elsewhere.

use std::path::Path;

use super::{Check, CredentialSource, Status, provider_traps, session_request};
use crate::aws::{self, Clients, Transport};
use crate::desired::DesiredStack;
use crate::render::BackendConfig;
use crate::spec::{BackendCredentials, ProfileName, Region};

/// Where and how the probes reach AWS.
pub(super) struct Session<'a> {
    pub(super) region: &'a Region,
    pub(super) transport: Transport<'a>,
    pub(super) lookups: &'a aws::Lookups,
}

/// Clients with the credentials Terraform's backend would have for `config`, resolved in
/// its order: a web identity replaces every other source; `assume_role` goes on top. A
/// failure is the check to report.
pub(super) async fn backend_clients(
    session: &Session<'_>,
    config: &BackendConfig,
    source: &CredentialSource,
) -> Result<Clients, Box<Check>> {
    let base = match source {
        CredentialSource::WebIdentity { token_file, .. } => {
            let request = session_request(config, "assume_role_with_web_identity")
                .expect("a web identity source has a role");
            let token = std::fs::read_to_string(token_file).map_err(|error| {
                identity_failure(
                    format!("the backend would use {source}, but the token file cannot be read: {error}"),
                    "CI must write the OIDC token to that file before `terraform init` (see docs/github-actions.yml)",
                )
            })?;
            let anonymous = aws::anonymous_clients(session.region, session.transport).await;
            let credentials = aws::session::web_identity(&anonymous, &request, &token)
                .await
                .map_err(|error| {
                    identity_failure(
                        format!("the backend would use {source}, but: {}", error.cause),
                        "the role's trust policy must allow sts:AssumeRoleWithWebIdentity for this token's issuer, audience and subject",
                    )
                })?;
            aws::session_clients(
                credentials,
                format!("web identity role `{}`", request.role_arn),
                session.region,
                session.transport,
            )
            .await
        }
        _ => {
            let profile = source
                .profile()
                .and_then(|profile| ProfileName::parse(profile).ok());
            session
                .lookups
                .clients(profile.as_ref(), session.region, session.transport)
                .await
        }
    };
    let Some(request) = session_request(config, "assume_role") else {
        return Ok(base);
    };
    let credentials = aws::session::assume_role(&base, &request)
        .await
        .map_err(|error| {
            identity_failure(
                format!(
                    "the backend would assume `{}` from {source}, but: {}",
                    request.role_arn, error.cause
                ),
                "the role's trust policy must allow sts:AssumeRole for the base identity (and its external id, if it sets one)",
            )
        })?;
    Ok(aws::session_clients(
        credentials,
        format!("role `{}` assumed from {source}", request.role_arn),
        session.region,
        session.transport,
    )
    .await)
}

/// The identity check failed: what happened, and what to do.
fn identity_failure(detail: String, fix: &str) -> Box<Check> {
    Box::new(Check::new("identity", Status::Fail, detail).fix(fix))
}

pub(super) fn profile_check(
    stack: &DesiredStack<'_>,
    config: &BackendConfig,
    source: &CredentialSource,
) -> Check {
    let Some(spec_profile) = stack.profile else {
        return web_identity_check(stack, config, source);
    };
    match config.string("profile") {
        Some(profile) if profile == spec_profile.as_str() => Check::new(
            "profile",
            Status::Ok,
            format!("backend.hcl names profile `{profile}`"),
        ),
        Some(profile) => Check::new(
            "profile",
            Status::Warn,
            format!("backend.hcl names profile `{profile}`, the spec `{spec_profile}`"),
        )
        .fix("run `statebucket apply` so backend.hcl and the spec agree"),
        None => {
            let profiles = aws::profiles::configured();
            let detail = format!(
                "backend.hcl has no `profile` line, so the S3 backend uses {source}{}; it never uses the `provider \"aws\"` block's credentials",
                if profiles.len() > 1 {
                    format!(
                        " although {} profiles exist ({})",
                        profiles.len(),
                        profiles.join(", ")
                    )
                } else {
                    String::new()
                }
            );
            Check::new("profile", Status::Fail, detail).fix(format!(
                "add `profile = \"{spec_profile}\"` to backend.hcl (`statebucket apply` writes it)"
            ))
        }
    }
}

/// For a stack that authenticates with a web identity: backend.hcl must say so, with the
/// spec's role.
pub(super) fn web_identity_check(
    stack: &DesiredStack<'_>,
    config: &BackendConfig,
    source: &CredentialSource,
) -> Check {
    let BackendCredentials::WebIdentity(web) = &stack.spec.credentials else {
        unreachable!("a stack without a profile has a web identity");
    };
    match source {
        CredentialSource::WebIdentity { role_arn, .. } if role_arn == web.session.role_arn.as_str() => {
            Check::new(
                "credentials",
                Status::Ok,
                format!("backend.hcl authenticates with {source}"),
            )
        }
        _ => Check::new(
            "credentials",
            Status::Fail,
            format!(
                "the spec has a web identity for role `{}`, but the backend would use {source}{}",
                web.session.role_arn,
                if config.string("profile").is_some() { "" } else { " (backend.hcl has no assume_role_with_web_identity)" }
            ),
        )
        .fix("run `statebucket apply` (or `statebucket render`) to rewrite backend.hcl from the spec"),
    }
}

pub(super) fn provider_checks(directory: &Path, config: &BackendConfig) -> Vec<Check> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return vec![Check::new(
            "provider block",
            Status::Skip,
            format!("cannot read {}", directory.display()),
        )];
    };
    let files: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "tf"))
        .filter_map(|path| {
            Some((
                path.display().to_string(),
                std::fs::read_to_string(&path).ok()?,
            ))
        })
        .collect();
    let traps = provider_traps(&files);
    if traps.is_empty() {
        return vec![Check::new(
            "provider block",
            Status::Ok,
            "no `provider \"aws\"` block sets credentials the backend would ignore",
        )];
    }
    traps
        .into_iter()
        .map(|trap| {
            let status = if config.string("profile").is_none() { Status::Fail } else { Status::Warn };
            Check::new(
                "provider block",
                status,
                format!(
                    "{}:{}: `provider \"aws\"` sets {}; the S3 backend does not use the provider's credentials",
                    trap.file,
                    trap.line,
                    trap.settings.join(", ")
                ),
            )
            .fix("give the backend its own identity: `profile` (and `assume_role = { role_arn = … }` if needed) in backend.hcl")
        })
        .collect()
}
