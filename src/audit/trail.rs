//! Who did: CloudTrail's record of the state key's use (`Decrypt` when S3 reads an object,
//! `GenerateDataKey` when it writes one), each event tied to a stack by its encryption
//! context. S3 passes `aws:s3:arn` as the context: the object's ARN, or with an S3 Bucket Key
//! the bucket's (one data key serves many objects for a while, so there are fewer events,
//! and they name no object).

use serde::Serialize;
use serde_json::Value;

use crate::policy::evaluate::Caller;

/// The objects of one stack, to tie events to it.
pub struct StackKeys<'a> {
    pub stack: &'a str,
    /// The default workspace's state key.
    pub key: &'a str,
    /// `workspace_key_prefix` (`env:` by default).
    pub workspace_prefix: &'a str,
}

/// Which state an event touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Touched {
    /// A stack's state (in `workspace`, unless the default) or its lock file.
    Stack {
        stack: String,
        workspace: Option<String>,
        lock_file: bool,
    },
    /// With an S3 Bucket Key the context is the bucket: no object is named.
    Bucket,
    /// Another object of the bucket, or another bucket.
    Other { arn: String },
}

/// One use of the key, as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyUse {
    pub time: String,
    /// `read` (Decrypt) or `write` (GenerateDataKey).
    pub access: &'static str,
    /// The caller's ARN; for a role, the session (`assumed-role/ROLE/SESSION`).
    pub principal: String,
    pub source_ip: Option<String>,
    /// Terraform and OpenTofu name themselves and their version here when they call KMS
    /// directly; through S3, S3 is the caller's agent.
    pub user_agent: Option<String>,
    pub touched: Touched,
    pub listed: bool,
}

/// One CloudTrail event (the `CloudTrailEvent` JSON string LookupEvents returns), when it
/// is a Decrypt or GenerateDataKey; `listed` are the ARNs the spec names anywhere.
pub fn key_use(
    event_json: &str,
    bucket: &str,
    stacks: &[StackKeys<'_>],
    listed: &[String],
) -> Option<KeyUse> {
    let event: Value = serde_json::from_str(event_json).ok()?;
    let access = match event.get("eventName")?.as_str()? {
        "Decrypt" => "read",
        "GenerateDataKey" => "write",
        _ => return None,
    };
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let identity = event.get("userIdentity");
    let principal = text(identity.and_then(|identity| identity.get("arn")))
        .or_else(|| text(identity.and_then(|identity| identity.get("invokedBy"))))
        .unwrap_or_else(|| "(unknown)".to_owned());
    let context = event
        .pointer("/requestParameters/encryptionContext/aws:s3:arn")
        .and_then(Value::as_str);
    let listed = Caller::parse(&principal)
        .is_some_and(|caller| listed.iter().any(|arn| caller.is_named_by(arn)));
    Some(KeyUse {
        time: text(event.get("eventTime")).unwrap_or_default(),
        access,
        principal,
        source_ip: text(event.get("sourceIPAddress")),
        user_agent: text(event.get("userAgent")),
        touched: touched(context, bucket, stacks),
        listed,
    })
}

fn touched(context: Option<&str>, bucket: &str, stacks: &[StackKeys<'_>]) -> Touched {
    let Some(arn) = context else {
        return Touched::Other {
            arn: "(no aws:s3:arn in the encryption context)".to_owned(),
        };
    };
    let Some(rest) = arn.split(":::").nth(1) else {
        return Touched::Other {
            arn: arn.to_owned(),
        };
    };
    let (arn_bucket, object) = match rest.split_once('/') {
        Some((arn_bucket, object)) => (arn_bucket, Some(object)),
        None => (rest, None),
    };
    if arn_bucket != bucket {
        return Touched::Other {
            arn: arn.to_owned(),
        };
    }
    let Some(object) = object else {
        return Touched::Bucket;
    };
    let (object, lock_file) = match object.strip_suffix(".tflock") {
        Some(state) => (state, true),
        None => (object, false),
    };
    for stack in stacks {
        let found = if object == stack.key {
            Some(None)
        } else {
            // `<prefix>/<workspace>/<key>`, as Terraform joins them.
            object
                .strip_prefix(stack.workspace_prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .and_then(|rest| rest.strip_suffix(stack.key))
                .and_then(|rest| rest.strip_suffix('/'))
                .filter(|workspace| !workspace.is_empty() && !workspace.contains('/'))
                .map(|workspace| Some(workspace.to_owned()))
        };
        if let Some(workspace) = found {
            return Touched::Stack {
                stack: stack.stack.to_owned(),
                workspace,
                lock_file,
            };
        }
    }
    Touched::Other {
        arn: arn.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stacks() -> Vec<StackKeys<'static>> {
        vec![
            StackKeys {
                stack: "network",
                key: "network/terraform.tfstate",
                workspace_prefix: "env:",
            },
            StackKeys {
                stack: "app",
                key: "app/terraform.tfstate",
                workspace_prefix: "ws",
            },
        ]
    }

    /// A Decrypt S3 made for a role session, as CloudTrail records it.
    fn event(name: &str, arn: &str, context: &str) -> String {
        json!({
            "eventVersion": "1.11",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:gha-run-42",
                "arn": arn,
                "accountId": "123456789012",
                "invokedBy": "s3.amazonaws.com"
            },
            "eventTime": "2026-12-01T10:00:00Z",
            "eventSource": "kms.amazonaws.com",
            "eventName": name,
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "s3.amazonaws.com",
            "userAgent": "s3.amazonaws.com",
            "requestParameters": {
                "encryptionContext": {"aws:s3:arn": context},
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "keyId": "arn:aws:kms:eu-west-1:123456789012:key/k"
            },
            "readOnly": true,
            "eventType": "AwsApiCall"
        })
        .to_string()
    }

    const CI: &str = "arn:aws:sts::123456789012:assumed-role/network-ci/gha-run-42";

    #[test]
    fn events_are_tied_to_their_stack_workspace_and_lock_file_by_the_encryption_context() {
        let listed = vec!["arn:aws:iam::123456789012:role/network-ci".to_owned()];
        let read = key_use(
            &event(
                "Decrypt",
                CI,
                "arn:aws:s3:::central-state/network/terraform.tfstate",
            ),
            "central-state",
            &stacks(),
            &listed,
        )
        .unwrap();
        assert_eq!(read.access, "read");
        assert!(read.listed, "a session of a listed role is listed");
        assert_eq!(
            read.touched,
            Touched::Stack {
                stack: "network".into(),
                workspace: None,
                lock_file: false
            }
        );
        let write = key_use(
            &event(
                "GenerateDataKey",
                "arn:aws:iam::123456789012:user/someone",
                "arn:aws:s3:::central-state/ws/staging/app/terraform.tfstate.tflock",
            ),
            "central-state",
            &stacks(),
            &listed,
        )
        .unwrap();
        assert_eq!(write.access, "write");
        assert!(!write.listed);
        assert_eq!(
            write.touched,
            Touched::Stack {
                stack: "app".into(),
                workspace: Some("staging".into()),
                lock_file: true
            }
        );
    }

    #[test]
    fn a_bucket_key_names_the_bucket_and_other_events_are_not_key_uses() {
        let bucket_key = key_use(
            &event("Decrypt", CI, "arn:aws:s3:::central-state"),
            "central-state",
            &stacks(),
            &[],
        )
        .unwrap();
        assert_eq!(bucket_key.touched, Touched::Bucket);
        assert_eq!(
            key_use(
                &event("DescribeKey", CI, "x"),
                "central-state",
                &stacks(),
                &[]
            ),
            None
        );
        let elsewhere = key_use(
            &event(
                "Decrypt",
                CI,
                "arn:aws:s3:::other-bucket/network/terraform.tfstate",
            ),
            "central-state",
            &stacks(),
            &[],
        )
        .unwrap();
        assert!(matches!(elsewhere.touched, Touched::Other { .. }));
    }
}
