//! The DynamoDB lock table: reading it (three reads at once) and the writes the plan asks
//! for. There is no call here that deletes a table or turns a protection off.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, SseSpecification, SseStatus, SseType,
    TableStatus, Tag,
};

use super::Clients;
use super::errors::{AwsError, Explained, Failure, codes, read_or_absent};
use crate::desired::TABLE_BILLING_MODE;
use crate::observed::ObservedLockTable;
use crate::plan::TableSettings;
use crate::spec::Region;

// DescribeTable answers ResourceNotFound for a table that does not exist,
// DescribeContinuousBackups TableNotFound; CreateTable answers ResourceInUse for a name that
// exists (another run created it first).

pub fn table_arn(region: &Region, account: &str, table: &str) -> String {
    format!(
        "arn:{}:dynamodb:{region}:{account}:table/{table}",
        region.partition()
    )
}

fn tags_of(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    super::sdk_tags!(Tag, tags)
}

/// The table, or `None` when it does not exist. Tags are read only when the spec has some
/// (the tool merges tags in; it never needs to know of others otherwise).
pub async fn observe_table(
    clients: &Clients,
    table: &str,
    arn: &str,
    read_tags: bool,
) -> Result<Option<ObservedLockTable>, AwsError> {
    let dynamodb = &clients.dynamodb;
    let tags = async {
        if !read_tags {
            return Ok(Some(BTreeMap::new()));
        }
        read_or_absent(
            dynamodb.list_tags_of_resource().resource_arn(arn).send(),
            &[codes::DYNAMODB_RESOURCE_NOT_FOUND],
            || format!("reading the tags of table `{table}`"),
            clients,
            |output| {
                output
                    .tags()
                    .iter()
                    .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                    .collect()
            },
        )
        .await
    };
    let backups = read_or_absent(
        dynamodb
            .describe_continuous_backups()
            .table_name(table)
            .send(),
        &[
            codes::DYNAMODB_TABLE_NOT_FOUND,
            codes::DYNAMODB_RESOURCE_NOT_FOUND,
        ],
        || format!("reading point-in-time recovery of table `{table}`"),
        clients,
        |output| {
            output
                .continuous_backups_description()
                .and_then(|description| description.point_in_time_recovery_description())
                .and_then(|recovery| recovery.point_in_time_recovery_status())
                .map(|status| *status == PointInTimeRecoveryStatus::Enabled)
        },
    );
    let described = read_or_absent(
        dynamodb.describe_table().table_name(table).send(),
        &[codes::DYNAMODB_RESOURCE_NOT_FOUND],
        || format!("reading DynamoDB table `{table}` (dynamodb:DescribeTable)"),
        clients,
        |output| output.table,
    );
    let (described, backups, tags) = tokio::join!(described, backups, tags);
    let Some(description) = described?.flatten() else {
        return Ok(None);
    };
    let type_of = |attribute: &str| {
        description
            .attribute_definitions()
            .iter()
            .find(|definition| definition.attribute_name() == attribute)
            .map_or("?".to_owned(), |definition| {
                definition.attribute_type().as_str().to_owned()
            })
    };
    let hash_key = description
        .key_schema()
        .iter()
        .filter(|element| *element.key_type() == KeyType::Hash)
        .map(|element| {
            (
                element.attribute_name().to_owned(),
                type_of(element.attribute_name()),
            )
        })
        .collect();
    Ok(Some(ObservedLockTable {
        hash_key,
        has_range_key: description
            .key_schema()
            .iter()
            .any(|element| *element.key_type() == KeyType::Range),
        // A table created with provisioned capacity reports no billing mode summary.
        billing_mode: description
            .billing_mode_summary()
            .and_then(|summary| summary.billing_mode())
            .map_or("PROVISIONED".to_owned(), |mode| mode.as_str().to_owned()),
        kms_encrypted: description.sse_description().is_some_and(|sse| {
            sse.status() == Some(&SseStatus::Enabled) && sse.sse_type() == Some(&SseType::Kms)
        }),
        deletion_protection: description.deletion_protection_enabled().unwrap_or(false),
        point_in_time_recovery: backups?.flatten(),
        tags: tags?.unwrap_or_default(),
    }))
}

/// CreateTable with everything it can carry; then waits (up to five minutes) for the table to
/// be ACTIVE, since point-in-time recovery cannot be turned on before.
pub async fn create_table(
    clients: &Clients,
    table: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let doing = format!("creating DynamoDB table `{table}`");
    let sent = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("LockID")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("LockID")
                .key_type(KeyType::Hash)
                .build()
                .expect("name and type are set"),
        )
        .billing_mode(BillingMode::from(TABLE_BILLING_MODE))
        .sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .sse_type(SseType::Kms)
                .build(),
        )
        .deletion_protection_enabled(true)
        .set_tags((!tags.is_empty()).then(|| tags_of(tags)))
        .send()
        .await;
    let active = match sent {
        Ok(output) => {
            output
                .table_description()
                .and_then(|description| description.table_status())
                == Some(&TableStatus::Active)
        }
        Err(error) => {
            let failure = Failure::from_sdk(&error);
            if !failure.is(codes::DYNAMODB_RESOURCE_IN_USE) {
                return Err(failure.into_error(doing, clients));
            }
            tracing::debug!(%table, "the table was created meanwhile (by another run)");
            false
        }
    };
    if active {
        return Ok(());
    }
    let mut delay = Duration::from_millis(250);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let status = clients
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .explained(clients, || doing.clone())?
            .table
            .and_then(|description| description.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(AwsError::new(
                doing,
                format!("the table is still {status:?} after five minutes"),
                Some("check it in the DynamoDB console, then rerun `statebucket apply`".into()),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One UpdateTable per setting: billing mode and deletion protection cannot always be
/// changed in the same call. Only ever towards `to` (on-demand, protected).
pub async fn update_table(
    clients: &Clients,
    table: &str,
    from: &TableSettings,
    to: &TableSettings,
) -> Result<(), AwsError> {
    if from.billing_mode != to.billing_mode {
        clients
            .dynamodb
            .update_table()
            .table_name(table)
            .billing_mode(BillingMode::from(to.billing_mode.as_str()))
            .send()
            .await
            .explained(clients, || {
                format!("switching table `{table}` to on-demand billing")
            })?;
    }
    if to.deletion_protection && !from.deletion_protection {
        clients
            .dynamodb
            .update_table()
            .table_name(table)
            .deletion_protection_enabled(true)
            .send()
            .await
            .explained(clients, || {
                format!("turning on deletion protection of table `{table}`")
            })?;
    }
    Ok(())
}

pub async fn enable_point_in_time_recovery(clients: &Clients, table: &str) -> Result<(), AwsError> {
    clients
        .dynamodb
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .expect("the flag is set"),
        )
        .send()
        .await
        .map(drop)
        .explained(clients, || {
            format!("turning on point-in-time recovery of table `{table}`")
        })
}

pub async fn tag_table(
    clients: &Clients,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    clients
        .dynamodb
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags_of(tags)))
        .send()
        .await
        .map(drop)
        .explained(clients, || format!("tagging {arn}"))
}
