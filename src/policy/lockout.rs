//! The lockout guard: before a bucket policy is written, check that it does not explicitly
//! deny the identity running statebucket what it needs to observe and repair the bucket, or
//! the identity Terraform runs as for a stack what it needs on that stack's state and lock
//! files.

use serde::Serialize;

use super::evaluate::{Caller, Request, explicit_deny};
use super::{PolicyDocument, StateArns, bucket_arn};
use crate::spec::{EnvSpec, StackSpec};

/// Who a check is about, for messages: `statebucket (this run)` or `Terraform (profile …)`.
#[derive(Debug, Clone)]
pub struct Subject<'s> {
    pub label: String,
    pub caller: Caller,
    pub needs: Needs<'s>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Needs<'s> {
    /// Observing and repairing the bucket: HeadBucket (`s3:ListBucket`) and each facet's
    /// Get and Put action, the bucket policy's included, so that a bad policy can be
    /// repaired and a later `check` can read what was written.
    ManageBucket,
    /// What Terraform's S3 backend calls on one stack's state and lock objects.
    UseState(&'s StackSpec),
}

/// The bucket-level actions statebucket itself calls on a bucket with this spec.
pub fn management_actions(spec: &EnvSpec) -> Vec<&'static str> {
    let mut actions = vec![
        "s3:ListBucket",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:GetBucketVersioning",
        "s3:PutBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
    ];
    if spec.bucket.logging.is_some() {
        actions.extend(["s3:GetBucketLogging", "s3:PutBucketLogging"]);
    }
    actions
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockoutRisk {
    pub who: String,
    pub arn: String,
    pub action: String,
    pub resource: String,
    pub sid: String,
    /// False when the deny depends on a condition the guard cannot evaluate.
    pub certain: bool,
}

impl LockoutRisk {
    pub fn describe(&self) -> String {
        format!(
            "statement `{}` {} {} ({}) {} on {}",
            self.sid,
            if self.certain { "denies" } else { "may deny" },
            self.who,
            self.arn,
            self.action,
            self.resource
        )
    }
}

/// Every (subject, action, resource) the policy explicitly denies.
pub fn lockout_risks(
    document: &PolicyDocument,
    spec: &EnvSpec,
    subjects: &[Subject<'_>],
) -> Vec<LockoutRisk> {
    let bucket = bucket_arn(spec.region.partition(), &spec.bucket.name);
    let mut risks = Vec::new();
    for subject in subjects {
        let requests: Vec<(&str, String)> = match subject.needs {
            Needs::ManageBucket => management_actions(spec)
                .into_iter()
                .map(|action| (action, bucket.clone()))
                .collect(),
            Needs::UseState(stack) => {
                let objects = StateArns::of(&bucket, stack);
                vec![
                    ("s3:ListBucket", bucket.clone()),
                    ("s3:GetObject", objects.state.clone()),
                    ("s3:PutObject", objects.state.clone()),
                    ("s3:GetObject", objects.lock.clone()),
                    ("s3:PutObject", objects.lock.clone()),
                    ("s3:DeleteObject", objects.lock),
                ]
            }
        };
        for (action, resource) in requests {
            if let Some(denial) =
                explicit_deny(document, &Request::new(&subject.caller, action, &resource))
            {
                risks.push(LockoutRisk {
                    who: subject.label.clone(),
                    arn: subject.caller.arn.clone(),
                    action: action.to_owned(),
                    resource,
                    sid: denial.sid,
                    certain: denial.certain,
                });
            }
        }
    }
    risks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_spec;
    use serde_json::json;

    #[test]
    fn a_deny_for_terraform_is_reported_per_action_and_the_tool_is_checked_separately() {
        let spec = parse_spec(
            "e/dev.yaml",
            "dev",
            "region: eu-west-1\nprofile: terraform\nbucket: { name: state }\naccess: { users: [terraform] }\nbackend: { key: app/terraform.tfstate }\n",
        )
        .unwrap();
        let document = PolicyDocument {
            version: None,
            id: None,
            statements: vec![
                json!({"Sid": "StatebucketExclusiveStateAccess", "Effect": "Deny", "Principal": "*",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::state", "arn:aws:s3:::state/*"],
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/break-glass"}}}),
            ],
        };
        let terraform = Subject {
            label: "Terraform (profile `terraform`)".into(),
            caller: Caller::parse("arn:aws:iam::123456789012:user/terraform").unwrap(),
            needs: Needs::UseState(&spec.stacks[0]),
        };
        let break_glass = Subject {
            label: "statebucket (this run)".into(),
            caller: Caller::parse("arn:aws:sts::123456789012:assumed-role/break-glass/x").unwrap(),
            needs: Needs::ManageBucket,
        };
        let risks = lockout_risks(&document, &spec, &[break_glass, terraform]);
        assert_eq!(risks.len(), 6, "{risks:#?}");
        assert!(risks.iter().all(|risk| risk.who.starts_with("Terraform")));
        assert_eq!(
            risks[5].describe(),
            "statement `StatebucketExclusiveStateAccess` denies Terraform (profile `terraform`) (arn:aws:iam::123456789012:user/terraform) s3:DeleteObject on arn:aws:s3:::state/app/terraform.tfstate.tflock"
        );
    }

    #[test]
    fn an_unlisted_bootstrap_identity_is_refused_the_exclusive_policy_it_could_not_read_back() {
        let spec = parse_spec(
            "e/dev.yaml",
            "dev",
            "region: eu-west-1\nprofile: terraform\nbucket: { name: state }\naccess: { users: [terraform], exclusive: true, break_glass_role: break-glass }\nbackend: { key: app/terraform.tfstate }\n",
        )
        .unwrap();
        let account = crate::spec::AccountId::parse("123456789012").unwrap();
        let statements = crate::policy::bucket_statements(
            &spec,
            &account,
            &crate::access::PrincipalArns::offline(&spec, &account),
            (
                crate::policy::BUILTIN_TEMPLATE_NAME,
                crate::policy::BUILTIN_TEMPLATE,
            ),
            true,
        )
        .unwrap();
        let document = crate::policy::merge(None, &statements);
        let admin = Subject {
            label: "statebucket (this run)".into(),
            caller: Caller::parse("arn:aws:sts::123456789012:assumed-role/admin/x").unwrap(),
            needs: Needs::ManageBucket,
        };
        let risks = lockout_risks(&document, &spec, &[admin]);
        assert_eq!(
            risks
                .iter()
                .map(|risk| risk.action.as_str())
                .collect::<Vec<_>>(),
            vec!["s3:ListBucket"],
            "HeadBucket, and so every later observation, needs s3:ListBucket"
        );
        assert_eq!(risks[0].sid, "StatebucketExclusiveStateAccess");
        let glass = Subject {
            label: "statebucket (this run)".into(),
            caller: Caller::parse("arn:aws:sts::123456789012:assumed-role/break-glass/x").unwrap(),
            needs: Needs::ManageBucket,
        };
        assert!(lockout_risks(&document, &spec, &[glass]).is_empty());
    }
}
