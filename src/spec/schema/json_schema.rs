//! The schema as JSON Schema, for editors (yaml-language-server).

use serde_json::{Map, Value, json};

use super::*;

/// Where the committed JSON Schema lives, relative to the project root.
pub const SCHEMA_PATH: &str = "schema/statebucket.schema.json";

/// The modeline that points yaml-language-server at the schema, for a spec at
/// `environments/<env>.yaml`.
pub const MODELINE: &str = "# yaml-language-server: $schema=../schema/statebucket.schema.json";

/// The spec's JSON Schema (draft 2020-12).
pub fn json_schema() -> Value {
    let mut definitions = Map::new();
    let root = object_schema(&SPEC, &mut definitions);
    let mut document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://statebucket.dev/schema/statebucket.schema.json",
        "title": "statebucket environment spec",
    });
    let document_map = document.as_object_mut().expect("an object");
    if let Value::Object(root) = root {
        document_map.extend(root);
    }
    document_map.insert("$defs".into(), Value::Object(definitions));
    document
}

/// The root object inline, every other object as a `$defs` entry.
fn object_schema(object: &'static Object, definitions: &mut Map<String, Value>) -> Value {
    let mut properties = Map::new();
    for field in object.fields {
        let mut schema = shape_schema(&field.shape, definitions);
        if let Value::Object(map) = &mut schema {
            map.insert("description".into(), field.description.into());
        }
        properties.insert(field.name.into(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "description": object.description,
        "additionalProperties": false,
        "properties": properties,
    });
    let map = schema.as_object_mut().expect("an object");
    if !object.required.is_empty() {
        map.insert("required".into(), json!(object.required));
    }
    if !object.needs.is_empty() {
        let needs: Map<String, Value> = object
            .needs
            .iter()
            .map(|(key, needed)| ((*key).to_owned(), json!([needed])))
            .collect();
        map.insert("dependentRequired".into(), Value::Object(needs));
    }
    if let [group] = object.exactly_one_of {
        let choices: Vec<Value> = group
            .iter()
            .map(|key| json!({ "required": [key] }))
            .collect();
        map.insert("oneOf".into(), Value::Array(choices));
    } else if !object.exactly_one_of.is_empty() {
        let all: Vec<Value> = object
            .exactly_one_of
            .iter()
            .map(|group| {
                json!({ "oneOf": group.iter().map(|key| json!({ "required": [key] })).collect::<Vec<_>>() })
            })
            .collect();
        map.insert("allOf".into(), Value::Array(all));
    }
    schema
}

fn shape_schema(shape: &Shape, definitions: &mut Map<String, Value>) -> Value {
    match shape {
        Shape::Text {
            pattern,
            max_length,
        } => {
            let mut schema = json!({ "type": "string", "minLength": 1 });
            let map = schema.as_object_mut().expect("an object");
            if let Some(pattern) = pattern {
                map.insert("pattern".into(), (*pattern).into());
            }
            if let Some(max) = max_length {
                map.insert("maxLength".into(), (*max).into());
            }
            schema
        }
        Shape::Boolean => json!({ "type": "boolean" }),
        Shape::Days { never: false } => {
            json!({ "type": "integer", "minimum": 1, "maximum": 36500 })
        }
        Shape::Days { never: true } => json!({
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 36500 },
                { "const": "never" }
            ]
        }),
        Shape::Choice(words) => json!({ "enum": words }),
        Shape::AccountId => json!({
            "anyOf": [
                { "type": "string", "pattern": "^[0-9]{12}$" },
                { "type": "integer", "minimum": 100000000000_u64, "maximum": 999999999999_u64 }
            ]
        }),
        Shape::Object(object) => {
            if !definitions.contains_key(object.name) {
                // Placeholder first: a definition that refers to itself terminates.
                definitions.insert(object.name.into(), Value::Null);
                let schema = object_schema(object, definitions);
                definitions.insert(object.name.into(), schema);
            }
            json!({ "$ref": format!("#/$defs/{}", object.name) })
        }
        Shape::Named {
            key_pattern,
            value,
            min,
            max,
        } => {
            let mut schema = json!({
                "type": "object",
                "propertyNames": { "pattern": key_pattern },
                "additionalProperties": shape_schema(value, definitions),
                "minProperties": min,
            });
            if let Some(max) = max {
                schema
                    .as_object_mut()
                    .expect("an object")
                    .insert("maxProperties".into(), (*max).into());
            }
            schema
        }
        Shape::List(item) => json!({
            "type": "array",
            "uniqueItems": true,
            "items": shape_schema(item, definitions),
        }),
        Shape::AnyOf(shapes) => json!({
            "anyOf": shapes.iter().map(|shape| shape_schema(shape, definitions)).collect::<Vec<_>>()
        }),
        Shape::TagValue => json!({
            "anyOf": [
                { "type": "string", "maxLength": 256 },
                { "type": "number" },
                { "type": "boolean" }
            ]
        }),
    }
}

/// The JSON Schema as committed: pretty-printed with a final newline.
pub fn json_schema_text() -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&json_schema()).expect("plain data")
    )
}
