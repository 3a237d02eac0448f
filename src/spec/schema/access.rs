//! `access` and a stack's own `access`: users, roles, readers.

use super::*;

pub(super) const IAM_NAME_OR_ARN: &str =
    r"^([A-Za-z0-9+=,.@_-]{1,64}|arn:aws[a-z-]*:iam::[0-9]{12}:(user|role)/.+)$";
pub(super) const RELATIVE_PATH: &str = r"^[^/].*$";
pub(super) const PROFILE: &str = r"^[A-Za-z0-9_.@+/:-]{1,128}$";
pub(super) const USERS: Field = field(
    "users",
    Shape::List(&text(Some(IAM_NAME_OR_ARN))),
    "IAM users (names or ARNs) Terraform runs as",
);
pub(super) const ROLES: Field = field(
    "roles",
    Shape::List(&text(Some(IAM_NAME_OR_ARN))),
    "IAM roles (names or ARNs) Terraform runs as",
);

pub static READERS: Object = object(
    "readers",
    "the read-only tier: read state, take and release the lock, never write state (pipelines that only plan)",
    &[USERS, ROLES],
);

pub(super) const READERS_FIELD: Field = field(
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
