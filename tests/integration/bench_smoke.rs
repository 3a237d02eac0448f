//! The benchmark harness runs (tiny N, L = 0) so that it cannot rot; figures come from
//! `benches/bench.py` without `--smoke` (docs/performance.md).

use crate::support::{manifest_dir, to_run, venv_python};

#[test]
fn the_benchmark_harness_runs_and_a_converged_apply_writes_nothing() {
    let output = std::process::Command::new(venv_python())
        .arg(manifest_dir().join("benches/bench.py"))
        .args(["--smoke", "--binary", env!("CARGO_BIN_EXE_statebucket")])
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the benchmark");
    let run = to_run(output);
    run.expect_code(0);
    let rows: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|row| row["scenario"] == name)
            .unwrap_or_else(|| panic!("no {name} row in\n{}", run.stdout))
    };
    assert_eq!(row("apply, converged")["writes"], 0);
    assert_eq!(row("check, converged")["writes"], 0);
    assert!(
        row("apply from nothing, AES256")["writes"]
            .as_u64()
            .unwrap()
            > 0
    );
    // One spec, several stacks: one observation of the bucket; two distinct principals.
    let stacks = row("check, one spec with 3 stacks");
    assert_eq!(stacks["writes"], 0);
    assert!(
        stacks["reads"].as_u64().unwrap() <= 10 + 2,
        "{stacks}: at most 10 requests + 1 per distinct principal"
    );
    run.expect_stdout(&["| scenario | envs |"]);
}
