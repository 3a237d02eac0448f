//! `bucket`: name, encryption, tags, lifecycle, logging, Object Lock and the replica.

use std::collections::BTreeMap;

use super::Walker;
use super::*;
use crate::spec::names::{BucketName, KmsKeyRef, LogPrefix, Problem, Region};
use crate::spec::schema::{self};
use crate::spec::yaml::{Node, Pos, Yaml};
use crate::spec::{
    BucketSpec, Days, Encryption, KmsKey, Lifecycle, Logging, ObjectLock, ReplicaPositions,
    ReplicaSpec, RetentionMode,
};

impl Walker<'_> {
    /// The bucket, where its name stands, and where the log bucket's name stands.
    pub(super) fn bucket(
        &mut self,
        node: &Node,
        region: Option<&Region>,
    ) -> Option<(BucketSpec, Pos, Pos)> {
        let mut fields = self.fields(node, "bucket", &schema::BUCKET)?;
        let name_node = self.required(&mut fields, "name", "name: my-org-tfstate-dev");
        let name = name_node.and_then(|node| self.typed(node, "bucket.name", BucketName::parse));
        let encryption = match fields.take("encryption") {
            Some(node) => self.encryption(node, region),
            None => Some(Encryption::Aes256),
        };
        let tags = match fields.take("tags") {
            Some(node) => self.tags(node),
            None => Some(BTreeMap::new()),
        };
        let lifecycle = match fields.take("lifecycle") {
            Some(node) => self.lifecycle(node),
            None => Some(Lifecycle::default()),
        };
        // `Some(None)`: no logging asked for; `None`: asked for, with errors reported.
        let logging = match fields.take("logging") {
            Some(node) => self.logging(node, name.as_ref()).map(Some),
            None => Some(None),
        };
        let replica = match fields.take("replica") {
            Some(node) => self.replica(node, name.as_ref(), region).map(Some),
            None => Some(None),
        };
        self.finish(fields);
        let (logging, logging_pos) = match logging? {
            Some((logging, pos)) => (Some(logging), pos),
            None => (None, Pos::default()),
        };
        Some((
            BucketSpec {
                name: name?,
                encryption: encryption?,
                tags: tags?,
                lifecycle: lifecycle?,
                logging,
                replica: replica?,
                object_lock: None,
            },
            name_node?.pos,
            logging_pos,
        ))
    }

    pub(super) fn lifecycle(&mut self, node: &Node) -> Option<Lifecycle> {
        let mut fields = self.fields(node, "bucket.lifecycle", &schema::LIFECYCLE)?;
        let defaults = Lifecycle::default();
        let noncurrent = match fields.take("expire_noncurrent_after_days") {
            None => Some(defaults.expire_noncurrent_after),
            Some(node) => match &node.value {
                Yaml::String(text) if text == "never" => Some(None),
                _ => self
                    .days(node, "bucket.lifecycle.expire_noncurrent_after_days", true)
                    .map(Some),
            },
        };
        let abort = match fields.take("abort_incomplete_uploads_after_days") {
            None => Some(defaults.abort_incomplete_uploads_after),
            Some(node) => self.days(
                node,
                "bucket.lifecycle.abort_incomplete_uploads_after_days",
                false,
            ),
        };
        self.finish(fields);
        Some(Lifecycle {
            expire_noncurrent_after: noncurrent?,
            abort_incomplete_uploads_after: abort?,
        })
    }

    pub(super) fn days(&mut self, node: &Node, path: &str, never_allowed: bool) -> Option<Days> {
        let hint = if never_allowed {
            "write a number of days from 1 to 36500, or `never` to keep every version"
        } else {
            "write a number of days from 1 to 36500"
        };
        let days = match &node.value {
            Yaml::Number(text) => text.parse::<u32>().ok().and_then(Days::new),
            _ => None,
        };
        if days.is_none() {
            let found = match &node.value {
                Yaml::Number(text) | Yaml::String(text) => format!("`{text}`"),
                other => other.kind().to_owned(),
            };
            self.report(
                node.pos,
                Problem::new(format!(
                    "`{path}` must be a whole number of days, found {found}"
                ))
                .hint(hint),
            );
        }
        days
    }

    /// The logging target, and where its bucket name stands.
    pub(super) fn logging(
        &mut self,
        node: &Node,
        state_bucket: Option<&BucketName>,
    ) -> Option<(Logging, Pos)> {
        let mut fields = self.fields(node, "bucket.logging", &schema::LOGGING)?;
        let bucket_node = self.required(&mut fields, "bucket", "bucket: my-org-s3-access-logs");
        let bucket = bucket_node
            .and_then(|node| self.typed(node, "bucket.logging.bucket", BucketName::parse));
        let prefix = fields
            .take("prefix")
            .map(|node| self.typed(node, "bucket.logging.prefix", LogPrefix::parse));
        self.finish(fields);
        let bucket = bucket?;
        let bucket_pos = bucket_node?.pos;
        if state_bucket == Some(&bucket) {
            self.report(
                bucket_pos,
                Problem::new("the state bucket cannot log into itself")
                    .hint("each log delivery would write an object that is logged again; use a separate log bucket in the same account and region"),
            );
            return None;
        }
        let prefix = match prefix {
            Some(prefix) => prefix?,
            None => LogPrefix::for_bucket(state_bucket?),
        };
        Some((Logging { bucket, prefix }, bucket_pos))
    }

    /// `bucket.replica`: a region other than the bucket's, a valid name (default
    /// `<bucket>-replica`) other than the bucket's, its own encryption, Object Lock.
    pub(super) fn replica(
        &mut self,
        node: &Node,
        primary: Option<&BucketName>,
        primary_region: Option<&Region>,
    ) -> Option<ReplicaSpec> {
        let mut fields = self.fields(node, "bucket.replica", &schema::REPLICA)?;
        let region_node = self.required(&mut fields, "region", "region: eu-central-1");
        let region =
            region_node.and_then(|node| self.typed(node, "bucket.replica.region", Region::parse));
        let name_node = fields.take("name");
        let name = match name_node {
            Some(node) => self.typed(node, "bucket.replica.name", BucketName::parse),
            None => primary.and_then(|primary| {
                let default = format!("{primary}-replica");
                self.located(
                    node.pos,
                    BucketName::parse(&default).map_err(|problem| {
                        Problem::new(format!(
                            "the replica's default name `{default}` is not a valid bucket name: {}",
                            problem.message
                        ))
                        .hint("name the replica: `name: SHORTER-NAME-replica`")
                    }),
                )
            }),
        };
        let encryption = match fields.take("encryption") {
            Some(node) => self.encryption_at(node, "bucket.replica.encryption", region.as_ref()),
            None => Some(Encryption::Aes256),
        };
        let object_lock = match fields.take("object_lock") {
            Some(node) => self.object_lock(node).map(Some),
            None => Some(None),
        };
        let backend_file_node = fields.take("backend_file");
        let backend_file = match backend_file_node {
            Some(node) => self
                .typed(node, "bucket.replica.backend_file", |text| {
                    relative_path(text, &[".hcl", ".tfbackend"])
                })
                .map(Some),
            None => Some(None),
        };
        self.finish(fields);
        let (region, name) = (region?, name?);
        if primary_region == Some(&region) {
            self.report(
                region_node?.pos,
                Problem::new(format!(
                    "the replica is in {region}, the bucket's own region; it would not survive the loss of that region"
                ))
                .hint("set `bucket.replica.region` to another region of the same partition"),
            );
            return None;
        }
        if primary == Some(&name) {
            self.report(
                name_node.map_or(node.pos, |node| node.pos),
                Problem::new("the replica cannot be the bucket itself")
                    .hint("name another bucket, or leave `name` out for `<bucket>-replica`"),
            );
            return None;
        }
        Some(ReplicaSpec {
            name,
            region,
            encryption: encryption?,
            object_lock: object_lock?,
            backend_file: backend_file?,
            positions: ReplicaPositions {
                name: name_node.map_or(node.pos, |node| node.pos),
                backend_file: backend_file_node.map_or(node.pos, |node| node.pos),
            },
        })
    }

    /// `object_lock: { mode: governance | compliance, days: N }`.
    pub(super) fn object_lock(&mut self, node: &Node) -> Option<ObjectLock> {
        let mut fields = self.fields(node, "bucket.replica.object_lock", &schema::OBJECT_LOCK)?;
        let mode_node = self.required(&mut fields, "mode", "mode: governance");
        let days_node = self.required(&mut fields, "days", "days: 30");
        self.finish(fields);
        let mode = mode_node.and_then(|node| {
            let text = self.string(node, "bucket.replica.object_lock.mode")?;
            match text.to_ascii_lowercase().as_str() {
                "governance" => Some(RetentionMode::Governance),
                "compliance" => Some(RetentionMode::Compliance),
                _ => {
                    self.report(
                        node.pos,
                        Problem::new(format!("unknown Object Lock mode `{text}`")).hint(
                            "`governance` (users with s3:BypassGovernanceRetention may still delete) or `compliance` (nobody can, not even root, until the days have passed)",
                        ),
                    );
                    None
                }
            }
        });
        let days =
            days_node.and_then(|node| self.days(node, "bucket.replica.object_lock.days", false));
        Some(ObjectLock {
            mode: mode?,
            days: days?,
        })
    }

    pub(super) fn encryption(
        &mut self,
        node: &Node,
        region: Option<&Region>,
    ) -> Option<Encryption> {
        self.encryption_at(node, "bucket.encryption", region)
    }

    /// An encryption setting at `path`; a KMS key ARN must be in `region`.
    pub(super) fn encryption_at(
        &mut self,
        node: &Node,
        path: &str,
        region: Option<&Region>,
    ) -> Option<Encryption> {
        let forms = "write `encryption: aes256`, or `encryption: { kms_key: alias/terraform-state, create_key: true }`";
        match &node.value {
            Yaml::String(text) if text.eq_ignore_ascii_case("aes256") => Some(Encryption::Aes256),
            Yaml::String(text)
                if text.eq_ignore_ascii_case("kms") || text.eq_ignore_ascii_case("aws:kms") =>
            {
                self.report(
                    node.pos,
                    Problem::new("KMS encryption needs a key").hint(forms),
                );
                None
            }
            Yaml::Map(_) => {
                let mut fields = self.fields(node, path, &schema::KMS_ENCRYPTION)?;
                let key_node =
                    self.required(&mut fields, "kms_key", "kms_key: alias/terraform-state");
                let create_key = match fields.take("create_key") {
                    None => Some(false),
                    Some(node) => self.boolean(node, "create_key"),
                };
                self.finish(fields);
                let key_node = key_node?;
                let reference = self.typed(key_node, &format!("{path}.kms_key"), |text| {
                    KmsKeyRef::parse(text, region)
                })?;
                match (reference, create_key?) {
                    (reference, false) => Some(Encryption::Kms(KmsKey::Existing(reference))),
                    (KmsKeyRef::Alias(alias), true) => {
                        Some(Encryption::Kms(KmsKey::Managed(alias)))
                    }
                    (reference, true) => {
                        self.report(
                            key_node.pos,
                            Problem::new(format!("`create_key: true` needs an alias to create, but `{reference}` names a key"))
                                .hint("use `kms_key: alias/NAME` to have the key created, or drop `create_key` to use this existing key"),
                        );
                        None
                    }
                }
            }
            Yaml::String(text) => {
                self.report(
                    node.pos,
                    Problem::new(format!("unknown encryption `{text}`")).hint(forms),
                );
                None
            }
            _ => {
                self.wrong_kind(node, path, "`aes256` or a mapping", Some(forms));
                None
            }
        }
    }

    /// S3 tagging rules: at most 50 tags; keys 1-128 characters and not `aws:`; values up to 256.
    pub(super) fn tags(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        let fields = self.named(node, "bucket.tags")?;
        let mut tags = BTreeMap::new();
        let mut ok = true;
        if fields.entries.len() > 50 {
            self.report(
                node.pos,
                Problem::new(format!(
                    "{} tags given; S3 allows at most 50 per bucket",
                    fields.entries.len()
                )),
            );
            ok = false;
        }
        for (key, key_node, value_node) in &fields.entries {
            if key.is_empty()
                || key.chars().count() > 128
                || key.to_ascii_lowercase().starts_with("aws:")
            {
                self.report(
                    key_node.pos,
                    Problem::new(format!("tag key `{key}` is not allowed"))
                        .hint("tag keys are 1-128 characters and must not start with `aws:`"),
                );
                ok = false;
                continue;
            }
            let value = match &value_node.value {
                Yaml::String(text) | Yaml::Number(text) => text.clone(),
                Yaml::Bool(flag) => flag.to_string(),
                other => {
                    self.report(
                        value_node.pos,
                        Problem::new(format!(
                            "tag `{key}` must have a string value, found {}",
                            other.kind()
                        )),
                    );
                    ok = false;
                    continue;
                }
            };
            if value.chars().count() > 256 {
                self.report(
                    value_node.pos,
                    Problem::new(format!(
                        "the value of tag `{key}` is longer than 256 characters"
                    )),
                );
                ok = false;
                continue;
            }
            tags.insert((*key).to_owned(), value);
        }
        ok.then_some(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn lifecycle_and_logging() {
        let bucket =
            |extra: &str| DEV.replace("  tags: { team", &format!("{extra}\n  tags: {{ team"));
        let default = parse_spec("e/x.yaml", "x", DEV).unwrap();
        assert_eq!(default.bucket.lifecycle, Lifecycle::default());
        assert_eq!(default.bucket.logging, None);
        let custom = parse_spec(
            "e/x.yaml",
            "x",
            &bucket("  lifecycle: { expire_noncurrent_after_days: never, abort_incomplete_uploads_after_days: 2 }\n  logging: { bucket: acme-logs, prefix: tf/dev/ }"),
        )
        .unwrap();
        assert_eq!(custom.bucket.lifecycle.expire_noncurrent_after, None);
        assert_eq!(
            custom.bucket.lifecycle.abort_incomplete_uploads_after.get(),
            2
        );
        let logging = custom.bucket.logging.unwrap();
        assert_eq!(
            (logging.bucket.as_str(), logging.prefix.as_str()),
            ("acme-logs", "tf/dev/")
        );

        let zero = one_error(&bucket("  lifecycle: { expire_noncurrent_after_days: 0 }"));
        assert_eq!(
            zero.message,
            "`bucket.lifecycle.expire_noncurrent_after_days` must be a whole number of days, found `0`"
        );
        let never = one_error(&bucket(
            "  lifecycle: { abort_incomplete_uploads_after_days: never }",
        ));
        assert!(never.message.contains("found `never`"), "{never:?}");
        let itself = one_error(&bucket("  logging: { bucket: my-terraform-state-dev }"));
        assert_eq!(itself.message, "the state bucket cannot log into itself");
        let prefix = one_error(&bucket("  logging: { bucket: acme-logs, prefix: tf }"));
        assert!(prefix.message.contains("ending in `/`"), "{prefix:?}");
    }

    #[test]
    fn encryption_forms() {
        let kms = DEV.replace(
            "encryption: aes256",
            "encryption: { kms_key: alias/tf-state, create_key: true }",
        );
        let spec = parse_spec("e/x.yaml", "x", &kms).unwrap();
        assert!(matches!(
            spec.bucket.encryption,
            Encryption::Kms(KmsKey::Managed(_))
        ));
        let existing = DEV.replace(
            "encryption: aes256",
            "encryption: { kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab }",
        );
        assert!(matches!(
            parse_spec("e/x.yaml", "x", &existing)
                .unwrap()
                .bucket
                .encryption,
            Encryption::Kms(KmsKey::Existing(KmsKeyRef::KeyId(_)))
        ));
        let create_by_id = one_error(&DEV.replace(
            "encryption: aes256",
            "encryption: { kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab, create_key: true }",
        ));
        assert!(create_by_id.message.contains("needs an alias"));
        assert_mentions(
            &dev_error("encryption: aes256", "encryption: kms"),
            &["needs a key"],
        );
        assert_mentions(
            &dev_error("encryption: aes256", "encryption: des"),
            &["unknown encryption"],
        );
        assert_mentions(
            &dev_error(
                "encryption: aes256",
                "encryption: { kms_key: alias/x, create_key: \"yes\" }",
            ),
            &["true or false"],
        );
    }
}
