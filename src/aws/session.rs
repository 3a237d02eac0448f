//! STS sessions the way Terraform's S3 backend makes them: `assume_role_with_web_identity`
//! (an OIDC token from CI exchanged for a role's credentials; replaces any other
//! credentials) and `assume_role` (on top of whatever credentials there are). `doctor`
//! uses them to probe as the very identity the backend will be.

use aws_sdk_sts::types::{PolicyDescriptorType, Tag};

use super::Clients;
use super::errors::{AwsError, Explained};

/// What a session asks for; unset fields are left to STS's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRequest {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub duration_seconds: Option<i32>,
    pub policy_arns: Vec<String>,
    pub policy: Option<String>,
    /// `assume_role` only.
    pub external_id: Option<String>,
    pub source_identity: Option<String>,
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
}

impl SessionRequest {
    fn session_name(&self) -> String {
        self.session_name
            .clone()
            .unwrap_or_else(|| "statebucket-doctor".to_owned())
    }

    fn policy_arns(&self) -> Option<Vec<PolicyDescriptorType>> {
        (!self.policy_arns.is_empty()).then(|| {
            self.policy_arns
                .iter()
                .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
                .collect()
        })
    }
}

/// AssumeRoleWithWebIdentity with `token` (the content of the token file). The call is
/// unsigned: `clients` need no credentials of their own.
pub async fn web_identity(
    clients: &Clients,
    request: &SessionRequest,
    token: &str,
) -> Result<aws_sdk_s3::config::Credentials, AwsError> {
    let output = clients
        .sts
        .assume_role_with_web_identity()
        .role_arn(&request.role_arn)
        .role_session_name(request.session_name())
        .web_identity_token(token.trim())
        .set_duration_seconds(request.duration_seconds)
        .set_policy_arns(request.policy_arns())
        .set_policy(request.policy.clone())
        .send()
        .await
        .explained("the web identity token", || {
            format!(
                "exchanging the web identity token for role `{}` (sts:AssumeRoleWithWebIdentity)",
                request.role_arn
            )
        })?;
    session_credentials(output.credentials(), &request.role_arn)
}

/// AssumeRole as `clients`' identity.
pub async fn assume_role(
    clients: &Clients,
    request: &SessionRequest,
) -> Result<aws_sdk_s3::config::Credentials, AwsError> {
    let tags: Option<Vec<Tag>> = (!request.tags.is_empty()).then(|| {
        request
            .tags
            .iter()
            .filter_map(|(key, value)| Tag::builder().key(key).value(value).build().ok())
            .collect()
    });
    let transitive =
        (!request.transitive_tag_keys.is_empty()).then(|| request.transitive_tag_keys.clone());
    let output = clients
        .sts
        .assume_role()
        .role_arn(&request.role_arn)
        .role_session_name(request.session_name())
        .set_duration_seconds(request.duration_seconds)
        .set_policy_arns(request.policy_arns())
        .set_policy(request.policy.clone())
        .set_external_id(request.external_id.clone())
        .set_source_identity(request.source_identity.clone())
        .set_tags(tags)
        .set_transitive_tag_keys(transitive)
        .send()
        .await
        .explained(clients, || {
            format!("assuming role `{}` (sts:AssumeRole)", request.role_arn)
        })?;
    session_credentials(output.credentials(), &request.role_arn)
}

fn session_credentials(
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    role_arn: &str,
) -> Result<aws_sdk_s3::config::Credentials, AwsError> {
    let credentials = credentials.ok_or_else(|| {
        AwsError::new(
            format!("assuming role `{role_arn}`"),
            "STS answered without credentials",
            None,
        )
    })?;
    Ok(aws_sdk_s3::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        std::time::SystemTime::try_from(*credentials.expiration()).ok(),
        "statebucket-session",
    ))
}
