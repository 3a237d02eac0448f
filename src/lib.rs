//! statebucket: bootstraps and guards the S3 bucket behind Terraform/OpenTofu remote state.
//!
//! Functional core, imperative shell: `spec`, `render`, `policy` and `plan` are pure (data in,
//! data out); `aws` observes and applies; `cli` wires them to the terminal.

pub mod spec;
pub mod policy;
pub mod render;
pub mod observed;
pub mod plan;
pub mod aws;
pub mod project;
pub mod cli;
pub mod engine;
pub mod progress;
pub mod report;
