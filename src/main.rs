use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ExitCode::from(statebucket::cli::run(statebucket::cli::Cli::parse()))
}
