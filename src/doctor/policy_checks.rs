//! Checks of the live bucket policy: is Terraform's identity listed, does the policy as it
//! is in AWS allow it, does a statement deny it.

use super::run::DoctorRun;
use super::{Check, Status};
use crate::access::Tier;
use crate::aws::profiles::ProfileKind;
use crate::desired::{DesiredStack, tier_among};
use crate::policy::evaluate::{Caller, CallerKind, Request, allowed_by, explicit_deny};
use crate::policy::{PolicyDocument, StateArns, bucket_arn};
use crate::spec::{EndpointUrl, EnvSpec, Layout, PrincipalKind, StackSpec};

/// Whose principals a stack's state has: the spec's, or with stacks, the stack's.
fn whose_principals(spec: &EnvSpec, stack: &DesiredStack<'_>) -> String {
    match spec.layout {
        Layout::Backend => spec.source.clone(),
        Layout::Stacks => format!("stack `{}` of {}", stack.spec.name, spec.source),
    }
}

/// Where the stack's principals are listed: `access`, or the stack's own.
fn access_key_of(spec: &EnvSpec, stack: &DesiredStack<'_>) -> String {
    match (spec.layout, stack.spec.writers.is_some()) {
        (Layout::Stacks, true) => format!("stacks.{}.access", stack.spec.name),
        _ => "access".to_owned(),
    }
}

/// Without STS the store cannot say who Terraform is, but the profile's files tell what kind
/// of identity it is: a user's keys (or a role's sessions) against a stack whose principals
/// are all of the other kind get nothing from the bucket policy, as in the seed incident.
pub(super) fn listed_kind_check(
    spec: &EnvSpec,
    stack: &DesiredStack<'_>,
    profile: &str,
    kind: ProfileKind,
) -> Option<Check> {
    let principals: Vec<&crate::spec::PrincipalRef> = spec
        .writers_of(stack.spec)
        .iter()
        .chain(spec.readers_of(stack.spec))
        .collect();
    let (wanted, other, noun, field) = match kind {
        ProfileKind::UserKeys => (
            PrincipalKind::User,
            PrincipalKind::Role,
            "an IAM user's access keys",
            "users",
        ),
        ProfileKind::Role => (
            PrincipalKind::Role,
            PrincipalKind::User,
            "a role's sessions",
            "roles",
        ),
        ProfileKind::Unknown => return None,
    };
    if principals
        .iter()
        .any(|principal| principal.kind() == wanted)
    {
        return None;
    }
    let others: Vec<String> = principals
        .iter()
        .filter(|principal| principal.kind() == other)
        .map(|principal| principal.to_string())
        .collect();
    let whose = whose_principals(spec, stack);
    let list = access_key_of(spec, stack);
    Some(
        Check::new(
            "listed in access",
            Status::Fail,
            format!(
                "profile `{profile}` holds {noun}, but {whose} lists none (only {}): the bucket policy grants that identity nothing",
                if others.is_empty() { "nobody".to_owned() } else { others.join(", ") }
            ),
        )
        .fix(format!(
            "add the {} behind profile `{profile}` to `{list}.{field}` in {} (the store has no STS to tell its name)",
            if field == "users" { "user" } else { "role" },
            spec.source
        )),
    )
}

/// Whether `caller` is a writer or a reader of the stack; `who` names it in the messages
/// (its ARN, or the role backend.hcl assumes when the store has no STS to say).
pub(super) fn listed_check(
    spec: &EnvSpec,
    stack: &DesiredStack<'_>,
    caller: &Caller,
    who: &str,
) -> Check {
    // Names resolve in the spec's account, or without one in the caller's.
    let account = spec
        .account_id
        .clone()
        .or_else(|| crate::spec::AccountId::parse(&caller.account).ok());
    let resolved = |list: &[crate::spec::PrincipalRef]| -> Vec<crate::spec::IamArn> {
        let Some(account) = &account else {
            return Vec::new();
        };
        list.iter()
            .map(|principal| principal.resolve(spec.region.partition(), account))
            .collect()
    };
    let tier = tier_among(
        &resolved(spec.writers_of(stack.spec)),
        &resolved(spec.readers_of(stack.spec)),
        caller,
    );
    let whose = whose_principals(spec, stack);
    if tier == Some(Tier::Writer) {
        return Check::new(
            "listed in access",
            Status::Ok,
            format!("{who} is a writer of {whose}"),
        );
    }
    if tier == Some(Tier::Reader) {
        return Check::new(
            "listed in access",
            Status::Warn,
            format!(
                "{who} is a reader of {whose}: `terraform plan` works, `terraform apply` will be denied"
            ),
        )
        .fix("run `terraform apply` as one of the stack's writers");
    }
    let list = access_key_of(spec, stack);
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
            "{who} is not among the users and roles of {whose}; the bucket policy grants it nothing"
        ),
    )
    .fix(fix)
}

/// Reads the live policy with statebucket's own identity (Terraform's may not be allowed to).
pub(super) async fn live_policy_check(
    spec: &EnvSpec,
    stack: &StackSpec,
    caller: &Caller,
    run: &DoctorRun<'_>,
    endpoint: Option<&EndpointUrl>,
) -> Check {
    let tool = run
        .lookups
        .clients(
            run.connection.tool_profile(spec),
            &spec.region,
            run.connection.transport_to(endpoint, run.log),
        )
        .await;
    let policy = match run
        .live_policy(&tool, spec.bucket.name.as_str(), endpoint)
        .await
    {
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
        if let Some(denial) = explicit_deny(&document, &Request::new(caller, action, resource)) {
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
    match allowed_by(&document, &Request::new(caller, "s3:GetObject", &state)) {
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
pub(super) fn stack_flag(spec: &EnvSpec, stack: &StackSpec) -> String {
    match spec.layout {
        Layout::Backend => String::new(),
        Layout::Stacks => format!(" --stack {}", stack.name),
    }
}
