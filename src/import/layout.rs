//! The spec's layout from the state keys found: one backend, or stacks named after their keys.

use std::collections::BTreeSet;

use crate::scaffold::{NewStack, Principals, States};
use crate::spec::{StackName, StateKey};

use super::*;

/// `backend:` with the one key found (or a placeholder), or `stacks:` when the policy grants
/// several keys (or the bucket holds several states and the policy names none).
pub(super) fn layout(
    request: &ImportRequest,
    grants: &[Grant],
    listed: &[String],
    notes: &mut Vec<String>,
) -> (Principals, States) {
    let granted: BTreeSet<&str> = grants
        .iter()
        .flat_map(|grant| grant.writes.iter().chain(&grant.reads))
        .map(String::as_str)
        .filter(|pattern| is_state_key(pattern))
        .collect();
    let keys: Vec<&str> = if granted.is_empty() {
        listed
            .iter()
            .map(String::as_str)
            .filter(|key| is_state_key(key))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        granted.into_iter().collect()
    };
    match keys.as_slice() {
        [] => {
            let mut access = principals_of(request, grants, None);
            if access.writers.is_empty() {
                access = placeholder_writers(notes);
            }
            notes.push("no state key found (neither named in the bucket policy nor a *.tfstate object): `backend.key` is the placeholder `terraform.tfstate`; set the key your backend uses".to_owned());
            let states = States::Backend {
                key: StateKey::parse("terraform.tfstate").expect("a valid key"),
                key_note: Some("PLACEHOLDER: set the key your backend uses".to_owned()),
            };
            (access, states)
        }
        [key] => {
            let mut access = principals_of(request, grants, Some(key));
            if access.writers.is_empty() {
                access = placeholder_writers(notes);
            }
            let states = States::Backend {
                key: StateKey::parse(key).expect("checked by is_state_key"),
                key_note: None,
            };
            (access, states)
        }
        several => {
            let mut stacks = Vec::new();
            let mut names = BTreeSet::new();
            for key in several {
                let mut access = principals_of(request, grants, Some(key));
                if access.writers.is_empty() {
                    access.writers = principals_of(request, grants, None).writers;
                }
                let name = unique_stack_name(key, &mut names);
                stacks.push((name, key, access));
            }
            let all_writers_empty = stacks
                .iter()
                .all(|(_, _, access)| access.writers.is_empty());
            let shared = stacks
                .first()
                .map(|(_, _, first)| first.clone())
                .filter(|first| stacks.iter().all(|(_, _, access)| access == first));
            let (spec_access, per_stack) = match shared {
                Some(shared) if !all_writers_empty => (shared, false),
                Some(_) => (placeholder_writers(notes), false),
                None => (Principals::default(), true),
            };
            notes.push(format!(
                "{} states found: one stack each{}",
                several.len(),
                if per_stack {
                    ", with the principals the policy grants on its key"
                } else {
                    ""
                }
            ));
            let stacks = stacks
                .into_iter()
                .map(|(name, key, access)| NewStack {
                    name,
                    key: StateKey::parse(key).expect("checked by is_state_key"),
                    access: (per_stack && !access.is_empty()).then_some(access),
                })
                .collect();
            (spec_access, States::Stacks(stacks))
        }
    }
}

/// `network/terraform.tfstate` → `network`, `app.tfstate` → `app`, `a/b/terraform.tfstate`
/// → `a-b`; made unique with a number.
pub(super) fn unique_stack_name(key: &str, taken: &mut BTreeSet<String>) -> StackName {
    let stem = key.strip_suffix(".tfstate").unwrap_or(key);
    let stem = stem.strip_suffix("/terraform").unwrap_or(stem);
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let base = if cleaned.is_empty() { "state" } else { cleaned };
    let base: String = base.chars().take(60).collect();
    let mut candidate = base.clone();
    let mut number = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}-{number}");
        number += 1;
    }
    taken.insert(candidate.clone());
    StackName::parse(&candidate).expect("cleaned to a valid stack name")
}
