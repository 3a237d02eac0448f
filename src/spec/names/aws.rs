//! Names AWS defines: regions, buckets, accounts, IAM principals and ARNs, KMS keys,
//! DynamoDB tables, endpoints.

use std::fmt;

use serde::Serialize;

use super::*;

/// Regions by partition. Terraform's S3 backend refuses a region outside the SDK's list
/// ("Invalid region value") unless `skip_region_validation` is set, so an unknown name here
/// would only fail later, at `terraform init`.
const REGIONS: &[(&str, &[&str])] = &[
    (
        "aws",
        &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    ),
    ("aws-cn", &["cn-north-1", "cn-northwest-1"]),
    ("aws-us-gov", &["us-gov-east-1", "us-gov-west-1"]),
    ("aws-eusc", &["eusc-de-east-1"]),
];

impl Region {
    pub fn parse(text: &str) -> Result<Region, Problem> {
        if REGIONS.iter().any(|(_, regions)| regions.contains(&text)) {
            return Ok(Region(text.to_owned()));
        }
        let all = REGIONS
            .iter()
            .flat_map(|(_, regions)| regions.iter().copied());
        let problem = Problem::new(format!("`{text}` is not an AWS region"));
        Err(match closest(text, all) {
            Some(near) => problem.hint(format!("did you mean `{near}`?")),
            None => problem.hint("use a region code such as `eu-west-1` or `us-east-1`"),
        })
    }

    /// The ARN partition the region belongs to (`aws`, `aws-cn`, `aws-us-gov`, `aws-eusc`).
    pub fn partition(&self) -> &'static str {
        REGIONS
            .iter()
            .find(|(_, regions)| regions.contains(&self.0.as_str()))
            .map(|(partition, _)| *partition)
            .unwrap_or("aws")
    }
}

impl BucketName {
    /// All of AWS's rules for general-purpose buckets, including the reserved prefixes and
    /// suffixes. Dots are allowed by AWS but break virtual-hosted TLS; they are accepted.
    pub fn parse(text: &str) -> Result<BucketName, Problem> {
        let fail = |message: String, hint: &str| Err(Problem::new(message).hint(hint));
        let length = text.chars().count();
        if !(3..=63).contains(&length) {
            return fail(
                format!("bucket name `{text}` is {length} characters long; S3 allows 3 to 63"),
                "shorten it, e.g. `<org>-tfstate-<env>`",
            );
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
        {
            let hint = if bad.is_ascii_uppercase() || bad == '_' {
                "S3 bucket names use lowercase letters, digits, `.` and `-` only; uppercase and `_` are not allowed"
            } else {
                "S3 bucket names use lowercase letters, digits, `.` and `-` only"
            };
            return fail(format!("bucket name `{text}` contains `{bad}`"), hint);
        }
        let edge_ok =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !edge_ok(text.chars().next()) || !edge_ok(text.chars().last()) {
            return fail(
                format!("bucket name `{text}` must begin and end with a letter or digit"),
                "remove the leading or trailing `.` or `-`",
            );
        }
        if text.contains("..") {
            return fail(
                format!("bucket name `{text}` contains two adjacent periods"),
                "use a single `.` or a `-`",
            );
        }
        if looks_like_ipv4(text) {
            return fail(
                format!("bucket name `{text}` is formatted as an IP address"),
                "S3 refuses names like `192.168.5.4`; use letters as well",
            );
        }
        for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
            if text.starts_with(prefix) {
                return fail(
                    format!("bucket name `{text}` starts with `{prefix}`, a prefix S3 reserves"),
                    "choose a name that does not start with `xn--`, `sthree-` or `amzn-s3-demo-`",
                );
            }
        }
        for suffix in [
            "-s3alias",
            "--ol-s3",
            ".mrap",
            "--x-s3",
            "--table-s3",
            "-an",
        ] {
            if text.ends_with(suffix) {
                return fail(
                    format!("bucket name `{text}` ends with `{suffix}`, a suffix S3 reserves"),
                    "S3 keeps `-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`, `--table-s3` and `-an` for access points, directory, table and account-namespace buckets (the last is not supported by this tool)",
                );
            }
        }
        Ok(BucketName(text.to_owned()))
    }
}

fn looks_like_ipv4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty() && part.len() <= 3 && part.chars().all(|c| c.is_ascii_digit())
        })
}

impl AccountId {
    pub fn parse(text: &str) -> Result<AccountId, Problem> {
        if text.len() == 12 && text.chars().all(|c| c.is_ascii_digit()) {
            Ok(AccountId(text.to_owned()))
        } else {
            Err(Problem::new(format!("`{text}` is not an AWS account id"))
                .hint("an account id is exactly 12 digits; quote it (\"012345678901\") so YAML keeps leading zeros"))
        }
    }
}

impl IamName {
    pub fn parse(text: &str, kind: PrincipalKind) -> Result<IamName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        if text.is_empty() || text.len() > 64 || !text.chars().all(valid) {
            return Err(Problem::new(format!("`{text}` is not a valid IAM {kind} name")).hint(format!(
                "IAM {kind} names are 1-64 characters of letters, digits and `+=,.@_-`; or give the full ARN `arn:aws:iam::123456789012:{kind}/NAME`"
            )));
        }
        Ok(IamName(text.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Role,
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
        })
    }
}

/// An IAM user or role, by name (resolved in the environment's account) or by full ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalRef {
    Name { kind: PrincipalKind, name: IamName },
    Arn { kind: PrincipalKind, arn: IamArn },
}

/// A parsed IAM user or role ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IamArn {
    pub partition: String,
    pub account: AccountId,
    pub kind: PrincipalKind,
    /// Path and name after `user/` or `role/`, e.g. `ci/terraform`.
    pub path_and_name: String,
}

impl IamArn {
    /// A user or role ARN.
    pub fn parse(text: &str) -> Result<IamArn, Problem> {
        parse_iam_arn(text)
    }

    pub fn name(&self) -> &str {
        self.path_and_name
            .rsplit('/')
            .next()
            .unwrap_or(&self.path_and_name)
    }
}

impl fmt::Display for IamArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:iam::{}:{}/{}",
            self.partition, self.account, self.kind, self.path_and_name
        )
    }
}

const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov", "aws-eusc"];

impl PrincipalRef {
    /// `expected` is the list the value was found in (`access.users` or `access.roles`).
    pub fn parse(text: &str, expected: PrincipalKind) -> Result<PrincipalRef, Problem> {
        if !text.starts_with("arn:") {
            return Ok(PrincipalRef::Name {
                kind: expected,
                name: IamName::parse(text, expected)?,
            });
        }
        let arn = parse_iam_arn(text)?;
        if arn.kind != expected {
            let other = if expected == PrincipalKind::User {
                "roles"
            } else {
                "users"
            };
            return Err(Problem::new(format!(
                "`{text}` is an IAM {} ARN, listed among the {expected}s",
                arn.kind
            ))
            .hint(format!("move it to `access.{other}`")));
        }
        Ok(PrincipalRef::Arn {
            kind: expected,
            arn,
        })
    }

    pub fn kind(&self) -> PrincipalKind {
        match self {
            PrincipalRef::Name { kind, .. } | PrincipalRef::Arn { kind, .. } => *kind,
        }
    }

    /// The ARN, resolving a bare name in `account`.
    pub fn resolve(&self, partition: &str, account: &AccountId) -> IamArn {
        match self {
            PrincipalRef::Arn { arn, .. } => arn.clone(),
            PrincipalRef::Name { kind, name } => IamArn {
                partition: partition.to_owned(),
                account: account.clone(),
                kind: *kind,
                path_and_name: name.as_str().to_owned(),
            },
        }
    }

    /// The ARN if it can be known without asking AWS for the account.
    pub fn resolve_offline(&self, partition: &str, account: Option<&AccountId>) -> Option<IamArn> {
        match (self, account) {
            (PrincipalRef::Arn { arn, .. }, _) => Some(arn.clone()),
            (PrincipalRef::Name { .. }, Some(account)) => Some(self.resolve(partition, account)),
            (PrincipalRef::Name { .. }, None) => None,
        }
    }
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalRef::Name { name, .. } => write!(f, "{name}"),
            PrincipalRef::Arn { arn, .. } => write!(f, "{arn}"),
        }
    }
}

fn parse_iam_arn(text: &str) -> Result<IamArn, Problem> {
    let shape = "an IAM ARN looks like `arn:aws:iam::123456789012:user/NAME` or `arn:aws:iam::123456789012:role/PATH/NAME`";
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts[..] else {
        return Err(Problem::new(format!("`{text}` is not a valid ARN")).hint(shape));
    };
    if !PARTITIONS.contains(&partition) {
        return Err(Problem::new(format!(
            "`{text}` names the unknown partition `{partition}`"
        ))
        .hint("the partition is `aws`, `aws-cn`, `aws-us-gov` or `aws-eusc`"));
    }
    if service == "sts" && resource.starts_with("assumed-role/") {
        return Err(
            Problem::new(format!("`{text}` is an assumed-role session, not a role"))
                .hint("list the role itself: `arn:aws:iam::ACCOUNT:role/NAME`"),
        );
    }
    if service != "iam" || !region.is_empty() {
        return Err(Problem::new(format!("`{text}` is not an IAM user or role ARN")).hint(shape));
    }
    let account = AccountId::parse(account).map_err(|problem| {
        Problem::new(format!("the account in `{text}` is not 12 digits"))
            .hint(problem.hint.unwrap_or_default())
    })?;
    let (kind, path_and_name) = match resource.split_once('/') {
        Some(("user", rest)) => (PrincipalKind::User, rest),
        Some(("role", rest)) => (PrincipalKind::Role, rest),
        _ => {
            return Err(
                Problem::new(format!("`{text}` names neither a user nor a role")).hint(shape),
            );
        }
    };
    let name = path_and_name.rsplit('/').next().unwrap_or_default();
    IamName::parse(name, kind)?;
    if path_and_name.len() > 512 || path_and_name.contains("//") {
        return Err(
            Problem::new(format!("the path in `{text}` is not a valid IAM path")).hint(shape),
        );
    }
    Ok(IamArn {
        partition: partition.to_owned(),
        account,
        kind,
        path_and_name: path_and_name.to_owned(),
    })
}

impl RoleArn {
    /// Terraform: `assume_role.role_arn` must be an ARN whose resource starts with `role/`.
    pub fn parse(text: &str) -> Result<RoleArn, Problem> {
        let arn = parse_iam_arn(text)?;
        if arn.kind != PrincipalKind::Role {
            return Err(
                Problem::new(format!("`{text}` is a user ARN; assume_role needs a role"))
                    .hint("use `arn:aws:iam::ACCOUNT:role/NAME`"),
            );
        }
        Ok(RoleArn(text.to_owned()))
    }
}

impl PolicyArn {
    pub fn parse(text: &str) -> Result<PolicyArn, Problem> {
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let ok = matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
            if PARTITIONS.contains(partition)
                && (*account == "aws" || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())))
                && resource.strip_prefix("policy/").is_some_and(|name| !name.is_empty()));
        if !ok {
            return Err(Problem::new(format!("`{text}` is not an IAM policy ARN"))
                .hint("e.g. `arn:aws:iam::aws:policy/ReadOnlyAccess` or `arn:aws:iam::123456789012:policy/NAME`"));
        }
        Ok(PolicyArn(text.to_owned()))
    }
}

/// How a spec names an existing KMS key, in the forms Terraform's `validateKMSKey` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsKeyRef {
    /// A key id (UUID) or multi-Region key id (`mrk-` + 32 hex digits).
    KeyId(String),
    KeyArn(String),
    Alias(KmsAlias),
    AliasArn(String),
}

impl KmsKeyRef {
    pub fn parse(text: &str, region: Option<&Region>) -> Result<KmsKeyRef, Problem> {
        let forms = "use a key id (UUID or `mrk-…`), `alias/NAME`, or a key or alias ARN `arn:aws:kms:REGION:ACCOUNT:key/ID`";
        if text.starts_with("alias/") {
            return Ok(KmsKeyRef::Alias(KmsAlias::parse(text)?));
        }
        if is_key_id(text) {
            return Ok(KmsKeyRef::KeyId(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, key_region, account, resource] = parts[..] else {
                return Err(Problem::new(format!("`{text}` is not a valid KMS ARN")).hint(forms));
            };
            if !PARTITIONS.contains(&partition) || service != "kms" {
                return Err(Problem::new(format!("`{text}` is not a KMS key ARN")).hint(forms));
            }
            AccountId::parse(account).map_err(|_| {
                Problem::new(format!("the account in `{text}` is not 12 digits")).hint(forms)
            })?;
            if let Some(region) = region
                && key_region != region.as_str()
            {
                return Err(Problem::new(format!(
                    "KMS key `{text}` is in `{key_region}`, but the bucket is in `{region}`"
                ))
                .hint("S3 default encryption needs a key in the bucket's own region"));
            }
            if let Some(id) = resource.strip_prefix("key/")
                && is_key_id(id)
            {
                return Ok(KmsKeyRef::KeyArn(text.to_owned()));
            }
            if resource.starts_with("alias/") {
                KmsAlias::parse(resource)?;
                return Ok(KmsKeyRef::AliasArn(text.to_owned()));
            }
            return Err(
                Problem::new(format!("`{text}` names neither `key/ID` nor `alias/NAME`"))
                    .hint(forms),
            );
        }
        Err(Problem::new(format!("`{text}` is not a KMS key reference")).hint(forms))
    }

    pub fn as_str(&self) -> &str {
        match self {
            KmsKeyRef::KeyId(text) | KmsKeyRef::KeyArn(text) | KmsKeyRef::AliasArn(text) => text,
            KmsKeyRef::Alias(alias) => alias.as_str(),
        }
    }
}

impl fmt::Display for KmsKeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_key_id(text: &str) -> bool {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    if let Some(mrk) = text.strip_prefix("mrk-") {
        return mrk.len() == 32 && hex(mrk);
    }
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && hex(group))
}

impl KmsAlias {
    /// KMS: `alias/` + 1-250 of `[a-zA-Z0-9/_-]`; `alias/aws/` is reserved for AWS managed keys.
    pub fn parse(text: &str) -> Result<KmsAlias, Problem> {
        let Some(name) = text.strip_prefix("alias/") else {
            return Err(Problem::new(format!("`{text}` is not a KMS alias"))
                .hint("an alias starts with `alias/`, e.g. `alias/terraform-state`"));
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || "/_-".contains(c);
        if name.is_empty() || name.len() > 250 || !name.chars().all(valid) {
            return Err(Problem::new(format!("`{text}` is not a valid KMS alias"))
                .hint("alias names are 1-250 characters of letters, digits, `/`, `_` and `-`"));
        }
        if name.starts_with("aws/") {
            return Err(
                Problem::new(format!("`{text}` is reserved for AWS managed keys"))
                    .hint("choose an alias that does not start with `alias/aws/`"),
            );
        }
        Ok(KmsAlias(text.to_owned()))
    }
}

impl EndpointUrl {
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }

    pub fn parse(text: &str) -> Result<EndpointUrl, Problem> {
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with('/')
                    && !rest.contains(char::is_whitespace) =>
            {
                Ok(EndpointUrl(text.trim_end_matches('/').to_owned()))
            }
            _ => Err(Problem::new(format!("`{text}` is not an endpoint URL"))
                .hint("give a full URL with scheme and host, e.g. `http://127.0.0.1:5000`")),
        }
    }
}

impl TableName {
    pub fn parse(text: &str) -> Result<TableName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if !(3..=255).contains(&text.len()) || !text.chars().all(valid) {
            return Err(
                Problem::new(format!("`{text}` is not a valid DynamoDB table name"))
                    .hint("table names are 3-255 characters: letters, digits, `_`, `.`, `-`"),
            );
        }
        Ok(TableName(text.to_owned()))
    }

    /// `<bucket>-locks`: always a valid table name, since bucket names are 3-63 characters
    /// of `[a-z0-9.-]`.
    pub fn for_bucket(bucket: &BucketName) -> TableName {
        TableName(format!("{bucket}-locks"))
    }
}

impl LogPrefix {
    /// S3 object keys up to 1024 bytes; a prefix that is empty or lacks a trailing `/`
    /// mixes log objects of several buckets, so both are refused.
    pub fn parse(text: &str) -> Result<LogPrefix, Problem> {
        let hint = "use a folder-like prefix such as `tfstate/dev/`";
        if text.is_empty() || !text.ends_with('/') || text.starts_with('/') {
            return Err(Problem::new(format!(
                "log prefix `{text}` must be a non-empty folder ending in `/`, not starting with one"
            ))
            .hint(hint));
        }
        if text.len() > 512 || text.chars().any(char::is_control) || text.contains('*') {
            return Err(
                Problem::new(format!("log prefix `{text}` is not a usable S3 key prefix"))
                    .hint(hint),
            );
        }
        Ok(LogPrefix(text.to_owned()))
    }

    /// `<bucket>/`: the state bucket's own folder in a shared log bucket.
    pub fn for_bucket(bucket: &BucketName) -> LogPrefix {
        LogPrefix(format!("{bucket}/"))
    }
}
