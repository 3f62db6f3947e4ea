//! The authoring path of docs/authoring.md, end to end with the real binary:
//! `gensail algorithms new` → the crate's own test → a wasm32-wasip2 build →
//! `gensail algorithms run` → `gensail algorithms publish` to a live server →
//! a run on a real job → a second version published without activating,
//! compared, and activated. If the guide rots, this fails.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::api::TestServer;
use reqwest::StatusCode;
use serde_json::json;

fn gensail(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(args)
        .current_dir(dir)
        .env("GENSAIL_DATA_DIR", dir.join("data"))
        .output()
        .expect("run gensail")
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The plugins' target directory: the new crate starts from the same lock, so
/// its dependencies are already built there.
fn target_dir() -> PathBuf {
    Path::new(env!("GENSAIL_PLUGIN_WASM_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn cargo(crate_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("GENSAIL_CARGO"))
        .args(args)
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(crate_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo")
}

fn build(crate_dir: &Path) -> PathBuf {
    ok(
        cargo(crate_dir, &["build", "--release", "--target", "wasm32-wasip2"]),
        "cargo build --target wasm32-wasip2",
    );
    target_dir().join("wasm32-wasip2/release/keywords_test_v1.wasm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaffold_build_run_publish_compare_activate() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();

    // Scaffold; a bad name is refused in plain words.
    let out = gensail(&["algorithms", "new", "Keywords-Test"], dir);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a valid algorithm ID"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(
        gensail(&["algorithms", "new", "keywords_test_v1"], dir),
        "algorithms new",
    );
    let crate_dir = dir.join("keywords_test_v1");
    let out = gensail(&["algorithms", "new", "keywords_test_v1"], dir);
    assert!(!out.status.success(), "an existing directory is not overwritten");

    // Its own tests pass natively, and it builds as a component.
    let tests = ok(
        cargo(&crate_dir, &["test", "--target", env!("GENSAIL_HOST_TARGET")]),
        "cargo test",
    );
    assert!(tests.contains("test result: ok. 2 passed"), "{tests}");
    let wasm = build(&crate_dir);

    // Runs locally on a transcript.
    let transcript = dir.join("call.txt");
    std::fs::write(
        &transcript,
        "Caller: I want a refund.\nAgent: I can cancel the order and refund you.",
    )
    .unwrap();
    let report: serde_json::Value = serde_json::from_str(&ok(
        gensail(
            &[
                "algorithms",
                "run",
                wasm.to_str().unwrap(),
                "--transcript",
                transcript.to_str().unwrap(),
            ],
            dir,
        ),
        "algorithms run",
    ))
    .unwrap();
    assert_eq!(report["output"]["total"], 3, "{report}");

    // Publishes to a live server with the token from GENSAIL_TOKEN.
    let s = TestServer::start().await;
    let t = s.tenant("acme").await;
    let publish = |file: &Path, extra: &[&str]| {
        let mut args = vec!["algorithms", "publish", file.to_str().unwrap(), "--server", &s.base];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_gensail"))
            .args(&args)
            .env("GENSAIL_TOKEN", &s.platform)
            .output()
            .expect("run gensail")
    };
    let out = publish(
        &wasm,
        &[
            "--manifest",
            r#"{"description": "Keyword counter", "default_config": {"keywords": ["cancel", "technician"]}}"#,
        ],
    );
    let published: serde_json::Value = serde_json::from_str(&ok(out, "algorithms publish")).unwrap();
    assert_eq!(
        (
            published["activated"].as_bool(),
            published["version"]["version"].as_str()
        ),
        (Some(true), Some("0.1.0"))
    );
    let out = Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(["algorithms", "publish", wasm.to_str().unwrap(), "--server", &s.base])
        .env("GENSAIL_TOKEN", "gs_wrong")
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A real job runs it with its default config.
    let job = s.finished_job(&t, "angry_support.txt", &["keywords_test_v1"]).await;
    let run = &s.runs(&s.platform, job).await[0];
    assert_eq!(
        (run["status"].as_str(), run["algorithm_version"].as_str()),
        (Some("completed"), Some("0.1.0")),
        "{run}"
    );
    assert_eq!(run["config"], json!({"keywords": ["cancel", "technician"]}));
    assert_eq!(
        run["result"]["by_keyword"],
        json!({"cancel": 1, "technician": 3}),
        "{run}"
    );

    // Version 0.2.0 also counts words that start with a keyword ("cancelling"):
    // published without activating, compared on the job, activated.
    let cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml"))
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    std::fs::write(crate_dir.join("Cargo.toml"), cargo_toml).unwrap();
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    let lib = lib.replace(
        "let word = word.to_lowercase();",
        "let word = word.to_lowercase();\n                let word = keywords.iter().find(|k| word.starts_with(k.as_str())).cloned().unwrap_or(word);",
    );
    std::fs::write(crate_dir.join("src/lib.rs"), lib).unwrap();
    let wasm = build(&crate_dir);
    let staged: serde_json::Value = serde_json::from_str(&ok(
        publish(&wasm, &["--no-activate", "--golden", &job.to_string()]),
        "publish --no-activate",
    ))
    .unwrap();
    assert_eq!(
        (staged["activated"].as_bool(), staged["algorithm"]["version"].as_str()),
        (Some(false), Some("0.1.0"))
    );
    let report = s
        .ok(
            &s.platform,
            "/api/v1/algorithms/keywords_test_v1/versions/0.2.0/compare",
            json!({}),
            200,
        )
        .await;
    assert_eq!(report["jobs"][0]["job_id"], job);
    assert_eq!(report["regressions"], json!([]));
    assert_eq!(
        report["jobs"][0]["differences"],
        json!(["$.by_keyword.cancel", "$.by_speaker.Customer", "$.total"]),
        "{report}"
    );
    let r = s
        .post(
            &s.platform,
            "/api/v1/algorithms/keywords_test_v1/activate",
            json!({"version": "0.2.0"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active_version"], "0.2.0");
}
