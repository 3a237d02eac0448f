//! Walks a YAML tree against the spec schema. Every problem is collected with its position;
//! a spec is returned only when there are none.

use std::collections::{BTreeMap, HashMap};

use super::names::{
    AccountId, BucketName, EndpointUrl, EnvName, ExternalId, KmsKeyRef, LogPrefix, PolicyArn,
    PrincipalKind, PrincipalRef, Problem, ProfileName, Region, RoleArn, RoleDuration, SessionName,
    StackName, StateKey, TableName, WorkspacePrefix, closest,
};
use super::schema::{self, Object};
use super::yaml::{self, Node, Pos, Yaml};
use super::{
    AccessSpec, AssumeRole, BackendAuth, BackendCredentials, BucketSpec, Compat, Days, Diagnostic,
    Encryption, EnvSpec, Exclusive, KmsKey, Layout, Lifecycle, Locking, Logging, ObjectLock,
    Positions, ReplicaPositions, ReplicaSpec, RetentionMode, StackPositions, StackSpec,
    StoreFeature, TofuEncryption, TofuPhase, WebIdentity,
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

/// Problems that only show with all spec files in view: two specs naming one bucket (each
/// would rewrite the other's grants: one spec is one bucket, its states are stacks), two
/// specs writing one backend file, a spec logging into another's state bucket.
pub fn check_across_environments(specs: &[EnvSpec]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut buckets: HashMap<&str, &EnvSpec> = HashMap::new();
    let mut backend_files: HashMap<String, &EnvSpec> = HashMap::new();
    for spec in specs {
        // A replica is a bucket the spec manages too.
        let replica = spec
            .bucket
            .replica
            .as_ref()
            .map(|replica| (replica.name.as_str(), replica.positions.name));
        for (bucket, pos) in
            std::iter::once((spec.bucket.name.as_str(), spec.positions.bucket_name)).chain(replica)
        {
            if let Some(first) = buckets.get(bucket) {
                diagnostics.push(Diagnostic::new(
                    &spec.source,
                    pos,
                    Problem::new(format!(
                        "{} and {} both manage bucket `{bucket}`; each would rewrite the other's grants",
                        first.source, spec.source
                    ))
                    .hint(format!(
                        "one spec file is one bucket: make their states stacks of one spec (`stacks:` in {}, one stack per state) and remove {}",
                        first.source, spec.source
                    )),
                ));
            } else {
                buckets.insert(bucket, spec);
            }
        }
        let failover_files = spec.bucket.replica.as_ref().map(|replica| {
            spec.stacks
                .iter()
                .map(|stack| (spec.failover_file(stack), replica.positions.backend_file))
                .collect::<Vec<_>>()
        });
        let files = spec
            .stacks
            .iter()
            .map(|stack| (stack.file.clone(), stack.positions.file))
            .chain(failover_files.into_iter().flatten());
        for (file, pos) in files {
            match backend_files.get(&file) {
                Some(first) if !std::ptr::eq(*first, spec) => {
                    diagnostics.push(Diagnostic::new(
                        &spec.source,
                        pos,
                        Problem::new(format!(
                            "{} and {} both write `{file}`",
                            first.source, spec.source
                        ))
                        .hint("give each stack its own backend `file`"),
                    ));
                }
                Some(_) => {}
                None => {
                    backend_files.insert(file, spec);
                }
            }
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

/// The entries of one mapping, with which keys the walker has consumed.
struct Fields<'n> {
    path: String,
    pos: Pos,
    /// The schema of a mapping with fixed keys; `None` for one of free names (tags, stacks).
    object: Option<&'static Object>,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    used: Vec<bool>,
}

#[cfg(test)]
thread_local! {
    /// The (object, key) pairs the walker took on this thread: the test that proves the
    /// walker reads every key the schema lists.
    pub(super) static TAKEN: std::cell::RefCell<std::collections::BTreeSet<(&'static str, &'static str)>> =
        std::cell::RefCell::default();
}

impl<'n> Fields<'n> {
    /// The value of `key`, which the schema must list for this mapping.
    fn take(&mut self, key: &str) -> Option<&'n Node> {
        let field = self.object.and_then(|object| object.field(key));
        debug_assert!(
            field.is_some(),
            "the walker takes `{key}` in `{}`, which the schema does not list",
            self.path
        );
        #[cfg(test)]
        if let (Some(object), Some(field)) = (self.object, field) {
            TAKEN.with(|taken| taken.borrow_mut().insert((object.name, field.name)));
        }
        self.take_misplaced(key)
    }

    /// The value of `key` where the schema lists it for this mapping; `None` elsewhere.
    fn take_if_listed(&mut self, key: &str) -> Option<&'n Node> {
        self.object?.field(key)?;
        self.take(key)
    }

    /// The value of a key that does not belong here, taken to report it precisely.
    fn take_misplaced(&mut self, key: &str) -> Option<&'n Node> {
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

    /// A mapping with the keys `object` lists.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        object: &'static Object,
    ) -> Option<Fields<'n>> {
        self.mapping(node, path, Some(object))
    }

    /// A mapping of free names (tags, stacks).
    fn named<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        self.mapping(node, path, None)
    }

    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        object: Option<&'static Object>,
    ) -> Option<Fields<'n>> {
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
            object,
            used: vec![false; named.len()],
            entries: named,
        })
    }

    /// Reports every key the walker did not consume, suggesting the nearest one the schema
    /// lists here.
    fn finish(&mut self, fields: Fields<'_>) {
        let known = fields.object.map(Object::keys).unwrap_or_default();
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
        debug_assert!(
            fields
                .object
                .is_some_and(|object| object.required.contains(&key)),
            "the walker requires `{key}` in `{}`, which the schema does not",
            fields.path
        );
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
        let mut top = self.fields(root, "", &schema::SPEC)?;
        let region_node = self.required(&mut top, "region", "region: eu-west-1");
        let region = region_node.and_then(|node| self.typed(node, "region", Region::parse));
        let account_id = top
            .take("account_id")
            .and_then(|node| self.account_id(node));
        // Optional here: a spec whose stacks all authenticate with `web_identity` needs
        // none; a stack that needs it reports it missing (see `credentials`).
        let profile = top
            .take("profile")
            .map(|node| self.typed(node, "profile", ProfileName::parse));
        let bootstrap_profile = top
            .take("bootstrap_profile")
            .map(|node| self.typed(node, "bootstrap_profile", ProfileName::parse));
        let endpoint = top
            .take("endpoint")
            .map(|node| self.typed(node, "endpoint", EndpointUrl::parse));
        let bucket = self
            .required(&mut top, "bucket", "bucket: { name: my-org-tfstate-dev }")
            .and_then(|node| self.bucket(node, region.as_ref()));
        let bucket_name = bucket.as_ref().map(|(bucket, _, _)| &bucket.name);
        let inherited = Inherited {
            bucket: bucket_name,
            profile: match &profile {
                Some(profile) => profile.as_ref().map(Some),
                None => Some(None),
            },
            account_id: account_id.as_ref().is_some_and(Option::is_some),
            top: top.pos,
        };
        let backend_node = top.take("backend");
        let stacks_node = top.take("stacks");
        let defaults_node = top.take("stack_defaults");
        let layout = if stacks_node.is_some() {
            Layout::Stacks
        } else {
            Layout::Backend
        };
        let access = match (top.take("access"), layout) {
            (Some(node), _) => self.access(node, layout),
            (None, Layout::Stacks) => Some(AccessSpec::default()),
            (None, Layout::Backend) => {
                self.report(
                    top.pos,
                    Problem::new("missing required key `access`")
                        .hint("add `access: { users: [terraform], roles: [terraform-ci] }`"),
                );
                None
            }
        };
        let stacks = match (backend_node, stacks_node) {
            (Some(_), Some(stacks_node)) => {
                self.report(
                    stacks_node.pos,
                    Problem::new("`backend` and `stacks` cannot both be given")
                        .hint("use `backend:` for the one state of this bucket, or list every state under `stacks:` (the options `backend` held go under `stack_defaults:` or into each stack)"),
                );
                None
            }
            (Some(backend_node), None) => {
                if let Some(defaults_node) = defaults_node {
                    self.report(
                        defaults_node.pos,
                        Problem::new(
                            "`stack_defaults` applies to `stacks`, but this spec uses `backend`",
                        )
                        .hint(
                            "move these options into `backend`, or list the states under `stacks:`",
                        ),
                    );
                }
                self.backend_stack(backend_node, &name, source, &inherited)
                    .map(|stack| vec![stack])
            }
            (None, Some(stacks_node)) => {
                self.stacks(stacks_node, defaults_node, &name, source, &inherited)
            }
            (None, None) => {
                self.report(
                    top.pos,
                    Problem::new("missing required key `backend`").hint(
                        "add `backend: { key: app/terraform.tfstate }`, or `stacks:` to keep several states in this bucket",
                    ),
                );
                None
            }
        };
        let tofu_encryption = match top.take("opentofu") {
            None => Some(None),
            Some(node) => self.opentofu(node, region.as_ref()),
        };
        let compat = match top.take("compat") {
            None => Some(None),
            Some(node) => self.compat(node).map(|compat| Some((compat, node.pos))),
        };
        self.finish(top);
        let (bucket, bucket_name_pos, logging_bucket) = bucket?;
        let (access, stacks, compat, tofu_encryption) =
            (access?, stacks?, compat?, tofu_encryption?);
        if let Some((encryption, pos)) = &tofu_encryption
            && encryption.key.is_none()
            && !matches!(bucket.encryption, Encryption::Kms(_))
        {
            self.report(
                *pos,
                Problem::new("`opentofu.encryption` has no key: the bucket is AES256-encrypted, so there is no bucket key to use")
                    .hint("name an existing key: `kms_key: alias/tofu-state`, or encrypt the bucket with KMS"),
            );
            return None;
        }
        let tofu_encryption = tofu_encryption.map(|(encryption, _)| encryption);
        self.check_stacks(&access, &stacks, layout);
        if let Some(replica) = &bucket.replica {
            self.check_replica(replica, &bucket.encryption, &stacks, compat.is_some())?;
        }
        if let Some((compat, pos)) = &compat {
            self.check_compat(compat, *pos, &bucket, &access)?;
            if compat.lacks(StoreFeature::Sts) && account_id.as_ref().is_none_or(Option::is_none) {
                self.report(
                    *pos,
                    Problem::new("`compat.lacks` says the store has no STS, so the account cannot be asked: `account_id` is required")
                        .hint("add `account_id: \"123456789012\"` (the account the policy's ARNs are built in)"),
                );
                return None;
            }
        }
        let compat = compat.map(|(compat, _)| compat);
        Some(EnvSpec {
            name,
            source: source.to_owned(),
            region: region?,
            account_id: account_id.flatten(),
            profile: profile.flatten(),
            bootstrap_profile: bootstrap_profile.flatten(),
            endpoint: endpoint.flatten(),
            compat,
            tofu_encryption,
            bucket,
            access,
            stacks,
            layout,
            positions: Positions {
                bucket_name: bucket_name_pos,
                logging_bucket,
            },
            replica_of: None,
        })
    }

    /// `opentofu: { encryption: { kms_key, phase } }`: `Some(None)` without `encryption`.
    fn opentofu(
        &mut self,
        node: &Node,
        region: Option<&Region>,
    ) -> Option<Option<(TofuEncryption, Pos)>> {
        let mut fields = self.fields(node, "opentofu", &schema::OPENTOFU)?;
        let encryption = fields.take("encryption").map(|node| {
            let mut fields = self.fields(node, "opentofu.encryption", &schema::TOFU_ENCRYPTION)?;
            let key_node = fields.take("kms_key");
            let key = key_node.map(|node| {
                self.typed(node, "opentofu.encryption.kms_key", |text| {
                    KmsKeyRef::parse(text, region)
                })
            });
            let create_key = fields
                .take("create_key")
                .map(|node| self.boolean(node, "opentofu.encryption.create_key"));
            let phase = fields.take("phase").map(|node| {
                match self.string(node, "opentofu.encryption.phase")? {
                    "migrate" => Some(TofuPhase::Migrate),
                    "enforce" => Some(TofuPhase::Enforce),
                    other => {
                        self.report(
                            node.pos,
                            Problem::new(format!("unknown phase `{other}`")).hint(
                                "`migrate` while state may still be unencrypted, then `enforce`",
                            ),
                        );
                        None
                    }
                }
            });
            self.finish(fields);
            let key = key.map_or(Some(None), |key| key.map(Some))?;
            let key = match (key, create_key.unwrap_or(Some(false))?) {
                (key, false) => key.map(KmsKey::Existing),
                (Some(KmsKeyRef::Alias(alias)), true) => Some(KmsKey::Managed(alias)),
                (_, true) => {
                    self.report(
                        key_node.map_or(node.pos, |key| key.pos),
                        Problem::new(
                            "`opentofu.encryption.create_key: true` needs an alias to create",
                        )
                        .hint("name the key to create: `kms_key: alias/tofu-state`"),
                    );
                    return None;
                }
            };
            Some((
                TofuEncryption {
                    key,
                    phase: phase.unwrap_or(Some(TofuPhase::Migrate))?,
                },
                node.pos,
            ))
        });
        self.finish(fields);
        match encryption {
            None => Some(None),
            Some(encryption) => encryption.map(Some),
        }
    }

    fn compat(&mut self, node: &Node) -> Option<Compat> {
        let mut fields = self.fields(node, "compat", &schema::COMPAT)?;
        let lacks = fields.take("lacks").map(|node| {
            self.list(node, "compat.lacks", |walker, item, path| {
                let word = walker.string(item, path)?;
                let names = StoreFeature::ALL.map(|(name, _)| name);
                match StoreFeature::ALL.iter().find(|(name, _)| *name == word) {
                    Some((_, feature)) => Some(*feature),
                    None => {
                        let problem = Problem::new(format!("unknown store feature `{word}`"));
                        let problem = match closest(word, names) {
                            Some(near) => problem.hint(format!("did you mean `{near}`?")),
                            None => problem.hint(format!("one of: {}", names.join(", "))),
                        };
                        walker.report(item.pos, problem);
                        None
                    }
                }
            })
        });
        let skip_s3_checksum = fields
            .take("skip_s3_checksum")
            .map(|node| self.boolean(node, "compat.skip_s3_checksum"));
        self.finish(fields);
        Some(Compat {
            lacks: lacks.unwrap_or(Some(Vec::new()))?.into_iter().collect(),
            skip_s3_checksum: skip_s3_checksum.unwrap_or(Some(false))?,
        })
    }

    /// What a store lacks cannot be asked of it.
    fn check_compat(
        &mut self,
        compat: &Compat,
        pos: Pos,
        bucket: &BucketSpec,
        access: &AccessSpec,
    ) -> Option<()> {
        let mut ok = true;
        let mut refuse = |walker: &mut Self, message: &str, hint: &str| {
            walker.report(pos, Problem::new(message).hint(hint));
            ok = false;
        };
        if compat.lacks(StoreFeature::Kms) && matches!(bucket.encryption, Encryption::Kms(_)) {
            refuse(
                self,
                "`bucket.encryption` names a KMS key, but `compat.lacks` says the store has no KMS",
                "use `encryption: aes256` (the store's own server-side encryption), or remove `kms` from `compat.lacks`",
            );
        }
        if compat.lacks(StoreFeature::Tagging) && !bucket.tags.is_empty() {
            refuse(
                self,
                "`bucket.tags` are given, but `compat.lacks` says the store has no bucket tagging",
                "remove `bucket.tags`, or `tagging` from `compat.lacks`",
            );
        }
        if compat.lacks(StoreFeature::Iam) && access.attach_identity_policy {
            refuse(
                self,
                "`access.attach_identity_policy` needs IAM, which `compat.lacks` says the store has not",
                "remove `attach_identity_policy` (grant access with the store's own users and policies)",
            );
        }
        ok.then_some(())
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
        let mut fields = self.fields(node, "bucket", &schema::BUCKET)?;
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
        let replica = match fields.take("replica") {
            Some(node) => self.replica(node, name.as_ref(), region).map(Some),
            None => Some(None),
        };
        self.finish(fields);
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
                replica: replica?,
                object_lock: None,
            },
            name_node?.pos,
            logging_pos,
        ))
    }

    fn lifecycle(&mut self, node: &Node) -> Option<Lifecycle> {
        let mut fields = self.fields(node, "bucket.lifecycle", &schema::LIFECYCLE)?;
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
        self.finish(fields);
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
        let mut fields = self.fields(node, "bucket.logging", &schema::LOGGING)?;
        let bucket_node = self.required(&mut fields, "bucket", "bucket: my-org-s3-access-logs");
        let bucket = bucket_node
            .and_then(|node| self.typed(node, "bucket.logging.bucket", BucketName::parse));
        let prefix = fields
            .take("prefix")
            .map(|node| self.typed(node, "bucket.logging.prefix", LogPrefix::parse));
        self.finish(fields);
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

    /// `bucket.replica`: a region other than the bucket's, a valid name (default
    /// `<bucket>-replica`) other than the bucket's, its own encryption, Object Lock.
    fn replica(
        &mut self,
        node: &Node,
        primary: Option<&BucketName>,
        primary_region: Option<&Region>,
    ) -> Option<ReplicaSpec> {
        let mut fields = self.fields(node, "bucket.replica", &schema::REPLICA)?;
        let region_node = self.required(&mut fields, "region", "region: eu-central-1");
        let region =
            region_node.and_then(|node| self.typed(node, "bucket.replica.region", Region::parse));
        let name_node = fields.take("name");
        let name = match name_node {
            Some(node) => self.typed(node, "bucket.replica.name", BucketName::parse),
            None => primary.and_then(|primary| {
                let default = format!("{primary}-replica");
                self.located(
                    node.pos,
                    BucketName::parse(&default).map_err(|problem| {
                        Problem::new(format!(
                            "the replica's default name `{default}` is not a valid bucket name: {}",
                            problem.message
                        ))
                        .hint("name the replica: `name: SHORTER-NAME-replica`")
                    }),
                )
            }),
        };
        let encryption = match fields.take("encryption") {
            Some(node) => self.encryption_at(node, "bucket.replica.encryption", region.as_ref()),
            None => Some(Encryption::Aes256),
        };
        let object_lock = match fields.take("object_lock") {
            Some(node) => self.object_lock(node).map(Some),
            None => Some(None),
        };
        let backend_file_node = fields.take("backend_file");
        let backend_file = match backend_file_node {
            Some(node) => self
                .typed(node, "bucket.replica.backend_file", |text| {
                    relative_path(text, &[".hcl", ".tfbackend"])
                })
                .map(Some),
            None => Some(None),
        };
        self.finish(fields);
        let (region, name) = (region?, name?);
        if primary_region == Some(&region) {
            self.report(
                region_node?.pos,
                Problem::new(format!(
                    "the replica is in {region}, the bucket's own region; it would not survive the loss of that region"
                ))
                .hint("set `bucket.replica.region` to another region of the same partition"),
            );
            return None;
        }
        if primary == Some(&name) {
            self.report(
                name_node.map_or(node.pos, |node| node.pos),
                Problem::new("the replica cannot be the bucket itself")
                    .hint("name another bucket, or leave `name` out for `<bucket>-replica`"),
            );
            return None;
        }
        Some(ReplicaSpec {
            name,
            region,
            encryption: encryption?,
            object_lock: object_lock?,
            backend_file: backend_file?,
            positions: ReplicaPositions {
                name: name_node.map_or(node.pos, |node| node.pos),
                backend_file: backend_file_node.map_or(node.pos, |node| node.pos),
            },
        })
    }

    /// `object_lock: { mode: governance | compliance, days: N }`.
    fn object_lock(&mut self, node: &Node) -> Option<ObjectLock> {
        let mut fields = self.fields(node, "bucket.replica.object_lock", &schema::OBJECT_LOCK)?;
        let mode_node = self.required(&mut fields, "mode", "mode: governance");
        let days_node = self.required(&mut fields, "days", "days: 30");
        self.finish(fields);
        let mode = mode_node.and_then(|node| {
            let text = self.string(node, "bucket.replica.object_lock.mode")?;
            match text.to_ascii_lowercase().as_str() {
                "governance" => Some(RetentionMode::Governance),
                "compliance" => Some(RetentionMode::Compliance),
                _ => {
                    self.report(
                        node.pos,
                        Problem::new(format!("unknown Object Lock mode `{text}`")).hint(
                            "`governance` (users with s3:BypassGovernanceRetention may still delete) or `compliance` (nobody can, not even root, until the days have passed)",
                        ),
                    );
                    None
                }
            }
        });
        let days =
            days_node.and_then(|node| self.days(node, "bucket.replica.object_lock.days", false));
        Some(ObjectLock {
            mode: mode?,
            days: days?,
        })
    }

    fn encryption(&mut self, node: &Node, region: Option<&Region>) -> Option<Encryption> {
        self.encryption_at(node, "bucket.encryption", region)
    }

    /// An encryption setting at `path`; a KMS key ARN must be in `region`.
    fn encryption_at(
        &mut self,
        node: &Node,
        path: &str,
        region: Option<&Region>,
    ) -> Option<Encryption> {
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
                let mut fields = self.fields(node, path, &schema::KMS_ENCRYPTION)?;
                let key_node =
                    self.required(&mut fields, "kms_key", "kms_key: alias/terraform-state");
                let create_key = match fields.take("create_key") {
                    None => Some(false),
                    Some(node) => self.boolean(node, "create_key"),
                };
                self.finish(fields);
                let key_node = key_node?;
                let reference = self.typed(key_node, &format!("{path}.kms_key"), |text| {
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
                        "`{path}` must be `aes256` or a mapping, found {}",
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
        let fields = self.named(node, "bucket.tags")?;
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

    /// The spec-level `access`: the default writers and readers of every stack, and the
    /// policy options of the bucket.
    fn access(&mut self, node: &Node, layout: Layout) -> Option<AccessSpec> {
        let mut fields = self.fields(node, "access", &schema::ACCESS)?;
        let (writers, readers) = self.principal_lists(&mut fields, "access");
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
        self.finish(fields);
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
        let writers = writers?.unwrap_or_default();
        if writers.is_empty() && layout == Layout::Backend {
            self.report(
                node.pos,
                Problem::new("`access` lists no users and no roles")
                    .hint("list every identity Terraform runs as, users and roles both: a policy naming only the role locks out the user (and the reverse)"),
            );
            return None;
        }
        Some(AccessSpec {
            writers,
            readers: readers?.unwrap_or_default(),
            policy_template: template.flatten(),
            exclusive,
            attach_identity_policy,
        })
    }

    /// `users`, `roles` and `readers: { users, roles }` of an access block at `path`: the
    /// writers (`None` when neither list is given), the readers (`None` when not given).
    /// The outer `None`: errors were reported.
    #[allow(clippy::type_complexity)]
    fn principal_lists(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
    ) -> (
        Option<Option<Vec<PrincipalRef>>>,
        Option<Option<Vec<PrincipalRef>>>,
    ) {
        let given = fields
            .entries
            .iter()
            .any(|(name, _, _)| *name == "users" || *name == "roles");
        let writers = self
            .users_then_roles(fields, path)
            .map(|writers| given.then_some(writers));
        let readers = match fields.take("readers") {
            None => Some(None),
            Some(node) => self.readers(node, &format!("{path}.readers")).map(Some),
        };
        if let (Some(Some(writers)), Some(Some(readers))) = (&writers, &readers)
            && let Some(both) = readers.iter().find(|reader| writers.contains(reader))
        {
            self.report(
                fields.pos,
                Problem::new(format!(
                    "`{both}` is listed both as a writer and in `{path}.readers`"
                ))
                .hint("writers can read already; keep it in one list"),
            );
            return (None, None);
        }
        (writers, readers)
    }

    fn readers(&mut self, node: &Node, path: &str) -> Option<Vec<PrincipalRef>> {
        let mut fields = self.fields(node, path, &schema::READERS)?;
        let readers = self.users_then_roles(&mut fields, path);
        self.finish(fields);
        let readers = readers?;
        if readers.is_empty() {
            self.report(
                node.pos,
                Problem::new(format!("`{path}` lists no users and no roles")).hint(
                    "list the identities that only plan (e.g. `roles: [terraform-plan]`), or remove `readers`",
                ),
            );
            return None;
        }
        Some(readers)
    }

    /// `users` then `roles` of a block at `path`, each optional.
    fn users_then_roles(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
    ) -> Option<Vec<PrincipalRef>> {
        let users = fields
            .take("users")
            .map(|node| self.principals(node, &format!("{path}.users"), PrincipalKind::User));
        let roles = fields
            .take("roles")
            .map(|node| self.principals(node, &format!("{path}.roles"), PrincipalKind::Role));
        let mut all = users.unwrap_or(Some(Vec::new()))?;
        all.extend(roles.unwrap_or(Some(Vec::new()))?);
        Some(all)
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

    /// The one stack of a `backend:` spec, named after the environment.
    fn backend_stack(
        &mut self,
        node: &Node,
        env: &EnvName,
        source: &str,
        inherited: &Inherited<'_>,
    ) -> Option<StackSpec> {
        let mut fields = self.fields(node, "backend", &schema::BACKEND)?;
        let options = self.stack_options(&mut fields, "backend");
        let defaults = StackOptions::default();
        let default_file = default_backend_file(source, env);
        let stack = self.stack_from(
            StackName::from(env),
            node.pos,
            options,
            &defaults,
            "backend",
            default_file,
            inherited,
            (None, None),
        );
        self.finish(fields);
        stack
    }

    /// `stacks:` (a mapping of stack name to options) and `stack_defaults:`.
    fn stacks(
        &mut self,
        node: &Node,
        defaults_node: Option<&Node>,
        env: &EnvName,
        source: &str,
        inherited: &Inherited<'_>,
    ) -> Option<Vec<StackSpec>> {
        let defaults = match defaults_node {
            None => Some(StackOptions::default()),
            Some(defaults_node) => self.fields(defaults_node, "stack_defaults", &schema::STACK_DEFAULTS).map(|mut fields| {
                let options = self.stack_options(&mut fields, "stack_defaults");
                for key in ["key", "file"] {
                    if let Some(misplaced) = fields.take_misplaced(key) {
                        self.report(
                            misplaced.pos,
                            Problem::new(format!("`stack_defaults.{key}` cannot be shared: every stack has its own"))
                                .hint(format!("give each stack its own `{key}`")),
                        );
                    }
                }
                self.finish(fields);
                options
            }),
        };
        let stacks = self.named(node, "stacks")?;
        if stacks.entries.is_empty() {
            self.report(
                node.pos,
                Problem::new("`stacks` lists no stack").hint(
                    "add one: `stacks: { app: { key: app/terraform.tfstate } }`, or use `backend:` for a single state",
                ),
            );
            return None;
        }
        let defaults = defaults?;
        let mut result = Vec::with_capacity(stacks.entries.len());
        let mut ok = true;
        for (name, key_node, value) in &stacks.entries {
            let path = format!("stacks.{name}");
            let Some(stack_name) = self.located(key_node.pos, StackName::parse(name)) else {
                ok = false;
                continue;
            };
            let Some(mut fields) = self.fields(value, &path, &schema::STACK) else {
                ok = false;
                continue;
            };
            let options = self.stack_options(&mut fields, &path);
            let access = match fields.take("access") {
                None => Some((None, None)),
                Some(access_node) => self.stack_access(access_node, &path),
            };
            let default_file = default_stack_file(source, env, &stack_name);
            let stack = access.and_then(|access| {
                self.stack_from(
                    stack_name,
                    key_node.pos,
                    options,
                    &defaults,
                    &path,
                    default_file,
                    inherited,
                    access,
                )
            });
            self.finish(fields);
            match stack {
                Some(stack) => result.push(stack),
                None => ok = false,
            }
        }
        ok.then_some(result)
    }

    /// A stack's `access`: its own writers and readers, each `None` when it names none.
    #[allow(clippy::type_complexity)]
    fn stack_access(
        &mut self,
        node: &Node,
        stack_path: &str,
    ) -> Option<(Option<Vec<PrincipalRef>>, Option<Vec<PrincipalRef>>)> {
        let path = format!("{stack_path}.access");
        let mut fields = self.fields(node, &path, &schema::STACK_ACCESS)?;
        let (writers, readers) = self.principal_lists(&mut fields, &path);
        let spec_level: Vec<&str> = [
            "policy_template",
            "exclusive",
            "break_glass_role",
            "attach_identity_policy",
        ]
        .into_iter()
        .filter(|key| fields.take_misplaced(key).is_some())
        .collect();
        for key in spec_level {
            self.report(
                fields.pos,
                Problem::new(format!("`{path}.{key}` applies to the whole bucket"))
                    .hint(format!("set `access.{key}` at the top of the spec")),
            );
        }
        self.finish(fields);
        let writers = writers?;
        if writers.as_ref().is_some_and(Vec::is_empty) {
            self.report(
                node.pos,
                Problem::new(format!("`{path}` lists no users and no roles"))
                    .hint("list the identities that write this stack's state, or remove `users`/`roles` to use the spec's `access`"),
            );
            return None;
        }
        Some((writers, readers?))
    }

    /// The options `backend`, `stack_defaults` and each stack may set.
    fn stack_options(&mut self, fields: &mut Fields<'_>, path: &str) -> StackOptions {
        // `stack_defaults` has no key and no file: every stack has its own.
        let key_node = fields.take_if_listed("key");
        let key = key_node.and_then(|node| {
            self.typed(node, &format!("{path}.key"), StateKey::parse)
                .map(|key| (key, node.pos))
        });
        let file = fields.take_if_listed("file").and_then(|node| {
            self.typed(node, &format!("{path}.file"), |text| {
                relative_path(text, &[".hcl", ".tfbackend"])
            })
            .map(|file| (file, node.pos))
        });
        let profile = self.typed_field(fields, path, "profile", ProfileName::parse);
        let workspace_key_prefix =
            self.typed_field(fields, path, "workspace_key_prefix", WorkspacePrefix::parse);
        let assume_role = fields
            .take("assume_role")
            .and_then(|node| self.assume_role(node, &format!("{path}.assume_role")));
        let web_identity = fields.take("web_identity").map(|node| {
            (
                self.web_identity(node, &format!("{path}.web_identity")),
                node.pos,
            )
        });
        let forbidden_account_ids = fields.take("forbidden_account_ids").map(|node| {
            let ids = self.list(
                node,
                &format!("{path}.forbidden_account_ids"),
                |walker, item, item_path| {
                    walker.account_id(item).flatten().or_else(|| {
                        walker.report(
                            item.pos,
                            Problem::new(format!("`{item_path}` needs an account id"))
                                .hint("12 digits, e.g. \"123456789012\""),
                        );
                        None
                    })
                },
            );
            (ids, node.pos)
        });
        let sts_region = self.typed_field(fields, path, "sts_region", Region::parse);
        let mut file_list = |key: &str| {
            let node = fields.take(key)?;
            self.list(node, &format!("{path}.{key}"), Walker::file_path)
        };
        let shared_config_files = file_list("shared_config_files");
        let shared_credentials_files = file_list("shared_credentials_files");
        let mut flag = |key: &str| {
            let node = fields.take(key)?;
            self.boolean(node, &format!("{path}.{key}"))
        };
        let use_fips_endpoint = flag("use_fips_endpoint");
        let use_dualstack_endpoint = flag("use_dualstack_endpoint");
        let terraform_dir = fields.take("terraform_dir").and_then(|node| {
            self.typed(node, &format!("{path}.terraform_dir"), |text| {
                relative_path(text, &[])
            })
        });
        let lock = fields.take("lock").map(|node| {
            let mode = self.lock_mode(node, &format!("{path}.lock"));
            (mode, node.pos)
        });
        let table = fields.take("dynamodb_table").map(|node| {
            let table = self.typed(node, &format!("{path}.dynamodb_table"), TableName::parse);
            (table, node.pos)
        });
        StackOptions {
            key,
            key_given: key_node.is_some(),
            file,
            profile,
            web_identity,
            workspace_key_prefix,
            assume_role,
            terraform_dir,
            forbidden_account_ids,
            sts_region,
            shared_config_files,
            shared_credentials_files,
            use_fips_endpoint,
            use_dualstack_endpoint,
            lock,
            table,
            path: path.to_owned(),
        }
    }

    /// The field `key` of the mapping at `path`, parsed with a name type's rules; `None`
    /// when absent or refused (the problem is reported).
    fn typed_field<T>(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let node = fields.take(key)?;
        self.typed(node, &format!("{path}.{key}"), parse)
    }

    /// A YAML list, each item parsed by `item` (given the item's path); `None` when any
    /// item (or the list itself) was refused.
    fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Yaml::Seq(items) = &node.value else {
            self.report(
                node.pos,
                Problem::new(format!(
                    "`{path}` must be a list, found {}",
                    node.value.kind()
                ))
                .hint("write `[a, b]`, or one `- item` per line"),
            );
            return None;
        };
        let parsed: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(index, node)| item(self, node, &format!("{path}[{index}]")))
            .collect();
        parsed.into_iter().collect()
    }

    /// A file path as the backend reads it (absolute, `~/`, or relative to the Terraform
    /// directory): any non-empty text without control characters.
    fn file_path(&mut self, node: &Node, path: &str) -> Option<String> {
        self.typed(node, path, |text| {
            if text.is_empty() || text.chars().any(char::is_control) {
                Err(Problem::new(format!("`{path}` is not a usable file path")))
            } else {
                Ok(text.to_owned())
            }
        })
    }

    /// `assume_role`: a role ARN, or a mapping with every attribute Terraform documents.
    fn assume_role(&mut self, node: &Node, path: &str) -> Option<AssumeRole> {
        if let Yaml::String(_) = &node.value {
            return self.typed(node, path, RoleArn::parse).map(AssumeRole::of);
        }
        let mut fields = self.fields(node, path, &schema::ASSUME_ROLE_OBJECT)?;
        let session = self.role_session(
            &mut fields,
            path,
            "role_arn: arn:aws:iam::123456789012:role/terraform",
        );
        let external_id = self.optional_typed(&mut fields, path, "external_id", ExternalId::parse);
        let tags = match fields.take("tags") {
            None => Some(BTreeMap::new()),
            Some(node) => self.string_map(node, &format!("{path}.tags")),
        };
        let transitive = fields.take("transitive_tag_keys").map(|node| {
            let keys = self.list(
                node,
                &format!("{path}.transitive_tag_keys"),
                |walker, item, item_path| walker.string(item, item_path).map(str::to_owned),
            );
            (keys, node.pos)
        });
        let source_identity =
            self.optional_typed(&mut fields, path, "source_identity", SessionName::parse);
        let policy = self.optional_typed(&mut fields, path, "policy", |text| {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(_)) => Ok(text.to_owned()),
                _ => Err(Problem::new("the session policy is not a JSON object")
                    .hint("write the policy document as a JSON string: `policy: '{\"Version\": \"2012-10-17\", \"Statement\": […]}'`")),
            }
        });
        self.finish(fields);
        let tags = tags?;
        let transitive_tag_keys = match transitive {
            None => Vec::new(),
            Some((keys, pos)) => {
                let keys = keys?;
                if let Some(unknown) = keys.iter().find(|key| !tags.contains_key(*key)) {
                    self.report(
                        pos,
                        Problem::new(format!("transitive tag key `{unknown}` is not one of `{path}.tags`"))
                            .hint("only session tags can be transitive: add it to `tags`, or drop it here"),
                    );
                    return None;
                }
                keys
            }
        };
        let session = session?;
        Some(AssumeRole {
            role_arn: session.role_arn,
            external_id: external_id?,
            session_name: session.session_name,
            duration: session.duration,
            tags,
            transitive_tag_keys,
            source_identity: source_identity?,
            policy_arns: session.policy_arns,
            policy: policy?,
        })
    }

    /// `web_identity`: Terraform's `assume_role_with_web_identity` with a token file.
    fn web_identity(&mut self, node: &Node, path: &str) -> Option<WebIdentity> {
        let mut fields = self.fields(node, path, &schema::WEB_IDENTITY)?;
        let session = self.role_session(
            &mut fields,
            path,
            "role_arn: arn:aws:iam::123456789012:role/github-terraform",
        );
        let token_file = self
            .required(
                &mut fields,
                "token_file",
                "token_file: /tmp/web-identity-token",
            )
            .and_then(|node| self.file_path(node, &format!("{path}.token_file")));
        self.finish(fields);
        let session = session?;
        Some(WebIdentity {
            role_arn: session.role_arn,
            token_file: token_file?,
            session_name: session.session_name,
            duration: session.duration,
            policy_arns: session.policy_arns,
        })
    }

    /// What `assume_role` and `web_identity` share: the role and the session's name,
    /// duration and policy ARNs. `None` when any was refused.
    fn role_session(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
        example: &str,
    ) -> Option<RoleSession> {
        let role_arn = self
            .required(fields, "role_arn", example)
            .and_then(|node| self.typed(node, &format!("{path}.role_arn"), RoleArn::parse));
        let session_name = self.optional_typed(fields, path, "session_name", SessionName::parse);
        let duration = self.optional_typed(fields, path, "duration", RoleDuration::parse);
        let policy_arns = fields
            .take("policy_arns")
            .map(|node| self.policy_arns(node, &format!("{path}.policy_arns")));
        Some(RoleSession {
            role_arn: role_arn?,
            session_name: session_name?,
            duration: duration?,
            policy_arns: policy_arns.unwrap_or(Some(Vec::new()))?,
        })
    }

    /// The field `key` parsed with a name type's rules: `Some(None)` when absent, `None`
    /// when given but refused (the problem is reported).
    fn optional_typed<T>(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match fields.take(key) {
            None => Some(None),
            Some(node) => self.typed(node, &format!("{path}.{key}"), parse).map(Some),
        }
    }

    fn policy_arns(&mut self, node: &Node, path: &str) -> Option<Vec<PolicyArn>> {
        self.list(node, path, |walker, item, item_path| {
            walker.typed(item, item_path, PolicyArn::parse)
        })
    }

    /// A mapping of string keys to string values (session tags).
    fn string_map(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let fields = self.named(node, path)?;
        let mut map = BTreeMap::new();
        let mut ok = true;
        for (key, _, value) in &fields.entries {
            match self.string(value, &format!("{path}.{key}")) {
                Some(value) => {
                    map.insert((*key).to_owned(), value.to_owned());
                }
                None => ok = false,
            }
        }
        ok.then_some(map)
    }

    fn lock_mode(&mut self, node: &Node, path: &str) -> Option<LockMode> {
        let modes = "write `lock: lockfile` (Terraform >= 1.10), `lock: both` (while older runners remain) or `lock: dynamodb`";
        match self.string(node, path)? {
            "lockfile" => Some(LockMode::Lockfile),
            "dynamodb" => Some(LockMode::DynamoDb),
            "both" => Some(LockMode::Both),
            other => {
                let problem = Problem::new(format!("unknown lock mode `{other}`"));
                let problem = match closest(other, ["lockfile", "dynamodb", "both"]) {
                    Some(near) => problem.hint(format!("did you mean `{near}`? {modes}")),
                    None => problem.hint(modes),
                };
                self.report(node.pos, problem);
                None
            }
        }
    }

    /// A stack from its own options over the defaults.
    #[allow(clippy::too_many_arguments)]
    fn stack_from(
        &mut self,
        name: StackName,
        name_pos: Pos,
        own: StackOptions,
        defaults: &StackOptions,
        path: &str,
        default_file: String,
        inherited: &Inherited<'_>,
        (writers, readers): (Option<Vec<PrincipalRef>>, Option<Vec<PrincipalRef>>),
    ) -> Option<StackSpec> {
        let (key, key_pos) = match own.key.clone() {
            Some(key) => key,
            None => {
                if !own.key_given {
                    self.report(
                        name_pos,
                        Problem::new(format!("missing required key `{path}.key`"))
                            .hint("add `key: app/terraform.tfstate`"),
                    );
                }
                return None;
            }
        };
        let (file, file_pos) = own.file.clone().unwrap_or((default_file, name_pos));
        let lock = self.resolve_lock(&own, defaults, inherited.bucket);
        let credentials = self.credentials(&own, defaults, inherited);
        let auth = self.auth(&own, defaults, inherited);
        let (lock, credentials, auth) = (lock?, credentials?, auth?);
        Some(StackSpec {
            name,
            key,
            file,
            credentials,
            auth,
            workspace_key_prefix: own
                .workspace_key_prefix
                .or_else(|| defaults.workspace_key_prefix.clone()),
            assume_role: own.assume_role.or_else(|| defaults.assume_role.clone()),
            terraform_dir: own.terraform_dir.or_else(|| defaults.terraform_dir.clone()),
            lock,
            writers,
            readers,
            positions: StackPositions {
                name: name_pos,
                key: key_pos,
                file: file_pos,
            },
        })
    }

    /// Where the backend's credentials come from: the stack's own `web_identity` or
    /// `profile`, then `stack_defaults`' (`backend` has no defaults), then the spec's
    /// `profile`. A level naming both is an error there; none at all is the spec's missing
    /// `profile`.
    fn credentials(
        &mut self,
        own: &StackOptions,
        defaults: &StackOptions,
        inherited: &Inherited<'_>,
    ) -> Option<BackendCredentials> {
        for options in [own, defaults] {
            match (&options.profile, &options.web_identity) {
                (Some(_), Some((_, pos))) => {
                    self.report(
                        *pos,
                        Problem::new(format!(
                            "`{0}.profile` and `{0}.web_identity` cannot both be given",
                            options.path
                        ))
                        .hint("a web identity replaces the profile's credentials: keep `web_identity` for CI with OIDC, or `profile` for a named profile"),
                    );
                    return None;
                }
                (None, Some((web_identity, _))) => {
                    return web_identity.clone().map(BackendCredentials::WebIdentity);
                }
                (Some(profile), None) => {
                    return Some(BackendCredentials::Profile(profile.clone()));
                }
                (None, None) => {}
            }
        }
        match inherited.profile {
            Some(Some(profile)) => Some(BackendCredentials::Profile(profile.clone())),
            // Given but invalid: already reported.
            None => None,
            Some(None) => {
                self.report(
                    inherited.top,
                    Problem::new("missing required key `profile`").hint(
                        "add `profile: terraform  # the AWS profile Terraform's backend uses` (or give every stack a `web_identity`)",
                    ),
                );
                None
            }
        }
    }

    /// The backend's other authentication settings, each the stack's own or its default's.
    fn auth(
        &mut self,
        own: &StackOptions,
        defaults: &StackOptions,
        inherited: &Inherited<'_>,
    ) -> Option<BackendAuth> {
        let forbidden = own
            .forbidden_account_ids
            .as_ref()
            .or(defaults.forbidden_account_ids.as_ref());
        if let (true, Some((ids, pos))) = (inherited.account_id, forbidden)
            && ids.as_ref().is_some_and(|ids| !ids.is_empty())
        {
            self.report(
                *pos,
                Problem::new("`forbidden_account_ids` cannot be used with the spec's `account_id`")
                    .hint("`account_id` already allows that one account (Terraform's `allowed_account_ids`), and Terraform accepts only one of the two: keep `account_id`, or drop it and list the accounts to refuse"),
            );
            return None;
        }
        fn inherit<T: Clone>(own: &Option<T>, default: &Option<T>) -> Option<T> {
            own.clone().or_else(|| default.clone())
        }
        let forbidden_account_ids = match forbidden {
            Some((ids, _)) => ids.clone()?,
            None => Vec::new(),
        };
        Some(BackendAuth {
            forbidden_account_ids,
            sts_region: inherit(&own.sts_region, &defaults.sts_region),
            shared_config_files: inherit(&own.shared_config_files, &defaults.shared_config_files)
                .unwrap_or_default(),
            shared_credentials_files: inherit(
                &own.shared_credentials_files,
                &defaults.shared_credentials_files,
            )
            .unwrap_or_default(),
            use_fips_endpoint: inherit(&own.use_fips_endpoint, &defaults.use_fips_endpoint)
                .unwrap_or(false),
            use_dualstack_endpoint: inherit(
                &own.use_dualstack_endpoint,
                &defaults.use_dualstack_endpoint,
            )
            .unwrap_or(false),
        })
    }

    /// `lock` (default `lockfile`) and `dynamodb_table` (default `<bucket>-locks`), which
    /// only the DynamoDB modes use. A stack inherits both from `stack_defaults`; a table set
    /// where the mode in effect is `lockfile` is an error at that place.
    fn resolve_lock(
        &mut self,
        own: &StackOptions,
        defaults: &StackOptions,
        bucket: Option<&BucketName>,
    ) -> Option<Locking> {
        let mode_of = |options: &StackOptions| options.lock.as_ref().map(|(mode, _)| *mode);
        let own_mode = mode_of(own);
        let default_mode = mode_of(defaults);
        if own_mode == Some(None) || default_mode == Some(None) {
            return None;
        }
        let defaults_mode = default_mode.flatten().unwrap_or(LockMode::Lockfile);
        if let (LockMode::Lockfile, Some((_, pos))) = (defaults_mode, &defaults.table) {
            self.refuse_unused_table(*pos, &defaults.path);
            return None;
        }
        let mode = own_mode.flatten().unwrap_or(defaults_mode);
        if let (LockMode::Lockfile, Some((_, pos))) = (mode, &own.table) {
            self.refuse_unused_table(*pos, &own.path);
            return None;
        }
        let table = match own.table.as_ref().or(defaults.table.as_ref()) {
            Some((table, _)) => table.clone(),
            None => bucket.map(TableName::for_bucket),
        };
        Some(match mode {
            LockMode::Lockfile => Locking::Lockfile,
            LockMode::DynamoDb => Locking::DynamoDb(table?),
            LockMode::Both => Locking::Both(table?),
        })
    }

    fn refuse_unused_table(&mut self, pos: Pos, path: &str) {
        self.report(
            pos,
            Problem::new(format!("`{path}.dynamodb_table` is set, but `lock` is `lockfile`, which uses no table"))
                .hint("remove `dynamodb_table` (the table itself is kept; `statebucket plan` says how to delete it once unused), or set `lock: both`"),
        );
    }

    /// Problems between the stacks of one spec: two stacks on one state object or one
    /// backend file, a key inside another stack's workspace keys, a stack without writers,
    /// two stacks whose names give the same statement id.
    fn check_stacks(&mut self, access: &AccessSpec, stacks: &[StackSpec], layout: Layout) {
        for (index, stack) in stacks.iter().enumerate() {
            if stack.writers.is_none() && access.writers.is_empty() {
                self.report(
                    stack.positions.name,
                    Problem::new(format!("stack `{}` has no writers", stack.name)).hint(format!(
                        "list the users and roles Terraform runs as in `access` (for every stack) or in `stacks.{}.access`",
                        stack.name
                    )),
                );
            }
            for earlier in &stacks[..index] {
                if earlier.key == stack.key {
                    self.report(
                        stack.positions.key,
                        Problem::new(format!(
                            "stacks `{}` and `{}` both keep their state at `{}`",
                            earlier.name, stack.name, stack.key
                        ))
                        .hint("give each stack its own `key`"),
                    );
                }
                if earlier.file == stack.file {
                    self.report(
                        stack.positions.file,
                        Problem::new(format!(
                            "stacks `{}` and `{}` both write `{}`",
                            earlier.name, stack.name, stack.file
                        ))
                        .hint("give each stack its own `file`"),
                    );
                }
                if layout == Layout::Stacks && earlier.name.sid_token() == stack.name.sid_token() {
                    self.report(
                        stack.positions.name,
                        Problem::new(format!(
                            "stacks `{}` and `{}` would share the policy statement name `{}`",
                            earlier.name,
                            stack.name,
                            stack.name.sid_token()
                        ))
                        .hint(
                            "statement ids keep letters and digits only; rename one of the stacks",
                        ),
                    );
                }
            }
            for other in stacks {
                if let Some(workspace) = inside_workspaces(stack, other) {
                    self.report(
                        stack.positions.key,
                        Problem::new(format!(
                            "the key of stack `{}` lies where Terraform keeps stack `{}`'s state for workspace `{workspace}`",
                            stack.name, other.name
                        ))
                        .hint(format!(
                            "keys of the form `{}/WORKSPACE/{}` belong to stack `{}`'s workspaces; choose another key",
                            other.workspace_prefix(),
                            other.key,
                            other.name
                        )),
                    );
                }
            }
        }
    }

    /// A replica's failover files: one per stack, none of them a stack's backend file; and
    /// no replica of an S3-compatible store (replication is AWS S3's).
    fn check_replica(
        &mut self,
        replica: &ReplicaSpec,
        primary_encryption: &Encryption,
        stacks: &[StackSpec],
        compat: bool,
    ) -> Option<()> {
        if matches!(primary_encryption, Encryption::Kms(_))
            && matches!(replica.encryption, Encryption::Aes256)
        {
            self.report(
                replica.positions.name,
                Problem::new("the bucket is KMS-encrypted, but its replica is not: S3 replicates SSE-KMS objects only into a KMS key in the replica's region")
                    .hint("give the replica a key of its own: `encryption: { kms_key: alias/NAME-replica, create_key: true }`"),
            );
            return None;
        }
        if compat {
            self.report(
                replica.positions.name,
                Problem::new("`bucket.replica` needs S3 replication, which `compat` says this store is not AWS S3 to offer")
                    .hint("replicate with the store's own tools (e.g. MinIO site replication), or remove `bucket.replica`"),
            );
            return None;
        }
        if replica.backend_file.is_some() && stacks.len() > 1 {
            self.report(
                replica.positions.backend_file,
                Problem::new(format!(
                    "`bucket.replica.backend_file` names one file, but the spec has {} stacks",
                    stacks.len()
                ))
                .hint(format!(
                    "remove it: each stack's failover file is written beside its backend file (`{}` for `{}`)",
                    stacks[0].failover_file(),
                    stacks[0].file
                )),
            );
            return None;
        }
        for stack in stacks {
            let file = replica.failover_file(stack);
            if let Some(other) = stacks.iter().find(|other| other.file == file) {
                self.report(
                    replica.positions.backend_file,
                    Problem::new(format!(
                        "the failover file of stack `{}` would be `{file}`, the backend file of stack `{}`",
                        stack.name, other.name
                    ))
                    .hint("choose another `bucket.replica.backend_file`, or rename the stack's `file`"),
                );
                return None;
            }
        }
        Some(())
    }

    fn located<T>(&mut self, pos: Pos, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.report(pos, problem)).ok()
    }
}

/// The lock modes as written; the table is resolved with the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockMode {
    Lockfile,
    DynamoDb,
    Both,
}

/// The options of `backend`, `stack_defaults` or one stack, as written. Each is `None`
/// when absent or invalid (the problem is reported).
#[derive(Debug, Clone, Default)]
struct StackOptions {
    key: Option<(StateKey, Pos)>,
    key_given: bool,
    file: Option<(String, Pos)>,
    profile: Option<ProfileName>,
    /// The identity (`None` when invalid) and where it stands.
    web_identity: Option<(Option<WebIdentity>, Pos)>,
    workspace_key_prefix: Option<WorkspacePrefix>,
    assume_role: Option<AssumeRole>,
    terraform_dir: Option<String>,
    forbidden_account_ids: Option<(Option<Vec<AccountId>>, Pos)>,
    sts_region: Option<Region>,
    shared_config_files: Option<Vec<String>>,
    shared_credentials_files: Option<Vec<String>>,
    use_fips_endpoint: Option<bool>,
    use_dualstack_endpoint: Option<bool>,
    /// The mode (`None` when invalid) and where it stands.
    lock: Option<(Option<LockMode>, Pos)>,
    table: Option<(Option<TableName>, Pos)>,
    /// `backend`, `stack_defaults` or `stacks.NAME`, for messages.
    path: String,
}

/// The role and session settings `assume_role` and `web_identity` share.
struct RoleSession {
    role_arn: RoleArn,
    session_name: Option<SessionName>,
    duration: Option<RoleDuration>,
    policy_arns: Vec<PolicyArn>,
}

/// What every stack takes from the spec's top level.
struct Inherited<'a> {
    /// The state bucket, for the default lock table's name.
    bucket: Option<&'a BucketName>,
    /// The spec's `profile`: `Some(None)` when absent, `None` when given but invalid.
    profile: Option<Option<&'a ProfileName>>,
    /// Whether the spec sets `account_id` (written as `allowed_account_ids`).
    account_id: bool,
    /// The top of the spec, where a missing `profile` is reported.
    top: Pos,
}

/// The workspace `stack`'s key would be read as by `other`'s backend, when it lies at
/// `<other's workspace_key_prefix>/<workspace>/<other's key>`.
fn inside_workspaces<'a>(stack: &'a StackSpec, other: &StackSpec) -> Option<&'a str> {
    if std::ptr::eq(stack, other) {
        return None;
    }
    let prefix = other.workspace_prefix();
    let rest = match prefix.as_str() {
        "" => stack.key.as_str(),
        prefix => stack.key.as_str().strip_prefix(prefix)?.strip_prefix('/')?,
    };
    let workspace = rest.strip_suffix(other.key.as_str())?.strip_suffix('/')?;
    (!workspace.is_empty()).then_some(workspace)
}

/// `environments/dev.yaml` → `environments/dev/backend.hcl`.
fn default_backend_file(source: &str, env: &EnvName) -> String {
    match source.rfind('/') {
        Some(slash) => format!("{}/{env}/backend.hcl", &source[..slash]),
        None => format!("{env}/backend.hcl"),
    }
}

/// `environments/dev.yaml`, stack `network` → `environments/dev/network/backend.hcl`.
fn default_stack_file(source: &str, env: &EnvName, stack: &StackName) -> String {
    match source.rfind('/') {
        Some(slash) => format!("{}/{env}/{stack}/backend.hcl", &source[..slash]),
        None => format!("{env}/{stack}/backend.hcl"),
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

    /// Every key of the schema, in one of two specs.
    const EVERY_KEY_WITH_BACKEND: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bootstrap_profile: admin
endpoint: https://s3.example.internal
bucket:
  name: my-terraform-state-prod
  encryption: { kms_key: alias/terraform-state, create_key: true }
  tags: { team: platform }
  lifecycle: { expire_noncurrent_after_days: 365, abort_incomplete_uploads_after_days: 3 }
  logging: { bucket: my-access-logs, prefix: state/ }
  replica:
    region: eu-central-1
    name: my-terraform-state-prod-dr
    encryption: { kms_key: alias/terraform-state-replica, create_key: true }
    object_lock: { mode: governance, days: 30 }
    backend_file: environments/prod/backend.dr.hcl
access:
  users: [terraform-access]
  roles: [terraform-access-role]
  readers: { users: [auditor], roles: [terraform-plan] }
  policy_template: policies/state-access.json
  exclusive: true
  break_glass_role: break-glass
  attach_identity_policy: true
backend:
  key: app/terraform.tfstate
  file: environments/prod/backend.hcl
  profile: terraform-prod
  workspace_key_prefix: workspaces
  assume_role:
    role_arn: arn:aws:iam::123456789012:role/terraform
    external_id: tenant-42
    session_name: terraform-ci
    duration: 1h
    tags: { team: platform, cost: \"7\" }
    transitive_tag_keys: [team]
    source_identity: alice
    policy_arns: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]
    policy: '{\"Version\": \"2012-10-17\", \"Statement\": []}'
  terraform_dir: infra/app
  lock: both
  dynamodb_table: terraform-locks
  sts_region: eu-central-1
  shared_config_files: [~/.aws/config, /etc/aws/config]
  shared_credentials_files: [~/.aws/credentials]
  use_fips_endpoint: true
  use_dualstack_endpoint: false
opentofu:
  encryption: { kms_key: alias/tofu-state, create_key: true, phase: enforce }
";
    const EVERY_KEY_WITH_STACKS: &str = "\
region: eu-west-1
profile: terraform
bucket: { name: my-terraform-state-shared }
access: { roles: [terraform-access-role] }
stack_defaults:
  profile: terraform-ci
  workspace_key_prefix: workspaces
  assume_role: arn:aws:iam::123456789012:role/terraform
  terraform_dir: infra
  lock: dynamodb
  dynamodb_table: terraform-locks
stacks:
  network:
    key: network/terraform.tfstate
    file: stacks/network/backend.hcl
    access: { users: [network-ci], roles: [network-role], readers: { roles: [network-plan] } }
    profile: network-ci
    workspace_key_prefix: network-workspaces
    assume_role: arn:aws:iam::123456789012:role/network
    terraform_dir: infra/network
    lock: lockfile
  app:
    key: app/terraform.tfstate
    dynamodb_table: app-locks
    forbidden_account_ids: [\"210987654321\"]
  ci:
    key: ci/terraform.tfstate
    web_identity:
      role_arn: arn:aws:iam::123456789012:role/github-terraform
      token_file: /tmp/web-identity-token
      session_name: github-actions
      duration: 30m
      policy_arns: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]
compat: { lacks: [iam], skip_s3_checksum: true }
";

    #[test]
    fn backend_credentials_come_from_a_profile_or_a_web_identity_never_both() {
        let all_web = "\
region: eu-west-1
bucket: { name: my-terraform-state-ci }
access: { roles: [github-terraform] }
stack_defaults:
  web_identity: { role_arn: \"arn:aws:iam::123456789012:role/github-terraform\", token_file: /tmp/token }
stacks:
  app: { key: app/terraform.tfstate }
  net: { key: net/terraform.tfstate, profile: network }
";
        let spec = parse_spec("environments/ci.yaml", "ci", all_web).unwrap();
        assert_eq!(spec.profile, None);
        assert!(matches!(
            &spec.stacks[0].credentials,
            BackendCredentials::WebIdentity(web) if web.token_file == "/tmp/token"
        ));
        assert_eq!(
            spec.profile_of(&spec.stacks[1]).map(ProfileName::as_str),
            Some("network")
        );

        let missing = errors(&all_web.replace("  web_identity: { role_arn: \"arn:aws:iam::123456789012:role/github-terraform\", token_file: /tmp/token }\n", "  lock: lockfile\n"));
        assert_eq!(missing, ["1:1 missing required key `profile`"]);

        let both = errors(&all_web.replace(
            "stack_defaults:\n",
            "stack_defaults:\n  profile: terraform\n",
        ));
        assert_eq!(
            both,
            [
                "6:17 `stack_defaults.profile` and `stack_defaults.web_identity` cannot both be given"
            ]
        );

        let token = errors(&all_web.replace(
            "token_file: /tmp/token",
            "token_file: /tmp/token, token: eyJhbGciOi",
        ));
        assert_eq!(token.len(), 1, "{token:?}");
        assert!(token[0].contains("`token` holds a credential"), "{token:?}");
    }

    #[test]
    fn assume_role_takes_an_arn_or_every_documented_attribute() {
        let short = parse_spec(
            "environments/dev.yaml",
            "dev",
            &DEV.replace(
                "  key: eks",
                "  assume_role: arn:aws:iam::123456789012:role/tf\n  key: eks",
            ),
        )
        .unwrap();
        assert_eq!(
            short.stacks[0].assume_role,
            Some(AssumeRole::of(
                RoleArn::parse("arn:aws:iam::123456789012:role/tf").unwrap()
            ))
        );
        let spec = parse_spec("environments/x.yaml", "x", EVERY_KEY_WITH_BACKEND).unwrap();
        let role = spec.stacks[0].assume_role.as_ref().unwrap();
        assert_eq!(
            role.external_id.as_ref().map(ExternalId::as_str),
            Some("tenant-42")
        );
        assert_eq!(
            role.duration.as_ref().map(RoleDuration::seconds),
            Some(3600)
        );
        assert_eq!(role.transitive_tag_keys, ["team"]);
        assert_eq!(
            spec.stacks[0].auth.sts_region.as_ref().map(Region::as_str),
            Some("eu-central-1")
        );
        assert!(spec.stacks[0].auth.use_fips_endpoint);

        let wrong = |from: &str, to: &str| errors(&EVERY_KEY_WITH_BACKEND.replace(from, to));
        assert_eq!(
            wrong(
                "transitive_tag_keys: [team]",
                "transitive_tag_keys: [owner]"
            ),
            ["37:26 transitive tag key `owner` is not one of `backend.assume_role.tags`"]
        );
        assert_eq!(
            wrong("duration: 1h", "duration: 1d"),
            ["35:15 `1d` is not a session duration"]
        );
        assert_eq!(
            wrong("policy: '{", "policy: '["),
            ["40:13 the session policy is not a JSON object"]
        );
    }

    #[test]
    fn a_store_cannot_be_asked_for_what_compat_says_it_lacks() {
        let text = |lacks: &str, bucket_extra: &str| {
            format!(
                "{}compat: {{ lacks: [{lacks}] }}\n",
                DEV.replace("  tags: { team: platform }\n", bucket_extra)
            )
        };
        let compat = |lacks: &str, bucket_extra: &str| errors(&text(lacks, bucket_extra));
        let all = "iam, kms, public_access_block, ownership_controls, tagging";
        assert!(parse_spec("environments/dev.yaml", "dev", &text(all, "")).is_ok());
        assert_eq!(
            compat("tagging", "  tags: { team: platform }\n"),
            [
                "14:9 `bucket.tags` are given, but `compat.lacks` says the store has no bucket tagging"
            ]
        );
        let kms = errors(
            &text("kms", "").replace("encryption: aes256", "encryption: { kms_key: alias/state }"),
        );
        assert_eq!(kms.len(), 1, "{kms:?}");
        assert!(
            kms[0].ends_with(
                "`bucket.encryption` names a KMS key, but `compat.lacks` says the store has no KMS"
            ),
            "{kms:?}"
        );
        assert_eq!(
            compat("public_acces_block", ""),
            ["13:19 unknown store feature `public_acces_block`"]
        );
        let spec = parse_spec(
            "environments/dev.yaml",
            "dev",
            &format!(
                "{}compat: {{ lacks: [iam], skip_s3_checksum: true }}\n",
                DEV
            ),
        )
        .unwrap();
        assert!(spec.lacks(StoreFeature::Iam) && !spec.lacks(StoreFeature::Kms));
        assert!(spec.compat.unwrap().skip_s3_checksum);
    }

    #[test]
    fn opentofu_encryption_needs_a_key() {
        let with = |encryption: &str| format!("{DEV}opentofu:\n  encryption: {encryption}\n");
        assert_eq!(
            errors(&with("{ phase: migrate }")),
            [
                "15:15 `opentofu.encryption` has no key: the bucket is AES256-encrypted, so there is no bucket key to use"
            ]
        );
        assert_eq!(
            errors(&with("{ kms_key: alias/tofu, phase: enforced }")),
            ["15:45 unknown phase `enforced`"]
        );
        assert_eq!(
            errors(&with(
                "{ kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab, create_key: true }"
            )),
            ["15:26 `opentofu.encryption.create_key: true` needs an alias to create"]
        );
        let created = parse_spec(
            "environments/dev.yaml",
            "dev",
            &with("{ kms_key: alias/tofu, create_key: true }"),
        )
        .unwrap();
        assert!(matches!(
            created.tofu_encryption.unwrap().key,
            Some(KmsKey::Managed(_))
        ));
        let spec = parse_spec(
            "environments/dev.yaml",
            "dev",
            &with("{ kms_key: alias/tofu }"),
        )
        .unwrap();
        let encryption = spec.tofu_encryption.unwrap();
        assert_eq!(encryption.phase, TofuPhase::Migrate);
        assert_eq!(
            spec.stacks[0].tofu_encryption_file(),
            "environments/dev/encryption.hcl"
        );
    }

    #[test]
    fn forbidden_account_ids_exclude_the_specs_account_id() {
        let text = EVERY_KEY_WITH_BACKEND.replace(
            "  sts_region: eu-central-1\n",
            "  sts_region: eu-central-1\n  forbidden_account_ids: [\"210987654321\"]\n",
        );
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .ends_with("`forbidden_account_ids` cannot be used with the spec's `account_id`"),
            "{found:?}"
        );
    }

    #[test]
    fn the_walker_reads_every_key_the_schema_lists() {
        TAKEN.with(|taken| taken.borrow_mut().clear());
        for text in [EVERY_KEY_WITH_BACKEND, EVERY_KEY_WITH_STACKS] {
            if let Err(diagnostics) = parse_spec("environments/x.yaml", "x", text) {
                panic!("{diagnostics:#?}");
            }
        }
        let mut listed = Vec::new();
        let mut pending = vec![&schema::SPEC];
        while let Some(object) = pending.pop() {
            for field in object.fields {
                listed.push((object.name, field.name));
                let mut shapes = vec![&field.shape];
                while let Some(shape) = shapes.pop() {
                    match shape {
                        schema::Shape::Object(inner) => pending.push(inner),
                        schema::Shape::Named { value, .. } | schema::Shape::List(value) => {
                            shapes.push(value)
                        }
                        schema::Shape::AnyOf(options) => shapes.extend(options.iter()),
                        _ => {}
                    }
                }
            }
        }
        let taken = TAKEN.with(|taken| taken.borrow().clone());
        let unread: Vec<_> = listed.iter().filter(|pair| !taken.contains(pair)).collect();
        assert!(
            unread.is_empty(),
            "keys the schema lists but the walker never reads: {unread:?}"
        );
    }

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
        assert_eq!(spec.access.writers.len(), 2);
        assert_eq!(spec.access.writers[1].kind(), PrincipalKind::Role);
        assert_eq!(spec.layout, Layout::Backend);
        assert_eq!(spec.stacks.len(), 1);
        assert_eq!(spec.stacks[0].name.as_str(), "dev");
        assert_eq!(spec.stacks[0].file, "environments/dev/backend.hcl");
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
        assert_eq!(default.stacks[0].lock, Locking::Lockfile);
        let both = parse_spec("e/x.yaml", "x", &lock("  lock: both")).unwrap();
        assert_eq!(
            both.stacks[0].lock,
            Locking::Both(TableName::parse("my-terraform-state-dev-locks").unwrap())
        );
        let named = parse_spec(
            "e/x.yaml",
            "x",
            &lock("  lock: dynamodb\n  dynamodb_table: tf-locks"),
        )
        .unwrap();
        assert_eq!(
            named.stacks[0].lock,
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
            single.access.writers[0],
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
        assert_eq!(default.stacks[0].file, "environments/dev/backend.hcl");
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
    fn two_specs_naming_one_bucket_is_an_error_naming_both_files() {
        let dev = parse_spec("environments/dev.yaml", "dev", DEV).unwrap();
        let copy = parse_spec(
            "environments/copy.yaml",
            "copy",
            &DEV.replace(
                "environments/dev/backend.hcl",
                "environments/copy/backend.hcl",
            )
            .replace("eks-cluster/", "other/"),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev.clone(), copy]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert_eq!(diagnostics[0].file, "environments/copy.yaml");
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (5, 9));
        assert_eq!(
            diagnostics[0].message,
            "environments/dev.yaml and environments/copy.yaml both manage bucket `my-terraform-state-dev`; each would rewrite the other's grants"
        );
        assert!(
            diagnostics[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("make their states stacks of one spec")
        );

        let same_file = parse_spec(
            "environments/b.yaml",
            "b",
            &DEV.replace("my-terraform-state-dev", "other-bucket"),
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

    const STACKS: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket: { name: central-state }
access:
  users: [terraform-access]
  roles: [terraform-access-role]
  readers:
    roles: [terraform-plan]
stack_defaults:
  lock: both
  workspace_key_prefix: ws
stacks:
  network:
    key: network/terraform.tfstate
    file: stacks/network/backend.hcl
    access: { roles: [network-ci] }
    profile: network
  app:
    key: app/terraform.tfstate
    lock: lockfile
";

    #[test]
    fn stacks_take_their_own_options_over_the_defaults() {
        let spec = parse_spec("environments/central.yaml", "central", STACKS).unwrap();
        assert_eq!(spec.layout, Layout::Stacks);
        let [network, app] = spec.stacks.as_slice() else {
            panic!("{:#?}", spec.stacks)
        };
        assert_eq!(network.file, "stacks/network/backend.hcl");
        assert_eq!(app.file, "environments/central/app/backend.hcl");
        assert_eq!(
            network.lock,
            Locking::Both(TableName::parse("central-state-locks").unwrap())
        );
        assert_eq!(app.lock, Locking::Lockfile);
        assert_eq!(network.workspace_prefix().as_str(), "ws");
        assert_eq!(app.workspace_prefix().as_str(), "ws");
        assert_eq!(
            spec.profile_of(network).map(ProfileName::as_str),
            Some("network")
        );
        assert_eq!(
            spec.profile_of(app).map(ProfileName::as_str),
            Some("terraform")
        );
        let names =
            |list: &[PrincipalRef]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(names(spec.writers_of(network)), vec!["network-ci"]);
        assert_eq!(
            names(spec.writers_of(app)),
            vec!["terraform-access", "terraform-access-role"]
        );
        assert_eq!(names(spec.readers_of(network)), vec!["terraform-plan"]);
        assert_eq!(spec.lock_tables().len(), 1);
    }

    #[test]
    fn stack_rules() {
        let stack_errors = |text: &str| {
            parse_spec("environments/central.yaml", "central", text)
                .unwrap_err()
                .into_iter()
                .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
                .collect::<Vec<_>>()
        };
        let both = format!("{STACKS}backend: {{ key: x/terraform.tfstate }}\n");
        assert_eq!(
            stack_errors(&both),
            vec!["14:3 `backend` and `stacks` cannot both be given"]
        );
        let same_key = STACKS.replace("app/terraform.tfstate", "network/terraform.tfstate");
        assert_eq!(
            stack_errors(&same_key),
            vec![
                "20:10 stacks `network` and `app` both keep their state at `network/terraform.tfstate`"
            ]
        );
        let same_file = STACKS.replace(
            "    lock: lockfile\n",
            "    lock: lockfile\n    file: stacks/network/backend.hcl\n",
        );
        assert_eq!(
            stack_errors(&same_file),
            vec!["22:11 stacks `network` and `app` both write `stacks/network/backend.hcl`"]
        );
        // app's state would be network's workspace `prod` (prefix `ws`).
        let inside = STACKS.replace(
            "key: app/terraform.tfstate",
            "key: ws/prod/network/terraform.tfstate",
        );
        assert_eq!(
            stack_errors(&inside),
            vec![
                "20:10 the key of stack `app` lies where Terraform keeps stack `network`'s state for workspace `prod`"
            ]
        );
        let no_writers = STACKS.replace(
            "  users: [terraform-access]\n  roles: [terraform-access-role]\n",
            "",
        );
        assert_eq!(
            stack_errors(&no_writers),
            vec!["17:3 stack `app` has no writers"]
        );
        let clash = STACKS
            .replace("  app:", "  net.work:")
            .replace("  network:", "  net-work:");
        assert_eq!(
            stack_errors(&clash),
            vec![
                "19:3 stacks `net-work` and `net.work` would share the policy statement name `NetWork`"
            ]
        );
        let shared_key = STACKS.replace(
            "  lock: both\n",
            "  lock: both\n  key: x/terraform.tfstate\n",
        );
        assert_eq!(
            stack_errors(&shared_key),
            vec!["12:8 `stack_defaults.key` cannot be shared: every stack has its own"]
        );
        let bad_name = STACKS.replace("  app:", "  \"-app\":");
        assert!(stack_errors(&bad_name)[0].contains("not a usable stack name"));
        let defaults_with_backend =
            DEV.replace("backend:", "stack_defaults: { lock: both }\nbackend:");
        assert!(
            errors(&defaults_with_backend)[0]
                .contains("`stack_defaults` applies to `stacks`, but this spec uses `backend`")
        );
        let reader_and_writer =
            STACKS.replace("roles: [terraform-plan]", "roles: [terraform-access-role]");
        assert_eq!(
            stack_errors(&reader_and_writer),
            vec!["6:3 `terraform-access-role` is listed both as a writer and in `access.readers`"]
        );
        let table_with_lockfile = STACKS.replace(
            "    lock: lockfile\n",
            "    lock: lockfile\n    dynamodb_table: tf-locks\n",
        );
        assert_eq!(
            stack_errors(&table_with_lockfile),
            vec![
                "22:21 `stacks.app.dynamodb_table` is set, but `lock` is `lockfile`, which uses no table"
            ]
        );
        let no_stacks =
            "region: eu-west-1\nprofile: t\nbucket: { name: central-state }\nstacks: {}\n";
        assert_eq!(stack_errors(no_stacks), vec!["4:9 `stacks` lists no stack"]);
    }
}
