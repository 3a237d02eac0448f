//! `statebucket render`: every stack's backend.hcl (and failover file), offline. The KMS key is written as the
//! spec names it; `apply` writes its ARN.

use super::args::EndpointArgs;
use super::{Context, Outcome, json};
use crate::error::Error;
use crate::project::write_file_atomically;
use crate::render::KmsKeyId;
use crate::spec::Encryption;

pub fn run(
    context: &Context<'_>,
    specs: &[String],
    endpoint: &EndpointArgs,
    to_stdout: bool,
) -> Result<Outcome, Error> {
    let environments = super::load(specs)?;
    let connection = super::offline_connection(endpoint)?;
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for environment in &environments {
        let spec = &environment.spec;
        let endpoint = connection.endpoint(spec);
        let desired = environment.offline_desired(endpoint).map_err(Error::Spec)?;
        // With a replica, its failover files too.
        let buckets = desired.buckets();
        for (desired, stack) in
            buckets.flat_map(|desired| desired.stacks.iter().map(move |stack| (desired, stack)))
        {
            let backend = (
                stack.spec.file.clone(),
                desired.backend_file(stack, KmsKeyId::FromSpec),
            );
            let encryption = desired.tofu_encryption_file(stack, KmsKeyId::FromSpec);
            for (path, content) in std::iter::once(backend).chain(encryption) {
                let status = if to_stdout {
                    "printed"
                } else {
                    match write_file_atomically(&path, &content) {
                        Ok(true) => "written",
                        Ok(false) => "unchanged",
                        Err(error) => return Err(Error::file("write", &path, &error)),
                    }
                };
                files.push(json::RenderedFile {
                    environment: spec.name.to_string(),
                    stack: stack.spec.name.to_string(),
                    path,
                    status,
                    content: to_stdout.then_some(content),
                });
            }
        }
        if let Encryption::Kms(key) = &spec.bucket.encryption {
            notes.push(format!(
                "{}: kms_key_id is `{}` as the spec names it; `statebucket apply` writes the key's ARN",
                spec.name,
                key.reference()
            ));
        }
    }
    if context.json() {
        context
            .printer
            .data(&json::document("render", json::Rendered { files, notes }));
        return Ok(Outcome::Success);
    }
    let several = files.len() > 1;
    for (index, file) in files.iter().enumerate() {
        match &file.content {
            // One file prints as it is (pipe it into a file); several are headed like
            // `head` does, and kept apart.
            Some(content) if several => {
                let gap = if index == 0 { "" } else { "\n" };
                context
                    .printer
                    .data(&format!("{gap}==> {} <==\n{content}", file.path));
            }
            Some(content) => context.printer.data(content),
            None => context.printer.data(&format!(
                "{} {}\n",
                if file.status == "written" {
                    "wrote"
                } else {
                    "unchanged"
                },
                file.path
            )),
        }
    }
    for note in &notes {
        context.printer.note_once(note);
    }
    Ok(Outcome::Success)
}
