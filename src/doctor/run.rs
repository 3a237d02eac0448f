//! The checks that need files and AWS: resolving the identity the backend will use, reading
//! the live policy, and probing as that identity exactly what Terraform does.

use std::path::Path;
use std::sync::Arc;

use super::{Check, CredentialSource, Status, session_request};
use crate::aws::probe::{Leftovers, Refusal};
use crate::aws::{self, RequestLog};
use crate::desired::{DesiredBucket, DesiredStack};
use crate::engine::Connection;
use crate::policy::bucket_arn;
use crate::policy::evaluate::Caller;
use crate::project::local_state_note;
use crate::render::{BackendConfig, KmsKeyId, parse_backend_hcl};
use crate::spec::{
    EndpointUrl, EnvSpec, PrincipalKind, PrincipalRef, ProfileName, Region, StackSpec, StoreFeature,
};

use super::policy_checks::*;
use super::probes::*;
use super::session::*;

/// A live bucket policy as read: `None` when the bucket has none.
type LivePolicy = Result<Option<String>, Refusal>;

/// What every stack's diagnosis in one run shares.
pub struct DoctorRun<'a> {
    pub(super) connection: &'a Connection,
    pub(super) log: &'a Arc<RequestLog>,
    /// Clients and the answers of STS, each asked once per run for the identities many
    /// stacks share (a profile's identity is the same for every stack that uses it).
    pub(super) lookups: aws::Lookups,
    /// Each bucket's live policy, read once per run: every stack of a bucket is checked
    /// against the same policy.
    live_policies: aws::Memo<LivePolicy>,
    pub(super) terraform_dir: Option<&'a Path>,
    /// The probe locks left in place until the run ends (removed if it is interrupted).
    pub(super) leftovers: &'a Leftovers,
}

impl<'a> DoctorRun<'a> {
    pub fn new(
        connection: &'a Connection,
        log: &'a Arc<RequestLog>,
        terraform_dir: Option<&'a Path>,
        leftovers: &'a Leftovers,
    ) -> Self {
        DoctorRun {
            connection,
            log,
            lookups: aws::Lookups::default(),
            live_policies: aws::Memo::default(),
            terraform_dir,
            leftovers,
        }
    }

    /// The live policy of `bucket` as `tool` reads it, asked once per run and endpoint.
    pub(super) async fn live_policy(
        &self,
        tool: &aws::Clients,
        bucket: &str,
        endpoint: Option<&EndpointUrl>,
    ) -> LivePolicy {
        let key = format!(
            "{}|{bucket}|{}",
            tool.identity_source,
            endpoint.map_or("", EndpointUrl::as_str)
        );
        aws::memoised(&self.live_policies, &key, || {
            aws::probe::bucket_policy(tool, bucket)
        })
        .await
    }
}

/// Every check for one stack's backend.hcl, as the identity that file makes Terraform use.
pub async fn diagnose(
    desired: &DesiredBucket<'_>,
    stack: &DesiredStack<'_>,
    run: &DoctorRun<'_>,
) -> Vec<Check> {
    let spec = desired.spec;
    let file = &stack.spec.file;
    let mut checks = Vec::new();

    let (text, config) = match read_backend_file(file) {
        Ok(read) => read,
        Err(check) => {
            checks.push(*check);
            return checks;
        }
    };
    checks.push(backend_file_check(desired, stack, &text, &config));

    let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|value| !value.is_empty());
    let aws_profile = std::env::var("AWS_PROFILE").ok();
    let source = CredentialSource::resolve(&config, env_keys, aws_profile.as_deref());
    checks.push(profile_check(stack, &config, &source));
    let spec_dir = stack.spec.terraform_dir.as_deref().map(Path::new);
    if let Some(directory) = run.terraform_dir.or(spec_dir) {
        checks.extend(provider_checks(directory, &config));
        if let Some(guidance) = local_state_note(spec, stack.spec, directory) {
            checks.push(Check::new("local state", Status::Warn, guidance));
        }
    }

    let region = config
        .string("region")
        .and_then(|region| Region::parse(region).ok())
        .unwrap_or_else(|| spec.region.clone());
    let endpoint = config
        .object("endpoints")
        .get("s3")
        .and_then(|url| EndpointUrl::parse(url).ok())
        .or_else(|| run.connection.endpoint(spec).cloned());
    let session = Session {
        region: &region,
        transport: run.connection.transport_to(endpoint.as_ref(), run.log),
        lookups: &run.lookups,
    };
    let clients = match backend_clients(&session, &config, &source).await {
        Ok(clients) => clients,
        Err(check) => {
            checks.push(*check);
            return checks;
        }
    };
    let assumed = session_request(&config, "assume_role");
    let via = match &assumed {
        Some(request) => format!("{source}, then assume_role `{}`", request.role_arn),
        None => source.to_string(),
    };
    if spec.lacks(StoreFeature::Sts) {
        let profile = match &source {
            CredentialSource::BackendProfile(profile) | CredentialSource::AwsProfile(profile)
                if assumed.is_none() =>
            {
                Some(profile.as_str())
            }
            _ => None,
        };
        let role = assumed.as_ref().map(|request| request.role_arn.as_str());
        checks.extend(checks_without_sts(spec, stack, &via, profile, role));
        checks.extend(probes(spec, stack.spec, &config, &clients, run.leftovers).await);
        return checks;
    }
    let identity =
        match identity_check(&session, &clients, assumed.is_some(), &source, stack, &via).await {
            Ok((identity, check)) => {
                checks.push(check);
                identity
            }
            Err(check) => {
                checks.push(*check);
                return checks;
            }
        };
    checks.extend(account_check(&config, &identity));

    let caller = Caller::parse(&identity.arn);
    if let Some(caller) = &caller {
        checks.push(listed_check(spec, stack, caller, &caller.arn));
        checks.push(live_policy_check(spec, stack.spec, caller, run, endpoint.as_ref()).await);
    }
    checks.extend(probes(spec, stack.spec, &config, &clients, run.leftovers).await);
    checks.extend(replication_checks(spec, stack.spec, run, endpoint.as_ref()).await);
    checks
}

/// Without STS no one can say who the backend runs as: the identity check is skipped. A
/// backend that assumes a role runs as that role, named in backend.hcl, which is held
/// against the stack's lists by name; otherwise the profile's kind (a user's keys, a role's
/// sessions) is held against the stack's principals.
fn checks_without_sts(
    spec: &EnvSpec,
    stack: &DesiredStack<'_>,
    via: &str,
    profile: Option<&str>,
    assumed_role: Option<&str>,
) -> Vec<Check> {
    let mut checks = vec![Check::new(
        "identity",
        Status::Skip,
        format!(
            "the backend would use {via}; the store has no STS (`compat.lacks`) to say who that is"
        ),
    )];
    let role = assumed_role.and_then(|arn| match PrincipalRef::parse(arn, PrincipalKind::Role) {
        Ok(PrincipalRef::Arn { arn, .. }) => Some(arn),
        _ => None,
    });
    if let Some(role) = role {
        let who = format!("role {role} (backend.hcl's assume_role)");
        checks.push(listed_check(
            spec,
            stack,
            &Caller::for_principal(&role),
            &who,
        ));
    } else if let Some(profile) = profile {
        checks.extend(listed_kind_check(
            spec,
            stack,
            profile,
            aws::profiles::kind_of(profile),
        ));
    }
    checks
}

/// The stack's backend file, read and parsed; the failing check otherwise.
fn read_backend_file(file: &str) -> Result<(String, BackendConfig), Box<Check>> {
    let text = std::fs::read_to_string(file).map_err(|error| {
        Box::new(
            Check::new(
                "backend file",
                Status::Fail,
                format!("cannot read {file}: {error}"),
            )
            .fix("run `statebucket apply` (or `statebucket render`) to write it"),
        )
    })?;
    let config = parse_backend_hcl(&text).map_err(|(line, message)| {
        Box::new(
            Check::new(
                "backend file",
                Status::Fail,
                format!("{file}:{line}: {message}"),
            )
            .fix("rewrite it with `statebucket apply`"),
        )
    })?;
    Ok((text, config))
}

/// Who the backend's credentials are (`via` says where they come from), with its check.
async fn identity_check(
    session: &Session<'_>,
    clients: &aws::Clients,
    assumed: bool,
    source: &CredentialSource,
    stack: &DesiredStack<'_>,
    via: &str,
) -> Result<(aws::CallerIdentity, Check), Box<Check>> {
    // A profile's identity is asked once per run; a session's (an assumed role, a web
    // identity) each time: its clients are its own.
    let identity = if assumed || matches!(source, CredentialSource::WebIdentity { .. }) {
        aws::caller_identity(clients).await
    } else {
        let endpoint = session.transport.endpoint.map_or("", EndpointUrl::as_str);
        session
            .lookups
            .caller(&format!("{source}@{endpoint}"), clients)
            .await
    };
    match identity {
        Ok(identity) => {
            let check = Check::new(
                "identity",
                Status::Ok,
                format!(
                    "{} (account {}), from {via}",
                    identity.arn, identity.account
                ),
            );
            Ok((identity, check))
        }
        Err(error) => {
            let fix = match (source, stack.profile) {
                (CredentialSource::WebIdentity { .. }, _) => {
                    "check the role's trust policy allows this token's issuer and audience"
                        .to_owned()
                }
                (_, profile) => format!(
                    "configure credentials for {source} (e.g. `aws configure --profile {}` or `aws sso login`)",
                    source
                        .profile()
                        .or(profile.map(ProfileName::as_str))
                        .unwrap_or("NAME")
                ),
            };
            Err(Box::new(
                Check::new(
                    "identity",
                    Status::Fail,
                    format!("the backend would use {via}, but: {}", error.cause),
                )
                .fix(fix),
            ))
        }
    }
}

/// `allowed_account_ids` in backend.hcl that the identity's account is not in.
fn account_check(config: &BackendConfig, identity: &aws::CallerIdentity) -> Option<Check> {
    let allowed_accounts = config.list("allowed_account_ids");
    (!allowed_accounts.is_empty() && !allowed_accounts.contains(&identity.account)).then(|| {
        Check::new(
            "account",
            Status::Fail,
            format!("account {} is not in allowed_account_ids {:?}; Terraform will refuse it", identity.account, allowed_accounts),
        )
        .fix("use credentials of the allowed account: set `profile` in backend.hcl, or fix AWS_PROFILE / AWS_ACCESS_KEY_ID")
    })
}

/// For a failover file: statebucket's rule on the primary, the role S3 assumes, and whether
/// the current state has reached the replica, read as statebucket's own identity (Terraform's
/// needs none of these permissions).
pub(super) async fn replication_checks(
    spec: &EnvSpec,
    stack: &StackSpec,
    run: &DoctorRun<'_>,
    endpoint: Option<&EndpointUrl>,
) -> Vec<Check> {
    let Some(primary) = &spec.replica_of else {
        return Vec::new();
    };
    let transport = run.connection.transport_to(endpoint, run.log);
    let profile = run.connection.tool_profile(spec);
    let (on_primary, on_replica) = tokio::join!(
        run.lookups.clients(profile, &primary.region, transport),
        run.lookups.clients(profile, &spec.region, transport),
    );
    let role = crate::replication::role_name(&primary.name);
    let replica_arn = bucket_arn(spec.region.partition(), &spec.bucket.name);
    let (configuration, trust, state) = tokio::join!(
        aws::replication::read_configuration(&on_primary, primary.name.as_str(), None),
        aws::replication::read_role(&on_primary, &role),
        aws::replication::state_replication(
            &on_primary,
            &on_replica,
            primary.name.as_str(),
            spec.bucket.name.as_str(),
            stack.key.as_str(),
        ),
    );
    let skipped = |check: &str, error: aws::AwsError| {
        Check::new(
            check,
            Status::Skip,
            format!(
                "could not read it as {}: {}",
                on_primary.identity_source, error.cause
            ),
        )
    };
    let mut checks = vec![
        match configuration {
            Ok(configuration) => super::replication::configuration_check(
                configuration.as_ref(),
                primary.name.as_str(),
                &replica_arn,
            ),
            Err(error) => skipped("replication", error),
        },
        match trust {
            Ok(trust) => super::replication::role_check(
                &role,
                trust
                    .as_ref()
                    .map(|(arn, trust)| (arn.as_str(), trust.as_str())),
            ),
            Err(error) => skipped("replication role", error),
        },
    ];
    match state {
        Ok(state) => checks.extend(super::replication::state_checks(
            state.as_ref(),
            stack.key.as_str(),
        )),
        Err(error) => checks.push(skipped("replicated state", error)),
    }
    checks
}

/// The whole file against what statebucket renders for the stack. The `kms_key_id` value is
/// the one line that may differ: `apply` writes the key's ARN where offline rendering has
/// the spec's alias.
pub(super) fn backend_file_check(
    desired: &DesiredBucket<'_>,
    stack: &DesiredStack<'_>,
    text: &str,
    config: &BackendConfig,
) -> Check {
    let file = &stack.spec.file;
    let on_disk_key = config.string("kms_key_id");
    let expected = desired.backend_file(
        stack,
        on_disk_key.map_or(KmsKeyId::FromSpec, KmsKeyId::Resolved),
    );
    let expected_lines: Vec<&str> = expected.lines().collect();
    let actual_lines: Vec<&str> = text.lines().collect();
    let missing: Vec<&str> = expected_lines
        .iter()
        .filter(|line| !line.starts_with('#') && !actual_lines.contains(line))
        .copied()
        .collect();
    let extra: Vec<&str> = actual_lines
        .iter()
        .filter(|line| {
            !line.starts_with('#') && !line.trim().is_empty() && !expected_lines.contains(line)
        })
        .copied()
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Check::new(
            "backend file",
            Status::Ok,
            format!("{file} is what {} renders", desired.spec.source),
        );
    }
    let mut differences = Vec::new();
    if !missing.is_empty() {
        differences.push(format!("missing {}", backticked(&missing)));
    }
    if !extra.is_empty() {
        differences.push(format!("not from the spec {}", backticked(&extra)));
    }
    Check::new(
        "backend file",
        Status::Fail,
        format!(
            "{file} differs from {}: {}",
            desired.spec.source,
            differences.join("; ")
        ),
    )
    .fix("run `statebucket apply` (or `statebucket render`) to rewrite it from the spec")
}

/// backend.hcl lines as `a`, `b`, trimmed.
fn backticked(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| format!("`{}`", line.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::PrincipalArns;
    use crate::policy::{BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME};
    use crate::spec::{AccountId, THREE_STACKS, parse_spec};

    /// The "listed in access" check of stack `network` on a store without STS, for a backend
    /// that assumes `assumed_role`.
    fn listed(assumed_role: Option<&str>) -> Check {
        let spec = parse_spec("environments/central.yaml", "central", THREE_STACKS).unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        let desired = DesiredBucket::build(
            &spec,
            &account,
            &PrincipalArns::offline(&spec, &account),
            None,
            (BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE),
        )
        .unwrap();
        let via = "profile `terraform`, then assume_role";
        checks_without_sts(&spec, &desired.stacks[0], via, None, assumed_role)
            .into_iter()
            .find(|check| check.check == "listed in access")
            .expect("a listed check")
    }

    #[test]
    fn without_sts_the_role_backend_hcl_assumes_is_held_against_the_lists_by_name() {
        let writer = listed(Some("arn:aws:iam::123456789012:role/network-ci"));
        assert_eq!(writer.status, Status::Ok, "{writer:?}");
        assert!(writer.detail.contains("role arn:aws:iam::123456789012:role/network-ci (backend.hcl's assume_role) is a writer"), "{writer:?}");
        let reader = listed(Some("arn:aws:iam::123456789012:role/terraform-plan"));
        assert_eq!(reader.status, Status::Warn, "{reader:?}");
        let stranger = listed(Some("arn:aws:iam::123456789012:role/someone-else"));
        assert_eq!(stranger.status, Status::Fail, "{stranger:?}");
        assert_eq!(
            stranger.fix.as_deref(),
            Some(
                "add `someone-else` to `stacks.network.access.roles` in environments/central.yaml"
            )
        );
    }
}
