//! The KMS key policy of a key statebucket creates. A bucket policy alone does not let a
//! principal use SSE-KMS state: KMS asks the key policy too, and for a principal of another
//! account (a central state account) the key policy is the only place that can allow it.
//!
//! The statements statebucket owns grant the writers and the readers of every stack Decrypt
//! and GenerateDataKey (what S3 calls for them), only through S3
//! (`kms:ViaService`). The account's root statement (IAM policies of the account may use the
//! key) is kept; when the policy has none, statebucket owns one, so that neither it nor
//! anyone else in the account is locked out of the key.

use serde_json::{Value, json};

use super::PolicyDocument;
use super::evaluate::{Caller, Request, allowed_by, allows};
use crate::access::{Grant, Tier};
use crate::spec::{AccountId, IamArn, Region};

pub const KEY_WRITERS_SID: &str = "StatebucketStateWriters";
pub const KEY_READERS_SID: &str = "StatebucketStateReaders";
pub const KEY_ACCOUNT_ROOT_SID: &str = "StatebucketAccountRoot";

/// What S3 calls on the state key for a principal: GenerateDataKey when it puts an object
/// (writers put state, readers the lock file), Decrypt when it gets one or completes a
/// multipart upload; never Encrypt (S3 User Guide, "Protecting data with SSE-KMS",
/// permissions). Terraform's documentation lists kms:Encrypt too; S3 never asks for it.
pub const STATE_KEY_ACTIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

/// The principals each tier needs on the key: every writer of any stack; every reader that
/// writes no stack.
pub fn key_users(grants: &[Grant<'_>]) -> (Vec<IamArn>, Vec<IamArn>) {
    let mut writers: Vec<IamArn> = Vec::new();
    let mut readers: Vec<IamArn> = Vec::new();
    for grant in grants {
        let list = match grant.tier {
            Tier::Writer => &mut writers,
            Tier::Reader => &mut readers,
        };
        for principal in &grant.principals {
            if !list.contains(principal) {
                list.push(principal.clone());
            }
        }
    }
    readers.retain(|reader| !writers.contains(reader));
    (writers, readers)
}

/// The grant statements statebucket owns in the key policy.
pub fn key_grant_statements(grants: &[Grant<'_>], region: &Region) -> Vec<Value> {
    let (writers, readers) = key_users(grants);
    let via_s3 = json!({ "StringEquals": { "kms:ViaService": via_s3(region) } });
    let statement = |sid: &str, principals: &[IamArn], actions: &[&str]| {
        let principals: Vec<String> = principals.iter().map(ToString::to_string).collect();
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": actions,
            "Resource": "*",
            "Condition": via_s3,
        })
    };
    let mut statements = Vec::new();
    if !writers.is_empty() {
        statements.push(statement(KEY_WRITERS_SID, &writers, STATE_KEY_ACTIONS));
    }
    if !readers.is_empty() {
        statements.push(statement(KEY_READERS_SID, &readers, STATE_KEY_ACTIONS));
    }
    statements
}

/// The statement that lets IAM policies of `account` use the key: AWS's default key policy
/// holds it ("Enable IAM User Permissions").
pub fn account_root_statement(partition: &str, account: &AccountId) -> Value {
    json!({
        "Sid": KEY_ACCOUNT_ROOT_SID,
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*",
    })
}

/// Whether a statement statebucket does not own already gives the account root `kms:*`.
pub fn foreign_root_statement(
    live: Option<&PolicyDocument>,
    partition: &str,
    account: &AccountId,
) -> bool {
    let Some(live) = live else {
        return false;
    };
    let foreign_only = PolicyDocument {
        version: None,
        id: None,
        statements: live.foreign().cloned().collect(),
    };
    let root =
        Caller::parse(&format!("arn:{partition}:iam::{account}:root")).expect("a root ARN parses");
    allowed_by(&foreign_only, &Request::new(&root, "kms:PutKeyPolicy", "*")).is_some()
        && allowed_by(&foreign_only, &Request::new(&root, "kms:Decrypt", "*")).is_some()
}

/// Whether the key policy lets `caller` do `action` (a request carrying `context`): a
/// statement allows it, naming the caller or its account's root (then the account's IAM
/// policies decide); and no statement denies it.
pub fn key_allows(
    document: &PolicyDocument,
    caller: &Caller,
    action: &str,
    context: &[(&str, &str)],
) -> bool {
    allows(
        document,
        &Request::new(caller, action, "*").with_context(context),
    )
}

/// The condition keys of a KMS call S3 makes on a principal's behalf in `region`.
pub fn via_s3(region: &Region) -> String {
    format!("s3.{region}.amazonaws.com")
}

/// Which principals the key policy does not let use the key as their tier needs (through
/// S3 in `region`), with the actions they lack. A principal of the key's account is covered
/// by a statement for the account root; one of another account only by a statement naming
/// it (or its account).
pub fn missing_key_grants(
    document: &PolicyDocument,
    region: &Region,
    grants: &[Grant<'_>],
) -> Vec<(IamArn, Vec<&'static str>)> {
    let service = via_s3(region);
    let context = [("kms:ViaService", service.as_str())];
    let (writers, readers) = key_users(grants);
    let mut missing = Vec::new();
    for arn in writers.iter().chain(&readers) {
        let caller = Caller::for_principal(arn);
        let lacking: Vec<&'static str> = STATE_KEY_ACTIONS
            .iter()
            .copied()
            .filter(|action| !key_allows(document, &caller, action, &context))
            .collect();
        if !lacking.is_empty() {
            missing.push((arn.clone(), lacking));
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{PrincipalArns, grants};
    use crate::policy::merge;
    use crate::spec::parse_spec;

    const SPEC: &str = "\
region: eu-west-1
account_id: \"111111111111\"
profile: terraform
bucket: { name: central-state, encryption: { kms_key: alias/state, create_key: true } }
access:
  roles: [platform-ci]
  readers: { roles: [\"arn:aws:iam::222222222222:role/plan\"] }
stacks:
  network:
    key: network/terraform.tfstate
    access: { roles: [\"arn:aws:iam::333333333333:role/network-ci\"] }
  app:
    key: app/terraform.tfstate
";

    fn account() -> AccountId {
        AccountId::parse("111111111111").unwrap()
    }

    #[test]
    fn writers_and_readers_get_data_keys_and_decrypt_only_through_s3() {
        let spec = parse_spec("environments/central.yaml", "central", SPEC).unwrap();
        let arns = PrincipalArns::offline(&spec, &account());
        let statements = key_grant_statements(&grants(&spec, &arns), &spec.region);
        assert_eq!(
            Value::Array(statements),
            json!([
                {"Sid": "StatebucketStateWriters", "Effect": "Allow",
                 "Principal": {"AWS": ["arn:aws:iam::111111111111:role/platform-ci", "arn:aws:iam::333333333333:role/network-ci"]},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}},
                {"Sid": "StatebucketStateReaders", "Effect": "Allow",
                 "Principal": {"AWS": ["arn:aws:iam::222222222222:role/plan"]},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}
            ])
        );
    }

    #[test]
    fn another_accounts_principal_needs_the_key_policy_and_the_root_statement_covers_the_account() {
        let spec = parse_spec("environments/central.yaml", "central", SPEC).unwrap();
        let arns = PrincipalArns::offline(&spec, &account());
        let grants = grants(&spec, &arns);
        let default_policy = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#,
        )
        .unwrap();
        assert!(foreign_root_statement(
            Some(&default_policy),
            "aws",
            &account()
        ));
        let missing = missing_key_grants(&default_policy, &spec.region, &grants);
        let who: Vec<String> = missing.iter().map(|(arn, _)| arn.to_string()).collect();
        assert_eq!(
            who,
            vec![
                "arn:aws:iam::333333333333:role/network-ci",
                "arn:aws:iam::222222222222:role/plan"
            ],
            "same-account principals are covered by the root statement; the others need grants"
        );
        assert_eq!(missing[1].1, vec!["kms:Decrypt", "kms:GenerateDataKey"]);

        let reconciled = merge(
            Some(&default_policy),
            &key_grant_statements(&grants, &spec.region),
        );
        assert!(missing_key_grants(&reconciled, &spec.region, &grants).is_empty());
        let elsewhere = Region::parse("us-east-1").unwrap();
        assert_eq!(
            missing_key_grants(&reconciled, &elsewhere, &grants).len(),
            2,
            "the grants hold only through S3 in the key's region"
        );

        let tool = Caller::parse("arn:aws:sts::111111111111:assumed-role/admin/s").unwrap();
        assert!(key_allows(&reconciled, &tool, "kms:PutKeyPolicy", &[]));
        let without_root = merge(None, &key_grant_statements(&grants, &spec.region));
        assert!(!key_allows(&without_root, &tool, "kms:PutKeyPolicy", &[]));
        assert!(!foreign_root_statement(
            Some(&without_root),
            "aws",
            &account()
        ));
    }
}
