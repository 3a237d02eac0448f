//! Bucket policy templates: JSON with `{{placeholder}}` strings, filled in per environment.
//!
//! A string that is exactly a list placeholder (`"{{principals}}"`) becomes a JSON list;
//! scalar placeholders may stand anywhere inside a string. Substitution happens on parsed
//! JSON, never on text, so no value can break the document's quoting.

use serde_json::{Value, json};

use super::{DENY_INSECURE_TRANSPORT_SID, EXCLUSIVE_SID, OWNED_SID_PREFIX, sid};
use crate::spec::names::Problem;
use crate::spec::{
    AccountId, BucketName, Diagnostic, IamArn, Pos, Region, StateKey, WorkspacePrefix,
};

pub const BUILTIN_TEMPLATE: &str = include_str!("../../policies/state-access.json");
pub const BUILTIN_TEMPLATE_NAME: &str = "policies/state-access.json";

const SCALAR_PLACEHOLDERS: &[&str] = &[
    "bucket",
    "bucket_arn",
    "state_key",
    "state_object_arn",
    "lock_object_arn",
    "workspace_state_arn",
    "workspace_lock_arn",
    "account_id",
    "partition",
    "region",
];
const LIST_PLACEHOLDERS: &[&str] = &["principals", "user_arns", "role_arns"];

/// Everything a template can refer to.
#[derive(Debug, Clone)]
pub struct PolicyInputs<'a> {
    pub bucket: &'a BucketName,
    pub region: &'a Region,
    pub account_id: &'a AccountId,
    pub state_key: &'a StateKey,
    pub workspace_prefix: WorkspacePrefix,
    pub users: Vec<IamArn>,
    pub roles: Vec<IamArn>,
    /// Whether to add the TLS-only deny. Off only for a plain-HTTP endpoint (a local server
    /// or an S3-compatible store without TLS), where no client could satisfy it and every
    /// object request would be refused.
    pub require_tls: bool,
    /// With `access.exclusive`: the principals (and break-glass role) still allowed to read
    /// or write state; everyone else is denied.
    pub exclusive: Option<Vec<IamArn>>,
}

impl PolicyInputs<'_> {
    fn bucket_arn(&self) -> String {
        format!("arn:{}:s3:::{}", self.region.partition(), self.bucket)
    }

    /// Non-default workspaces live at `<prefix>/<workspace>/<key>` (Terraform joins with
    /// `path.Join`, so an empty prefix gives `<workspace>/<key>`).
    fn workspace_object_arn(&self) -> String {
        match self.workspace_prefix.as_str() {
            "" => format!("{}/*/{}", self.bucket_arn(), self.state_key),
            prefix => format!("{}/{prefix}/*/{}", self.bucket_arn(), self.state_key),
        }
    }

    fn scalar(&self, name: &str) -> Option<String> {
        Some(match name {
            "bucket" => self.bucket.to_string(),
            "bucket_arn" => self.bucket_arn(),
            "state_key" => self.state_key.to_string(),
            "state_object_arn" => format!("{}/{}", self.bucket_arn(), self.state_key),
            "lock_object_arn" => format!("{}/{}.tflock", self.bucket_arn(), self.state_key),
            "workspace_state_arn" => self.workspace_object_arn(),
            "workspace_lock_arn" => format!("{}.tflock", self.workspace_object_arn()),
            "account_id" => self.account_id.to_string(),
            "partition" => self.region.partition().to_owned(),
            "region" => self.region.to_string(),
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

/// The statements the tool owns for one environment: the template's, filled in, then the
/// TLS-only deny (see `require_tls`). Errors name the template file, line and column.
pub fn render_statements(
    file: &str,
    template: &str,
    inputs: &PolicyInputs<'_>,
) -> Result<Vec<Value>, Vec<Diagnostic>> {
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
            Some(sid) if sid == DENY_INSECURE_TRANSPORT_SID || sid == EXCLUSIVE_SID => diagnostics.push(at(
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

    let mut rendered = Vec::with_capacity(statements.len() + 1);
    for statement in statements {
        rendered.push(substitute(
            statement,
            template,
            inputs,
            &mut |pos, problem| diagnostics.push(at(pos, problem)),
        ));
    }
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        return Err(diagnostics);
    }
    if let Some(exempt) = &inputs.exclusive {
        rendered.push(deny_everyone_else(inputs, exempt));
    }
    if inputs.require_tls {
        rendered.push(deny_insecure_transport(inputs));
    }
    Ok(rendered)
}

/// Deny reading, writing and listing state to every principal but `exempt`. The condition
/// on `aws:PrincipalArn` (the role, not the session, for assumed roles) is AWS's recommended
/// form; `NotPrincipal` with Deny would also deny every role session.
fn deny_everyone_else(inputs: &PolicyInputs<'_>, exempt: &[IamArn]) -> Value {
    let bucket_arn = inputs.bucket_arn();
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
        "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
        "Condition": { "ArnNotLike": { "aws:PrincipalArn": exempt } }
    })
}

/// Deny any request not made over TLS, on the bucket and every object.
fn deny_insecure_transport(inputs: &PolicyInputs<'_>) -> Value {
    let bucket_arn = inputs.bucket_arn();
    json!({
        "Sid": DENY_INSECURE_TRANSPORT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

fn substitute(
    value: &Value,
    template: &str,
    inputs: &PolicyInputs<'_>,
    report: &mut impl FnMut(Pos, Problem),
) -> Value {
    match value {
        Value::String(text) => substitute_string(text, template, inputs, report),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute(item, template, inputs, report))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), substitute(value, template, inputs, report)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute_string(
    text: &str,
    template: &str,
    inputs: &PolicyInputs<'_>,
    report: &mut impl FnMut(Pos, Problem),
) -> Value {
    if let Some(name) = text
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        && let Some(list) = inputs.list(name)
    {
        if list.is_empty() {
            report(
                position_of(template, text),
                Problem::new(format!("`{{{{{name}}}}}` is empty for this environment")).hint(
                    "list at least one principal of that kind in `access`, or use `{{principals}}`",
                ),
            );
        }
        return json!(list);
    }
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
        match inputs.scalar(name) {
            Some(value) => out.push_str(&value),
            None if LIST_PLACEHOLDERS.contains(&name) => report(
                position_of(template, placeholder),
                Problem::new(format!(
                    "`{placeholder}` is a list and must be the whole string"
                ))
                .hint(format!(
                    "write \"{placeholder}\" on its own, e.g. \"AWS\": \"{placeholder}\""
                )),
            ),
            None => {
                let known: Vec<&str> = SCALAR_PLACEHOLDERS
                    .iter()
                    .chain(LIST_PLACEHOLDERS)
                    .copied()
                    .collect();
                let problem = Problem::new(format!("unknown placeholder `{placeholder}`"));
                let problem = match crate::spec::names::closest(name, known.iter().copied()) {
                    Some(near) => problem.hint(format!("did you mean `{{{{{near}}}}}`?")),
                    None => problem.hint(format!("known placeholders: {}", known.join(", "))),
                };
                report(position_of(template, placeholder), problem);
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Value::String(out)
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
    use crate::spec::{PrincipalKind, PrincipalRef};

    struct Fixture {
        bucket: BucketName,
        region: Region,
        account: AccountId,
        key: StateKey,
        prefix: WorkspacePrefix,
    }

    fn fixture() -> Fixture {
        Fixture {
            bucket: BucketName::parse("my-state").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            account: AccountId::parse("123456789012").unwrap(),
            key: StateKey::parse("app/terraform.tfstate").unwrap(),
            prefix: WorkspacePrefix::terraform_default(),
        }
    }

    fn inputs(fixture: &Fixture) -> PolicyInputs<'_> {
        let user = PrincipalRef::parse("terraform", PrincipalKind::User).unwrap();
        let role = PrincipalRef::parse("terraform-ci", PrincipalKind::Role).unwrap();
        PolicyInputs {
            bucket: &fixture.bucket,
            region: &fixture.region,
            account_id: &fixture.account,
            state_key: &fixture.key,
            workspace_prefix: fixture.prefix.clone(),
            users: vec![user.resolve("aws", &fixture.account)],
            roles: vec![role.resolve("aws", &fixture.account)],
            require_tls: true,
            exclusive: None,
        }
    }

    #[test]
    fn builtin_template_grants_least_privilege_to_users_and_roles() {
        let fixture = fixture();
        let statements =
            render_statements(BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE, &inputs(&fixture)).unwrap();
        let expected = json!([
            {
                "Sid": "StatebucketListStateBucket",
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::123456789012:user/terraform", "arn:aws:iam::123456789012:role/terraform-ci"]},
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::my-state"
            },
            {
                "Sid": "StatebucketReadWriteState",
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::123456789012:user/terraform", "arn:aws:iam::123456789012:role/terraform-ci"]},
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate"]
            },
            {
                "Sid": "StatebucketLockFiles",
                "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::123456789012:user/terraform", "arn:aws:iam::123456789012:role/terraform-ci"]},
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": ["arn:aws:s3:::my-state/app/terraform.tfstate.tflock", "arn:aws:s3:::my-state/env:/*/app/terraform.tfstate.tflock"]
            },
            {
                "Sid": "StatebucketDenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::my-state", "arn:aws:s3:::my-state/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }
        ]);
        assert_eq!(Value::Array(statements), expected);
    }

    #[test]
    fn exclusive_mode_denies_everyone_but_the_listed_principals() {
        let fixture = fixture();
        let mut exclusive = inputs(&fixture);
        let break_glass = PrincipalRef::parse("break-glass", PrincipalKind::Role)
            .unwrap()
            .resolve("aws", &fixture.account);
        let mut exempt = exclusive.users.clone();
        exempt.extend(exclusive.roles.clone());
        exempt.push(break_glass);
        exclusive.exclusive = Some(exempt);
        let statements =
            render_statements(BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE, &exclusive).unwrap();
        let deny = &statements[3];
        assert_eq!(deny["Sid"], EXCLUSIVE_SID);
        assert_eq!(
            deny["Condition"],
            json!({"ArnNotLike": {"aws:PrincipalArn": [
                "arn:aws:iam::123456789012:user/terraform",
                "arn:aws:iam::123456789012:role/terraform-ci",
                "arn:aws:iam::123456789012:role/break-glass"
            ]}})
        );
        assert_eq!(statements[4]["Sid"], DENY_INSECURE_TRANSPORT_SID);
    }

    #[test]
    fn plain_http_endpoints_get_no_tls_only_deny() {
        let fixture = fixture();
        let mut plain = inputs(&fixture);
        plain.require_tls = false;
        let statements =
            render_statements(BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE, &plain).unwrap();
        assert_eq!(statements.len(), 3);
        assert!(
            statements
                .iter()
                .all(|statement| sid(statement) != Some(DENY_INSECURE_TRANSPORT_SID))
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
        let fixture = fixture();
        let template = r#"{"Statement": [{"Sid": "Mine"}, {"Sid": "StatebucketA"}, {"Sid": "StatebucketA"}, {"Effect": "Allow"}, {"Sid": "StatebucketDenyInsecureTransport"}]}"#;
        let errors = render_statements("t.json", template, &inputs(&fixture)).unwrap_err();
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
