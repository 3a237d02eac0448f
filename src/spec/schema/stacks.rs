//! `backend`, `stack_defaults` and `stacks`: each stack's key, file, locking and the
//! backend's authentication settings.

use super::*;

pub(super) const KEY: Field = field(
    "key",
    text(Some(r"^[^/](.*[^/])?$")),
    "the state object's key, e.g. app/terraform.tfstate",
);
pub(super) const FILE: Field = field(
    "file",
    text(Some(r"^[^/].*\.(hcl|tfbackend)$")),
    "where to write this state's backend.hcl, relative to the project root",
);
pub(super) const PROFILE_FIELD: Field = field(
    "profile",
    text(Some(PROFILE)),
    "the AWS profile Terraform's backend uses for this state (default: the spec's `profile`)",
);
pub(super) const WORKSPACE_KEY_PREFIX: Field = field(
    "workspace_key_prefix",
    text(Some(r"^[^/](.*[^/])?$")),
    "where non-default workspaces keep their state (Terraform's default: env:)",
);
pub(super) const ROLE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$";
pub(super) const SESSION_NAME_PATTERN: &str = r"^[A-Za-z0-9_+=,.@-]{2,64}$";
pub(super) const DURATION_PATTERN: &str = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$";
pub(super) const POLICY_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$";
pub(super) const ROLE_ARN: Field =
    field("role_arn", text(Some(ROLE_ARN_PATTERN)), "the role's ARN");
pub(super) const SESSION_NAME: Field = field(
    "session_name",
    text(Some(SESSION_NAME_PATTERN)),
    "the session's name, as CloudTrail shows it",
);
pub(super) const DURATION: Field = field(
    "duration",
    text(Some(DURATION_PATTERN)),
    "how long the session lasts: 15m to 12h, e.g. 1h",
);
pub(super) const POLICY_ARNS: Field = field(
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

pub(super) const ASSUME_ROLE: Field = field(
    "assume_role",
    Shape::AnyOf(&[
        text(Some(ROLE_ARN_PATTERN)),
        Shape::Object(&ASSUME_ROLE_OBJECT),
    ]),
    "a role the backend assumes: its ARN, or `{ role_arn, external_id, session_name, duration, tags, transitive_tag_keys, source_identity, policy_arns, policy }`",
);
pub(super) const WEB_IDENTITY_FIELD: Field = field(
    "web_identity",
    Shape::Object(&WEB_IDENTITY),
    "authenticate the backend with an OIDC token instead of a profile (assume_role_with_web_identity)",
);
pub(super) const FORBIDDEN_ACCOUNT_IDS: Field = field(
    "forbidden_account_ids",
    Shape::List(&Shape::AccountId),
    "accounts whose credentials Terraform refuses (instead of the spec's account_id, which allows only one)",
);
pub(super) const STS_REGION: Field = field(
    "sts_region",
    text(Some(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")),
    "the region of the STS endpoint the backend calls",
);
pub(super) const SHARED_CONFIG_FILES: Field = field(
    "shared_config_files",
    Shape::List(&text(None)),
    "AWS config files the backend reads instead of ~/.aws/config",
);
pub(super) const SHARED_CREDENTIALS_FILES: Field = field(
    "shared_credentials_files",
    Shape::List(&text(None)),
    "AWS credentials files the backend reads instead of ~/.aws/credentials",
);
pub(super) const USE_FIPS_ENDPOINT: Field = field(
    "use_fips_endpoint",
    Shape::Boolean,
    "FIPS endpoints for S3 and STS",
);
pub(super) const USE_DUALSTACK_ENDPOINT: Field = field(
    "use_dualstack_endpoint",
    Shape::Boolean,
    "dual-stack (IPv6) endpoints",
);
pub(super) const TERRAFORM_DIR: Field = field(
    "terraform_dir",
    text(Some(RELATIVE_PATH)),
    "the Terraform directory that uses this state (doctor looks there for provider credentials the backend ignores)",
);
pub(super) const LOCK: Field = field(
    "lock",
    Shape::Choice(&["lockfile", "dynamodb", "both"]),
    "how Terraform locks the state: lockfile (S3, Terraform >= 1.10), both (while older runners remain), dynamodb (legacy)",
);
pub(super) const DYNAMODB_TABLE: Field = field(
    "dynamodb_table",
    text(Some(r"^[A-Za-z0-9_.-]{3,255}$")),
    "the lock table with `lock: dynamodb` or `both` (default: <bucket>-locks)",
);

/// The fields of `backend`, a stack and `stack_defaults`: the backend options, after the
/// fields given.
macro_rules! backend_options {
    ($($field:expr),* $(,)?) => {
        &[
            $($field,)*
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
        ]
    };
}

pub static BACKEND: Object = Object {
    required: &["key"],
    ..object(
        "backend",
        "the one state this bucket holds (or list several under `stacks`)",
        backend_options![KEY, FILE],
    )
};

pub static STACK: Object = Object {
    required: &["key"],
    ..object(
        "stack",
        "one state in this bucket: its key, backend file, principals and backend options",
        backend_options![
            KEY,
            FILE,
            field(
                "access",
                Shape::Object(&STACK_ACCESS),
                "this stack's own principals (default: the spec's `access`)",
            ),
        ],
    )
};

pub static STACK_DEFAULTS: Object = object(
    "stack_defaults",
    "backend options every stack takes unless it sets its own",
    backend_options![],
);
