//! The least-privilege IAM policies the identities Terraform runs as need: what the S3
//! backend actually calls (ListObjectsV2, HeadObject/GetObject, PutObject, and Get/Put/Delete
//! of the `.tflock` lock object), the KMS calls when state is encrypted with a customer
//! managed key, and the DynamoDB calls when a lock table is used. Writers and readers of
//! each grant get their tier's statements, on that grant's stacks only.

use serde_json::{Value, json};

use super::{PolicyDocument, StatesAndLocks, allow, bucket_arn};
use crate::access::{Grant, Tier};
use crate::spec::{
    AccountId, Encryption, EnvSpec, IamArn, KmsKey, KmsKeyRef, PrincipalKind, StackSpec,
    TofuEncryption,
};

/// IAM's quotas on the inline policies of one user and one role, in characters without
/// whitespace (all inline policies of the principal together).
pub const IDENTITY_POLICY_MAX_CHARS_USER: usize = 2_048;
pub const IDENTITY_POLICY_MAX_CHARS_ROLE: usize = 10_240;

/// Name of the inline policy `attach_identity_policy` puts on each user and role.
pub fn identity_policy_name(spec: &EnvSpec) -> String {
    format!("statebucket-{}", spec.name)
}

/// What one principal needs: the statements of every grant that names it.
pub fn identity_policy_for(
    spec: &EnvSpec,
    account: &AccountId,
    grants: &[Grant<'_>],
    principal: &IamArn,
) -> PolicyDocument {
    let parts: Vec<Part<'_>> = grants
        .iter()
        .filter(|grant| grant.principals.contains(principal))
        .map(|grant| Part {
            tier: grant.tier,
            sid_owner: grant
                .owner
                .map(|owner| owner.sid_token())
                .unwrap_or_default(),
            stacks: grant.stacks.clone(),
        })
        .collect();
    document(spec, account, &parts)
}

/// `document` extended with what the same principal needs on the replica (`on_replica`,
/// built from the replica's spec), its statement ids marked `StatebucketReplica…`: after a
/// failover the identity finds the same access.
pub fn extend_to_replica(document: &mut PolicyDocument, on_replica: PolicyDocument) {
    document
        .statements
        .extend(on_replica.statements.into_iter().map(|mut statement| {
            if let Some(sid) = statement["Sid"].as_str() {
                statement["Sid"] = sid.replacen("Statebucket", "StatebucketReplica", 1).into();
            }
            statement
        }));
}

/// What one tier of one stack needs (`statebucket policy ENV --identity [--stack S]
/// [--reader]`), with the statement ids the stack's grant has.
pub fn tier_identity_policy(
    spec: &EnvSpec,
    account: &AccountId,
    stack: &StackSpec,
    tier: Tier,
) -> PolicyDocument {
    let own = match tier {
        Tier::Writer => stack.writers.is_some(),
        Tier::Reader => stack.readers.is_some(),
    };
    let part = Part {
        tier,
        sid_owner: if own {
            stack.name.sid_token()
        } else {
            String::new()
        },
        stacks: vec![stack],
    };
    document(spec, account, &[part])
}

/// One tier on some stacks, and the Sid infix of the grant it comes from.
struct Part<'s> {
    tier: Tier,
    sid_owner: String,
    stacks: Vec<&'s StackSpec>,
}

/// A tier's statements on its stacks' states and lock files.
fn tier_statements(part: &Part<'_>, bucket: &str) -> Vec<Value> {
    let objects = StatesAndLocks::of(bucket, part.stacks.iter().copied());
    let sid = |name: &str| format!("Statebucket{}{name}", part.sid_owner);
    let lock_actions = json!(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]);
    match part.tier {
        Tier::Writer => vec![
            allow(
                sid("ReadWriteState"),
                json!(["s3:GetObject", "s3:PutObject"]),
                &objects.states,
            ),
            // `terraform workspace delete` deletes `<prefix>/<workspace>/<key>`; the
            // default workspace's state is never deleted (Terraform's S3 backend
            // documentation, "Permissions Required").
            allow(
                sid("DeleteWorkspaceState"),
                json!("s3:DeleteObject"),
                &objects.workspace_states,
            ),
            allow(sid("LockFiles"), lock_actions, &objects.locks),
        ],
        Tier::Reader => vec![
            allow(sid("ReadState"), json!("s3:GetObject"), &objects.states),
            allow(sid("ReaderLockFiles"), lock_actions, &objects.locks),
        ],
    }
}

fn document(spec: &EnvSpec, account: &AccountId, parts: &[Part<'_>]) -> PolicyDocument {
    let partition = spec.region.partition();
    let bucket = bucket_arn(partition, &spec.bucket.name);
    let mut statements = vec![allow(
        "StatebucketListStateBucket",
        json!("s3:ListBucket"),
        &bucket,
    )];
    for part in parts {
        statements.extend(tier_statements(part, &bucket));
    }
    if let Encryption::Kms(kms_key) = &spec.bucket.encryption {
        // Writers write state and readers the lock file, both encrypted: S3 calls
        // GenerateDataKey for a put and Decrypt for a get, never Encrypt. Only through S3.
        let mut statement = kms_key_statement(
            spec,
            account,
            kms_key,
            json!(super::key_policy::STATE_KEY_ACTIONS),
            "StatebucketStateEncryptionKey",
        );
        only_through_s3(&mut statement, &spec.region);
        statements.push(statement);
    }
    if let Some(TofuEncryption { key: Some(key), .. }) = &spec.tofu_encryption {
        // OpenTofu's aws_kms key provider: a data key for every state and plan it writes
        // (readers write plans too), Decrypt for every one it reads. Called directly, not
        // through S3.
        statements.push(kms_key_statement(
            spec,
            account,
            key,
            json!(["kms:Decrypt", "kms:GenerateDataKey"]),
            "StatebucketOpenTofuEncryptionKey",
        ));
    }
    let mut tables: Vec<String> = parts
        .iter()
        .flat_map(|part| &part.stacks)
        .filter_map(|stack| stack.lock.table())
        .map(|table| {
            format!(
                "arn:{partition}:dynamodb:{}:{account}:table/{table}",
                spec.region
            )
        })
        .collect();
    tables.sort();
    tables.dedup();
    if !tables.is_empty() {
        // The S3 backend calls GetItem, PutItem and DeleteItem (lock and state digest items);
        // DescribeTable is not called but Terraform's documentation lists it.
        let resource = match tables.len() {
            1 => Value::from(tables.remove(0)),
            _ => json!(tables),
        };
        statements.push(json!({
            "Sid": "StatebucketDynamoDbLockTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": resource,
        }));
    }
    PolicyDocument::of(statements)
}

/// The key is named by what the spec says, as narrowly as IAM allows, so the document does
/// not change when a key is created or rotated: a key ARN or id as such, an alias through
/// `kms:ResourceAliases`.
pub fn kms_key_statement(
    spec: &EnvSpec,
    account: &AccountId,
    kms_key: &KmsKey,
    actions: Value,
    sid: &str,
) -> Value {
    let (resource, alias) = key_resource(spec, account.as_str(), kms_key);
    let mut statement = allow(sid, actions, resource);
    // IAM cannot name a key by alias as a resource; kms:ResourceAliases narrows `key/*`
    // to the keys that carry the alias.
    if let Some(alias) = alias {
        statement["Condition"] =
            json!({ "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } });
    }
    statement
}

/// The key as a policy's `Resource` names it, and the alias that narrows it: a key ARN or id
/// as such; a key named by alias as `key/*` in the spec's region and account, with the alias
/// for `kms:ResourceAliases` (IAM cannot name a key by alias as a resource).
pub fn key_resource(spec: &EnvSpec, account: &str, kms_key: &KmsKey) -> (String, Option<String>) {
    let partition = spec.region.partition();
    let region = spec.region.as_str();
    let any_key = format!("arn:{partition}:kms:{region}:{account}:key/*");
    match kms_key {
        KmsKey::Existing(KmsKeyRef::KeyArn(arn)) => (arn.to_string(), None),
        KmsKey::Existing(KmsKeyRef::KeyId(id)) => (
            format!("arn:{partition}:kms:{region}:{account}:key/{id}"),
            None,
        ),
        KmsKey::Existing(KmsKeyRef::Alias(alias)) | KmsKey::Managed(alias) => {
            (any_key, Some(alias.to_string()))
        }
        KmsKey::Existing(KmsKeyRef::AliasArn(arn)) => {
            let alias = arn
                .rsplit_once(':')
                .map_or(arn.as_str(), |(_, alias)| alias);
            (any_key, Some(alias.to_owned()))
        }
    }
}

/// Limits a KMS statement to requests S3 makes in `region` on the caller's behalf
/// (`kms:ViaService`), keeping its other conditions: a principal that may read state cannot
/// use the key outside S3.
pub fn only_through_s3(statement: &mut Value, region: &crate::spec::Region) {
    let condition = statement
        .as_object_mut()
        .expect("a statement is an object")
        .entry("Condition")
        .or_insert_with(|| json!({}));
    condition["StringEquals"] = json!({ "kms:ViaService": super::key_policy::via_s3(region) });
}

/// IAM's quota for the inline policies of this kind of principal.
pub fn inline_policy_quota(kind: PrincipalKind) -> usize {
    match kind {
        PrincipalKind::User => IDENTITY_POLICY_MAX_CHARS_USER,
        PrincipalKind::Role => IDENTITY_POLICY_MAX_CHARS_ROLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{PrincipalArns, grants};
    use crate::policy::evaluate::{Caller, Request, allowed_by};
    use crate::spec::parse_spec;

    const SPEC: &str = "region: eu-west-1\nprofile: terraform\nbucket: { name: my-state }\naccess: { users: [terraform] }\nbackend: { key: app/terraform.tfstate }\n";

    fn account() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    fn writer_policy(spec: &EnvSpec) -> PolicyDocument {
        tier_identity_policy(spec, &account(), &spec.stacks[0], Tier::Writer)
    }

    #[test]
    fn s3_permissions_cover_state_workspaces_and_lock_files() {
        let spec = parse_spec("environments/dev.yaml", "dev", SPEC).unwrap();
        let document = writer_policy(&spec);
        assert_eq!(
            serde_json::to_value(&document.statements).unwrap(),
            json!([
                {"Sid": "StatebucketListStateBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::my-state"},
                {"Sid": "StatebucketReadWriteState", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                 "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"]},
                {"Sid": "StatebucketDeleteWorkspaceState", "Effect": "Allow", "Action": "s3:DeleteObject",
                 "Resource": ["arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"]},
                {"Sid": "StatebucketLockFiles", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                 "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate.tflock", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate.tflock"]}
            ])
        );
        assert_eq!(identity_policy_name(&spec), "statebucket-dev");
    }

    #[test]
    fn a_lock_table_in_use_is_granted_the_calls_the_backend_makes() {
        let both = SPEC.replace(
            "app/terraform.tfstate }",
            "app/terraform.tfstate, lock: both }",
        );
        let spec = parse_spec("environments/dev.yaml", "dev", &both).unwrap();
        let document = writer_policy(&spec);
        assert_eq!(
            document.statements.last().unwrap(),
            &json!({"Sid": "StatebucketDynamoDbLockTable", "Effect": "Allow",
                "Action": ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/my-state-locks"})
        );
        let lockfile = parse_spec("environments/dev.yaml", "dev", SPEC).unwrap();
        assert!(!writer_policy(&lockfile).to_json().contains("dynamodb"));
    }

    #[test]
    fn kms_permissions_name_the_key_as_narrowly_as_iam_allows() {
        let with = |encryption: &str| {
            parse_spec(
                "e/dev.yaml",
                "dev",
                &SPEC.replace(
                    "{ name: my-state }",
                    &format!("{{ name: my-state, encryption: {encryption} }}"),
                ),
            )
            .unwrap()
        };
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let managed = with("{ kms_key: alias/tf, create_key: true }");
        let key_statement = |document: &PolicyDocument| {
            document
                .statements
                .iter()
                .find(|statement| statement["Sid"] == "StatebucketStateEncryptionKey")
                .cloned()
                .expect("a key statement")
        };
        let offline = key_statement(&writer_policy(&managed));
        assert_eq!(
            offline["Action"],
            json!(["kms:Decrypt", "kms:GenerateDataKey"])
        );
        assert_eq!(
            offline["Resource"],
            "arn:aws:kms:eu-west-1:123456789012:key/*"
        );
        assert_eq!(
            offline["Condition"],
            json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/tf"},
                   "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}})
        );
        let by_id = key_statement(&writer_policy(&with(
            "{ kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab }",
        )));
        assert_eq!(by_id["Resource"], arn);
        assert_eq!(
            by_id["Condition"],
            json!({"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}})
        );
        let reader = key_statement(&tier_identity_policy(
            &managed,
            &account(),
            &managed.stacks[0],
            Tier::Reader,
        ));
        assert_eq!(
            reader["Action"],
            json!(["kms:Decrypt", "kms:GenerateDataKey"])
        );
    }

    const STACKS: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket: { name: central-state, encryption: { kms_key: alias/state, create_key: true } }
access:
  roles: [platform-ci]
  readers: { roles: [terraform-plan] }
stacks:
  network:
    key: network/terraform.tfstate
    access: { roles: [network-ci], readers: { roles: [platform-ci] } }
  app:
    key: app/terraform.tfstate
    lock: both
";

    #[test]
    fn a_principal_gets_the_union_of_its_grants_and_nothing_else() {
        let spec = parse_spec("environments/central.yaml", "central", STACKS).unwrap();
        let arns = PrincipalArns::offline(&spec, &account());
        let grants = grants(&spec, &arns);
        let role =
            |name: &str| IamArn::parse(&format!("arn:aws:iam::123456789012:role/{name}")).unwrap();
        let object = |key: &str| format!("arn:aws:s3:::central-state/{key}");
        let as_caller = |name: &str| {
            Caller::parse(&format!("arn:aws:sts::123456789012:assumed-role/{name}/s")).unwrap()
        };

        // platform-ci writes app (the spec's writers) and only reads network (its readers).
        let platform = identity_policy_for(&spec, &account(), &grants, &role("platform-ci"));
        let platform_caller = as_caller("platform-ci");
        let allowed = |document: &PolicyDocument, caller: &Caller, action: &str, key: &str| {
            allowed_by(document, &Request::new(caller, action, &object(key))).is_some()
        };
        assert!(allowed(
            &platform,
            &platform_caller,
            "s3:PutObject",
            "app/terraform.tfstate"
        ));
        assert!(allowed(
            &platform,
            &platform_caller,
            "s3:GetObject",
            "network/terraform.tfstate"
        ));
        assert!(!allowed(
            &platform,
            &platform_caller,
            "s3:PutObject",
            "network/terraform.tfstate"
        ));
        assert!(allowed(
            &platform,
            &platform_caller,
            "s3:PutObject",
            "network/terraform.tfstate.tflock"
        ));
        assert_eq!(
            platform.statements.last().unwrap()["Resource"],
            "arn:aws:dynamodb:eu-west-1:123456789012:table/central-state-locks"
        );

        // network-ci writes network only; its grant's Sids name the stack.
        let network = identity_policy_for(&spec, &account(), &grants, &role("network-ci"));
        let network_caller = as_caller("network-ci");
        assert!(allowed(
            &network,
            &network_caller,
            "s3:PutObject",
            "network/terraform.tfstate"
        ));
        assert!(!allowed(
            &network,
            &network_caller,
            "s3:GetObject",
            "app/terraform.tfstate"
        ));
        assert_eq!(
            network.statements[1]["Sid"],
            "StatebucketNetworkReadWriteState"
        );
        assert!(
            !network.to_json().contains("dynamodb"),
            "network locks with the lockfile only"
        );

        // The reader of the spec never encrypts: only Decrypt and GenerateDataKey.
        let reader = identity_policy_for(&spec, &account(), &grants, &role("terraform-plan"));
        let reader_caller = as_caller("terraform-plan");
        assert!(!allowed(
            &reader,
            &reader_caller,
            "s3:PutObject",
            "app/terraform.tfstate"
        ));
        let key_statement = reader
            .statements
            .iter()
            .find(|statement| statement["Sid"] == "StatebucketStateEncryptionKey")
            .unwrap();
        assert_eq!(
            key_statement["Action"],
            json!(["kms:Decrypt", "kms:GenerateDataKey"])
        );
    }
}
