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

#[cfg(test)]
mod tests {
    #[test]
    fn profile_sections() {
        let config =
            "[default]\nregion = x\n[profile terraform]\n[sso-session corp]\n[ profile admin ]\n";
        assert_eq!(super::names(config), vec!["default", "terraform", "admin"]);
    }
}
