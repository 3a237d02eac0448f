//! Terraform state as `statebucket state` reads it: what one version holds (serial, lineage,
//! Terraform version, resource instances), what restoring a version over the current state
//! changes and whether it may, and the records of Terraform's S3 backend that a restore
//! must respect (its lock file, its DynamoDB lock and digest items). Pure: no AWS, no I/O.

use std::fmt;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::spec::{StackSpec, WorkspaceName};

/// Where one workspace's state lives, and the names Terraform's backend derives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePath {
    pub bucket: String,
    /// The state object's key.
    pub key: String,
}

impl StatePath {
    /// Terraform's `path()`: the default workspace at `key`, workspace `W` at
    /// `<workspace_key_prefix>/W/<key>` (prefix `env:` unless set; an empty prefix gives
    /// `W/<key>`).
    pub fn of(bucket: &str, stack: &StackSpec, workspace: &WorkspaceName) -> StatePath {
        let key = if workspace.is_default() {
            stack.key.as_str().to_owned()
        } else {
            let prefix = stack
                .workspace_key_prefix
                .as_ref()
                .map_or("env:", |prefix| prefix.as_str());
            if prefix.is_empty() {
                format!("{workspace}/{}", stack.key.as_str())
            } else {
                format!("{prefix}/{workspace}/{}", stack.key.as_str())
            }
        };
        StatePath {
            bucket: bucket.to_owned(),
            key,
        }
    }

    /// The lock object of `use_lockfile`.
    pub fn lock_file_key(&self) -> String {
        format!("{}.tflock", self.key)
    }

    /// The lock item's `LockID` in a DynamoDB lock table, and the `Path` of the lock info.
    pub fn lock_id(&self) -> String {
        format!("{}/{}", self.bucket, self.key)
    }

    /// The digest item's `LockID`: Terraform compares the MD5 of the state it reads with
    /// this item's `Digest` and refuses a state that differs.
    pub fn digest_id(&self) -> String {
        format!("{}/{}-md5", self.bucket, self.key)
    }
}

impl fmt::Display for StatePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The digest Terraform keeps in the lock table: the hex MD5 of the state's bytes.
pub fn digest(state: &[u8]) -> String {
    Md5::digest(state)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What one version of a state holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateSummary {
    pub serial: u64,
    pub lineage: String,
    pub terraform_version: String,
    /// Managed resource instances, by address, as `terraform state list` shows them
    /// (data sources left out).
    pub resources: Vec<String>,
}

/// The parts of a state file (format version 4) that are read; the rest is skipped.
#[derive(Deserialize)]
struct StateFile {
    version: u64,
    #[serde(default)]
    terraform_version: String,
    serial: u64,
    lineage: String,
    #[serde(default)]
    resources: Vec<ResourceEntry>,
}

#[derive(Deserialize)]
struct ResourceEntry {
    #[serde(default)]
    module: Option<String>,
    mode: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    instances: Vec<InstanceEntry>,
}

#[derive(Deserialize)]
struct InstanceEntry {
    #[serde(default)]
    index_key: Option<serde_json::Value>,
}

/// Reads a state's summary; `Err` says why the bytes are not a Terraform state.
pub fn summarize(bytes: &[u8]) -> Result<StateSummary, String> {
    let state: StateFile =
        serde_json::from_slice(bytes).map_err(|error| format!("not a Terraform state: {error}"))?;
    if state.version != 4 {
        return Err(format!(
            "state format version {} (Terraform ≥ 0.12 writes 4)",
            state.version
        ));
    }
    let mut resources = Vec::new();
    for resource in state
        .resources
        .iter()
        .filter(|entry| entry.mode == "managed")
    {
        let base = match &resource.module {
            Some(module) => format!("{module}.{}.{}", resource.kind, resource.name),
            None => format!("{}.{}", resource.kind, resource.name),
        };
        for instance in &resource.instances {
            resources.push(match &instance.index_key {
                None => base.clone(),
                Some(serde_json::Value::String(key)) => format!("{base}[{key:?}]"),
                Some(index) => format!("{base}[{index}]"),
            });
        }
    }
    Ok(StateSummary {
        serial: state.serial,
        lineage: state.lineage,
        terraform_version: state.terraform_version,
        resources,
    })
}

/// What restoring `restored` over `current` changes. `current` is `None` when the state
/// object has no current version (deleted, or never written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreDiff {
    pub serial: (Option<u64>, u64),
    pub lineage: (Option<String>, String),
    pub resource_count: (Option<usize>, usize),
    /// In the current state and not in the restored one: Terraform plans to create these
    /// again while the configuration still has them (the real objects may still exist).
    pub only_current: Vec<String>,
    /// In the restored state and not in the current one.
    pub only_restored: Vec<String>,
}

impl RestoreDiff {
    pub fn between(current: Option<&StateSummary>, restored: &StateSummary) -> RestoreDiff {
        let missing_from = |from: &StateSummary, other: &StateSummary| -> Vec<String> {
            from.resources
                .iter()
                .filter(|address| !other.resources.contains(address))
                .cloned()
                .collect()
        };
        RestoreDiff {
            serial: (current.map(|state| state.serial), restored.serial),
            lineage: (
                current.map(|state| state.lineage.clone()),
                restored.lineage.clone(),
            ),
            resource_count: (
                current.map(|state| state.resources.len()),
                restored.resources.len(),
            ),
            only_current: current
                .map(|state| missing_from(state, restored))
                .unwrap_or_default(),
            only_restored: current.map_or_else(
                || restored.resources.clone(),
                |state| missing_from(restored, state),
            ),
        }
    }

    /// A state of another lineage is another state altogether (a `terraform init` of
    /// another configuration, or another stack's state written here by mistake).
    pub fn other_lineage(&self) -> bool {
        self.lineage
            .0
            .as_ref()
            .is_some_and(|current| *current != self.lineage.1)
    }
}

/// Why a restore is refused before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreRefusal {
    /// `listing`: the `statebucket state versions …` command that lists this state's versions.
    #[error("version {version} of {path} does not exist")]
    NoSuchVersion {
        path: String,
        version: String,
        listing: String,
    },
    #[error("version {version} of {path} is a delete marker, not a state")]
    DeleteMarker {
        path: String,
        version: String,
        listing: String,
    },
    #[error("version {version} of {path} cannot be restored: {why}")]
    NotAState {
        path: String,
        version: String,
        why: String,
        listing: String,
    },
    #[error(
        "version {version} has lineage {restored}, the current state {current}: it is another state, not an earlier one of this state"
    )]
    OtherLineage {
        version: String,
        current: String,
        restored: String,
    },
    #[error("Terraform's state lock on {path} is held by {holder}")]
    LockHeld { path: String, holder: LockHolder },
    #[error(
        "{path} changed while the restore was prepared (current version {expected} is now {found}); nothing was written"
    )]
    ChangedMeanwhile {
        path: String,
        expected: String,
        found: String,
    },
}

impl RestoreRefusal {
    pub fn hint(&self) -> String {
        match self {
            RestoreRefusal::NoSuchVersion { listing, .. }
            | RestoreRefusal::DeleteMarker { listing, .. } => {
                format!("`{listing}` lists the versions to choose from")
            }
            RestoreRefusal::NotAState { listing, .. } => {
                format!("pick another version from `{listing}`")
            }
            RestoreRefusal::OtherLineage { .. } => {
                "check that the version belongs to this stack; pass --allow-other-lineage only if replacing the state with another one is intended".into()
            }
            RestoreRefusal::LockHeld { holder, .. } => format!(
                "wait for that run to finish and restore again; if it died and will not come back, release its lock with `terraform force-unlock {}` in its working directory",
                holder.id
            ),
            RestoreRefusal::ChangedMeanwhile { .. } => {
                "run the restore again to see what it changes now".into()
            }
        }
    }
}

/// Who holds Terraform's lock, from its lock info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub id: String,
    pub who: String,
    pub operation: String,
    pub created: String,
    /// `lock file` or `DynamoDB table <name>`.
    pub place: String,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, since {}, lock ID {}, in the {})",
            self.who, self.operation, self.created, self.id, self.place
        )
    }
}

/// Terraform's lock info (`statemgr.LockInfo`), the body of the lock file and the `Info`
/// of the DynamoDB lock item. `terraform force-unlock` matches on `ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerraformLockInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Operation", default)]
    pub operation: String,
    #[serde(rename = "Info", default)]
    pub info: String,
    #[serde(rename = "Who", default)]
    pub who: String,
    #[serde(rename = "Version", default)]
    pub version: String,
    #[serde(rename = "Created", default)]
    pub created: String,
    #[serde(rename = "Path", default)]
    pub path: String,
}

impl TerraformLockInfo {
    /// The lock a restore takes. `id` is unique per run; `created` is RFC 3339.
    pub fn for_restore(
        path: &StatePath,
        version: &str,
        id: String,
        who: String,
        created: String,
    ) -> TerraformLockInfo {
        TerraformLockInfo {
            id,
            operation: "statebucket state restore".into(),
            info: format!("restoring version {version}"),
            who,
            version: format!("statebucket {}", env!("CARGO_PKG_VERSION")),
            created,
            path: path.lock_id(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("lock info is plain data")
    }

    /// The holder a lock file or lock item names; an unreadable one is still a holder.
    pub fn holder(body: &str, place: String) -> LockHolder {
        match serde_json::from_str::<TerraformLockInfo>(body) {
            Ok(info) => LockHolder {
                id: info.id,
                who: if info.who.is_empty() {
                    "an unnamed holder".into()
                } else {
                    info.who
                },
                operation: info.operation,
                created: info.created,
                place,
            },
            Err(_) => LockHolder {
                id: "(unreadable)".into(),
                who: "an unreadable lock".into(),
                operation: "unknown operation".into(),
                created: "an unknown time".into(),
                place,
            },
        }
    }
}

/// A lock ID in the form Terraform's are (a UUID), derived from what makes it unique here.
pub fn lock_id(host: &str, pid: u32, nanos: u128) -> String {
    let mut bytes: [u8; 16] = Md5::digest(format!("{host}/{pid}/{nanos}")).into();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"version":4,"terraform_version":"1.15.0","serial":3,"lineage":"aaaa-1","outputs":{},
        "resources":[{"mode":"managed","type":"terraform_data","name":"first","provider":"provider[\"terraform.io/builtin/terraform\"]",
          "instances":[{"schema_version":0,"attributes":{"id":"x"}}]},
          {"mode":"data","type":"terraform_remote_state","name":"net","instances":[{"attributes":{}}]}],"check_results":null}"#;
    const TWO: &str = r#"{"version":4,"terraform_version":"1.15.0","serial":5,"lineage":"aaaa-1",
        "resources":[{"mode":"managed","type":"terraform_data","name":"first","instances":[{"attributes":{}}]},
          {"module":"module.app","mode":"managed","type":"aws_instance","name":"web","instances":[{"index_key":0},{"index_key":1}]},
          {"mode":"managed","type":"aws_s3_object","name":"files","instances":[{"index_key":"a.txt"}]}]}"#;

    #[test]
    fn a_state_is_summarised_as_terraform_state_list_counts_it() {
        let one = summarize(ONE.as_bytes()).unwrap();
        assert_eq!(
            (
                one.serial,
                one.lineage.as_str(),
                one.terraform_version.as_str()
            ),
            (3, "aaaa-1", "1.15.0")
        );
        assert_eq!(one.resources, ["terraform_data.first"]);
        let two = summarize(TWO.as_bytes()).unwrap();
        assert_eq!(
            two.resources,
            [
                "terraform_data.first",
                "module.app.aws_instance.web[0]",
                "module.app.aws_instance.web[1]",
                "aws_s3_object.files[\"a.txt\"]"
            ]
        );
    }

    #[test]
    fn what_is_not_a_state_says_why() {
        assert!(
            summarize(b"hello")
                .unwrap_err()
                .starts_with("not a Terraform state")
        );
        assert!(
            summarize(br#"{"version":3,"serial":1,"lineage":"x"}"#)
                .unwrap_err()
                .contains("format version 3")
        );
    }

    #[test]
    fn a_restore_shows_what_comes_back_and_what_goes() {
        let one = summarize(ONE.as_bytes()).unwrap();
        let two = summarize(TWO.as_bytes()).unwrap();
        let diff = RestoreDiff::between(Some(&two), &one);
        assert_eq!(diff.serial, (Some(5), 3));
        assert_eq!(diff.resource_count, (Some(4), 1));
        assert_eq!(diff.only_current.len(), 3);
        assert!(diff.only_restored.is_empty());
        assert!(!diff.other_lineage());
        let other = StateSummary {
            lineage: "bbbb-2".into(),
            ..one.clone()
        };
        assert!(RestoreDiff::between(Some(&two), &other).other_lineage());
        let onto_nothing = RestoreDiff::between(None, &one);
        assert!(!onto_nothing.other_lineage());
        assert_eq!(onto_nothing.only_restored, ["terraform_data.first"]);
    }

    #[test]
    fn paths_are_terraforms() {
        let spec = crate::spec::parse_spec(
            "environments/dev.yaml",
            "dev",
            "region: eu-west-1\nprofile: terraform\nbucket: { name: my-state }\naccess: { users: [ci] }\n\
             stacks:\n  app: { key: app/terraform.tfstate }\n  net: { key: net.tfstate, workspace_key_prefix: ws }\n",
        )
        .unwrap();
        let default = WorkspaceName::parse("default").unwrap();
        let staging = WorkspaceName::parse("staging").unwrap();
        let app = StatePath::of("my-state", spec.stack("app").unwrap(), &default);
        assert_eq!(app.key, "app/terraform.tfstate");
        assert_eq!(app.lock_file_key(), "app/terraform.tfstate.tflock");
        assert_eq!(app.lock_id(), "my-state/app/terraform.tfstate");
        assert_eq!(app.digest_id(), "my-state/app/terraform.tfstate-md5");
        assert_eq!(
            StatePath::of("my-state", spec.stack("app").unwrap(), &staging).key,
            "env:/staging/app/terraform.tfstate"
        );
        assert_eq!(
            StatePath::of("my-state", spec.stack("net").unwrap(), &staging).key,
            "ws/staging/net.tfstate"
        );
    }

    #[test]
    fn digests_and_lock_ids_have_terraforms_shape() {
        assert_eq!(digest(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let id = lock_id("host", 42, 7);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, lock_id("host", 42, 8));
        let info = TerraformLockInfo::for_restore(
            &StatePath {
                bucket: "b".into(),
                key: "k".into(),
            },
            "v1",
            id.clone(),
            "me@host".into(),
            "2026-12-01T00:00:00Z".into(),
        );
        let holder = TerraformLockInfo::holder(&info.to_json(), "lock file".into());
        assert_eq!(holder.id, id);
        assert_eq!(holder.who, "me@host");
        assert_eq!(
            TerraformLockInfo::holder("garbage", "lock file".into()).who,
            "an unreadable lock"
        );
    }
}
