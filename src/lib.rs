//! statebucket: bootstraps and guards the S3 bucket behind Terraform/OpenTofu remote state.
//!
//! Functional core, imperative shell: `spec`, `render`, `policy` and `plan` are pure (data in,
//! data out); `aws` observes and applies; `cli` wires them to the terminal.

// Output goes through `cli::output::Printer` only.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod access;
pub mod audit;
pub mod aws;
pub mod capability;
pub mod cli;
pub mod desired;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod guidance;
pub mod import;
pub mod observed;
pub mod plan;
pub mod plan_text;
pub mod policy;
pub mod progress;
pub mod project;
pub mod redact;
pub mod render;
pub mod replication;
pub mod scaffold;
pub mod spec;
pub mod tfstate;

#[cfg(test)]
mod testing;
