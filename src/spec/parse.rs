//! Walks a YAML tree against the spec schema. Every problem is collected with its position;
//! a spec is returned only when there are none.

use std::collections::{BTreeMap, HashMap};

use super::names::{
    AccountId, BucketName, EndpointUrl, EnvName, KmsKeyRef, LogPrefix, PrincipalKind, PrincipalRef,
    Problem, ProfileName, Region, RoleArn, StateKey, TableName, WorkspacePrefix, closest,
};
use super::yaml::{self, Node, Pos, Yaml};
use super::{
    AccessSpec, BackendSpec, BucketSpec, Days, Diagnostic, Encryption, EnvSpec, Exclusive, KmsKey,
    Lifecycle, Locking, Logging, Positions,
};

/// Keys that would hold credentials. Spec files are committed, and whatever reaches
/// backend.hcl is stored in plain text in `.terraform/terraform.tfstate` and in plan files.
const CREDENTIAL_KEYS: &[&str] = &[
    "access_key",
    "secret_key",
    "token",
    "session_token",
    "security_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "access_key_id",
    "secret_access_key",
    "sse_customer_key",
    "web_identity_token",
    "password",
];

const CREDENTIAL_HINT: &str = "credentials never go in spec files (they are committed, and backend settings are stored in plain text under .terraform/); put the keys in ~/.aws/credentials under the profile named by `profile`, or use SSO, a web identity or environment variables";

/// Parses one spec file. `source` is the path as the user named it; `env` its file stem.
pub fn parse_spec(source: &str, env: &str, text: &str) -> Result<EnvSpec, Vec<Diagnostic>> {
    let mut walker = Walker {
        file: source,
        diagnostics: Vec::new(),
    };
    let name = EnvName::parse(env)
        .map_err(|problem| vec![Diagnostic::new(source, Pos { line: 1, column: 1 }, problem)])?;
    let root = yaml::parse(text).map_err(|error| {
        vec![Diagnostic::new(
            source,
            error.pos,
            Problem::new(error.message).hint(error.hint),
        )]
    })?;
    walker.refuse_credentials(&root);
    let spec = walker.env_spec(&root, name, source);
    match spec {
        Some(spec) if walker.diagnostics.is_empty() => Ok(spec),
        _ => {
            let mut diagnostics = walker.diagnostics;
            diagnostics.sort_by_key(|d| (d.line, d.column));
            diagnostics.dedup();
            Err(diagnostics)
        }
    }
}

/// Problems that only show with all environments in view: two environments sharing a state
/// object (they would overwrite each other's state) or one backend.hcl file.
pub fn check_across_environments(specs: &[EnvSpec]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut state_objects: HashMap<(&str, &str), &EnvSpec> = HashMap::new();
    let mut backend_files: HashMap<&str, &EnvSpec> = HashMap::new();
    for spec in specs {
        let object = (spec.bucket.name.as_str(), spec.backend.key.as_str());
        if let Some(first) = state_objects.get(&object) {
            diagnostics.push(Diagnostic::new(
                &spec.source,
                spec.positions.backend_key,
                Problem::new(format!(
                    "environments `{}` and `{}` both keep their state in s3://{}/{}",
                    first.name, spec.name, object.0, object.1
                ))
                .hint(format!(
                    "give each environment its own `backend.key` (or bucket); {} defines it too",
                    first.source
                )),
            ));
        } else {
            state_objects.insert(object, spec);
        }
        if let Some(first) = backend_files.get(spec.backend.file.as_str()) {
            diagnostics.push(Diagnostic::new(
                &spec.source,
                spec.positions.backend_file,
                Problem::new(format!(
                    "environments `{}` and `{}` both write `{}`",
                    first.name, spec.name, spec.backend.file
                ))
                .hint("give each environment its own `backend.file`"),
            ));
        } else {
            backend_files.insert(&spec.backend.file, spec);
        }
    }
    for spec in specs {
        let Some(logging) = &spec.bucket.logging else {
            continue;
        };
        if let Some(owner) = specs
            .iter()
            .find(|other| other.bucket.name == logging.bucket)
        {
            diagnostics.push(Diagnostic::new(
                &spec.source,
                spec.positions.logging_bucket,
                Problem::new(format!(
                    "`{}` logs into `{}`, the state bucket of environment `{}`",
                    spec.name, logging.bucket, owner.name
                ))
                .hint("state buckets hold state only (their policy is statebucket's to manage); send access logs to a separate log bucket"),
            ));
        }
    }
    diagnostics
}

struct Walker<'a> {
    file: &'a str,
    diagnostics: Vec<Diagnostic>,
}

/// The entries of one mapping, with which keys the schema has consumed.
struct Fields<'n> {
    path: String,
    pos: Pos,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    used: Vec<bool>,
}

impl<'n> Fields<'n> {
    fn take(&mut self, key: &str) -> Option<&'n Node> {
        let index = self.entries.iter().position(|(name, _, _)| *name == key)?;
        self.used[index] = true;
        let (_, _, value) = self.entries[index];
        Some(value)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

fn is_credential_key(key: &str) -> bool {
    let normalized = key.to_ascii_lowercase().replace('-', "_");
    CREDENTIAL_KEYS.contains(&normalized.as_str())
}

fn looks_like_access_key_id(text: &str) -> bool {
    text.len() == 20
        && (text.starts_with("AKIA") || text.starts_with("ASIA"))
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Walker<'_> {
    fn report(&mut self, pos: Pos, problem: Problem) {
        self.diagnostics
            .push(Diagnostic::new(self.file, pos, problem));
    }

    /// Refuses credentials anywhere in the document, without echoing their values.
    fn refuse_credentials(&mut self, node: &Node) {
        match &node.value {
            Yaml::Map(entries) => {
                for (key, value) in entries {
                    if let Yaml::String(name) = &key.value
                        && is_credential_key(name)
                    {
                        self.report(
                            key.pos,
                            Problem::new(format!("`{name}` holds a credential; specs must not contain credentials"))
                                .hint(CREDENTIAL_HINT),
                        );
                        continue;
                    }
                    self.refuse_credentials(value);
                }
            }
            Yaml::Seq(items) => items.iter().for_each(|item| self.refuse_credentials(item)),
            Yaml::String(text) if looks_like_access_key_id(text) => self.report(
                node.pos,
                Problem::new("this value looks like an AWS access key id; specs must not contain credentials")
                    .hint(CREDENTIAL_HINT),
            ),
            _ => {}
        }
    }

    fn fields<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let Yaml::Map(entries) = &node.value else {
            let what = if path.is_empty() {
                "the spec".to_owned()
            } else {
                format!("`{path}`")
            };
            self.report(
                node.pos,
                Problem::new(format!(
                    "{what} must be a mapping, found {}",
                    node.value.kind()
                ))
                .hint("write `key: value` pairs, indented under their parent"),
            );
            return None;
        };
        let mut named = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match &key.value {
                Yaml::String(name) => named.push((name.as_str(), key, value)),
                other => self.report(
                    key.pos,
                    Problem::new(format!("keys must be strings, found {}", other.kind())),
                ),
            }
        }
        Some(Fields {
            path: path.to_owned(),
            pos: node.pos,
            used: vec![false; named.len()],
            entries: named,
        })
    }

    /// Reports every key the schema did not consume, suggesting the nearest known one.
    fn finish(&mut self, fields: Fields<'_>, known: &[&str]) {
        for ((name, key, _), used) in fields.entries.iter().zip(&fields.used) {
            if *used || is_credential_key(name) {
                continue;
            }
            let place = if fields.path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in `{}`", fields.path)
            };
            let problem = Problem::new(format!("unknown key `{name}` {place}"));
            let problem = match closest(name, known.iter().copied()) {
                Some(near) => problem.hint(format!("did you mean `{near}`?")),
                None => problem.hint(format!("known keys here: {}", known.join(", "))),
            };
            self.report(key.pos, problem);
        }
    }

    fn required<'n>(
        &mut self,
        fields: &mut Fields<'n>,
        key: &str,
        example: &str,
    ) -> Option<&'n Node> {
        let node = fields.take(key);
        if node.is_none() {
            let path = fields.child_path(key);
            self.report(
                fields.pos,
                Problem::new(format!("missing required key `{path}`"))
                    .hint(format!("add `{example}`")),
            );
        }
        node
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Yaml::Bool(value) => Some(*value),
            other => {
                self.report(
                    node.pos,
                    Problem::new(format!(
                        "`{path}` must be true or false, found {}",
                        other.kind()
                    )),
                );
                None
            }
        }
    }

    fn string<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n str> {
        match &node.value {
            Yaml::String(text) => Some(text),
            Yaml::Number(text) => {
                self.report(
                    node.pos,
                    Problem::new(format!(
                        "`{path}` must be a string, but YAML reads `{text}` as a number"
                    ))
                    .hint(format!("quote it: \"{text}\"")),
                );
                None
            }
            other => {
                self.report(
                    node.pos,
                    Problem::new(format!("`{path}` must be a string, found {}", other.kind())),
                );
                None
            }
        }
    }

    /// Parses a string field with a name type's rules.
    fn typed<T>(
        &mut self,
        node: &Node,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        parse(text)
            .map_err(|problem| self.report(node.pos, problem))
            .ok()
    }

    fn env_spec(&mut self, root: &Node, name: EnvName, source: &str) -> Option<EnvSpec> {
        if root.value == Yaml::Null {
            self.report(
                root.pos,
                Problem::new("the spec is empty")
                    .hint("start from environments/dev.yaml in the statebucket README"),
            );
            return None;
        }
        let mut top = self.fields(root, "")?;
        let region_node = self.required(&mut top, "region", "region: eu-west-1");
        let region = region_node.and_then(|node| self.typed(node, "region", Region::parse));
        let account_id = top
            .take("account_id")
            .and_then(|node| self.account_id(node));
        let profile = self
            .required(
                &mut top,
                "profile",
                "profile: terraform  # the AWS profile Terraform's backend uses",
            )
            .and_then(|node| self.typed(node, "profile", ProfileName::parse));
        let bootstrap_profile = top
            .take("bootstrap_profile")
            .map(|node| self.typed(node, "bootstrap_profile", ProfileName::parse));
        let endpoint = top
            .take("endpoint")
            .map(|node| self.typed(node, "endpoint", EndpointUrl::parse));
        let bucket = self
            .required(&mut top, "bucket", "bucket: { name: my-org-tfstate-dev }")
            .and_then(|node| self.bucket(node, region.as_ref()));
        let access = self
            .required(
                &mut top,
                "access",
                "access: { users: [terraform], roles: [terraform-ci] }",
            )
            .and_then(|node| self.access(node));
        let backend = self
            .required(
                &mut top,
                "backend",
                "backend: { key: app/terraform.tfstate }",
            )
            .and_then(|node| {
                let bucket_name = bucket.as_ref().map(|(bucket, _, _)| &bucket.name);
                self.backend(node, &name, source, bucket_name)
            });
        self.finish(
            top,
            &[
                "region",
                "account_id",
                "profile",
                "bootstrap_profile",
                "endpoint",
                "bucket",
                "access",
                "backend",
            ],
        );
        let (bucket, bucket_name_pos, logging_bucket) = bucket?;
        let (backend, backend_key, backend_file) = backend?;
        Some(EnvSpec {
            name,
            source: source.to_owned(),
            region: region?,
            account_id: account_id.flatten(),
            profile: profile?,
            bootstrap_profile: bootstrap_profile.flatten(),
            endpoint: endpoint.flatten(),
            bucket,
            access: access?,
            backend,
            positions: Positions {
                bucket_name: bucket_name_pos,
                backend_key,
                backend_file,
                logging_bucket,
            },
        })
    }

    /// `account_id` may be quoted or not; an unquoted id with a leading zero stays a string.
    fn account_id(&mut self, node: &Node) -> Option<Option<AccountId>> {
        let text = match &node.value {
            Yaml::String(text) | Yaml::Number(text) => text,
            other => {
                self.report(
                    node.pos,
                    Problem::new(format!(
                        "`account_id` must be 12 digits, found {}",
                        other.kind()
                    ))
                    .hint("write it quoted: account_id: \"123456789012\""),
                );
                return None;
            }
        };
        match AccountId::parse(text) {
            Ok(id) => Some(Some(id)),
            Err(problem) => {
                self.report(node.pos, problem);
                None
            }
        }
    }

    /// The bucket, where its name stands, and where the log bucket's name stands.
    fn bucket(&mut self, node: &Node, region: Option<&Region>) -> Option<(BucketSpec, Pos, Pos)> {
        let mut fields = self.fields(node, "bucket")?;
        let name_node = self.required(&mut fields, "name", "name: my-org-tfstate-dev");
        let name = name_node.and_then(|node| self.typed(node, "bucket.name", BucketName::parse));
        let encryption = match fields.take("encryption") {
            Some(node) => self.encryption(node, region),
            None => Some(Encryption::Aes256),
        };
        let tags = match fields.take("tags") {
            Some(node) => self.tags(node),
            None => Some(BTreeMap::new()),
        };
        let lifecycle = match fields.take("lifecycle") {
            Some(node) => self.lifecycle(node),
            None => Some(Lifecycle::default()),
        };
        // `Some(None)`: no logging asked for; `None`: asked for, with errors reported.
        let logging = match fields.take("logging") {
            Some(node) => self.logging(node, name.as_ref()).map(Some),
            None => Some(None),
        };
        self.finish(
            fields,
            &["name", "encryption", "tags", "lifecycle", "logging"],
        );
        let (logging, logging_pos) = match logging? {
            Some((logging, pos)) => (Some(logging), pos),
            None => (None, Pos::default()),
        };
        Some((
            BucketSpec {
                name: name?,
                encryption: encryption?,
                tags: tags?,
                lifecycle: lifecycle?,
                logging,
            },
            name_node?.pos,
            logging_pos,
        ))
    }

    fn lifecycle(&mut self, node: &Node) -> Option<Lifecycle> {
        let mut fields = self.fields(node, "bucket.lifecycle")?;
        let defaults = Lifecycle::default();
        let noncurrent = match fields.take("expire_noncurrent_after_days") {
            None => Some(defaults.expire_noncurrent_after),
            Some(node) => match &node.value {
                Yaml::String(text) if text == "never" => Some(None),
                _ => self
                    .days(node, "bucket.lifecycle.expire_noncurrent_after_days", true)
                    .map(Some),
            },
        };
        let abort = match fields.take("abort_incomplete_uploads_after_days") {
            None => Some(defaults.abort_incomplete_uploads_after),
            Some(node) => self.days(
                node,
                "bucket.lifecycle.abort_incomplete_uploads_after_days",
                false,
            ),
        };
        self.finish(
            fields,
            &[
                "expire_noncurrent_after_days",
                "abort_incomplete_uploads_after_days",
            ],
        );
        Some(Lifecycle {
            expire_noncurrent_after: noncurrent?,
            abort_incomplete_uploads_after: abort?,
        })
    }

    fn days(&mut self, node: &Node, path: &str, never_allowed: bool) -> Option<Days> {
        let hint = if never_allowed {
            "write a number of days from 1 to 36500, or `never` to keep every version"
        } else {
            "write a number of days from 1 to 36500"
        };
        let days = match &node.value {
            Yaml::Number(text) => text.parse::<u32>().ok().and_then(Days::new),
            _ => None,
        };
        if days.is_none() {
            let found = match &node.value {
                Yaml::Number(text) | Yaml::String(text) => format!("`{text}`"),
                other => other.kind().to_owned(),
            };
            self.report(
                node.pos,
                Problem::new(format!(
                    "`{path}` must be a whole number of days, found {found}"
                ))
                .hint(hint),
            );
        }
        days
    }

    /// The logging target, and where its bucket name stands.
    fn logging(
        &mut self,
        node: &Node,
        state_bucket: Option<&BucketName>,
    ) -> Option<(Logging, Pos)> {
        let mut fields = self.fields(node, "bucket.logging")?;
        let bucket_node = self.required(&mut fields, "bucket", "bucket: my-org-s3-access-logs");
        let bucket = bucket_node
            .and_then(|node| self.typed(node, "bucket.logging.bucket", BucketName::parse));
        let prefix = fields
            .take("prefix")
            .map(|node| self.typed(node, "bucket.logging.prefix", LogPrefix::parse));
        self.finish(fields, &["bucket", "prefix"]);
        let bucket = bucket?;
        let bucket_pos = bucket_node?.pos;
        if state_bucket == Some(&bucket) {
            self.report(
                bucket_pos,
                Problem::new("the state bucket cannot log into itself")
                    .hint("each log delivery would write an object that is logged again; use a separate log bucket in the same account and region"),
            );
            return None;
        }
        let prefix = match prefix {
            Some(prefix) => prefix?,
            None => LogPrefix::for_bucket(state_bucket?),
        };
        Some((Logging { bucket, prefix }, bucket_pos))
    }

    fn encryption(&mut self, node: &Node, region: Option<&Region>) -> Option<Encryption> {
        let forms = "write `encryption: aes256`, or `encryption: { kms_key: alias/terraform-state, create_key: true }`";
        match &node.value {
            Yaml::String(text) if text.eq_ignore_ascii_case("aes256") => Some(Encryption::Aes256),
            Yaml::String(text)
                if text.eq_ignore_ascii_case("kms") || text.eq_ignore_ascii_case("aws:kms") =>
            {
                self.report(
                    node.pos,
                    Problem::new("KMS encryption needs a key").hint(forms),
                );
                None
            }
            Yaml::Map(_) => {
                let mut fields = self.fields(node, "bucket.encryption")?;
                let key_node =
                    self.required(&mut fields, "kms_key", "kms_key: alias/terraform-state");
                let create_key = match fields.take("create_key") {
                    None => Some(false),
                    Some(node) => self.boolean(node, "create_key"),
                };
                self.finish(fields, &["kms_key", "create_key"]);
                let key_node = key_node?;
                let reference = self.typed(key_node, "bucket.encryption.kms_key", |text| {
                    KmsKeyRef::parse(text, region)
                })?;
                match (reference, create_key?) {
                    (reference, false) => Some(Encryption::Kms(KmsKey::Existing(reference))),
                    (KmsKeyRef::Alias(alias), true) => {
                        Some(Encryption::Kms(KmsKey::Managed(alias)))
                    }
                    (reference, true) => {
                        self.report(
                            key_node.pos,
                            Problem::new(format!("`create_key: true` needs an alias to create, but `{reference}` names a key"))
                                .hint("use `kms_key: alias/NAME` to have the key created, or drop `create_key` to use this existing key"),
                        );
                        None
                    }
                }
            }
            Yaml::String(text) => {
                self.report(
                    node.pos,
                    Problem::new(format!("unknown encryption `{text}`")).hint(forms),
                );
                None
            }
            other => {
                self.report(
                    node.pos,
                    Problem::new(format!(
                        "`bucket.encryption` must be `aes256` or a mapping, found {}",
                        other.kind()
                    ))
                    .hint(forms),
                );
                None
            }
        }
    }

    /// S3 tagging rules: at most 50 tags; keys 1-128 characters and not `aws:`; values up to 256.
    fn tags(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        let fields = self.fields(node, "bucket.tags")?;
        let mut tags = BTreeMap::new();
        let mut ok = true;
        if fields.entries.len() > 50 {
            self.report(
                node.pos,
                Problem::new(format!(
                    "{} tags given; S3 allows at most 50 per bucket",
                    fields.entries.len()
                )),
            );
            ok = false;
        }
        for (key, key_node, value_node) in &fields.entries {
            if key.is_empty()
                || key.chars().count() > 128
                || key.to_ascii_lowercase().starts_with("aws:")
            {
                self.report(
                    key_node.pos,
                    Problem::new(format!("tag key `{key}` is not allowed"))
                        .hint("tag keys are 1-128 characters and must not start with `aws:`"),
                );
                ok = false;
                continue;
            }
            let value = match &value_node.value {
                Yaml::String(text) | Yaml::Number(text) => text.clone(),
                Yaml::Bool(flag) => flag.to_string(),
                other => {
                    self.report(
                        value_node.pos,
                        Problem::new(format!(
                            "tag `{key}` must have a string value, found {}",
                            other.kind()
                        )),
                    );
                    ok = false;
                    continue;
                }
            };
            if value.chars().count() > 256 {
                self.report(
                    value_node.pos,
                    Problem::new(format!(
                        "the value of tag `{key}` is longer than 256 characters"
                    )),
                );
                ok = false;
                continue;
            }
            tags.insert((*key).to_owned(), value);
        }
        ok.then_some(tags)
    }

    fn access(&mut self, node: &Node) -> Option<AccessSpec> {
        let mut fields = self.fields(node, "access")?;
        let users = fields
            .take("users")
            .map(|node| self.principals(node, "access.users", PrincipalKind::User));
        let roles = fields
            .take("roles")
            .map(|node| self.principals(node, "access.roles", PrincipalKind::Role));
        let template = fields.take("policy_template").map(|node| {
            self.typed(node, "access.policy_template", |text| {
                relative_path(text, &[".json"])
            })
        });
        let exclusive = fields
            .take("exclusive")
            .map(|node| self.boolean(node, "access.exclusive"));
        let break_glass_node = fields.take("break_glass_role");
        let break_glass = break_glass_node.map(|node| {
            self.typed(node, "access.break_glass_role", |text| {
                PrincipalRef::parse(text, PrincipalKind::Role)
            })
        });
        let attach = fields
            .take("attach_identity_policy")
            .map(|node| self.boolean(node, "access.attach_identity_policy"));
        self.finish(
            fields,
            &[
                "users",
                "roles",
                "policy_template",
                "exclusive",
                "break_glass_role",
                "attach_identity_policy",
            ],
        );
        let exclusive = match (exclusive.unwrap_or(Some(false))?, break_glass) {
            (true, Some(role)) => Some(Exclusive {
                break_glass_role: role?,
            }),
            (true, None) => {
                self.report(
                    node.pos,
                    Problem::new("`access.exclusive: true` needs a `break_glass_role`")
                        .hint("name a role that stays able to reach the state when every listed principal is gone, e.g. `break_glass_role: break-glass-admin`"),
                );
                return None;
            }
            (false, Some(_)) => {
                self.report(
                    break_glass_node.map_or(node.pos, |node| node.pos),
                    Problem::new("`break_glass_role` only has a meaning with `exclusive: true`")
                        .hint("add `exclusive: true`, or remove `break_glass_role`"),
                );
                return None;
            }
            (false, None) => None,
        };
        let attach_identity_policy = attach.unwrap_or(Some(false))?;
        let users = users.unwrap_or(Some(Vec::new()))?;
        let roles = roles.unwrap_or(Some(Vec::new()))?;
        if users.is_empty() && roles.is_empty() {
            self.report(
                node.pos,
                Problem::new("`access` lists no users and no roles")
                    .hint("list every identity Terraform runs as, users and roles both: a policy naming only the role locks out the user (and the reverse)"),
            );
            return None;
        }
        let mut principals = users;
        principals.extend(roles);
        Some(AccessSpec {
            principals,
            policy_template: template.flatten(),
            exclusive,
            attach_identity_policy,
        })
    }

    fn principals(
        &mut self,
        node: &Node,
        path: &str,
        kind: PrincipalKind,
    ) -> Option<Vec<PrincipalRef>> {
        let items: &[Node] = match &node.value {
            Yaml::Seq(items) => items,
            Yaml::String(_) => std::slice::from_ref(node),
            Yaml::Null => &[],
            other => {
                self.report(
                    node.pos,
                    Problem::new(format!("`{path}` must be a list, found {}", other.kind()))
                        .hint(format!("write `{path}: [name-or-arn, …]`")),
                );
                return None;
            }
        };
        let mut principals: Vec<PrincipalRef> = Vec::new();
        let mut ok = true;
        for item in items {
            match self.typed(item, path, |text| PrincipalRef::parse(text, kind)) {
                Some(principal) if principals.contains(&principal) => {
                    self.report(
                        item.pos,
                        Problem::new(format!("`{principal}` is listed twice in `{path}`"))
                            .hint("remove the duplicate"),
                    );
                    ok = false;
                }
                Some(principal) => principals.push(principal),
                None => ok = false,
            }
        }
        ok.then_some(principals)
    }

    fn backend(
        &mut self,
        node: &Node,
        env: &EnvName,
        source: &str,
        bucket: Option<&BucketName>,
    ) -> Option<(BackendSpec, Pos, Pos)> {
        let mut fields = self.fields(node, "backend")?;
        let key_node = self.required(&mut fields, "key", "key: app/terraform.tfstate");
        let key = key_node.and_then(|node| self.typed(node, "backend.key", StateKey::parse));
        let file_node = fields.take("file");
        let file = match file_node {
            Some(node) => self.typed(node, "backend.file", |text| {
                relative_path(text, &[".hcl", ".tfbackend"])
            }),
            None => Some(default_backend_file(source, env)),
        };
        let prefix = fields
            .take("workspace_key_prefix")
            .map(|node| self.typed(node, "backend.workspace_key_prefix", WorkspacePrefix::parse));
        let assume_role = fields
            .take("assume_role")
            .map(|node| self.typed(node, "backend.assume_role", RoleArn::parse));
        let terraform_dir = fields.take("terraform_dir").map(|node| {
            self.typed(node, "backend.terraform_dir", |text| {
                relative_path(text, &[])
            })
        });
        let lock = self.locking(&mut fields, bucket);
        self.finish(
            fields,
            &[
                "key",
                "file",
                "workspace_key_prefix",
                "assume_role",
                "terraform_dir",
                "lock",
                "dynamodb_table",
            ],
        );
        Some((
            BackendSpec {
                key: key?,
                file: file?,
                workspace_key_prefix: prefix.flatten(),
                assume_role: assume_role.flatten(),
                terraform_dir: terraform_dir.flatten(),
                lock: lock?,
            },
            key_node?.pos,
            file_node.map_or(node.pos, |node| node.pos),
        ))
    }
}

impl Walker<'_> {
    /// `backend.lock` (default `lockfile`) and `backend.dynamodb_table` (default
    /// `<bucket>-locks`), which only the DynamoDB modes use.
    fn locking(&mut self, fields: &mut Fields<'_>, bucket: Option<&BucketName>) -> Option<Locking> {
        let modes = "write `lock: lockfile` (Terraform >= 1.10), `lock: both` (while older runners remain) or `lock: dynamodb`";
        let mode_node = fields.take("lock");
        let mode = match mode_node {
            None => Some("lockfile"),
            Some(node) => match self.string(node, "backend.lock")? {
                mode @ ("lockfile" | "dynamodb" | "both") => Some(mode),
                other => {
                    let problem = Problem::new(format!("unknown lock mode `{other}`"));
                    let problem = match closest(other, ["lockfile", "dynamodb", "both"]) {
                        Some(near) => problem.hint(format!("did you mean `{near}`? {modes}")),
                        None => problem.hint(modes),
                    };
                    self.report(node.pos, problem);
                    None
                }
            },
        };
        let table_node = fields.take("dynamodb_table");
        let table =
            table_node.map(|node| self.typed(node, "backend.dynamodb_table", TableName::parse));
        match (mode?, table) {
            ("lockfile", None) => Some(Locking::Lockfile),
            ("lockfile", Some(_)) => {
                self.report(
                    table_node.map_or(Pos::default(), |node| node.pos),
                    Problem::new("`backend.dynamodb_table` is set, but `lock` is `lockfile`, which uses no table")
                        .hint("remove `dynamodb_table` (the table itself is kept; `statebucket plan` says how to delete it once unused), or set `lock: both`"),
                );
                None
            }
            (mode, table) => {
                let table = match table {
                    Some(table) => table?,
                    None => TableName::for_bucket(bucket?),
                };
                Some(if mode == "both" {
                    Locking::Both(table)
                } else {
                    Locking::DynamoDb(table)
                })
            }
        }
    }
}

/// `environments/dev.yaml` → `environments/dev/backend.hcl`.
fn default_backend_file(source: &str, env: &EnvName) -> String {
    match source.rfind('/') {
        Some(slash) => format!("{}/{env}/backend.hcl", &source[..slash]),
        None => format!("{env}/backend.hcl"),
    }
}

/// A path under the project root. `terraform init -backend-config=PATH` reads a path that
/// contains `=` as KEY=VALUE, so `=` is refused too.
fn relative_path(text: &str, extensions: &[&str]) -> Result<String, Problem> {
    let hint = if extensions.is_empty() {
        "use a relative path under the project root".to_owned()
    } else {
        format!(
            "use a relative path under the project root ending in {}",
            extensions.join(" or ")
        )
    };
    if text.is_empty() || text.starts_with('/') || text.split('/').any(|part| part == "..") {
        return Err(Problem::new(format!(
            "`{text}` is not a relative path inside the project"
        ))
        .hint(hint));
    }
    if text.contains('=') {
        return Err(Problem::new(format!(
            "`{text}` contains `=`, which `terraform init -backend-config=` reads as KEY=VALUE"
        ))
        .hint(hint));
    }
    if text.chars().any(char::is_control) || text.contains('\\') {
        return Err(Problem::new(format!(
            "`{text}` contains a control character or backslash"
        ))
        .hint(hint));
    }
    if !extensions.is_empty() && !extensions.iter().any(|extension| text.ends_with(extension)) {
        return Err(Problem::new(format!(
            "`{text}` does not end in {}",
            extensions.join(" or ")
        ))
        .hint(hint));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PrincipalRef;

    const DEV: &str = "\
region: ap-northeast-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: my-terraform-state-dev
  encryption: aes256
  tags: { team: platform }
access:
  users: [terraform-access]
  roles: [terraform-access-role]
backend:
  key: eks-cluster/terraform.tfstate
  file: environments/dev/backend.hcl
";

    fn errors(text: &str) -> Vec<String> {
        parse_spec("environments/x.yaml", "x", text)
            .unwrap_err()
            .into_iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect()
    }

    fn one_error(text: &str) -> Diagnostic {
        let mut diagnostics = parse_spec("environments/x.yaml", "x", text).unwrap_err();
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        diagnostics.remove(0)
    }

    #[test]
    fn the_example_parses_into_a_typed_spec() {
        let spec = parse_spec("environments/dev.yaml", "dev", DEV).unwrap();
        assert_eq!(spec.region.as_str(), "ap-northeast-1");
        assert_eq!(spec.account_id.unwrap().as_str(), "123456789012");
        assert_eq!(spec.bucket.encryption, Encryption::Aes256);
        assert_eq!(
            spec.bucket.tags.get("team").map(String::as_str),
            Some("platform")
        );
        assert_eq!(spec.access.principals.len(), 2);
        assert_eq!(spec.access.principals[1].kind(), PrincipalKind::Role);
        assert_eq!(spec.backend.file, "environments/dev/backend.hcl");
        assert_eq!(spec.positions.bucket_name, Pos { line: 5, column: 9 });
    }

    #[test]
    fn three_mistakes_are_three_errors_with_positions() {
        let text = DEV
            .replace("ap-northeast-1", "ap-northeast-9")
            .replace("my-terraform-state-dev", "My_State")
            .replace("  file:", "  fiel:");
        let found = errors(&text);
        assert_eq!(
            found,
            vec![
                "1:9 `ap-northeast-9` is not an AWS region",
                "5:9 bucket name `My_State` contains `M`",
                "13:3 unknown key `fiel` in `backend`",
            ]
        );
    }

    #[test]
    fn unknown_keys_get_suggestions() {
        let diagnostic = one_error(
            &DEV.replace("  name:", "  nmae:")
                .replace("bucket:\n", "bucket:\n  name: my-terraform-state-dev\n"),
        );
        assert_eq!(diagnostic.message, "unknown key `nmae` in `bucket`");
        assert_eq!(diagnostic.hint.as_deref(), Some("did you mean `name`?"));
    }

    #[test]
    fn missing_keys_are_named_with_an_example() {
        let diagnostic = one_error(&DEV.replace("profile: terraform\n", ""));
        assert_eq!(diagnostic.message, "missing required key `profile`");
        assert!(diagnostic.hint.unwrap().contains("profile: terraform"));
    }

    #[test]
    fn credentials_are_refused_without_echoing_them() {
        let text = format!(
            "{DEV}secret_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\naccess_key: AKIAIOSFODNN7EXAMPLE\n"
        );
        let diagnostics = parse_spec("environments/x.yaml", "x", &text).unwrap_err();
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        for diagnostic in &diagnostics {
            let shown = diagnostic.to_string();
            assert!(shown.contains("must not contain credentials"), "{shown}");
            assert!(
                !shown.contains("wJalr") && !shown.contains("AKIAIOSFODNN7EXAMPLE"),
                "{shown}"
            );
        }
        let nested = one_error(&DEV.replace("  key: eks", "  token: abc\n  key: eks"));
        assert!(nested.message.starts_with("`token` holds a credential"));
        let value = one_error(&DEV.replace("profile: terraform", "profile: AKIAIOSFODNN7EXAMPLE"));
        assert!(value.message.contains("access key id"), "{value:?}");
    }

    #[test]
    fn lock_modes_and_tables() {
        let lock = |extra: &str| {
            DEV.replace(
                "  file: environments",
                &format!("{extra}\n  file: environments"),
            )
        };
        let default = parse_spec("e/x.yaml", "x", DEV).unwrap();
        assert_eq!(default.backend.lock, Locking::Lockfile);
        let both = parse_spec("e/x.yaml", "x", &lock("  lock: both")).unwrap();
        assert_eq!(
            both.backend.lock,
            Locking::Both(TableName::parse("my-terraform-state-dev-locks").unwrap())
        );
        let named = parse_spec(
            "e/x.yaml",
            "x",
            &lock("  lock: dynamodb\n  dynamodb_table: tf-locks"),
        )
        .unwrap();
        assert_eq!(
            named.backend.lock,
            Locking::DynamoDb(TableName::parse("tf-locks").unwrap())
        );
        let typo = one_error(&lock("  lock: dynamo"));
        assert_eq!(typo.message, "unknown lock mode `dynamo`");
        assert!(typo.hint.unwrap().starts_with("did you mean `dynamodb`?"));
        let unused = one_error(&lock("  dynamodb_table: tf-locks"));
        assert!(
            unused.message.contains("`lock` is `lockfile`"),
            "{unused:?}"
        );
        let bad_name = one_error(&lock("  lock: both\n  dynamodb_table: 'tf locks'"));
        assert!(bad_name.message.contains("not a valid DynamoDB table name"));
    }

    #[test]
    fn lifecycle_and_logging() {
        let bucket =
            |extra: &str| DEV.replace("  tags: { team", &format!("{extra}\n  tags: {{ team"));
        let default = parse_spec("e/x.yaml", "x", DEV).unwrap();
        assert_eq!(default.bucket.lifecycle, Lifecycle::default());
        assert_eq!(default.bucket.logging, None);
        let custom = parse_spec(
            "e/x.yaml",
            "x",
            &bucket("  lifecycle: { expire_noncurrent_after_days: never, abort_incomplete_uploads_after_days: 2 }\n  logging: { bucket: acme-logs, prefix: tf/dev/ }"),
        )
        .unwrap();
        assert_eq!(custom.bucket.lifecycle.expire_noncurrent_after, None);
        assert_eq!(
            custom.bucket.lifecycle.abort_incomplete_uploads_after.get(),
            2
        );
        let logging = custom.bucket.logging.unwrap();
        assert_eq!(
            (logging.bucket.as_str(), logging.prefix.as_str()),
            ("acme-logs", "tf/dev/")
        );

        let zero = one_error(&bucket("  lifecycle: { expire_noncurrent_after_days: 0 }"));
        assert_eq!(
            zero.message,
            "`bucket.lifecycle.expire_noncurrent_after_days` must be a whole number of days, found `0`"
        );
        let never = one_error(&bucket(
            "  lifecycle: { abort_incomplete_uploads_after_days: never }",
        ));
        assert!(never.message.contains("found `never`"), "{never:?}");
        let itself = one_error(&bucket("  logging: { bucket: my-terraform-state-dev }"));
        assert_eq!(itself.message, "the state bucket cannot log into itself");
        let prefix = one_error(&bucket("  logging: { bucket: acme-logs, prefix: tf }"));
        assert!(prefix.message.contains("ending in `/`"), "{prefix:?}");
    }

    #[test]
    fn logging_into_another_environments_state_bucket_is_refused() {
        let dev = parse_spec(
            "environments/dev.yaml",
            "dev",
            &DEV.replace(
                "  tags: { team",
                "  logging: { bucket: prod-state }\n  tags: { team",
            ),
        )
        .unwrap();
        let prod = parse_spec(
            "environments/prod.yaml",
            "prod",
            &DEV.replace("my-terraform-state-dev", "prod-state").replace(
                "environments/dev/backend.hcl",
                "environments/prod/backend.hcl",
            ),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev, prod]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert!(
            diagnostics[0]
                .message
                .contains("the state bucket of environment `prod`")
        );
        assert_eq!(diagnostics[0].line, 7);
    }

    #[test]
    fn encryption_forms() {
        let kms = DEV.replace(
            "encryption: aes256",
            "encryption: { kms_key: alias/tf-state, create_key: true }",
        );
        let spec = parse_spec("e/x.yaml", "x", &kms).unwrap();
        assert!(matches!(
            spec.bucket.encryption,
            Encryption::Kms(KmsKey::Managed(_))
        ));
        let existing = DEV.replace(
            "encryption: aes256",
            "encryption: { kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab }",
        );
        assert!(matches!(
            parse_spec("e/x.yaml", "x", &existing)
                .unwrap()
                .bucket
                .encryption,
            Encryption::Kms(KmsKey::Existing(KmsKeyRef::KeyId(_)))
        ));
        let create_by_id = one_error(&DEV.replace(
            "encryption: aes256",
            "encryption: { kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab, create_key: true }",
        ));
        assert!(create_by_id.message.contains("needs an alias"));
        assert!(
            one_error(&DEV.replace("encryption: aes256", "encryption: kms"))
                .message
                .contains("needs a key")
        );
        assert!(
            one_error(&DEV.replace("encryption: aes256", "encryption: des"))
                .message
                .contains("unknown encryption")
        );
        assert!(
            one_error(&DEV.replace(
                "encryption: aes256",
                "encryption: { kms_key: alias/x, create_key: \"yes\" }"
            ))
            .message
            .contains("true or false")
        );
    }

    #[test]
    fn account_ids_quoted_or_not() {
        let unquoted = DEV.replace("\"123456789012\"", "123456789012");
        assert!(parse_spec("e/x.yaml", "x", &unquoted).is_ok());
        let short = one_error(&DEV.replace("\"123456789012\"", "12345"));
        assert!(short.message.contains("not an AWS account id"));
        assert!(short.hint.unwrap().contains("12 digits"));
    }

    #[test]
    fn principals_must_be_in_the_right_list_and_unique() {
        let misplaced = one_error(&DEV.replace(
            "[terraform-access]",
            "[\"arn:aws:iam::123456789012:role/x\"]",
        ));
        assert_eq!(misplaced.hint.as_deref(), Some("move it to `access.roles`"));
        assert_eq!((misplaced.line, misplaced.column), (9, 11));
        let twice = one_error(&DEV.replace("[terraform-access]", "[a, a]"));
        assert!(twice.message.contains("listed twice"));
        let none = one_error(&DEV.replace(
            "  users: [terraform-access]\n  roles: [terraform-access-role]\n",
            "  users: []\n",
        ));
        assert!(none.message.contains("no users and no roles"));
        let single = parse_spec(
            "e/x.yaml",
            "x",
            &DEV.replace("[terraform-access]", "terraform-access"),
        )
        .unwrap();
        assert!(matches!(
            single.access.principals[0],
            PrincipalRef::Name { .. }
        ));
    }

    #[test]
    fn backend_file_rules() {
        let default = parse_spec(
            "environments/dev.yaml",
            "dev",
            &DEV.replace("  file: environments/dev/backend.hcl\n", ""),
        )
        .unwrap();
        assert_eq!(default.backend.file, "environments/dev/backend.hcl");
        for (file, expected) in [
            ("/etc/backend.hcl", "not a relative path"),
            ("../backend.hcl", "not a relative path"),
            ("a=b.hcl", "contains `=`"),
            ("backend.txt", "does not end in"),
        ] {
            let diagnostic = one_error(&DEV.replace("environments/dev/backend.hcl", file));
            assert!(
                diagnostic.message.contains(expected),
                "{file}: {diagnostic:?}"
            );
        }
        assert!(
            parse_spec(
                "e/x.yaml",
                "x",
                &DEV.replace("environments/dev/backend.hcl", "dev.s3.tfbackend")
            )
            .is_ok()
        );
    }

    #[test]
    fn numbers_where_strings_belong_get_a_quote_hint() {
        let diagnostic = one_error(&DEV.replace("key: eks-cluster/terraform.tfstate", "key: 42"));
        assert!(diagnostic.message.contains("YAML reads `42` as a number"));
        assert_eq!(diagnostic.hint.as_deref(), Some("quote it: \"42\""));
    }

    #[test]
    fn shape_errors() {
        assert!(one_error("").message.contains("empty"));
        assert!(
            one_error("- a\n- b\n")
                .message
                .contains("must be a mapping")
        );
        assert!(one_error(&DEV.replace("bucket:\n  name: my-terraform-state-dev\n  encryption: aes256\n  tags: { team: platform }\n", "bucket: 3\n")).message.contains("`bucket` must be a mapping"));
        assert!(one_error("a: [").message.starts_with("invalid YAML"));
        assert_eq!(
            one_error("a: 1\na: 2\n").message,
            "key `a` appears twice in the same mapping"
        );
        let tags = one_error(&DEV.replace("{ team: platform }", "{ \"aws:x\": y }"));
        assert!(tags.message.contains("tag key `aws:x`"));
    }

    #[test]
    fn other_fields_are_validated() {
        assert!(
            one_error(&DEV.replace("profile: terraform", "profile: \"two words\""))
                .message
                .contains("profile name")
        );
        let endpoint = format!("{DEV}endpoint: localhost:5000\n");
        assert!(one_error(&endpoint).message.contains("endpoint URL"));
        let prefix = DEV.replace("  key: eks", "  workspace_key_prefix: /ws\n  key: eks");
        assert!(one_error(&prefix).message.contains("workspace_key_prefix"));
        let role = DEV.replace(
            "  key: eks",
            "  assume_role: arn:aws:iam::123456789012:user/x\n  key: eks",
        );
        assert!(
            one_error(&role)
                .message
                .contains("assume_role needs a role")
        );
        assert!(
            one_error(&DEV.replace("eks-cluster/terraform.tfstate", "/abs.tfstate"))
                .message
                .contains("starts or ends")
        );
        assert!(errors(&DEV.replace("  name: my-terraform-state-dev", "  name: ab")).len() == 1);
        let bad_env = parse_spec("e/x y.yaml", "x y", DEV).unwrap_err();
        assert!(bad_env[0].message.contains("environment name"));
    }

    #[test]
    fn two_environments_on_one_state_object_is_an_error() {
        let dev = parse_spec("environments/dev.yaml", "dev", DEV).unwrap();
        let copy = parse_spec(
            "environments/copy.yaml",
            "copy",
            &DEV.replace(
                "environments/dev/backend.hcl",
                "environments/copy/backend.hcl",
            ),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev.clone(), copy]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert_eq!(diagnostics[0].file, "environments/copy.yaml");
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (12, 8));
        assert!(diagnostics[0].message.contains(
            "both keep their state in s3://my-terraform-state-dev/eks-cluster/terraform.tfstate"
        ));

        let same_file = parse_spec(
            "environments/b.yaml",
            "b",
            &DEV.replace("eks-cluster/", "other/"),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev, same_file]);
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0]
                .message
                .contains("both write `environments/dev/backend.hcl`")
        );
    }
}
