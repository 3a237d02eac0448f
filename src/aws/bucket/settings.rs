//! A bucket's settings, one GET each: `observe_bucket` reads every setting it wants, and
//! verify reads again only those that differ from the plan. S3 documents bucket
//! configuration as eventually consistent (S3 User Guide, "Amazon S3 data consistency
//! model": a change "might take a short amount of time" to be seen), so a read right after a
//! write may still show the old value.

use super::{BucketAt, encryption, lifecycle, logging, object_lock, ownership, policy};
use super::{public_access, tags, versioning};
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::AwsError;
use crate::observed::{ObjectLockState, ObservedBucket, Versioning};
use crate::plan::{Facet, Target};

/// Whether `reread` can read `facet` again on its own: a setting of the bucket itself, one
/// GET (logging too, though apply writes it after the log bucket's grant).
pub fn rereadable(facet: Facet) -> bool {
    facet.target() == Target::BucketSetting || facet == Facet::Logging
}

/// The first pause before reading a setting again, doubled after each read up to the
/// longest.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(4);

/// Reads again, with growing pauses, until `settled` holds for the last read or `patience`
/// would pass: the last read and how long it waited; a value settled at first makes no read
/// at all.
pub async fn until_settled<T, E>(
    mut last: T,
    patience: Duration,
    settled: impl Fn(&T) -> bool,
    mut read_again: impl AsyncFnMut(&T) -> Result<T, E>,
) -> Result<(T, Duration), E> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    while !settled(&last) && started.elapsed() + pause <= patience {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        last = read_again(&last).await?;
    }
    Ok((last, started.elapsed()))
}

/// What one GET read, to be put into the observed bucket.
pub(super) type Update = Box<dyn FnOnce(&mut ObservedBucket) + Send>;

/// Reads `facets` of the bucket again, all at once, into `observed`. Each facet must be
/// `rereadable`; a bucket that is gone leaves its settings as they were.
pub async fn reread(
    bucket: BucketAt<'_>,
    facets: &[Facet],
    observed: &mut ObservedBucket,
) -> Result<(), AwsError> {
    for update in read_facets(bucket, facets).await? {
        update(observed);
    }
    Ok(())
}

/// Reads `facets`, all at once; the first failure in `facets`' order is the one reported.
pub(super) async fn read_facets(
    bucket: BucketAt<'_>,
    facets: &[Facet],
) -> Result<Vec<Update>, AwsError> {
    let reads = facets
        .iter()
        .map(|facet| Box::pin(read_one(bucket, *facet)));
    futures::future::join_all(reads).await.into_iter().collect()
}

async fn read_one(bucket: BucketAt<'_>, facet: Facet) -> Result<Update, AwsError> {
    let bucket = &bucket;
    Ok(match facet {
        Facet::Versioning => {
            let read = versioning::read(bucket).await?.unwrap_or(Versioning::Never);
            Box::new(move |observed| observed.versioning = read)
        }
        Facet::Encryption => {
            let read = encryption::read(bucket).await?.flatten();
            Box::new(move |observed| observed.encryption = read)
        }
        Facet::PublicAccessBlock => {
            let read = public_access::read(bucket).await?.unwrap_or_default();
            Box::new(move |observed| observed.public_access = read)
        }
        Facet::Ownership => {
            let read = ownership::read(bucket).await?.flatten();
            Box::new(move |observed| observed.ownership = read)
        }
        Facet::Policy => {
            let read = policy::read(bucket).await?.flatten();
            Box::new(move |observed| observed.policy = read)
        }
        Facet::Tags => {
            let read = tags::read(bucket).await?.unwrap_or_default();
            Box::new(move |observed| observed.tags = read)
        }
        Facet::Lifecycle => {
            let (rules, minimum_object_size) = lifecycle::read(bucket).await?.unwrap_or_default();
            Box::new(move |observed| {
                observed.lifecycle = rules;
                observed.lifecycle_minimum_object_size = minimum_object_size;
            })
        }
        Facet::Logging => {
            let read = logging::read(bucket).await?.flatten();
            Box::new(move |observed| observed.logging = read)
        }
        Facet::ObjectLock => {
            // Read and absent: Object Lock is off.
            let read = object_lock::read(bucket).await?.unwrap_or(ObjectLockState {
                enabled: false,
                default_retention: None,
            });
            Box::new(move |observed| observed.object_lock = Some(read))
        }
        other => unreachable!("{other} is not a bucket setting read on its own"),
    })
}
