//! `statebucket policy`: the bucket policy statebucket would attach, or one tier's identity
//! policy, offline.

use super::args::EndpointArgs;
use super::{Context, Outcome, json};
use crate::access::Tier;
use crate::error::Error;
use crate::policy;
use crate::spec::{Encryption, PrincipalRef};

pub fn run(
    context: &Context<'_>,
    env: &str,
    endpoint: &EndpointArgs,
    identity: bool,
    stack: Option<&str>,
    reader: bool,
    replica: bool,
) -> Result<Outcome, Error> {
    let environments = super::load(&[env.to_owned()])?;
    let environment = &environments[0];
    let spec = &environment.spec;
    if spec.account_id.is_none() {
        let needs_account = if identity {
            matches!(&spec.bucket.encryption, Encryption::Kms(key) if !key.reference().starts_with("arn:"))
                || !spec.lock_tables().is_empty()
        } else {
            spec.all_principals()
                .iter()
                .any(|principal| matches!(principal, PrincipalRef::Name { .. }))
        };
        if needs_account {
            return Err(Error::Usage {
                message: format!(
                    "{} has no `account_id`, so the ARNs this policy needs are only known online",
                    spec.source
                ),
                hint: Some("set `account_id` in the spec, or use full ARNs; `statebucket plan` uses the live account".into()),
            });
        }
    }
    let (document, stack_name, tier) = if identity {
        let chosen = super::select_stack(
            spec,
            stack,
            "each tier of each has its own identity policy",
            ", and add --reader for the read-only tier",
        )?;
        let tier = if reader { Tier::Reader } else { Tier::Writer };
        let account = environment.offline_account();
        let mut document = policy::tier_identity_policy(spec, &account, chosen, tier);
        // With a replica, the same access there: what a failover needs.
        if let Some(replica) = &environment.replica
            && let Some(replica_stack) = replica.stack(chosen.name.as_str())
        {
            policy::extend_to_replica(
                &mut document,
                policy::tier_identity_policy(replica, &account, replica_stack, tier),
            );
        }
        let tier_name = match tier {
            Tier::Writer => "writer",
            Tier::Reader => "reader",
        };
        (document, Some(chosen.name.to_string()), Some(tier_name))
    } else {
        let connection = super::offline_connection(endpoint)?;
        let endpoint = connection.endpoint(spec);
        let built = environment.offline_desired(endpoint).map_err(Error::Spec)?;
        let desired = if replica {
            built.replica.ok_or_else(|| Error::Usage {
                message: format!("{} has no `bucket.replica`", spec.source),
                hint: Some("leave out --replica for the bucket's policy".into()),
            })?
        } else {
            built.primary
        };
        (policy::merge(None, &desired.policy), None, None)
    };
    if context.json() {
        let value: serde_json::Value =
            serde_json::from_str(&document.to_json()).expect("a policy is JSON");
        context.printer.data(&json::document(
            "policy",
            json::PolicyPrinted {
                environment: spec.name.to_string(),
                kind: if identity { "identity" } else { "bucket" },
                stack: stack_name,
                tier,
                policy: value,
            },
        ));
    } else {
        context.printer.data(&format!("{}\n", document.to_json()));
    }
    Ok(Outcome::Success)
}
