//! Who can: the principals the bucket policy and the key policy, as they are in AWS now,
//! let read, write or decrypt a stack's state, each with the statement that lets it, and
//! whether the spec lists it.

use serde::Serialize;
use serde_json::Value;

use crate::policy::evaluate::{
    Caller, CallerKind, Request, certainly_denied, grant, statements_of,
};
use crate::policy::{PolicyDocument, strings};

/// What one principal may do to one stack's state, and which statement says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// An ARN as the policy names it, or `*` (anyone).
    pub principal: String,
    pub read: Option<String>,
    pub write: Option<String>,
    /// Through S3, with the state's KMS key; `None` for AES256 state.
    pub decrypt: Option<String>,
    /// The spec lists it among the stack's writers or readers.
    pub listed: bool,
}

/// A statement that hands the decision to the IAM policies of an account (a principal that
/// is the account's root): any identity of that account whose IAM policy allows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delegation {
    pub policy: &'static str,
    pub sid: String,
    pub account: String,
}

/// An identity of the account with the documents of its IAM policies (inline and
/// attached), each with a name to say where a grant comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityPolicies {
    /// The user's or role's ARN.
    pub principal: String,
    pub documents: Vec<(String, PolicyDocument)>,
}

/// One stack's state as the policies see it.
pub struct StateObject<'a> {
    pub state_arn: &'a str,
    /// The state's KMS key and the `kms:ViaService` S3 calls it with; `None` for AES256.
    pub key: Option<(&'a str, &'a str)>,
}

/// The principals that may read, write or decrypt `object`, most exposed first: every
/// principal the policies name, and anyone (`*`) when a statement allows everyone.
/// `listed` are the ARNs the spec names for the stack.
pub fn who_can(
    bucket_policy: Option<&PolicyDocument>,
    key_policy: Option<&PolicyDocument>,
    object: &StateObject<'_>,
    listed: &[String],
) -> Vec<Access> {
    let mut candidates: Vec<String> = [bucket_policy, key_policy]
        .into_iter()
        .flatten()
        .flat_map(named_principals)
        .filter(|principal| !is_account(principal))
        .collect();
    candidates.sort();
    candidates.dedup();
    let direct_bucket = bucket_policy.map(without_delegations);
    let direct_key = key_policy.map(without_delegations);
    let mut found: Vec<Access> = candidates
        .into_iter()
        .filter_map(|principal| {
            let caller = caller_for(&principal)?;
            let s3 = |action| {
                direct_bucket.as_ref().and_then(|document| {
                    grant(document, &Request::new(&caller, action, object.state_arn))
                })
            };
            let decrypt = object.key.and_then(|(key_arn, via)| {
                direct_key.as_ref().and_then(|document| {
                    grant(
                        document,
                        &Request::new(&caller, "kms:Decrypt", key_arn)
                            .with_context(&[("kms:ViaService", via)]),
                    )
                })
            });
            let access = Access {
                listed: listed.iter().any(|arn| caller.is_named_by(arn)),
                read: s3("s3:GetObject"),
                write: s3("s3:PutObject"),
                decrypt,
                principal,
            };
            (access.read.is_some() || access.write.is_some() || access.decrypt.is_some())
                .then_some(access)
        })
        .collect();
    found.sort_by_key(|access| {
        (
            access.principal != "*",
            access.listed,
            access.principal.clone(),
        )
    });
    found
}

/// The identities of the account whose IAM policies let them read, write or decrypt
/// `object`, beyond what the bucket and key policies name: S3 lets an identity of the
/// bucket's account in on its IAM policy alone (no Deny in the bucket policy), KMS only when
/// the key policy hands the decision to IAM (`key_delegates`).
pub fn via_iam(
    identities: &[IdentityPolicies],
    bucket_policy: Option<&PolicyDocument>,
    key_policy: Option<&PolicyDocument>,
    key_delegates: bool,
    object: &StateObject<'_>,
    listed: &[String],
) -> Vec<Access> {
    let mut found: Vec<Access> = identities
        .iter()
        .filter_map(|identity| {
            let caller = caller_for(&identity.principal)?;
            let allowed = |action: &str, resource: &str, context: &[(&str, &str)]| {
                identity.documents.iter().find_map(|(name, document)| {
                    grant(
                        document,
                        &Request::new(&caller, action, resource).with_context(context),
                    )
                    .map(|sid| format!("IAM policy `{name}` ({sid})"))
                })
            };
            let not_denied = |document: Option<&PolicyDocument>,
                              action: &str,
                              resource: &str,
                              context: &[(&str, &str)]| {
                document.is_none_or(|document| {
                    !certainly_denied(
                        document,
                        &Request::new(&caller, action, resource).with_context(context),
                    )
                })
            };
            let s3 = |action| {
                allowed(action, object.state_arn, &[])
                    .filter(|_| not_denied(bucket_policy, action, object.state_arn, &[]))
            };
            let decrypt = object
                .key
                .filter(|_| key_delegates)
                .and_then(|(key_arn, via)| {
                    let context = [("kms:ViaService", via)];
                    allowed("kms:Decrypt", key_arn, &context)
                        .filter(|_| not_denied(key_policy, "kms:Decrypt", key_arn, &context))
                });
            let access = Access {
                listed: listed.iter().any(|arn| caller.is_named_by(arn)),
                read: s3("s3:GetObject"),
                write: s3("s3:PutObject"),
                decrypt,
                principal: identity.principal.clone(),
            };
            (access.read.is_some() || access.write.is_some() || access.decrypt.is_some())
                .then_some(access)
        })
        .collect();
    found.sort_by_key(|access| (access.listed, access.principal.clone()));
    found
}

/// The statements of both policies that let the IAM policies of an account decide.
pub fn delegations(
    bucket_policy: Option<&PolicyDocument>,
    key_policy: Option<&PolicyDocument>,
) -> Vec<Delegation> {
    let mut found = Vec::new();
    for (policy, document) in [("bucket policy", bucket_policy), ("key policy", key_policy)] {
        let Some(document) = document else { continue };
        for statement in statements_of(document, "Allow") {
            for principal in aws_principals(statement) {
                if is_account(&principal) {
                    found.push(Delegation {
                        policy,
                        sid: crate::policy::sid(statement)
                            .unwrap_or("(statement without Sid)")
                            .to_owned(),
                        account: account_of(&principal),
                    });
                }
            }
        }
    }
    found
}

/// `Principal: "*"`, and the `AWS` entries of `Principal`.
fn aws_principals(statement: &Value) -> Vec<String> {
    let principal = &statement["Principal"];
    let named = match principal {
        Value::String(_) => strings(principal),
        _ => strings(&principal["AWS"]),
    };
    named.map(str::to_owned).collect()
}

fn named_principals(document: &PolicyDocument) -> Vec<String> {
    statements_of(document, "Allow")
        .flat_map(aws_principals)
        .collect()
}

/// An account as a principal (`123456789012` or its root ARN): a delegation to IAM.
fn is_account(principal: &str) -> bool {
    (principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()))
        || principal.ends_with(":root")
}

fn account_of(principal: &str) -> String {
    principal.split(':').nth(4).unwrap_or(principal).to_owned()
}

/// The document with its account delegations dropped: what it grants by name.
fn without_delegations(document: &PolicyDocument) -> PolicyDocument {
    let statements = document
        .statements
        .iter()
        .filter(|statement| {
            statement.get("Effect").and_then(Value::as_str) != Some("Allow")
                || !aws_principals(statement).iter().all(|p| is_account(p))
        })
        .cloned()
        .collect();
    PolicyDocument {
        statements,
        ..document.clone()
    }
}

/// The caller a principal stands for: the user, a session of the role, or for `*` an
/// identity of no account the policies name.
fn caller_for(principal: &str) -> Option<Caller> {
    if principal == "*" {
        return Caller::parse("arn:aws:iam::000000000000:user/anyone-on-the-internet");
    }
    let caller = Caller::parse(principal)?;
    match &caller.kind {
        CallerKind::User { .. } | CallerKind::AssumedRole { .. } => Some(caller),
        CallerKind::Other => {
            // A role ARN: stand in a session of it.
            let (_, rest) = principal.split_once(":role/")?;
            let name = rest.rsplit('/').next()?;
            Caller::parse(&format!(
                "arn:{}:sts::{}:assumed-role/{name}/audit",
                caller.partition, caller.account
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(statements: Value) -> PolicyDocument {
        PolicyDocument::of(statements.as_array().unwrap().clone())
    }

    const STATE: &str = "arn:aws:s3:::central-state/network/terraform.tfstate";

    #[test]
    fn every_named_principal_is_weighed_and_the_unlisted_ones_say_where_access_comes_from() {
        let bucket = document(json!([
            {"Sid": "StatebucketNetworkReadWriteState", "Effect": "Allow",
             "Principal": {"AWS": ["arn:aws:iam::123456789012:role/network-ci"]},
             "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [STATE]},
            {"Sid": "AuditorsByHand", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:user/auditor"},
             "Action": "s3:GetObject", "Resource": "arn:aws:s3:::central-state/*"},
            {"Sid": "AccountDelegation", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "s3:*", "Resource": "arn:aws:s3:::central-state/*"}
        ]));
        let object = StateObject {
            state_arn: STATE,
            key: None,
        };
        let listed = vec!["arn:aws:iam::123456789012:role/network-ci".to_owned()];
        let access = who_can(Some(&bucket), None, &object, &listed);
        assert_eq!(
            access,
            vec![
                Access {
                    principal: "arn:aws:iam::123456789012:user/auditor".into(),
                    read: Some("AuditorsByHand".into()),
                    write: None,
                    decrypt: None,
                    listed: false,
                },
                Access {
                    principal: "arn:aws:iam::123456789012:role/network-ci".into(),
                    read: Some("StatebucketNetworkReadWriteState".into()),
                    write: Some("StatebucketNetworkReadWriteState".into()),
                    decrypt: None,
                    listed: true,
                },
            ]
        );
        assert_eq!(
            delegations(Some(&bucket), None),
            vec![Delegation {
                policy: "bucket policy",
                sid: "AccountDelegation".into(),
                account: "123456789012".into(),
            }]
        );
    }

    #[test]
    fn identities_whose_iam_policies_grant_access_are_named_with_the_policy() {
        let admin = IdentityPolicies {
            principal: "arn:aws:iam::123456789012:role/admin".into(),
            documents: vec![(
                "arn:aws:iam::aws:policy/AdministratorAccess".into(),
                document(
                    json!([{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}]),
                ),
            )],
        };
        let unrelated = IdentityPolicies {
            principal: "arn:aws:iam::123456789012:user/billing".into(),
            documents: vec![(
                "billing".into(),
                document(json!([{"Effect": "Allow", "Action": "aws-portal:*", "Resource": "*"}])),
            )],
        };
        let object = StateObject {
            state_arn: STATE,
            key: Some((
                "arn:aws:kms:eu-west-1:123456789012:key/k",
                "s3.eu-west-1.amazonaws.com",
            )),
        };
        let found = via_iam(&[admin.clone(), unrelated], None, None, true, &object, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].principal, "arn:aws:iam::123456789012:role/admin");
        assert_eq!(
            found[0].read.as_deref(),
            Some("IAM policy `arn:aws:iam::aws:policy/AdministratorAccess` (All)")
        );
        assert!(found[0].decrypt.is_some());
        let without_delegation = via_iam(&[admin], None, None, false, &object, &[]);
        assert_eq!(
            without_delegation[0].decrypt, None,
            "KMS honours IAM policies only when the key policy delegates"
        );
    }

    #[test]
    fn anyone_comes_first_and_a_deny_takes_the_grant_away() {
        let bucket = document(json!([
            {"Sid": "Public", "Effect": "Allow", "Principal": "*",
             "Action": "s3:GetObject", "Resource": "arn:aws:s3:::central-state/*"},
            {"Sid": "NoOneWritesButCi", "Effect": "Deny",
             "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:user/ci"},
             "Action": "s3:PutObject", "Resource": "arn:aws:s3:::central-state/*"},
            {"Sid": "Ci", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/ci"},
             "Action": "s3:PutObject", "Resource": "arn:aws:s3:::central-state/*"}
        ]));
        let key = document(json!([
            {"Sid": "Readers", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/ci"},
             "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}
        ]));
        let object = StateObject {
            state_arn: STATE,
            key: Some((
                "arn:aws:kms:eu-west-1:123456789012:key/k",
                "s3.eu-west-1.amazonaws.com",
            )),
        };
        let access = who_can(Some(&bucket), Some(&key), &object, &[]);
        assert_eq!(access[0].principal, "*");
        assert_eq!(access[0].read.as_deref(), Some("Public"));
        assert_eq!(access[0].write, None, "the deny keeps everyone but ci out");
        assert_eq!(access[1].write.as_deref(), Some("Ci"));
        assert_eq!(access[1].decrypt.as_deref(), Some("Readers"));
    }
}
