//! `access`: users and roles, readers, the exclusive policy and its break-glass.

use super::Walker;
use super::*;
use crate::spec::names::{PolicyArn, PrincipalKind, PrincipalRef, Problem};
use crate::spec::schema::{self};
use crate::spec::yaml::{Node, Yaml};
use crate::spec::{AccessSpec, Exclusive, Layout};

impl Walker<'_> {
    /// The spec-level `access`: the default writers and readers of every stack, and the
    /// policy options of the bucket.
    pub(super) fn access(&mut self, node: &Node, layout: Layout) -> Option<AccessSpec> {
        let mut fields = self.fields(node, "access", &schema::ACCESS)?;
        let (writers, readers) = self.principal_lists(&mut fields, "access");
        let template = fields.take("policy_template").map(|node| {
            self.typed(node, "access.policy_template", |text| {
                relative_path(text, &[".json"])
            })
        });
        let exclusive = fields
            .take("exclusive")
            .map(|node| self.boolean(node, "access.exclusive"));
        let break_glass_node = fields.take("break_glass_role");
        let break_glass = break_glass_node.map(|node| {
            self.typed(node, "access.break_glass_role", |text| {
                PrincipalRef::parse(text, PrincipalKind::Role)
            })
        });
        let attach = fields
            .take("attach_identity_policy")
            .map(|node| self.boolean(node, "access.attach_identity_policy"));
        self.finish(fields);
        let exclusive = match (exclusive.unwrap_or(Some(false))?, break_glass) {
            (true, Some(role)) => Some(Exclusive {
                break_glass_role: role?,
            }),
            (true, None) => {
                self.report(
                    node.pos,
                    Problem::new("`access.exclusive: true` needs a `break_glass_role`")
                        .hint("name a role that stays able to reach the state when every listed principal is gone, e.g. `break_glass_role: break-glass-admin`"),
                );
                return None;
            }
            (false, Some(_)) => {
                self.report(
                    break_glass_node.map_or(node.pos, |node| node.pos),
                    Problem::new("`break_glass_role` only has a meaning with `exclusive: true`")
                        .hint("add `exclusive: true`, or remove `break_glass_role`"),
                );
                return None;
            }
            (false, None) => None,
        };
        let attach_identity_policy = attach.unwrap_or(Some(false))?;
        let writers = writers?.unwrap_or_default();
        if writers.is_empty() && layout == Layout::Backend {
            self.report(
                node.pos,
                Problem::new("`access` lists no users and no roles")
                    .hint("list every identity Terraform runs as, users and roles both: a policy naming only the role locks out the user (and the reverse)"),
            );
            return None;
        }
        Some(AccessSpec {
            writers,
            readers: readers?.unwrap_or_default(),
            policy_template: template.flatten(),
            exclusive,
            attach_identity_policy,
        })
    }

    /// `users`, `roles` and `readers: { users, roles }` of an access block at `path`: the
    /// writers (`None` when neither list is given), the readers (`None` when not given).
    /// The outer `None`: errors were reported.
    #[allow(clippy::type_complexity)]
    pub(super) fn principal_lists(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
    ) -> (
        Option<Option<Vec<PrincipalRef>>>,
        Option<Option<Vec<PrincipalRef>>>,
    ) {
        let given = fields
            .entries
            .iter()
            .any(|(name, _, _)| *name == "users" || *name == "roles");
        let writers = self
            .users_then_roles(fields, path)
            .map(|writers| given.then_some(writers));
        let readers = match fields.take("readers") {
            None => Some(None),
            Some(node) => self.readers(node, &format!("{path}.readers")).map(Some),
        };
        if let (Some(Some(writers)), Some(Some(readers))) = (&writers, &readers)
            && let Some(both) = readers.iter().find(|reader| writers.contains(reader))
        {
            self.report(
                fields.pos,
                Problem::new(format!(
                    "`{both}` is listed both as a writer and in `{path}.readers`"
                ))
                .hint("writers can read already; keep it in one list"),
            );
            return (None, None);
        }
        (writers, readers)
    }

    pub(super) fn readers(&mut self, node: &Node, path: &str) -> Option<Vec<PrincipalRef>> {
        let mut fields = self.fields(node, path, &schema::READERS)?;
        let readers = self.users_then_roles(&mut fields, path);
        self.finish(fields);
        let readers = readers?;
        if readers.is_empty() {
            self.report(
                node.pos,
                Problem::new(format!("`{path}` lists no users and no roles")).hint(
                    "list the identities that only plan (e.g. `roles: [terraform-plan]`), or remove `readers`",
                ),
            );
            return None;
        }
        Some(readers)
    }

    /// `users` then `roles` of a block at `path`, each optional.
    pub(super) fn users_then_roles(
        &mut self,
        fields: &mut Fields<'_>,
        path: &str,
    ) -> Option<Vec<PrincipalRef>> {
        let users = fields
            .take("users")
            .map(|node| self.principals(node, &format!("{path}.users"), PrincipalKind::User));
        let roles = fields
            .take("roles")
            .map(|node| self.principals(node, &format!("{path}.roles"), PrincipalKind::Role));
        let mut all = users.unwrap_or(Some(Vec::new()))?;
        all.extend(roles.unwrap_or(Some(Vec::new()))?);
        Some(all)
    }

    pub(super) fn principals(
        &mut self,
        node: &Node,
        path: &str,
        kind: PrincipalKind,
    ) -> Option<Vec<PrincipalRef>> {
        let items: &[Node] = match &node.value {
            Yaml::Seq(items) => items,
            Yaml::String(_) => std::slice::from_ref(node),
            Yaml::Null => &[],
            _ => {
                let hint = format!("write `{path}: [name-or-arn, …]`");
                self.wrong_kind(node, path, "a list", Some(&hint));
                return None;
            }
        };
        let mut principals: Vec<PrincipalRef> = Vec::new();
        let mut ok = true;
        for item in items {
            match self.typed(item, path, |text| PrincipalRef::parse(text, kind)) {
                Some(principal) if principals.contains(&principal) => {
                    self.report(
                        item.pos,
                        Problem::new(format!("`{principal}` is listed twice in `{path}`"))
                            .hint("remove the duplicate"),
                    );
                    ok = false;
                }
                Some(principal) => principals.push(principal),
                None => ok = false,
            }
        }
        ok.then_some(principals)
    }

    pub(super) fn policy_arns(&mut self, node: &Node, path: &str) -> Option<Vec<PolicyArn>> {
        self.list(node, path, |walker, item, item_path| {
            walker.typed(item, item_path, PolicyArn::parse)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;

    #[test]
    fn principals_must_be_in_the_right_list_and_unique() {
        let misplaced = one_error(&DEV.replace(
            "[terraform-access]",
            "[\"arn:aws:iam::123456789012:role/x\"]",
        ));
        assert_eq!(misplaced.hint.as_deref(), Some("move it to `access.roles`"));
        assert_eq!((misplaced.line, misplaced.column), (9, 11));
        let twice = one_error(&DEV.replace("[terraform-access]", "[a, a]"));
        assert!(twice.message.contains("listed twice"));
        let none = one_error(&DEV.replace(
            "  users: [terraform-access]\n  roles: [terraform-access-role]\n",
            "  users: []\n",
        ));
        assert!(none.message.contains("no users and no roles"));
        let single = parse_spec(
            "e/x.yaml",
            "x",
            &DEV.replace("[terraform-access]", "terraform-access"),
        )
        .unwrap();
        assert!(matches!(
            single.access.writers[0],
            PrincipalRef::Name { .. }
        ));
    }
}
