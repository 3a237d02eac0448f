//! A corpus of malformed specs (tests/malformed/*.yaml): each gets its exact error message,
//! kept next to it as an insta snapshot `<name>.snap` (after an intended change:
//! `INSTA_UPDATE=always cargo test --test integration malformed`, then review the diff),
//! exits 1, and makes no request: `plan` is pointed at a listener that must see no
//! connection.

use std::net::TcpListener;
use std::process::Command;

use crate::support::{manifest_dir, to_run};

fn statebucket(args: &[&str]) -> crate::support::Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_statebucket"));
    command
        .current_dir(manifest_dir())
        .args(args)
        .env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    to_run(command.output().expect("run statebucket"))
}

#[test]
fn every_malformed_spec_gets_its_exact_error_and_makes_no_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let specs = crate::support::yaml_files(&manifest_dir().join("tests/malformed"));
    assert!(specs.len() >= 30, "the corpus has {} specs", specs.len());
    for spec in &specs {
        let relative = spec
            .strip_prefix(manifest_dir())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let validate = statebucket(&["validate", &relative]);
        assert_eq!(validate.code, 1, "{relative}: {}", validate.stderr);
        assert_eq!(validate.stdout, "", "{relative}");
        let name = spec.file_stem().unwrap().to_str().unwrap().to_owned();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(manifest_dir().join("tests/malformed"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(spec);
        settings.bind(|| insta::assert_snapshot!(name, validate.stderr));
        let plan = statebucket(&["plan", "--endpoint-url", &endpoint, &relative]);
        assert_eq!(plan.code, 1, "{relative}");
        assert_eq!(
            plan.stderr, validate.stderr,
            "{relative}: plan must refuse with the same diagnostics"
        );
        assert!(
            !validate.stderr.contains("wJalrXUtnFEMI")
                && !validate.stderr.contains("AKIAIOSFODNN7EXAMPLE"),
            "{relative} echoes a credential"
        );
    }
    assert!(
        listener.accept().is_err(),
        "a malformed spec must not lead to any request"
    );
}
