//! `statebucket init`: a commented spec to start from, the bucket policy template to edit,
//! and the JSON Schema editors check specs with. Offline; never overwrites a spec.

use std::collections::BTreeMap;

use super::args::InitArgs;
use super::{Context, Outcome, json};
use crate::error::Error;
use crate::policy::{BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME};
use crate::project::{create_file_exclusively, write_file_atomically};
use crate::scaffold::{self, NewSpec, Principals, States};
use crate::spec::schema::{SCHEMA_PATH, json_schema_text};
use crate::spec::{
    AccountId, BucketName, Encryption, EnvName, KmsAlias, KmsKey, Lifecycle, PrincipalKind,
    PrincipalRef, ProfileName, Region, ReplicaSpec, StateKey,
};

pub fn run(context: &Context<'_>, arguments: &InitArgs) -> Result<Outcome, Error> {
    let spec = new_spec(arguments)?;
    let path = format!("environments/{}.yaml", spec.env);
    let text = scaffold::spec_text(&spec);
    if !create_file_exclusively(&path, &text)
        .map_err(|error| Error::file("write", &path, &error))?
    {
        return Err(Error::Project {
            message: format!("{path} exists; init never overwrites a spec"),
            hint: format!(
                "edit it and run `statebucket validate`, or scaffold another environment: `statebucket init {}-2`",
                spec.env
            ),
        });
    }
    let mut files = vec![json::WrittenFile {
        path: path.clone(),
        status: "written",
    }];
    files.extend(support_files()?);
    let next = vec![
        format!("$EDITOR {path}"),
        "statebucket validate".to_owned(),
        format!("statebucket plan {}", spec.env),
        format!("statebucket apply {}", spec.env),
    ];
    report(context, "init", files, Vec::new(), next);
    Ok(Outcome::Success)
}

/// The policy template (when absent: an edited one is the user's) and the JSON Schema (kept
/// current: it is generated).
pub(super) fn support_files() -> Result<Vec<json::WrittenFile>, Error> {
    let template = if std::path::Path::new(BUILTIN_TEMPLATE_NAME).exists() {
        "kept"
    } else {
        create_file_exclusively(BUILTIN_TEMPLATE_NAME, BUILTIN_TEMPLATE)
            .map_err(|error| Error::file("write", BUILTIN_TEMPLATE_NAME, &error))?;
        "written"
    };
    let existed = std::path::Path::new(SCHEMA_PATH).exists();
    let schema = match write_file_atomically(SCHEMA_PATH, &json_schema_text()) {
        Ok(false) => "unchanged",
        Ok(true) if existed => "updated",
        Ok(true) => "written",
        Err(error) => return Err(Error::file("write", SCHEMA_PATH, &error)),
    };
    Ok(vec![
        json::WrittenFile {
            path: BUILTIN_TEMPLATE_NAME.to_owned(),
            status: template,
        },
        json::WrittenFile {
            path: SCHEMA_PATH.to_owned(),
            status: schema,
        },
    ])
}

/// Prints what was written, the notes, and what to run next.
pub(super) fn report(
    context: &Context<'_>,
    command: &str,
    files: Vec<json::WrittenFile>,
    notes: Vec<String>,
    next: Vec<String>,
) {
    if context.json() {
        context.printer.data(&json::document(
            command,
            json::Scaffolded { files, notes, next },
        ));
        return;
    }
    let mut text = String::new();
    for file in &files {
        let what = match (file.path.as_str(), file.status) {
            (BUILTIN_TEMPLATE_NAME, "written") => {
                " (the built-in bucket policy template: to use an edited copy, set `access.policy_template` to it)"
            }
            (SCHEMA_PATH, "written" | "updated") => {
                " (editors complete and check specs with it: see the modeline at the top of the spec)"
            }
            _ => "",
        };
        text.push_str(&format!("{:<9} {}{what}\n", file.status, file.path));
    }
    for note in &notes {
        text.push_str(&format!("note: {note}\n"));
    }
    text.push_str("\nNext:\n");
    for command in &next {
        text.push_str(&format!("  {command}\n"));
    }
    context.printer.data(&text);
}

/// `--kms`: a key statebucket creates, aliased after the bucket; AES256 otherwise.
fn encryption(arguments: &InitArgs, bucket: &BucketName) -> Encryption {
    if arguments.kms {
        let alias = KmsAlias::parse(&format!("alias/{bucket}")).expect("bucket names make aliases");
        Encryption::Kms(KmsKey::Managed(alias))
    } else {
        Encryption::Aes256
    }
}

/// `--replica-region`: a replica named after the bucket, in a second region.
fn replica(
    arguments: &InitArgs,
    bucket: &BucketName,
    region: &Region,
) -> Result<Option<ReplicaSpec>, Error> {
    let Some(text) = &arguments.replica_region else {
        return Ok(None);
    };
    let replica_region = super::given("--replica-region", text, Region::parse)?;
    if replica_region == *region {
        return Err(Error::Usage {
            message: format!(
                "--replica-region {replica_region} is the bucket's own region; a replica there would not survive its loss"
            ),
            hint: Some("name a second region of the same partition".into()),
        });
    }
    let name = super::given("--bucket", &format!("{bucket}-replica"), BucketName::parse)?;
    Ok(Some(ReplicaSpec {
        encryption: encryption(arguments, &name),
        name,
        region: replica_region,
        object_lock: None,
        backend_file: None,
        positions: Default::default(),
    }))
}

fn new_spec(arguments: &InitArgs) -> Result<NewSpec, Error> {
    let env = super::given("ENV", &arguments.env, EnvName::parse)?;
    let region_text = super::region_or_environment(arguments.region.as_deref(), "eu-west-1");
    let region = super::given("--region", &region_text, Region::parse)?;
    let default_bucket = format!(
        "terraform-state-{}",
        env.as_str().to_ascii_lowercase().replace('_', "-")
    );
    let bucket_given = arguments.bucket.is_some();
    let bucket_text = arguments.bucket.as_deref().unwrap_or(&default_bucket);
    let bucket = super::option("--bucket", Some(bucket_text), BucketName::parse)
        .map_err(|error| match (error, bucket_given) {
            (Error::Usage { message, .. }, false) => Error::Usage {
                message,
                hint: Some("name the bucket: --bucket my-org-terraform-state".into()),
            },
            (error, _) => error,
        })?
        .expect("given");
    let profile = super::given("--profile", &arguments.profile, ProfileName::parse)?;
    let account_id = super::option(
        "--account-id",
        arguments.account_id.as_deref(),
        AccountId::parse,
    )?;
    let mut writers = Vec::new();
    for (texts, kind, flag) in [
        (&arguments.users, PrincipalKind::User, "--user"),
        (&arguments.roles, PrincipalKind::Role, "--role"),
    ] {
        for text in texts {
            writers.push(super::given(flag, text, |text| {
                PrincipalRef::parse(text, kind)
            })?);
        }
    }
    let principals_note = writers.is_empty();
    if writers.is_empty() {
        writers.push(PrincipalRef::parse("terraform", PrincipalKind::User).expect("a valid name"));
    }
    let encryption = encryption(arguments, &bucket);
    let replica = replica(arguments, &bucket, &region)?;
    let mut header = vec![
        format!("statebucket spec for environment `{env}`: one S3 bucket for Terraform state."),
        "Every key is described in the README (\"Spec reference\"); `statebucket validate` checks"
            .into(),
        format!("this file offline and `statebucket plan {env}` shows what `apply` would do."),
    ];
    if principals_note {
        header.push(
            "FILL IN: `access` lists the placeholder user `terraform`: name the IAM users and roles"
                .into(),
        );
        header.push("Terraform really runs as (--user/--role).".into());
    }
    Ok(NewSpec {
        header,
        region,
        account_id,
        profile,
        profile_note: "the AWS profile Terraform's backend uses (written into backend.hcl)".into(),
        bootstrap_profile: None,
        bucket_note: (!bucket_given)
            .then(|| format!("bucket names are global: make it yours, e.g. my-org-{bucket}")),
        bucket,
        encryption,
        encryption_note: None,
        tags: BTreeMap::from([("environment".to_owned(), env.to_string())]),
        lifecycle: Lifecycle::default(),
        lifecycle_note: None,
        logging: None,
        access: Principals {
            writers,
            readers: Vec::new(),
        },
        states: States::Backend {
            key: StateKey::parse("terraform.tfstate").expect("a valid key"),
            key_note: Some("one key per configuration: e.g. network/terraform.tfstate".into()),
        },
        lock_table: None,
        replica,
        env,
    })
}
