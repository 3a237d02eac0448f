//! The checks that need files and AWS: resolving the identity the backend will use, reading
//! the live policy, and probing as that identity exactly what Terraform does.

use std::path::Path;
use std::sync::Arc;

use super::{Check, CredentialSource, Status, provider_traps, session_request};
use crate::aws::probe::{self, KmsRefusal, Leftovers, LockEncryption};
use crate::aws::{self, Clients, RequestLog};
use crate::desired::{DesiredBucket, DesiredStack};
use crate::engine::Connection;
use crate::policy::evaluate::{Caller, CallerKind, allowed_by, explicit_deny};
use crate::policy::{PolicyDocument, StateArns, bucket_arn};
use crate::project::local_state_note;
use crate::render::{BackendConfig, KmsKeyId, parse_backend_hcl};
use crate::spec::{
    BackendCredentials, EndpointUrl, EnvSpec, Layout, ProfileName, Region, StackSpec, StoreFeature,
};

/// Where probe lock objects live: a workspace of their own (see `lock_probe`).
const PROBE_WORKSPACE_PREFIX: &str = "statebucket-doctor-";

/// Every check for one stack's backend.hcl, as the identity that file makes Terraform use.
pub async fn diagnose(
    desired: &DesiredBucket<'_>,
    stack: &DesiredStack<'_>,
    connection: &Connection,
    log: &Arc<RequestLog>,
    terraform_dir: Option<&Path>,
    leftovers: &Leftovers,
) -> Vec<Check> {
    let spec = desired.spec;
    let file = &stack.spec.file;
    let mut checks = Vec::new();

    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            checks.push(
                Check::new(
                    "backend file",
                    Status::Fail,
                    format!("cannot read {file}: {error}"),
                )
                .fix("run `statebucket apply` (or `statebucket render`) to write it"),
            );
            return checks;
        }
    };
    let config = match parse_backend_hcl(&text) {
        Ok(config) => config,
        Err((line, message)) => {
            checks.push(
                Check::new(
                    "backend file",
                    Status::Fail,
                    format!("{file}:{line}: {message}"),
                )
                .fix("rewrite it with `statebucket apply`"),
            );
            return checks;
        }
    };
    checks.push(backend_file_check(desired, stack, &text, &config));

    let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|value| !value.is_empty());
    let aws_profile = std::env::var("AWS_PROFILE").ok();
    let source = CredentialSource::resolve(&config, env_keys, aws_profile.as_deref());
    checks.push(profile_check(stack, &config, &source));
    let spec_dir = stack.spec.terraform_dir.as_deref().map(Path::new);
    if let Some(directory) = terraform_dir.or(spec_dir) {
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
        .or_else(|| connection.endpoint(spec));
    let session = Session {
        region: &region,
        endpoint: endpoint.as_ref(),
        connection,
        log,
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
        checks.push(Check::new(
            "identity",
            Status::Skip,
            format!("the backend would use {via}; the store has no STS (`compat.lacks`) to say who that is"),
        ));
        checks.extend(probes(spec, stack.spec, &config, &clients, leftovers).await);
        return checks;
    }
    let identity = match aws::caller_identity(&clients).await {
        Ok(identity) => identity,
        Err(error) => {
            let fix = match (&source, stack.profile) {
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
            checks.push(
                Check::new(
                    "identity",
                    Status::Fail,
                    format!("the backend would use {via}, but: {}", error.cause),
                )
                .fix(fix),
            );
            return checks;
        }
    };
    checks.push(Check::new(
        "identity",
        Status::Ok,
        format!(
            "{} (account {}), from {via}",
            identity.arn, identity.account
        ),
    ));
    let allowed_accounts = config.list("allowed_account_ids");
    if !allowed_accounts.is_empty() && !allowed_accounts.contains(&identity.account) {
        checks.push(
            Check::new(
                "account",
                Status::Fail,
                format!("account {} is not in allowed_account_ids {:?}; Terraform will refuse it", identity.account, allowed_accounts),
            )
            .fix("use credentials of the allowed account: set `profile` in backend.hcl, or fix AWS_PROFILE / AWS_ACCESS_KEY_ID"),
        );
    }

    let caller = Caller::parse(&identity.arn);
    if let Some(caller) = &caller {
        checks.push(listed_check(spec, stack, caller));
        checks.push(
            live_policy_check(spec, stack.spec, caller, connection, log, endpoint.as_ref()).await,
        );
    }
    checks.extend(probes(spec, stack.spec, &config, &clients, leftovers).await);
    checks.extend(replication_checks(spec, stack.spec, connection, log, endpoint.as_ref()).await);
    checks
}

/// For a failover file: statebucket's rule on the primary, the role S3 assumes, and whether
/// the current state has reached the replica, read as statebucket's own identity (Terraform's
/// needs none of these permissions).
async fn replication_checks(
    spec: &EnvSpec,
    stack: &StackSpec,
    connection: &Connection,
    log: &Arc<RequestLog>,
    endpoint: Option<&EndpointUrl>,
) -> Vec<Check> {
    let Some(primary) = &spec.replica_of else {
        return Vec::new();
    };
    let profile = connection.tool_profile(spec);
    let timeout = connection.attempt_timeout;
    let (on_primary, on_replica) = tokio::join!(
        aws::clients(profile, &primary.region, endpoint, timeout, log),
        aws::clients(profile, &spec.region, endpoint, timeout, log),
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
fn backend_file_check(
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
        differences.push(format!(
            "missing {}",
            missing
                .iter()
                .map(|line| format!("`{}`", line.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !extra.is_empty() {
        differences.push(format!(
            "not from the spec {}",
            extra
                .iter()
                .map(|line| format!("`{}`", line.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
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

/// Where and how the probes reach AWS.
struct Session<'a> {
    region: &'a Region,
    endpoint: Option<&'a EndpointUrl>,
    connection: &'a Connection,
    log: &'a Arc<RequestLog>,
}

/// Clients with the credentials Terraform's backend would have for `config`, resolved in
/// its order: a web identity replaces every other source; `assume_role` goes on top. A
/// failure is the check to report.
async fn backend_clients(
    session: &Session<'_>,
    config: &BackendConfig,
    source: &CredentialSource,
) -> Result<Clients, Box<Check>> {
    let timeout = session.connection.attempt_timeout;
    let base = match source {
        CredentialSource::WebIdentity { token_file, .. } => {
            let request = session_request(config, "assume_role_with_web_identity")
                .expect("a web identity source has a role");
            let token = std::fs::read_to_string(token_file).map_err(|error| {
                Box::new(
                    Check::new(
                        "identity",
                        Status::Fail,
                        format!("the backend would use {source}, but the token file cannot be read: {error}"),
                    )
                    .fix("CI must write the OIDC token to that file before `terraform init` (see docs/github-actions.yml)"),
                )
            })?;
            let anonymous =
                aws::anonymous_clients(session.region, session.endpoint, timeout, session.log)
                    .await;
            let credentials = aws::session::web_identity(&anonymous, &request, &token)
                .await
                .map_err(|error| {
                    Box::new(
                        Check::new(
                            "identity",
                            Status::Fail,
                            format!("the backend would use {source}, but: {}", error.cause),
                        )
                        .fix("the role's trust policy must allow sts:AssumeRoleWithWebIdentity for this token's issuer, audience and subject"),
                    )
                })?;
            aws::session_clients(
                credentials,
                format!("web identity role `{}`", request.role_arn),
                session.region,
                session.endpoint,
                timeout,
                session.log,
            )
            .await
        }
        _ => {
            let profile = source
                .profile()
                .and_then(|profile| ProfileName::parse(profile).ok());
            aws::clients(
                profile.as_ref(),
                session.region,
                session.endpoint,
                timeout,
                session.log,
            )
            .await
        }
    };
    let Some(request) = session_request(config, "assume_role") else {
        return Ok(base);
    };
    let credentials = aws::session::assume_role(&base, &request)
        .await
        .map_err(|error| {
            Box::new(
                Check::new(
                    "identity",
                    Status::Fail,
                    format!(
                        "the backend would assume `{}` from {source}, but: {}",
                        request.role_arn, error.cause
                    ),
                )
                .fix("the role's trust policy must allow sts:AssumeRole for the base identity (and its external id, if it sets one)"),
            )
        })?;
    Ok(aws::session_clients(
        credentials,
        format!("role `{}` assumed from {source}", request.role_arn),
        session.region,
        session.endpoint,
        timeout,
        session.log,
    )
    .await)
}

fn profile_check(
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
fn web_identity_check(
    stack: &DesiredStack<'_>,
    config: &BackendConfig,
    source: &CredentialSource,
) -> Check {
    let BackendCredentials::WebIdentity(web) = &stack.spec.credentials else {
        unreachable!("a stack without a profile has a web identity");
    };
    match source {
        CredentialSource::WebIdentity { role_arn, .. } if role_arn == web.role_arn.as_str() => {
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
                web.role_arn,
                if config.string("profile").is_some() { "" } else { " (backend.hcl has no assume_role_with_web_identity)" }
            ),
        )
        .fix("run `statebucket apply` (or `statebucket render`) to rewrite backend.hcl from the spec"),
    }
}

fn provider_checks(directory: &Path, config: &BackendConfig) -> Vec<Check> {
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

fn listed_check(spec: &EnvSpec, stack: &DesiredStack<'_>, caller: &Caller) -> Check {
    // Names resolve in the spec's account, or without one in the caller's.
    let account = spec
        .account_id
        .clone()
        .or_else(|| crate::spec::AccountId::parse(&caller.account).ok());
    let named = |list: &[crate::spec::PrincipalRef]| {
        account.as_ref().is_some_and(|account| {
            list.iter().any(|principal| {
                caller.is_named_by(
                    &principal
                        .resolve(spec.region.partition(), account)
                        .to_string(),
                )
            })
        })
    };
    let (writers, readers) = (spec.writers_of(stack.spec), spec.readers_of(stack.spec));
    let whose = match spec.layout {
        Layout::Backend => spec.source.clone(),
        Layout::Stacks => format!("stack `{}` of {}", stack.spec.name, spec.source),
    };
    if named(writers) {
        return Check::new(
            "listed in access",
            Status::Ok,
            format!("{} is a writer of {whose}", caller.arn),
        );
    }
    if named(readers) {
        return Check::new(
            "listed in access",
            Status::Warn,
            format!(
                "{} is a reader of {whose}: `terraform plan` works, `terraform apply` will be denied",
                caller.arn
            ),
        )
        .fix("run `terraform apply` as one of the stack's writers");
    }
    let list = match (spec.layout, stack.spec.writers.is_some()) {
        (Layout::Stacks, true) => format!("stacks.{}.access", stack.spec.name),
        _ => "access".to_owned(),
    };
    let fix = match &caller.kind {
        CallerKind::User { path_and_name } => format!(
            "add `{}` to `{list}.users` in {}",
            path_and_name.rsplit('/').next().unwrap_or(path_and_name),
            spec.source
        ),
        CallerKind::AssumedRole { role, .. } => {
            format!("add `{role}` to `{list}.roles` in {}", spec.source)
        }
        _ => format!("run Terraform as a user or role listed in {}", spec.source),
    };
    Check::new(
        "listed in access",
        Status::Fail,
        format!(
            "{} is not among the users and roles of {whose}; the bucket policy grants it nothing",
            caller.arn
        ),
    )
    .fix(fix)
}

/// Reads the live policy with statebucket's own identity (Terraform's may not be allowed to).
async fn live_policy_check(
    spec: &EnvSpec,
    stack: &StackSpec,
    caller: &Caller,
    connection: &Connection,
    log: &Arc<RequestLog>,
    endpoint: Option<&EndpointUrl>,
) -> Check {
    let tool = aws::clients(
        connection.tool_profile(spec),
        &spec.region,
        endpoint,
        connection.attempt_timeout,
        log,
    )
    .await;
    let policy = match probe::bucket_policy(&tool, spec.bucket.name.as_str()).await {
        Ok(policy) => policy,
        Err(cause) => {
            return Check::new(
                "bucket policy",
                Status::Skip,
                format!(
                    "could not read the bucket policy as {}: {cause}",
                    tool.identity_source
                ),
            );
        }
    };
    let Some(document) = policy
        .as_deref()
        .and_then(|text| PolicyDocument::parse(text).ok())
    else {
        return Check::new(
            "bucket policy",
            Status::Warn,
            "the bucket has no readable policy; access depends on identity policies alone",
        )
        .fix("run `statebucket apply`");
    };
    let bucket_arn = bucket_arn(spec.region.partition(), &spec.bucket.name);
    let state = StateArns::of(&bucket_arn, stack).state;
    for (action, resource) in [
        ("s3:ListBucket", bucket_arn.as_str()),
        ("s3:GetObject", state.as_str()),
        ("s3:PutObject", state.as_str()),
    ] {
        if let Some(denial) = explicit_deny(&document, caller, action, resource) {
            return Check::new(
                "bucket policy",
                Status::Fail,
                format!(
                    "statement `{}` {} {} {action} on {resource}",
                    denial.sid,
                    if denial.certain { "denies" } else { "may deny" },
                    caller.arn
                ),
            )
            .fix(format!(
                "list {} in `access` (or fix the statement) and run `statebucket apply`",
                caller.arn
            ));
        }
    }
    match allowed_by(&document, caller, "s3:GetObject", &state) {
        Some(sid) => Check::new(
            "bucket policy",
            Status::Ok,
            format!("statement `{sid}` allows {} to read the state", caller.arn),
        ),
        None => Check::new(
            "bucket policy",
            Status::Warn,
            format!(
                "no statement allows {} to read the state; it needs an identity policy (statebucket policy {} --identity{})",
                caller.arn,
                spec.name,
                stack_flag(spec, stack)
            ),
        ),
    }
}

/// ` --stack NAME` for a spec with stacks, nothing for the `backend:` layout.
fn stack_flag(spec: &EnvSpec, stack: &StackSpec) -> String {
    match spec.layout {
        Layout::Backend => String::new(),
        Layout::Stacks => format!(" --stack {}", stack.name),
    }
}

/// What Terraform does at init and apply, as the backend's identity.
async fn probes(
    spec: &EnvSpec,
    stack: &StackSpec,
    config: &BackendConfig,
    clients: &Clients,
    leftovers: &Leftovers,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let bucket = config
        .string("bucket")
        .unwrap_or(spec.bucket.name.as_str())
        .to_owned();
    let key = config
        .string("key")
        .unwrap_or(stack.key.as_str())
        .to_owned();
    let prefix = config
        .string("workspace_key_prefix")
        .unwrap_or("env:")
        .to_owned();
    let bucket_arn = format!("arn:{}:s3:::{bucket}", spec.region.partition());
    let workspace_root = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };

    let listed = format!("ListObjectsV2 s3://{bucket}/{workspace_root}");
    checks.push(match probe::list(clients, &bucket, &workspace_root).await {
        Ok(()) => Check::new("list workspaces", Status::Ok, listed),
        Err(refusal) => {
            // Terraform ignores a refused listing of the default prefix only.
            let status = if prefix == "env:" {
                Status::Warn
            } else {
                Status::Fail
            };
            Check::new("list workspaces", status, format!("{listed}: {refusal}"))
                .fix(format!("grant s3:ListBucket on {bucket_arn}"))
        }
    });

    let state = format!("s3://{bucket}/{key}");
    let exists = match probe::head(clients, &bucket, &key).await {
        Ok(Some(size)) => {
            checks.push(Check::new(
                "read state",
                Status::Ok,
                format!("HeadObject {state}: {size} bytes"),
            ));
            true
        }
        Ok(None) => {
            checks.push(Check::new(
                "read state",
                Status::Ok,
                format!("HeadObject {state}: no state yet (404), as before a first init"),
            ));
            false
        }
        Err(refusal) => {
            checks.push(
                Check::new("read state", Status::Fail, format!("HeadObject {state}: {refusal}"))
                    .fix(format!("grant s3:GetObject on {bucket_arn}/{key} and s3:ListBucket on {bucket_arn} (without ListBucket S3 answers 403 for a missing key)")),
            );
            false
        }
    };
    if exists {
        checks.push(match probe::get(clients, &bucket, &key).await {
            Ok(()) => Check::new("get state", Status::Ok, format!("GetObject {state}")),
            Err(refusal) => Check::new("get state", Status::Fail, format!("GetObject {state}: {refusal}"))
                .fix(format!("grant s3:GetObject on {bucket_arn}/{key} (and kms:Decrypt on the key when it is encrypted with KMS)")),
        });
    }

    // Only the locks backend.hcl configures are probed: with `dynamodb_table` alone,
    // Terraform never touches a `.tflock` object.
    if config.flag("use_lockfile") {
        checks.extend(
            lock_probe(
                clients,
                config,
                &bucket,
                &key,
                &workspace_root,
                &bucket_arn,
                leftovers,
            )
            .await,
        );
    }
    if let Some(table) = config.string("dynamodb_table") {
        checks.push(lock_table_probe(clients, spec, stack, table, &bucket, &key).await);
    }
    if !config.flag("use_lockfile") && config.string("dynamodb_table").is_none() {
        checks.push(
            Check::new(
                "locking",
                Status::Warn,
                "backend.hcl sets neither `use_lockfile` nor `dynamodb_table`: Terraform runs take no lock, so two at once can overwrite each other's state",
            )
            .fix("regenerate backend.hcl with `statebucket render` or `statebucket apply`"),
        );
    }
    if let Some(key_id) = config
        .string("kms_key_id")
        .filter(|_| config.flag("encrypt"))
    {
        checks.push(kms_probe(clients, key_id).await);
        checks.push(Check::new(
            "kms audit",
            Status::Ok,
            format!(
                "who decrypted this state: {}",
                crate::migration::kms_audit_command(key_id, spec.region.as_str())
            ),
        ));
    }
    checks
}

/// Takes and releases a lock as Terraform does, on a probe object under a workspace of its
/// own, so the grants Terraform's documentation lists for workspaces (`<prefix>/*/<key>.tflock`)
/// cover it and the real lock is never touched.
async fn lock_probe(
    clients: &Clients,
    config: &BackendConfig,
    bucket: &str,
    key: &str,
    workspace_root: &str,
    bucket_arn: &str,
    leftovers: &Leftovers,
) -> Vec<Check> {
    let encryption = match (config.flag("encrypt"), config.string("kms_key_id")) {
        (false, _) => LockEncryption::None,
        (true, None) => LockEncryption::Aes256,
        (true, Some(key_id)) => LockEncryption::Kms(key_id.to_owned()),
    };
    let prefix = format!("{workspace_root}{PROBE_WORKSPACE_PREFIX}");
    let lock_grant =
        format!("{bucket_arn}/{key}.tflock and {bucket_arn}/{workspace_root}*/{key}.tflock");
    // Terraform sends a SHA-256 checksum with every PutObject unless skip_s3_checksum.
    let skip_checksum = config.flag("skip_s3_checksum");
    let mut probe = probe::lock(
        clients,
        bucket,
        &prefix,
        key,
        &encryption,
        !skip_checksum,
        leftovers,
    )
    .await;
    let mut checks = Vec::new();
    if skip_checksum {
        checks.push(Check::new(
            "checksum",
            Status::Skip,
            "skip_s3_checksum = true: Terraform sends no checksum headers",
        ));
    } else if probe.taken.is_err() {
        // Refused with the checksum: is it the checksum the store rejects?
        let plain = probe::lock(clients, bucket, &prefix, key, &encryption, false, leftovers).await;
        if plain.taken.is_ok() {
            let refusal = probe
                .taken
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            checks.push(
                Check::new(
                    "checksum",
                    Status::Fail,
                    format!("the store refuses the SHA-256 checksum header Terraform sends with every PutObject ({refusal}), and accepts the same request without it"),
                )
                .fix("set `compat: { skip_s3_checksum: true }` in the spec and run `statebucket apply` (backend.hcl gets `skip_s3_checksum = true`)"),
            );
            probe = plain;
        }
    } else {
        checks.push(Check::new(
            "checksum",
            Status::Ok,
            "the store accepts the SHA-256 checksum header (x-amz-checksum-sha256) Terraform sends",
        ));
    }
    match &probe.taken {
        Ok(()) => checks.push(Check::new("take lock", Status::Ok, format!("conditional PutObject (If-None-Match: *) of a probe lock under s3://{bucket}/{workspace_root}"))),
        Err(refusal) => {
            checks.push(
                Check::new("take lock", Status::Fail, format!("conditional PutObject of a probe lock: {refusal}"))
                    .fix(format!("grant s3:PutObject on {lock_grant} (and kms:GenerateDataKey on the key when state is encrypted with KMS)")),
            );
            return checks;
        }
    }
    match &probe.released {
        Some(Ok(())) => checks.push(Check::new("release lock", Status::Ok, "DeleteObject of the probe lock; nothing left behind")),
        Some(Err(refusal)) => checks.push(
            Check::new("release lock", Status::Fail, format!("DeleteObject of the probe lock s3://{bucket}/{}: {refusal}", probe.key))
                .fix(format!("grant s3:DeleteObject on {lock_grant}: Terraform deletes the lock file to release the lock")),
        ),
        None => {}
    }
    checks
}

/// Reads the state digest item, as Terraform does first whenever `dynamodb_table` is set.
/// Read-only: PutItem/DeleteItem are not probed, since a probe item could outlive a killed
/// run where nothing may list it.
async fn lock_table_probe(
    clients: &Clients,
    spec: &EnvSpec,
    stack: &StackSpec,
    table: &str,
    bucket: &str,
    key: &str,
) -> Check {
    let digest = format!("{bucket}/{key}-md5");
    match probe::lock_table_item(clients, table, &digest).await {
        Ok(()) => Check::new(
            "lock table",
            Status::Ok,
            format!("GetItem {digest} in DynamoDB table {table} (PutItem/DeleteItem not probed)"),
        ),
        Err(refusal) => Check::new(
            "lock table",
            Status::Fail,
            format!("GetItem {digest} in DynamoDB table {table}: {refusal}"),
        )
        .fix(format!(
            "grant dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem on the table (`statebucket policy {} --identity{}` prints the policy), or run `statebucket apply` if the table does not exist",
            spec.name,
            stack_flag(spec, stack)
        )),
    }
}

async fn kms_probe(clients: &Clients, key_id: &str) -> Check {
    match probe::kms_round_trip(clients, key_id).await {
        Ok(()) => Check::new(
            "kms key",
            Status::Ok,
            format!("GenerateDataKey and Decrypt with {key_id}"),
        ),
        Err(KmsRefusal::GenerateDataKey(refusal)) => Check::new(
            "kms key",
            Status::Fail,
            format!("GenerateDataKey with {key_id}: {refusal}"),
        )
        .fix(format!(
            "grant kms:GenerateDataKey and kms:Decrypt on {key_id}"
        )),
        Err(KmsRefusal::Decrypt(refusal)) => Check::new(
            "kms key",
            Status::Fail,
            format!("Decrypt with {key_id}: {refusal}"),
        )
        .fix(format!("grant kms:Decrypt on {key_id}")),
    }
}
