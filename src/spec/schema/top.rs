//! The top level of a spec, with `compat` and `opentofu`.

use super::*;

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
