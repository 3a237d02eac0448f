//! The JSON documents of `--output json`: one per run, every command's with `format_version`
//! and `command`, every change with `from` and `to`. `docs/output.schema.json` describes them
//! and the tests validate real outputs against it.

use serde::Serialize;
use serde_json::Value;

use crate::aws::{CallerIdentity, RequestCounts};
use crate::doctor::Check;
use crate::error::ErrorReport;
use crate::plan::{Change, Facet};
use crate::spec::Diagnostic;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
struct Document<'a, B: Serialize> {
    format_version: u32,
    command: &'a str,
    #[serde(flatten)]
    body: B,
}

/// The document of `command`, pretty-printed, with a final newline.
pub fn document<B: Serialize>(command: &str, body: B) -> String {
    let document = Document {
        format_version: FORMAT_VERSION,
        command,
        body,
    };
    format!(
        "{}\n",
        serde_json::to_string_pretty(&document).expect("documents are plain data")
    )
}

/// A command that failed before it had anything else to report.
#[derive(Debug, Serialize)]
pub struct Failed {
    pub error: ErrorReport,
}

#[derive(Debug, Serialize)]
pub struct Validated {
    pub valid: bool,
    pub specs: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
}

/// `init` and `import`: the files written, notes, and what to run next.
#[derive(Debug, Serialize)]
pub struct Scaffolded {
    pub files: Vec<WrittenFile>,
    pub notes: Vec<String>,
    pub next: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct WrittenFile {
    pub path: String,
    /// `written`, `updated`, `unchanged` or `kept` (an existing file left as it was).
    pub status: &'static str,
}

/// A generated artifact: a completion script (with its shell) or the manual page.
#[derive(Debug, Serialize)]
pub struct Generated {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    pub content: String,
}

#[derive(Debug, Serialize)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RenderedFile {
    pub environment: String,
    pub stack: String,
    pub path: String,
    /// `written`, `unchanged` or (with `--stdout`) `printed`.
    pub status: &'static str,
    /// The file's content, with `--stdout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PolicyPrinted {
    pub environment: String,
    /// `bucket` or `identity`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// `writer` or `reader`, for an identity policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<&'static str>,
    pub policy: Value,
}

#[derive(Debug, Serialize)]
pub struct Reconciled<'a> {
    pub environments: Vec<EnvReport<'a>>,
    /// Notes that are the same for every environment, once.
    pub notes: Vec<String>,
    pub requests: &'a RequestCounts,
}

/// One environment (one bucket) of `plan`, `apply` or `check`.
#[derive(Debug, Serialize)]
pub struct EnvReport<'a> {
    pub name: &'a str,
    pub spec: &'a str,
    pub bucket: &'a str,
    pub region: &'a str,
    pub stacks: Vec<&'a str>,
    /// `in_sync`, `changes`, `applied` or `error`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<&'a CallerIdentity>,
    pub changes: Vec<Value>,
    pub in_sync: Vec<Facet>,
    pub kept_statements: Vec<&'a str>,
    pub notes: Vec<&'a str>,
    pub warnings: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// With `bucket.replica`: the replica's own changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaReport<'a>>,
}

/// The replica bucket of an environment, planned like a bucket of its own.
#[derive(Debug, Serialize)]
pub struct ReplicaReport<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub changes: Vec<Value>,
    pub in_sync: Vec<Facet>,
    pub kept_statements: Vec<&'a str>,
    pub notes: Vec<&'a str>,
}

/// A change as the documents carry it: its kind, its facet, `from` and `to`, and the
/// change's own fields.
pub fn change(change: &Change) -> Value {
    let mut value = serde_json::to_value(change).expect("changes are plain data");
    let (from, to) = change.from_to();
    if let Value::Object(object) = &mut value {
        object.insert(
            "facet".into(),
            serde_json::to_value(change.facet()).expect("a facet"),
        );
        object.insert("from".into(), from);
        object.insert("to".into(), to);
    }
    value
}

#[derive(Debug, Serialize)]
pub struct Diagnosed<'a> {
    pub environments: Vec<DoctorReport<'a>>,
    pub failed: usize,
    pub requests: &'a RequestCounts,
}

/// The checks of one stack's backend.hcl.
#[derive(Debug, Serialize)]
pub struct DoctorReport<'a> {
    pub name: &'a str,
    pub stack: &'a str,
    pub spec: &'a str,
    pub backend_file: &'a str,
    /// The file is a failover file (`bucket.replica`): it points at the replica.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failover: bool,
    pub ok: bool,
    pub checks: &'a [Check],
}

/// `state versions`: one stack's state object and its newest versions.
#[derive(Debug, Serialize)]
pub struct StateVersions<'a> {
    #[serde(flatten)]
    pub state: StateRef<'a>,
    pub versions: Vec<StateVersion>,
    /// Older versions exist beyond `--limit`.
    pub more: bool,
    pub requests: &'a RequestCounts,
}

/// Which state a `state` document is about.
#[derive(Debug, Serialize)]
pub struct StateRef<'a> {
    pub environment: &'a str,
    pub spec: &'a str,
    pub stack: &'a str,
    pub workspace: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
}

#[derive(Debug, Serialize)]
pub struct StateVersion {
    pub version_id: String,
    pub last_modified: String,
    pub size: i64,
    /// The state Terraform reads now.
    pub current: bool,
    pub delete_marker: bool,
    /// From the version's content; absent for a delete marker or what is not a state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terraform_version: Option<String>,
    /// Managed resource instances, as `terraform state list` counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<usize>,
    /// Why the content could not be summarised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `state restore`: what changed (or would have), and the version written.
#[derive(Debug, Serialize)]
pub struct StateRestored<'a> {
    #[serde(flatten)]
    pub state: StateRef<'a>,
    pub version_id: &'a str,
    /// `restored`, or `current` when the version already was the current state.
    pub status: &'static str,
    /// The version the copy created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version_id: Option<String>,
    pub serial: FromTo<Option<u64>, u64>,
    pub lineage: FromTo<Option<String>, String>,
    pub resources: FromTo<Option<usize>, usize>,
    pub only_current: Vec<String>,
    pub only_restored: Vec<String>,
    /// Where Terraform's lock was taken: `lock file`, `dynamodb`.
    pub locked: Vec<&'static str>,
    pub digest_updated: bool,
    pub requests: &'a RequestCounts,
}

#[derive(Debug, Serialize)]
pub struct FromTo<F, T> {
    pub from: F,
    pub to: T,
}
