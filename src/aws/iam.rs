//! IAM: checking that the principals a policy names exist (S3 itself only answers "Invalid
//! principal in policy"), learning their real ARNs (a role's path is part of its ARN), and
//! reading and writing the inline identity policy `attach_identity_policy` manages.

use futures::future::join_all;

use super::errors::{AwsError, codes};
use super::{Clients, Lookups};
use crate::access::PrincipalArns;
use crate::policy::PolicyDocument;
use crate::spec::{AccountId, EnvSpec, IamArn, PrincipalKind, PrincipalRef};

/// IAM's user and role APIs are twins (`GetUserPolicy` / `GetRolePolicy`, …) that differ only
/// in the operation and in naming the principal by `UserName` or `RoleName`. This sends the
/// twin for `$kind` with the same further parameters and reads its answer with `$read` (or
/// with one reader each, where the answers name their entity differently). The answer is a
/// `Result<_, Failure>`.
macro_rules! user_or_role {
    ($kind:expr, $iam:expr, $who:expr, $user_operation:ident | $role_operation:ident
        $(, $parameter:ident($value:expr))* => $read:expr) => {
        $crate::aws::iam::user_or_role!($kind, $iam, $who, $user_operation | $role_operation
            $(, $parameter($value))* => $read, $read)
    };
    ($kind:expr, $iam:expr, $who:expr, $user_operation:ident | $role_operation:ident
        $(, $parameter:ident($value:expr))* => $read_user:expr, $read_role:expr) => {
        match $kind {
            $crate::spec::PrincipalKind::User => $iam
                .$user_operation()
                .user_name($who)
                $(.$parameter($value))*
                .send()
                .await
                .map($read_user)
                .map_err(|error| $crate::aws::errors::Failure::from_sdk(&error)),
            $crate::spec::PrincipalKind::Role => $iam
                .$role_operation()
                .role_name($who)
                $(.$parameter($value))*
                .send()
                .await
                .map($read_role)
                .map_err(|error| $crate::aws::errors::Failure::from_sdk(&error)),
        }
    };
}
pub(super) use user_or_role;

/// The spec's principals with the ARNs IAM reports. Principals in other accounts cannot be
/// looked up from here and are kept as written. Every missing principal is named at once.
pub async fn verify_principals(
    clients: &Clients,
    spec: &EnvSpec,
    account: &AccountId,
    lookups: &Lookups,
) -> Result<PrincipalArns, AwsError> {
    let partition = spec.region.partition();
    let all = spec.all_principals();
    let lookups = all.iter().map(|principal| async move {
        let assumed = principal.resolve(partition, account);
        if assumed.account != *account {
            return (principal, Ok(Some(assumed)));
        }
        (principal, lookups.principal(clients, &assumed).await)
    });
    let answers = join_all(lookups).await;
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for (principal, answer) in answers {
        match answer? {
            Some(arn) => found.push(((*principal).clone(), arn)),
            None => missing.push(format!("IAM {} `{}`", principal.kind(), principal)),
        }
    }
    if !missing.is_empty() {
        return Err(AwsError::new(
            format!("checking the principals of {}", spec.source),
            format!("{} not exist in account {account}", if missing.len() == 1 { format!("{} does", missing[0]) } else { format!("{} do", missing.join(", ")) }),
            Some("create them first, or correct `access.users` / `access.roles`; S3 would refuse the policy with only \"Invalid principal in policy\"".into()),
        ));
    }
    Ok(PrincipalArns::resolved_with(spec, |principal| {
        found
            .iter()
            .find(|(candidate, _)| candidate == principal)
            .map(|(_, arn)| arn.clone())
            .unwrap_or_else(|| principal.resolve(partition, account))
    }))
}

/// `Ok(None)` when IAM says the user or role does not exist.
pub(super) async fn lookup(clients: &Clients, arn: &IamArn) -> Result<Option<IamArn>, AwsError> {
    let name = arn.name();
    let answer = user_or_role!(arn.kind, clients.iam, name, get_user | get_role
        => |output| output.user().map(|user| user.arn().to_owned()),
           |output| output.role().map(|role| role.arn().to_owned()));
    let doing = match arn.kind {
        PrincipalKind::User => format!("looking up IAM user `{name}` (iam:GetUser)"),
        PrincipalKind::Role => format!("looking up IAM role `{name}` (iam:GetRole)"),
    };
    match answer {
        Ok(Some(text)) => Ok(Some(
            PrincipalRef::parse(&text, arn.kind)
                .ok()
                .and_then(|principal| match principal {
                    PrincipalRef::Arn { arn, .. } => Some(arn),
                    PrincipalRef::Name { .. } => None,
                })
                .unwrap_or_else(|| arn.clone()),
        )),
        Ok(None) => Ok(Some(arn.clone())),
        Err(failure) if failure.is(codes::IAM_NO_SUCH_ENTITY) => Ok(None),
        Err(failure) => Err(failure.into_error(doing, clients)),
    }
}

/// The inline policy `name` of a user or role in this account, decoded; `None` when absent.
pub async fn read_inline_policy(
    clients: &Clients,
    principal: &IamArn,
    name: &str,
) -> Result<Option<String>, AwsError> {
    let who = principal.name();
    let answer = user_or_role!(principal.kind, clients.iam, who,
        get_user_policy | get_role_policy, policy_name(name)
        => |output| output.policy_document().to_owned());
    match answer {
        // IAM returns policy documents URL-encoded (RFC 3986).
        Ok(document) => Ok(Some(percent_decode(&document))),
        Err(failure) if failure.is(codes::IAM_NO_SUCH_ENTITY) => Ok(None),
        Err(failure) => Err(failure.into_error(
            format!("reading inline policy `{name}` of {principal}"),
            clients,
        )),
    }
}

pub async fn write_inline_policy(
    clients: &Clients,
    principal: &IamArn,
    name: &str,
    document: &PolicyDocument,
) -> Result<(), AwsError> {
    let who = principal.name();
    // Compact: IAM counts the characters against its quota.
    let document = document.to_compact_json();
    let result = user_or_role!(principal.kind, clients.iam, who,
        put_user_policy | put_role_policy, policy_name(name), policy_document(&document) => drop);
    result.map_err(|failure| {
        failure.into_error(
            format!("attaching inline policy `{name}` to {principal}"),
            clients,
        )
    })
}

pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[index + 1]), hex(bytes[index + 2]))
        {
            out.push((high * 16 + low) as u8);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn iam_documents_are_percent_decoded() {
        assert_eq!(
            super::percent_decode("%7B%22Version%22%3A%222012-10-17%22%7D"),
            "{\"Version\":\"2012-10-17\"}"
        );
        assert_eq!(super::percent_decode("{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(super::percent_decode("100%"), "100%");
    }
}
