//! A YAML document as a tree of nodes that remember where they stood in the file.
//!
//! Specs are read in two steps: this module turns text into a [`Node`] tree (only YAML
//! syntax can fail here), and `spec::parse` walks the tree against the schema, collecting
//! every problem with its line and column instead of stopping at the first one, which is
//! what serde's derive would do.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::options::DuplicateKeyPolicy;
use serde_saphyr::{Budget, Options, Spanned};

/// 1-based line and column of a node in its file; `0:0` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Yaml,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    Null,
    Bool(bool),
    /// A plain scalar that YAML resolves to a number, kept as the text the number prints as.
    Number(String),
    String(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are rejected by the parser.
    Map(Vec<(Node, Node)>),
}

impl Yaml {
    /// What a user would call this kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Null => "nothing (null)",
            Yaml::Bool(_) => "a boolean",
            Yaml::Number(_) => "a number",
            Yaml::String(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error (or a resource limit hit while parsing), with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    pub hint: String,
}

impl SyntaxError {
    /// Says in the words of a spec author what the parser's message means.
    fn explained(pos: Pos, raw: &str) -> SyntaxError {
        let (message, hint) = if raw.contains("budget breached") {
            (
                "the YAML expands beyond what a spec may hold (anchors and aliases, nesting or size)".to_owned(),
                "a spec is a few dozen lines; write it out without anchors and aliases".to_owned(),
            )
        } else if raw.contains("recursion limit") || raw.contains("nesting") {
            (
                "the YAML nests deeper than a spec can (32 levels)".to_owned(),
                "a spec is at most three levels deep; check for unbalanced brackets".to_owned(),
            )
        } else if let Some(rest) = raw.strip_prefix("duplicate mapping key: ") {
            let key = rest.split(',').next().unwrap_or(rest).trim();
            (
                format!("key `{key}` appears twice in the same mapping"),
                "keep one of them".to_owned(),
            )
        } else {
            (
                format!("invalid YAML: {raw}"),
                "check indentation (spaces, not tabs) and quoting near this position".to_owned(),
            )
        };
        SyntaxError { pos, message, hint }
    }
}

/// Limits for spec files. A spec is a few dozen lines; these bound the work an alias bomb
/// (`&a [*b, *b, …]` nested ten deep) or a deeply nested document can cause to well under a
/// millisecond and a few megabytes, instead of the parser defaults meant for data files.
fn spec_options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = 32;
    budget.flow_nesting_limit = 32;
    budget.max_events = 100_000;
    budget.max_nodes = 50_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 1 << 20;
    budget.max_total_scalar_bytes = 4 << 20;
    budget.max_documents = 1;
    budget.max_merge_keys = 1_000;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.strict_booleans = true;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.leading_zero_numbers_as_strings = true;
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 32;
    options.alias_limits.max_alias_expansions_per_anchor = 1_000;
    options
}

/// Parses one YAML document. An empty document is `Yaml::Null` at `1:1`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Node {
            pos: Pos { line: 1, column: 1 },
            value: Yaml::Null,
        });
    }
    if let Some(offset) = text.find('\0') {
        let line = text[..offset].matches('\n').count() + 1;
        let column = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
        return Err(SyntaxError {
            pos: Pos { line, column },
            message: "the file contains a NUL byte".into(),
            hint: "a spec is plain UTF-8 text; save it with a text editor".into(),
        });
    }
    serde_saphyr::from_str_with_options::<Node>(text, spec_options()).map_err(|error| {
        let pos = error
            .location()
            .map(|location| Pos {
                line: location.line() as usize,
                column: location.column() as usize,
            })
            .unwrap_or_default();
        SyntaxError::explained(pos, &first_line(&error.to_string()))
    })
}

/// serde-saphyr appends a rendered snippet and position to its message; we print our own.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.rfind(" at line ") {
        Some(at) => line[..at].to_string(),
        None => line.to_string(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Yaml>::deserialize(deserializer)?;
        Ok(Node {
            pos: Pos {
                line: spanned.referenced.line() as usize,
                column: spanned.referenced.column() as usize,
            },
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Number(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        Ok(Yaml::Number(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Yaml, E> {
        Ok(Yaml::Number(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Yaml, E> {
        Ok(Yaml::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Yaml, E> {
        Ok(Yaml::Number(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Yaml, E> {
        Ok(Yaml::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Yaml, E> {
        Ok(Yaml::String(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Yaml::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Yaml::Map(entries) => entries,
            other => panic!("expected a map, got {other:?}"),
        }
    }

    #[test]
    fn keys_and_values_carry_their_positions() {
        let root = parse("region: eu-west-1\nbucket:\n  name: my-bucket\n").unwrap();
        let entries = map_entries(&root);
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, column: 9 });
        let bucket = map_entries(&entries[1].1);
        assert_eq!(bucket[0].0.pos, Pos { line: 3, column: 3 });
        assert_eq!(bucket[0].1.value, Yaml::String("my-bucket".into()));
        assert_eq!(bucket[0].1.pos, Pos { line: 3, column: 9 });
    }

    #[test]
    fn scalars_keep_their_kind() {
        let root = parse("a: 123456789012\nb: \"123\"\nc: true\nd: 0123\ne:\nf: yes\n").unwrap();
        let values: Vec<_> = map_entries(&root)
            .iter()
            .map(|(_, v)| v.value.clone())
            .collect();
        assert_eq!(
            values,
            vec![
                Yaml::Number("123456789012".into()),
                Yaml::String("123".into()),
                Yaml::Bool(true),
                Yaml::String("0123".into()),
                Yaml::Null,
                Yaml::String("yes".into()),
            ]
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let error = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(error.pos.line >= 1, "{error:?}");
        assert!(!error.message.contains('\n'));
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let error = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.pos.line, 2, "{error:?}");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let prev = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let error = parse(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(!error.message.is_empty());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&text).is_err());
        let block: String = (0..200)
            .map(|depth| format!("{}k:\n", "  ".repeat(depth)))
            .collect();
        assert!(parse(&block).is_err());
    }

    #[test]
    fn nul_bytes_are_refused_with_a_position() {
        let error = parse("a: b\nc: \0\n").unwrap_err();
        assert_eq!(error.pos, Pos { line: 2, column: 4 });
    }
}
