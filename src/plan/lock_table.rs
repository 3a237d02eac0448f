//! DynamoDB lock tables (`lock: dynamodb | both`): hash key `LockID`, on-demand billing,
//! encryption with the AWS managed key, deletion protection, point-in-time recovery and the
//! spec's tags. A table with another key schema is an error, never changed.

use std::collections::BTreeMap;

use super::{Change, Facet, PlanError, Planner, TableSettings};
use crate::desired::{DesiredBucket, TABLE_BILLING_MODE};
use crate::observed::{Observed, ObservedLockTable};
use crate::spec::TableName;

/// A facet and its change; `None` when it is in sync.
type FacetChange = (Facet, Option<Change>);

/// Every lock table the stacks use: created, or kept in shape. Tables are never deleted; one
/// a stack stops using is kept (see `backend_file`).
pub(super) fn plan(
    planner: &mut Planner,
    desired: &DesiredBucket<'_>,
    observed: &Observed,
) -> Result<(), PlanError> {
    let tables = desired.spec.lock_tables();
    for table in &tables {
        let (changes, notes) = compare(
            table,
            &desired.spec.bucket.tags,
            observed.lock_tables.get(table.as_str()),
        )?;
        for (facet, change) in changes {
            planner.record(facet, change);
        }
        for note in notes {
            planner.note(note);
        }
    }
    if !tables.is_empty() {
        let names: Vec<String> = tables.iter().map(|table| format!("`{table}`")).collect();
        planner.note(format!(
            "DynamoDB locking (table {}) is deprecated in Terraform 1.11 and later; once every runner uses Terraform or OpenTofu 1.10+, set `lock: lockfile` (via `both` while older runners remain)",
            names.join(", ")
        ));
    }
    Ok(())
}

/// One lock table's changes by facet, and notes.
fn compare(
    table: &TableName,
    tags: &BTreeMap<String, String>,
    live: Option<&ObservedLockTable>,
) -> Result<(Vec<FacetChange>, Vec<String>), PlanError> {
    let name = table.to_string();
    let Some(live) = live else {
        return Ok((
            vec![
                (
                    Facet::LockTable,
                    Some(Change::CreateLockTable {
                        table: name.clone(),
                        tags: tags.clone(),
                    }),
                ),
                (
                    Facet::PointInTimeRecovery,
                    Some(Change::EnablePointInTimeRecovery {
                        table: name,
                        from: None,
                    }),
                ),
            ],
            Vec::new(),
        ));
    };
    if live.hash_key != [("LockID".to_owned(), "S".to_owned())] || live.has_range_key {
        let key = live
            .hash_key
            .iter()
            .map(|(attribute, kind)| format!("`{attribute}` ({kind})"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(PlanError::LockTableUnusable {
            table: name,
            key: if live.has_range_key {
                format!("{key} with a range key")
            } else {
                key
            },
        });
    }
    let from = TableSettings {
        billing_mode: live.billing_mode.clone(),
        deletion_protection: live.deletion_protection,
    };
    let to = TableSettings {
        billing_mode: TABLE_BILLING_MODE.to_owned(),
        deletion_protection: true,
    };
    let mut merged_tags = live.tags.clone();
    merged_tags.extend(tags.clone());
    let changes = vec![
        (
            Facet::LockTable,
            (from != to).then(|| Change::UpdateLockTable {
                table: name.clone(),
                from,
                to,
            }),
        ),
        (
            Facet::PointInTimeRecovery,
            (live.point_in_time_recovery != Some(true)).then(|| {
                Change::EnablePointInTimeRecovery {
                    table: name.clone(),
                    from: live.point_in_time_recovery,
                }
            }),
        ),
        (
            Facet::LockTableTags,
            (merged_tags != live.tags).then(|| Change::TagLockTable {
                table: name.clone(),
                from: live.tags.clone(),
                to: merged_tags,
            }),
        ),
    ];
    let notes = if live.kms_encrypted {
        Vec::new()
    } else {
        vec![format!(
            "table `{name}` is encrypted with an AWS owned key, which CloudTrail cannot show; tables statebucket creates use the AWS managed key. To switch: aws dynamodb update-table --table-name {name} --sse-specification Enabled=true,SSEType=KMS"
        )]
    };
    Ok((changes, notes))
}
