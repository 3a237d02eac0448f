//! The profiles of the shared AWS config and credentials files, as the SDKs find them.

/// Where the SDKs read profiles: `AWS_CONFIG_FILE` (default `~/.aws/config`) and
/// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
pub fn files() -> [String; 2] {
    let home = std::env::var("HOME").unwrap_or_default();
    [
        std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| format!("{home}/.aws/config")),
        std::env::var("AWS_SHARED_CREDENTIALS_FILE")
            .unwrap_or_else(|_| format!("{home}/.aws/credentials")),
    ]
}

/// Every profile defined in those files, sorted, each once.
pub fn configured() -> Vec<String> {
    let mut names: Vec<String> = files()
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| names(&text))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Profile names in an AWS config or credentials file: `[default]`, `[profile NAME]`, `[NAME]`.
pub fn names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix('[')?
                .strip_suffix(']')
                .map(str::trim)
        })
        .filter(|section| !section.starts_with("sso-session") && !section.starts_with("services"))
        .map(|section| {
            section
                .strip_prefix("profile ")
                .unwrap_or(section)
                .trim()
                .to_owned()
        })
        .collect()
}

/// What kind of identity a profile's credentials are, as far as the files tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// `aws_access_key_id` and nothing that assumes a role: an IAM user's long-term keys.
    UserKeys,
    /// `role_arn` (or SSO, which signs in to a role): sessions of a role.
    Role,
    /// Not defined, or a source the files do not tell (`credential_process`).
    Unknown,
}

/// The kind of `profile` in the shared files.
pub fn kind_of(profile: &str) -> ProfileKind {
    let texts: Vec<String> = files()
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect();
    kind_in(&texts, profile)
}

/// The kind of `profile` in these config and credentials file texts.
pub fn kind_in(texts: &[String], profile: &str) -> ProfileKind {
    let keys: Vec<String> = texts
        .iter()
        .flat_map(|text| section_keys(text, profile))
        .collect();
    let has = |key: &str| keys.iter().any(|found| found == key);
    if has("role_arn") || has("sso_session") || has("sso_start_url") || has("sso_role_name") {
        ProfileKind::Role
    } else if has("aws_access_key_id") && !has("credential_process") {
        ProfileKind::UserKeys
    } else {
        ProfileKind::Unknown
    }
}

/// The keys set in `profile`'s sections of one file.
fn section_keys(text: &str, profile: &str) -> Vec<String> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = section.trim();
            inside = name.strip_prefix("profile ").unwrap_or(name).trim() == profile;
        } else if inside && let Some((key, _)) = line.split_once('=') {
            keys.push(key.trim().to_owned());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::ProfileKind;

    #[test]
    fn a_profile_is_a_users_keys_or_a_roles_sessions() {
        let config = "[profile ci]\nrole_arn = arn:aws:iam::1:role/ci\nsource_profile = base\n[profile sso]\nsso_session = corp\n".to_owned();
        let credentials = "[terraform]\naws_access_key_id = AKIA\naws_secret_access_key = x\n[base]\naws_access_key_id = AKIB\n".to_owned();
        let texts = [config, credentials];
        assert_eq!(super::kind_in(&texts, "terraform"), ProfileKind::UserKeys);
        assert_eq!(super::kind_in(&texts, "ci"), ProfileKind::Role);
        assert_eq!(super::kind_in(&texts, "sso"), ProfileKind::Role);
        assert_eq!(super::kind_in(&texts, "nobody"), ProfileKind::Unknown);
    }

    #[test]
    fn profile_sections() {
        let config =
            "[default]\nregion = x\n[profile terraform]\n[sso-session corp]\n[ profile admin ]\n";
        assert_eq!(super::names(config), vec!["default", "terraform", "admin"]);
    }
}
