//! `gensail algorithms list | inspect | run`, run as an author would: the real
//! binary, real components, exit codes and output.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn gensail(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(args)
        .env("GENSAIL_DATA_DIR", data_dir)
        .output()
        .expect("run gensail")
}

fn wasm(name: &str) -> String {
    PathBuf::from(env!("GENSAIL_PLUGIN_WASM_DIR"))
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn fixture(name: &str) -> String {
    format!("{}/plugins/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// GET over a plain TCP socket (this test has no async runtime).
mod reqwest {
    pub fn blocking_get_status(url: &str) -> u16 {
        use std::io::{Read, Write};
        let host = url.trim_start_matches("http://").split('/').next().unwrap();
        let path = &url[url.find(host).unwrap() + host.len()..];
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn list_shows_every_bundled_algorithm() {
    let data = tempfile::tempdir().unwrap();
    let out = gensail(data.path(), &["algorithms", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "appointment_scheduling",
            "competitor_mentions_v1",
            "internal_metrics_v1",
            "new_sentiment_v2",
            "qa_scoring_v1",
            "rise_dds_v4",
            "rise_dds_v5",
            "sentiment_v1"
        ]
    );
    // The compile cache was filled, so the next start does not recompile.
    let cached = std::fs::read_dir(data.path().join("compile-cache")).unwrap().count();
    assert_eq!(cached, ids.len());
}

#[test]
fn inspect_reports_identity_and_limits() {
    let data = tempfile::tempdir().unwrap();
    let out = gensail(data.path(), &["algorithms", "inspect", &wasm("competitor_mentions_v1")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info = json(&out);
    assert_eq!(info["id"], "competitor_mentions_v1");
    assert_eq!(info["version"], "1.0.0");
    assert_eq!(info["wit_version"], "1.0.0");
    assert_eq!(info["sha256"].as_str().unwrap().len(), 64);
    assert!(info["size_bytes"].as_u64().unwrap() > 10_000);
    assert!(info["limits"]["fuel"].as_u64().unwrap() > 0);
    // The manifest's own name for the deadline.
    assert_eq!(info["limits"]["timeout_ms"], 10_000, "{}", info["limits"]);
    assert_eq!(info["config_schema"]["type"], "object");
}

#[test]
fn output_into_a_closed_pipe_is_not_a_crash() {
    use std::process::Stdio;
    let data = tempfile::tempdir().unwrap();
    // `gensail algorithms list | head -c 1`: the reader leaves after one byte.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(["algorithms", "list"])
        .env("GENSAIL_DATA_DIR", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn serve_on_a_busy_port_fails_before_creating_anything() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let out = gensail(&data, &["serve", "--bind", &address]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on {address}")), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("token"),
        "a token was printed"
    );
    assert!(!data.exists(), "the data directory was created");
}

#[test]
fn inspect_refuses_an_incompatible_plugin_in_plain_words() {
    let data = tempfile::tempdir().unwrap();
    let out = gensail(data.path(), &["algorithms", "inspect", &wasm("wit_v2")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gensail:algorithm@2.0.0") && stderr.contains("gensail:algorithm@1.0.0"),
        "{stderr}"
    );
}

#[test]
fn run_a_bundled_algorithm_on_both_transcript_forms() {
    let data = tempfile::tempdir().unwrap();
    for file in ["dental_booking.txt", "support_resolved.json"] {
        let out = gensail(
            data.path(),
            &["algorithms", "run", "new_sentiment_v2", "--transcript", &fixture(file)],
        );
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let report = json(&out);
        assert_eq!(report["status"], "completed");
        assert_eq!(report["output"]["call_sentiment"], "Positive", "{file}");
        assert_eq!(report["algorithm_id"], "new_sentiment_v2");
    }
}

#[test]
fn run_a_file_with_config_from_a_file() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.json");
    std::fs::write(&config, r#"{"competitors": ["Gong"]}"#).unwrap();
    let out = gensail(
        data.path(),
        &[
            "algorithms",
            "run",
            &wasm("competitor_mentions_v1"),
            "--transcript",
            &fixture("sales_competitors.txt"),
            "--config",
            &format!("@{}", config.display()),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["output"]["mentioned"], serde_json::json!(["Gong"]));
}

#[test]
fn a_failing_run_exits_non_zero_with_the_typed_error() {
    let data = tempfile::tempdir().unwrap();
    let out = gensail(
        data.path(),
        &[
            "algorithms",
            "run",
            &wasm("hostile"),
            "--transcript",
            &fixture("dental_booking.txt"),
            "--config",
            r#"{"mode":"panic"}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"]["kind"], "trap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the plugin trapped") && stderr.contains("hostile guest panicked on purpose"),
        "{stderr}"
    );

    let out = gensail(
        data.path(),
        &[
            "algorithms",
            "run",
            &wasm("hostile"),
            "--transcript",
            &fixture("dental_booking.txt"),
            "--config",
            r#"{"mode":"loop"}"#,
            "--timeout-ms",
            "200",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 200 ms"));
}

#[test]
fn bad_arguments_say_what_to_fix() {
    let data = tempfile::tempdir().unwrap();
    let out = gensail(
        data.path(),
        &[
            "algorithms",
            "run",
            "no_such_algo",
            "--transcript",
            &fixture("dental_booking.txt"),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("neither a bundled algorithm") && stderr.contains("sentiment_v1"),
        "{stderr}"
    );

    let out = gensail(
        data.path(),
        &[
            "algorithms",
            "run",
            "sentiment_v1",
            "--transcript",
            &fixture("dental_booking.txt"),
            "--config",
            "[1]",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be a JSON object"));

    let bad = data.path().join("bad.txt");
    std::fs::write(&bad, "no speaker here\n").unwrap();
    let out = gensail(
        data.path(),
        &[
            "algorithms",
            "run",
            "sentiment_v1",
            "--transcript",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1 has no speaker label"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_demo_answers_and_shuts_down_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gensail"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--run-timeout-ms", "2000"])
        .env("GENSAIL_DATA_DIR", data.path())
        .env_remove("GENSAIL_PLATFORM_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let address = loop {
        let line = lines.next().expect("gensail printed its address").unwrap();
        if let Some(a) = line.strip_prefix("gensail is serving on ") {
            break a.to_owned();
        }
        printed.push(line);
    };
    let text = printed.join("\n");
    assert!(text.contains("Platform token (shown once"), "{text}");
    for scope in [
        "workspace key:",
        "organization key:",
        "partner key:",
        "sample call jobs: 1, 2, 3, 4, 5, 6",
    ] {
        assert!(text.contains(scope), "{scope} missing in {text}");
    }
    let health = reqwest::blocking_get_status(&format!("{address}/healthz"));
    assert_eq!(health, 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "gensail did not stop on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(data.path().join("gensail.db").exists());
}

#[test]
fn no_command_is_serve_with_its_environment() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    // GENSAIL_BIND must be honoured: with the default 127.0.0.1:8080 this
    // would collide with anything else on the port instead of taking a free one.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gensail"))
        .env("GENSAIL_BIND", "127.0.0.1:0")
        .env("GENSAIL_DATA_DIR", data.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let address = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .find_map(|l| l.strip_prefix("gensail is serving on ").map(str::to_owned))
        .expect("gensail printed its address");
    assert!(!address.ends_with(":8080"), "GENSAIL_BIND was ignored: {address}");
    assert_eq!(reqwest::blocking_get_status(&format!("{address}/healthz")), 200);
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn serve_refuses_a_platform_token_no_client_could_send() {
    // Not ASCII (it once crashed start-up cutting its hint), and too short to be safe.
    for (token, says) in [
        ("ключ-доступа-платформы-0123456789", "visible ASCII"),
        ("gs_short", "24 to 256 characters"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_gensail"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("GENSAIL_DATA_DIR", data.path())
            .env("GENSAIL_PLATFORM_TOKEN", token)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("GENSAIL_PLATFORM_TOKEN") && stderr.contains(says),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
