//! The top level of a spec: region, account, profiles, `compat`, `opentofu`.

use super::Walker;
use super::*;
use crate::spec::names::{
    AccountId, EndpointUrl, EnvName, KmsKeyRef, Problem, ProfileName, Region, closest,
};
use crate::spec::schema::{self};
use crate::spec::yaml::{Node, Pos, Yaml};
use crate::spec::{
    AccessSpec, BucketSpec, Compat, Encryption, EnvSpec, KmsKey, Layout, Positions, StackSpec,
    StoreFeature, TofuEncryption, TofuPhase,
};

impl Walker<'_> {
    pub(super) fn env_spec(&mut self, root: &Node, name: EnvName, source: &str) -> Option<EnvSpec> {
        if root.value == Yaml::Null {
            self.report(
                root.pos,
                Problem::new("the spec is empty")
                    .hint("start from environments/dev.yaml in the statebucket README"),
            );
            return None;
        }
        let mut top = self.fields(root, "", &schema::SPEC)?;
        let region_node = self.required(&mut top, "region", "region: eu-west-1");
        let region = region_node.and_then(|node| self.typed(node, "region", Region::parse));
        let account_id = top
            .take("account_id")
            .and_then(|node| self.account_id(node));
        // Optional here: a spec whose stacks all authenticate with `web_identity` needs
        // none; a stack that needs it reports it missing (see `credentials`).
        let profile = top
            .take("profile")
            .map(|node| self.typed(node, "profile", ProfileName::parse));
        let bootstrap_profile = top
            .take("bootstrap_profile")
            .map(|node| self.typed(node, "bootstrap_profile", ProfileName::parse));
        let endpoint = top
            .take("endpoint")
            .map(|node| self.typed(node, "endpoint", EndpointUrl::parse));
        let bucket = self
            .required(&mut top, "bucket", "bucket: { name: my-org-tfstate-dev }")
            .and_then(|node| self.bucket(node, region.as_ref()));
        let bucket_name = bucket.as_ref().map(|(bucket, _, _)| &bucket.name);
        let inherited = Inherited {
            bucket: bucket_name,
            profile: match &profile {
                Some(profile) => profile.as_ref().map(Some),
                None => Some(None),
            },
            account_id: account_id.as_ref().is_some_and(Option::is_some),
            top: top.pos,
        };
        let backend_node = top.take("backend");
        let stacks_node = top.take("stacks");
        let defaults_node = top.take("stack_defaults");
        let layout = if stacks_node.is_some() {
            Layout::Stacks
        } else {
            Layout::Backend
        };
        let access = self.top_access(top.take("access"), layout, top.pos);
        let stacks = self.layout_stacks(
            [backend_node, stacks_node, defaults_node],
            top.pos,
            &name,
            source,
            &inherited,
        );
        let tofu_encryption = match top.take("opentofu") {
            None => Some(None),
            Some(node) => self.opentofu(node, region.as_ref()),
        };
        let compat = match top.take("compat") {
            None => Some(None),
            Some(node) => self.compat(node).map(|compat| Some((compat, node.pos))),
        };
        self.finish(top);
        let (bucket, bucket_name_pos, logging_bucket) = bucket?;
        let (access, stacks, compat, tofu_encryption) =
            (access?, stacks?, compat?, tofu_encryption?);
        self.check_top_level(
            &bucket,
            &access,
            &stacks,
            layout,
            &tofu_encryption,
            &compat,
            &account_id,
        )?;
        let tofu_encryption = tofu_encryption.map(|(encryption, _)| encryption);
        let compat = compat.map(|(compat, _)| compat);
        Some(EnvSpec {
            name,
            source: source.to_owned(),
            region: region?,
            account_id: account_id.flatten(),
            profile: profile.flatten(),
            bootstrap_profile: bootstrap_profile.flatten(),
            endpoint: endpoint.flatten(),
            compat,
            tofu_encryption,
            bucket,
            access,
            stacks,
            layout,
            positions: Positions {
                bucket_name: bucket_name_pos,
                logging_bucket,
            },
            replica_of: None,
        })
    }

    /// `access`: required with `backend:`; with `stacks:` each stack may name its own.
    fn top_access(&mut self, node: Option<&Node>, layout: Layout, top: Pos) -> Option<AccessSpec> {
        match (node, layout) {
            (Some(node), _) => self.access(node, layout),
            (None, Layout::Stacks) => Some(AccessSpec::default()),
            (None, Layout::Backend) => {
                self.report(
                    top,
                    Problem::new("missing required key `access`")
                        .hint("add `access: { users: [terraform], roles: [terraform-ci] }`"),
                );
                None
            }
        }
    }

    /// The stacks of a `backend:` spec (one, named after the environment) or a `stacks:`
    /// spec; both, or neither, is an error. `nodes`: `backend`, `stacks`, `stack_defaults`.
    fn layout_stacks(
        &mut self,
        [backend_node, stacks_node, defaults_node]: [Option<&Node>; 3],
        top: Pos,
        name: &EnvName,
        source: &str,
        inherited: &Inherited<'_>,
    ) -> Option<Vec<StackSpec>> {
        match (backend_node, stacks_node) {
            (Some(_), Some(stacks_node)) => {
                self.report(
                stacks_node.pos,
                Problem::new("`backend` and `stacks` cannot both be given")
                    .hint("use `backend:` for the one state of this bucket, or list every state under `stacks:` (the options `backend` held go under `stack_defaults:` or into each stack)"),
            );
                None
            }
            (Some(backend_node), None) => {
                if let Some(defaults_node) = defaults_node {
                    self.report(
                        defaults_node.pos,
                        Problem::new(
                            "`stack_defaults` applies to `stacks`, but this spec uses `backend`",
                        )
                        .hint(
                            "move these options into `backend`, or list the states under `stacks:`",
                        ),
                    );
                }
                self.backend_stack(backend_node, name, source, inherited)
                    .map(|stack| vec![stack])
            }
            (None, Some(stacks_node)) => {
                self.stacks(stacks_node, defaults_node, name, source, inherited)
            }
            (None, None) => {
                self.report(
                top,
                Problem::new("missing required key `backend`").hint(
                    "add `backend: { key: app/terraform.tfstate }`, or `stacks:` to keep several states in this bucket",
                ),
            );
                None
            }
        }
    }

    /// Rules across the top-level keys: OpenTofu's encryption needs a key, stacks against
    /// access, the replica against the bucket, what a store lacks.
    #[allow(clippy::too_many_arguments)]
    fn check_top_level(
        &mut self,
        bucket: &BucketSpec,
        access: &AccessSpec,
        stacks: &[StackSpec],
        layout: Layout,
        tofu_encryption: &Option<(TofuEncryption, Pos)>,
        compat: &Option<(Compat, Pos)>,
        account_id: &Option<Option<AccountId>>,
    ) -> Option<()> {
        if let Some((encryption, pos)) = tofu_encryption
            && encryption.key.is_none()
            && !matches!(bucket.encryption, Encryption::Kms(_))
        {
            self.report(
                *pos,
                Problem::new("`opentofu.encryption` has no key: the bucket is AES256-encrypted, so there is no bucket key to use")
                    .hint("name an existing key: `kms_key: alias/tofu-state`, or encrypt the bucket with KMS"),
            );
            return None;
        }
        self.check_stacks(access, stacks, layout);
        if let Some(replica) = &bucket.replica {
            self.check_replica(replica, &bucket.encryption, stacks, compat.is_some())?;
        }
        if let Some((compat, pos)) = compat {
            self.check_compat(compat, *pos, bucket, access)?;
            if compat.lacks(StoreFeature::Sts) && account_id.as_ref().is_none_or(Option::is_none) {
                self.report(
                    *pos,
                    Problem::new("`compat.lacks` says the store has no STS, so the account cannot be asked: `account_id` is required")
                        .hint("add `account_id: \"123456789012\"` (the account the policy's ARNs are built in)"),
                );
                return None;
            }
        }
        Some(())
    }

    /// `opentofu: { encryption: { kms_key, phase } }`: `Some(None)` without `encryption`.
    pub(super) fn opentofu(
        &mut self,
        node: &Node,
        region: Option<&Region>,
    ) -> Option<Option<(TofuEncryption, Pos)>> {
        let mut fields = self.fields(node, "opentofu", &schema::OPENTOFU)?;
        let encryption = fields.take("encryption").map(|node| {
            let mut fields = self.fields(node, "opentofu.encryption", &schema::TOFU_ENCRYPTION)?;
            let key_node = fields.take("kms_key");
            let key = key_node.map(|node| {
                self.typed(node, "opentofu.encryption.kms_key", |text| {
                    KmsKeyRef::parse(text, region)
                })
            });
            let create_key = fields
                .take("create_key")
                .map(|node| self.boolean(node, "opentofu.encryption.create_key"));
            let phase = fields.take("phase").map(|node| {
                match self.string(node, "opentofu.encryption.phase")? {
                    "migrate" => Some(TofuPhase::Migrate),
                    "enforce" => Some(TofuPhase::Enforce),
                    other => {
                        self.report(
                            node.pos,
                            Problem::new(format!("unknown phase `{other}`")).hint(
                                "`migrate` while state may still be unencrypted, then `enforce`",
                            ),
                        );
                        None
                    }
                }
            });
            self.finish(fields);
            let key = key.map_or(Some(None), |key| key.map(Some))?;
            let key = match (key, create_key.unwrap_or(Some(false))?) {
                (key, false) => key.map(KmsKey::Existing),
                (Some(KmsKeyRef::Alias(alias)), true) => Some(KmsKey::Managed(alias)),
                (_, true) => {
                    self.report(
                        key_node.map_or(node.pos, |key| key.pos),
                        Problem::new(
                            "`opentofu.encryption.create_key: true` needs an alias to create",
                        )
                        .hint("name the key to create: `kms_key: alias/tofu-state`"),
                    );
                    return None;
                }
            };
            Some((
                TofuEncryption {
                    key,
                    phase: phase.unwrap_or(Some(TofuPhase::Migrate))?,
                },
                node.pos,
            ))
        });
        self.finish(fields);
        match encryption {
            None => Some(None),
            Some(encryption) => encryption.map(Some),
        }
    }

    pub(super) fn compat(&mut self, node: &Node) -> Option<Compat> {
        let mut fields = self.fields(node, "compat", &schema::COMPAT)?;
        let lacks = fields.take("lacks").map(|node| {
            self.list(node, "compat.lacks", |walker, item, path| {
                let word = walker.string(item, path)?;
                let names = StoreFeature::ALL.map(|(name, _)| name);
                match StoreFeature::ALL.iter().find(|(name, _)| *name == word) {
                    Some((_, feature)) => Some(*feature),
                    None => {
                        let problem = Problem::new(format!("unknown store feature `{word}`"));
                        let problem = match closest(word, names) {
                            Some(near) => problem.hint(format!("did you mean `{near}`?")),
                            None => problem.hint(format!("one of: {}", names.join(", "))),
                        };
                        walker.report(item.pos, problem);
                        None
                    }
                }
            })
        });
        let skip_s3_checksum = fields
            .take("skip_s3_checksum")
            .map(|node| self.boolean(node, "compat.skip_s3_checksum"));
        self.finish(fields);
        Some(Compat {
            lacks: lacks.unwrap_or(Some(Vec::new()))?.into_iter().collect(),
            skip_s3_checksum: skip_s3_checksum.unwrap_or(Some(false))?,
        })
    }

    /// What a store lacks cannot be asked of it.
    pub(super) fn check_compat(
        &mut self,
        compat: &Compat,
        pos: Pos,
        bucket: &BucketSpec,
        access: &AccessSpec,
    ) -> Option<()> {
        let mut ok = true;
        let mut refuse = |walker: &mut Self, message: &str, hint: &str| {
            walker.report(pos, Problem::new(message).hint(hint));
            ok = false;
        };
        if compat.lacks(StoreFeature::Kms) && matches!(bucket.encryption, Encryption::Kms(_)) {
            refuse(
                self,
                "`bucket.encryption` names a KMS key, but `compat.lacks` says the store has no KMS",
                "use `encryption: aes256` (the store's own server-side encryption), or remove `kms` from `compat.lacks`",
            );
        }
        if compat.lacks(StoreFeature::Tagging) && !bucket.tags.is_empty() {
            refuse(
                self,
                "`bucket.tags` are given, but `compat.lacks` says the store has no bucket tagging",
                "remove `bucket.tags`, or `tagging` from `compat.lacks`",
            );
        }
        if compat.lacks(StoreFeature::Iam) && access.attach_identity_policy {
            refuse(
                self,
                "`access.attach_identity_policy` needs IAM, which `compat.lacks` says the store has not",
                "remove `attach_identity_policy` (grant access with the store's own users and policies)",
            );
        }
        ok.then_some(())
    }

    /// `account_id` may be quoted or not; an unquoted id with a leading zero stays a string.
    pub(super) fn account_id(&mut self, node: &Node) -> Option<Option<AccountId>> {
        let text = match &node.value {
            Yaml::String(text) | Yaml::Number(text) => text,
            other => {
                self.report(
                    node.pos,
                    Problem::new(format!(
                        "`account_id` must be 12 digits, found {}",
                        other.kind()
                    ))
                    .hint("write it quoted: account_id: \"123456789012\""),
                );
                return None;
            }
        };
        match AccountId::parse(text) {
            Ok(id) => Some(Some(id)),
            Err(problem) => {
                self.report(node.pos, problem);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn a_store_cannot_be_asked_for_what_compat_says_it_lacks() {
        let text = |lacks: &str, bucket_extra: &str| {
            format!(
                "{}compat: {{ lacks: [{lacks}] }}\n",
                DEV.replace("  tags: { team: platform }\n", bucket_extra)
            )
        };
        let compat = |lacks: &str, bucket_extra: &str| errors(&text(lacks, bucket_extra));
        let all = "iam, kms, public_access_block, ownership_controls, tagging";
        assert!(parse_spec("environments/dev.yaml", "dev", &text(all, "")).is_ok());
        assert_eq!(
            compat("tagging", "  tags: { team: platform }\n"),
            [
                "14:9 `bucket.tags` are given, but `compat.lacks` says the store has no bucket tagging"
            ]
        );
        let kms = errors(
            &text("kms", "").replace("encryption: aes256", "encryption: { kms_key: alias/state }"),
        );
        assert_eq!(kms.len(), 1, "{kms:?}");
        assert!(
            kms[0].ends_with(
                "`bucket.encryption` names a KMS key, but `compat.lacks` says the store has no KMS"
            ),
            "{kms:?}"
        );
        assert_eq!(
            compat("public_acces_block", ""),
            ["13:19 unknown store feature `public_acces_block`"]
        );
        let spec = parse_spec(
            "environments/dev.yaml",
            "dev",
            &format!(
                "{}compat: {{ lacks: [iam], skip_s3_checksum: true }}\n",
                DEV
            ),
        )
        .unwrap();
        assert!(spec.lacks(StoreFeature::Iam) && !spec.lacks(StoreFeature::Kms));
        assert!(spec.compat.unwrap().skip_s3_checksum);
    }

    #[test]
    fn opentofu_encryption_needs_a_key() {
        let with = |encryption: &str| format!("{DEV}opentofu:\n  encryption: {encryption}\n");
        assert_eq!(
            errors(&with("{ phase: migrate }")),
            [
                "15:15 `opentofu.encryption` has no key: the bucket is AES256-encrypted, so there is no bucket key to use"
            ]
        );
        assert_eq!(
            errors(&with("{ kms_key: alias/tofu, phase: enforced }")),
            ["15:45 unknown phase `enforced`"]
        );
        assert_eq!(
            errors(&with(
                "{ kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab, create_key: true }"
            )),
            ["15:26 `opentofu.encryption.create_key: true` needs an alias to create"]
        );
        let created = parse_spec(
            "environments/dev.yaml",
            "dev",
            &with("{ kms_key: alias/tofu, create_key: true }"),
        )
        .unwrap();
        assert!(matches!(
            created.tofu_encryption.unwrap().key,
            Some(KmsKey::Managed(_))
        ));
        let spec = parse_spec(
            "environments/dev.yaml",
            "dev",
            &with("{ kms_key: alias/tofu }"),
        )
        .unwrap();
        let encryption = spec.tofu_encryption.unwrap();
        assert_eq!(encryption.phase, TofuPhase::Migrate);
        assert_eq!(
            spec.stacks[0].tofu_encryption_file(),
            "environments/dev/encryption.hcl"
        );
    }

    #[test]
    fn forbidden_account_ids_exclude_the_specs_account_id() {
        let text = EVERY_KEY_WITH_BACKEND.replace(
            "  sts_region: eu-central-1\n",
            "  sts_region: eu-central-1\n  forbidden_account_ids: [\"210987654321\"]\n",
        );
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .ends_with("`forbidden_account_ids` cannot be used with the spec's `account_id`"),
            "{found:?}"
        );
    }

    #[test]
    fn account_ids_quoted_or_not() {
        let unquoted = DEV.replace("\"123456789012\"", "123456789012");
        assert!(parse_spec("e/x.yaml", "x", &unquoted).is_ok());
        let short = one_error(&DEV.replace("\"123456789012\"", "12345"));
        assert!(short.message.contains("not an AWS account id"));
        assert!(short.hint.unwrap().contains("12 digits"));
    }
}
