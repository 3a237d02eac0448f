//! Probes made as Terraform's identity: exactly the requests Terraform makes on its state,
//! its lock and its key, with what each refusal means.

use super::{Check, Status};
use crate::aws::Clients;
use crate::aws::probe::{self, KmsRefusal, Leftovers, LockEncryption, LockProbe};
use crate::render::BackendConfig;
use crate::spec::{EnvSpec, StackSpec};

use super::policy_checks::*;

/// Where probe lock objects live: a workspace of their own (see `lock_probe`).
pub(super) const PROBE_WORKSPACE_PREFIX: &str = "statebucket-doctor-";

/// What Terraform does at init and apply, as the backend's identity.
pub(super) async fn probes(
    spec: &EnvSpec,
    stack: &StackSpec,
    config: &BackendConfig,
    clients: &Clients,
    leftovers: &Leftovers,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let bucket = config
        .string("bucket")
        .unwrap_or(spec.bucket.name.as_str())
        .to_owned();
    let key = config
        .string("key")
        .unwrap_or(stack.key.as_str())
        .to_owned();
    let prefix = config
        .string("workspace_key_prefix")
        .unwrap_or("env:")
        .to_owned();
    let bucket_arn = format!("arn:{}:s3:::{bucket}", spec.region.partition());
    let workspace_root = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };

    checks.push(list_probe(clients, &bucket, &workspace_root, &prefix, &bucket_arn).await);
    checks.extend(state_probes(clients, &bucket, &key, &bucket_arn).await);

    // Only the locks backend.hcl configures are probed: with `dynamodb_table` alone,
    // Terraform never touches a `.tflock` object.
    if config.flag("use_lockfile") {
        checks.extend(
            lock_probe(
                clients,
                config,
                &bucket,
                &key,
                &workspace_root,
                &bucket_arn,
                leftovers,
            )
            .await,
        );
    }
    if let Some(table) = config.string("dynamodb_table") {
        checks.push(lock_table_probe(clients, spec, stack, table, &bucket, &key).await);
    }
    if !config.flag("use_lockfile") && config.string("dynamodb_table").is_none() {
        checks.push(
            Check::new(
                "locking",
                Status::Warn,
                "backend.hcl sets neither `use_lockfile` nor `dynamodb_table`: Terraform runs take no lock, so two at once can overwrite each other's state",
            )
            .fix("regenerate backend.hcl with `statebucket render` or `statebucket apply`"),
        );
    }
    if let Some(key_id) = config
        .string("kms_key_id")
        .filter(|_| config.flag("encrypt"))
    {
        checks.push(kms_probe(clients, key_id).await);
        checks.push(Check::new(
            "kms audit",
            Status::Ok,
            format!(
                "who decrypted this state: {}",
                crate::guidance::kms_audit_command(key_id, spec.region.as_str())
            ),
        ));
    }
    checks
}

/// ListObjectsV2 of the workspaces, as `terraform workspace list` and init make it.
async fn list_probe(
    clients: &Clients,
    bucket: &str,
    workspace_root: &str,
    prefix: &str,
    bucket_arn: &str,
) -> Check {
    let listed = format!("ListObjectsV2 s3://{bucket}/{workspace_root}");
    match probe::list(clients, bucket, workspace_root).await {
        Ok(()) => Check::new("list workspaces", Status::Ok, listed),
        Err(refusal) => {
            // Terraform ignores a refused listing of the default prefix only.
            let status = if prefix == "env:" {
                Status::Warn
            } else {
                Status::Fail
            };
            Check::new("list workspaces", status, format!("{listed}: {refusal}"))
                .fix(refusal.fix(format!("grant s3:ListBucket on {bucket_arn}")))
        }
    }
}

/// HeadObject of the state, then GetObject when it exists: what `terraform plan` reads.
async fn state_probes(clients: &Clients, bucket: &str, key: &str, bucket_arn: &str) -> Vec<Check> {
    let state = format!("s3://{bucket}/{key}");
    let head = match probe::head(clients, bucket, key).await {
        Ok(Some(size)) => Check::new(
            "read state",
            Status::Ok,
            format!("HeadObject {state}: {size} bytes"),
        ),
        Ok(None) => {
            return vec![Check::new(
                "read state",
                Status::Ok,
                format!("HeadObject {state}: no state yet (404), as before a first init"),
            )];
        }
        Err(refusal) => {
            return vec![
                Check::new("read state", Status::Fail, format!("HeadObject {state}: {refusal}"))
                    .fix(refusal.fix(format!("grant s3:GetObject on {bucket_arn}/{key} and s3:ListBucket on {bucket_arn} (without ListBucket S3 answers 403 for a missing key)"))),
            ];
        }
    };
    let get = match probe::get(clients, bucket, key).await {
        Ok(()) => Check::new("get state", Status::Ok, format!("GetObject {state}")),
        Err(refusal) => Check::new("get state", Status::Fail, format!("GetObject {state}: {refusal}"))
            .fix(refusal.fix(format!("grant s3:GetObject on {bucket_arn}/{key} (and kms:Decrypt on the key when it is encrypted with KMS)"))),
    };
    vec![head, get]
}

/// Takes and releases a lock as Terraform does, on a probe object under a workspace of its
/// own, so the grants Terraform's documentation lists for workspaces (`<prefix>/*/<key>.tflock`)
/// cover it and the real lock is never touched.
pub(super) async fn lock_probe(
    clients: &Clients,
    config: &BackendConfig,
    bucket: &str,
    key: &str,
    workspace_root: &str,
    bucket_arn: &str,
    leftovers: &Leftovers,
) -> Vec<Check> {
    let encryption = match (config.flag("encrypt"), config.string("kms_key_id")) {
        (false, _) => LockEncryption::None,
        (true, None) => LockEncryption::Aes256,
        (true, Some(key_id)) => LockEncryption::Kms(key_id.to_owned()),
    };
    let prefix = format!("{workspace_root}{PROBE_WORKSPACE_PREFIX}");
    let lock_grant =
        format!("{bucket_arn}/{key}.tflock and {bucket_arn}/{workspace_root}*/{key}.tflock");
    // Terraform sends a SHA-256 checksum with every PutObject unless skip_s3_checksum.
    let skip_checksum = config.flag("skip_s3_checksum");
    let mut probe = probe::lock(
        clients,
        bucket,
        &prefix,
        key,
        &encryption,
        !skip_checksum,
        leftovers,
    )
    .await;
    let mut checks = Vec::new();
    if skip_checksum {
        checks.push(Check::new(
            "checksum",
            Status::Skip,
            "skip_s3_checksum = true: Terraform sends no checksum headers",
        ));
    } else if probe
        .taken
        .as_ref()
        .is_err_and(|refusal| refusal.store_failure.is_none())
    {
        // Refused with the checksum: is it the checksum the store rejects? (A store that
        // failed says nothing about checksums.)
        let plain = probe::lock(clients, bucket, &prefix, key, &encryption, false, leftovers).await;
        if plain.taken.is_ok() {
            let refusal = probe
                .taken
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            checks.push(
                Check::new(
                    "checksum",
                    Status::Fail,
                    format!("the store refuses the SHA-256 checksum header Terraform sends with every PutObject ({refusal}), and accepts the same request without it"),
                )
                .fix("set `compat: { skip_s3_checksum: true }` in the spec and run `statebucket apply` (backend.hcl gets `skip_s3_checksum = true`)"),
            );
            probe = plain;
        }
    } else {
        checks.push(Check::new(
            "checksum",
            Status::Ok,
            "the store accepts the SHA-256 checksum header (x-amz-checksum-sha256) Terraform sends",
        ));
    }
    match &probe.taken {
        Ok(()) => checks.push(Check::new("take lock", Status::Ok, format!("conditional PutObject (If-None-Match: *) of a probe lock under s3://{bucket}/{workspace_root}"))),
        Err(refusal) => {
            checks.push(
                Check::new("take lock", Status::Fail, format!("conditional PutObject of a probe lock: {refusal}"))
                    .fix(refusal.fix(format!("grant s3:PutObject on {lock_grant} (and kms:GenerateDataKey on the key when state is encrypted with KMS)"))),
            );
            return checks;
        }
    }
    checks.extend(exclusive_check(&probe));
    match &probe.released {
        Some(Ok(())) => checks.push(Check::new("release lock", Status::Ok, "DeleteObject of the probe lock; nothing left behind")),
        Some(Err(refusal)) => checks.push(
            Check::new("release lock", Status::Fail, format!("DeleteObject of the probe lock s3://{bucket}/{}: {refusal}", probe.key))
                .fix(refusal.fix(format!("grant s3:DeleteObject on {lock_grant}: Terraform deletes the lock file to release the lock"))),
        ),
        None => {}
    }
    checks
}

/// Whether the store keeps a second run from taking a lock that is held: Terraform's
/// `use_lockfile` relies on S3 refusing a conditional PutObject (`If-None-Match: *`) of a
/// key that exists. Some stores accept it and overwrite the lock (Incus, lxc/incus #3651).
pub(super) fn exclusive_check(probe: &LockProbe) -> Option<Check> {
    let check = match probe.exclusive.as_ref()? {
        Ok(true) => Check::new(
            "lock exclusive",
            Status::Ok,
            "a second conditional PutObject of the held probe lock was refused (412), as S3 refuses it: two runs cannot hold the lock at once",
        ),
        Ok(false) => Check::new(
            "lock exclusive",
            Status::Fail,
            "the store accepted a second conditional PutObject (If-None-Match: *) of a lock that is held: this store does not honour conditional writes, so `use_lockfile` cannot keep two runs apart",
        )
        .fix("use a store that honours If-None-Match (S3 does), or a DynamoDB lock table (`lock: dynamodb`) where the store's account has DynamoDB; until then never let two Terraform runs touch this state at once"),
        Err(refusal) => Check::new(
            "lock exclusive",
            Status::Warn,
            format!("a second conditional PutObject of the held probe lock was answered {refusal}, not 412: cannot tell whether the store keeps two runs apart"),
        ),
    };
    Some(check)
}

/// Reads the state digest item, as Terraform does first whenever `dynamodb_table` is set.
/// Read-only: PutItem/DeleteItem are not probed, since a probe item could outlive a killed
/// run where nothing may list it.
pub(super) async fn lock_table_probe(
    clients: &Clients,
    spec: &EnvSpec,
    stack: &StackSpec,
    table: &str,
    bucket: &str,
    key: &str,
) -> Check {
    let digest = format!("{bucket}/{key}-md5");
    match probe::lock_table_item(clients, table, &digest).await {
        Ok(()) => Check::new(
            "lock table",
            Status::Ok,
            format!("GetItem {digest} in DynamoDB table {table} (PutItem/DeleteItem not probed)"),
        ),
        Err(refusal) => Check::new(
            "lock table",
            Status::Fail,
            format!("GetItem {digest} in DynamoDB table {table}: {refusal}"),
        )
        .fix(refusal.fix(format!(
            "grant dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem on the table (`statebucket policy {} --identity{}` prints the policy), or run `statebucket apply` if the table does not exist",
            spec.name,
            stack_flag(spec, stack)
        ))),
    }
}

pub(super) async fn kms_probe(clients: &Clients, key_id: &str) -> Check {
    match probe::kms_round_trip(clients, key_id).await {
        Ok(()) => Check::new(
            "kms key",
            Status::Ok,
            format!("GenerateDataKey and Decrypt with {key_id}"),
        ),
        Err(KmsRefusal::GenerateDataKey(refusal)) => Check::new(
            "kms key",
            Status::Fail,
            format!("GenerateDataKey with {key_id}: {refusal}"),
        )
        .fix(refusal.fix(format!(
            "grant kms:GenerateDataKey and kms:Decrypt on {key_id}"
        ))),
        Err(KmsRefusal::Decrypt(refusal)) => Check::new(
            "kms key",
            Status::Fail,
            format!("Decrypt with {key_id}: {refusal}"),
        )
        .fix(refusal.fix(format!("grant kms:Decrypt on {key_id}"))),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::Client;
    use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// The probe lock taken through `put_object`, on a store whose other answers are S3's.
    async fn lock_through(put_object: &Rule) -> LockProbe {
        let list =
            mock!(Client::list_objects_v2).then_output(|| ListObjectsV2Output::builder().build());
        let delete =
            mock!(Client::delete_object).then_output(|| DeleteObjectOutput::builder().build());
        lock_with(&[&list, put_object, &delete]).await
    }

    /// The probe lock taken on a store that answers with `rules`.
    async fn lock_with(rules: &[&Rule]) -> LockProbe {
        let clients = crate::aws::mocked::clients(rules);
        probe::lock(
            &clients,
            "state",
            "env:/statebucket-doctor/",
            "app/terraform.tfstate",
            &LockEncryption::Aes256,
            true,
            &Leftovers::default(),
        )
        .await
    }

    #[tokio::test]
    async fn a_store_that_accepts_a_second_conditional_put_fails_the_lock_check() {
        let accepts_all =
            mock!(Client::put_object).then_output(|| PutObjectOutput::builder().build());
        let probe = lock_through(&accepts_all).await;
        assert_eq!(
            accepts_all.num_calls(),
            2,
            "the lock, then a second run's try"
        );
        assert_eq!(probe.released, Some(Ok(())));
        let check = exclusive_check(&probe).unwrap();
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.detail.contains(
                "does not honour conditional writes, so `use_lockfile` cannot keep two runs apart"
            ),
            "{}",
            check.detail
        );
        assert!(check.fix.unwrap().contains("lock: dynamodb"));
    }

    /// Another probe's lock under the same prefix is deleted only when it was abandoned: a
    /// fresh one belongs to a probe at work (a stack beside this one in the same run).
    #[tokio::test]
    async fn only_an_abandoned_probe_lock_is_removed_before_probing() {
        use aws_sdk_s3::types::Object;
        use aws_smithy_types::DateTime;
        use std::time::{Duration, SystemTime};
        const OTHER: &str = "env:/statebucket-doctor/77-1/app/terraform.tfstate.tflock";
        for (age_seconds, removed) in [(5, 0), (3_600, 1)] {
            let written = DateTime::from(SystemTime::now() - Duration::from_secs(age_seconds));
            let list = mock!(Client::list_objects_v2).then_output(move || {
                ListObjectsV2Output::builder()
                    .contents(Object::builder().key(OTHER).last_modified(written).build())
                    .build()
            });
            let delete_other = mock!(Client::delete_object)
                .match_requests(|request| request.key() == Some(OTHER))
                .then_output(|| DeleteObjectOutput::builder().build());
            let put = mock!(Client::put_object).then_output(|| PutObjectOutput::builder().build());
            let delete =
                mock!(Client::delete_object).then_output(|| DeleteObjectOutput::builder().build());
            lock_with(&[&list, &delete_other, &put, &delete]).await;
            assert_eq!(
                delete_other.num_calls(),
                removed,
                "written {age_seconds} s ago"
            );
            assert_eq!(delete.num_calls(), 1, "the probe's own lock is released");
        }
    }

    /// Stacks that share the probe prefix share its sweep: the listing for abandoned locks
    /// is made once per run.
    #[tokio::test]
    async fn abandoned_locks_are_looked_for_once_per_run_however_many_stacks() {
        let list =
            mock!(Client::list_objects_v2).then_output(|| ListObjectsV2Output::builder().build());
        let put = mock!(Client::put_object).then_output(|| PutObjectOutput::builder().build());
        let delete =
            mock!(Client::delete_object).then_output(|| DeleteObjectOutput::builder().build());
        let clients = crate::aws::mocked::clients(&[&list, &put, &delete]);
        let run = Leftovers::default();
        for key in ["app/terraform.tfstate", "network/terraform.tfstate"] {
            probe::lock(
                &clients,
                "state",
                "env:/statebucket-doctor-",
                key,
                &LockEncryption::Aes256,
                true,
                &run,
            )
            .await;
        }
        assert_eq!(list.num_calls(), 1);
        assert_eq!(delete.num_calls(), 2, "each probe releases its own lock");
    }

    #[tokio::test]
    async fn a_store_that_refuses_the_second_conditional_put_passes_it() {
        let precondition = || {
            Response::new(
                StatusCode::try_from(412).unwrap(),
                SdkBody::from(
                    "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>",
                ),
            )
        };
        let s3_like = mock!(Client::put_object)
            .sequence()
            .output(|| PutObjectOutput::builder().build())
            .http_response(precondition)
            .build();
        let probe = lock_through(&s3_like).await;
        assert_eq!(probe.exclusive, Some(Ok(true)));
        assert_eq!(exclusive_check(&probe).unwrap().status, Status::Ok);
    }
}
