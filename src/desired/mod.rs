//! What one bucket should look like: built once, from its spec, the account, the principals'
//! ARNs and the endpoint in effect. `plan`, `render`, the `policy` command, `engine` and
//! `doctor` all read it. Pure.

mod environment;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::access::{Grant, PrincipalArns, Tier, grants};
use crate::policy::evaluate::Caller;
use crate::policy::{self, PolicyDocument, key_policy};
use crate::render::{KmsKeyId, render_backend_hcl, render_tofu_encryption};
use crate::replication::DesiredReplication;

use crate::spec::{
    AccountId, Diagnostic, Encryption, EndpointUrl, EnvSpec, IamArn, ProfileName, StackSpec,
};
pub use environment::{DesiredEnvironment, identity_policy_principals};

/// `caller`'s tier among `writers` and `readers`: a writer first, then a reader, or neither.
/// A role's sessions count as the role (STS does not report a role's path).
pub fn tier_among(writers: &[IamArn], readers: &[IamArn], caller: &Caller) -> Option<Tier> {
    let named = |list: &[IamArn]| list.iter().any(|arn| caller.is_named_by(&arn.to_string()));
    if named(writers) {
        Some(Tier::Writer)
    } else if named(readers) {
        Some(Tier::Reader)
    } else {
        None
    }
}

impl DesiredStack<'_> {
    /// `caller`'s tier on this stack (`tier_among` its writers and readers).
    pub fn tier_of(&self, caller: &Caller) -> Option<Tier> {
        tier_among(&self.writers, &self.readers, caller)
    }
}

/// On-demand capacity: a lock table sees a handful of requests per Terraform run.
pub const TABLE_BILLING_MODE: &str = "PAY_PER_REQUEST";
/// ACLs disabled: the bucket owner owns every object.
pub const OBJECT_OWNERSHIP: &str = "BucketOwnerEnforced";

#[derive(Debug, Clone)]
pub struct DesiredBucket<'s> {
    pub spec: &'s EnvSpec,
    /// The account the bucket (and a key statebucket creates) lives in.
    pub account: AccountId,
    pub endpoint: Option<EndpointUrl>,
    /// Every grant of the spec, writers then readers.
    pub grants: Vec<Grant<'s>>,
    /// The statements the tool owns in the bucket policy.
    pub policy: Vec<Value>,
    /// The grant statements the tool owns in the policy of a key it creates.
    pub key_grants: Vec<Value>,
    /// With `attach_identity_policy`: the inline policy of each principal in `account`.
    pub identity_policies: Vec<IdentityPolicy>,
    /// With `bucket.logging`: the statement the log bucket's policy must hold.
    pub log_delivery: Option<Value>,
    pub stacks: Vec<DesiredStack<'s>>,
    /// With `bucket.replica`: the role and rule that replicate into it.
    pub replication: Option<DesiredReplication>,
}

/// The inline policy one user or role gets: the union of what its grants need.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityPolicy {
    pub principal: IamArn,
    pub name: String,
    pub document: PolicyDocument,
}

#[derive(Debug, Clone)]
pub struct DesiredStack<'s> {
    pub spec: &'s StackSpec,
    pub writers: Vec<IamArn>,
    pub readers: Vec<IamArn>,
    /// The profile Terraform's backend uses for this stack; `None` with a web identity.
    pub profile: Option<&'s ProfileName>,
}

impl<'s> DesiredBucket<'s> {
    /// `template` is the bucket policy template's file name and text (validated at load).
    /// Errors are the template's, located in its file.
    pub fn build(
        spec: &'s EnvSpec,
        account: &AccountId,
        arns: &PrincipalArns,
        endpoint: Option<&EndpointUrl>,
        template: (&str, &str),
    ) -> Result<DesiredBucket<'s>, Vec<Diagnostic>> {
        let require_tls = !endpoint.is_some_and(EndpointUrl::is_plain_http);
        let policy = policy::bucket_statements(spec, account, arns, template, require_tls)?;
        let grants = grants(spec, arns);
        let key_grants = key_policy::key_grant_statements(&grants, &spec.region);
        let replica = spec.replica_spec();
        // The same principals' grants on the replica, for the identity policies below.
        let replica_grants = replica
            .as_ref()
            .map(|replica| crate::access::grants(replica, arns));
        let identity_policies = if spec.access.attach_identity_policy {
            let name = policy::identity_policy_name(spec);
            let principals = identity_policy_principals(spec, arns, account);
            principals
                .into_iter()
                .map(|principal| {
                    let mut document =
                        policy::identity_policy_for(spec, account, &grants, &principal);
                    // A failover must find the same access on the replica.
                    if let (Some(replica), Some(replica_grants)) = (&replica, &replica_grants) {
                        let on_replica = policy::identity_policy_for(
                            replica,
                            account,
                            replica_grants,
                            &principal,
                        );
                        policy::extend_to_replica(&mut document, on_replica);
                    }
                    IdentityPolicy {
                        principal,
                        name: name.clone(),
                        document,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let log_delivery = spec.bucket.logging.as_ref().map(|logging| {
            policy::log_delivery_statement(
                spec.region.partition(),
                logging.bucket.as_str(),
                logging.prefix.as_str(),
                spec.bucket.name.as_str(),
                account.as_str(),
            )
        });
        let stacks = spec
            .stacks
            .iter()
            .map(|stack| DesiredStack {
                spec: stack,
                writers: arns.arns(spec.writers_of(stack)).cloned().collect(),
                readers: arns.arns(spec.readers_of(stack)).cloned().collect(),
                profile: spec.profile_of(stack),
            })
            .collect();
        Ok(DesiredBucket {
            spec,
            account: account.clone(),
            endpoint: endpoint.cloned(),
            grants,
            policy,
            key_grants,
            identity_policies,
            log_delivery,
            stacks,
            replication: replica
                .as_ref()
                .map(|replica| DesiredReplication::build(spec, replica, account)),
        })
    }

    /// A stack's backend.hcl, with the key as `key` names it.
    pub fn backend_file(&self, stack: &DesiredStack<'_>, key: KmsKeyId<'_>) -> String {
        render_backend_hcl(self.spec, stack.spec, key, self.endpoint.as_ref())
    }

    /// The stack's OpenTofu encryption file (path and content), when the spec asks for
    /// one. `key` is the bucket key as backend.hcl gets it (used when the encryption names
    /// no key of its own).
    pub fn tofu_encryption_file(
        &self,
        stack: &DesiredStack<'_>,
        key: KmsKeyId<'_>,
    ) -> Option<(String, String)> {
        let encryption = self.spec.tofu_encryption.as_ref()?;
        let key_id = match (&encryption.key, key, &self.spec.bucket.encryption) {
            (Some(own), _, _) => own.reference().to_owned(),
            (None, KmsKeyId::Resolved(arn), _) => arn.to_owned(),
            (None, KmsKeyId::FromSpec, Encryption::Kms(bucket_key)) => {
                bucket_key.reference().to_owned()
            }
            (None, KmsKeyId::FromSpec, Encryption::Aes256) => {
                unreachable!("the parser requires a key for an AES256 bucket")
            }
        };
        Some((
            stack.spec.tofu_encryption_file(),
            render_tofu_encryption(self.spec, stack.spec, encryption, &key_id),
        ))
    }

    /// Tags put on a key the tool creates, so that the key can be traced to its bucket (and
    /// found again after a run was interrupted between CreateKey and CreateAlias).
    pub fn kms_key_tags(&self) -> BTreeMap<String, String> {
        kms_key_tags(self.spec)
    }

    pub fn kms_key_description(&self) -> String {
        format!(
            "Encrypts Terraform state in s3://{} (statebucket environment {})",
            self.spec.bucket.name, self.spec.name
        )
    }
}

/// Tags of OpenTofu's dedicated key: other tag keys than the state key's, so that neither
/// search for an interrupted run's key can find the other key.
pub fn tofu_key_tags(spec: &EnvSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "statebucket:opentofu-environment".to_owned(),
            spec.name.to_string(),
        ),
        (
            "statebucket:opentofu-bucket".to_owned(),
            spec.bucket.name.to_string(),
        ),
    ])
}

/// See `DesiredBucket::kms_key_tags`; needs the spec only.
pub fn kms_key_tags(spec: &EnvSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("statebucket:environment".to_owned(), spec.name.to_string()),
        (
            "statebucket:bucket".to_owned(),
            spec.bucket.name.to_string(),
        ),
    ])
}
