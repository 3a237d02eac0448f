//! `statebucket import`'s core: from a live bucket (read by `aws::adopt`) to the spec that
//! reproduces what statebucket manages, and the notes the reader must see. Pure.
//!
//! What the spec can say is taken from the bucket: region, encryption and the KMS key's
//! alias, tags, lifecycle retention, logging, and the principals the bucket policy grants
//! state access to (with the state keys they are granted, when the policy names them).
//! What statebucket always enforces (versioning, the public access block, object
//! ownership, TLS-only access) has no key in a spec: the notes name what the bucket lacks,
//! which is exactly what `plan` will then show.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::observed::{BucketState, PublicAccessBlock, ReplicationConfiguration, Versioning};
use crate::plan::{ABORT_UPLOADS_RULE_ID, NONCURRENT_RULE_ID};
use crate::scaffold::{NewSpec, NewStack, Principals, States};
use crate::spec::{
    AccountId, BucketName, Days, Encryption, EnvName, IamArn, KmsKey, KmsKeyRef, Lifecycle,
    LogPrefix, Logging, ObjectLock, PrincipalKind, PrincipalRef, ProfileName, Region, ReplicaSpec,
    RetentionMode, StackName, StateKey, TableName,
};

/// What import knows besides the bucket.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub env: EnvName,
    pub bucket: BucketName,
    pub region: Region,
    /// The account of the identity that read the bucket (HeadBucket checked it owns it).
    pub account: AccountId,
    /// Written as `profile` (Terraform's identity); `None`: the placeholder `terraform`.
    pub terraform_profile: Option<ProfileName>,
    /// The identity that read the bucket (`--profile`), written as `bootstrap_profile`.
    pub bootstrap_profile: Option<ProfileName>,
}

/// The live bucket, as `aws::adopt` read it.
#[derive(Debug, Clone)]
pub struct LiveBucket<'a> {
    pub state: &'a BucketState,
    /// The SSE-KMS customer managed key's ARN and aliases.
    pub kms_key: Option<(&'a str, &'a [String])>,
    /// Keys of `*.tfstate` objects in the bucket.
    pub state_keys: &'a [String],
    /// A DynamoDB table with Terraform's lock schema, found under a usual name.
    pub lock_table: Option<&'a str>,
    /// The bucket it replicates into, when it does and import could read it.
    pub replica: Option<LiveReplica<'a>>,
}

/// A bucket the state bucket replicates into, and the rule that does.
#[derive(Debug, Clone)]
pub struct LiveReplica<'a> {
    pub name: &'a str,
    pub region: &'a Region,
    pub state: &'a BucketState,
    pub kms_key: Option<(&'a str, &'a [String])>,
    pub rule: &'a ReplicationTarget,
}

/// Where a replication configuration sends the state: statebucket's rule first, else the
/// first rule of another owner that names a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationTarget {
    pub bucket: String,
    pub rule: String,
    pub owned: bool,
    /// The configuration's role.
    pub role: String,
}

pub fn replication_target(configuration: &ReplicationConfiguration) -> Option<ReplicationTarget> {
    let (destination, rule, owned) = match &configuration.owned {
        Some(rule) => (rule.destination.clone(), rule.id.clone(), true),
        None => {
            let rule = configuration
                .foreign
                .iter()
                .find(|rule| rule.destination.is_some())?;
            (rule.destination.clone()?, rule.id.clone(), false)
        }
    };
    Some(ReplicationTarget {
        bucket: destination
            .rsplit_once(":::")
            .map_or(destination.as_str(), |(_, name)| name)
            .to_owned(),
        rule,
        owned,
        role: configuration.role.clone(),
    })
}

#[derive(Debug, Clone)]
pub struct Adopted {
    pub spec: NewSpec,
    /// Each says what the spec assumed, what to fill in, or what `apply` will add.
    pub notes: Vec<String>,
}

pub fn adopt(request: &ImportRequest, live: &LiveBucket<'_>) -> Adopted {
    let mut notes = Vec::new();
    let grants = match &live.state.policy {
        Some(policy) => policy_grants(policy, request.bucket.as_str(), &mut notes),
        None => {
            notes.push("the bucket has no policy: no principals to take over".to_owned());
            Vec::new()
        }
    };
    let (access, states) = layout(request, &grants, live.state_keys, &mut notes);
    let (encryption, encryption_note) = encryption(
        &request.region,
        live.state,
        live.kms_key,
        "bucket.encryption.kms_key",
        &mut notes,
    );
    let replica = live
        .replica
        .as_ref()
        .and_then(|replica| adopt_replica(request, replica, &encryption, &mut notes));
    let (lifecycle, lifecycle_note) = lifecycle(live.state);
    notes.extend(lifecycle_note.clone());
    let logging = live.state.logging.as_ref().and_then(|target| {
        let bucket = BucketName::parse(&target.bucket).ok()?;
        let prefix = LogPrefix::parse(&target.prefix).ok()?;
        Some(Logging { bucket, prefix })
    });
    notes.extend(hardening(live.state));
    let lock_table = live
        .lock_table
        .and_then(|table| TableName::parse(table).ok());
    notes.push(match &lock_table {
        Some(table) => format!(
            "DynamoDB table `{table}` has Terraform's lock schema: the spec keeps locking in it beside the lockfile (`lock: both`); once every runner is on Terraform >= 1.10, switch to `lock: lockfile`"
        ),
        None => "no DynamoDB lock table under a usual name (<bucket>-locks, terraform-locks, …): if your backend locks in one, set `lock: both` and `dynamodb_table` before `apply`, or the backend.hcl it writes drops the table".to_owned(),
    });
    let profile_note = match &request.terraform_profile {
        Some(_) => "the AWS profile Terraform's backend uses (written into backend.hcl)".to_owned(),
        None => {
            notes.push("`profile: terraform` is a placeholder: set the AWS profile Terraform's backend runs as (--terraform-profile)".to_owned());
            "PLACEHOLDER: the AWS profile Terraform's backend uses".to_owned()
        }
    };
    let spec = NewSpec {
        env: request.env.clone(),
        header: vec![
            format!(
                "Imported from bucket `{}` by `statebucket import`: what statebucket manages, as the",
                request.bucket
            ),
            "bucket had it. Read the notes import printed; `statebucket plan` shows what apply adds.".to_owned(),
        ],
        region: request.region.clone(),
        account_id: Some(request.account.clone()),
        profile: request
            .terraform_profile
            .clone()
            .unwrap_or_else(|| ProfileName::parse("terraform").expect("a valid name")),
        profile_note,
        bootstrap_profile: request.bootstrap_profile.clone(),
        bucket: request.bucket.clone(),
        bucket_note: None,
        encryption,
        encryption_note,
        tags: live
            .state
            .tags
            .iter()
            .filter(|(key, _)| !key.to_ascii_lowercase().starts_with("aws:"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        lifecycle,
        lifecycle_note,
        logging,
        access,
        states,
        lock_table,
        replica,
    };
    Adopted { spec, notes }
}

/// The replica as `bucket.replica`, or `None` (with a note) when a spec could not say it.
fn adopt_replica(
    request: &ImportRequest,
    replica: &LiveReplica<'_>,
    primary_encryption: &Encryption,
    notes: &mut Vec<String>,
) -> Option<ReplicaSpec> {
    let name = BucketName::parse(replica.name).ok()?;
    let rule = replica.rule;
    if *replica.region == request.region {
        notes.push(format!(
            "rule `{}` replicates into `{name}` in the bucket's own region: a statebucket replica must survive the loss of that region, so the spec has no `replica`; the rule is kept",
            rule.rule
        ));
        return None;
    }
    let (encryption, _) = encryption(
        replica.region,
        replica.state,
        replica.kms_key,
        "bucket.replica.encryption.kms_key",
        notes,
    );
    if matches!(primary_encryption, Encryption::Kms(_)) && matches!(encryption, Encryption::Aes256)
    {
        notes.push(format!(
            "the bucket replicates into `{name}` ({}), which has no customer managed KMS key while the bucket has one: name a key in the replica's region as `bucket.replica.encryption` to take it over; the spec has no `replica` until then",
            replica.region
        ));
        return None;
    }
    let object_lock = replica
        .state
        .object_lock
        .as_ref()
        .and_then(|lock| lock.default_retention.as_ref())
        .and_then(|retention| {
            let mode = RetentionMode::from_s3(&retention.mode)?;
            let days = Days::new(u32::try_from(retention.in_days()).ok()?)?;
            Some(ObjectLock { mode, days })
        });
    notes.push(if rule.owned {
        format!(
            "the bucket replicates into `{name}` ({}) with statebucket's rule: taken over as `bucket.replica`",
            replica.region
        )
    } else {
        format!(
            "the bucket replicates into `{name}` ({}) with rule `{}` (role {}): taken over as `bucket.replica`. apply adds statebucket's rule `{}` and role beside it, and a configuration has one role: remove rule `{}` first if it uses another role (statebucket's rule replaces it), else plan refuses",
            replica.region,
            rule.rule,
            rule.role,
            crate::replication::RULE_ID,
            rule.rule
        )
    });
    Some(ReplicaSpec {
        name,
        region: replica.region.clone(),
        encryption,
        object_lock,
        backend_file: None,
        positions: Default::default(),
    })
}

/// One principal's state-object grants in the bucket policy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    principal: IamArn,
    /// Object key patterns (`*` and `?` wildcards) it may write, and may read.
    writes: BTreeSet<String>,
    reads: BTreeSet<String>,
}

/// The users and roles the policy's Allow statements grant object access in this bucket.
fn policy_grants(policy: &str, bucket: &str, notes: &mut Vec<String>) -> Vec<Grant> {
    let Ok(document) = serde_json::from_str::<Value>(policy) else {
        notes.push("the bucket policy is not valid JSON: no principals taken over".to_owned());
        return Vec::new();
    };
    let statements = match &document["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => Vec::new(),
    };
    let object_prefix = format!(":s3:::{bucket}/");
    let mut grants: BTreeMap<IamArn, Grant> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for statement in &statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let actions: Vec<String> = strings(&statement["Action"])
            .into_iter()
            .map(|action| action.to_ascii_lowercase())
            .collect();
        let writes = actions
            .iter()
            .any(|action| matches!(action.as_str(), "*" | "s3:*" | "s3:put*" | "s3:putobject"));
        let reads = actions
            .iter()
            .any(|action| matches!(action.as_str(), "*" | "s3:*" | "s3:get*" | "s3:getobject"));
        let patterns: Vec<String> = strings(&statement["Resource"])
            .into_iter()
            .filter_map(|resource| {
                let at = resource.find(&object_prefix)?;
                resource
                    .starts_with("arn:")
                    .then(|| resource[at + object_prefix.len()..].to_owned())
            })
            .collect();
        if patterns.is_empty() || !(writes || reads) {
            continue;
        }
        for principal in strings(&statement["Principal"]["AWS"]) {
            let Ok(arn) = IamArn::parse(&principal) else {
                skipped.insert(principal);
                continue;
            };
            let grant = grants.entry(arn.clone()).or_insert_with(|| Grant {
                principal: arn,
                writes: BTreeSet::new(),
                reads: BTreeSet::new(),
            });
            for pattern in &patterns {
                if writes {
                    grant.writes.insert(pattern.clone());
                }
                if reads {
                    grant.reads.insert(pattern.clone());
                }
            }
        }
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "not taken over (not an IAM user or role): {}; the statements naming them are kept as they are",
            skipped.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    grants.into_values().collect()
}

/// A JSON string or list of strings.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `*` and `?` wildcards, as IAM matches resources.
fn matches(pattern: &str, key: &str) -> bool {
    fn from(pattern: &[u8], key: &[u8]) -> bool {
        match (pattern.first(), key.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                from(&pattern[1..], key) || (!key.is_empty() && from(pattern, &key[1..]))
            }
            (Some(b'?'), Some(_)) => from(&pattern[1..], &key[1..]),
            (Some(p), Some(k)) if p == k => from(&pattern[1..], &key[1..]),
            _ => false,
        }
    }
    from(pattern.as_bytes(), key.as_bytes())
}

/// A key a state lives under: not a lock file, not a workspace's copy under `env:/`.
fn is_state_key(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
        && !pattern.ends_with(".tflock")
        && !pattern.ends_with("-md5")
        && !pattern.starts_with("env:/")
        && StateKey::parse(pattern).is_ok()
}

/// The writers and readers of `key` (all grants when `None`).
fn principals_of(request: &ImportRequest, grants: &[Grant], key: Option<&str>) -> Principals {
    let covers = |patterns: &BTreeSet<String>| match key {
        Some(key) => patterns.iter().any(|pattern| matches(pattern, key)),
        None => !patterns.is_empty(),
    };
    let reference = |arn: &IamArn| {
        // A name in the bucket's own account without a path reads best; anything else
        // stays an ARN (import looks principals up by ARN, path included).
        let text = if arn.account == request.account && !arn.path_and_name.contains('/') {
            arn.name().to_owned()
        } else {
            arn.to_string()
        };
        PrincipalRef::parse(&text, arn.kind).ok()
    };
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for grant in grants {
        if covers(&grant.writes) {
            writers.extend(reference(&grant.principal));
        } else if covers(&grant.reads) {
            readers.extend(reference(&grant.principal));
        }
    }
    // Users first, then roles, as the spec lists them.
    writers.sort_by_key(|principal| principal.kind() == PrincipalKind::Role);
    readers.sort_by_key(|principal| principal.kind() == PrincipalKind::Role);
    Principals { writers, readers }
}

fn placeholder_writers(notes: &mut Vec<String>) -> Principals {
    notes.push("the bucket policy grants no IAM user or role write access to state: `access` lists the placeholder user `terraform`; name the users and roles Terraform runs as".to_owned());
    Principals {
        writers: vec![PrincipalRef::parse("terraform", PrincipalKind::User).expect("a valid name")],
        readers: Vec::new(),
    }
}

/// `backend:` with the one key found (or a placeholder), or `stacks:` when the policy grants
/// several keys (or the bucket holds several states and the policy names none).
fn layout(
    request: &ImportRequest,
    grants: &[Grant],
    listed: &[String],
    notes: &mut Vec<String>,
) -> (Principals, States) {
    let granted: BTreeSet<&str> = grants
        .iter()
        .flat_map(|grant| grant.writes.iter().chain(&grant.reads))
        .map(String::as_str)
        .filter(|pattern| is_state_key(pattern))
        .collect();
    let keys: Vec<&str> = if granted.is_empty() {
        listed
            .iter()
            .map(String::as_str)
            .filter(|key| is_state_key(key))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        granted.into_iter().collect()
    };
    match keys.as_slice() {
        [] => {
            let mut access = principals_of(request, grants, None);
            if access.writers.is_empty() {
                access = placeholder_writers(notes);
            }
            notes.push("no state key found (neither named in the bucket policy nor a *.tfstate object): `backend.key` is the placeholder `terraform.tfstate`; set the key your backend uses".to_owned());
            let states = States::Backend {
                key: StateKey::parse("terraform.tfstate").expect("a valid key"),
                key_note: Some("PLACEHOLDER: set the key your backend uses".to_owned()),
            };
            (access, states)
        }
        [key] => {
            let mut access = principals_of(request, grants, Some(key));
            if access.writers.is_empty() {
                access = placeholder_writers(notes);
            }
            let states = States::Backend {
                key: StateKey::parse(key).expect("checked by is_state_key"),
                key_note: None,
            };
            (access, states)
        }
        several => {
            let mut stacks = Vec::new();
            let mut names = BTreeSet::new();
            for key in several {
                let mut access = principals_of(request, grants, Some(key));
                if access.writers.is_empty() {
                    access.writers = principals_of(request, grants, None).writers;
                }
                let name = unique_stack_name(key, &mut names);
                stacks.push((name, key, access));
            }
            let all_writers_empty = stacks
                .iter()
                .all(|(_, _, access)| access.writers.is_empty());
            let shared = stacks
                .first()
                .map(|(_, _, first)| first.clone())
                .filter(|first| stacks.iter().all(|(_, _, access)| access == first));
            let (spec_access, per_stack) = match shared {
                Some(shared) if !all_writers_empty => (shared, false),
                Some(_) => (placeholder_writers(notes), false),
                None => (Principals::default(), true),
            };
            notes.push(format!(
                "{} states found: one stack each{}",
                several.len(),
                if per_stack {
                    ", with the principals the policy grants on its key"
                } else {
                    ""
                }
            ));
            let stacks = stacks
                .into_iter()
                .map(|(name, key, access)| NewStack {
                    name,
                    key: StateKey::parse(key).expect("checked by is_state_key"),
                    access: (per_stack && !access.is_empty()).then_some(access),
                })
                .collect();
            (spec_access, States::Stacks(stacks))
        }
    }
}

/// `network/terraform.tfstate` → `network`, `app.tfstate` → `app`, `a/b/terraform.tfstate`
/// → `a-b`; made unique with a number.
fn unique_stack_name(key: &str, taken: &mut BTreeSet<String>) -> StackName {
    let stem = key.strip_suffix(".tfstate").unwrap_or(key);
    let stem = stem.strip_suffix("/terraform").unwrap_or(stem);
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let base = if cleaned.is_empty() { "state" } else { cleaned };
    let base: String = base.chars().take(60).collect();
    let mut candidate = base.clone();
    let mut number = 2;
    while taken.contains(&candidate) {
        candidate = format!("{base}-{number}");
        number += 1;
    }
    taken.insert(candidate.clone());
    StackName::parse(&candidate).expect("cleaned to a valid stack name")
}

/// A bucket's encryption as a spec says it; `key_field` names where it goes, for notes.
fn encryption(
    region: &Region,
    state: &BucketState,
    kms_key: Option<(&str, &[String])>,
    key_field: &str,
    notes: &mut Vec<String>,
) -> (Encryption, Option<String>) {
    let algorithm = state
        .encryption
        .as_ref()
        .map(|rule| rule.algorithm.as_str());
    match (algorithm, kms_key) {
        (Some(algorithm), Some((arn, aliases))) if algorithm.starts_with("aws:kms") => {
            let by_alias = aliases
                .first()
                .and_then(|alias| KmsKeyRef::parse(alias, Some(region)).ok());
            let reference = by_alias
                .clone()
                .or_else(|| KmsKeyRef::parse(arn, Some(region)).ok());
            match reference {
                Some(reference) => {
                    let note = if by_alias.is_some() {
                        format!("an existing key ({arn}): statebucket never changes it")
                    } else {
                        "an existing key without an alias: statebucket never changes it".to_owned()
                    };
                    (Encryption::Kms(KmsKey::Existing(reference)), Some(note))
                }
                None => {
                    notes.push(format!("the KMS key `{arn}` is not in {region}; the spec says aes256 until you name a key there in `{key_field}`"));
                    (Encryption::Aes256, None)
                }
            }
        }
        (Some(algorithm), None) if algorithm.starts_with("aws:kms") => {
            notes.push(format!("the AWS managed key aws/s3 encrypts it, which a spec cannot name: the spec says aes256, which apply would set; to keep KMS, name a customer managed key in `{key_field}` first"));
            (Encryption::Aes256, None)
        }
        _ => (Encryption::Aes256, None),
    }
}

/// The retention of statebucket's own rules when the bucket has them; otherwise what keeps
/// the bucket's history as it is: `never` (a rule of the bucket's own keeps expiring old
/// versions, or none did), never the 90-day default that would start deleting history.
fn lifecycle(bucket: &BucketState) -> (Lifecycle, Option<String>) {
    let defaults = Lifecycle::default();
    let rule = |id: &str| {
        bucket
            .lifecycle
            .iter()
            .find(|rule| rule.id.as_deref() == Some(id))
    };
    let abort = rule(ABORT_UPLOADS_RULE_ID)
        .and_then(|rule| rule.abort_incomplete_upload_days)
        .and_then(|days| Days::new(u32::try_from(days).ok()?))
        .unwrap_or(defaults.abort_incomplete_uploads_after);
    if let Some(owned) = rule(NONCURRENT_RULE_ID) {
        let days = owned
            .noncurrent_expiration
            .as_ref()
            .and_then(|expiration| expiration.noncurrent_days)
            .and_then(|days| Days::new(u32::try_from(days).ok()?));
        let lifecycle = Lifecycle {
            expire_noncurrent_after: days,
            abort_incomplete_uploads_after: abort,
        };
        return (lifecycle, None);
    }
    let foreign = bucket.lifecycle.iter().find(|rule| {
        rule.enabled
            && rule
                .noncurrent_expiration
                .as_ref()
                .is_some_and(|expiration| expiration.noncurrent_days.is_some())
    });
    let note = match foreign {
        Some(rule) => format!(
            "old versions already expire by the bucket's own rule `{}` (kept as it is), so statebucket adds no expiry of its own",
            rule.id.as_deref().unwrap_or("(no id)")
        ),
        None => "the bucket keeps every old state version; statebucket's default would expire them after 90 days: set a number of days to do so".to_owned(),
    };
    let lifecycle = Lifecycle {
        expire_noncurrent_after: None,
        abort_incomplete_uploads_after: abort,
    };
    (lifecycle, Some(note))
}

/// What statebucket always enforces that the bucket lacks: what `plan` will show.
fn hardening(bucket: &BucketState) -> Vec<String> {
    let mut notes = Vec::new();
    if bucket.versioning != Versioning::Enabled {
        notes.push(format!(
            "apply will enable versioning (now: {})",
            bucket.versioning
        ));
    }
    if bucket.public_access != PublicAccessBlock::ALL {
        notes.push(format!(
            "apply will block all public access (now: {})",
            bucket.public_access
        ));
    }
    if bucket.ownership.as_deref() != Some("BucketOwnerEnforced") {
        notes.push(format!(
            "apply will set object ownership to BucketOwnerEnforced (now: {})",
            bucket.ownership.as_deref().unwrap_or("not set")
        ));
    }
    let statements = bucket
        .policy
        .as_deref()
        .and_then(|policy| serde_json::from_str::<Value>(policy).ok())
        .map(|policy| match &policy["Statement"] {
            Value::Array(statements) => statements.len(),
            Value::Object(_) => 1,
            _ => 0,
        })
        .unwrap_or(0);
    if statements > 0 {
        notes.push(format!(
            "the bucket policy's {statements} statement(s) stay as they are; apply adds statebucket's own beside them (state access per principal, TLS-only)"
        ));
    }
    let owned = |id: &str| {
        bucket
            .lifecycle
            .iter()
            .any(|rule| rule.id.as_deref() == Some(id))
    };
    if !owned(ABORT_UPLOADS_RULE_ID) {
        notes.push("apply will add a lifecycle rule that removes unfinished uploads after 7 days; the bucket's own rules are kept".to_owned());
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{LifecycleRule, NoncurrentExpiration, RuleFilter, SseRule};
    use crate::scaffold::spec_text;
    use crate::spec::parse_spec;

    const ACCOUNT: &str = "123456789012";

    fn request() -> ImportRequest {
        ImportRequest {
            env: EnvName::parse("legacy").unwrap(),
            bucket: BucketName::parse("hand-made-state").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            account: AccountId::parse(ACCOUNT).unwrap(),
            terraform_profile: Some(ProfileName::parse("terraform").unwrap()),
            bootstrap_profile: None,
        }
    }

    fn bucket(policy: Option<&str>) -> BucketState {
        BucketState {
            region: "eu-west-1".into(),
            versioning: Versioning::Enabled,
            encryption: Some(SseRule {
                algorithm: "AES256".into(),
                kms_key_id: None,
                bucket_key: false,
            }),
            public_access: PublicAccessBlock::ALL,
            ownership: None,
            policy: policy.map(str::to_owned),
            tags: BTreeMap::from([("team".into(), "platform".into())]),
            lifecycle: Vec::new(),
            lifecycle_minimum_object_size: None,
            logging: None,
            object_lock: None,
        }
    }

    /// The policy the setup articles show: a role and a user on one key, a foreign deny.
    const HAND_MADE: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Sid": "List", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::123456789012:role/terraform-ci", "arn:aws:iam::123456789012:user/terraform"]},
         "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::hand-made-state"},
        {"Sid": "State", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::123456789012:role/terraform-ci", "arn:aws:iam::123456789012:user/terraform"]},
         "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::hand-made-state/prod/terraform.tfstate", "arn:aws:s3:::hand-made-state/prod/terraform.tfstate.tflock"]},
        {"Sid": "Audit", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::123456789012:role/ops/auditor"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::hand-made-state/*"},
        {"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::hand-made-state/*"}
      ]}"#;

    fn import(state: &BucketState, keys: &[String]) -> (Adopted, crate::spec::EnvSpec) {
        let adopted = adopt(
            &request(),
            &LiveBucket {
                state,
                kms_key: None,
                state_keys: keys,
                lock_table: None,
                replica: None,
            },
        );
        let text = spec_text(&adopted.spec);
        let spec = parse_spec("environments/legacy.yaml", "legacy", &text)
            .unwrap_or_else(|diagnostics| panic!("{text}\n{diagnostics:#?}"));
        (adopted, spec)
    }

    #[test]
    fn one_granted_key_becomes_the_backend_with_its_writers_and_readers() {
        let state = bucket(Some(HAND_MADE));
        let (adopted, spec) = import(&state, &[]);
        assert_eq!(spec.stacks.len(), 1);
        assert_eq!(spec.stacks[0].key.as_str(), "prod/terraform.tfstate");
        let shown: Vec<String> = spec
            .access
            .writers
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["terraform", "terraform-ci"]);
        let readers: Vec<String> = spec
            .access
            .readers
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(readers, ["arn:aws:iam::123456789012:role/ops/auditor"]);
        assert_eq!(
            spec.account_id.as_ref().map(AccountId::as_str),
            Some(ACCOUNT)
        );
        assert_eq!(
            spec.bucket.tags.get("team").map(String::as_str),
            Some("platform")
        );
        assert_eq!(spec.bucket.lifecycle.expire_noncurrent_after, None);
        let notes = adopted.notes.join("\n");
        for expected in [
            "arn:aws:iam::123456789012:root",
            "object ownership to BucketOwnerEnforced",
            "4 statement(s) stay as they are",
            "keeps every old state version",
        ] {
            assert!(notes.contains(expected), "{expected}: {notes}");
        }
        assert!(!notes.contains("public access"), "{notes}");
    }

    #[test]
    fn several_keys_become_stacks_with_their_own_principals() {
        let policy = r#"{"Statement": [
          {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/network-ci"},
           "Action": "s3:*", "Resource": "arn:aws:s3:::hand-made-state/network/terraform.tfstate"},
          {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:role/app-ci"]},
           "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::hand-made-state/app/terraform.tfstate"}
        ]}"#;
        let state = bucket(Some(policy));
        let (_, spec) = import(&state, &[]);
        let stacks: Vec<(String, String, Vec<String>)> = spec
            .stacks
            .iter()
            .map(|stack| {
                (
                    stack.name.to_string(),
                    stack.key.to_string(),
                    stack
                        .writers
                        .iter()
                        .flatten()
                        .map(ToString::to_string)
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            stacks,
            [
                (
                    "app".into(),
                    "app/terraform.tfstate".into(),
                    vec!["app-ci".into()]
                ),
                (
                    "network".into(),
                    "network/terraform.tfstate".into(),
                    vec!["network-ci".into()]
                ),
            ]
        );
    }

    #[test]
    fn a_wildcard_policy_takes_the_keys_of_the_states_in_the_bucket() {
        let policy = r#"{"Statement": {"Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::123456789012:user/terraform"},
          "Action": "s3:*", "Resource": "arn:aws:s3:::hand-made-state/*"}}"#;
        let state = bucket(Some(policy));
        let (_, spec) = import(
            &state,
            &[
                "live/terraform.tfstate".into(),
                "env:/staging/live/terraform.tfstate".into(),
            ],
        );
        assert_eq!(spec.stacks[0].key.as_str(), "live/terraform.tfstate");
        let (adopted, spec) = import(&state, &[]);
        assert_eq!(spec.stacks[0].key.as_str(), "terraform.tfstate");
        assert!(
            adopted
                .notes
                .iter()
                .any(|note| note.contains("placeholder `terraform.tfstate`"))
        );
        assert!(spec_text(&adopted.spec).contains("PLACEHOLDER"));
    }

    #[test]
    fn no_policy_gives_a_placeholder_writer_said_clearly() {
        let mut state = bucket(None);
        state.public_access = PublicAccessBlock::default();
        state.versioning = Versioning::Suspended;
        let (adopted, spec) = import(&state, &["terraform.tfstate".into()]);
        assert_eq!(spec.access.writers[0].to_string(), "terraform");
        let notes = adopted.notes.join("\n");
        for expected in [
            "placeholder user `terraform`",
            "enable versioning (now: Suspended)",
            "block all public access (now: none blocked)",
        ] {
            assert!(notes.contains(expected), "{expected}: {notes}");
        }
    }

    #[test]
    fn retention_follows_the_bucket_never_the_default_that_deletes_history() {
        let mut state = bucket(Some(HAND_MADE));
        state.lifecycle = vec![LifecycleRule {
            id: Some("expire-old-versions".into()),
            enabled: true,
            filter: RuleFilter::Prefix(String::new()),
            expiration: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
            noncurrent_expiration: Some(NoncurrentExpiration {
                noncurrent_days: Some(30),
                newer_noncurrent_versions: None,
            }),
            abort_incomplete_upload_days: None,
        }];
        let (adopted, spec) = import(&state, &[]);
        assert_eq!(spec.bucket.lifecycle.expire_noncurrent_after, None);
        assert!(
            adopted
                .notes
                .iter()
                .chain(&adopted.spec.lifecycle_note)
                .any(|note| note.contains("`expire-old-versions`"))
        );
        let mut owned = state.lifecycle[0].clone();
        owned.id = Some(NONCURRENT_RULE_ID.into());
        state.lifecycle = vec![owned];
        let (_, spec) = import(&state, &[]);
        assert_eq!(spec.bucket.lifecycle.expire_noncurrent_after, Days::new(30));
    }

    #[test]
    fn a_kms_bucket_names_its_key_by_alias() {
        let mut state = bucket(Some(HAND_MADE));
        state.encryption = Some(SseRule {
            algorithm: "aws:kms".into(),
            kms_key_id: Some(
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into(),
            ),
            bucket_key: true,
        });
        let aliases = vec!["alias/terraform-state".to_owned()];
        let adopted = adopt(
            &request(),
            &LiveBucket {
                state: &state,
                kms_key: Some((
                    "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    &aliases,
                )),
                state_keys: &[],
                lock_table: None,
                replica: None,
            },
        );
        let text = spec_text(&adopted.spec);
        let spec = parse_spec("environments/legacy.yaml", "legacy", &text).unwrap();
        assert_eq!(
            spec.bucket.encryption,
            Encryption::Kms(KmsKey::Existing(
                KmsKeyRef::parse("alias/terraform-state", None).unwrap()
            ))
        );
        assert!(!text.contains("create_key"), "{text}");
    }

    #[test]
    fn a_lock_table_in_use_is_kept_with_lock_both() {
        let several = r#"{"Statement": [
          {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/ci"},
           "Action": "s3:*", "Resource": ["arn:aws:s3:::hand-made-state/a/terraform.tfstate", "arn:aws:s3:::hand-made-state/b/terraform.tfstate"]}
        ]}"#;
        for policy in [HAND_MADE, several] {
            let state = bucket(Some(policy));
            let adopted = adopt(
                &request(),
                &LiveBucket {
                    state: &state,
                    kms_key: None,
                    state_keys: &[],
                    lock_table: Some("terraform-locks"),
                    replica: None,
                },
            );
            let text = spec_text(&adopted.spec);
            let spec = parse_spec("environments/legacy.yaml", "legacy", &text)
                .unwrap_or_else(|diagnostics| panic!("{text}\n{diagnostics:#?}"));
            for stack in &spec.stacks {
                assert_eq!(
                    stack.lock,
                    crate::spec::Locking::Both(TableName::parse("terraform-locks").unwrap()),
                    "{text}"
                );
            }
            assert!(
                adopted
                    .notes
                    .iter()
                    .any(|note| note.contains("`terraform-locks` has Terraform's lock schema")),
                "{:?}",
                adopted.notes
            );
        }
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(matches("*", "a/b.tfstate"));
        assert!(matches("a/*", "a/b/terraform.tfstate"));
        assert!(matches("a/?.tfstate", "a/b.tfstate"));
        assert!(!matches("a/*.tflock", "a/terraform.tfstate"));
        assert!(!matches("b/*", "a/b"));
    }

    #[test]
    fn a_replica_in_another_region_is_taken_over_and_one_in_the_same_region_is_not() {
        let state = bucket(Some(HAND_MADE));
        let mut replica_state = bucket(None);
        replica_state.object_lock = Some(crate::observed::ObjectLockState {
            enabled: true,
            default_retention: Some(crate::observed::Retention {
                mode: "COMPLIANCE".into(),
                days: None,
                years: Some(1),
            }),
        });
        let rule = ReplicationTarget {
            bucket: "hand-made-state-dr".into(),
            rule: "to-frankfurt".into(),
            owned: false,
            role: "arn:aws:iam::123456789012:role/replication".into(),
        };
        for (region, taken) in [("eu-central-1", true), ("eu-west-1", false)] {
            let region = Region::parse(region).unwrap();
            let adopted = adopt(
                &request(),
                &LiveBucket {
                    state: &state,
                    kms_key: None,
                    state_keys: &[],
                    lock_table: None,
                    replica: Some(LiveReplica {
                        name: "hand-made-state-dr",
                        region: &region,
                        state: &replica_state,
                        kms_key: None,
                        rule: &rule,
                    }),
                },
            );
            let text = spec_text(&adopted.spec);
            let spec = parse_spec("environments/legacy.yaml", "legacy", &text)
                .unwrap_or_else(|diagnostics| panic!("{text}\n{diagnostics:#?}"));
            let notes = adopted.notes.join("\n");
            match spec.bucket.replica {
                Some(replica) => {
                    assert!(taken, "{text}");
                    assert_eq!(replica.name.as_str(), "hand-made-state-dr");
                    assert_eq!(
                        replica.object_lock,
                        Some(ObjectLock {
                            mode: RetentionMode::Compliance,
                            days: Days::new(365).unwrap()
                        })
                    );
                    assert!(
                        notes.contains("remove rule `to-frankfurt` first"),
                        "{notes}"
                    );
                }
                None => {
                    assert!(!taken, "{text}");
                    assert!(notes.contains("in the bucket's own region"), "{notes}");
                }
            }
        }
    }
}
