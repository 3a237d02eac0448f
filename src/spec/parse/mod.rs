//! Walks a YAML tree against the spec schema. Every problem is collected with its position;
//! a spec is returned only when there are none.

use super::names::{EnvName, Problem};
use super::schema::Object;
use super::yaml::{self, Node, Pos};
use super::{Diagnostic, EnvSpec};

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

mod access;
mod authentication;
mod bucket;
mod credentials;
#[cfg(test)]
mod fixtures;
mod rules;
mod stacks;
mod top;
mod walker;

pub use rules::check_across_environments;

use stacks::{Inherited, Layers, relative_path};
