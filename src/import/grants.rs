//! Who the live bucket policy grants state access to, and on which keys.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::policy::strings;
use crate::scaffold::Principals;
use crate::spec::{IamArn, PrincipalKind, PrincipalRef, StateKey};

use super::*;

/// One principal's state-object grants in the bucket policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grant {
    pub(super) principal: IamArn,
    /// Object key patterns (`*` and `?` wildcards) it may write, and may read.
    pub(super) writes: BTreeSet<String>,
    pub(super) reads: BTreeSet<String>,
}

/// The users and roles the policy's Allow statements grant object access in this bucket.
pub(super) fn policy_grants(policy: &str, bucket: &str, notes: &mut Vec<String>) -> Vec<Grant> {
    let Ok(document) = serde_json::from_str::<Value>(policy) else {
        notes.push("the bucket policy is not valid JSON: no principals taken over".to_owned());
        return Vec::new();
    };
    let statements = match &document["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => Vec::new(),
    };
    let object_prefix = format!(":s3:::{bucket}/");
    let mut grants: BTreeMap<IamArn, Grant> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for statement in &statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let actions: Vec<String> = strings(&statement["Action"])
            .map(|action| action.to_ascii_lowercase())
            .collect();
        let writes = actions
            .iter()
            .any(|action| matches!(action.as_str(), "*" | "s3:*" | "s3:put*" | "s3:putobject"));
        let reads = actions
            .iter()
            .any(|action| matches!(action.as_str(), "*" | "s3:*" | "s3:get*" | "s3:getobject"));
        let patterns: Vec<String> = strings(&statement["Resource"])
            .filter_map(|resource| {
                let at = resource.find(&object_prefix)?;
                resource
                    .starts_with("arn:")
                    .then(|| resource[at + object_prefix.len()..].to_owned())
            })
            .collect();
        if patterns.is_empty() || !(writes || reads) {
            continue;
        }
        for principal in strings(&statement["Principal"]["AWS"]) {
            let Ok(arn) = IamArn::parse(principal) else {
                skipped.insert(principal.to_owned());
                continue;
            };
            let grant = grants.entry(arn.clone()).or_insert_with(|| Grant {
                principal: arn,
                writes: BTreeSet::new(),
                reads: BTreeSet::new(),
            });
            for pattern in &patterns {
                if writes {
                    grant.writes.insert(pattern.clone());
                }
                if reads {
                    grant.reads.insert(pattern.clone());
                }
            }
        }
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "not taken over (not an IAM user or role): {}; the statements naming them are kept as they are",
            skipped.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    grants.into_values().collect()
}

/// `*` and `?` wildcards, as IAM matches resources.
pub(super) fn matches(pattern: &str, key: &str) -> bool {
    fn from(pattern: &[u8], key: &[u8]) -> bool {
        match (pattern.first(), key.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                from(&pattern[1..], key) || (!key.is_empty() && from(pattern, &key[1..]))
            }
            (Some(b'?'), Some(_)) => from(&pattern[1..], &key[1..]),
            (Some(p), Some(k)) if p == k => from(&pattern[1..], &key[1..]),
            _ => false,
        }
    }
    from(pattern.as_bytes(), key.as_bytes())
}

/// A key a state lives under: not a lock file, not a workspace's copy under `env:/`.
pub(super) fn is_state_key(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
        && !pattern.ends_with(".tflock")
        && !pattern.ends_with("-md5")
        && !pattern.starts_with("env:/")
        && StateKey::parse(pattern).is_ok()
}

/// The writers and readers of `key` (all grants when `None`).
pub(super) fn principals_of(
    request: &ImportRequest,
    grants: &[Grant],
    key: Option<&str>,
) -> Principals {
    let covers = |patterns: &BTreeSet<String>| match key {
        Some(key) => patterns.iter().any(|pattern| matches(pattern, key)),
        None => !patterns.is_empty(),
    };
    let reference = |arn: &IamArn| {
        // A name in the bucket's own account without a path reads best; anything else
        // stays an ARN (import looks principals up by ARN, path included).
        let text = if arn.account == request.account && !arn.path_and_name.contains('/') {
            arn.name().to_owned()
        } else {
            arn.to_string()
        };
        PrincipalRef::parse(&text, arn.kind).ok()
    };
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for grant in grants {
        if covers(&grant.writes) {
            writers.extend(reference(&grant.principal));
        } else if covers(&grant.reads) {
            readers.extend(reference(&grant.principal));
        }
    }
    // Users first, then roles, as the spec lists them.
    writers.sort_by_key(|principal| principal.kind() == PrincipalKind::Role);
    readers.sort_by_key(|principal| principal.kind() == PrincipalKind::Role);
    Principals { writers, readers }
}

pub(super) fn placeholder_writers(notes: &mut Vec<String>) -> Principals {
    notes.push("the bucket policy grants no IAM user or role write access to state: `access` lists the placeholder user `terraform`; name the users and roles Terraform runs as".to_owned());
    Principals {
        writers: vec![PrincipalRef::parse("terraform", PrincipalKind::User).expect("a valid name")],
        readers: Vec::new(),
    }
}
