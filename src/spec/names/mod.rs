//! Validated names. Each type can only be built through its `parse`, so a value of the type
//! is proof that the rule held; the rules are AWS's and Terraform's, cited per type.

use std::fmt;

use serde::Serialize;

/// Why a value was refused and how to fix it. Positions are added by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// An S3 general-purpose bucket name (AWS S3 User Guide, "General purpose bucket naming rules").
    BucketName
);
string_newtype!(
    /// An AWS region this tool knows, in its partition.
    Region
);
string_newtype!(
    /// A 12-digit AWS account id.
    AccountId
);
string_newtype!(
    /// A named profile in the shared AWS config/credentials files.
    ProfileName
);
string_newtype!(
    /// The S3 object key of the default workspace's state, by Terraform's rules.
    StateKey
);
string_newtype!(
    /// `workspace_key_prefix`: where non-default workspaces keep their state.
    WorkspacePrefix
);
string_newtype!(
    /// A Terraform workspace name; `default` is the default workspace.
    WorkspaceName
);
string_newtype!(
    /// An IAM user or role name (`[\w+=,.@-]{1,64}`).
    IamName
);
string_newtype!(
    /// An IAM role ARN, as `assume_role.role_arn` needs it.
    RoleArn
);
string_newtype!(
    /// A KMS alias name including its `alias/` prefix.
    KmsAlias
);
string_newtype!(
    /// An endpoint URL for an S3-compatible store or a local test server.
    EndpointUrl
);
string_newtype!(
    /// An environment name: the spec file's stem.
    EnvName
);
string_newtype!(
    /// A DynamoDB table name: 3-255 characters of `[A-Za-z0-9_.-]` (DynamoDB Developer Guide,
    /// "Naming rules").
    TableName
);
string_newtype!(
    /// The key prefix access logs are delivered under in the log bucket.
    LogPrefix
);

string_newtype!(
    /// `session_name` or `source_identity` of an assumed role: 2-64 characters of
    /// `[\w+=,.@-]` (Terraform's S3 backend validation, STS AssumeRole).
    SessionName
);
string_newtype!(
    /// `assume_role.external_id`: 2-1224 characters of `[\w+=,.@:/-]`.
    ExternalId
);
string_newtype!(
    /// An IAM managed policy ARN (`arn:aws:iam::aws:policy/…` or an account's own).
    PolicyArn
);
string_newtype!(
    /// A stack: one Terraform state in a bucket. In the `backend:` layout, the environment's
    /// name.
    StackName
);

mod aws;
mod terraform;

pub use aws::*;
pub use terraform::*;

/// The candidate nearest to `text` by edit distance, if it is plausibly a typo.
pub fn closest<'a>(text: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(text, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min()
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions (`nmae` → `name`) each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse` accepts every one of `good` and refuses every one of `bad`.
    #[track_caller]
    fn accepts_only<T>(parse: impl Fn(&str) -> Result<T, Problem>, good: &[&str], bad: &[&str]) {
        for text in good {
            assert!(parse(text).is_ok(), "{text:?} should be accepted");
        }
        for text in bad {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn bucket_names_follow_every_s3_rule() {
        for good in [
            "abc",
            "my-terraform-state-dev",
            "a.b.c",
            "1bucket9",
            &"a".repeat(63),
        ] {
            assert!(BucketName::parse(good).is_ok(), "{good} should be valid");
        }
        let cases = [
            ("ab", "3 to 63"),
            (&"a".repeat(64), "3 to 63"),
            ("My_Bucket", "contains `M`"),
            ("my_bucket", "contains `_`"),
            ("-bucket", "begin and end"),
            ("bucket.", "begin and end"),
            ("my..bucket", "adjacent periods"),
            ("192.168.5.4", "IP address"),
            ("xn--bucket", "prefix"),
            ("sthree-bucket", "prefix"),
            ("amzn-s3-demo-bucket", "prefix"),
            ("bucket-s3alias", "suffix"),
            ("bucket--ol-s3", "suffix"),
            ("bucket.mrap", "suffix"),
            ("bucket--x-s3", "suffix"),
            ("bucket--table-s3", "suffix"),
            ("bucket-an", "suffix"),
        ];
        for (bad, expected) in cases {
            let problem = BucketName::parse(bad).unwrap_err();
            assert!(problem.message.contains(expected), "{bad}: {problem:?}");
            assert!(problem.hint.is_some(), "{bad} has no hint");
        }
        assert!(BucketName::parse("192.168.5.4x").is_ok());
    }

    #[test]
    fn regions_are_known_and_typos_get_suggestions() {
        assert_eq!(Region::parse("ap-northeast-1").unwrap().partition(), "aws");
        assert_eq!(Region::parse("cn-north-1").unwrap().partition(), "aws-cn");
        assert_eq!(
            Region::parse("us-gov-west-1").unwrap().partition(),
            "aws-us-gov"
        );
        let problem = Region::parse("eu-west1").unwrap_err();
        assert_eq!(problem.hint.as_deref(), Some("did you mean `eu-west-1`?"));
        assert!(
            Region::parse("mars-north-1")
                .unwrap_err()
                .hint
                .unwrap()
                .contains("region code")
        );
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        accepts_only(
            AccountId::parse,
            &["012345678901"],
            &["12345678901", "1234567890123", "12345678901a", ""],
        );
    }

    #[test]
    fn state_keys_follow_terraform() {
        assert!(StateKey::parse("eks/terraform.tfstate").is_ok());
        assert!(StateKey::parse("terraform.tfstate").is_ok());
        for (bad, expected) in [
            ("", "empty"),
            ("  ", "empty"),
            ("/a.tfstate", "starts or ends"),
            ("a/", "starts or ends"),
            ("a//b", "`//`"),
            ("x.tflock", ".tflock"),
            ("a\u{7}b", "control"),
        ] {
            let problem = StateKey::parse(bad).unwrap_err();
            assert!(problem.message.contains(expected), "{bad:?}: {problem:?}");
        }
        assert!(StateKey::parse(&"k".repeat(901)).is_err());
    }

    #[test]
    fn workspace_prefixes_follow_terraform() {
        accepts_only(WorkspacePrefix::parse, &["workspaces", ""], &["/ws", "ws/"]);
    }

    #[test]
    fn kms_key_references_in_every_form() {
        let region = Region::parse("eu-west-1").unwrap();
        let ok = [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/terraform-state",
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:eu-west-1:111122223333:alias/terraform-state",
        ];
        for text in ok {
            assert!(KmsKeyRef::parse(text, Some(&region)).is_ok(), "{text}");
        }
        let bad = [
            ("1234abcd", "not a KMS key reference"),
            ("alias/", "not a valid KMS alias"),
            ("alias/aws/s3", "reserved"),
            (
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "bucket is in",
            ),
            (
                "arn:aws:kms:eu-west-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "12 digits",
            ),
            (
                "arn:aws:s3:eu-west-1:111122223333:key/x",
                "not a KMS key ARN",
            ),
            ("arn:aws:kms:eu-west-1:111122223333:grant/x", "neither"),
        ];
        for (text, expected) in bad {
            let problem = KmsKeyRef::parse(text, Some(&region)).unwrap_err();
            assert!(problem.message.contains(expected), "{text}: {problem:?}");
        }
    }

    #[test]
    fn principals_by_name_or_arn_and_in_the_right_list() {
        let user = PrincipalRef::parse("terraform-access", PrincipalKind::User).unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        assert_eq!(
            user.resolve("aws", &account).to_string(),
            "arn:aws:iam::123456789012:user/terraform-access"
        );
        let role = PrincipalRef::parse(
            "arn:aws:iam::210987654321:role/ci/deployer",
            PrincipalKind::Role,
        )
        .unwrap();
        assert_eq!(
            role.resolve("aws", &account).to_string(),
            "arn:aws:iam::210987654321:role/ci/deployer"
        );

        let misplaced =
            PrincipalRef::parse("arn:aws:iam::123456789012:role/x", PrincipalKind::User)
                .unwrap_err();
        assert_eq!(misplaced.hint.as_deref(), Some("move it to `access.roles`"));
        for bad in [
            "has space",
            "arn:aws:iam::12345:user/x",
            "arn:aws:iam::123456789012:group/x",
            "arn:aws:s3:::bucket",
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "arn:nope:iam::123456789012:user/x",
            &"n".repeat(65),
        ] {
            assert!(
                PrincipalRef::parse(bad, PrincipalKind::User).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn session_settings_follow_the_backends_rules() {
        accepts_only(
            SessionName::parse,
            &["terraform-ci@github"],
            &["x", "has space", &"a".repeat(65)],
        );
        accepts_only(ExternalId::parse, &["tenant:42/prod"], &["x"]);
        accepts_only(
            PolicyArn::parse,
            &[
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                "arn:aws:iam::123456789012:policy/ci/state",
            ],
            &[
                "arn:aws:iam::123456789012:role/x",
                "ReadOnlyAccess",
                "arn:aws:iam::12:policy/x",
            ],
        );
        for (text, seconds) in [
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("43200s", 43200),
        ] {
            assert_eq!(
                RoleDuration::parse(text).map(|d| d.seconds()),
                Ok(seconds),
                "{text}"
            );
        }
        accepts_only(
            RoleDuration::parse,
            &[],
            &["", "1", "10m", "13h", "1d", "h", "1.5h"],
        );
    }

    #[test]
    fn role_arns_for_assume_role() {
        accepts_only(
            RoleArn::parse,
            &["arn:aws:iam::123456789012:role/tf-state"],
            &["arn:aws:iam::123456789012:user/tf", "tf-state"],
        );
    }

    #[test]
    fn profile_names() {
        accepts_only(
            ProfileName::parse,
            &["terraform", "org/prod-admin"],
            &["has space", "a]b", ""],
        );
    }

    #[test]
    fn endpoints_need_scheme_and_host() {
        assert_eq!(
            EndpointUrl::parse("http://127.0.0.1:5000/")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000"
        );
        accepts_only(EndpointUrl::parse, &[], &["127.0.0.1:5000", "http://"]);
    }

    #[test]
    fn closest_suggests_only_plausible_typos() {
        assert_eq!(
            closest("nmae", ["name", "tags", "encryption"]),
            Some("name")
        );
        assert_eq!(closest("zzzzzz", ["name", "tags"]), None);
    }
}
