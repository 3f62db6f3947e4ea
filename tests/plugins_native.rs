//! The bundled algorithms' own unit tests, run natively (they live in the
//! separate `plugins/` workspace, which `cargo test` at the root does not
//! reach). Keeps "one command runs every test" true.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

#[test]
fn plugin_unit_tests_pass_natively() {
    let host = env!("GENSAIL_HOST_TARGET");
    let target_dir = std::path::Path::new(env!("GENSAIL_PLUGIN_WASM_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let mut cargo = std::process::Command::new(env!("GENSAIL_CARGO"));
    cargo
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/plugins"))
        .args(["test", "--target", host, "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    let output = cargo.output().expect("run cargo test in plugins/");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "plugin unit tests failed:\n{stdout}\n{stderr}");
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        passed >= 40,
        "expected the plugins' unit tests to run, saw {passed} passing:\n{stdout}"
    );
}
