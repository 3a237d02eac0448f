//! Every policy document statebucket generates for the shipped examples (bucket policies,
//! identity policies of every principal, key policies, the replication role's policy and
//! trust, on the primary and the replica), linted with parliament, a public IAM policy
//! linter. Any finding fails, except the resource-policy false positives named below.

use std::process::Command;

use statebucket::policy::requirements::generated_documents;
use statebucket::project::load;

use crate::support::manifest_dir;

/// A finding parliament reports on a valid document: its issue, which findings of it, and
/// why it is not a problem. parliament reads every document as an identity policy of 2021.
struct Allowed {
    issue: &'static str,
    applies: fn(&serde_json::Value, &str) -> bool,
    #[allow(dead_code)] // read by people: why the finding is wrong
    reason: &'static str,
}

fn file_of(finding: &serde_json::Value) -> &str {
    finding["location"]["filepath"].as_str().unwrap_or_default()
}

const ALLOWED: &[Allowed] = &[
    Allowed {
        issue: "RESOURCE_STAR",
        applies: |finding, _| file_of(finding).contains("-key"),
        reason: "in a KMS key policy, Resource \"*\" means the key the policy is attached to (KMS Developer Guide, \"Key policies\"): it cannot name anything else",
    },
    Allowed {
        issue: "MALFORMED",
        applies: |finding, _| {
            file_of(finding).contains("-replication-trust")
                && finding["detail"] == "Statement contains neither Resource nor NotResource"
        },
        reason: "a role's trust policy names no Resource: it is the role's own (IAM User Guide, \"Role trust policy\")",
    },
    Allowed {
        issue: "UNKNOWN_CONDITION_FOR_ACTION",
        applies: |finding, _| {
            finding["detail"].as_str().is_some_and(|detail| {
                detail.starts_with("Unknown condition kms:ResourceAliases for action kms:")
            })
        },
        reason: "kms:ResourceAliases (2021) applies to every operation on a key, Decrypt, Encrypt and GenerateDataKey included (KMS Developer Guide, \"kms:ResourceAliases\"); parliament's action table predates it",
    },
    Allowed {
        issue: "RESOURCE_MISMATCH",
        applies: |finding, text| {
            finding["detail"][0]["action"] == "s3:DeleteObject" && deletes_only_under_env(text)
        },
        reason: "the statement's only resources are workspace states under Terraform's default prefix `env:`; parliament splits an ARN at every colon, so an object key with a colon matches no S3 object format",
    },
];

/// Whether every statement of the document that allows `s3:DeleteObject` alone names only
/// workspace states under Terraform's default prefix (`…/env:/*/…`).
fn deletes_only_under_env(text: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    let statements = document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let deletes: Vec<&serde_json::Value> = statements
        .iter()
        .filter(|statement| statement["Action"] == "s3:DeleteObject")
        .collect();
    !deletes.is_empty()
        && deletes.iter().all(|statement| {
            let resources = match &statement["Resource"] {
                serde_json::Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            resources.iter().all(|resource| {
                resource
                    .as_str()
                    .is_some_and(|arn| arn.contains("/env:/*/"))
            })
        })
}

#[test]
fn every_generated_policy_of_the_examples_passes_parliament() {
    let parliament = manifest_dir().join(".venv/bin/parliament");
    assert!(
        parliament.exists(),
        "{} is missing: run `bash .ci/venv`",
        parliament.display()
    );
    let paths: Vec<String> = ["dev", "prod", "platform"]
        .iter()
        .map(|name| format!("environments/{name}.yaml"))
        .collect();
    let environments = load(&paths).expect("the examples load");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for environment in &environments {
        let desired = environment.offline_desired(None).expect("renders");
        for bucket in desired.buckets() {
            for (name, document) in generated_documents(bucket) {
                let suffix = if bucket.spec.replica_of.is_some() {
                    "-replica"
                } else {
                    ""
                };
                let path = dir.path().join(format!("{name}{suffix}.json"));
                std::fs::write(&path, document.to_json()).unwrap();
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 15, "{} documents", files.len());
    let output = Command::new(&parliament)
        .arg("--directory")
        .arg(dir.path())
        .args(["--include_policy_extension", ".json", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("parliament runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() || !stdout.trim().is_empty(),
        "parliament failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut findings = Vec::new();
    for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
        let finding: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("parliament said {line:?}: {error}"));
        let issue = finding["issue"].as_str().unwrap_or_default();
        let text = std::fs::read_to_string(file_of(&finding)).unwrap_or_default();
        if !ALLOWED
            .iter()
            .any(|allowed| allowed.issue == issue && (allowed.applies)(&finding, &text))
        {
            findings.push(finding.to_string());
        }
    }
    eprintln!("parliament: {} documents linted", files.len());
    assert!(findings.is_empty(), "{findings:#?}");
}
