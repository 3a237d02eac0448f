//! The least-privilege IAM policy the identity Terraform runs as needs for one environment:
//! what the S3 backend actually calls (ListObjectsV2, HeadObject/GetObject, PutObject, and
//! Get/Put/Delete of the `.tflock` lock object), plus the KMS calls when state is encrypted
//! with a customer managed key.

use serde_json::{Value, json};

use super::PolicyDocument;
use crate::spec::{AccountId, Encryption, EnvSpec, KmsKey, KmsKeyRef};

/// Name of the inline policy `attach_identity_policy` puts on each user and role.
pub fn identity_policy_name(spec: &EnvSpec) -> String {
    format!("statebucket-{}", spec.name)
}

/// The key is named by what the spec says, as narrowly as IAM allows, so the document does
/// not change when a key is created or rotated: a key ARN or id as such, an alias through
/// `kms:ResourceAliases`.
pub fn identity_policy(spec: &EnvSpec, account: &AccountId) -> PolicyDocument {
    let partition = spec.region.partition();
    let bucket_arn = format!("arn:{partition}:s3:::{}", spec.bucket.name);
    let key = spec.backend.key.as_str();
    let workspaces = match spec.backend.workspace_prefix().as_str() {
        "" => format!("{bucket_arn}/*/{key}"),
        prefix => format!("{bucket_arn}/{prefix}/*/{key}"),
    };
    let mut statements = vec![
        json!({
            "Sid": "StatebucketListStateBucket",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
        }),
        json!({
            "Sid": "StatebucketReadWriteState",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [format!("{bucket_arn}/{key}"), workspaces],
        }),
        json!({
            "Sid": "StatebucketLockFiles",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [format!("{bucket_arn}/{key}.tflock"), format!("{workspaces}.tflock")],
        }),
    ];
    if let Encryption::Kms(kms_key) = &spec.bucket.encryption {
        let mut statement = json!({
            "Sid": "StatebucketStateEncryptionKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
        });
        let region = spec.region.as_str();
        let any_key = format!("arn:{partition}:kms:{region}:{account}:key/*");
        let (resource, alias) = match kms_key {
            KmsKey::Existing(KmsKeyRef::KeyArn(arn)) => (Value::from(arn.as_str()), None),
            KmsKey::Existing(KmsKeyRef::KeyId(id)) => (
                Value::from(format!("arn:{partition}:kms:{region}:{account}:key/{id}")),
                None,
            ),
            KmsKey::Existing(KmsKeyRef::Alias(alias)) | KmsKey::Managed(alias) => {
                (Value::from(any_key), Some(alias.to_string()))
            }
            KmsKey::Existing(KmsKeyRef::AliasArn(arn)) => {
                let alias = arn
                    .rsplit_once(':')
                    .map_or(arn.as_str(), |(_, alias)| alias);
                (Value::from(any_key), Some(alias.to_owned()))
            }
        };
        statement["Resource"] = resource;
        // IAM cannot name a key by alias as a resource; kms:ResourceAliases narrows `key/*`
        // to the keys that carry the alias.
        if let Some(alias) = alias {
            statement["Condition"] =
                json!({ "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } });
        }
        statements.push(statement);
    }
    if let Some(table) = spec.backend.lock.table() {
        // The S3 backend calls GetItem, PutItem and DeleteItem (lock and state digest items);
        // DescribeTable is not called but Terraform's documentation lists it.
        statements.push(json!({
            "Sid": "StatebucketDynamoDbLockTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": format!(
                "arn:{partition}:dynamodb:{}:{account}:table/{table}",
                spec.region
            ),
        }));
    }
    PolicyDocument {
        version: Some(json!("2012-10-17")),
        id: None,
        statements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;

    const SPEC: &str = "region: eu-west-1\nprofile: terraform\nbucket: { name: my-state }\naccess: { users: [terraform] }\nbackend: { key: app/terraform.tfstate }\n";

    fn account() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    #[test]
    fn s3_permissions_cover_state_workspaces_and_lock_files() {
        let spec = parse_spec("environments/dev.yaml", "dev", SPEC).unwrap();
        let document = identity_policy(&spec, &account());
        assert_eq!(
            serde_json::to_value(&document.statements).unwrap(),
            json!([
                {"Sid": "StatebucketListStateBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::my-state"},
                {"Sid": "StatebucketReadWriteState", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                 "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"]},
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
        let document = identity_policy(&spec, &account());
        assert_eq!(
            document.statements.last().unwrap(),
            &json!({"Sid": "StatebucketDynamoDbLockTable", "Effect": "Allow",
                "Action": ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/my-state-locks"})
        );
        let lockfile = parse_spec("environments/dev.yaml", "dev", SPEC).unwrap();
        assert!(
            !identity_policy(&lockfile, &account())
                .to_json()
                .contains("dynamodb")
        );
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
        let offline = identity_policy(&managed, &account());
        assert_eq!(
            offline.statements[3]["Action"],
            json!(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"])
        );
        assert_eq!(
            offline.statements[3]["Resource"],
            "arn:aws:kms:eu-west-1:123456789012:key/*"
        );
        assert_eq!(
            offline.statements[3]["Condition"],
            json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/tf"}})
        );
        let by_id = identity_policy(
            &with("{ kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab }"),
            &account(),
        );
        assert_eq!(by_id.statements[3]["Resource"], arn);
        assert!(by_id.statements[3].get("Condition").is_none());
    }
}
