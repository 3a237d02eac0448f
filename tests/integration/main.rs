//! One test binary (linking the AWS SDK is slow; one link instead of several).
//! Tests that need moto or Terraform start them themselves through `support`.

mod access;
mod adopt;
mod audit;
mod authentication;
mod bench_smoke;
mod compat;
mod contract;
mod hygiene;
mod incident;
mod lint;
mod malformed;
mod offline;
mod opentofu;
mod reconcile;
mod reliability;
mod replica;
mod seaweedfs;
mod snapshots;
mod stacks;
mod state;
mod support;
mod terraform;
mod tooling;
