//! `bucket`: encryption, lifecycle, logging, Object Lock, the replica.

use super::*;

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

pub(super) const BUCKET_NAME: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
pub(super) const REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";

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
