//! `statebucket audit`: for each stack of an environment, who can read its state (the
//! policies as they are in AWS now), who did (CloudTrail's record of the state key), and
//! what a reader sees (the state's secret paths, never their values). Pure: the shell
//! (`aws::audit`) gathers the answers, and what it could not read is said, not fatal.

pub mod access;
pub mod exposure;
pub mod trail;

use serde::Serialize;

pub use access::{Access, Delegation, IdentityPolicies, StateObject};
pub use exposure::Exposure;
pub use trail::{KeyUse, StackKeys, Touched};

use crate::policy::{PolicyDocument, StateArns, bucket_arn, key_policy::via_s3};
use crate::spec::{AccountId, EnvSpec, StackSpec, WorkspacePrefix};

/// A read the audit could not make: the permission it needs and what AWS said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lacked {
    pub permission: &'static str,
    pub cause: String,
}

/// What the shell read for the audit.
pub struct Gathered {
    pub bucket_policy: Result<Option<String>, Lacked>,
    /// `None` for AES256 state.
    pub key: Option<GatheredKey>,
    /// Each stack's current state: `None` when there is none yet.
    pub states: Vec<Result<Option<Vec<u8>>, Lacked>>,
    /// AES256: whether a trail records S3 data events for the bucket.
    pub data_event_trail: Option<Result<Option<String>, Lacked>>,
    /// The window asked for, in days, and where it starts.
    pub since: (u32, String),
    /// Every user and role of the account with its IAM policy documents (name, JSON);
    /// `None` when the store has no IAM.
    pub identities: Option<Result<Vec<GatheredIdentity>, Lacked>>,
}

pub struct GatheredIdentity {
    pub principal: String,
    pub documents: Vec<(String, String)>,
}

pub struct GatheredKey {
    pub arn: String,
    pub policy: Result<Option<String>, Lacked>,
    /// The `CloudTrailEvent` JSON of every event that names the key in the window.
    pub events: Result<Vec<String>, Lacked>,
    /// The bucket's default encryption uses an S3 Bucket Key.
    pub bucket_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackAudit {
    pub stack: String,
    pub key: String,
    /// Who can read, write or decrypt the state; `None` when the policy could not be read.
    pub can: Option<Vec<Access>>,
    /// Identities of the account whose own IAM policies let them in; `None` when IAM could
    /// not be read. Said for review; they do not decide the exit code, since every account
    /// has administrators.
    pub via_iam: Option<Vec<Access>>,
    /// The key's recorded uses for this stack; `None` for AES256 or when CloudTrail could
    /// not be read.
    pub did: Option<Vec<KeyUse>>,
    /// `None` when the state could not be read.
    pub sees: Option<Exposure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub environment: String,
    pub spec: String,
    pub bucket: String,
    pub encryption: &'static str,
    /// The first day of CloudTrail's window (UTC), and its length in days.
    pub since: String,
    pub days: u32,
    pub stacks: Vec<StackAudit>,
    /// Statements that let an account's IAM policies decide.
    pub delegations: Vec<Delegation>,
    /// Key uses no stack's object names (an S3 Bucket Key names the bucket).
    pub unattributed: Vec<KeyUse>,
    pub notes: Vec<String>,
    /// What the caller may not read; the rest of the audit stands.
    pub lacked: Vec<Lacked>,
    /// An unlisted principal can read a state or did: exit 2.
    pub unlisted_reader: bool,
}

/// The listed principals of a stack, as ARNs in the spec's account.
fn listed_of(spec: &EnvSpec, account: &AccountId, stack: &StackSpec) -> Vec<String> {
    spec.writers_of(stack)
        .iter()
        .chain(spec.readers_of(stack))
        .map(|principal| {
            principal
                .resolve(spec.region.partition(), account)
                .to_string()
        })
        .collect()
}

/// What the audit read, parsed: the same for every stack.
struct Readings {
    /// `None`: not read; `Some(None)`: the bucket has none.
    bucket_policy: Option<Option<PolicyDocument>>,
    key_policy: Option<PolicyDocument>,
    key_arn: Option<String>,
    identities: Option<Vec<IdentityPolicies>>,
    key_delegates: bool,
    uses: Option<Vec<KeyUse>>,
}

pub fn report(spec: &EnvSpec, account: &AccountId, gathered: Gathered) -> AuditReport {
    let mut lacked = Vec::new();
    let mut notes = Vec::new();
    let bucket_policy = parse_policy(
        gathered.bucket_policy,
        "bucket policy",
        &mut lacked,
        &mut notes,
    );
    let (key_policy, key_arn, events, bucket_key) = match gathered.key {
        Some(key) => (
            parse_policy(key.policy, "key policy", &mut lacked, &mut notes).flatten(),
            Some(key.arn),
            key.events.map_err(|missing| lacked.push(missing)).ok(),
            key.bucket_key,
        ),
        None => (None, None, None, false),
    };
    let identities = match gathered.identities {
        Some(Ok(identities)) => Some(identity_policies(identities)),
        Some(Err(missing)) => {
            lacked.push(missing);
            None
        }
        None => None,
    };
    let readings = Readings {
        key_delegates: access::delegations(None, key_policy.as_ref())
            .iter()
            .any(|delegation| delegation.account == account.as_str()),
        uses: events.map(|events| key_uses(spec, account, &events)),
        bucket_policy,
        key_policy,
        key_arn,
        identities,
    };
    let stacks: Vec<StackAudit> = spec
        .stacks
        .iter()
        .zip(gathered.states)
        .map(|(stack, state)| {
            let sees = match state {
                Ok(Some(bytes)) => Some(exposure::of_state(&bytes)),
                Ok(None) => Some(Exposure::NoState),
                Err(missing) => {
                    lacked.push(missing);
                    None
                }
            };
            stack_audit(spec, account, stack, &readings, sees)
        })
        .collect();
    notes.extend(trail_notes(
        readings.key_arn.is_some() && bucket_key,
        gathered.data_event_trail,
        &mut lacked,
    ));
    // The same refusal for every stack is said once.
    let mut said = Vec::new();
    lacked.retain(|missing: &Lacked| {
        !said.contains(missing) && {
            said.push(missing.clone());
            true
        }
    });
    let unlisted_reader = stacks.iter().any(|stack| {
        let can = stack.can.iter().flatten();
        let did = stack.did.iter().flatten();
        can.into_iter()
            .any(|access| !access.listed && access.read.is_some())
            || did
                .into_iter()
                .any(|key_use| !key_use.listed && key_use.access == "read")
    });
    AuditReport {
        environment: spec.name.to_string(),
        spec: spec.source.clone(),
        bucket: spec.bucket.name.to_string(),
        encryption: if readings.key_arn.is_some() {
            "kms"
        } else {
            "aes256"
        },
        since: gathered.since.1,
        days: gathered.since.0,
        delegations: access::delegations(
            readings.bucket_policy.as_ref().and_then(Option::as_ref),
            readings.key_policy.as_ref(),
        ),
        // An S3 Bucket Key's events name the bucket, not a stack.
        unattributed: (readings.uses.iter().flatten())
            .filter(|key_use| !matches!(key_use.touched, Touched::Stack { .. }))
            .cloned()
            .collect(),
        stacks,
        notes,
        lacked,
        unlisted_reader,
    }
}

/// A policy read: `Some(None)` when there is none, `None` when it was not read (what was
/// lacked, or a note when it is not a policy).
fn parse_policy(
    result: Result<Option<String>, Lacked>,
    what: &str,
    lacked: &mut Vec<Lacked>,
    notes: &mut Vec<String>,
) -> Option<Option<PolicyDocument>> {
    match result {
        Ok(Some(text)) => match PolicyDocument::parse(&text) {
            Ok(document) => Some(Some(document)),
            Err(problem) => {
                notes.push(format!(
                    "the {what} could not be read as a policy: {problem}"
                ));
                None
            }
        },
        Ok(None) => Some(None),
        Err(missing) => {
            lacked.push(missing);
            None
        }
    }
}

fn identity_policies(identities: Vec<GatheredIdentity>) -> Vec<IdentityPolicies> {
    identities
        .into_iter()
        .map(|identity| IdentityPolicies {
            principal: identity.principal,
            documents: identity
                .documents
                .into_iter()
                .filter_map(|(name, text)| {
                    PolicyDocument::parse(&text)
                        .ok()
                        .map(|document| (name, document))
                })
                .collect(),
        })
        .collect()
}

/// The key uses among CloudTrail's events, each tied to its stack.
fn key_uses(spec: &EnvSpec, account: &AccountId, events: &[String]) -> Vec<KeyUse> {
    let listed: Vec<String> = spec
        .stacks
        .iter()
        .flat_map(|stack| listed_of(spec, account, stack))
        .collect();
    let prefixes: Vec<WorkspacePrefix> = spec
        .stacks
        .iter()
        .map(StackSpec::workspace_prefix)
        .collect();
    let stack_keys: Vec<StackKeys<'_>> = spec
        .stacks
        .iter()
        .zip(&prefixes)
        .map(|(stack, prefix)| StackKeys {
            stack: stack.name.as_str(),
            key: stack.key.as_str(),
            workspace_prefix: prefix.as_str(),
        })
        .collect();
    events
        .iter()
        .filter_map(|event| trail::key_use(event, spec.bucket.name.as_str(), &stack_keys, &listed))
        .collect()
}

fn stack_audit(
    spec: &EnvSpec,
    account: &AccountId,
    stack: &StackSpec,
    readings: &Readings,
    sees: Option<Exposure>,
) -> StackAudit {
    let bucket = bucket_arn(spec.region.partition(), &spec.bucket.name);
    let state_arn = StateArns::of(&bucket, stack).state;
    let via = via_s3(&spec.region);
    let object = StateObject {
        state_arn: &state_arn,
        key: readings.key_arn.as_deref().map(|arn| (arn, via.as_str())),
    };
    let listed = listed_of(spec, account, stack);
    let bucket_policy = readings.bucket_policy.as_ref();
    StackAudit {
        stack: stack.name.to_string(),
        key: stack.key.to_string(),
        can: bucket_policy.map(|bucket_policy| {
            access::who_can(
                bucket_policy.as_ref(),
                readings.key_policy.as_ref(),
                &object,
                &listed,
            )
        }),
        via_iam: readings.identities.as_ref().map(|identities| {
            access::via_iam(
                identities,
                bucket_policy.and_then(Option::as_ref),
                readings.key_policy.as_ref(),
                readings.key_delegates,
                &object,
                &listed,
            )
        }),
        did: readings.uses.as_ref().map(|uses| {
            uses.iter()
                .filter(|key_use| {
                    matches!(&key_use.touched, Touched::Stack { stack: name, .. } if name == stack.name.as_str())
                })
                .cloned()
                .collect()
        }),
        sees,
    }
}

/// What CloudTrail can and cannot tell about reads of this bucket.
fn trail_notes(
    bucket_key: bool,
    data_event_trail: Option<Result<Option<String>, Lacked>>,
    lacked: &mut Vec<Lacked>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if bucket_key {
        notes.push("the bucket uses an S3 Bucket Key: KMS is called once per data key, not per read, so CloudTrail records fewer events, and their encryption context names the bucket, not the stack".to_owned());
    }
    match data_event_trail {
        Some(Ok(Some(trail))) => notes.push(format!(
            "AES256 state: reads leave no KMS record; trail `{trail}` records S3 data events for the bucket (look there for GetObject on the state keys)"
        )),
        Some(Ok(None)) => notes.push(
            "AES256 state: reads leave no record here. Per-read audit needs KMS encryption (`encryption: { kms_key: alias/NAME, create_key: true }`), or a CloudTrail trail with S3 data events for the bucket (none records them now)".to_owned(),
        ),
        Some(Err(missing)) => lacked.push(missing),
        None => {}
    }
    notes
}

/// The report for people.
pub fn text(report: &AuditReport) -> String {
    let mut text = format!(
        "audit {} ({}): s3://{}, {} state",
        report.environment,
        report.spec,
        report.bucket,
        report.encryption.to_uppercase()
    );
    if report.encryption == "kms" {
        text.push_str(&format!(
            ", CloudTrail since {} ({} days)",
            report.since, report.days
        ));
    }
    text.push('\n');
    for stack in &report.stacks {
        text.push_str(&stack_text(stack));
    }
    if !report.unattributed.is_empty() {
        text.push_str(&format!(
            "key uses no stack's object names ({}):\n",
            report.unattributed.len()
        ));
        for key_use in &report.unattributed {
            text.push_str(&use_line(key_use));
        }
    }
    for delegation in &report.delegations {
        let what = if delegation.policy == "key policy" {
            "decrypt"
        } else {
            "read or write state"
        };
        text.push_str(&format!(
            "note: {} statement `{}` lets IAM decide for account {}: any identity of that account whose IAM policy allows it can also {what}\n",
            delegation.policy, delegation.sid, delegation.account
        ));
    }
    for note in &report.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    for lacked in &report.lacked {
        text.push_str(&format!(
            "lacked: {} ({}): that part of the audit is missing\n",
            lacked.permission, lacked.cause
        ));
    }
    text.push_str(if report.unlisted_reader {
        "\nAudit: a principal the spec does not list can read state, or did (marked !).\n"
    } else {
        "\nAudit: every principal that can read state, and every recorded reader, is listed.\n"
    });
    text
}

fn stack_text(stack: &StackAudit) -> String {
    let mut text = format!("stack {} ({})\n  can:\n", stack.stack, stack.key);
    match &stack.can {
        None => text.push_str("    (the bucket policy could not be read)\n"),
        Some(access) if access.is_empty() => {
            text.push_str("    no principal is named in a statement that grants it\n");
        }
        Some(access) => text.extend(access.iter().map(access_line)),
    }
    if let Some(via_iam) = stack.via_iam.as_ref().filter(|found| !found.is_empty()) {
        text.push_str(
            "  can through IAM policies of the account (review; not counted in the exit code):\n",
        );
        text.extend(via_iam.iter().map(access_line));
    }
    if let Some(did) = &stack.did {
        text.push_str(&format!("  did ({} key uses):\n", did.len()));
        text.extend(did.iter().map(use_line));
    }
    text.push_str("  sees:\n");
    text.push_str(&sees_text(stack.sees.as_ref()));
    text
}

fn sees_text(sees: Option<&Exposure>) -> String {
    match sees {
        None => "    (the state could not be read)\n".to_owned(),
        Some(Exposure::NoState) => "    no state yet\n".to_owned(),
        Some(Exposure::Encrypted) => {
            "    OpenTofu-encrypted state: ciphertext to a reader without its key\n".to_owned()
        }
        Some(Exposure::Unreadable { reason }) => format!("    not a state: {reason}\n"),
        Some(Exposure::Plain {
            sensitive,
            look_secret,
        }) => {
            let list = |paths: &[String]| {
                if paths.is_empty() {
                    "none".to_owned()
                } else {
                    paths.join(", ")
                }
            };
            format!(
                "    marked sensitive: {}\n    look secret: {}\n    (paths only; a reader of the state sees every value in plain text)\n",
                list(sensitive),
                list(look_secret)
            )
        }
    }
}

fn access_line(access: &Access) -> String {
    let mut granted = Vec::new();
    for (what, sid) in [
        ("read", &access.read),
        ("write", &access.write),
        ("decrypt", &access.decrypt),
    ] {
        if let Some(sid) = sid {
            granted.push(format!("{what} ({sid})"));
        }
    }
    format!(
        "  {} {}  {}{}\n",
        if access.listed { " " } else { "!" },
        access.principal,
        granted.join(", "),
        if access.listed {
            ""
        } else {
            "  not listed in the spec"
        }
    )
}

fn use_line(key_use: &KeyUse) -> String {
    let workspace = match &key_use.touched {
        Touched::Stack {
            workspace: Some(workspace),
            lock_file,
            ..
        } => format!(
            " workspace {workspace}{}",
            if *lock_file { " (lock file)" } else { "" }
        ),
        Touched::Stack {
            lock_file: true, ..
        } => " (lock file)".to_owned(),
        Touched::Bucket => " (the bucket: S3 Bucket Key)".to_owned(),
        Touched::Other { arn } => format!(" ({arn})"),
        Touched::Stack { .. } => String::new(),
    };
    format!(
        "  {} {}  {:5}  {}{workspace}  from {}  agent {}\n",
        if key_use.listed { " " } else { "!" },
        key_use.time,
        key_use.access,
        key_use.principal,
        key_use.source_ip.as_deref().unwrap_or("?"),
        key_use.user_agent.as_deref().unwrap_or("?")
    )
}
