use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(statebucket::cli::main())
}
