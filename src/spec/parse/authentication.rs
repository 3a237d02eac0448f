//! How Terraform's backend authenticates: a profile, a web identity, `assume_role`.

use std::collections::BTreeMap;

use super::Walker;
use super::*;
use crate::spec::names::{ExternalId, Problem, RoleArn, RoleDuration, SessionName};
use crate::spec::schema::{self};
use crate::spec::yaml::{Node, Yaml};
use crate::spec::{AssumeRole, BackendAuth, BackendCredentials, RoleSession, WebIdentity};

impl Walker<'_> {
    /// `assume_role`: a role ARN, or a mapping with every attribute Terraform documents.
    pub(super) fn assume_role(&mut self, node: &Node, path: &str) -> Option<AssumeRole> {
        if let Yaml::String(_) = &node.value {
            return self.typed(node, path, RoleArn::parse).map(AssumeRole::of);
        }
        let mut fields = self.fields(node, path, &schema::ASSUME_ROLE_OBJECT)?;
        let session = self.role_session(
            &mut fields,
            path,
            "role_arn: arn:aws:iam::123456789012:role/terraform",
        );
        let external_id = self.optional_typed(&mut fields, path, "external_id", ExternalId::parse);
        let tags = match fields.take("tags") {
            None => Some(BTreeMap::new()),
            Some(node) => self.string_map(node, &format!("{path}.tags")),
        };
        let transitive = fields.take("transitive_tag_keys").map(|node| {
            let keys = self.list(
                node,
                &format!("{path}.transitive_tag_keys"),
                |walker, item, item_path| walker.string(item, item_path).map(str::to_owned),
            );
            (keys, node.pos)
        });
        let source_identity =
            self.optional_typed(&mut fields, path, "source_identity", SessionName::parse);
        let policy = self.optional_typed(&mut fields, path, "policy", |text| {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(_)) => Ok(text.to_owned()),
                _ => Err(Problem::new("the session policy is not a JSON object")
                    .hint("write the policy document as a JSON string: `policy: '{\"Version\": \"2012-10-17\", \"Statement\": […]}'`")),
            }
        });
        self.finish(fields);
        let tags = tags?;
        let transitive_tag_keys = match transitive {
            None => Vec::new(),
            Some((keys, pos)) => {
                let keys = keys?;
                if let Some(unknown) = keys.iter().find(|key| !tags.contains_key(*key)) {
                    self.report(
                        pos,
                        Problem::new(format!("transitive tag key `{unknown}` is not one of `{path}.tags`"))
                            .hint("only session tags can be transitive: add it to `tags`, or drop it here"),
                    );
                    return None;
                }
                keys
            }
        };
        Some(AssumeRole {
            session: session?,
            external_id: external_id?,
            tags,
            transitive_tag_keys,
            source_identity: source_identity?,
            policy: policy?,
        })
    }

    /// `web_identity`: Terraform's `assume_role_with_web_identity` with a token file.
    pub(super) fn web_identity(&mut self, node: &Node, path: &str) -> Option<WebIdentity> {
        let mut fields = self.fields(node, path, &schema::WEB_IDENTITY)?;
        let session = self.role_session(
            &mut fields,
            path,
            "role_arn: arn:aws:iam::123456789012:role/github-terraform",
        );
        let token_file = self
            .required(
                &mut fields,
                "token_file",
                "token_file: /tmp/web-identity-token",
            )
            .and_then(|node| self.file_path(node, &format!("{path}.token_file")));
        self.finish(fields);
        Some(WebIdentity {
            session: session?,
            token_file: token_file?,
        })
    }

    /// What `assume_role` and `web_identity` share: the role and the session's name,
    /// duration and policy ARNs. `None` when any was refused.
    pub(super) fn role_session(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
        example: &str,
    ) -> Option<RoleSession> {
        let role_arn = self
            .required(fields, "role_arn", example)
            .and_then(|node| self.typed(node, &format!("{path}.role_arn"), RoleArn::parse));
        let session_name = self.optional_typed(fields, path, "session_name", SessionName::parse);
        let duration = self.optional_typed(fields, path, "duration", RoleDuration::parse);
        let policy_arns = fields
            .take("policy_arns")
            .map(|node| self.policy_arns(node, &format!("{path}.policy_arns")));
        Some(RoleSession {
            role_arn: role_arn?,
            session_name: session_name?,
            duration: duration?,
            policy_arns: policy_arns.unwrap_or(Some(Vec::new()))?,
        })
    }

    /// Where the backend's credentials come from: the stack's own `web_identity` or
    /// `profile`, then `stack_defaults`' (`backend` has no defaults), then the spec's
    /// `profile`. A level naming both is an error there; none at all is the spec's missing
    /// `profile`.
    pub(super) fn credentials(&mut self, layers: Layers<'_>) -> Option<BackendCredentials> {
        for options in [layers.own, layers.defaults] {
            match (&options.profile, &options.web_identity) {
                (Some(_), Some((_, pos))) => {
                    self.report(
                        *pos,
                        Problem::new(format!(
                            "`{0}.profile` and `{0}.web_identity` cannot both be given",
                            options.path
                        ))
                        .hint("a web identity replaces the profile's credentials: keep `web_identity` for CI with OIDC, or `profile` for a named profile"),
                    );
                    return None;
                }
                (None, Some((web_identity, _))) => {
                    return web_identity.clone().map(BackendCredentials::WebIdentity);
                }
                (Some(profile), None) => {
                    return Some(BackendCredentials::Profile(profile.clone()));
                }
                (None, None) => {}
            }
        }
        match layers.inherited.profile {
            Some(Some(profile)) => Some(BackendCredentials::Profile(profile.clone())),
            // Given but invalid: already reported.
            None => None,
            Some(None) => {
                self.report(
                    layers.inherited.top,
                    Problem::new("missing required key `profile`").hint(
                        "add `profile: terraform  # the AWS profile Terraform's backend uses` (or give every stack a `web_identity`)",
                    ),
                );
                None
            }
        }
    }

    /// The backend's other authentication settings, each the stack's own or its default's.
    pub(super) fn auth(&mut self, layers: Layers<'_>) -> Option<BackendAuth> {
        let forbidden = layers.nearest_ref(|options| &options.forbidden_account_ids);
        if let (true, Some((ids, pos))) = (layers.inherited.account_id, forbidden)
            && ids.as_ref().is_some_and(|ids| !ids.is_empty())
        {
            self.report(
                *pos,
                Problem::new("`forbidden_account_ids` cannot be used with the spec's `account_id`")
                    .hint("`account_id` already allows that one account (Terraform's `allowed_account_ids`), and Terraform accepts only one of the two: keep `account_id`, or drop it and list the accounts to refuse"),
            );
            return None;
        }
        let forbidden_account_ids = match forbidden {
            Some((ids, _)) => ids.clone()?,
            None => Vec::new(),
        };
        Some(BackendAuth {
            forbidden_account_ids,
            sts_region: layers.nearest(|options| &options.sts_region),
            shared_config_files: layers
                .nearest(|options| &options.shared_config_files)
                .unwrap_or_default(),
            shared_credentials_files: layers
                .nearest(|options| &options.shared_credentials_files)
                .unwrap_or_default(),
            use_fips_endpoint: layers
                .nearest(|options| &options.use_fips_endpoint)
                .unwrap_or(false),
            use_dualstack_endpoint: layers
                .nearest(|options| &options.use_dualstack_endpoint)
                .unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn backend_credentials_come_from_a_profile_or_a_web_identity_never_both() {
        let all_web = "\
region: eu-west-1
bucket: { name: my-terraform-state-ci }
access: { roles: [github-terraform] }
stack_defaults:
  web_identity: { role_arn: \"arn:aws:iam::123456789012:role/github-terraform\", token_file: /tmp/token }
stacks:
  app: { key: app/terraform.tfstate }
  net: { key: net/terraform.tfstate, profile: network }
";
        let spec = parse_spec("environments/ci.yaml", "ci", all_web).unwrap();
        assert_eq!(spec.profile, None);
        assert!(matches!(
            &spec.stacks[0].credentials,
            BackendCredentials::WebIdentity(web) if web.token_file == "/tmp/token"
        ));
        assert_eq!(
            spec.profile_of(&spec.stacks[1]).map(ProfileName::as_str),
            Some("network")
        );

        let missing = errors(&all_web.replace("  web_identity: { role_arn: \"arn:aws:iam::123456789012:role/github-terraform\", token_file: /tmp/token }\n", "  lock: lockfile\n"));
        assert_eq!(missing, ["1:1 missing required key `profile`"]);

        let both = errors(&all_web.replace(
            "stack_defaults:\n",
            "stack_defaults:\n  profile: terraform\n",
        ));
        assert_eq!(
            both,
            [
                "6:17 `stack_defaults.profile` and `stack_defaults.web_identity` cannot both be given"
            ]
        );

        let token = errors(&all_web.replace(
            "token_file: /tmp/token",
            "token_file: /tmp/token, token: eyJhbGciOi",
        ));
        assert_eq!(token.len(), 1, "{token:?}");
        assert!(token[0].contains("`token` holds a credential"), "{token:?}");
    }

    #[test]
    fn assume_role_takes_an_arn_or_every_documented_attribute() {
        let short = parse_spec(
            "environments/dev.yaml",
            "dev",
            &DEV.replace(
                "  key: eks",
                "  assume_role: arn:aws:iam::123456789012:role/tf\n  key: eks",
            ),
        )
        .unwrap();
        assert_eq!(
            short.stacks[0].assume_role,
            Some(AssumeRole::of(
                RoleArn::parse("arn:aws:iam::123456789012:role/tf").unwrap()
            ))
        );
        let spec = parse_spec("environments/x.yaml", "x", EVERY_KEY_WITH_BACKEND).unwrap();
        let role = spec.stacks[0].assume_role.as_ref().unwrap();
        assert_eq!(
            role.external_id.as_ref().map(ExternalId::as_str),
            Some("tenant-42")
        );
        assert_eq!(
            role.session.duration.as_ref().map(RoleDuration::seconds),
            Some(3600)
        );
        assert_eq!(role.transitive_tag_keys, ["team"]);
        assert_eq!(
            spec.stacks[0].auth.sts_region.as_ref().map(Region::as_str),
            Some("eu-central-1")
        );
        assert!(spec.stacks[0].auth.use_fips_endpoint);

        let wrong = |from: &str, to: &str| errors(&EVERY_KEY_WITH_BACKEND.replace(from, to));
        assert_eq!(
            wrong(
                "transitive_tag_keys: [team]",
                "transitive_tag_keys: [owner]"
            ),
            ["37:26 transitive tag key `owner` is not one of `backend.assume_role.tags`"]
        );
        assert_eq!(
            wrong("duration: 1h", "duration: 1d"),
            ["35:15 `1d` is not a session duration"]
        );
        assert_eq!(
            wrong("policy: '{", "policy: '["),
            ["40:13 the session policy is not a JSON object"]
        );
    }
}
