//! The apply lock that holds across machines: an object of statebucket's own in the state
//! bucket, `.statebucket/apply.lock`, taken with a conditional write (`If-None-Match: *`,
//! the primitive Terraform's lockfile uses), held under a lease the holder renews, released
//! with a conditional delete (`If-Match` its ETag, so that a lock taken over by another run
//! is never removed). A lock whose holder stopped renewing (a killed runner) is stale once
//! its lease has passed since its last write; a waiting run then takes it over with a
//! conditional write on the stale lock's ETag, so only one run can.
//!
//! It is taken only around what is not idempotent across runs: creating a KMS key (and
//! repairing its alias), and rewriting a shared log bucket's policy. An environment with a
//! replica has one lock, in the primary bucket, that covers both buckets: a run never holds
//! one lock while it waits for another, so any number of runs at once cannot deadlock. An environment with a
//! replica has one lock, in the primary bucket, that covers both buckets: a run never holds
//! one lock while it waits for another, so any number of runs at once cannot deadlock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::date_time::Format;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::Clients;
use super::errors::{AwsError, Failure};

/// The key of the lock object.
pub const LOCK_KEY: &str = ".statebucket/apply.lock";
/// How long a lock outlives its holder's last renewal. The holder renews it every third of
/// this; a runner killed while holding it blocks others for at most this long (plus
/// `CLOCK_SKEW`).
pub const LEASE: Duration = Duration::from_secs(60);
/// Clocks of the machines taking the lock may differ by this much.
pub const CLOCK_SKEW: Duration = Duration::from_secs(10);
/// How often a waiting run tries the lock: soon at first (a holder's locked section is a few
/// round trips), then less often, up to `POLL_MAX`.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_millis(1000);

/// What the lock object says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub owner: String,
    pub operation: String,
    pub created: String,
    pub lease_seconds: u64,
    /// The holder's machine and process, so that a run on the same machine can tell a
    /// holder that died from one that is alive without waiting for the lease.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub pid: u32,
}

/// This machine's name, as the lock records it.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown host".to_owned())
}

/// Whether a process of this machine is gone. Only answered where the answer is sure
/// (Linux's /proc); `false` elsewhere, which leaves the lease to decide.
fn process_gone(pid: u32) -> bool {
    std::path::Path::new("/proc/self").exists()
        && pid != 0
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl LockInfo {
    fn new(operation: &str, lease: Duration) -> LockInfo {
        let host = host_name();
        let now = SystemTime::now();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        LockInfo {
            id: format!("{:x}-{nanos:x}", std::process::id()),
            owner: format!("statebucket on {host} (pid {})", std::process::id()),
            operation: operation.to_owned(),
            created: aws_smithy_types::DateTime::from(now)
                .fmt(Format::DateTime)
                .unwrap_or_default(),
            lease_seconds: lease.as_secs(),
            host,
            pid: std::process::id(),
        }
    }
}

/// The lock as another run holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub info: Option<LockInfo>,
    pub etag: String,
    /// How long ago the lock was last written (taken or renewed), by this machine's clock.
    pub age: Duration,
}

impl Holder {
    /// A holder that has not renewed within its lease (and the skew allowance) is gone; so
    /// is one of this machine whose process no longer exists (a run killed here).
    pub fn is_stale(&self) -> bool {
        let lease = self
            .info
            .as_ref()
            .map_or(LEASE, |info| Duration::from_secs(info.lease_seconds));
        let died_here = self
            .info
            .as_ref()
            .is_some_and(|info| info.host == host_name() && process_gone(info.pid));
        died_here || self.age > lease + CLOCK_SKEW
    }

    pub fn describe(&self) -> String {
        match &self.info {
            Some(info) => format!(
                "{} ({}, since {}, lock {})",
                info.owner, info.operation, info.created, info.id
            ),
            None => "an unreadable lock".to_owned(),
        }
    }
}

/// One attempt at the lock.
#[derive(Debug)]
enum Attempt {
    Taken(String),
    Held(Holder),
    /// The lock vanished between the attempt and reading it: try again at once.
    Gone,
}

/// The locks this process holds, so that an interrupt can release them at once instead of
/// leaving them to their lease.
#[derive(Debug, Clone, Default)]
pub struct HeldLocks {
    locks: Arc<std::sync::Mutex<Vec<Held>>>,
}

/// A lock as the registry knows it: where it is, and its current ETag.
#[derive(Debug)]
struct Held {
    s3: aws_sdk_s3::Client,
    bucket: String,
    etag: Arc<Mutex<String>>,
}

impl HeldLocks {
    fn hold(&self, clients: &Clients, bucket: &str, etag: &Arc<Mutex<String>>) {
        self.locks.lock().expect("held locks").push(Held {
            s3: clients.s3.clone(),
            bucket: bucket.to_owned(),
            etag: Arc::clone(etag),
        });
    }

    fn forget(&self, bucket: &str) {
        self.locks
            .lock()
            .expect("held locks")
            .retain(|held| held.bucket != bucket);
    }

    /// Releases every lock still held (on Ctrl-C).
    pub async fn release_all(&self) {
        let held = std::mem::take(&mut *self.locks.lock().expect("held locks"));
        for Held { s3, bucket, etag } in held {
            let etag = etag.lock().await.clone();
            let _ = s3
                .delete_object()
                .bucket(&bucket)
                .key(LOCK_KEY)
                .if_match(etag)
                .send()
                .await;
        }
    }
}

/// The lock, held by this run until released. Renewed in the background.
#[derive(Debug)]
pub struct HeldLock {
    clients: Clients,
    bucket: String,
    info: LockInfo,
    etag: Arc<Mutex<String>>,
    renewal: tokio::task::JoinHandle<()>,
    registry: HeldLocks,
}

impl HeldLock {
    /// Releases the lock: a conditional delete on the ETag it last wrote, so that a lock
    /// another run took over is left alone.
    pub async fn release(self) {
        self.renewal.abort();
        self.registry.forget(&self.bucket);
        let etag = self.etag.lock().await.clone();
        let _ = self
            .clients
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(LOCK_KEY)
            .if_match(etag)
            .send()
            .await;
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

/// What `take_or_wait` ended with.
#[derive(Debug)]
pub enum Acquired {
    /// This run holds the lock.
    Taken(Box<HeldLock>),
    /// Another run held the lock and has released it; this run did not take it. What the
    /// other run did may have changed what this one planned.
    Released,
}

/// Takes the lock of `bucket` when it is free (or its holder's lease has run out); when a
/// live run holds it, waits until that run releases it, without taking it, up to
/// `deadline`. `waiting` is told who holds it, once per holder.
pub async fn take_or_wait(
    clients: &Clients,
    bucket: &str,
    operation: &str,
    deadline: std::time::Instant,
    waiting: &(dyn Fn(&str) + Sync),
    registry: &HeldLocks,
) -> Result<Acquired, AwsError> {
    let info = LockInfo::new(operation, LEASE);
    let body = serde_json::to_vec(&info).expect("lock info is plain data");
    let mut told: Option<String> = None;
    let mut poll = POLL_FIRST;
    let mut held = attempt(clients, bucket, &body, None).await?;
    loop {
        let holder = match held {
            Attempt::Taken(etag) => {
                return Ok(Acquired::Taken(Box::new(hold(
                    clients, bucket, info, etag, registry,
                ))));
            }
            Attempt::Gone if told.is_some() => return Ok(Acquired::Released),
            Attempt::Gone => {
                held = attempt(clients, bucket, &body, None).await?;
                continue;
            }
            Attempt::Held(holder) => holder,
        };
        if holder.is_stale() {
            // Only one run can overwrite the stale lock's ETag; the others see 412 and
            // wait on the new holder.
            waiting(&format!(
                "taking over the stale apply lock of {} (last renewed {} s ago)",
                holder.describe(),
                holder.age.as_secs()
            ));
            held = attempt(clients, bucket, &body, Some(&holder.etag)).await?;
            continue;
        }
        let who = holder.describe();
        if std::time::Instant::now() >= deadline {
            return Err(AwsError::new(
                format!("taking the apply lock s3://{bucket}/{LOCK_KEY}"),
                format!("another apply holds the lock: {who}"),
                Some(format!(
                    "wait for it to finish and run again (or raise --lock-timeout); a lock whose holder was killed expires {} s after its last renewal",
                    (LEASE + CLOCK_SKEW).as_secs()
                )),
            ));
        }
        if told.as_deref() != Some(who.as_str()) {
            waiting(&format!("waiting for another apply: {who}"));
            told = Some(who);
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(POLL_MAX);
        // Reading is enough to see the holder go: a waiting run writes nothing.
        held = read(clients, bucket).await?;
    }
}

fn hold(
    clients: &Clients,
    bucket: &str,
    info: LockInfo,
    etag: String,
    registry: &HeldLocks,
) -> HeldLock {
    let etag = Arc::new(Mutex::new(etag));
    registry.hold(clients, bucket, &etag);
    let renewal = {
        let (clients, bucket, etag) = (clients.clone(), bucket.to_owned(), Arc::clone(&etag));
        let body = serde_json::to_vec(&info).expect("lock info is plain data");
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                let mut current = etag.lock().await;
                match attempt(&clients, &bucket, &body, Some(current.as_str())).await {
                    Ok(Attempt::Taken(renewed)) => *current = renewed,
                    // Taken over (this run was paused past its lease) or unreachable: stop
                    // renewing; release will not remove another run's lock.
                    _ => break,
                }
            }
        })
    };
    HeldLock {
        clients: clients.clone(),
        bucket: bucket.to_owned(),
        info,
        etag,
        renewal,
        registry: registry.clone(),
    }
}

/// One conditional write of the lock: `If-None-Match: *` to take a free lock, or
/// `If-Match: etag` to renew (or take over) the lock with that ETag.
async fn attempt(
    clients: &Clients,
    bucket: &str,
    body: &[u8],
    replacing: Option<&str>,
) -> Result<Attempt, AwsError> {
    let request = clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(LOCK_KEY)
        .content_type("application/json")
        .body(ByteStream::from(body.to_vec()));
    let request = match replacing {
        None => request.if_none_match("*"),
        Some(etag) => request.if_match(etag),
    };
    match request.send().await {
        Ok(output) => Ok(Attempt::Taken(
            output.e_tag().unwrap_or_default().to_owned(),
        )),
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if failure.is_condition_refused() {
                return read(clients, bucket).await;
            }
            Err(failure.into_error(
                format!("taking the apply lock s3://{bucket}/{LOCK_KEY}"),
                clients,
            ))
        }
    }
}

/// The lock as it is now.
async fn read(clients: &Clients, bucket: &str) -> Result<Attempt, AwsError> {
    match clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(LOCK_KEY)
        .send()
        .await
    {
        Ok(output) => {
            let etag = output.e_tag().unwrap_or_default().to_owned();
            let written = output
                .last_modified()
                .and_then(|time| SystemTime::try_from(*time).ok())
                .unwrap_or_else(SystemTime::now);
            let body = output
                .body
                .collect()
                .await
                .map(|bytes| bytes.into_bytes())
                .unwrap_or_default();
            Ok(Attempt::Held(Holder {
                info: serde_json::from_slice(&body).ok(),
                etag,
                age: SystemTime::now()
                    .duration_since(written)
                    .unwrap_or_default(),
            }))
        }
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if failure.status == Some(404) {
                Ok(Attempt::Gone)
            } else {
                Err(failure.into_error(
                    format!("reading the apply lock s3://{bucket}/{LOCK_KEY}"),
                    clients,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_stale_once_its_own_lease_and_the_skew_have_passed() {
        let holder = |lease_seconds: u64, age: u64| Holder {
            info: Some(LockInfo {
                id: "x".into(),
                owner: "o".into(),
                operation: "apply".into(),
                created: "2026-12-01T00:00:00Z".into(),
                lease_seconds,
                host: "another machine".into(),
                pid: 1,
            }),
            etag: "\"e\"".into(),
            age: Duration::from_secs(age),
        };
        assert!(!holder(60, 69).is_stale());
        assert!(holder(60, 71).is_stale());
        assert!(holder(2, 13).is_stale());
        let unreadable = Holder {
            info: None,
            etag: "\"e\"".into(),
            age: Duration::from_secs(65),
        };
        assert!(
            !unreadable.is_stale(),
            "an unreadable lock gets the default lease"
        );
    }
}
