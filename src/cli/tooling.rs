//! `statebucket completions`, `man` and `schema`: the shell completion script and the
//! manual page, generated from the same clap definition that parses the command line (so
//! they never list an option the binary lacks), and the spec's JSON Schema, generated from
//! the schema the validator walks.

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;
use super::{Context, Outcome, json};
use crate::error::Error;
use crate::spec::schema;

pub fn completions(context: &Context<'_>, shell: Shell) -> Result<Outcome, Error> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "statebucket", &mut script);
    let script = String::from_utf8(script).expect("clap_complete writes UTF-8");
    print(context, "completions", Some(shell.to_string()), script)
}

/// The manual page of statebucket and, after it, one section per command.
pub fn man(context: &Context<'_>) -> Result<Outcome, Error> {
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .expect("rendering into memory cannot fail");
    for subcommand in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let name = format!("statebucket-{}", subcommand.get_name());
        clap_mangen::Man::new(subcommand.clone().name(name.clone()))
            .title(name.to_uppercase())
            .render(&mut page)
            .expect("rendering into memory cannot fail");
    }
    let page = String::from_utf8(page).expect("clap_mangen writes UTF-8");
    print(context, "man", None, page)
}

/// The spec's JSON Schema, as committed in `schema/statebucket.schema.json`.
pub fn schema(context: &Context<'_>) -> Result<Outcome, Error> {
    print(context, "schema", None, schema::json_schema_text())
}

/// The artifact as it is, or with `--output json` inside the command's document.
fn print(
    context: &Context<'_>,
    command: &str,
    shell: Option<String>,
    content: String,
) -> Result<Outcome, Error> {
    if context.json() {
        context
            .printer
            .data(&json::document(command, json::Generated { shell, content }));
    } else {
        context.printer.data(&content);
    }
    Ok(Outcome::Success)
}
