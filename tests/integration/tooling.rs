//! The tooling around a spec file: shell completions and the manual page.

use crate::support::{Project, to_run};

#[test]
fn bash_sources_the_completion_script_and_completes_commands_and_options() {
    let project = Project::new();
    let run = project.statebucket(&["completions", "bash"]);
    run.expect_code(0);
    let script = project.path("statebucket.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    // `set -e`: a script bash cannot source fails the test; the two completions show it
    // completes what the binary accepts.
    let completed = to_run(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(
                r#"set -euo pipefail
source "$1"
complete -p statebucket
COMP_WORDS=(statebucket st); COMP_CWORD=1; COMP_LINE="statebucket st"; COMP_POINT=14
_statebucket statebucket st statebucket
echo "command: ${COMPREPLY[*]}"
COMP_WORDS=(statebucket apply --lock); COMP_CWORD=2; COMP_LINE="statebucket apply --lock"; COMP_POINT=24
_statebucket statebucket --lock apply
echo "option: ${COMPREPLY[*]}""#,
            )
            .arg("bash")
            .arg(&script)
            .output()
            .unwrap(),
    );
    completed.expect_code(0);
    assert!(
        completed.stdout.contains("command: state")
            && completed.stdout.contains("option: --lock-timeout"),
        "{}{}",
        completed.stdout,
        completed.stderr
    );
    for shell in ["zsh", "fish", "powershell"] {
        let run = project.statebucket(&["completions", shell]);
        run.expect_code(0);
        assert!(
            run.stdout.contains("statebucket"),
            "{shell}: {}",
            run.stdout
        );
    }
}

#[test]
fn the_manual_page_renders_with_a_section_per_command() {
    let project = Project::new();
    let run = project.statebucket(&["man"]);
    run.expect_code(0);
    assert!(run.stdout.starts_with(".ie") || run.stdout.contains(".TH statebucket"));
    let page = project.path("statebucket.1");
    std::fs::write(&page, &run.stdout).unwrap();
    // man(1) formats the roff; a page it cannot format fails here, and every command has
    // its section.
    let rendered = to_run(
        std::process::Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .output()
            .unwrap(),
    );
    rendered.expect_code(0);
    for command in [
        "validate",
        "plan",
        "apply",
        "check",
        "doctor",
        "state",
        "completions",
    ] {
        assert!(
            rendered.stdout.contains(&format!("statebucket-{command}")),
            "no section for {command}: {}",
            rendered.stdout
        );
    }
    assert!(rendered.stderr.trim().is_empty(), "{}", rendered.stderr);
}
