//! The walker: mappings, required and typed fields, every problem collected with its place.

use std::collections::BTreeMap;

use super::Walker;
use super::credentials::is_credential_key;
use super::*;
use crate::spec::Diagnostic;
use crate::spec::names::{Problem, closest};
use crate::spec::schema::Object;
use crate::spec::yaml::{Node, Pos, Yaml};

impl Walker<'_> {
    /// Reports a value of the wrong YAML kind: "`path` must be EXPECTED, found KIND" (the
    /// spec itself when `path` is empty).
    pub(super) fn wrong_kind(
        &mut self,
        node: &Node,
        path: &str,
        expected: &str,
        hint: Option<&str>,
    ) {
        let what = if path.is_empty() {
            "the spec".to_owned()
        } else {
            format!("`{path}`")
        };
        let mut problem = Problem::new(format!(
            "{what} must be {expected}, found {}",
            node.value.kind()
        ));
        if let Some(hint) = hint {
            problem = problem.hint(hint);
        }
        self.report(node.pos, problem);
    }

    pub(super) fn report(&mut self, pos: Pos, problem: Problem) {
        self.diagnostics
            .push(Diagnostic::new(self.file, pos, problem));
    }

    /// A mapping with the keys `object` lists.
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        object: &'static Object,
    ) -> Option<Fields<'n>> {
        self.mapping(node, path, Some(object))
    }

    /// A mapping of free names (tags, stacks).
    pub(super) fn named<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        self.mapping(node, path, None)
    }

    pub(super) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        object: Option<&'static Object>,
    ) -> Option<Fields<'n>> {
        let Yaml::Map(entries) = &node.value else {
            let hint = "write `key: value` pairs, indented under their parent";
            self.wrong_kind(node, path, "a mapping", Some(hint));
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
    pub(super) fn finish(&mut self, fields: Fields<'_>) {
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

    pub(super) fn required<'n>(
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

    pub(super) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Yaml::Bool(value) => Some(*value),
            _ => {
                self.wrong_kind(node, path, "true or false", None);
                None
            }
        }
    }

    pub(super) fn string<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n str> {
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
            _ => {
                self.wrong_kind(node, path, "a string", None);
                None
            }
        }
    }

    /// Parses a string field with a name type's rules.
    pub(super) fn typed<T>(
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

    /// A YAML list, each item parsed by `item` (given the item's path); `None` when any
    /// item (or the list itself) was refused.
    pub(super) fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Yaml::Seq(items) = &node.value else {
            let hint = "write `[a, b]`, or one `- item` per line";
            self.wrong_kind(node, path, "a list", Some(hint));
            return None;
        };
        let parsed: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(index, node)| item(self, node, &format!("{path}[{index}]")))
            .collect();
        parsed.into_iter().collect()
    }

    /// The field `key` parsed with a name type's rules: `Some(None)` when absent, `None`
    /// when given but refused (the problem is reported).
    pub(super) fn optional_typed<T>(
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

    /// A mapping of string keys to string values (session tags).
    pub(super) fn string_map(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<BTreeMap<String, String>> {
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

    pub(super) fn located<T>(&mut self, pos: Pos, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.report(pos, problem)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use super::*;

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
        assert_mentions(
            &dev_error(
                "bucket:\n  name: my-terraform-state-dev\n  encryption: aes256\n  tags: { team: platform }\n",
                "bucket: 3\n",
            ),
            &["`bucket` must be a mapping"],
        );
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
        assert_mentions(
            &dev_error("profile: terraform", "profile: \"two words\""),
            &["profile name"],
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
        assert_mentions(
            &dev_error("eks-cluster/terraform.tfstate", "/abs.tfstate"),
            &["starts or ends"],
        );
        assert!(errors(&DEV.replace("  name: my-terraform-state-dev", "  name: ab")).len() == 1);
        let bad_env = parse_spec("e/x y.yaml", "x y", DEV).unwrap_err();
        assert!(bad_env[0].message.contains("environment name"));
    }
}
