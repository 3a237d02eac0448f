//! Every way a command can fail, in one type: what failed, why, what to do next (`hint`),
//! and the exit code (`exit_code`), decided here and nowhere else.

use std::fmt;

use serde::Serialize;

use crate::aws::AwsError;
use crate::plan::{Facet, PlanError};
use crate::spec::Diagnostic;

/// Exit codes, as `terraform plan -detailed-exitcode` uses them, plus the BSD convention for
/// usage errors (sysexits.h EX_USAGE) so that a CI script reading 2 as "changes present" is
/// never fooled by a mistyped command line, and the shell's for an interrupt.
pub mod exit {
    /// Success; for `check` and `plan --detailed-exitcode`: in sync.
    pub const OK: u8 = 0;
    /// An error: bad input, an AWS error, a refused confirmation, no convergence.
    pub const ERROR: u8 = 1;
    /// Changes present: drift for `check`, changes to apply for `plan --detailed-exitcode`.
    pub const CHANGES: u8 = 2;
    /// The command line itself is wrong (EX_USAGE).
    pub const USAGE: u8 = 64;
    /// Interrupted (Ctrl-C): 128 + SIGINT.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Problems in spec files or templates: every one of them, located.
    #[error("{}", diagnostics_summary(.0))]
    Spec(Vec<Diagnostic>),
    /// Wrong or missing arguments; nothing was read or sent.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The project directory: no `environments/`, no spec files in it.
    #[error("{message}")]
    Project { message: String, hint: String },
    /// A file statebucket reads or writes.
    #[error("cannot {doing} {path}: {cause}")]
    File {
        doing: &'static str,
        path: String,
        cause: String,
        hint: Option<String>,
    },
    /// With `account_id`, credentials of another account.
    #[error(
        "wrong AWS account: {arn} is in account {actual}, but {source_file} requires account {expected}"
    )]
    WrongAccount {
        arn: String,
        actual: String,
        expected: String,
        source_file: String,
        identity_source: String,
    },
    /// A bucket or key policy would deny an identity what it must keep.
    #[error(
        "refusing to write a {} for {env} that would lock out an identity it must keep:\n{}",
        .policies.join(" and a "),
        .details.iter().map(|detail| format!("  - {detail}")).collect::<Vec<_>>().join("\n")
    )]
    Lockout {
        env: String,
        policies: Vec<&'static str>,
        details: Vec<String>,
    },
    /// After apply, reading again until `--settle-timeout` still found differences.
    #[error(
        "applied, but {}: {} (read back for {} s)",
        if *.not_visible_yet { "the store still shows the earlier value of" } else { "the store does not keep what it accepted for" },
        .facets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        .waited.as_secs()
    )]
    NotConverged {
        facets: Vec<Facet>,
        waited: std::time::Duration,
        /// Every difference left is one the plan before apply had: the writes are not
        /// visible yet. Otherwise the store keeps something other than what was written.
        not_visible_yet: bool,
    },
    /// `apply` (or `state restore`) without `--auto-approve` and without a terminal to ask on.
    #[error("refusing to {action} without confirmation: stdin is not a terminal")]
    NoTerminal { action: &'static str },
    /// The answer to the confirmation was not `yes`.
    #[error("{action} cancelled: nothing was changed")]
    Cancelled { action: &'static str },
    /// `state restore` refused before writing anything.
    #[error(transparent)]
    Restore(Box<crate::tfstate::RestoreRefusal>),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl From<crate::tfstate::RestoreRefusal> for Error {
    fn from(refusal: crate::tfstate::RestoreRefusal) -> Error {
        Error::Restore(Box::new(refusal))
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage { .. } => exit::USAGE,
            Error::Interrupted => exit::INTERRUPTED,
            _ => exit::ERROR,
        }
    }

    /// What to do next, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec(_) | Error::Cancelled { .. } | Error::Interrupted => None,
            Error::Restore(refusal) => Some(refusal.hint()),
            Error::Usage { hint, .. } | Error::File { hint, .. } => hint.clone(),
            Error::Project { hint, .. } => Some(hint.clone()),
            Error::Aws(error) => error.hint.clone(),
            Error::Plan(error) => Some(error.hint()),
            Error::WrongAccount {
                expected,
                identity_source,
                ..
            } => Some(format!(
                "these credentials came from {identity_source}; use a profile for account {expected} (--profile, `bootstrap_profile`, or `profile` in the spec), or check AWS_PROFILE and AWS_ACCESS_KEY_ID in your environment"
            )),
            Error::Lockout { .. } => Some(
                "list the identity in `access.users` / `access.roles` (or run statebucket as the `break_glass_role`), or correct the policy template; pass --allow-lockout only if this is intended".into(),
            ),
            Error::NotConverged {
                not_visible_yet: true,
                ..
            } => Some(
                "bucket settings are eventually consistent (S3 User Guide, \"Amazon S3 data consistency model\"): run `statebucket plan` in a while, or wait longer with --settle-timeout SECONDS".into(),
            ),
            Error::NotConverged { .. } => Some(
                "another process may be changing the bucket at the same time, or the endpoint does not store what it accepts; rerun `statebucket plan` to see the difference".into(),
            ),
            Error::NoTerminal { .. } => Some(
                "review the plan above and rerun with --auto-approve (e.g. in CI)".into(),
            ),
        }
    }

    /// The error as the JSON documents carry it.
    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            message: self.to_string(),
            hint: self.hint(),
            diagnostics: match self {
                Error::Spec(diagnostics) => diagnostics.clone(),
                _ => Vec::new(),
            },
        }
    }

    pub fn file(doing: &'static str, path: &str, error: &std::io::Error) -> Error {
        let hint = match error.kind() {
            std::io::ErrorKind::PermissionDenied => Some("check the file's permissions".into()),
            _ => None,
        };
        Error::File {
            doing,
            path: path.to_owned(),
            cause: error.to_string(),
            hint,
        }
    }
}

/// An error in a JSON document: `message`, `hint` when there is one, and the located
/// problems of a spec error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn diagnostics_summary(diagnostics: &[Diagnostic]) -> String {
    let files: std::collections::BTreeSet<&str> =
        diagnostics.iter().map(|d| d.file.as_str()).collect();
    format!(
        "{} problem{} in {} file{}; nothing was sent to AWS",
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" },
        files.len(),
        if files.len() == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_never_exit_with_the_changes_code() {
        let usage = Error::Usage {
            message: "the following required arguments were not provided: <ENV>".into(),
            hint: None,
        };
        assert_eq!(usage.exit_code(), exit::USAGE);
        assert_ne!(usage.exit_code(), exit::CHANGES);
        assert_eq!(Error::Interrupted.exit_code(), 130);
        assert_eq!(
            Error::Cancelled { action: "apply" }.exit_code(),
            exit::ERROR
        );
        assert_eq!(
            Error::NotConverged {
                facets: vec![Facet::Policy],
                waited: std::time::Duration::from_secs(30),
                not_visible_yet: true,
            }
            .exit_code(),
            exit::ERROR
        );
    }

    #[test]
    fn every_error_says_what_failed_and_most_say_what_to_do() {
        let lockout = Error::Lockout {
            env: "dev".into(),
            policies: vec!["bucket policy"],
            details: vec!["statement `X` denies Terraform s3:PutObject on arn:aws:s3:::b/k".into()],
        };
        assert_eq!(
            lockout.to_string(),
            "refusing to write a bucket policy for dev that would lock out an identity it must keep:\n  - statement `X` denies Terraform s3:PutObject on arn:aws:s3:::b/k"
        );
        assert!(lockout.hint().unwrap().contains("--allow-lockout"));
        let not_converged = |not_visible_yet| Error::NotConverged {
            facets: vec![Facet::Encryption, Facet::BackendFile],
            waited: std::time::Duration::from_millis(30_400),
            not_visible_yet,
        };
        assert_eq!(
            not_converged(true).to_string(),
            "applied, but the store still shows the earlier value of: encryption, backend file (read back for 30 s)"
        );
        assert!(
            not_converged(true)
                .hint()
                .unwrap()
                .contains("--settle-timeout")
        );
        assert_eq!(
            not_converged(false).to_string(),
            "applied, but the store does not keep what it accepted for: encryption, backend file (read back for 30 s)"
        );
        let spec = Error::Spec(vec![Diagnostic {
            file: "environments/dev.yaml".into(),
            line: 1,
            column: 9,
            message: "`x` is not an AWS region".into(),
            hint: None,
        }]);
        assert_eq!(
            spec.to_string(),
            "1 problem in 1 file; nothing was sent to AWS"
        );
        assert_eq!(spec.report().diagnostics.len(), 1);
    }
}
