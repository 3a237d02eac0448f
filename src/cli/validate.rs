//! `statebucket validate`: every spec file and policy template checked offline.

use super::{Context, Outcome, json};
use crate::error::Error;
use crate::project;

pub fn run(context: &Context<'_>, specs: &[String]) -> Result<Outcome, Error> {
    let paths = project::spec_paths(specs)?;
    match project::load(&paths) {
        Ok(environments) => {
            if context.json() {
                context.printer.data(&json::document(
                    "validate",
                    json::Validated {
                        valid: true,
                        specs: paths,
                        diagnostics: Vec::new(),
                    },
                ));
            } else {
                let sources: Vec<&str> = environments
                    .iter()
                    .map(|environment| environment.spec.source.as_str())
                    .collect();
                context.printer.data(&format!(
                    "{} valid: {}\n",
                    super::plural(environments.len() as u64, "spec"),
                    sources.join(", ")
                ));
            }
            Ok(Outcome::Success)
        }
        // The document is the answer to `validate --output json`, problems included.
        Err(Error::Spec(diagnostics)) if context.json() => {
            context.printer.data(&json::document(
                "validate",
                json::Validated {
                    valid: false,
                    specs: paths,
                    diagnostics,
                },
            ));
            Ok(Outcome::Failed)
        }
        Err(error) => Err(error),
    }
}
