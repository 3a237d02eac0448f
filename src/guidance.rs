//! What to tell a user whose Terraform still keeps state locally, and how to audit who
//! decrypted KMS-encrypted state. Pure text; statebucket never uploads, moves or deletes state.

/// Guidance for a Terraform directory that holds a local `terraform.tfstate`.
/// `backend_config` is the path to pass as `-backend-config=` from that directory.
pub fn local_state_guidance(
    terraform_dir: &str,
    backend_config: &str,
    bucket: &str,
    key: &str,
    profile: Option<&str>,
) -> String {
    let profile = profile
        .map(|profile| format!(" --profile {profile}"))
        .unwrap_or_default();
    format!(
        "{terraform_dir}/terraform.tfstate holds local state: move it into the bucket with \
         `terraform -chdir={terraform_dir} init -migrate-state -backend-config={backend_config}`, \
         then check it arrived with `statebucket doctor` (or `aws s3 ls s3://{bucket}/{key}{profile}`); \
         after that the local terraform.tfstate and terraform.tfstate.backup may be removed \
         (statebucket never uploads or deletes state itself)"
    )
}

/// The CloudTrail lookup that lists who used the state key to decrypt (Terraform reads
/// state with kms:Decrypt). Lookups by resource name take the key ARN.
pub fn kms_audit_command(key_arn: &str, region: &str) -> String {
    format!(
        "aws cloudtrail lookup-events --region {region} --lookup-attributes AttributeKey=ResourceName,AttributeValue={key_arn} \
         --query \"Events[?EventName=='Decrypt'].[EventTime,Username]\" --output table"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_state_guidance_names_the_exact_commands() {
        let text = local_state_guidance(
            "stacks/eks",
            "/repo/environments/dev/backend.hcl",
            "state",
            "eks/terraform.tfstate",
            Some("terraform"),
        );
        assert!(text.starts_with("stacks/eks/terraform.tfstate holds local state"));
        assert!(text.contains("`terraform -chdir=stacks/eks init -migrate-state -backend-config=/repo/environments/dev/backend.hcl`"));
        assert!(text.contains("aws s3 ls s3://state/eks/terraform.tfstate --profile terraform"));
        assert!(text.contains("never uploads or deletes state"));
    }

    #[test]
    fn the_audit_command_filters_decrypt_events_of_the_key() {
        let command = kms_audit_command("arn:aws:kms:eu-west-1:111122223333:key/k", "eu-west-1");
        assert!(command.contains(
            "AttributeKey=ResourceName,AttributeValue=arn:aws:kms:eu-west-1:111122223333:key/k"
        ));
        assert!(command.contains("EventName=='Decrypt'"));
    }
}
