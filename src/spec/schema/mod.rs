//! The spec's schema: every key of a spec file, its shape and what it means, in one place.
//!
//! The walker in `parse` takes its keys from here: a key it reports as unknown is one this
//! schema does not list, and taking a key the schema does not list is a bug that the tests
//! catch (debug assertion); a test also proves it takes every key listed. `statebucket
//! schema` renders the same tree as JSON Schema for editors (yaml-language-server), so the
//! editor's completion and the validator cannot disagree about which keys exist. The JSON
//! Schema is coarser than the validator: it checks keys, types, enums and simple patterns;
//! naming rules, cross-field rules and AWS lookups remain `statebucket validate`'s.

/// The shape of a value.
#[derive(Debug)]
pub enum Shape {
    /// A string; `pattern` is a JSON Schema regex the validator's rules imply (a necessary
    /// condition, not a sufficient one).
    Text {
        pattern: Option<&'static str>,
        max_length: Option<u32>,
    },
    Boolean,
    /// Whole days from 1 to 36500, or (when `never` is allowed) the word `never`.
    Days {
        never: bool,
    },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A 12-digit account id, quoted or not.
    AccountId,
    /// A mapping with these keys.
    Object(&'static Object),
    /// A mapping from free names (matching `key_pattern`) to values of one shape.
    Named {
        key_pattern: &'static str,
        value: &'static Shape,
        min: u32,
        max: Option<u32>,
    },
    /// A list of values of one shape, each once.
    List(&'static Shape),
    /// Any one of these shapes.
    AnyOf(&'static [Shape]),
    /// A tag value: YAML may read it as a string, a number or a boolean; all become strings.
    TagValue,
}

/// A mapping with a fixed set of keys.
#[derive(Debug)]
pub struct Object {
    /// The name of its JSON Schema definition.
    pub name: &'static str,
    pub description: &'static str,
    pub fields: &'static [Field],
    pub required: &'static [&'static str],
    /// Each pair: the first key needs the second.
    pub needs: &'static [(&'static str, &'static str)],
    /// Exactly one key of each group is given.
    pub exactly_one_of: &'static [&'static [&'static str]],
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub description: &'static str,
}

impl Object {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.fields.iter().map(|field| field.name).collect()
    }
}

const fn text(pattern: Option<&'static str>) -> Shape {
    Shape::Text {
        pattern,
        max_length: None,
    }
}

const fn field(name: &'static str, shape: Shape, description: &'static str) -> Field {
    Field {
        name,
        shape,
        description,
    }
}

const fn object(name: &'static str, description: &'static str, fields: &'static [Field]) -> Object {
    Object {
        name,
        description,
        fields,
        required: &[],
        needs: &[],
        exactly_one_of: &[],
    }
}

mod access;
mod bucket;
mod json_schema;
mod stacks;
mod top;

pub use access::*;
pub use bucket::*;
pub use json_schema::*;
pub use stacks::*;
pub use top::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_object_is_defined_once_and_every_reference_resolves() {
        let schema = json_schema();
        let definitions = schema["$defs"].as_object().unwrap();
        let text = serde_json::to_string(&schema).unwrap();
        for name in definitions.keys() {
            assert!(
                text.contains(&format!("\"#/$defs/{name}\"")),
                "{name} unused"
            );
        }
        let mut rest = text.as_str();
        while let Some(start) = rest.find("#/$defs/") {
            let name: String = rest[start + 8..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            assert!(definitions.contains_key(&name), "dangling reference {name}");
            rest = &rest[start + 8..];
        }
        assert_eq!(schema["oneOf"][1], json!({ "required": ["stacks"] }));
        assert_eq!(schema["dependentRequired"]["backend"], json!(["access"]));
    }

    #[test]
    fn the_committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json_schema_text(),
            "{SCHEMA_PATH} is stale: run `cargo run -- schema > {SCHEMA_PATH}` and commit it"
        );
    }

    #[test]
    fn field_names_are_unique_in_every_object() {
        fn check(object: &'static Object) {
            let mut names = object.keys();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), object.fields.len(), "{}", object.name);
            for key in object
                .required
                .iter()
                .chain(object.needs.iter().flat_map(|(a, b)| [a, b]))
            {
                assert!(object.field(key).is_some(), "{}: {key}", object.name);
            }
            for field in object.fields {
                if let Shape::Object(inner) = &field.shape {
                    check(inner);
                }
            }
        }
        check(&SPEC);
    }
}
