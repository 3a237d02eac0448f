//! The lockout guard: before a bucket policy is written, check that it does not explicitly
//! deny the identity running statebucket (which must be able to fix the policy later) or the
//! identity Terraform runs as (which must reach its state and lock files).

use serde::Serialize;

use super::PolicyDocument;
use super::evaluate::{Caller, explicit_deny};
use crate::spec::EnvSpec;

/// Who a check is about, for messages: `statebucket (this run)` or `Terraform (profile …)`.
#[derive(Debug, Clone)]
pub struct Subject {
    pub label: String,
    pub caller: Caller,
    pub needs: Needs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Reading and writing the bucket policy, so a bad one can be repaired.
    ManageBucket,
    /// What Terraform's S3 backend calls on the state and lock objects.
    UseState,
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

/// Every (subject, action, resource) the policy explicitly denies, one per subject and action.
pub fn lockout_risks(
    document: &PolicyDocument,
    spec: &EnvSpec,
    subjects: &[Subject],
) -> Vec<LockoutRisk> {
    let bucket_arn = format!("arn:{}:s3:::{}", spec.region.partition(), spec.bucket.name);
    let state = format!("{bucket_arn}/{}", spec.backend.key);
    let lock = format!("{state}.tflock");
    let mut risks = Vec::new();
    for subject in subjects {
        let requests: Vec<(&str, &str)> = match subject.needs {
            Needs::ManageBucket => vec![
                ("s3:GetBucketPolicy", &bucket_arn),
                ("s3:PutBucketPolicy", &bucket_arn),
            ],
            Needs::UseState => vec![
                ("s3:ListBucket", &bucket_arn),
                ("s3:GetObject", &state),
                ("s3:PutObject", &state),
                ("s3:GetObject", &lock),
                ("s3:PutObject", &lock),
                ("s3:DeleteObject", &lock),
            ],
        };
        for (action, resource) in requests {
            if let Some(denial) = explicit_deny(document, &subject.caller, action, resource) {
                risks.push(LockoutRisk {
                    who: subject.label.clone(),
                    arn: subject.caller.arn.clone(),
                    action: action.to_owned(),
                    resource: resource.to_owned(),
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
            needs: Needs::UseState,
        };
        let tool = Subject {
            label: "statebucket (this run)".into(),
            caller: Caller::parse("arn:aws:sts::123456789012:assumed-role/admin/x").unwrap(),
            needs: Needs::ManageBucket,
        };
        let risks = lockout_risks(&document, &spec, &[tool, terraform]);
        assert_eq!(risks.len(), 6, "{risks:#?}");
        assert!(risks.iter().all(|risk| risk.who.starts_with("Terraform")));
        assert_eq!(
            risks[5].describe(),
            "statement `StatebucketExclusiveStateAccess` denies Terraform (profile `terraform`) (arn:aws:iam::123456789012:user/terraform) s3:DeleteObject on arn:aws:s3:::state/app/terraform.tfstate.tflock"
        );
    }
}
