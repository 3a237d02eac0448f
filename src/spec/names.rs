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

impl ProfileName {
    /// Profile names become `[profile NAME]` section headers and `profile = "NAME"` in
    /// backend.hcl; brackets, quotes, `=` and whitespace break one or the other.
    pub fn parse(text: &str) -> Result<ProfileName, Problem> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || "-_.@+/:".contains(c);
        if text.is_empty() || text.len() > 128 || !text.chars().all(valid_char) {
            return Err(Problem::new(format!("`{text}` is not a usable AWS profile name")).hint(
                "use letters, digits and `-_.@+/:` (no spaces, brackets, quotes or `=`), as in `[profile terraform]` of ~/.aws/config",
            ));
        }
        Ok(ProfileName(text.to_owned()))
    }
}

impl StateKey {
    /// Terraform's S3 backend: not empty, no leading or trailing `/`, no `//`
    /// (`validateStringS3Path` and PrepareConfig). S3 keys are at most 1024 bytes and the
    /// backend appends `.tflock` and the workspace prefix, so we keep room for both.
    pub fn parse(text: &str) -> Result<StateKey, Problem> {
        let hint = "use a path such as `networking/terraform.tfstate`";
        if text.trim().is_empty() {
            return Err(Problem::new("the state key is empty").hint(hint));
        }
        if text.starts_with('/') || text.ends_with('/') {
            return Err(Problem::new(format!(
                "state key `{text}` starts or ends with `/`, which Terraform refuses"
            ))
            .hint("remove the leading or trailing `/`"));
        }
        if text.contains("//") {
            return Err(Problem::new(format!(
                "state key `{text}` contains `//`, which Terraform refuses"
            ))
            .hint("use single `/` between path segments"));
        }
        if text.len() > 900 {
            return Err(Problem::new(format!(
                "state key is {} bytes; S3 keys are at most 1024 bytes including the workspace prefix and `.tflock`",
                text.len()
            ))
            .hint(hint));
        }
        if text.ends_with(".tflock") {
            return Err(Problem::new(format!(
                "state key `{text}` ends with `.tflock`, the suffix Terraform uses for lock files"
            ))
            .hint(hint));
        }
        if text.chars().any(char::is_control) {
            return Err(Problem::new("the state key contains a control character").hint(hint));
        }
        Ok(StateKey(text.to_owned()))
    }
}

impl WorkspacePrefix {
    pub fn parse(text: &str) -> Result<WorkspacePrefix, Problem> {
        if text.starts_with('/') || text.ends_with('/') {
            return Err(Problem::new(format!(
                "workspace_key_prefix `{text}` starts or ends with `/`, which Terraform refuses"
            ))
            .hint("remove the leading or trailing `/` (the default is `env:`)"));
        }
        if text.contains("//") || text.chars().any(char::is_control) || text.len() > 100 {
            return Err(Problem::new(format!(
                "workspace_key_prefix `{text}` is not a usable S3 path"
            ))
            .hint("use a short path such as `workspaces`"));
        }
        Ok(WorkspacePrefix(text.to_owned()))
    }

    pub fn terraform_default() -> WorkspacePrefix {
        WorkspacePrefix("env:".to_owned())
    }
}

impl WorkspaceName {
    /// Terraform's rule (`terraform workspace new`): not empty, URL-safe characters only,
    /// no path separator (the characters `url.PathEscape` leaves as they are).
    pub fn parse(text: &str) -> Result<WorkspaceName, Problem> {
        let url_safe = |c: char| c.is_ascii_alphanumeric() || "-_.~$&+,:;=@".contains(c);
        if text.is_empty() || !text.chars().all(url_safe) {
            return Err(Problem::new(format!(
                "`{text}` is not a Terraform workspace name"
            ))
            .hint("workspace names are URL-safe and have no `/`, as `terraform workspace list` shows them"));
        }
        Ok(WorkspaceName(text.to_owned()))
    }

    pub fn is_default(&self) -> bool {
        self.0 == "default"
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

/// `duration` of an assumed role session: a Go duration (`1h`, `90m`, `1h30m`, `3600s`)
/// from 15 minutes to 12 hours, as Terraform's S3 backend accepts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleDuration {
    text: String,
    seconds: u32,
}

impl SessionName {
    pub fn parse(text: &str) -> Result<SessionName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        if !(2..=64).contains(&text.len()) || !text.chars().all(valid) {
            return Err(
                Problem::new(format!("`{text}` is not a valid session name"))
                    .hint("2-64 letters, digits and `_+=,.@-`, e.g. `terraform-ci`"),
            );
        }
        Ok(SessionName(text.to_owned()))
    }
}

impl ExternalId {
    pub fn parse(text: &str) -> Result<ExternalId, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
        if !(2..=1224).contains(&text.len()) || !text.chars().all(valid) {
            return Err(Problem::new("the external id is not valid").hint(
                "2-1224 letters, digits and `_+=,.@:/-`, as the role's trust policy names it",
            ));
        }
        Ok(ExternalId(text.to_owned()))
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

impl RoleDuration {
    pub fn parse(text: &str) -> Result<RoleDuration, Problem> {
        let refused = || {
            Problem::new(format!("`{text}` is not a session duration"))
                .hint("a duration from 15m to 12h, e.g. `1h`, `90m` or `1h30m`")
        };
        let mut seconds: u64 = 0;
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(refused()),
            };
            let value: u64 = number.parse().map_err(|_| refused())?;
            seconds = seconds.saturating_add(value.saturating_mul(unit));
            number.clear();
        }
        if !number.is_empty() || text.is_empty() {
            return Err(refused());
        }
        if !(15 * 60..=12 * 3600).contains(&seconds) {
            return Err(Problem::new(format!(
                "`{text}` is outside what STS allows for a backend session"
            ))
            .hint("from 15m to 12h (the role's own maximum session duration may be lower)"));
        }
        Ok(RoleDuration {
            text: text.to_owned(),
            seconds: seconds as u32,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn seconds(&self) -> u32 {
        self.seconds
    }
}

impl fmt::Display for RoleDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
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

string_newtype!(
    /// A stack: one Terraform state in a bucket. In the `backend:` layout, the environment's
    /// name.
    StackName
);

impl StackName {
    pub fn parse(text: &str) -> Result<StackName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if text.is_empty()
            || text.len() > 64
            || !text.chars().all(valid)
            || !text.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(Problem::new(format!("`{text}` is not a usable stack name"))
                .hint("stack names are 1-64 letters, digits, `-`, `_` and `.`, starting with a letter or digit, e.g. `network` or `app-eu`"));
        }
        Ok(StackName(text.to_owned()))
    }

    /// The stack's name as policy statement ids allow it (letters and digits only): each
    /// part between `-`, `_` and `.` capitalised, `app-eu` → `AppEu`.
    pub fn sid_token(&self) -> String {
        self.0
            .split(['-', '_', '.'])
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect()
    }
}

impl From<&EnvName> for StackName {
    /// The one stack of a `backend:` spec is named after its environment (same rules).
    fn from(env: &EnvName) -> StackName {
        StackName(env.as_str().to_owned())
    }
}

impl EnvName {
    pub fn parse(text: &str) -> Result<EnvName, Problem> {
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if text.is_empty() || text.len() > 64 || !text.chars().all(valid) {
            return Err(Problem::new(format!("`{text}` is not a usable environment name"))
                .hint("name spec files like `dev.yaml` or `prod-eu.yaml`: letters, digits, `-`, `_`, `.`"));
        }
        Ok(EnvName(text.to_owned()))
    }
}

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
        assert!(AccountId::parse("012345678901").is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            assert!(AccountId::parse(bad).is_err(), "{bad}");
        }
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
        assert!(WorkspacePrefix::parse("workspaces").is_ok());
        assert!(WorkspacePrefix::parse("").is_ok());
        assert!(WorkspacePrefix::parse("/ws").is_err());
        assert!(WorkspacePrefix::parse("ws/").is_err());
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
        assert!(SessionName::parse("terraform-ci@github").is_ok());
        for bad in ["x", "has space", &"a".repeat(65)] {
            assert!(SessionName::parse(bad).is_err(), "{bad}");
        }
        assert!(ExternalId::parse("tenant:42/prod").is_ok());
        assert!(ExternalId::parse("x").is_err());
        assert!(PolicyArn::parse("arn:aws:iam::aws:policy/ReadOnlyAccess").is_ok());
        assert!(PolicyArn::parse("arn:aws:iam::123456789012:policy/ci/state").is_ok());
        for bad in [
            "arn:aws:iam::123456789012:role/x",
            "ReadOnlyAccess",
            "arn:aws:iam::12:policy/x",
        ] {
            assert!(PolicyArn::parse(bad).is_err(), "{bad}");
        }
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
        for bad in ["", "1", "10m", "13h", "1d", "h", "1.5h"] {
            assert!(RoleDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_arns_for_assume_role() {
        assert!(RoleArn::parse("arn:aws:iam::123456789012:role/tf-state").is_ok());
        assert!(RoleArn::parse("arn:aws:iam::123456789012:user/tf").is_err());
        assert!(RoleArn::parse("tf-state").is_err());
    }

    #[test]
    fn profile_names() {
        assert!(ProfileName::parse("terraform").is_ok());
        assert!(ProfileName::parse("org/prod-admin").is_ok());
        assert!(ProfileName::parse("has space").is_err());
        assert!(ProfileName::parse("a]b").is_err());
        assert!(ProfileName::parse("").is_err());
    }

    #[test]
    fn endpoints_need_scheme_and_host() {
        assert_eq!(
            EndpointUrl::parse("http://127.0.0.1:5000/")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000"
        );
        assert!(EndpointUrl::parse("127.0.0.1:5000").is_err());
        assert!(EndpointUrl::parse("http://").is_err());
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
