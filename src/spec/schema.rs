//! The spec's schema: every key of a spec file, its shape and what it means, in one place.
//!
//! The walker in `parse` takes its keys from here: a key it reports as unknown is one this
//! schema does not list, and taking a key the schema does not list is a bug that the tests
//! catch (debug assertion); a test also proves it takes every key listed. `statebucket
//! schema` renders the same tree as JSON Schema for editors (yaml-language-server), so the
//! editor's completion and the validator cannot disagree about which keys exist. The JSON
//! Schema is coarser than the validator: it checks keys, types, enums and simple patterns;
//! naming rules, cross-field rules and AWS lookups remain `statebucket validate`'s.

use serde_json::{Map, Value, json};

/// The shape of a value.
#[derive(Debug)]
pub enum Shape {
    /// A string; `pattern` is a JSON Schema regex the validator's rules imply (a necessary
    /// condition, not a sufficient one).
    Text {
        pattern: Option<&'static str>,
        max_length: Option<u32>,
    },
    Boolean,
    /// Whole days from 1 to 36500, or (when `never` is allowed) the word `never`.
    Days {
        never: bool,
    },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A 12-digit account id, quoted or not.
    AccountId,
    /// A mapping with these keys.
    Object(&'static Object),
    /// A mapping from free names (matching `key_pattern`) to values of one shape.
    Named {
        key_pattern: &'static str,
        value: &'static Shape,
        min: u32,
        max: Option<u32>,
    },
    /// A list of values of one shape, each once.
    List(&'static Shape),
    /// Any one of these shapes.
    AnyOf(&'static [Shape]),
    /// A tag value: YAML may read it as a string, a number or a boolean; all become strings.
    TagValue,
}

/// A mapping with a fixed set of keys.
#[derive(Debug)]
pub struct Object {
    /// The name of its JSON Schema definition.
    pub name: &'static str,
    pub description: &'static str,
    pub fields: &'static [Field],
    pub required: &'static [&'static str],
    /// Each pair: the first key needs the second.
    pub needs: &'static [(&'static str, &'static str)],
    /// Exactly one key of each group is given.
    pub exactly_one_of: &'static [&'static [&'static str]],
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub description: &'static str,
}

impl Object {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.fields.iter().map(|field| field.name).collect()
    }
}

const fn text(pattern: Option<&'static str>) -> Shape {
    Shape::Text {
        pattern,
        max_length: None,
    }
}

const fn field(name: &'static str, shape: Shape, description: &'static str) -> Field {
    Field {
        name,
        shape,
        description,
    }
}

const fn object(name: &'static str, description: &'static str, fields: &'static [Field]) -> Object {
    Object {
        name,
        description,
        fields,
        required: &[],
        needs: &[],
        exactly_one_of: &[],
    }
}

const IAM_NAME_OR_ARN: &str =
    r"^([A-Za-z0-9+=,.@_-]{1,64}|arn:aws[a-z-]*:iam::[0-9]{12}:(user|role)/.+)$";
const RELATIVE_PATH: &str = r"^[^/].*$";
const PROFILE: &str = r"^[A-Za-z0-9_.@+/:-]{1,128}$";
const USERS: Field = field(
    "users",
    Shape::List(&text(Some(IAM_NAME_OR_ARN))),
    "IAM users (names or ARNs) Terraform runs as",
);
const ROLES: Field = field(
    "roles",
    Shape::List(&text(Some(IAM_NAME_OR_ARN))),
    "IAM roles (names or ARNs) Terraform runs as",
);

pub static READERS: Object = object(
    "readers",
    "the read-only tier: read state, take and release the lock, never write state (pipelines that only plan)",
    &[USERS, ROLES],
);

const READERS_FIELD: Field = field(
    "readers",
    Shape::Object(&READERS),
    "read-only principals (e.g. `roles: [terraform-plan]`)",
);

pub static ACCESS: Object = object(
    "access",
    "who may use the state: the writers (and readers) of every stack that names none, and the bucket policy's options",
    &[
        USERS,
        ROLES,
        READERS_FIELD,
        field(
            "policy_template",
            text(Some(r"^[^/].*\.json$")),
            "a bucket policy template under the project root, e.g. policies/state-access.json (default: the built-in one)",
        ),
        field(
            "exclusive",
            Shape::Boolean,
            "deny every principal not listed (needs break_glass_role)",
        ),
        field(
            "break_glass_role",
            text(Some(IAM_NAME_OR_ARN)),
            "the role that stays able to reach the state under `exclusive: true`",
        ),
        field(
            "attach_identity_policy",
            Shape::Boolean,
            "attach the least-privilege IAM policy to each listed principal",
        ),
    ],
);

pub static STACK_ACCESS: Object = object(
    "stack_access",
    "this stack's own principals: they replace the spec's writers (and readers) for this stack's key",
    &[USERS, ROLES, READERS_FIELD],
);

const KEY: Field = field(
    "key",
    text(Some(r"^[^/](.*[^/])?$")),
    "the state object's key, e.g. app/terraform.tfstate",
);
const FILE: Field = field(
    "file",
    text(Some(r"^[^/].*\.(hcl|tfbackend)$")),
    "where to write this state's backend.hcl, relative to the project root",
);
const PROFILE_FIELD: Field = field(
    "profile",
    text(Some(PROFILE)),
    "the AWS profile Terraform's backend uses for this state (default: the spec's `profile`)",
);
const WORKSPACE_KEY_PREFIX: Field = field(
    "workspace_key_prefix",
    text(Some(r"^[^/](.*[^/])?$")),
    "where non-default workspaces keep their state (Terraform's default: env:)",
);
const ROLE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$";
const SESSION_NAME_PATTERN: &str = r"^[A-Za-z0-9_+=,.@-]{2,64}$";
const DURATION_PATTERN: &str = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$";
const POLICY_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$";
const ROLE_ARN: Field = field("role_arn", text(Some(ROLE_ARN_PATTERN)), "the role's ARN");
const SESSION_NAME: Field = field(
    "session_name",
    text(Some(SESSION_NAME_PATTERN)),
    "the session's name, as CloudTrail shows it",
);
const DURATION: Field = field(
    "duration",
    text(Some(DURATION_PATTERN)),
    "how long the session lasts: 15m to 12h, e.g. 1h",
);
const POLICY_ARNS: Field = field(
    "policy_arns",
    Shape::List(&text(Some(POLICY_ARN_PATTERN))),
    "managed policies that further limit the session",
);

pub const ASSUME_ROLE_OBJECT: Object = Object {
    required: &["role_arn"],
    ..object(
        "assume_role",
        "a role the backend assumes on top of its credentials (Terraform's `assume_role = { … }`)",
        &[
            ROLE_ARN,
            field(
                "external_id",
                text(Some(r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")),
                "the external id the role's trust policy requires",
            ),
            SESSION_NAME,
            DURATION,
            field(
                "tags",
                Shape::Named {
                    key_pattern: r"^.{1,128}$",
                    value: &text(None),
                    min: 0,
                    max: Some(50),
                },
                "session tags",
            ),
            field(
                "transitive_tag_keys",
                Shape::List(&text(None)),
                "keys of `tags` that pass on to roles assumed from this session",
            ),
            field(
                "source_identity",
                text(Some(SESSION_NAME_PATTERN)),
                "the source identity set on the session (Terraform only)",
            ),
            POLICY_ARNS,
            field(
                "policy",
                text(Some(r"^\s*\{")),
                "an inline session policy (a JSON object)",
            ),
        ],
    )
};

pub const WEB_IDENTITY: Object = Object {
    required: &["role_arn", "token_file"],
    ..object(
        "web_identity",
        "OIDC from CI (GitHub Actions, GitLab): the backend exchanges the token in token_file for the role's credentials; no profile is used",
        &[
            ROLE_ARN,
            field(
                "token_file",
                text(None),
                "the file CI writes the OIDC token to (the token itself is a credential and never goes in a spec)",
            ),
            SESSION_NAME,
            DURATION,
            POLICY_ARNS,
        ],
    )
};

const ASSUME_ROLE: Field = field(
    "assume_role",
    Shape::AnyOf(&[
        text(Some(ROLE_ARN_PATTERN)),
        Shape::Object(&ASSUME_ROLE_OBJECT),
    ]),
    "a role the backend assumes: its ARN, or `{ role_arn, external_id, session_name, duration, tags, transitive_tag_keys, source_identity, policy_arns, policy }`",
);
const WEB_IDENTITY_FIELD: Field = field(
    "web_identity",
    Shape::Object(&WEB_IDENTITY),
    "authenticate the backend with an OIDC token instead of a profile (assume_role_with_web_identity)",
);
const FORBIDDEN_ACCOUNT_IDS: Field = field(
    "forbidden_account_ids",
    Shape::List(&Shape::AccountId),
    "accounts whose credentials Terraform refuses (instead of the spec's account_id, which allows only one)",
);
const STS_REGION: Field = field(
    "sts_region",
    text(Some(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")),
    "the region of the STS endpoint the backend calls",
);
const SHARED_CONFIG_FILES: Field = field(
    "shared_config_files",
    Shape::List(&text(None)),
    "AWS config files the backend reads instead of ~/.aws/config",
);
const SHARED_CREDENTIALS_FILES: Field = field(
    "shared_credentials_files",
    Shape::List(&text(None)),
    "AWS credentials files the backend reads instead of ~/.aws/credentials",
);
const USE_FIPS_ENDPOINT: Field = field(
    "use_fips_endpoint",
    Shape::Boolean,
    "FIPS endpoints for S3 and STS",
);
const USE_DUALSTACK_ENDPOINT: Field = field(
    "use_dualstack_endpoint",
    Shape::Boolean,
    "dual-stack (IPv6) endpoints",
);
const TERRAFORM_DIR: Field = field(
    "terraform_dir",
    text(Some(RELATIVE_PATH)),
    "the Terraform directory that uses this state (doctor looks there for provider credentials the backend ignores)",
);
const LOCK: Field = field(
    "lock",
    Shape::Choice(&["lockfile", "dynamodb", "both"]),
    "how Terraform locks the state: lockfile (S3, Terraform >= 1.10), both (while older runners remain), dynamodb (legacy)",
);
const DYNAMODB_TABLE: Field = field(
    "dynamodb_table",
    text(Some(r"^[A-Za-z0-9_.-]{3,255}$")),
    "the lock table with `lock: dynamodb` or `both` (default: <bucket>-locks)",
);

pub static BACKEND: Object = Object {
    required: &["key"],
    ..object(
        "backend",
        "the one state this bucket holds (or list several under `stacks`)",
        &[
            KEY,
            FILE,
            PROFILE_FIELD,
            WORKSPACE_KEY_PREFIX,
            ASSUME_ROLE,
            TERRAFORM_DIR,
            LOCK,
            DYNAMODB_TABLE,
            WEB_IDENTITY_FIELD,
            FORBIDDEN_ACCOUNT_IDS,
            STS_REGION,
            SHARED_CONFIG_FILES,
            SHARED_CREDENTIALS_FILES,
            USE_FIPS_ENDPOINT,
            USE_DUALSTACK_ENDPOINT,
        ],
    )
};

pub static STACK: Object = Object {
    required: &["key"],
    ..object(
        "stack",
        "one state in this bucket: its key, backend file, principals and backend options",
        &[
            KEY,
            FILE,
            field(
                "access",
                Shape::Object(&STACK_ACCESS),
                "this stack's own principals (default: the spec's `access`)",
            ),
            PROFILE_FIELD,
            WORKSPACE_KEY_PREFIX,
            ASSUME_ROLE,
            TERRAFORM_DIR,
            LOCK,
            DYNAMODB_TABLE,
            WEB_IDENTITY_FIELD,
            FORBIDDEN_ACCOUNT_IDS,
            STS_REGION,
            SHARED_CONFIG_FILES,
            SHARED_CREDENTIALS_FILES,
            USE_FIPS_ENDPOINT,
            USE_DUALSTACK_ENDPOINT,
        ],
    )
};

pub static STACK_DEFAULTS: Object = object(
    "stack_defaults",
    "backend options every stack takes unless it sets its own",
    &[
        PROFILE_FIELD,
        WORKSPACE_KEY_PREFIX,
        ASSUME_ROLE,
        TERRAFORM_DIR,
        LOCK,
        DYNAMODB_TABLE,
        WEB_IDENTITY_FIELD,
        FORBIDDEN_ACCOUNT_IDS,
        STS_REGION,
        SHARED_CONFIG_FILES,
        SHARED_CREDENTIALS_FILES,
        USE_FIPS_ENDPOINT,
        USE_DUALSTACK_ENDPOINT,
    ],
);

pub static KMS_ENCRYPTION: Object = Object {
    required: &["kms_key"],
    ..object(
        "kms_encryption",
        "SSE-KMS with a customer managed key",
        &[
            field(
                "kms_key",
                text(Some(
                    r"^(alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:.+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$",
                )),
                "alias/NAME, a key id or a key ARN in the bucket's region",
            ),
            field(
                "create_key",
                Shape::Boolean,
                "create the key (with rotation) and its alias when missing; needs an alias",
            ),
        ],
    )
};

pub static LIFECYCLE: Object = object(
    "lifecycle",
    "what statebucket's lifecycle rules keep; rules of others are kept as they are",
    &[
        field(
            "expire_noncurrent_after_days",
            Shape::Days { never: true },
            "days an old state version is kept (default 90), or `never`",
        ),
        field(
            "abort_incomplete_uploads_after_days",
            Shape::Days { never: false },
            "days before an unfinished multipart upload is removed (default 7)",
        ),
    ],
);

pub static LOGGING: Object = Object {
    required: &["bucket"],
    ..object(
        "logging",
        "S3 server access logging into a separate log bucket in the same account and region",
        &[
            field(
                "bucket",
                text(Some(BUCKET_NAME)),
                "the log bucket (must exist)",
            ),
            field(
                "prefix",
                Shape::Text {
                    pattern: None,
                    max_length: Some(512),
                },
                "the log objects' key prefix (default: <bucket>/)",
            ),
        ],
    )
};

pub static TOFU_ENCRYPTION: Object = object(
    "opentofu_encryption",
    "OpenTofu state and plan encryption with an aws_kms key provider and aes_gcm, written beside each backend.hcl",
    &[
        field(
            "kms_key",
            text(Some(
                r"^(alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:.+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$",
            )),
            "an existing key in the bucket's region, or with create_key the alias of one to create (default: the bucket's KMS key)",
        ),
        field(
            "create_key",
            Shape::Boolean,
            "create a dedicated key (rotation on) behind the alias when missing",
        ),
        field(
            "phase",
            Shape::Choice(&["migrate", "enforce"]),
            "migrate (default): reads unencrypted state, writes encrypted; enforce: only encrypted",
        ),
    ],
);

pub static OPENTOFU: Object = object(
    "opentofu",
    "OpenTofu settings",
    &[field(
        "encryption",
        Shape::Object(&TOFU_ENCRYPTION),
        "client-side encryption of state and plans",
    )],
);

pub static COMPAT: Object = object(
    "compat",
    "an S3-compatible store: the AWS features it lacks are not managed (the plan names each), and backend.hcl skips AWS-only checks",
    &[
        field(
            "lacks",
            Shape::List(&Shape::Choice(&[
                "iam",
                "kms",
                "public_access_block",
                "ownership_controls",
                "tagging",
                "sts",
            ])),
            "AWS features the store does not implement",
        ),
        field(
            "skip_s3_checksum",
            Shape::Boolean,
            "the store rejects the SDK's checksum headers (doctor tells)",
        ),
    ],
);

const BUCKET_NAME: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
const REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";

pub static OBJECT_LOCK: Object = Object {
    required: &["mode", "days"],
    ..object(
        "object_lock",
        "Object Lock on the replica: every state version is kept at least this long; never shortened or turned off by statebucket",
        &[
            field(
                "mode",
                Shape::Choice(&["governance", "compliance"]),
                "governance: s3:BypassGovernanceRetention may still delete; compliance: nobody can",
            ),
            field(
                "days",
                Shape::Days { never: false },
                "the default retention of each new version, in days",
            ),
        ],
    )
};

pub static REPLICA: Object = Object {
    required: &["region"],
    ..object(
        "replica",
        "a replica of every state in a second region (S3 replication), and a failover backend file",
        &[
            field(
                "region",
                text(Some(REGION)),
                "the replica's region; not the bucket's",
            ),
            field(
                "name",
                text(Some(BUCKET_NAME)),
                "the replica bucket's name (default: <bucket>-replica)",
            ),
            field(
                "encryption",
                Shape::AnyOf(&[
                    Shape::Choice(&["aes256", "AES256"]),
                    Shape::Object(&KMS_ENCRYPTION),
                ]),
                "`aes256` (default), or a KMS key in the replica's region",
            ),
            field(
                "object_lock",
                Shape::Object(&OBJECT_LOCK),
                "Object Lock on the replica",
            ),
            field(
                "backend_file",
                text(Some(RELATIVE_PATH)),
                "the failover backend file (one-state specs; default: backend.dr.hcl beside backend.hcl)",
            ),
        ],
    )
};

pub static BUCKET: Object = Object {
    required: &["name"],
    ..object(
        "bucket",
        "the state bucket: created when missing, then versioned, encrypted and closed to the public",
        &[
            field(
                "name",
                text(Some(BUCKET_NAME)),
                "the bucket's name (S3 naming rules)",
            ),
            field(
                "encryption",
                Shape::AnyOf(&[
                    Shape::Choice(&["aes256", "AES256"]),
                    Shape::Object(&KMS_ENCRYPTION),
                ]),
                "`aes256` (default), or `{ kms_key: alias/NAME, create_key: true }`",
            ),
            field(
                "tags",
                Shape::Named {
                    key_pattern: r"^(?![aA][wW][sS]:).{1,128}$",
                    value: &Shape::TagValue,
                    min: 0,
                    max: Some(50),
                },
                "tags on the bucket (and a created key or table); others' tags are kept",
            ),
            field(
                "lifecycle",
                Shape::Object(&LIFECYCLE),
                "old state versions and unfinished uploads",
            ),
            field("logging", Shape::Object(&LOGGING), "server access logging"),
            field(
                "replica",
                Shape::Object(&REPLICA),
                "a copy of the state in a second region, and the backend file to fail over to",
            ),
        ],
    )
};

/// The whole spec file.
pub static SPEC: Object = Object {
    required: &["region", "bucket"],
    needs: &[("backend", "access"), ("stack_defaults", "stacks")],
    exactly_one_of: &[&["backend", "stacks"]],
    ..object(
        "spec",
        "statebucket environment spec: one state bucket, the states it holds and who may use them",
        &[
            field(
                "region",
                text(Some(REGION)),
                "the bucket's region, e.g. eu-west-1",
            ),
            field(
                "account_id",
                Shape::AccountId,
                "refuse to act with credentials of any other account (also written into backend.hcl)",
            ),
            field(
                "profile",
                text(Some(PROFILE)),
                "the AWS profile Terraform's backend uses (written into backend.hcl); not needed when every stack has a web_identity",
            ),
            field(
                "bootstrap_profile",
                text(Some(PROFILE)),
                "statebucket's own identity when it creates and repairs (never written into backend.hcl)",
            ),
            field(
                "endpoint",
                text(Some(r"^https?://.+$")),
                "an S3-compatible endpoint or local test server",
            ),
            field("bucket", Shape::Object(&BUCKET), "the state bucket"),
            field("access", Shape::Object(&ACCESS), "who may use the state"),
            field(
                "backend",
                Shape::Object(&BACKEND),
                "the one state of this bucket",
            ),
            field(
                "stacks",
                Shape::Named {
                    key_pattern: r"^[A-Za-z0-9_.-]{1,64}$",
                    value: &Shape::Object(&STACK),
                    min: 1,
                    max: None,
                },
                "several states in this bucket, by stack name",
            ),
            field(
                "stack_defaults",
                Shape::Object(&STACK_DEFAULTS),
                "options every stack takes unless it sets its own",
            ),
            field(
                "opentofu",
                Shape::Object(&OPENTOFU),
                "OpenTofu settings: client-side state encryption",
            ),
            field(
                "compat",
                Shape::Object(&COMPAT),
                "an S3-compatible store (MinIO, Ceph RGW, R2) behind `endpoint`: what it lacks",
            ),
        ],
    )
};

/// Where the committed JSON Schema lives, relative to the project root.
pub const SCHEMA_PATH: &str = "schema/statebucket.schema.json";

/// The modeline that points yaml-language-server at the schema, for a spec at
/// `environments/<env>.yaml`.
pub const MODELINE: &str = "# yaml-language-server: $schema=../schema/statebucket.schema.json";

/// The spec's JSON Schema (draft 2020-12).
pub fn json_schema() -> Value {
    let mut definitions = Map::new();
    let root = object_schema(&SPEC, &mut definitions);
    let mut document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://statebucket.dev/schema/statebucket.schema.json",
        "title": "statebucket environment spec",
    });
    let document_map = document.as_object_mut().expect("an object");
    if let Value::Object(root) = root {
        document_map.extend(root);
    }
    document_map.insert("$defs".into(), Value::Object(definitions));
    document
}

/// The root object inline, every other object as a `$defs` entry.
fn object_schema(object: &'static Object, definitions: &mut Map<String, Value>) -> Value {
    let mut properties = Map::new();
    for field in object.fields {
        let mut schema = shape_schema(&field.shape, definitions);
        if let Value::Object(map) = &mut schema {
            map.insert("description".into(), field.description.into());
        }
        properties.insert(field.name.into(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "description": object.description,
        "additionalProperties": false,
        "properties": properties,
    });
    let map = schema.as_object_mut().expect("an object");
    if !object.required.is_empty() {
        map.insert("required".into(), json!(object.required));
    }
    if !object.needs.is_empty() {
        let needs: Map<String, Value> = object
            .needs
            .iter()
            .map(|(key, needed)| ((*key).to_owned(), json!([needed])))
            .collect();
        map.insert("dependentRequired".into(), Value::Object(needs));
    }
    if let [group] = object.exactly_one_of {
        let choices: Vec<Value> = group
            .iter()
            .map(|key| json!({ "required": [key] }))
            .collect();
        map.insert("oneOf".into(), Value::Array(choices));
    } else if !object.exactly_one_of.is_empty() {
        let all: Vec<Value> = object
            .exactly_one_of
            .iter()
            .map(|group| {
                json!({ "oneOf": group.iter().map(|key| json!({ "required": [key] })).collect::<Vec<_>>() })
            })
            .collect();
        map.insert("allOf".into(), Value::Array(all));
    }
    schema
}

fn shape_schema(shape: &Shape, definitions: &mut Map<String, Value>) -> Value {
    match shape {
        Shape::Text {
            pattern,
            max_length,
        } => {
            let mut schema = json!({ "type": "string", "minLength": 1 });
            let map = schema.as_object_mut().expect("an object");
            if let Some(pattern) = pattern {
                map.insert("pattern".into(), (*pattern).into());
            }
            if let Some(max) = max_length {
                map.insert("maxLength".into(), (*max).into());
            }
            schema
        }
        Shape::Boolean => json!({ "type": "boolean" }),
        Shape::Days { never: false } => {
            json!({ "type": "integer", "minimum": 1, "maximum": 36500 })
        }
        Shape::Days { never: true } => json!({
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 36500 },
                { "const": "never" }
            ]
        }),
        Shape::Choice(words) => json!({ "enum": words }),
        Shape::AccountId => json!({
            "anyOf": [
                { "type": "string", "pattern": "^[0-9]{12}$" },
                { "type": "integer", "minimum": 100000000000_u64, "maximum": 999999999999_u64 }
            ]
        }),
        Shape::Object(object) => {
            if !definitions.contains_key(object.name) {
                // Placeholder first: a definition that refers to itself terminates.
                definitions.insert(object.name.into(), Value::Null);
                let schema = object_schema(object, definitions);
                definitions.insert(object.name.into(), schema);
            }
            json!({ "$ref": format!("#/$defs/{}", object.name) })
        }
        Shape::Named {
            key_pattern,
            value,
            min,
            max,
        } => {
            let mut schema = json!({
                "type": "object",
                "propertyNames": { "pattern": key_pattern },
                "additionalProperties": shape_schema(value, definitions),
                "minProperties": min,
            });
            if let Some(max) = max {
                schema
                    .as_object_mut()
                    .expect("an object")
                    .insert("maxProperties".into(), (*max).into());
            }
            schema
        }
        Shape::List(item) => json!({
            "type": "array",
            "uniqueItems": true,
            "items": shape_schema(item, definitions),
        }),
        Shape::AnyOf(shapes) => json!({
            "anyOf": shapes.iter().map(|shape| shape_schema(shape, definitions)).collect::<Vec<_>>()
        }),
        Shape::TagValue => json!({
            "anyOf": [
                { "type": "string", "maxLength": 256 },
                { "type": "number" },
                { "type": "boolean" }
            ]
        }),
    }
}

/// The JSON Schema as committed: pretty-printed with a final newline.
pub fn json_schema_text() -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&json_schema()).expect("plain data")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_is_defined_once_and_every_reference_resolves() {
        let schema = json_schema();
        let definitions = schema["$defs"].as_object().unwrap();
        let text = serde_json::to_string(&schema).unwrap();
        for name in definitions.keys() {
            assert!(
                text.contains(&format!("\"#/$defs/{name}\"")),
                "{name} unused"
            );
        }
        let mut rest = text.as_str();
        while let Some(start) = rest.find("#/$defs/") {
            let name: String = rest[start + 8..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            assert!(definitions.contains_key(&name), "dangling reference {name}");
            rest = &rest[start + 8..];
        }
        assert_eq!(schema["oneOf"][1], json!({ "required": ["stacks"] }));
        assert_eq!(schema["dependentRequired"]["backend"], json!(["access"]));
    }

    #[test]
    fn the_committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json_schema_text(),
            "{SCHEMA_PATH} is stale: run `cargo run -- schema > {SCHEMA_PATH}` and commit it"
        );
    }

    #[test]
    fn field_names_are_unique_in_every_object() {
        fn check(object: &'static Object) {
            let mut names = object.keys();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), object.fields.len(), "{}", object.name);
            for key in object
                .required
                .iter()
                .chain(object.needs.iter().flat_map(|(a, b)| [a, b]))
            {
                assert!(object.field(key).is_some(), "{}: {key}", object.name);
            }
            for field in object.fields {
                if let Shape::Object(inner) = &field.shape {
                    check(inner);
                }
            }
        }
        check(&SPEC);
    }
}
