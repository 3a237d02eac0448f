//! Terraform's state lock, taken and released exactly as Terraform's S3 backend does: the
//! lock file beside the state (`use_lockfile`) and the DynamoDB item.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;

use super::super::Clients;
use super::super::errors::{AwsError, Failure, codes};
use crate::tfstate::{LockHolder, StatePath, TerraformLockInfo};

use super::*;

/// Terraform's state lock as this run holds it: the lock file, the DynamoDB lock item, or
/// both, each released only while it is still this run's (matched on the lock ID).
#[derive(Debug, Clone)]
pub struct TerraformLock {
    clients: Clients,
    path: StatePath,
    info: TerraformLockInfo,
    lock_file: bool,
    table: Option<String>,
}

/// The lock this run may hold, for whoever must release it: the command when it ends, or
/// the Ctrl-C handler. A lock is registered before it is requested, so that one whose
/// answer was cut off by the interrupt is released too.
#[derive(Debug, Clone, Default)]
pub struct LockSlot(Arc<Mutex<Option<TerraformLock>>>);

impl LockSlot {
    fn set(&self, lock: &TerraformLock) {
        *self.0.lock().expect("lock slot") = Some(lock.clone());
    }

    fn clear(&self) {
        *self.0.lock().expect("lock slot") = None;
    }

    /// Releases the registered lock, if any; the problems met, for the user to act on.
    pub async fn release(&self) -> Vec<String> {
        let lock = self.0.lock().expect("lock slot").take();
        match lock {
            Some(lock) => lock.release().await,
            None => Vec::new(),
        }
    }
}

/// The outcome of asking for Terraform's lock.
#[derive(Debug)]
pub enum LockOutcome {
    Taken,
    Held(LockHolder),
}

/// Takes Terraform's lock as its S3 backend does: first the lock file (a PutObject with
/// `If-None-Match: *`, encrypted as the state is), then the DynamoDB lock item (a PutItem
/// on `attribute_not_exists(LockID)`); if the second is held, the first is released.
pub async fn lock(
    clients: &Clients,
    path: &StatePath,
    info: TerraformLockInfo,
    lock_file: bool,
    table: Option<&str>,
    encryption: &ObjectEncryption,
    slot: &LockSlot,
) -> Result<LockOutcome, AwsError> {
    let mut held = TerraformLock {
        clients: clients.clone(),
        path: path.clone(),
        info,
        lock_file,
        table: None,
    };
    slot.set(&held);
    if lock_file {
        let key = path.lock_file_key();
        let request = clients
            .s3
            .put_object()
            .bucket(&path.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(held.info.to_json().into_bytes()));
        let request = match &encryption.algorithm {
            Some(algorithm) => request
                .server_side_encryption(algorithm.clone())
                .set_ssekms_key_id(encryption.kms_key_id.clone()),
            None => request,
        };
        if let Err(error) = request.send().await {
            let failure = Failure::from_sdk(&error);
            if failure.is_condition_refused() {
                slot.clear();
                return Ok(LockOutcome::Held(lock_file_holder(clients, path).await?));
            }
            // Whether a write that failed otherwise (a timeout) took effect is unknown.
            slot.release().await;
            return Err(failure.into_error(
                format!(
                    "taking Terraform's lock s3://{}/{key} (s3:PutObject)",
                    path.bucket
                ),
                clients,
            ));
        }
    }
    if let Some(table) = table {
        held.table = Some(table.to_owned());
        slot.set(&held);
        let put = clients
            .dynamodb
            .put_item()
            .table_name(table)
            .item("LockID", AttributeValue::S(path.lock_id()))
            .item("Info", AttributeValue::S(held.info.to_json()))
            .condition_expression("attribute_not_exists(LockID)")
            .send()
            .await;
        if let Err(error) = put {
            let failure = Failure::from_sdk(&error);
            if failure.is(codes::CONDITIONAL_CHECK_FAILED) {
                // Held by another: only the lock file is this run's to release.
                held.table = None;
                slot.set(&held);
                slot.release().await;
                return Ok(LockOutcome::Held(
                    lock_item_holder(clients, path, table).await?,
                ));
            }
            slot.release().await;
            return Err(failure.into_error(
                format!(
                    "taking Terraform's lock item {} in DynamoDB table {table} (dynamodb:PutItem)",
                    path.lock_id()
                ),
                clients,
            ));
        }
    }
    Ok(LockOutcome::Taken)
}

async fn lock_file_holder(clients: &Clients, path: &StatePath) -> Result<LockHolder, AwsError> {
    let place = format!("lock file s3://{}/{}", path.bucket, path.lock_file_key());
    let read = clients
        .s3
        .get_object()
        .bucket(&path.bucket)
        .key(path.lock_file_key())
        .send()
        .await;
    let text = match read {
        Ok(output) => String::from_utf8_lossy(&body(output.body, path).await?).into_owned(),
        // Released between the attempt and the read: still refused, the user runs again.
        Err(_) => String::new(),
    };
    Ok(TerraformLockInfo::holder(&text, place))
}

async fn lock_item_holder(
    clients: &Clients,
    path: &StatePath,
    table: &str,
) -> Result<LockHolder, AwsError> {
    let place = format!("DynamoDB table {table}");
    let item = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("LockID", AttributeValue::S(path.lock_id()))
        .consistent_read(true)
        .send()
        .await
        .ok();
    let info = item
        .as_ref()
        .and_then(|output| output.item())
        .and_then(|item| item.get("Info"))
        .and_then(|value| value.as_s().ok())
        .cloned()
        .unwrap_or_default();
    Ok(TerraformLockInfo::holder(&info, place))
}

impl TerraformLock {
    /// Releases what this run holds: the DynamoDB item only while its `Info` is this run's,
    /// the lock file only while its `ID` is (Terraform's unlock compares the ID too).
    async fn release(self) -> Vec<String> {
        let mut problems = Vec::new();
        let path = &self.path;
        if let Some(table) = &self.table {
            let deleted = self
                .clients
                .dynamodb
                .delete_item()
                .table_name(table)
                .key("LockID", AttributeValue::S(path.lock_id()))
                .condition_expression("Info = :info")
                .expression_attribute_values(":info", AttributeValue::S(self.info.to_json()))
                .send()
                .await;
            if let Err(error) = deleted {
                let failure = Failure::from_sdk(&error);
                if !failure.is(codes::CONDITIONAL_CHECK_FAILED) {
                    problems.push(format!(
                        "the lock item {} in DynamoDB table {table} was not released: {}",
                        path.lock_id(),
                        failure.short()
                    ));
                }
            }
        }
        if self.lock_file {
            let key = path.lock_file_key();
            let read = self
                .clients
                .s3
                .get_object()
                .bucket(&path.bucket)
                .key(&key)
                .send()
                .await;
            match read {
                Ok(output) => {
                    let etag = output.e_tag().map(str::to_owned);
                    let text = match body(output.body, path).await {
                        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                        Err(_) => String::new(),
                    };
                    let ours = serde_json::from_str::<TerraformLockInfo>(&text)
                        .is_ok_and(|info| info.id == self.info.id);
                    if ours {
                        let deleted = self
                            .clients
                            .s3
                            .delete_object()
                            .bucket(&path.bucket)
                            .key(&key)
                            .set_if_match(etag)
                            .send()
                            .await;
                        if let Err(error) = deleted {
                            problems.push(format!(
                                "the lock file s3://{}/{key} was not released: {}",
                                path.bucket,
                                Failure::from_sdk(&error).short()
                            ));
                        }
                    }
                }
                Err(error) => {
                    let failure = Failure::from_sdk(&error);
                    if failure.status != Some(404) {
                        problems.push(format!(
                            "the lock file s3://{}/{key} could not be read to release it: {}",
                            path.bucket,
                            failure.short()
                        ));
                    }
                }
            }
        }
        problems
    }
}
