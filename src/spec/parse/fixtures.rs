//! Specs and helpers the parser's tests share.

pub(super) use crate::spec::names::*;
pub(super) use crate::spec::schema;
pub(super) use crate::spec::*;

pub(super) const DEV: &str = "\
region: ap-northeast-1
account_id: \"123456789012\"
profile: terraform
bucket:
  name: my-terraform-state-dev
  encryption: aes256
  tags: { team: platform }
access:
  users: [terraform-access]
  roles: [terraform-access-role]
backend:
  key: eks-cluster/terraform.tfstate
  file: environments/dev/backend.hcl
";

/// Every key of the schema, in one of two specs.
pub(super) const EVERY_KEY_WITH_BACKEND: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bootstrap_profile: admin
endpoint: https://s3.example.internal
bucket:
  name: my-terraform-state-prod
  encryption: { kms_key: alias/terraform-state, create_key: true }
  tags: { team: platform }
  lifecycle: { expire_noncurrent_after_days: 365, abort_incomplete_uploads_after_days: 3 }
  logging: { bucket: my-access-logs, prefix: state/ }
  replica:
    region: eu-central-1
    name: my-terraform-state-prod-dr
    encryption: { kms_key: alias/terraform-state-replica, create_key: true }
    object_lock: { mode: governance, days: 30 }
    backend_file: environments/prod/backend.dr.hcl
access:
  users: [terraform-access]
  roles: [terraform-access-role]
  readers: { users: [auditor], roles: [terraform-plan] }
  policy_template: policies/state-access.json
  exclusive: true
  break_glass_role: break-glass
  attach_identity_policy: true
backend:
  key: app/terraform.tfstate
  file: environments/prod/backend.hcl
  profile: terraform-prod
  workspace_key_prefix: workspaces
  assume_role:
    role_arn: arn:aws:iam::123456789012:role/terraform
    external_id: tenant-42
    session_name: terraform-ci
    duration: 1h
    tags: { team: platform, cost: \"7\" }
    transitive_tag_keys: [team]
    source_identity: alice
    policy_arns: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]
    policy: '{\"Version\": \"2012-10-17\", \"Statement\": []}'
  terraform_dir: infra/app
  lock: both
  dynamodb_table: terraform-locks
  sts_region: eu-central-1
  shared_config_files: [~/.aws/config, /etc/aws/config]
  shared_credentials_files: [~/.aws/credentials]
  use_fips_endpoint: true
  use_dualstack_endpoint: false
opentofu:
  encryption: { kms_key: alias/tofu-state, create_key: true, phase: enforce }
";
pub(super) const EVERY_KEY_WITH_STACKS: &str = "\
region: eu-west-1
profile: terraform
bucket: { name: my-terraform-state-shared }
access: { roles: [terraform-access-role] }
stack_defaults:
  profile: terraform-ci
  workspace_key_prefix: workspaces
  assume_role: arn:aws:iam::123456789012:role/terraform
  terraform_dir: infra
  lock: dynamodb
  dynamodb_table: terraform-locks
stacks:
  network:
    key: network/terraform.tfstate
    file: stacks/network/backend.hcl
    access: { users: [network-ci], roles: [network-role], readers: { roles: [network-plan] } }
    profile: network-ci
    workspace_key_prefix: network-workspaces
    assume_role: arn:aws:iam::123456789012:role/network
    terraform_dir: infra/network
    lock: lockfile
  app:
    key: app/terraform.tfstate
    dynamodb_table: app-locks
    forbidden_account_ids: [\"210987654321\"]
  ci:
    key: ci/terraform.tfstate
    web_identity:
      role_arn: arn:aws:iam::123456789012:role/github-terraform
      token_file: /tmp/web-identity-token
      session_name: github-actions
      duration: 30m
      policy_arns: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]
compat: { lacks: [iam], skip_s3_checksum: true }
";

pub(super) fn errors(text: &str) -> Vec<String> {
    parse_spec("environments/x.yaml", "x", text)
        .unwrap_err()
        .into_iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect()
}

pub(super) fn one_error(text: &str) -> Diagnostic {
    let mut diagnostics = parse_spec("environments/x.yaml", "x", text).unwrap_err();
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    diagnostics.remove(0)
}

/// The message of the one error in `DEV` with `from` replaced by `to`.
pub(super) fn dev_error(from: &str, to: &str) -> String {
    one_error(&DEV.replace(from, to)).message
}

pub(super) use crate::testing::assert_mentions;

pub(super) const STACKS: &str = "\
region: eu-west-1
account_id: \"123456789012\"
profile: terraform
bucket: { name: central-state }
access:
  users: [terraform-access]
  roles: [terraform-access-role]
  readers:
    roles: [terraform-plan]
stack_defaults:
  lock: both
  workspace_key_prefix: ws
stacks:
  network:
    key: network/terraform.tfstate
    file: stacks/network/backend.hcl
    access: { roles: [network-ci] }
    profile: network
  app:
    key: app/terraform.tfstate
    lock: lockfile
";
