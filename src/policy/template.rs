//! Bucket policy templates: JSON with `{{placeholder}}` strings, filled in per environment.
//!
//! A string that is exactly a list placeholder (`"{{principals}}"`) becomes a JSON list;
//! scalar placeholders may stand anywhere inside a string. Substitution happens on parsed
//! JSON, never on text, so no value can break the document's quoting.

use serde_json::{Value, json};

use super::{DENY_INSECURE_TRANSPORT_SID, EXCLUSIVE_SID, OWNED_SID_PREFIX, StateArns, sid};
use crate::spec::names::Problem;
use crate::spec::{AccountId, BucketName, Diagnostic, IamArn, Pos, Region, StateKey};

pub const BUILTIN_TEMPLATE: &str = include_str!("../../policies/state-access.json");
pub const BUILTIN_TEMPLATE_NAME: &str = "policies/state-access.json";

/// Placeholders with one value per stack: a string holding one becomes one string per stack
/// of the grant (a list, flattened into an enclosing list).
const STACK_PLACEHOLDERS: &[&str] = &[
    "state_key",
    "state_object_arn",
    "lock_object_arn",
    "workspace_state_arn",
    "workspace_lock_arn",
];
const SCALAR_PLACEHOLDERS: &[&str] = &["bucket", "bucket_arn", "account_id", "partition", "region"];
const LIST_PLACEHOLDERS: &[&str] = &["principals", "user_arns", "role_arns"];

/// One stack's state objects, as a grant's template sees them.
#[derive(Debug, Clone)]
pub struct StackObjects<'a> {
    pub key: &'a StateKey,
    pub arns: StateArns,
}

/// Everything a template can refer to, for one grant: its principals on its stacks.
#[derive(Debug, Clone)]
pub struct PolicyInputs<'a> {
    pub bucket: &'a BucketName,
    pub region: &'a Region,
    pub account_id: &'a AccountId,
    /// Never empty.
    pub stacks: Vec<StackObjects<'a>>,
    pub users: Vec<IamArn>,
    pub roles: Vec<IamArn>,
    /// Put after `Statebucket` in every Sid: the stack that owns the grant, or nothing for
    /// the spec-level grant (whose Sids stay as the template writes them).
    pub sid_owner: String,
}

impl PolicyInputs<'_> {
    fn bucket_arn(&self) -> String {
        super::bucket_arn(self.region.partition(), self.bucket)
    }

    fn scalar(&self, name: &str) -> Option<String> {
        Some(match name {
            "bucket" => self.bucket.to_string(),
            "bucket_arn" => self.bucket_arn(),
            "account_id" => self.account_id.to_string(),
            "partition" => self.region.partition().to_owned(),
            "region" => self.region.to_string(),
            _ => return None,
        })
    }

    fn per_stack(name: &str, stack: &StackObjects<'_>) -> Option<String> {
        Some(match name {
            "state_key" => stack.key.to_string(),
            "state_object_arn" => stack.arns.state.clone(),
            "lock_object_arn" => stack.arns.lock.clone(),
            "workspace_state_arn" => stack.arns.workspace_state.clone(),
            "workspace_lock_arn" => stack.arns.workspace_lock.clone(),
            _ => return None,
        })
    }

    fn list(&self, name: &str) -> Option<Vec<String>> {
        let arns = |list: &[IamArn]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        Some(match name {
            "principals" => self
                .users
                .iter()
                .chain(&self.roles)
                .map(ToString::to_string)
                .collect(),
            "user_arns" => arns(&self.users),
            "role_arns" => arns(&self.roles),
            _ => return None,
        })
    }
}

/// Parses a template and checks its statement ids, without filling anything in: every
/// statement is the tool's (`Statebucket…`), once, and none takes a reserved id. Errors
/// name the template file, line and column.
pub fn check_template(file: &str, template: &str) -> Result<Vec<Value>, Vec<Diagnostic>> {
    let at = |pos: Pos, problem: Problem| Diagnostic::new(file, pos, problem);
    let document: Value = serde_json::from_str(template).map_err(|error| {
        vec![at(
            Pos { line: error.line(), column: error.column() },
            Problem::new(format!("the policy template is not valid JSON: {error}"))
                .hint("check commas and quotes; placeholders are written inside strings, e.g. \"{{bucket_arn}}\""),
        )]
    })?;
    let Some(Value::Array(statements)) = document.get("Statement") else {
        return Err(vec![at(
            Pos { line: 1, column: 1 },
            Problem::new("the policy template has no `Statement` list")
                .hint("a template is a policy document: { \"Version\": \"2012-10-17\", \"Statement\": [ … ] }"),
        )]);
    };
    let mut diagnostics = Vec::new();
    let mut seen_sids: Vec<&str> = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        match sid(statement) {
            Some(sid) if super::is_reserved_sid(sid) => diagnostics.push(at(
                position_of(template, sid),
                Problem::new(format!("Sid `{sid}` is reserved for a statement the tool adds itself"))
                    .hint("remove this statement from the template"),
            )),
            Some(sid) if !sid.starts_with(OWNED_SID_PREFIX) => diagnostics.push(at(
                position_of(template, sid),
                Problem::new(format!("Sid `{sid}` does not start with `{OWNED_SID_PREFIX}`"))
                    .hint(format!("the tool owns exactly the statements whose Sid starts with `{OWNED_SID_PREFIX}`; rename it, e.g. `{OWNED_SID_PREFIX}{sid}`")),
            )),
            Some(sid) if seen_sids.contains(&sid) => diagnostics.push(at(
                position_of(template, sid),
                Problem::new(format!("Sid `{sid}` is used twice")).hint("give each statement its own Sid"),
            )),
            Some(sid) => seen_sids.push(sid),
            None => diagnostics.push(at(
                position_of(template, "\"Statement\""),
                Problem::new(format!("statement #{} has no Sid", index + 1))
                    .hint(format!("give it a Sid starting with `{OWNED_SID_PREFIX}` so the tool can recognise it later")),
            )),
        }
    }
    if diagnostics.is_empty() {
        Ok(statements.clone())
    } else {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        Err(diagnostics)
    }
}

/// The statements of one grant: the template's, filled in for its principals and stacks,
/// each Sid naming the grant's owning stack. Errors name the template file, line and column.
pub fn render_statements(
    file: &str,
    template: &str,
    inputs: &PolicyInputs<'_>,
) -> Result<Vec<Value>, Vec<Diagnostic>> {
    let statements = check_template(file, template)?;
    let mut filling = Filling {
        file,
        template,
        inputs,
        diagnostics: Vec::new(),
    };
    let mut rendered = Vec::with_capacity(statements.len());
    for statement in &statements {
        let mut filled = filling.substitute(statement).into_value();
        if let Some(sid) = sid(&filled).and_then(|sid| sid.strip_prefix(OWNED_SID_PREFIX)) {
            filled["Sid"] = json!(format!("{OWNED_SID_PREFIX}{}{sid}", inputs.sid_owner));
        }
        rendered.push(filled);
    }
    let mut diagnostics = filling.diagnostics;
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        return Err(diagnostics);
    }
    Ok(rendered)
}

/// Deny reading, writing and listing state to every principal but `exempt`. The condition
/// on `aws:PrincipalArn` (the role, not the session, for assumed roles) is AWS's recommended
/// form; `NotPrincipal` with Deny would also deny every role session.
pub fn deny_everyone_else(bucket_arn: &str, exempt: &[IamArn]) -> Value {
    let exempt: Vec<String> = exempt.iter().map(ToString::to_string).collect();
    json!({
        "Sid": EXCLUSIVE_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:PutObject"
        ],
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": { "ArnNotLike": { "aws:PrincipalArn": exempt } }
    })
}

/// Deny any request not made over TLS, on the bucket and every object.
pub fn deny_insecure_transport(bucket_arn: &str) -> Value {
    json!({
        "Sid": DENY_INSECURE_TRANSPORT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// A template value filled in: one value, or (for a string holding a per-stack placeholder
/// in a grant of several stacks) one per stack.
enum Filled {
    One(Value),
    Many(Vec<Value>),
}

impl Filled {
    fn into_value(self) -> Value {
        match self {
            Filled::One(value) => value,
            Filled::Many(values) => Value::Array(values),
        }
    }
}

/// One grant's template being filled in, with the problems found on the way (each names
/// the template file, line and column).
struct Filling<'a> {
    file: &'a str,
    template: &'a str,
    inputs: &'a PolicyInputs<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl Filling<'_> {
    fn report(&mut self, placeholder: &str, problem: Problem) {
        let pos = position_of(self.template, placeholder);
        self.diagnostics
            .push(Diagnostic::new(self.file, pos, problem));
    }

    fn substitute(&mut self, value: &Value) -> Filled {
        match value {
            Value::String(text) => self.substitute_string(text),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match self.substitute(item) {
                        Filled::One(value) => out.push(value),
                        Filled::Many(values) => out.extend(values),
                    }
                }
                Filled::One(Value::Array(out))
            }
            Value::Object(map) => Filled::One(Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), self.substitute(value).into_value()))
                    .collect(),
            )),
            other => Filled::One(other.clone()),
        }
    }

    fn substitute_string(&mut self, text: &str) -> Filled {
        let inputs = self.inputs;
        if let Some(name) = text
            .strip_prefix("{{")
            .and_then(|rest| rest.strip_suffix("}}"))
            && let Some(list) = inputs.list(name)
        {
            if list.is_empty() {
                self.report(
                text,
                Problem::new(format!("`{{{{{name}}}}}` is empty for this grant")).hint(
                    "list at least one principal of that kind in `access`, or use `{{principals}}`",
                ),
            );
            }
            return Filled::One(json!(list));
        }
        let per_stack = STACK_PLACEHOLDERS
            .iter()
            .any(|name| text.contains(&format!("{{{{{name}}}}}")));
        if !per_stack {
            return Filled::One(Value::String(self.fill(text, None)));
        }
        let mut values: Vec<Value> = Vec::with_capacity(inputs.stacks.len());
        for stack in &inputs.stacks {
            let value = Value::String(self.fill(text, Some(stack)));
            if !values.contains(&value) {
                values.push(value);
            }
        }
        match values.len() {
            1 => Filled::One(values.remove(0)),
            _ => Filled::Many(values),
        }
    }

    /// `text` with its scalar placeholders (and, for `stack`, the per-stack ones) filled in.
    fn fill(&mut self, text: &str, stack: Option<&StackObjects<'_>>) -> String {
        let inputs = self.inputs;
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            let placeholder = &rest[start..start + 2 + end + 2];
            let value = inputs
                .scalar(name)
                .or_else(|| stack.and_then(|stack| PolicyInputs::per_stack(name, stack)));
            match value {
                Some(value) => out.push_str(&value),
                None if LIST_PLACEHOLDERS.contains(&name) => self.report(
                    placeholder,
                    Problem::new(format!(
                        "`{placeholder}` is a list and must be the whole string"
                    ))
                    .hint(format!(
                        "write \"{placeholder}\" on its own, e.g. \"AWS\": \"{placeholder}\""
                    )),
                ),
                None => {
                    let known: Vec<&str> = SCALAR_PLACEHOLDERS[..2]
                        .iter()
                        .chain(STACK_PLACEHOLDERS)
                        .chain(&SCALAR_PLACEHOLDERS[2..])
                        .chain(LIST_PLACEHOLDERS)
                        .copied()
                        .collect();
                    let problem = Problem::new(format!("unknown placeholder `{placeholder}`"));
                    let problem = match crate::spec::names::closest(name, known.iter().copied()) {
                        Some(near) => problem.hint(format!("did you mean `{{{{{near}}}}}`?")),
                        None => problem.hint(format!("known placeholders: {}", known.join(", "))),
                    };
                    self.report(placeholder, problem);
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// Line and column (1-based) of the first occurrence of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> Pos {
    let Some(offset) = text.find(needle) else {
        return Pos { line: 1, column: 1 };
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |n| n + 1)..]
        .chars()
        .count()
        + 1;
    Pos { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{PrincipalKind, PrincipalRef, WorkspacePrefix};

    struct Fixture {
        bucket: BucketName,
        region: Region,
        account: AccountId,
        keys: Vec<StateKey>,
        prefix: WorkspacePrefix,
    }

    fn fixture() -> Fixture {
        Fixture {
            bucket: BucketName::parse("my-state").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            account: AccountId::parse("123456789012").unwrap(),
            keys: vec![StateKey::parse("app/terraform.tfstate").unwrap()],
            prefix: WorkspacePrefix::terraform_default(),
        }
    }

    fn inputs(fixture: &Fixture) -> PolicyInputs<'_> {
        let user = PrincipalRef::parse("terraform", PrincipalKind::User).unwrap();
        let role = PrincipalRef::parse("terraform-ci", PrincipalKind::Role).unwrap();
        let bucket_arn = super::super::bucket_arn("aws", &fixture.bucket);
        PolicyInputs {
            bucket: &fixture.bucket,
            region: &fixture.region,
            account_id: &fixture.account,
            stacks: fixture
                .keys
                .iter()
                .map(|key| StackObjects {
                    key,
                    arns: StateArns::new(&bucket_arn, key, &fixture.prefix),
                })
                .collect(),
            users: vec![user.resolve("aws", &fixture.account)],
            roles: vec![role.resolve("aws", &fixture.account)],
            sid_owner: String::new(),
        }
    }

    #[test]
    fn builtin_template_grants_least_privilege_to_users_and_roles() {
        let fixture = fixture();
        let statements =
            render_statements(BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE, &inputs(&fixture)).unwrap();
        // Every statement names both the user and the role.
        let writers = json!({"AWS": [
            "arn:aws:iam::123456789012:user/terraform",
            "arn:aws:iam::123456789012:role/terraform-ci"
        ]});
        let expected = json!([
            {
                "Sid": "StatebucketListStateBucket",
                "Effect": "Allow",
                "Principal": writers,
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::my-state"
            },
            {
                "Sid": "StatebucketReadWriteState",
                "Effect": "Allow",
                "Principal": writers,
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"]
            },
            {
                "Sid": "StatebucketDeleteWorkspaceState",
                "Effect": "Allow",
                "Principal": writers,
                "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"
            },
            {
                "Sid": "StatebucketLockFiles",
                "Effect": "Allow",
                "Principal": writers,
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate.tflock", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate.tflock"]
            }
        ]);
        assert_eq!(Value::Array(statements), expected);
    }

    #[test]
    fn a_grant_of_several_stacks_lists_each_stacks_objects_and_names_its_owner() {
        let mut fixture = fixture();
        fixture
            .keys
            .push(StateKey::parse("network/terraform.tfstate").unwrap());
        let mut two = inputs(&fixture);
        two.sid_owner = "Platform".into();
        let statements = render_statements(BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE, &two).unwrap();
        assert_eq!(statements[0]["Sid"], "StatebucketPlatformListStateBucket");
        assert_eq!(statements[0]["Resource"], "arn:aws:s3:::my-state");
        assert_eq!(
            statements[1]["Resource"],
            json!([
                "arn:aws:s3:::my-state/app/terraform.tfstate",
                "arn:aws:s3:::my-state/network/terraform.tfstate",
                "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate",
                "arn:aws:s3:::my-state/env:/*/network/terraform.tfstate"
            ])
        );
        let scalar = r#"{"Statement": [{"Sid": "StatebucketA", "Resource": "{{bucket_arn}}/{{state_key}}", "Condition": {"StringLike": {"s3:prefix": "{{state_key}}"}}}]}"#;
        let statements = render_statements("t.json", scalar, &two).unwrap();
        assert_eq!(
            statements[0]["Resource"],
            json!([
                "arn:aws:s3:::my-state/app/terraform.tfstate",
                "arn:aws:s3:::my-state/network/terraform.tfstate"
            ])
        );
        assert_eq!(
            statements[0]["Condition"]["StringLike"]["s3:prefix"],
            json!(["app/terraform.tfstate", "network/terraform.tfstate"])
        );
    }

    #[test]
    fn the_statements_the_tool_adds_itself() {
        let break_glass = PrincipalRef::parse("break-glass", PrincipalKind::Role)
            .unwrap()
            .resolve("aws", &AccountId::parse("123456789012").unwrap());
        let deny = deny_everyone_else("arn:aws:s3:::my-state", &[break_glass]);
        assert_eq!(deny["Sid"], EXCLUSIVE_SID);
        assert_eq!(
            deny["Condition"],
            json!({"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/break-glass"]}})
        );
        let tls = deny_insecure_transport("arn:aws:s3:::my-state");
        assert_eq!(
            tls,
            json!({
                "Sid": "StatebucketDenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::my-state", "arn:aws:s3:::my-state/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            })
        );
    }

    #[test]
    fn unknown_placeholders_are_located() {
        let fixture = fixture();
        let template = "{\n  \"Statement\": [\n    {\"Sid\": \"StatebucketX\", \"Resource\": \"{{bucket_ar}}/x\"}\n  ]\n}\n";
        let errors =
            render_statements("policies/custom.json", template, &inputs(&fixture)).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (3, 42));
        assert_eq!(errors[0].message, "unknown placeholder `{{bucket_ar}}`");
        assert_eq!(
            errors[0].hint.as_deref(),
            Some("did you mean `{{bucket_arn}}`?")
        );
    }

    #[test]
    fn template_statements_must_be_owned_and_unique() {
        let template = r#"{"Statement": [{"Sid": "Mine"}, {"Sid": "StatebucketA"}, {"Sid": "StatebucketA"}, {"Effect": "Allow"}, {"Sid": "StatebucketDenyInsecureTransport"}]}"#;
        let errors = check_template("t.json", template).unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("does not start with `Statebucket`"))
        );
        assert!(messages.iter().any(|m| m.contains("used twice")));
        assert!(messages.iter().any(|m| m.contains("has no Sid")));
        assert!(messages.iter().any(|m| m.contains("reserved")));
    }

    #[test]
    fn malformed_templates() {
        let fixture = fixture();
        let broken = render_statements("t.json", "{\n  \"Statement\": [,]\n}", &inputs(&fixture))
            .unwrap_err();
        assert_eq!((broken[0].line, broken[0].column), (2, 17));
        assert!(
            broken[0]
                .message
                .starts_with("the policy template is not valid JSON")
        );
        let no_statements = render_statements("t.json", "{}", &inputs(&fixture)).unwrap_err();
        assert!(no_statements[0].message.contains("no `Statement` list"));
        let embedded_list = render_statements(
            "t.json",
            r#"{"Statement": [{"Sid": "StatebucketA", "Principal": "x{{principals}}"}]}"#,
            &inputs(&fixture),
        )
        .unwrap_err();
        assert!(embedded_list[0].message.contains("is a list"));
    }

    #[test]
    fn empty_list_placeholders_are_refused() {
        let fixture = fixture();
        let mut only_users = inputs(&fixture);
        only_users.roles.clear();
        let template =
            r#"{"Statement": [{"Sid": "StatebucketA", "Principal": {"AWS": "{{role_arns}}"}}]}"#;
        let errors = render_statements("t.json", template, &only_users).unwrap_err();
        assert!(errors[0].message.contains("`{{role_arns}}` is empty"));
    }

    #[test]
    fn custom_workspace_prefixes_shape_the_workspace_arns() {
        let mut fixture = fixture();
        fixture.prefix = WorkspacePrefix::parse("").unwrap();
        let template = r#"{"Statement": [{"Sid": "StatebucketA", "Resource": ["{{workspace_state_arn}}", "{{workspace_lock_arn}}"]}]}"#;
        let statements = render_statements("t.json", template, &inputs(&fixture)).unwrap();
        assert_eq!(
            statements[0]["Resource"],
            json!([
                "arn:aws:s3:::my-state/*/app/terraform.tfstate",
                "arn:aws:s3:::my-state/*/app/terraform.tfstate.tflock"
            ])
        );
    }
}
