//! Rules that need several parts in view: stacks against each other, the replica against
//! the primary, specs against each other.

use std::collections::HashMap;

use crate::spec::{Diagnostic, EnvSpec, Pos};

use super::Walker;
use crate::spec::names::Problem;
use crate::spec::{AccessSpec, Encryption, Layout, ReplicaSpec, StackSpec};

/// Problems that only show with all spec files in view: two specs naming one bucket (each
/// would rewrite the other's grants: one spec is one bucket, its states are stacks), two
/// specs writing one backend file, a spec logging into another's state bucket.
pub fn check_across_environments(specs: &[EnvSpec]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut buckets: HashMap<&str, &EnvSpec> = HashMap::new();
    let mut backend_files: HashMap<String, &EnvSpec> = HashMap::new();
    for spec in specs {
        // A replica is a bucket the spec manages too.
        let replica = spec
            .bucket
            .replica
            .as_ref()
            .map(|replica| (replica.name.as_str(), replica.positions.name));
        for (bucket, pos) in
            std::iter::once((spec.bucket.name.as_str(), spec.positions.bucket_name)).chain(replica)
        {
            if let Some(first) = buckets.get(bucket) {
                diagnostics.push(in_spec(
                    spec,
                    pos,
                    Problem::new(format!(
                        "{} and {} both manage bucket `{bucket}`; each would rewrite the other's grants",
                        first.source, spec.source
                    ))
                    .hint(format!(
                        "one spec file is one bucket: make their states stacks of one spec (`stacks:` in {}, one stack per state) and remove {}",
                        first.source, spec.source
                    )),
                ));
            } else {
                buckets.insert(bucket, spec);
            }
        }
        let failover_files = spec.bucket.replica.as_ref().map(|replica| {
            spec.stacks
                .iter()
                .map(|stack| (spec.failover_file(stack), replica.positions.backend_file))
                .collect::<Vec<_>>()
        });
        let files = spec
            .stacks
            .iter()
            .map(|stack| (stack.file.clone(), stack.positions.file))
            .chain(failover_files.into_iter().flatten());
        for (file, pos) in files {
            match backend_files.get(&file) {
                Some(first) if !std::ptr::eq(*first, spec) => {
                    diagnostics.push(in_spec(
                        spec,
                        pos,
                        Problem::new(format!(
                            "{} and {} both write `{file}`",
                            first.source, spec.source
                        ))
                        .hint("give each stack its own backend `file`"),
                    ));
                }
                Some(_) => {}
                None => {
                    backend_files.insert(file, spec);
                }
            }
        }
    }
    for spec in specs {
        let Some(logging) = &spec.bucket.logging else {
            continue;
        };
        if let Some(owner) = specs
            .iter()
            .find(|other| other.bucket.name == logging.bucket)
        {
            diagnostics.push(in_spec(
                spec,
                spec.positions.logging_bucket,
                Problem::new(format!(
                    "`{}` logs into `{}`, the state bucket of environment `{}`",
                    spec.name, logging.bucket, owner.name
                ))
                .hint("state buckets hold state only (their policy is statebucket's to manage); send access logs to a separate log bucket"),
            ));
        }
    }
    diagnostics
}

/// A problem at `pos` of `spec`'s file.
fn in_spec(spec: &EnvSpec, pos: Pos, problem: Problem) -> Diagnostic {
    Diagnostic::new(&spec.source, pos, problem)
}

impl Walker<'_> {
    /// Problems between the stacks of one spec: two stacks on one state object or one
    /// backend file, a key inside another stack's workspace keys, a stack without writers,
    /// two stacks whose names give the same statement id.
    pub(super) fn check_stacks(
        &mut self,
        access: &AccessSpec,
        stacks: &[StackSpec],
        layout: Layout,
    ) {
        for (index, stack) in stacks.iter().enumerate() {
            if stack.writers.is_none() && access.writers.is_empty() {
                self.report(
                    stack.positions.name,
                    Problem::new(format!("stack `{}` has no writers", stack.name)).hint(format!(
                        "list the users and roles Terraform runs as in `access` (for every stack) or in `stacks.{}.access`",
                        stack.name
                    )),
                );
            }
            for earlier in &stacks[..index] {
                let clashes = [
                    (
                        earlier.key == stack.key,
                        stack.positions.key,
                        format!("both keep their state at `{}`", stack.key),
                        "give each stack its own `key`",
                    ),
                    (
                        earlier.file == stack.file,
                        stack.positions.file,
                        format!("both write `{}`", stack.file),
                        "give each stack its own `file`",
                    ),
                    (
                        layout == Layout::Stacks
                            && earlier.name.sid_token() == stack.name.sid_token(),
                        stack.positions.name,
                        format!(
                            "would share the policy statement name `{}`",
                            stack.name.sid_token()
                        ),
                        "statement ids keep letters and digits only; rename one of the stacks",
                    ),
                ];
                for (clash, position, what, hint) in clashes {
                    if clash {
                        self.report(
                            position,
                            Problem::new(format!(
                                "stacks `{}` and `{}` {what}",
                                earlier.name, stack.name
                            ))
                            .hint(hint),
                        );
                    }
                }
            }
            for other in stacks {
                if let Some(workspace) = inside_workspaces(stack, other) {
                    self.report(
                        stack.positions.key,
                        Problem::new(format!(
                            "the key of stack `{}` lies where Terraform keeps stack `{}`'s state for workspace `{workspace}`",
                            stack.name, other.name
                        ))
                        .hint(format!(
                            "keys of the form `{}/WORKSPACE/{}` belong to stack `{}`'s workspaces; choose another key",
                            other.workspace_prefix(),
                            other.key,
                            other.name
                        )),
                    );
                }
            }
        }
    }

    /// A replica's failover files: one per stack, none of them a stack's backend file; and
    /// no replica of an S3-compatible store (replication is AWS S3's).
    pub(super) fn check_replica(
        &mut self,
        replica: &ReplicaSpec,
        primary_encryption: &Encryption,
        stacks: &[StackSpec],
        compat: bool,
    ) -> Option<()> {
        if matches!(primary_encryption, Encryption::Kms(_))
            && matches!(replica.encryption, Encryption::Aes256)
        {
            self.report(
                replica.positions.name,
                Problem::new("the bucket is KMS-encrypted, but its replica is not: S3 replicates SSE-KMS objects only into a KMS key in the replica's region")
                    .hint("give the replica a key of its own: `encryption: { kms_key: alias/NAME-replica, create_key: true }`"),
            );
            return None;
        }
        if compat {
            self.report(
                replica.positions.name,
                Problem::new("`bucket.replica` needs S3 replication, which `compat` says this store is not AWS S3 to offer")
                    .hint("replicate with the store's own tools (e.g. MinIO site replication), or remove `bucket.replica`"),
            );
            return None;
        }
        if replica.backend_file.is_some() && stacks.len() > 1 {
            self.report(
                replica.positions.backend_file,
                Problem::new(format!(
                    "`bucket.replica.backend_file` names one file, but the spec has {} stacks",
                    stacks.len()
                ))
                .hint(format!(
                    "remove it: each stack's failover file is written beside its backend file (`{}` for `{}`)",
                    stacks[0].failover_file(),
                    stacks[0].file
                )),
            );
            return None;
        }
        for stack in stacks {
            let file = replica.failover_file(stack);
            if let Some(other) = stacks.iter().find(|other| other.file == file) {
                self.report(
                    replica.positions.backend_file,
                    Problem::new(format!(
                        "the failover file of stack `{}` would be `{file}`, the backend file of stack `{}`",
                        stack.name, other.name
                    ))
                    .hint("choose another `bucket.replica.backend_file`, or rename the stack's `file`"),
                );
                return None;
            }
        }
        Some(())
    }
}

/// The workspace `stack`'s key would be read as by `other`'s backend, when it lies at
/// `<other's workspace_key_prefix>/<workspace>/<other's key>`.
pub(super) fn inside_workspaces<'a>(stack: &'a StackSpec, other: &StackSpec) -> Option<&'a str> {
    if std::ptr::eq(stack, other) {
        return None;
    }
    let prefix = other.workspace_prefix();
    let rest = match prefix.as_str() {
        "" => stack.key.as_str(),
        prefix => stack.key.as_str().strip_prefix(prefix)?.strip_prefix('/')?,
    };
    let workspace = rest.strip_suffix(other.key.as_str())?.strip_suffix('/')?;
    (!workspace.is_empty()).then_some(workspace)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn logging_into_another_environments_state_bucket_is_refused() {
        let dev = parse_spec(
            "environments/dev.yaml",
            "dev",
            &DEV.replace(
                "  tags: { team",
                "  logging: { bucket: prod-state }\n  tags: { team",
            ),
        )
        .unwrap();
        let prod = parse_spec(
            "environments/prod.yaml",
            "prod",
            &DEV.replace("my-terraform-state-dev", "prod-state").replace(
                "environments/dev/backend.hcl",
                "environments/prod/backend.hcl",
            ),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev, prod]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert!(
            diagnostics[0]
                .message
                .contains("the state bucket of environment `prod`")
        );
        assert_eq!(diagnostics[0].line, 7);
    }

    #[test]
    fn two_specs_naming_one_bucket_is_an_error_naming_both_files() {
        let dev = parse_spec("environments/dev.yaml", "dev", DEV).unwrap();
        let copy = parse_spec(
            "environments/copy.yaml",
            "copy",
            &DEV.replace(
                "environments/dev/backend.hcl",
                "environments/copy/backend.hcl",
            )
            .replace("eks-cluster/", "other/"),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev.clone(), copy]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert_eq!(diagnostics[0].file, "environments/copy.yaml");
        assert_eq!((diagnostics[0].line, diagnostics[0].column), (5, 9));
        assert_eq!(
            diagnostics[0].message,
            "environments/dev.yaml and environments/copy.yaml both manage bucket `my-terraform-state-dev`; each would rewrite the other's grants"
        );
        assert!(
            diagnostics[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("make their states stacks of one spec")
        );

        let same_file = parse_spec(
            "environments/b.yaml",
            "b",
            &DEV.replace("my-terraform-state-dev", "other-bucket"),
        )
        .unwrap();
        let diagnostics = check_across_environments(&[dev, same_file]);
        assert_eq!(diagnostics.len(), 1);
        assert!(
            diagnostics[0]
                .message
                .contains("both write `environments/dev/backend.hcl`")
        );
    }
}
