//! What they could see: the places in a Terraform state that hold secrets, by path only.
//! A value is never copied out of the state: the report carries addresses and attribute
//! paths, so that printing it cannot leak what it describes.

use serde::Serialize;
use serde_json::Value;

/// What a reader of one state sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exposure {
    /// No state at the key yet.
    NoState,
    /// OpenTofu state encryption: ciphertext to a reader without the key.
    Encrypted,
    /// A Terraform state: the paths of what it holds that is secret.
    Plain {
        /// Paths Terraform marks sensitive (`sensitive_attributes`, sensitive outputs).
        sensitive: Vec<String>,
        /// Other paths whose name or value looks like a secret (a private key, an access
        /// key, a password by attribute name).
        look_secret: Vec<String>,
    },
    /// Not a state statebucket can read.
    Unreadable { reason: String },
}

/// Attribute names whose non-empty values are secrets whatever Terraform marks.
const SECRET_NAMES: &[&str] = &[
    "password",
    "secret",
    "private_key",
    "secret_key",
    "access_key",
    "token",
    "client_secret",
    "master_password",
    "private_key_pem",
    "secret_string",
];

/// The exposure of one state object's bytes.
pub fn of_state(bytes: &[u8]) -> Exposure {
    let state: Value = match serde_json::from_slice(bytes) {
        Ok(state) => state,
        Err(error) => {
            return Exposure::Unreadable {
                reason: format!("not JSON: {error}"),
            };
        }
    };
    // OpenTofu's encrypted state: {"serial", "lineage", "meta", "encrypted_data", …}.
    if state.get("encrypted_data").is_some() {
        return Exposure::Encrypted;
    }
    let mut sensitive = Vec::new();
    let mut look_secret = Vec::new();
    if let Some(outputs) = state.get("outputs").and_then(Value::as_object) {
        for (name, output) in outputs {
            let path = format!("output.{name}");
            if output.get("sensitive").and_then(Value::as_bool) == Some(true) {
                sensitive.push(path);
            } else if let Some(value) = output.get("value") {
                secrets_in(value, &path, &mut look_secret);
            }
        }
    }
    for resource in state
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let address = address(resource);
        for instance in resource
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let instance_address = match instance.get("index_key") {
                Some(Value::String(key)) => format!("{address}[\"{key}\"]"),
                Some(Value::Number(index)) => format!("{address}[{index}]"),
                _ => address.clone(),
            };
            let marked: Vec<String> = instance
                .get("sensitive_attributes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(path_of)
                .collect();
            for path in &marked {
                sensitive.push(format!("{instance_address}.{path}"));
            }
            if let Some(attributes) = instance.get("attributes") {
                let mut found = Vec::new();
                secrets_in(attributes, &instance_address, &mut found);
                look_secret.extend(found.into_iter().filter(|path| {
                    !marked
                        .iter()
                        .any(|marked| path == &format!("{instance_address}.{marked}"))
                }));
            }
        }
    }
    Exposure::Plain {
        sensitive,
        look_secret,
    }
}

/// `module.a.aws_db_instance.main`, `data.aws_secret.x`.
fn address(resource: &Value) -> String {
    let text = |key: &str| {
        resource
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let mut address = String::new();
    if !text("module").is_empty() {
        address.push_str(text("module"));
        address.push('.');
    }
    if text("mode") == "data" {
        address.push_str("data.");
    }
    address.push_str(&format!("{}.{}", text("type"), text("name")));
    address
}

/// One `sensitive_attributes` entry as a path: a list of steps (`get_attr` by name,
/// `index` by key) in state format 4, or a path string in some versions.
fn path_of(entry: &Value) -> Option<String> {
    match entry {
        Value::String(path) => Some(path.clone()),
        Value::Array(steps) => {
            let mut path = String::new();
            for step in steps {
                let value = step.get("value")?;
                match step.get("type").and_then(Value::as_str)? {
                    "get_attr" => {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(value.as_str()?);
                    }
                    "index" => match value.get("value") {
                        Some(Value::String(key)) => path.push_str(&format!("[\"{key}\"]")),
                        Some(other) => path.push_str(&format!("[{other}]")),
                        None => return None,
                    },
                    _ => return None,
                }
            }
            (!path.is_empty()).then_some(path)
        }
        _ => None,
    }
}

/// Paths under `path` whose attribute name says secret, or whose value is a private key or
/// an AWS access key id; values are looked at, never kept.
fn secrets_in(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let field_path = format!("{path}.{name}");
                // A secret's name as a word of the attribute's: `ses_smtp_password_v4`.
                let words = format!("_{name}_");
                let named_secret = SECRET_NAMES
                    .iter()
                    .any(|secret| words.contains(&format!("_{secret}_")));
                if named_secret && is_filled(field) {
                    found.push(field_path);
                } else {
                    secrets_in(field, &field_path, found);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                secrets_in(item, &format!("{path}[{index}]"), found);
            }
        }
        Value::String(text) if looks_secret(text) => found.push(path.to_owned()),
        _ => {}
    }
}

fn is_filled(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    }
}

/// A PEM private key, or an AWS access key id (AKIA/ASIA and 16 more).
fn looks_secret(text: &str) -> bool {
    if text.contains("PRIVATE KEY-----") {
        return true;
    }
    let bytes = text.as_bytes();
    bytes.len() == 20
        && (text.starts_with("AKIA") || text.starts_with("ASIA"))
        && bytes[4..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sensitive_and_secret_looking_paths_are_found_and_no_value_is_carried() {
        let password = "correct-horse-battery-staple";
        let state = json!({
            "version": 4,
            "terraform_version": "1.15.0",
            "outputs": {
                "db_password": {"value": password, "type": "string", "sensitive": true},
                "endpoint": {"value": "db.internal", "type": "string"}
            },
            "resources": [{
                "mode": "managed", "type": "aws_db_instance", "name": "main",
                "instances": [{
                    "attributes": {"password": password, "username": "admin", "tags": {}},
                    "sensitive_attributes": [[{"type": "get_attr", "value": "password"}]]
                }]
            }, {
                "module": "module.ci", "mode": "managed", "type": "aws_iam_access_key", "name": "deploy",
                "instances": [{
                    "index_key": "a",
                    "attributes": {"id": "AKIAIOSFODNN7EXAMPLE", "ses_smtp_password_v4": "x", "status": "Active"},
                    "sensitive_attributes": []
                }]
            }]
        });
        let exposure = of_state(state.to_string().as_bytes());
        assert_eq!(
            exposure,
            Exposure::Plain {
                sensitive: vec![
                    "output.db_password".into(),
                    "aws_db_instance.main.password".into()
                ],
                look_secret: vec![
                    "module.ci.aws_iam_access_key.deploy[\"a\"].id".into(),
                    "module.ci.aws_iam_access_key.deploy[\"a\"].ses_smtp_password_v4".into(),
                ],
            }
        );
        let printed = serde_json::to_string(&exposure).unwrap();
        assert!(!printed.contains(password) && !printed.contains("AKIAIOSFODNN7EXAMPLE"));
    }

    #[test]
    fn opentofu_encrypted_state_is_ciphertext_and_garbage_is_said_to_be() {
        let encrypted = json!({"serial": 1, "lineage": "x", "meta": {}, "encrypted_data": "AAAA", "encryption_version": "v0"});
        assert_eq!(
            of_state(encrypted.to_string().as_bytes()),
            Exposure::Encrypted
        );
        assert!(matches!(of_state(b"not json"), Exposure::Unreadable { .. }));
    }
}
