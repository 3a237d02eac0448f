//! Just enough of IAM's policy evaluation to answer two questions about a bucket policy for a
//! given caller: does any statement explicitly deny this request (the lockout guard), and
//! does any statement allow it (doctor). Conditions the evaluator does not know make the
//! answer "maybe", never "no": a guard must err on the side of refusing.

use std::fmt;

use serde_json::Value;

use super::{PolicyDocument, sid, strings};

/// A caller as STS reports it: a user, an assumed-role session, or the account root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub partition: String,
    pub account: String,
    pub kind: CallerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// `arn:aws:iam::ACCOUNT:user/PATH/NAME`; the name is the last segment.
    User {
        path_and_name: String,
    },
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`. STS does not report the role's path.
    AssumedRole {
        role: String,
        session: String,
    },
    Root,
    /// An AWS service principal (`s3.amazonaws.com`), as a resource or trust policy names it.
    Service {
        name: String,
    },
    Other,
}

impl Caller {
    /// Parses a GetCallerIdentity ARN; `None` when it is not an ARN.
    pub fn parse(arn: &str) -> Option<Caller> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, partition, service, _, account, resource] = parts[..] else {
            return None;
        };
        let kind = match (service, resource.split_once('/')) {
            ("iam", Some(("user", path_and_name))) => CallerKind::User {
                path_and_name: path_and_name.to_owned(),
            },
            ("sts", Some(("assumed-role", rest))) => {
                let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
                CallerKind::AssumedRole {
                    role: role.to_owned(),
                    session: session.to_owned(),
                }
            }
            ("iam", None) if resource == "root" => CallerKind::Root,
            _ => CallerKind::Other,
        };
        Some(Caller {
            arn: arn.to_owned(),
            partition: partition.to_owned(),
            account: account.to_owned(),
            kind,
        })
    }

    /// An AWS service acting for `account` (its requests carry `aws:SourceAccount`).
    pub fn service(partition: &str, name: &str, account: &str) -> Caller {
        Caller {
            arn: name.to_owned(),
            partition: partition.to_owned(),
            account: account.to_owned(),
            kind: CallerKind::Service {
                name: name.to_owned(),
            },
        }
    }

    /// A caller standing for a user or role as a policy names it: the user itself, or a
    /// session of the role.
    pub fn for_principal(arn: &crate::spec::IamArn) -> Caller {
        let text = match arn.kind {
            crate::spec::PrincipalKind::User => arn.to_string(),
            crate::spec::PrincipalKind::Role => format!(
                "arn:{}:sts::{}:assumed-role/{}/statebucket",
                arn.partition,
                arn.account,
                arn.name()
            ),
        };
        Caller::parse(&text).expect("an IAM ARN makes a caller ARN")
    }

    /// The value of `aws:PrincipalArn`: for a role session, the role (path unknown here).
    fn principal_arn(&self) -> String {
        match &self.kind {
            CallerKind::AssumedRole { role, .. } => {
                format!("arn:{}:iam::{}:role/{role}", self.partition, self.account)
            }
            _ => self.arn.clone(),
        }
    }

    /// Whether an ARN written in a policy names this caller. Role ARNs are compared by
    /// account and name: IAM role names are unique in an account whatever their path, and
    /// STS leaves the path out.
    pub fn is_named_by(&self, text: &str) -> bool {
        if text == self.arn {
            return true;
        }
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let [_, _, "iam", _, account, resource] = parts[..] else {
            return false;
        };
        if account != self.account {
            return false;
        }
        match (&self.kind, resource.split_once('/')) {
            (CallerKind::User { path_and_name }, Some(("user", named))) => named == path_and_name,
            (CallerKind::AssumedRole { role, .. }, Some(("role", named))) => {
                named.rsplit('/').next() == Some(role.as_str())
            }
            (CallerKind::Root, None) => resource == "root",
            _ => false,
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// Three-valued logic for conditions the evaluator may not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Yes,
    No,
    Unknown,
}

impl Truth {
    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::No, _) | (_, Truth::No) => Truth::No,
            (Truth::Yes, Truth::Yes) => Truth::Yes,
            _ => Truth::Unknown,
        }
    }
}

/// Why a request is (or may be) denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub sid: String,
    /// False when a condition the evaluator does not model decides it.
    pub certain: bool,
}

/// One request as policy evaluation sees it: who asks to do what on which resource, with
/// the condition keys it is known to carry (`context`), such as `kms:ViaService` for the KMS
/// calls S3 makes. Requests are taken to be made over TLS, as AWS SDKs and Terraform make
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    pub fn new(caller: &'a Caller, action: &'a str, resource: &'a str) -> Request<'a> {
        Request {
            caller,
            action,
            resource,
            context: &[],
        }
    }

    pub fn with_context(self, context: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request { context, ..self }
    }
}

/// The first Deny statement that applies to the request.
pub fn explicit_deny(document: &PolicyDocument, request: &Request) -> Option<Denial> {
    statements_of(document, "Deny").find_map(|statement| match applies(statement, request) {
        Truth::No => None,
        truth => Some(Denial {
            sid: label(statement),
            certain: truth == Truth::Yes,
        }),
    })
}

/// The Sid of the first Allow statement that certainly grants the request.
pub fn allowed_by(document: &PolicyDocument, request: &Request) -> Option<String> {
    statements_of(document, "Allow")
        .find(|statement| applies(statement, request) == Truth::Yes)
        .map(label)
}

/// Whether a statement certainly allows the request and no statement denies it, not even
/// possibly (the strict reading, for documents statebucket generates or must rely on).
pub fn allows(document: &PolicyDocument, request: &Request) -> bool {
    explicit_deny(document, request).is_none() && allowed_by(document, request).is_some()
}

/// The Sid of the statement that certainly allows the request, when no statement certainly
/// denies it.
pub fn grant(document: &PolicyDocument, request: &Request) -> Option<String> {
    let sid = allowed_by(document, request)?;
    (!certainly_denied(document, request)).then_some(sid)
}

/// Whether a Deny statement certainly applies to the request (one whose conditions cannot be
/// decided here does not count).
pub fn certainly_denied(document: &PolicyDocument, request: &Request) -> bool {
    explicit_deny(document, request).is_some_and(|denial| denial.certain)
}

/// The statements of `document` with `effect` (`Allow` or `Deny`).
pub fn statements_of<'d>(
    document: &'d PolicyDocument,
    effect: &str,
) -> impl Iterator<Item = &'d Value> {
    document
        .statements
        .iter()
        .filter(move |statement| statement.get("Effect").and_then(Value::as_str) == Some(effect))
}

fn label(statement: &Value) -> String {
    sid(statement)
        .unwrap_or("(statement without Sid)")
        .to_owned()
}

fn applies(statement: &Value, request: &Request) -> Truth {
    let Request {
        caller,
        action,
        resource,
        context,
    } = *request;
    // A statement without a principal belongs to an identity policy: it applies to the
    // identity the policy is attached to, the caller whose requests are evaluated.
    let principal = match (statement.get("Principal"), statement.get("NotPrincipal")) {
        (Some(principal), _) => names_caller(principal, caller),
        (None, Some(not_principal)) => !names_caller(not_principal, caller),
        (None, None) => true,
    };
    let action_matches = match (statement.get("Action"), statement.get("NotAction")) {
        (Some(actions), _) => strings(actions)
            .any(|pattern| glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())),
        (None, Some(actions)) => !strings(actions)
            .any(|pattern| glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())),
        (None, None) => false,
    };
    let resource_matches = match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(resources), _) => strings(resources).any(|pattern| glob(pattern, resource)),
        (None, Some(resources)) => !strings(resources).any(|pattern| glob(pattern, resource)),
        (None, None) => false,
    };
    if !(principal && action_matches && resource_matches) {
        return Truth::No;
    }
    match statement.get("Condition") {
        None => Truth::Yes,
        Some(conditions) => condition(conditions, caller, context),
    }
}

fn names_caller(principal: &Value, caller: &Caller) -> bool {
    if let CallerKind::Service { name } = &caller.kind {
        return match principal {
            Value::String(star) => star == "*",
            Value::Object(kinds) => kinds
                .get("Service")
                .is_some_and(|names| strings(names).any(|named| named == name)),
            _ => false,
        };
    }
    match principal {
        Value::String(star) => star == "*",
        Value::Object(kinds) => kinds.get("AWS").is_some_and(|ids| {
            strings(ids).any(|id| {
                id == "*"
                    || id == caller.account
                    || id == format!("arn:{}:iam::{}:root", caller.partition, caller.account)
                    || caller.is_named_by(id)
            })
        }),
        _ => false,
    }
}

fn condition(conditions: &Value, caller: &Caller, context: &[(&str, &str)]) -> Truth {
    let Value::Object(operators) = conditions else {
        return Truth::Unknown;
    };
    let mut truth = Truth::Yes;
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            return Truth::Unknown;
        };
        for (key, values) in keys {
            let values: Vec<String> = match values {
                Value::Array(items) => items.iter().map(scalar).collect(),
                single => vec![scalar(single)],
            };
            truth = truth.and(test(operator, key, &values, caller, context));
        }
    }
    truth
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One condition operator on one key. Keys the evaluator knows: `aws:SecureTransport`
/// (true), `aws:PrincipalArn`, `aws:PrincipalAccount`, and those of `context`, where an
/// empty value stands for a key the request does not carry (a KMS call made directly has no
/// `kms:ViaService`): IAM's string operators are false on a missing key, their negations
/// true. Every context value is single-valued, so `ForAnyValue:` and `ForAllValues:` test it
/// like the plain operator.
fn test(
    operator: &str,
    key: &str,
    values: &[String],
    caller: &Caller,
    context: &[(&str, &str)],
) -> Truth {
    let operator = operator
        .strip_prefix("ForAnyValue:")
        .or_else(|| operator.strip_prefix("ForAllValues:"))
        .unwrap_or(operator);
    let key = key.to_ascii_lowercase();
    let known = context
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&key))
        .map(|(_, value)| (*value).to_owned());
    let actual = match (key.as_str(), known) {
        (_, Some(value)) => value,
        ("aws:securetransport", None) => "true".to_owned(),
        ("aws:principalarn", None) => caller.principal_arn(),
        ("aws:principalaccount", None) => caller.account.clone(),
        _ => return Truth::Unknown,
    };
    let is_role_arn =
        key == "aws:principalarn" && matches!(caller.kind, CallerKind::AssumedRole { .. });
    let equals = |pattern: &str| {
        pattern == actual
            || (is_role_arn && !pattern.contains(['*', '?']) && caller.is_named_by(pattern))
    };
    let like = |pattern: &str| glob(pattern, &actual) || equals(pattern);
    let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|value| f(value));
    let result = match operator {
        "StringEquals" | "ArnEquals" => any(&equals),
        "StringNotEquals" | "ArnNotEquals" => !any(&equals),
        "StringLike" | "ArnLike" => any(&like),
        "StringNotLike" | "ArnNotLike" => !any(&like),
        "StringEqualsIgnoreCase" => values
            .iter()
            .any(|value| value.eq_ignore_ascii_case(&actual)),
        "StringNotEqualsIgnoreCase" => !values
            .iter()
            .any(|value| value.eq_ignore_ascii_case(&actual)),
        "Bool" => any(&|value: &str| value.eq_ignore_ascii_case(&actual)),
        _ => return Truth::Unknown,
    };
    if result { Truth::Yes } else { Truth::No }
}

/// IAM wildcards: `*` any run of characters, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(star) = star {
            p = star + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document(statements: Value) -> PolicyDocument {
        PolicyDocument {
            version: None,
            id: None,
            statements: statements.as_array().unwrap().clone(),
        }
    }

    fn user() -> Caller {
        Caller::parse("arn:aws:iam::123456789012:user/terraform").unwrap()
    }

    fn role_session() -> Caller {
        Caller::parse("arn:aws:sts::123456789012:assumed-role/terraform-ci/session-1").unwrap()
    }

    const OBJECT: &str = "arn:aws:s3:::state/app/terraform.tfstate";

    /// What the evaluator makes of `caller` doing `action` on `resource`.
    struct Decision {
        allowed: Option<String>,
        denied: Option<Denial>,
    }

    fn decide(document: &PolicyDocument, caller: Caller, action: &str, resource: &str) -> Decision {
        let request = Request::new(&caller, action, resource);
        Decision {
            allowed: allowed_by(document, &request),
            denied: explicit_deny(document, &request),
        }
    }

    #[test]
    fn callers_are_recognised_by_user_role_account_and_star() {
        assert!(user().is_named_by("arn:aws:iam::123456789012:user/terraform"));
        assert!(!user().is_named_by("arn:aws:iam::123456789012:user/other"));
        assert!(role_session().is_named_by("arn:aws:iam::123456789012:role/ci/terraform-ci"));
        assert!(!role_session().is_named_by("arn:aws:iam::210987654321:role/terraform-ci"));
        let by_account = document(
            json!([{"Sid": "A", "Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "s3:*", "Resource": "*"}]),
        );
        assert_eq!(
            decide(&by_account, user(), "s3:GetObject", OBJECT)
                .allowed
                .as_deref(),
            Some("A")
        );
        let star = document(
            json!([{"Sid": "S", "Effect": "Allow", "Principal": "*", "Action": "s3:Get*", "Resource": "arn:aws:s3:::state/*"}]),
        );
        assert!(
            decide(&star, role_session(), "s3:GetObject", OBJECT)
                .allowed
                .is_some()
        );
        assert!(
            decide(&star, role_session(), "s3:PutObject", OBJECT)
                .allowed
                .is_none()
        );
    }

    #[test]
    fn tls_only_deny_does_not_deny_tls_requests() {
        let tls = document(
            json!([{"Sid": "StatebucketDenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::state", "arn:aws:s3:::state/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]),
        );
        assert_eq!(decide(&tls, user(), "s3:PutObject", OBJECT).denied, None);
    }

    #[test]
    fn an_exclusive_deny_exempts_listed_principals_only() {
        let exclusive = document(
            json!([{"Sid": "StatebucketExclusiveStateAccess", "Effect": "Deny", "Principal": "*",
            "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::state/*",
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/ci/terraform-ci", "arn:aws:iam::123456789012:role/break-glass"]}}}]),
        );
        assert_eq!(
            decide(&exclusive, role_session(), "s3:GetObject", OBJECT).denied,
            None
        );
        assert_eq!(
            decide(&exclusive, user(), "s3:GetObject", OBJECT).denied,
            Some(Denial {
                sid: "StatebucketExclusiveStateAccess".into(),
                certain: true
            })
        );
        assert_eq!(
            decide(
                &exclusive,
                user(),
                "s3:GetBucketPolicy",
                "arn:aws:s3:::state"
            )
            .denied,
            None
        );
    }

    #[test]
    fn unknown_conditions_make_a_deny_possible_not_absent() {
        let odd = document(
            json!([{"Sid": "VpcOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1234"}}}]),
        );
        assert_eq!(
            decide(&odd, user(), "s3:GetObject", OBJECT).denied,
            Some(Denial {
                sid: "VpcOnly".into(),
                certain: false
            })
        );
        assert_eq!(decide(&odd, user(), "s3:GetObject", OBJECT).allowed, None);
    }

    #[test]
    fn not_principal_and_not_action() {
        let deny_others = document(
            json!([{"Sid": "D", "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:user/terraform"},
            "NotAction": "s3:GetBucketPolicy", "Resource": "*"}]),
        );
        assert_eq!(
            decide(&deny_others, user(), "s3:PutObject", OBJECT).denied,
            None
        );
        assert!(
            decide(&deny_others, role_session(), "s3:PutObject", OBJECT)
                .denied
                .is_some()
        );
        assert_eq!(
            decide(&deny_others, role_session(), "s3:GetBucketPolicy", OBJECT).denied,
            None
        );
    }

    #[test]
    fn globs() {
        assert!(glob(
            "arn:aws:s3:::b/env:/*/k.tflock",
            "arn:aws:s3:::b/env:/dev/k.tflock"
        ));
        assert!(glob("s3:get*", "s3:getobject"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*", ""));
        assert!(!glob("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
    }

    #[test]
    fn caller_arns_parse() {
        assert_eq!(
            Caller::parse("arn:aws:iam::123456789012:root")
                .unwrap()
                .kind,
            CallerKind::Root
        );
        assert_eq!(
            role_session().kind,
            CallerKind::AssumedRole {
                role: "terraform-ci".into(),
                session: "session-1".into()
            }
        );
        assert!(Caller::parse("not an arn").is_none());
    }
}
