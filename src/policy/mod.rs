//! Bucket policy documents: which statements the tool owns, comparing them by meaning, and
//! merging them into a live policy without touching anyone else's statements.

mod bucket;
pub mod evaluate;
mod identity;
pub mod key_policy;
pub mod lockout;
pub mod requirements;
mod template;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use bucket::{BUCKET_POLICY_MAX_BYTES, bucket_statements};
pub use identity::{
    IDENTITY_POLICY_MAX_CHARS_ROLE, IDENTITY_POLICY_MAX_CHARS_USER, extend_to_replica,
    identity_policy_for, identity_policy_name, inline_policy_quota, key_resource,
    kms_key_statement, only_through_s3, tier_identity_policy,
};
pub use template::{
    BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME, PolicyInputs, StackObjects, check_template,
    render_statements,
};

use crate::spec::{BucketName, StackSpec, StateKey, WorkspacePrefix};

/// Statements whose Sid starts with this are the tool's; all others are kept as they are.
pub const OWNED_SID_PREFIX: &str = "Statebucket";
pub const DENY_INSECURE_TRANSPORT_SID: &str = "StatebucketDenyInsecureTransport";
pub const EXCLUSIVE_SID: &str = "StatebucketExclusiveStateAccess";

/// Sids of statements the tool adds itself; a template may not use them.
pub fn is_reserved_sid(sid: &str) -> bool {
    sid == DENY_INSECURE_TRANSPORT_SID || sid == EXCLUSIVE_SID
}

pub fn bucket_arn(partition: &str, bucket: &BucketName) -> String {
    format!("arn:{partition}:s3:::{bucket}")
}

/// The objects of one stack's state: the default workspace's state and lock file, and the
/// patterns of every other workspace's (`<prefix>/<workspace>/<key>`, Terraform joins with
/// `path.Join`, so an empty prefix gives `<workspace>/<key>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateArns {
    pub state: String,
    pub workspace_state: String,
    pub lock: String,
    pub workspace_lock: String,
}

impl StateArns {
    pub fn new(bucket_arn: &str, key: &StateKey, prefix: &WorkspacePrefix) -> StateArns {
        let workspace_state = match prefix.as_str() {
            "" => format!("{bucket_arn}/*/{key}"),
            prefix => format!("{bucket_arn}/{prefix}/*/{key}"),
        };
        StateArns {
            state: format!("{bucket_arn}/{key}"),
            lock: format!("{bucket_arn}/{key}.tflock"),
            workspace_lock: format!("{workspace_state}.tflock"),
            workspace_state,
        }
    }

    pub fn of(bucket_arn: &str, stack: &StackSpec) -> StateArns {
        StateArns::new(bucket_arn, &stack.key, &stack.workspace_prefix())
    }

    /// The state objects of every workspace.
    pub fn states(&self) -> [&str; 2] {
        [&self.state, &self.workspace_state]
    }

    /// The lock files of every workspace.
    pub fn locks(&self) -> [&str; 2] {
        [&self.lock, &self.workspace_lock]
    }
}

/// The state objects and lock files of some stacks, every workspace included.
pub struct StatesAndLocks {
    pub states: Vec<String>,
    /// `<prefix>/*/<key>`: what `terraform workspace delete` deletes.
    pub workspace_states: Vec<String>,
    pub locks: Vec<String>,
}

impl StatesAndLocks {
    pub fn of<'s>(bucket_arn: &str, stacks: impl IntoIterator<Item = &'s StackSpec>) -> Self {
        let arns: Vec<StateArns> = stacks
            .into_iter()
            .map(|stack| StateArns::of(bucket_arn, stack))
            .collect();
        let owned = |pick: fn(&StateArns) -> [&str; 2]| {
            arns.iter().flat_map(pick).map(str::to_owned).collect()
        };
        StatesAndLocks {
            states: owned(StateArns::states),
            locks: owned(StateArns::locks),
            workspace_states: arns
                .iter()
                .map(|arns| arns.workspace_state.clone())
                .collect(),
        }
    }
}

/// An Allow statement of an identity policy (no `Principal`).
pub(crate) fn allow(sid: impl Into<String>, action: Value, resource: impl Serialize) -> Value {
    json!({"Sid": sid.into(), "Effect": "Allow", "Action": action, "Resource": resource})
}

/// An Allow statement of a resource policy, for these AWS principals.
pub(crate) fn allow_principals(
    sid: impl Into<String>,
    principals: &[String],
    action: Value,
    resource: impl Serialize,
) -> Value {
    json!({
        "Sid": sid.into(),
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": action,
        "Resource": resource,
    })
}

/// A policy field that is one string or a list of strings (`Action`, `Resource`, the
/// `AWS` of a `Principal`); anything else holds none.
pub(crate) fn strings(value: &Value) -> impl Iterator<Item = &str> {
    let items: Vec<&str> = match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    items.into_iter()
}

/// A bucket policy as S3 stores it: a version, an optional id, and statements kept as JSON
/// so that statements we do not own round-trip unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub version: Option<Value>,
    pub id: Option<Value>,
    pub statements: Vec<Value>,
}

impl PolicyDocument {
    /// A new document of these statements, in the current policy language version.
    pub fn of(statements: Vec<Value>) -> PolicyDocument {
        PolicyDocument {
            version: Some(json!("2012-10-17")),
            id: None,
            statements,
        }
    }

    /// Parses a policy as GetBucketPolicy returns it. A single statement object (allowed by
    /// the policy grammar) is read as a one-element list.
    pub fn parse(text: &str) -> Result<PolicyDocument, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|error| format!("the bucket policy is not valid JSON: {error}"))?;
        let Value::Object(mut object) = value else {
            return Err("the bucket policy is not a JSON object".into());
        };
        let statements = match object.remove("Statement") {
            Some(Value::Array(statements)) => statements,
            Some(statement @ Value::Object(_)) => vec![statement],
            None => Vec::new(),
            Some(_) => {
                return Err(
                    "the bucket policy's `Statement` is neither a list nor an object".into(),
                );
            }
        };
        Ok(PolicyDocument {
            version: object.remove("Version"),
            id: object.remove("Id"),
            statements,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).expect("a JSON value always serialises")
    }

    /// Without whitespace: IAM counts inline policy size against a small quota.
    pub fn to_compact_json(&self) -> String {
        self.to_value().to_string()
    }

    fn to_value(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "Version".into(),
            self.version.clone().unwrap_or_else(|| json!("2012-10-17")),
        );
        if let Some(id) = &self.id {
            object.insert("Id".into(), id.clone());
        }
        object.insert("Statement".into(), Value::Array(self.statements.clone()));
        Value::Object(object)
    }

    /// The statements' Sids, in order (statements without one are skipped).
    pub fn sids(&self) -> Vec<&str> {
        self.statements.iter().filter_map(sid).collect()
    }

    pub fn owned(&self) -> impl Iterator<Item = &Value> {
        self.statements
            .iter()
            .filter(|statement| is_owned(statement))
    }

    pub fn foreign(&self) -> impl Iterator<Item = &Value> {
        self.statements
            .iter()
            .filter(|statement| !is_owned(statement))
    }
}

pub fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

pub fn is_owned(statement: &Value) -> bool {
    sid(statement).is_some_and(|sid| sid.starts_with(OWNED_SID_PREFIX))
}

/// How the tool's statements differ between the live policy and the desired one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum StatementChange {
    Add { sid: String },
    Update { sid: String },
    Remove { sid: String },
}

/// Compares owned statements by meaning, keyed by Sid. Empty when in sync.
pub fn diff_owned(live: Option<&PolicyDocument>, desired_owned: &[Value]) -> Vec<StatementChange> {
    let live_owned: BTreeMap<&str, Value> = live
        .into_iter()
        .flat_map(PolicyDocument::owned)
        .filter_map(|statement| Some((sid(statement)?, normalize(statement))))
        .collect();
    let desired: BTreeMap<&str, Value> = desired_owned
        .iter()
        .filter_map(|statement| Some((sid(statement)?, normalize(statement))))
        .collect();
    let mut changes = Vec::new();
    for (sid, statement) in &desired {
        match live_owned.get(sid) {
            None => changes.push(StatementChange::Add {
                sid: (*sid).to_owned(),
            }),
            Some(live) if live != statement => changes.push(StatementChange::Update {
                sid: (*sid).to_owned(),
            }),
            Some(_) => {}
        }
    }
    for sid in live_owned.keys() {
        if !desired.contains_key(sid) {
            changes.push(StatementChange::Remove {
                sid: (*sid).to_owned(),
            });
        }
    }
    changes
}

/// The live policy with its owned statements replaced by `desired_owned`. Foreign
/// statements stay first, in their order and byte for byte; `Version` and `Id` are kept.
pub fn merge(live: Option<&PolicyDocument>, desired_owned: &[Value]) -> PolicyDocument {
    let mut statements: Vec<Value> = live
        .into_iter()
        .flat_map(PolicyDocument::foreign)
        .cloned()
        .collect();
    statements.extend(desired_owned.iter().cloned());
    PolicyDocument {
        version: live
            .and_then(|doc| doc.version.clone())
            .or_else(|| Some(json!("2012-10-17"))),
        id: live.and_then(|doc| doc.id.clone()),
        statements,
    }
}

/// The statement a log bucket needs so that the S3 logging service may deliver the access
/// logs of `source_bucket` (in `account`) under `prefix`: AWS's documented grant for
/// buckets with ACLs disabled, narrowed by `aws:SourceArn` and `aws:SourceAccount`.
pub fn log_delivery_statement(
    partition: &str,
    log_bucket: &str,
    prefix: &str,
    source_bucket: &str,
    account: &str,
) -> Value {
    json!({
        "Sid": log_delivery_sid(source_bucket),
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": format!("arn:{partition}:s3:::{log_bucket}/{prefix}*"),
        "Condition": {
            "ArnLike": {"aws:SourceArn": format!("arn:{partition}:s3:::{source_bucket}")},
            "StringEquals": {"aws:SourceAccount": account},
        },
    })
}

/// One Sid per source bucket, so several state buckets can share a log bucket. Sids allow
/// letters and digits only; the hash keeps `a-b` and `a.b` apart.
pub fn log_delivery_sid(source_bucket: &str) -> String {
    let letters: String = source_bucket
        .split(['-', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    let hash = source_bucket.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{OWNED_SID_PREFIX}LogDeliveryFor{letters}{hash:08x}")
}

/// `live` with `statement` added, or put in place of the statement with its Sid; every other
/// statement is kept as it is. `None` when `live` already holds it (compared by meaning).
/// Used on log buckets, where only this one statement is the tool's.
pub fn with_statement(live: Option<&PolicyDocument>, statement: &Value) -> Option<PolicyDocument> {
    let mut document = live.cloned().unwrap_or(PolicyDocument::of(Vec::new()));
    let wanted_sid = sid(statement);
    match document
        .statements
        .iter()
        .position(|existing| sid(existing) == wanted_sid)
    {
        Some(index) if normalize(&document.statements[index]) == normalize(statement) => None,
        Some(index) => {
            document.statements[index] = statement.clone();
            Some(document)
        }
        None => {
            document.statements.push(statement.clone());
            Some(document)
        }
    }
}

/// A label for each foreign statement, for the plan: its Sid, or its position.
pub fn foreign_labels(live: Option<&PolicyDocument>) -> Vec<String> {
    live.into_iter()
        .flat_map(|doc| doc.statements.iter().enumerate())
        .filter(|(_, statement)| !is_owned(statement))
        .map(|(index, statement)| match sid(statement) {
            Some(sid) if !sid.is_empty() => sid.to_owned(),
            _ => format!("statement #{} (no Sid)", index + 1),
        })
        .collect()
}

/// The canonical form IAM gives a statement: one-element lists equal their string, order of
/// actions, resources, principals and condition values does not matter, and condition values
/// are strings (`false` and `"false"` mean the same).
pub fn normalize(statement: &Value) -> Value {
    let Value::Object(object) = statement else {
        return statement.clone();
    };
    let mut out = BTreeMap::new();
    for (key, value) in object {
        let value = match key.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => string_set(value),
            "Principal" | "NotPrincipal" => principal(value),
            "Condition" => condition(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out.into_iter().collect())
}

fn scalar_text(value: &Value) -> Value {
    match value {
        Value::String(_) => value.clone(),
        Value::Bool(flag) => Value::String(flag.to_string()),
        Value::Number(number) => Value::String(number.to_string()),
        other => other.clone(),
    }
}

fn string_set(value: &Value) -> Value {
    let mut items: Vec<Value> = match value {
        Value::Array(items) => items.iter().map(scalar_text).collect(),
        single => vec![scalar_text(single)],
    };
    items.sort_by_key(|item| item.to_string());
    items.dedup();
    Value::Array(items)
}

fn principal(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let normalized: BTreeMap<String, Value> = map
                .iter()
                .map(|(kind, ids)| (kind.clone(), string_set(ids)))
                .collect();
            if normalized.len() == 1 && normalized.get("AWS") == Some(&json!(["*"])) {
                return json!("*");
            }
            Value::Object(normalized.into_iter().collect())
        }
        other => other.clone(),
    }
}

fn condition(value: &Value) -> Value {
    match value {
        Value::Object(operators) => Value::Object(
            operators
                .iter()
                .map(|(operator, keys)| {
                    let keys = match keys {
                        Value::Object(keys) => Value::Object(
                            keys.iter()
                                .map(|(key, values)| (key.clone(), string_set(values)))
                                .collect::<BTreeMap<_, _>>()
                                .into_iter()
                                .collect(),
                        ),
                        other => other.clone(),
                    };
                    (operator.clone(), keys)
                })
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned_statement() -> Value {
        json!({
            "Sid": "StatebucketListStateBucket",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:role/b"]},
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::bucket"
        })
    }

    #[test]
    fn order_and_string_versus_list_do_not_matter() {
        let reordered = json!({
            "Resource": ["arn:aws:s3:::bucket"],
            "Action": ["s3:ListBucket"],
            "Principal": {"AWS": ["arn:aws:iam::123456789012:role/b", "arn:aws:iam::123456789012:user/a"]},
            "Effect": "Allow",
            "Sid": "StatebucketListStateBucket"
        });
        assert_eq!(normalize(&owned_statement()), normalize(&reordered));
        let condition_a =
            json!({"Sid": "x", "Condition": {"Bool": {"aws:SecureTransport": false}}});
        let condition_b =
            json!({"Sid": "x", "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}});
        assert_eq!(normalize(&condition_a), normalize(&condition_b));
        assert_eq!(
            normalize(&json!({"Principal": {"AWS": "*"}})),
            normalize(&json!({"Principal": "*"}))
        );
    }

    #[test]
    fn a_changed_principal_is_a_change() {
        let mut changed = owned_statement();
        changed["Principal"]["AWS"] = json!("arn:aws:iam::123456789012:role/b");
        let live = PolicyDocument {
            version: None,
            id: None,
            statements: vec![changed],
        };
        assert_eq!(
            diff_owned(Some(&live), &[owned_statement()]),
            vec![StatementChange::Update {
                sid: "StatebucketListStateBucket".into()
            }]
        );
    }

    #[test]
    fn diff_reports_added_and_removed_owned_statements_only() {
        let foreign = json!({"Sid": "AuditorRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"});
        let stale = json!({"Sid": "StatebucketOld", "Effect": "Allow"});
        let live = PolicyDocument {
            version: None,
            id: None,
            statements: vec![foreign, stale],
        };
        assert_eq!(
            diff_owned(Some(&live), &[owned_statement()]),
            vec![
                StatementChange::Add {
                    sid: "StatebucketListStateBucket".into()
                },
                StatementChange::Remove {
                    sid: "StatebucketOld".into()
                },
            ]
        );
        assert_eq!(diff_owned(None, &[]), vec![]);
    }

    #[test]
    fn merge_keeps_foreign_statements_first_and_verbatim() {
        let live_text = r#"{"Version":"2012-10-17","Id":"keep-me","Statement":[{"Sid":"AuditorRead","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"},{"Effect":"Deny","Principal":"*","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::bucket"},{"Sid":"StatebucketOld","Effect":"Allow"}]}"#;
        let live = PolicyDocument::parse(live_text).unwrap();
        let merged = merge(Some(&live), &[owned_statement()]);
        assert_eq!(merged.id, Some(json!("keep-me")));
        assert_eq!(merged.statements.len(), 3);
        assert_eq!(merged.statements[0], live.statements[0]);
        assert_eq!(merged.statements[1], live.statements[1]);
        assert_eq!(merged.statements[2], owned_statement());
        assert_eq!(
            foreign_labels(Some(&live)),
            vec!["AuditorRead", "statement #2 (no Sid)"]
        );
        let reparsed = PolicyDocument::parse(&merged.to_json()).unwrap();
        assert_eq!(reparsed, merged);
        assert!(diff_owned(Some(&reparsed), &[owned_statement()]).is_empty());
    }

    #[test]
    fn log_delivery_grants_are_per_source_bucket_and_keep_the_rest() {
        let sid_a = log_delivery_sid("acme-state.dev");
        assert!(sid_a.chars().all(|c| c.is_ascii_alphanumeric()), "{sid_a}");
        assert!(sid_a.starts_with("StatebucketLogDeliveryForAcmeStateDev"));
        assert_ne!(log_delivery_sid("a-b"), log_delivery_sid("a.b"));

        let grant = |source: &str| {
            log_delivery_statement("aws", "logs", &format!("{source}/"), source, "123456789012")
        };
        let foreign = json!({"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"});
        let live = PolicyDocument::of(vec![foreign.clone(), grant("other-state")]);
        let added = with_statement(Some(&live), &grant("my-state")).unwrap();
        assert_eq!(
            added.statements,
            vec![foreign.clone(), grant("other-state"), grant("my-state")]
        );
        assert_eq!(with_statement(Some(&added), &grant("my-state")), None);

        let mut moved = grant("my-state");
        moved["Resource"] = json!("arn:aws:s3:::logs/elsewhere/*");
        let replaced = with_statement(Some(&added), &moved).unwrap();
        assert_eq!(replaced.statements.len(), 3);
        assert_eq!(replaced.statements[2], moved);
        assert_eq!(
            with_statement(None, &moved).unwrap().statements,
            vec![moved]
        );
    }

    #[test]
    fn parse_accepts_a_single_statement_object_and_rejects_garbage() {
        let doc = PolicyDocument::parse(r#"{"Statement":{"Sid":"A"}}"#).unwrap();
        assert_eq!(doc.statements.len(), 1);
        assert!(PolicyDocument::parse("not json").is_err());
        assert!(PolicyDocument::parse("[]").is_err());
        assert!(PolicyDocument::parse(r#"{"Statement":3}"#).is_err());
    }
}
