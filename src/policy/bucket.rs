//! The statements statebucket owns in a bucket's policy: the template's for every writer
//! grant, the read-only tier's for every reader grant, then the exclusive deny and the
//! TLS-only deny.

use serde_json::{Value, json};

use super::template::{StackObjects, deny_everyone_else, deny_insecure_transport};
use super::{
    PolicyInputs, StateArns, StatesAndLocks, allow_principals, bucket_arn, render_statements, sid,
};
use crate::access::{Grant, PrincipalArns, Tier, grants};
use crate::spec::names::Problem;
use crate::spec::{AccountId, Diagnostic, EnvSpec, IamArn, Pos, PrincipalKind};

/// S3 refuses a bucket policy larger than 20 KB ("Policy is too large").
pub const BUCKET_POLICY_MAX_BYTES: usize = 20 * 1024;

/// Every statement the tool owns in the bucket's policy. `require_tls` is false only for a
/// plain-HTTP endpoint (a local server or an S3-compatible store without TLS), where no
/// client could satisfy the TLS-only deny and every request would be refused. Errors name
/// the template file, line and column.
pub fn bucket_statements(
    spec: &EnvSpec,
    account: &AccountId,
    arns: &PrincipalArns,
    template: (&str, &str),
    require_tls: bool,
) -> Result<Vec<Value>, Vec<Diagnostic>> {
    let (template_name, template_text) = template;
    let partition = spec.region.partition();
    let bucket = bucket_arn(partition, &spec.bucket.name);
    let mut statements = Vec::new();
    let mut diagnostics = Vec::new();
    for grant in grants(spec, arns) {
        match grant.tier {
            Tier::Writer => {
                let inputs = PolicyInputs {
                    bucket: &spec.bucket.name,
                    region: &spec.region,
                    account_id: account,
                    stacks: grant
                        .stacks
                        .iter()
                        .map(|stack| StackObjects {
                            key: &stack.key,
                            arns: StateArns::of(&bucket, stack),
                        })
                        .collect(),
                    users: of_kind(&grant, PrincipalKind::User),
                    roles: of_kind(&grant, PrincipalKind::Role),
                    sid_owner: grant
                        .owner
                        .map(|owner| owner.sid_token())
                        .unwrap_or_default(),
                };
                match render_statements(template_name, template_text, &inputs) {
                    Ok(rendered) => statements.extend(rendered),
                    Err(found) => diagnostics.extend(found),
                }
            }
            Tier::Reader => statements.extend(reader_statements(&grant, &bucket)),
        }
    }
    if !diagnostics.is_empty() {
        diagnostics.dedup();
        return Err(diagnostics);
    }
    if let Some(sid) = first_repeated_sid(&statements) {
        return Err(vec![Diagnostic::new(
            template_name,
            Pos { line: 1, column: 1 },
            Problem::new(format!(
                "the statement id `{sid}` comes out twice for {}",
                spec.source
            ))
            .hint("a template Sid may not equal a stack's (`Statebucket` + stack + rest) or the read-only tier's (`…ReadState`, `…ReaderListStateBucket`, `…ReaderLockFiles`); rename it"),
        )]);
    }
    if let Some(exclusive) = &spec.access.exclusive {
        let mut exempt: Vec<IamArn> = spec
            .all_principals()
            .into_iter()
            .map(|principal| arns.arn(principal).clone())
            .collect();
        let break_glass = arns.arn(&exclusive.break_glass_role);
        exempt.retain(|arn| arn != break_glass);
        exempt.push(break_glass.clone());
        // S3 replicates as the replication role: it reads the primary and writes the replica.
        let replicated = match (&spec.bucket.replica, &spec.replica_of) {
            (Some(_), _) => Some(&spec.bucket.name),
            (None, Some(primary)) => Some(&primary.name),
            (None, None) => None,
        };
        if let Some(primary) = replicated {
            exempt.push(crate::replication::role_arn(
                partition,
                account.as_str(),
                primary,
            ));
        }
        statements.push(deny_everyone_else(&bucket, &exempt));
    }
    if require_tls {
        statements.push(deny_insecure_transport(&bucket));
    }
    Ok(statements)
}

fn of_kind(grant: &Grant<'_>, kind: PrincipalKind) -> Vec<IamArn> {
    grant
        .principals
        .iter()
        .filter(|arn| arn.kind == kind)
        .cloned()
        .collect()
}

/// The read-only tier: list the bucket, read the state of every workspace, and take and
/// release the lock (`terraform plan` locks, and the lock file is written like state).
/// Never PutObject on state.
fn reader_statements(grant: &Grant<'_>, bucket: &str) -> Vec<Value> {
    let principals: Vec<String> = grant.principals.iter().map(ToString::to_string).collect();
    let objects = StatesAndLocks::of(bucket, grant.stacks.iter().copied());
    vec![
        allow_principals(
            grant.sid("ReaderListStateBucket"),
            &principals,
            json!("s3:ListBucket"),
            bucket,
        ),
        allow_principals(
            grant.sid("ReadState"),
            &principals,
            json!("s3:GetObject"),
            &objects.states,
        ),
        allow_principals(
            grant.sid("ReaderLockFiles"),
            &principals,
            json!(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
            &objects.locks,
        ),
    ]
}

fn first_repeated_sid(statements: &[Value]) -> Option<&str> {
    statements
        .iter()
        .enumerate()
        .find_map(|(index, statement)| {
            let id = sid(statement)?;
            statements[..index]
                .iter()
                .any(|earlier| sid(earlier) == Some(id))
                .then_some(id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::evaluate::{Caller, Request, allowed_by};
    use crate::policy::{BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME, PolicyDocument};
    use crate::spec::{ONE_STATE, THREE_STACKS, parse_spec};

    fn policy(text: &str) -> PolicyDocument {
        let spec = parse_spec("environments/central.yaml", "central", text).unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        let statements = bucket_statements(
            &spec,
            &account,
            &PrincipalArns::offline(&spec, &account),
            (BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE),
            true,
        )
        .unwrap();
        super::super::merge(None, &statements)
    }

    fn caller(arn: &str) -> Caller {
        Caller::parse(arn).unwrap()
    }

    const NETWORK_CI: &str = "arn:aws:sts::123456789012:assumed-role/network-ci/run";
    const PLAN: &str = "arn:aws:sts::123456789012:assumed-role/terraform-plan/pr-7";
    const DATA_CI: &str = "arn:aws:iam::123456789012:user/data-ci";

    fn object(key: &str) -> String {
        format!("arn:aws:s3:::central-state/{key}")
    }

    #[test]
    fn each_stack_names_its_own_statements() {
        let document = policy(THREE_STACKS);
        assert_eq!(
            document.sids(),
            vec![
                "StatebucketNetworkListStateBucket",
                "StatebucketNetworkReadWriteState",
                "StatebucketNetworkDeleteWorkspaceState",
                "StatebucketNetworkLockFiles",
                "StatebucketAppListStateBucket",
                "StatebucketAppReadWriteState",
                "StatebucketAppDeleteWorkspaceState",
                "StatebucketAppLockFiles",
                "StatebucketDataListStateBucket",
                "StatebucketDataReadWriteState",
                "StatebucketDataDeleteWorkspaceState",
                "StatebucketDataLockFiles",
                "StatebucketReaderListStateBucket",
                "StatebucketReadState",
                "StatebucketReaderLockFiles",
                "StatebucketDenyInsecureTransport",
            ]
        );
    }

    #[test]
    fn a_writer_reaches_its_stack_and_no_other() {
        let document = policy(THREE_STACKS);
        let network = caller(NETWORK_CI);
        for action in ["s3:GetObject", "s3:PutObject"] {
            assert!(
                allowed_by(
                    &document,
                    &Request::new(&network, action, &object("network/terraform.tfstate"))
                )
                .is_some()
            );
            assert!(
                allowed_by(
                    &document,
                    &Request::new(
                        &network,
                        action,
                        &object("env:/staging/network/terraform.tfstate")
                    )
                )
                .is_some()
            );
            for other in [
                "app/terraform.tfstate",
                "data/terraform.tfstate",
                "ws/x/data/terraform.tfstate",
            ] {
                assert_eq!(
                    allowed_by(&document, &Request::new(&network, action, &object(other))),
                    None,
                    "{action} {other}"
                );
            }
        }
        assert!(
            allowed_by(
                &document,
                &Request::new(
                    &network,
                    "s3:DeleteObject",
                    &object("network/terraform.tfstate.tflock")
                )
            )
            .is_some()
        );
        assert_eq!(
            allowed_by(
                &document,
                &Request::new(
                    &network,
                    "s3:DeleteObject",
                    &object("network/terraform.tfstate")
                )
            ),
            None,
            "writers never delete state"
        );
        let data = caller(DATA_CI);
        assert!(
            allowed_by(
                &document,
                &Request::new(
                    &data,
                    "s3:PutObject",
                    &object("ws/dev/data/terraform.tfstate")
                )
            )
            .is_some()
        );
        assert_eq!(
            allowed_by(
                &document,
                &Request::new(&data, "s3:PutObject", &object("network/terraform.tfstate"))
            ),
            None
        );
    }

    #[test]
    fn a_reader_reads_and_locks_but_never_writes_state() {
        let document = policy(THREE_STACKS);
        let reader = caller(PLAN);
        for key in [
            "network/terraform.tfstate",
            "app/terraform.tfstate",
            "ws/dev/data/terraform.tfstate",
        ] {
            assert!(
                allowed_by(
                    &document,
                    &Request::new(&reader, "s3:GetObject", &object(key))
                )
                .is_some(),
                "{key}"
            );
            assert_eq!(
                allowed_by(
                    &document,
                    &Request::new(&reader, "s3:PutObject", &object(key))
                ),
                None,
                "{key}"
            );
            let lock = object(&format!("{key}.tflock"));
            for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
                assert!(
                    allowed_by(&document, &Request::new(&reader, action, &lock)).is_some(),
                    "{action} {lock}"
                );
            }
        }
        assert!(
            allowed_by(
                &document,
                &Request::new(&reader, "s3:ListBucket", "arn:aws:s3:::central-state")
            )
            .is_some()
        );
    }

    #[test]
    fn the_backend_layout_keeps_todays_statements() {
        let document = policy(ONE_STATE);
        assert_eq!(
            document.sids(),
            vec![
                "StatebucketListStateBucket",
                "StatebucketReadWriteState",
                "StatebucketDeleteWorkspaceState",
                "StatebucketLockFiles",
                "StatebucketDenyInsecureTransport"
            ]
        );
        assert_eq!(
            document.statements[1]["Resource"],
            json!([
                "arn:aws:s3:::my-state/app/terraform.tfstate",
                "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"
            ])
        );
    }

    #[test]
    fn exclusive_exempts_every_writer_and_reader_and_the_break_glass_role() {
        let exclusive = THREE_STACKS.replace(
            "access:\n  readers",
            "access:\n  exclusive: true\n  break_glass_role: break-glass\n  readers",
        );
        let document = policy(&exclusive);
        let deny = document
            .statements
            .iter()
            .find(|statement| sid(statement) == Some(super::super::EXCLUSIVE_SID))
            .unwrap();
        assert_eq!(
            deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
            json!([
                "arn:aws:iam::123456789012:role/network-ci",
                "arn:aws:iam::123456789012:role/terraform-plan",
                "arn:aws:iam::123456789012:role/app-ci",
                "arn:aws:iam::123456789012:user/data-ci",
                "arn:aws:iam::123456789012:role/break-glass"
            ])
        );
    }

    #[test]
    fn exclusive_exempts_the_replication_role_on_both_buckets() {
        let text = THREE_STACKS
            .replace(
                "access:\n  readers",
                "access:\n  exclusive: true\n  break_glass_role: break-glass\n  readers",
            )
            .replace(
                "bucket: { name: central-state }",
                "bucket: { name: central-state, replica: { region: eu-central-1 } }",
            );
        let primary =
            crate::spec::parse_spec("environments/central.yaml", "central", &text).expect("valid");
        let replica = primary.replica_spec().expect("a replica");
        for spec in [&primary, &replica] {
            let account = AccountId::parse("123456789012").unwrap();
            let statements = bucket_statements(
                spec,
                &account,
                &PrincipalArns::offline(spec, &account),
                (
                    super::super::BUILTIN_TEMPLATE_NAME,
                    super::super::BUILTIN_TEMPLATE,
                ),
                true,
            )
            .unwrap();
            let deny = statements
                .iter()
                .find(|statement| sid(statement) == Some(super::super::EXCLUSIVE_SID))
                .unwrap();
            let exempt = deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
                .as_array()
                .unwrap();
            assert_eq!(
                exempt.last().unwrap(),
                "arn:aws:iam::123456789012:role/statebucket-replication-central-state",
                "{}",
                spec.bucket.name
            );
        }
    }
}
