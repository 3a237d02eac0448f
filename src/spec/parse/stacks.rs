//! `backend`, `stack_defaults` and `stacks`: each stack's key, file, locking and options.

use super::Walker;
use super::*;
use crate::spec::names::{
    AccountId, BucketName, EnvName, PrincipalRef, Problem, ProfileName, Region, StackName,
    StateKey, TableName, WorkspacePrefix, closest,
};
use crate::spec::schema::{self};
use crate::spec::yaml::{Node, Pos};
use crate::spec::{AssumeRole, Locking, StackPositions, StackSpec, WebIdentity};

impl Walker<'_> {
    /// The one stack of a `backend:` spec, named after the environment.
    pub(super) fn backend_stack(
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
        let layers = Layers {
            own: &options,
            defaults: &defaults,
            inherited,
        };
        let stack = self.stack_from(
            StackName::from(env),
            node.pos,
            layers,
            "backend",
            default_file,
            (None, None),
        );
        self.finish(fields);
        stack
    }

    /// `stacks:` (a mapping of stack name to options) and `stack_defaults:`.
    pub(super) fn stacks(
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
            let layers = Layers {
                own: &options,
                defaults: &defaults,
                inherited,
            };
            let stack = access.and_then(|access| {
                self.stack_from(
                    stack_name,
                    key_node.pos,
                    layers,
                    &path,
                    default_file,
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
    pub(super) fn stack_access(
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
    pub(super) fn stack_options(&mut self, fields: &mut Fields<'_>, path: &str) -> StackOptions {
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
        // Absent and refused both leave the option to the defaults; a refusal is reported.
        let profile = self
            .optional_typed(fields, path, "profile", ProfileName::parse)
            .flatten();
        let workspace_key_prefix = self
            .optional_typed(fields, path, "workspace_key_prefix", WorkspacePrefix::parse)
            .flatten();
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
        let sts_region = self
            .optional_typed(fields, path, "sts_region", Region::parse)
            .flatten();
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

    /// A file path as the backend reads it (absolute, `~/`, or relative to the Terraform
    /// directory): any non-empty text without control characters.
    pub(super) fn file_path(&mut self, node: &Node, path: &str) -> Option<String> {
        self.typed(node, path, |text| {
            if text.is_empty() || text.chars().any(char::is_control) {
                Err(Problem::new(format!("`{path}` is not a usable file path")))
            } else {
                Ok(text.to_owned())
            }
        })
    }

    pub(super) fn lock_mode(&mut self, node: &Node, path: &str) -> Option<LockMode> {
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
    pub(super) fn stack_from(
        &mut self,
        name: StackName,
        name_pos: Pos,
        layers: Layers<'_>,
        path: &str,
        default_file: String,
        (writers, readers): (Option<Vec<PrincipalRef>>, Option<Vec<PrincipalRef>>),
    ) -> Option<StackSpec> {
        let own = layers.own;
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
        let lock = self.resolve_lock(layers);
        let credentials = self.credentials(layers);
        let auth = self.auth(layers);
        let (lock, credentials, auth) = (lock?, credentials?, auth?);
        Some(StackSpec {
            name,
            key,
            file,
            credentials,
            auth,
            workspace_key_prefix: layers.nearest(|options| &options.workspace_key_prefix),
            assume_role: layers.nearest(|options| &options.assume_role),
            terraform_dir: layers.nearest(|options| &options.terraform_dir),
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

    /// `lock` (default `lockfile`) and `dynamodb_table` (default `<bucket>-locks`), which
    /// only the DynamoDB modes use. A stack inherits both from `stack_defaults`; a table set
    /// where the mode in effect is `lockfile` is an error at that place.
    pub(super) fn resolve_lock(&mut self, layers: Layers<'_>) -> Option<Locking> {
        let Layers { own, defaults, .. } = layers;
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
            None => layers.inherited.bucket.map(TableName::for_bucket),
        };
        Some(match mode {
            LockMode::Lockfile => Locking::Lockfile,
            LockMode::DynamoDb => Locking::DynamoDb(table?),
            LockMode::Both => Locking::Both(table?),
        })
    }

    pub(super) fn refuse_unused_table(&mut self, pos: Pos, path: &str) {
        self.report(
            pos,
            Problem::new(format!("`{path}.dynamodb_table` is set, but `lock` is `lockfile`, which uses no table"))
                .hint("remove `dynamodb_table` (the table itself is kept; `statebucket plan` says how to delete it once unused), or set `lock: both`"),
        );
    }
}

/// The lock modes as written; the table is resolved with the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockMode {
    Lockfile,
    DynamoDb,
    Both,
}

/// The options of `backend`, `stack_defaults` or one stack, as written. Each is `None`
/// when absent or invalid (the problem is reported).
#[derive(Debug, Clone, Default)]
pub(super) struct StackOptions {
    pub(super) key: Option<(StateKey, Pos)>,
    pub(super) key_given: bool,
    pub(super) file: Option<(String, Pos)>,
    pub(super) profile: Option<ProfileName>,
    /// The identity (`None` when invalid) and where it stands.
    pub(super) web_identity: Option<(Option<WebIdentity>, Pos)>,
    pub(super) workspace_key_prefix: Option<WorkspacePrefix>,
    pub(super) assume_role: Option<AssumeRole>,
    pub(super) terraform_dir: Option<String>,
    pub(super) forbidden_account_ids: Option<(Option<Vec<AccountId>>, Pos)>,
    pub(super) sts_region: Option<Region>,
    pub(super) shared_config_files: Option<Vec<String>>,
    pub(super) shared_credentials_files: Option<Vec<String>>,
    pub(super) use_fips_endpoint: Option<bool>,
    pub(super) use_dualstack_endpoint: Option<bool>,
    /// The mode (`None` when invalid) and where it stands.
    pub(super) lock: Option<(Option<LockMode>, Pos)>,
    pub(super) table: Option<(Option<TableName>, Pos)>,
    /// `backend`, `stack_defaults` or `stacks.NAME`, for messages.
    pub(super) path: String,
}

/// What every stack takes from the spec's top level.
pub(super) struct Inherited<'a> {
    /// The state bucket, for the default lock table's name.
    pub(super) bucket: Option<&'a BucketName>,
    /// The spec's `profile`: `Some(None)` when absent, `None` when given but invalid.
    pub(super) profile: Option<Option<&'a ProfileName>>,
    /// Whether the spec sets `account_id` (written as `allowed_account_ids`).
    pub(super) account_id: bool,
    /// The top of the spec, where a missing `profile` is reported.
    pub(super) top: Pos,
}

/// Where a stack's settings come from, nearest first: its own options, `stack_defaults`
/// (`backend` has none), then the spec's top level.
#[derive(Clone, Copy)]
pub(super) struct Layers<'a> {
    pub(super) own: &'a StackOptions,
    pub(super) defaults: &'a StackOptions,
    pub(super) inherited: &'a Inherited<'a>,
}

impl<'a> Layers<'a> {
    /// The stack's own value of an option, else its default's.
    pub(super) fn nearest<T: Clone>(
        &self,
        option: impl Fn(&StackOptions) -> &Option<T>,
    ) -> Option<T> {
        self.nearest_ref(option).cloned()
    }

    /// `nearest`, borrowed.
    pub(super) fn nearest_ref<T>(
        &self,
        option: impl Fn(&'a StackOptions) -> &'a Option<T>,
    ) -> Option<&'a T> {
        option(self.own).as_ref().or(option(self.defaults).as_ref())
    }
}

/// `environments/dev.yaml` → `environments/dev/backend.hcl`.
pub(super) fn default_backend_file(source: &str, env: &EnvName) -> String {
    match source.rfind('/') {
        Some(slash) => format!("{}/{env}/backend.hcl", &source[..slash]),
        None => format!("{env}/backend.hcl"),
    }
}

/// `environments/dev.yaml`, stack `network` → `environments/dev/network/backend.hcl`.
pub(super) fn default_stack_file(source: &str, env: &EnvName, stack: &StackName) -> String {
    match source.rfind('/') {
        Some(slash) => format!("{}/{env}/{stack}/backend.hcl", &source[..slash]),
        None => format!("{env}/{stack}/backend.hcl"),
    }
}

/// A path under the project root. `terraform init -backend-config=PATH` reads a path that
/// contains `=` as KEY=VALUE, so `=` is refused too.
pub(super) fn relative_path(text: &str, extensions: &[&str]) -> Result<String, Problem> {
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
    use super::super::fixtures::*;
    use super::super::*;

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
