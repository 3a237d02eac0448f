//! The project on disk: finding spec files, reading them and their policy templates, and
//! writing backend.hcl files. Paths are relative to the current directory (the project
//! root; `--chdir` changes it first).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::access::PrincipalArns;
use crate::desired::DesiredEnvironment;
use crate::error::Error;
use crate::policy::{BUILTIN_TEMPLATE, BUILTIN_TEMPLATE_NAME};
use crate::spec::names::Problem;
use crate::spec::{
    AccountId, Diagnostic, EnvSpec, Pos, ProfileName, StackSpec, check_across_environments,
    parse_spec,
};

pub const ENVIRONMENTS_DIR: &str = "environments";

/// A spec with the policy template it uses.
#[derive(Debug, Clone)]
pub struct Environment {
    pub spec: EnvSpec,
    /// With `bucket.replica`: the replica's spec (`EnvSpec::replica_spec`).
    pub replica: Option<EnvSpec>,
    pub template_name: String,
    pub template: String,
}

impl Environment {
    pub fn template(&self) -> (&str, &str) {
        (&self.template_name, &self.template)
    }

    /// The account to build an offline desired state in: the spec's, or a placeholder
    /// (any 12 digits show whether a template is sound; ARNs naming it are only shown by
    /// commands that say so).
    pub fn offline_account(&self) -> AccountId {
        self.spec
            .account_id
            .clone()
            .unwrap_or_else(|| AccountId::parse("000000000000").expect("twelve digits"))
    }

    /// The desired state built without AWS: principals resolved by name in the spec's
    /// account (IAM's answer replaces them online).
    pub fn offline_desired(
        &self,
        endpoint: Option<&crate::spec::EndpointUrl>,
    ) -> Result<DesiredEnvironment<'_>, Vec<Diagnostic>> {
        let account = self.offline_account();
        DesiredEnvironment::build(
            &self.spec,
            self.replica.as_ref(),
            &account,
            &PrincipalArns::offline(&self.spec, &account),
            endpoint,
            self.template(),
        )
    }
}

/// Which spec files to read: the arguments (paths, or environment names looked up in
/// `environments/`), or every `environments/*.yaml` when there are none.
pub fn spec_paths(arguments: &[String]) -> Result<Vec<String>, Error> {
    if arguments.is_empty() {
        let entries = fs::read_dir(ENVIRONMENTS_DIR).map_err(|error| Error::Project {
            message: format!("cannot list `{ENVIRONMENTS_DIR}/`: {error}"),
            hint: "run statebucket from the project root (or pass --chdir DIR), or name spec files"
                .into(),
        })?;
        let mut paths: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.is_file()
                    && matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    )
            })
            .map(|path| path.to_string_lossy().replace('\\', "/"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(Error::Project {
                message: format!("no spec files (*.yaml) in `{ENVIRONMENTS_DIR}/`"),
                hint: format!("create one, e.g. `{ENVIRONMENTS_DIR}/dev.yaml` (see README)"),
            });
        }
        return Ok(paths);
    }
    Ok(arguments
        .iter()
        .map(|argument| {
            if argument.ends_with(".yaml") || argument.ends_with(".yml") || argument.contains('/') {
                argument.clone()
            } else {
                format!("{ENVIRONMENTS_DIR}/{argument}.yaml")
            }
        })
        .collect())
}

/// The environment name of a spec path: its file stem.
fn env_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".yaml")
        .or_else(|| file.strip_suffix(".yml"))
        .unwrap_or(file)
}

/// Reads and validates specs and their templates. Every problem in every file is returned;
/// environments come back only when there are none.
pub fn load(paths: &[String]) -> Result<Vec<Environment>, Error> {
    let mut diagnostics = Vec::new();
    let mut specs = Vec::new();
    for path in paths {
        let text = match read_text(path) {
            Ok(text) => text,
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                continue;
            }
        };
        match parse_spec(path, env_name(path), &text) {
            Ok(spec) => specs.push(spec),
            Err(found) => diagnostics.extend(found),
        }
    }
    diagnostics.extend(check_across_environments(&specs));

    let mut environments = Vec::new();
    for spec in specs {
        let (template_name, template) = match &spec.access.policy_template {
            None => (
                BUILTIN_TEMPLATE_NAME.to_owned(),
                BUILTIN_TEMPLATE.to_owned(),
            ),
            Some(path) => match read_text(path) {
                Ok(text) => (path.clone(), text),
                Err(mut diagnostic) => {
                    diagnostic.hint = Some(format!(
                        "`access.policy_template` in {} names it",
                        spec.source
                    ));
                    diagnostics.push(diagnostic);
                    continue;
                }
            },
        };
        let environment = Environment {
            replica: spec.replica_spec(),
            spec,
            template_name,
            template,
        };
        if let Err(found) = environment.offline_desired(None) {
            diagnostics.extend(found);
        }
        environments.push(environment);
    }
    if diagnostics.is_empty() {
        Ok(environments)
    } else {
        Err(Error::Spec(diagnostics))
    }
}

fn read_text(path: &str) -> Result<String, Diagnostic> {
    let at_start = Pos { line: 1, column: 1 };
    let bytes = fs::read(path).map_err(|error| {
        let hint = if error.kind() == io::ErrorKind::NotFound {
            format!("check the path; specs named without a path are looked up as `{ENVIRONMENTS_DIR}/NAME.yaml`")
        } else {
            "check the file's permissions".to_owned()
        };
        Diagnostic::new(path, at_start, Problem::new(format!("cannot read the file: {error}")).hint(hint))
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&error.as_bytes()[..offset]).into_owned();
        let line = valid.matches('\n').count() + 1;
        let column = valid[valid.rfind('\n').map_or(0, |n| n + 1)..]
            .chars()
            .count()
            + 1;
        Diagnostic::new(
            path,
            Pos { line, column },
            Problem::new(format!("the file is not valid UTF-8 (byte {offset})"))
                .hint("save the file as UTF-8"),
        )
    })
}

/// Guidance when `directory` (a stack's Terraform directory) still holds a local
/// `terraform.tfstate`; `None` when it does not.
pub fn local_state_note(spec: &EnvSpec, stack: &StackSpec, directory: &Path) -> Option<String> {
    if !directory.join("terraform.tfstate").is_file() {
        return None;
    }
    let backend = std::env::current_dir()
        .map(|root| root.join(&stack.file))
        .unwrap_or_else(|_| stack.file.clone().into());
    Some(crate::guidance::local_state_guidance(
        &directory.display().to_string(),
        &backend.display().to_string(),
        spec.bucket.name.as_str(),
        stack.key.as_str(),
        spec.profile_of(stack).map(ProfileName::as_str),
    ))
}

/// Every stack's backend.hcl as it is on disk, by path (missing files are absent); an error
/// names the file.
pub fn read_backend_files(
    spec: &EnvSpec,
) -> Result<std::collections::BTreeMap<String, String>, (String, io::Error)> {
    let mut files = std::collections::BTreeMap::new();
    for stack in &spec.stacks {
        let encryption = spec
            .tofu_encryption
            .as_ref()
            .map(|_| stack.tofu_encryption_file());
        for path in std::iter::once(stack.file.clone()).chain(encryption) {
            match read_backend_file(&path) {
                Ok(Some(text)) => {
                    files.insert(path, text);
                }
                Ok(None) => {}
                Err(error) => return Err((path, error)),
            }
        }
    }
    Ok(files)
}

/// backend.hcl files this spec generated for stacks it no longer has: files whose header
/// names the spec, in the directories of the stacks' files and below `<dir>/<env>/`.
pub fn orphan_backend_files(spec: &EnvSpec) -> Vec<(String, String)> {
    let header = format!("# Generated by statebucket from {}", spec.source);
    let env_dir = match spec.source.rfind('/') {
        Some(slash) => format!("{}/{}", &spec.source[..slash], spec.name),
        None => spec.name.to_string(),
    };
    let mut directories: Vec<PathBuf> = spec
        .stacks
        .iter()
        .filter_map(|stack| Path::new(&stack.file).parent().map(Path::to_path_buf))
        .collect();
    directories.push(PathBuf::from(&env_dir));
    if let Ok(entries) = fs::read_dir(&env_dir) {
        directories.extend(
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir()),
        );
    }
    directories.sort();
    directories.dedup();
    let mut orphans = Vec::new();
    for directory in directories {
        let Ok(entries) = fs::read_dir(&directory) else {
            continue;
        };
        for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
            let name = path.to_string_lossy().replace('\\', "/");
            let name = name.strip_prefix("./").unwrap_or(&name).to_owned();
            let is_backend = name.ends_with(".hcl") || name.ends_with(".tfbackend");
            if !is_backend || spec.written_files().contains(&name) {
                continue;
            }
            if let Ok(text) = fs::read_to_string(&path)
                && text
                    .lines()
                    .next()
                    .is_some_and(|line| line.starts_with(&header) && is_own_header(line, &header))
            {
                orphans.push((name, text));
            }
        }
    }
    orphans.sort();
    orphans
}

/// `# Generated by statebucket from SOURCE.` or `… from SOURCE (stack NAME).`: the header
/// names exactly this spec, not one whose path merely starts the same.
fn is_own_header(line: &str, header: &str) -> bool {
    matches!(&line[header.len()..].chars().next(), Some('.' | ' '))
}

/// backend.hcl on disk, `None` when it does not exist.
pub fn read_backend_file(path: &str) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes a file so that it is never seen half-written: a temporary file in the same
/// directory, flushed to disk, then renamed over the target. Unchanged content is not
/// rewritten. Returns whether the file changed.
pub fn write_file_atomically(path: &str, content: &str) -> io::Result<bool> {
    if read_backend_file(path)?.as_deref() == Some(content) {
        return Ok(false);
    }
    publish_via_temporary(path, content, |temporary, target| {
        fs::rename(temporary, target)
    })?;
    Ok(true)
}

/// Creates a file that must not exist yet, never seen half-written: the content goes to a
/// temporary file that is then hard-linked to the target, which fails when the target
/// exists (even when another process created it a moment ago). Returns false, writing
/// nothing, when the file exists.
pub fn create_file_exclusively(path: &str, content: &str) -> io::Result<bool> {
    if Path::new(path).exists() {
        return Ok(false);
    }
    match publish_via_temporary(path, content, |temporary, target| {
        fs::hard_link(temporary, target)
    }) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Writes `content` to a temporary file in `path`'s directory (created if needed), flushed
/// to disk, then `publish`es it at `path` (rename, or hard link). The temporary file does not
/// outlive the call.
fn publish_via_temporary(
    path: &str,
    content: &str,
    publish: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let target = Path::new(path);
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&directory)?;
    let file_name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        publish(&temporary, target)
    })();
    // Gone already after a rename; after a hard link (or a failure) it is removed here.
    let _ = fs::remove_file(&temporary);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `relative` under a new temporary directory, which lives as long as the guard.
    fn scratch_path(relative: &str) -> (tempfile::TempDir, String) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(relative).to_str().unwrap().to_owned();
        (directory, path)
    }

    /// How many entries the directory holding `path` has.
    fn entries_beside(path: &str) -> usize {
        fs::read_dir(Path::new(path).parent().unwrap())
            .unwrap()
            .count()
    }

    #[test]
    fn an_exclusive_create_never_replaces_a_file() {
        let (_directory, path) = scratch_path("environments/dev.yaml");
        let path = path.as_str();
        assert!(create_file_exclusively(path, "first\n").unwrap());
        assert!(!create_file_exclusively(path, "second\n").unwrap());
        assert_eq!(fs::read_to_string(path).unwrap(), "first\n");
        assert_eq!(entries_beside(path), 1, "no temporary file is left behind");
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            spec_paths(&["dev".into()]).unwrap(),
            vec!["environments/dev.yaml"]
        );
        assert_eq!(
            spec_paths(&["other/x.yml".into()]).unwrap(),
            vec!["other/x.yml"]
        );
        assert_eq!(env_name("environments/prod-eu.yaml"), "prod-eu");
        assert_eq!(env_name("x.yml"), "x");
    }

    #[test]
    fn atomic_write_creates_directories_and_skips_unchanged_content() {
        let (_directory, path) = scratch_path("a/b/backend.hcl");
        let path = path.as_str();
        assert!(write_file_atomically(path, "one\n").unwrap());
        assert!(!write_file_atomically(path, "one\n").unwrap());
        assert!(write_file_atomically(path, "two\n").unwrap());
        assert_eq!(fs::read_to_string(path).unwrap(), "two\n");
        assert_eq!(entries_beside(path), 1, "no temporary file is left behind");
    }
}

/// Holds the machine-wide apply locks of some buckets until dropped (or the process ends,
/// however it ends: the kernel releases a `flock` with its file descriptor).
#[derive(Debug)]
pub struct ApplyLocks {
    _files: Vec<fs::File>,
}

/// Serialises `statebucket apply` runs on this machine per bucket, so that two runs cannot
/// both find a KMS alias missing and each create a key. Locks are taken in name order (no
/// deadlock between runs with overlapping buckets); `waiting` is told about each lock that
/// another run holds before this one blocks on it.
pub fn lock_buckets(buckets: &[&str], waiting: impl Fn(&str, &Path)) -> io::Result<ApplyLocks> {
    let mut names: Vec<&str> = buckets.to_vec();
    names.sort_unstable();
    names.dedup();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = std::env::temp_dir().join(format!("statebucket-apply-{name}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waiting(name, &path);
                file.lock()?;
            }
            Err(fs::TryLockError::Error(error)) => return Err(error),
        }
        files.push(file);
    }
    Ok(ApplyLocks { _files: files })
}
