//! What a store implements, as `statebucket probe` finds it: each API statebucket and
//! Terraform's S3 backend use, answered `works`, `lacks` or `unknown` with the answer that
//! says so, and the `compat:` block a spec for the store needs. Pure: the answers come
//! from `aws::capability`.

use serde::Serialize;

use crate::spec::StoreFeature;

impl Probed {
    pub fn new(subject: Subject, request: &'static str, answer: Answer, whole_api: bool) -> Probed {
        Probed {
            subject,
            request,
            answer,
            whole_api,
        }
    }
}

/// How the store answered one probe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// As the API answers: a result, or "no such bucket / entity / configuration" for the
    /// name the probe made up.
    Served,
    /// An error answer.
    Refused {
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },
    /// A write the store accepted and a read shows.
    Kept,
    /// A write the store accepted but did not keep: read back, the setting is not there.
    /// apply would write it on every run and never converge.
    NotKept { message: String },
}

impl Answer {
    /// The store says it does not have the API (HTTP 501 NotImplemented).
    fn not_implemented(&self) -> bool {
        matches!(self, Answer::Refused { status, code, .. }
            if crate::aws::codes::not_implemented(*status, code.as_deref()))
    }

    fn describe(&self) -> String {
        match self {
            Answer::Served => "answered".to_owned(),
            Answer::Kept => "kept (read back as written)".to_owned(),
            Answer::NotKept { message } => message.clone(),
            Answer::Refused {
                status,
                code,
                message,
            } => {
                let status = status
                    .map(|status| format!("HTTP {status} "))
                    .unwrap_or_default();
                let code = code
                    .as_deref()
                    .map(|code| format!("{code}: "))
                    .unwrap_or_default();
                format!("{status}{code}{message}")
            }
        }
    }
}

/// What a probe request tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A feature a store may lack (`compat.lacks`).
    Optional(StoreFeature),
    /// What Terraform state needs from any store: without it the store cannot hold state.
    Required(&'static str),
}

/// One probe request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub subject: Subject,
    /// The request, as AWS names it (`GetPublicAccessBlock`).
    pub request: &'static str,
    pub answer: Answer,
    /// For an API as a whole (STS, IAM, KMS): any refusal means the store does not serve
    /// it to this identity. For a bucket API, only a 501 does; another refusal is unknown.
    pub whole_api: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Works,
    Lacks,
    /// Refused for another reason (often access): not listed, said why.
    Unknown,
}

/// One finding, as printed and in the JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The `compat.lacks` name, or what Terraform state needs (`versioning`).
    pub feature: &'static str,
    pub required: bool,
    pub verdict: Verdict,
    pub request: &'static str,
    pub answer: String,
}

/// What the probe found on one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreReport {
    pub endpoint: Option<String>,
    /// Who the store says the caller is, when it has STS.
    pub caller: Option<String>,
    pub findings: Vec<Finding>,
    /// The `compat.lacks` a spec for this store needs, in the order the spec lists them.
    pub lacks: Vec<&'static str>,
    /// What keeps the store from holding Terraform state safely, each with what to do.
    pub blockers: Vec<String>,
    /// The bucket the write probes used (`--scratch-bucket`); left in place.
    pub scratch_bucket: Option<String>,
}

/// The findings and the `compat` block from the answers.
pub fn report(
    endpoint: Option<String>,
    caller: Option<String>,
    probed: &[Probed],
    scratch_bucket: Option<String>,
) -> StoreReport {
    let findings: Vec<Finding> = probed.iter().map(finding).collect();
    let mut lacks: Vec<&'static str> = StoreFeature::ALL
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            findings
                .iter()
                .any(|finding| finding.feature == *name && finding.verdict == Verdict::Lacks)
        })
        .collect();
    lacks.dedup();
    let blockers = findings
        .iter()
        .filter(|finding| finding.required && finding.verdict == Verdict::Lacks)
        .map(blocker)
        .collect();
    StoreReport {
        endpoint,
        caller,
        findings,
        lacks,
        blockers,
        scratch_bucket,
    }
}

fn finding(probed: &Probed) -> Finding {
    let verdict = match &probed.answer {
        Answer::Served | Answer::Kept => Verdict::Works,
        Answer::NotKept { .. } => Verdict::Lacks,
        answer if probed.whole_api || answer.not_implemented() => Verdict::Lacks,
        _ => Verdict::Unknown,
    };
    let (feature, required) = match probed.subject {
        Subject::Optional(feature) => (feature.name(), false),
        Subject::Required(name) => (name, true),
    };
    Finding {
        feature,
        required,
        verdict,
        request: probed.request,
        answer: probed.answer.describe(),
    }
}

fn blocker(finding: &Finding) -> String {
    let what_to_do = match finding.feature {
        "conditional writes" => {
            "the store accepts a second conditional PutObject (If-None-Match: *) of a key that exists, so Terraform's `use_lockfile` cannot keep two runs apart: use `lock: dynamodb` where the store's account has DynamoDB, or another store"
        }
        "encrypted writes" => {
            "every PutObject fails once default encryption is on: configure the store's server-side encryption before statebucket turns it on (SeaweedFS: start it with WEED_S3_SSE_KEK)"
        }
        _ => "Terraform state needs it: choose a store that implements it",
    };
    format!(
        "{} ({} answered {}): {what_to_do}",
        finding.feature, finding.request, finding.answer
    )
}

/// The `compat` block a spec for the store needs; `None` when it needs none.
pub fn compat_block(lacks: &[&str]) -> Option<String> {
    (!lacks.is_empty()).then(|| format!("compat:\n  lacks: [{}]\n", lacks.join(", ")))
}

/// The report for people.
pub fn text(report: &StoreReport) -> String {
    let mut text = format!(
        "store {}{}\n",
        report.endpoint.as_deref().unwrap_or("AWS (no endpoint)"),
        report
            .caller
            .as_deref()
            .map(|caller| format!(", as {caller}"))
            .unwrap_or_default()
    );
    let width = report
        .findings
        .iter()
        .map(|finding| finding.feature.len())
        .max()
        .unwrap_or_default();
    for finding in &report.findings {
        let verdict = match finding.verdict {
            Verdict::Works => "works  ",
            Verdict::Lacks => "lacks  ",
            Verdict::Unknown => "unknown",
        };
        text.push_str(&format!(
            "  {verdict}  {:width$}  {}: {}\n",
            finding.feature, finding.request, finding.answer
        ));
    }
    text.push('\n');
    match compat_block(&report.lacks) {
        Some(block) => {
            text.push_str("A spec for this store needs:\n\n");
            text.push_str(&block);
        }
        None => text.push_str("A spec for this store needs no `compat` block.\n"),
    }
    if report
        .findings
        .iter()
        .any(|finding| finding.verdict == Verdict::Unknown)
    {
        text.push_str("\nunknown: refused for another reason than a missing API (often access): probe as the store's admin to tell\n");
    }
    for blocker in &report.blockers {
        text.push_str(&format!(
            "\n! cannot hold Terraform state safely: {blocker}\n"
        ));
    }
    match &report.scratch_bucket {
        Some(bucket) => text.push_str(&format!(
            "\nWrites went to s3://{bucket} only; it is left in place (statebucket deletes no bucket and no object).\n"
        )),
        None => text.push_str(
            "\nRead-only: conditional writes, encrypted writes and whether settings are kept were not tried (--scratch-bucket NAME tries them in a bucket of their own).\n",
        ),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str, message: &str) -> Answer {
        Answer::Refused {
            status: Some(status),
            code: Some(code.to_owned()),
            message: message.to_owned(),
        }
    }

    use Probed as P;

    fn optional(
        feature: StoreFeature,
        request: &'static str,
        answer: Answer,
        whole_api: bool,
    ) -> Probed {
        P::new(Subject::Optional(feature), request, answer, whole_api)
    }

    /// IAM and KMS as SeaweedFS answers them on its S3 port.
    fn iam_refusal() -> Answer {
        refused(
            403,
            "AccessDenied",
            "IAM write operations are disabled on this server",
        )
    }

    /// SeaweedFS 4.48's answers (checked against `weed server -s3` on 2026-12-06).
    fn seaweedfs() -> Vec<Probed> {
        vec![
            optional(StoreFeature::Sts, "GetCallerIdentity", Answer::Served, true),
            optional(StoreFeature::Iam, "GetRole", iam_refusal(), true),
            optional(StoreFeature::Kms, "ListKeys", iam_refusal(), true),
            optional(
                StoreFeature::PublicAccessBlock,
                "GetPublicAccessBlock",
                refused(
                    501,
                    "NotImplemented",
                    "A header you provided implies functionality that is not implemented",
                ),
                false,
            ),
            optional(
                StoreFeature::OwnershipControls,
                "GetBucketOwnershipControls",
                Answer::Served,
                false,
            ),
            optional(
                StoreFeature::Tagging,
                "GetBucketTagging",
                Answer::Served,
                false,
            ),
            P::new(
                Subject::Required("versioning"),
                "GetBucketVersioning",
                Answer::Served,
                false,
            ),
        ]
    }

    #[test]
    fn a_store_without_some_apis_gets_the_compat_block_that_names_them() {
        let report = report(
            Some("http://127.0.0.1:8333".into()),
            None,
            &seaweedfs(),
            None,
        );
        assert_eq!(report.lacks, vec!["iam", "kms", "public_access_block"]);
        assert_eq!(
            compat_block(&report.lacks).unwrap(),
            "compat:\n  lacks: [iam, kms, public_access_block]\n"
        );
        assert!(report.blockers.is_empty());
        let text = text(&report);
        assert!(
            text.contains(
                "lacks    public_access_block  GetPublicAccessBlock: HTTP 501 NotImplemented"
            ),
            "{text}"
        );
        assert!(text.contains("Read-only"), "{text}");
    }

    #[test]
    fn a_store_with_every_api_needs_no_compat_block() {
        let everything: Vec<Probed> = seaweedfs()
            .into_iter()
            .map(|probe| Probed {
                answer: Answer::Served,
                ..probe
            })
            .collect();
        let report = report(
            None,
            Some("arn:aws:iam::123456789012:user/admin".into()),
            &everything,
            None,
        );
        assert!(report.lacks.is_empty());
        assert_eq!(compat_block(&report.lacks), None);
        assert!(text(&report).contains("needs no `compat` block"));
    }

    #[test]
    fn a_denied_bucket_read_is_unknown_not_lacking_and_a_missing_necessity_blocks() {
        let probes = vec![
            P::new(
                Subject::Optional(StoreFeature::Tagging),
                "GetBucketTagging",
                refused(403, "AccessDenied", "Access Denied"),
                false,
            ),
            P::new(
                Subject::Required("conditional writes"),
                "PutObject If-None-Match: * (second)",
                refused(
                    200,
                    "Accepted",
                    "the second conditional PutObject succeeded",
                ),
                true,
            ),
        ];
        let report = report(None, None, &probes, Some("scratch".into()));
        assert_eq!(report.findings[0].verdict, Verdict::Unknown);
        assert!(report.lacks.is_empty());
        assert_eq!(report.blockers.len(), 1);
        assert!(report.blockers[0].contains("`use_lockfile` cannot keep two runs apart"));
        assert!(text(&report).contains("left in place"));
    }

    #[test]
    fn a_setting_the_store_accepts_but_does_not_keep_is_lacking_and_versioning_blocks() {
        let not_kept = |facet: &str| Answer::NotKept {
            message: format!("accepted, but {facet} read back without it for 3.8 s"),
        };
        // SeaweedFS's reads, then two settings written and not kept.
        let mut probes = seaweedfs();
        probes.extend([
            P::new(
                Subject::Optional(StoreFeature::OwnershipControls),
                "PutBucketOwnershipControls BucketOwnerEnforced, read back",
                not_kept("ownership"),
                false,
            ),
            P::new(
                Subject::Required("versioning"),
                "PutBucketVersioning Enabled, read back",
                not_kept("versioning"),
                false,
            ),
        ]);
        let report = report(None, None, &probes, Some("scratch".into()));
        assert_eq!(
            report.lacks,
            vec!["iam", "kms", "public_access_block", "ownership_controls"]
        );
        assert_eq!(report.blockers.len(), 1, "{:?}", report.blockers);
        assert!(
            report.blockers[0].starts_with("versioning (PutBucketVersioning Enabled, read back answered accepted, but versioning read back without it"),
            "{}",
            report.blockers[0]
        );
    }
}
