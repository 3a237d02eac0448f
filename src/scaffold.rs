//! New spec files as text: `statebucket init`'s scaffold and `statebucket import`'s
//! reproduction of a live bucket. One writer for both, so that what either writes is a spec
//! the validator reads (tests parse every output). Pure: the commands write the files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::spec::schema::MODELINE;
use crate::spec::{
    AccountId, BucketName, Encryption, EnvName, KmsKey, Lifecycle, Logging, PrincipalKind,
    PrincipalRef, ProfileName, Region, ReplicaSpec, RetentionMode, StackName, StateKey, TableName,
};

/// A spec to write. Notes are comments the reader must see: each says what was assumed or
/// what to fill in.
#[derive(Debug, Clone)]
pub struct NewSpec {
    pub env: EnvName,
    /// Comment lines at the top, under the modeline.
    pub header: Vec<String>,
    pub region: Region,
    pub account_id: Option<AccountId>,
    pub profile: ProfileName,
    pub profile_note: String,
    pub bootstrap_profile: Option<ProfileName>,
    pub bucket: BucketName,
    pub bucket_note: Option<String>,
    pub encryption: Encryption,
    pub encryption_note: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    pub lifecycle_note: Option<String>,
    pub logging: Option<Logging>,
    /// The spec-level writers and readers.
    pub access: Principals,
    pub states: States,
    /// A DynamoDB lock table in use: written as `lock: both` with `dynamodb_table`.
    pub lock_table: Option<TableName>,
    /// `bucket.replica` (import: a bucket the state bucket replicates into).
    pub replica: Option<ReplicaSpec>,
}

/// Users and roles, writers and readers, as they go into an `access` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    pub writers: Vec<PrincipalRef>,
    pub readers: Vec<PrincipalRef>,
}

impl Principals {
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty() && self.readers.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum States {
    /// `backend:` with one key; the note says when the key is a placeholder.
    Backend {
        key: StateKey,
        key_note: Option<String>,
    },
    /// `stacks:`, each with its key and, when they differ from the spec's, its principals.
    Stacks(Vec<NewStack>),
}

#[derive(Debug, Clone)]
pub struct NewStack {
    pub name: StackName,
    pub key: StateKey,
    pub access: Option<Principals>,
}

/// The spec file's text.
pub fn spec_text(spec: &NewSpec) -> String {
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    top_lines(&mut line, spec);
    bucket_lines(&mut line, spec);
    replica_lines(&mut line, spec);
    access_lines(&mut line, spec);
    state_lines(&mut line, spec);
    out
}

/// The modeline, the header and the top-level keys: region, account, the two profiles.
fn top_lines(line: &mut impl FnMut(&str), spec: &NewSpec) {
    line(MODELINE);
    for header in &spec.header {
        line(&comment(header));
    }
    line(&format!("region: {}", scalar(spec.region.as_str())));
    match &spec.account_id {
        Some(account) => line(&noted(
            &format!("account_id: \"{account}\""),
            "refuse to act with credentials of any other account",
        )),
        None => line(&noted(
            "# account_id: \"123456789012\"",
            "refuse to act with credentials of any other account",
        )),
    }
    line(&noted(
        &format!("profile: {}", scalar(spec.profile.as_str())),
        &spec.profile_note,
    ));
    match &spec.bootstrap_profile {
        Some(profile) => line(&noted(
            &format!("bootstrap_profile: {}", scalar(profile.as_str())),
            "statebucket's own identity; never written into backend.hcl",
        )),
        None => line(&noted(
            "# bootstrap_profile: admin",
            "statebucket's own identity when it creates and repairs",
        )),
    }
}

/// `bucket:` with its name, encryption, tags, lifecycle and logging.
fn bucket_lines(line: &mut impl FnMut(&str), spec: &NewSpec) {
    line("bucket:");
    line(&noted(
        &format!("  name: {}", scalar(spec.bucket.as_str())),
        spec.bucket_note.as_deref().unwrap_or_default(),
    ));
    match &spec.encryption {
        Encryption::Aes256 => line(&noted(
            "  encryption: aes256",
            spec.encryption_note
                .as_deref()
                .unwrap_or("or { kms_key: alias/NAME, create_key: true }"),
        )),
        Encryption::Kms(key) => {
            line("  encryption:");
            line(&noted(
                &format!("    kms_key: {}", scalar(key.reference())),
                spec.encryption_note.as_deref().unwrap_or_default(),
            ));
            if matches!(key, KmsKey::Managed(_)) {
                line(&noted(
                    "    create_key: true",
                    "created with rotation when the alias is missing",
                ));
            }
        }
    }
    if !spec.tags.is_empty() {
        line("  tags:");
        for (key, value) in &spec.tags {
            line(&format!("    {}: {}", scalar(key), scalar(value)));
        }
    }
    let defaults = Lifecycle::default();
    if spec.lifecycle == defaults && spec.lifecycle_note.is_none() {
        line("  # lifecycle:");
        line(&noted(
            "  #   expire_noncurrent_after_days: 90",
            "how long old state versions are kept, or `never`",
        ));
    } else {
        if let Some(note) = &spec.lifecycle_note {
            line(&format!("  {}", comment(note)));
        }
        line("  lifecycle:");
        let noncurrent = spec
            .lifecycle
            .expire_noncurrent_after
            .map_or("never".to_owned(), |days| days.get().to_string());
        line(&format!("    expire_noncurrent_after_days: {noncurrent}"));
        if spec.lifecycle.abort_incomplete_uploads_after != defaults.abort_incomplete_uploads_after
        {
            line(&format!(
                "    abort_incomplete_uploads_after_days: {}",
                spec.lifecycle.abort_incomplete_uploads_after.get()
            ));
        }
    }
    if let Some(logging) = &spec.logging {
        line("  logging:");
        line(&format!("    bucket: {}", scalar(logging.bucket.as_str())));
        line(&format!("    prefix: {}", quoted(logging.prefix.as_str())));
    }
}

/// `bucket.replica`, when the new spec has one.
fn replica_lines(line: &mut impl FnMut(&str), spec: &NewSpec) {
    if let Some(replica) = &spec.replica {
        line("  replica:");
        line(&noted(
            &format!("    region: {}", replica.region),
            "the copy that survives the loss of the bucket's region",
        ));
        line(&format!("    name: {}", scalar(replica.name.as_str())));
        match &replica.encryption {
            Encryption::Kms(KmsKey::Managed(alias)) => line(&noted(
                &format!(
                    "    encryption: {{ kms_key: {}, create_key: true }}",
                    scalar(alias.as_str())
                ),
                "a key of its own, in its region",
            )),
            Encryption::Kms(key) => line(&format!(
                "    encryption: {{ kms_key: {} }}",
                scalar(key.reference())
            )),
            Encryption::Aes256 => {}
        }
        if let Some(lock) = replica.object_lock {
            let mode = match lock.mode {
                RetentionMode::Governance => "governance",
                RetentionMode::Compliance => "compliance",
            };
            line(&noted(
                &format!("    object_lock: {{ mode: {mode}, days: {} }}", lock.days),
                "never shortened or turned off by statebucket",
            ));
        }
    }
}

/// `access:`, or a note that every stack names its own principals.
fn access_lines(line: &mut impl FnMut(&str), spec: &NewSpec) {
    if spec.access.is_empty() {
        line("# access:                         # every stack below names its own principals");
    } else {
        line("access:");
        line(
            "  # Every identity Terraform runs as, users AND roles: a bucket policy that names only",
        );
        line("  # the role locks out the user (and the reverse).");
        principals(line, "  ", &spec.access);
        if spec.access.readers.is_empty() {
            line(&noted("  # readers:", "optional: pipelines that only plan"));
            line("  #   roles: [terraform-plan]");
        }
    }
}

/// `backend:`, or `stack_defaults:` and `stacks:`.
fn state_lines(line: &mut impl FnMut(&str), spec: &NewSpec) {
    match &spec.states {
        States::Backend { key, key_note } => {
            line("backend:");
            line(&noted(
                &format!("  key: {}", scalar(key.as_str())),
                key_note.as_deref().unwrap_or_default(),
            ));
            line(&noted(
                &format!("  # file: environments/{}/backend.hcl", spec.env),
                "the default",
            ));
            match &spec.lock_table {
                Some(table) => {
                    line(&noted(
                        "  lock: both",
                        "the lockfile and the existing table",
                    ));
                    line(&format!("  dynamodb_table: {}", scalar(table.as_str())));
                }
                None => line(&noted(
                    "  # lock: lockfile",
                    "lockfile (Terraform >= 1.10), both, or dynamodb",
                )),
            }
        }
        States::Stacks(stacks) => {
            if let Some(table) = &spec.lock_table {
                line("stack_defaults:");
                line(&noted(
                    "  lock: both",
                    "the lockfile and the existing table",
                ));
                line(&format!("  dynamodb_table: {}", scalar(table.as_str())));
            }
            line("stacks:");
            for stack in stacks {
                line(&format!("  {}:", scalar(stack.name.as_str())));
                line(&format!("    key: {}", scalar(stack.key.as_str())));
                if let Some(access) = &stack.access {
                    line("    access:");
                    principals(line, "      ", access);
                }
            }
        }
    }
}

/// `users:`, `roles:` and `readers:` lines at `indent`.
fn principals(line: &mut impl FnMut(&str), indent: &str, principals: &Principals) {
    let (users, roles) = split(&principals.writers);
    if !users.is_empty() {
        line(&format!("{indent}users: {}", list(&users)));
    }
    if !roles.is_empty() {
        line(&format!("{indent}roles: {}", list(&roles)));
    }
    if !principals.readers.is_empty() {
        let (users, roles) = split(&principals.readers);
        line(&format!("{indent}readers:"));
        if !users.is_empty() {
            line(&format!("{indent}  users: {}", list(&users)));
        }
        if !roles.is_empty() {
            line(&format!("{indent}  roles: {}", list(&roles)));
        }
    }
}

fn split(principals: &[PrincipalRef]) -> (Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    for principal in principals {
        match principal.kind() {
            PrincipalKind::User => users.push(principal.to_string()),
            PrincipalKind::Role => roles.push(principal.to_string()),
        }
    }
    (users, roles)
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| scalar(item)).collect();
    format!("[{}]", items.join(", "))
}

fn comment(text: &str) -> String {
    if text.is_empty() {
        "#".to_owned()
    } else {
        format!("# {text}")
    }
}

/// `code` with `note` as a comment, aligned at column 35 when it fits.
fn noted(code: &str, note: &str) -> String {
    if note.is_empty() {
        code.to_owned()
    } else {
        format!("{code:<34} # {note}")
    }
}

/// `text` as a YAML scalar: plain when YAML 1.1 and 1.2 readers both read it back as this
/// string (in block and flow context), double-quoted otherwise.
pub fn scalar(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { text.to_owned() } else { quoted(text) }
}

/// `text` double-quoted, with YAML's escapes.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{KmsAlias, parse_spec};

    fn principal(text: &str, kind: PrincipalKind) -> PrincipalRef {
        PrincipalRef::parse(text, kind).unwrap()
    }

    pub(crate) fn minimal() -> NewSpec {
        NewSpec {
            env: EnvName::parse("dev").unwrap(),
            header: vec!["statebucket spec for `dev`".into()],
            region: Region::parse("eu-west-1").unwrap(),
            account_id: None,
            profile: ProfileName::parse("terraform").unwrap(),
            profile_note: "the AWS profile Terraform's backend uses".into(),
            bootstrap_profile: None,
            bucket: BucketName::parse("terraform-state-dev").unwrap(),
            bucket_note: None,
            encryption: Encryption::Aes256,
            encryption_note: None,
            tags: BTreeMap::new(),
            lifecycle: Lifecycle::default(),
            lifecycle_note: None,
            logging: None,
            access: Principals {
                writers: vec![principal("terraform", PrincipalKind::User)],
                readers: Vec::new(),
            },
            states: States::Backend {
                key: StateKey::parse("terraform.tfstate").unwrap(),
                key_note: None,
            },
            lock_table: None,
            replica: None,
        }
    }

    fn parses(spec: &NewSpec) -> crate::spec::EnvSpec {
        let text = spec_text(spec);
        parse_spec("environments/dev.yaml", "dev", &text)
            .unwrap_or_else(|diagnostics| panic!("{text}\n{diagnostics:#?}"))
    }

    #[test]
    fn the_minimal_spec_reads_back_as_written() {
        let spec = minimal();
        let text = spec_text(&spec);
        assert!(text.starts_with(MODELINE), "{text}");
        let parsed = parses(&spec);
        assert_eq!(parsed.bucket.name.as_str(), "terraform-state-dev");
        assert_eq!(parsed.bucket.encryption, Encryption::Aes256);
        assert_eq!(parsed.bucket.lifecycle, Lifecycle::default());
        assert_eq!(parsed.stacks[0].key.as_str(), "terraform.tfstate");
        assert_eq!(parsed.access.writers, spec.access.writers);
    }

    #[test]
    fn every_part_reads_back_as_written() {
        let mut spec = minimal();
        spec.account_id = Some(AccountId::parse("123456789012").unwrap());
        spec.bootstrap_profile = Some(ProfileName::parse("admin").unwrap());
        spec.encryption = Encryption::Kms(KmsKey::Managed(
            KmsAlias::parse("alias/terraform-state").unwrap(),
        ));
        spec.tags = BTreeMap::from([
            ("team".to_owned(), "platform".to_owned()),
            ("cost:center".to_owned(), "42".to_owned()),
            ("on".to_owned(), "yes \"really\"".to_owned()),
        ]);
        spec.lifecycle = Lifecycle {
            expire_noncurrent_after: None,
            abort_incomplete_uploads_after: crate::spec::Days::new(3).unwrap(),
        };
        spec.lifecycle_note = Some("kept as the bucket had it".into());
        spec.access.writers.push(principal(
            "arn:aws:iam::123456789012:role/ci/terraform",
            PrincipalKind::Role,
        ));
        spec.access.readers = vec![principal("terraform-plan", PrincipalKind::Role)];
        spec.states = States::Stacks(vec![
            NewStack {
                name: StackName::parse("network").unwrap(),
                key: StateKey::parse("network/terraform.tfstate").unwrap(),
                access: Some(Principals {
                    writers: vec![principal("network-ci", PrincipalKind::Role)],
                    readers: Vec::new(),
                }),
            },
            NewStack {
                name: StackName::parse("app").unwrap(),
                key: StateKey::parse("app/terraform.tfstate").unwrap(),
                access: None,
            },
        ]);
        let parsed = parses(&spec);
        assert_eq!(parsed.bucket.tags, spec.tags);
        assert_eq!(parsed.bucket.lifecycle, spec.lifecycle);
        assert_eq!(parsed.bucket.encryption, spec.encryption);
        assert_eq!(parsed.access.writers, spec.access.writers);
        assert_eq!(parsed.access.readers, spec.access.readers);
        assert_eq!(parsed.stacks.len(), 2);
        assert_eq!(
            parsed.stacks[0].writers,
            Some(vec![principal("network-ci", PrincipalKind::Role)])
        );
        assert_eq!(parsed.stacks[1].writers, None);
    }

    #[test]
    fn scalars_are_quoted_when_yaml_would_read_them_otherwise() {
        assert_eq!(scalar("terraform-state"), "terraform-state");
        for tricky in ["yes", "No", "123", "1e3", "@admin", "a: b", "", "#x", "~"] {
            assert!(scalar(tricky).starts_with('"'), "{tricky}");
        }
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
    }
}
