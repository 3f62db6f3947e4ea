//! A full disk: while the database cannot write, every write answers 503
//! with Retry-After (never 500, never "database is locked"), reads keep
//! working and `/readyz` says what is wrong; once space returns the service
//! recovers by itself, and every job it answered 202 for is there and runs.
//!
//! The data directory is a small tmpfs that the test fills, so it needs to
//! mount (root). Without that it is skipped, unless `GENSAIL_REQUIRE_MOUNT=1`
//! (as in CI), where it fails. It runs on SQLite only: the embedded store is
//! the one whose files share the service's disk.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::api::TestServer;
use serde_json::json;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if out.status.success() {
            Some(Self(dir.to_path_buf()))
        } else {
            eprintln!("cannot mount a tmpfs: {}", String::from_utf8_lossy(&out.stderr));
            None
        }
    }

    /// Writes zeros until the file system refuses: the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        // The last partial chunk may leave a few bytes: take them too.
        while file.write_all(&[0u8; 512]).is_ok() {}
        while file.write_all(&[0u8]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_service_recovers_when_space_returns() {
    if std::env::var_os("GENSAIL_TEST_POSTGRES_URL").is_some() {
        eprintln!("skipped on the PostgreSQL run: a full disk is a SQLite-store drill (run once, on SQLite)");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&scratch.path().join("data"), "24m") else {
        assert!(
            std::env::var("GENSAIL_REQUIRE_MOUNT").as_deref() != Ok("1"),
            "GENSAIL_REQUIRE_MOUNT=1 but a tmpfs cannot be mounted here"
        );
        eprintln!("skipped: cannot mount a tmpfs (needs root); set GENSAIL_REQUIRE_MOUNT=1 to fail instead");
        return;
    };
    let s = TestServer::start_with(|c| {
        c.data_dir = disk.0.clone();
        c.database_url = None;
    })
    .await;
    let t = s.tenant("Acme").await;
    let mut accepted = vec![
        s.ingest(&t.workspace_key, t.workspace, "dental_booking.txt", &["sentiment_v1"])
            .await,
    ];
    // Long calls (past the 30 s filter), each with its own transcript to store.
    let call = |i: usize| {
        let words: Vec<String> = (0..2000).map(|w| format!("word{}x{w}", i * 7919 + w)).collect();
        json!({"workspace_id": t.workspace, "algorithm_ids": ["sentiment_v1"],
               "transcript": format!("Agent: {}\nCaller: thanks", words.join(" "))})
    };

    let filler = disk.fill();
    let (mut refused, mut in_a_row) = (0, 0);
    for i in 0..400 {
        let r = s.post(&s.platform, "/api/v1/calls/transcript", call(i)).await;
        match r.status.as_u16() {
            202 => {
                accepted.push(r.body["job_id"].as_i64().unwrap());
                in_a_row = 0;
            }
            503 => {
                let detail = r.body["detail"].as_str().unwrap();
                assert!(detail.contains("storage is full"), "{detail}");
                assert_eq!(r.headers["retry-after"], "30");
                refused += 1;
                in_a_row += 1;
                if in_a_row == 5 {
                    break;
                }
            }
            other => panic!("a write on a full disk answered {other}: {}", r.body),
        }
    }
    assert_eq!(in_a_row, 5, "the disk never filled ({refused} refused)");
    let ready = s.get(&s.platform, "/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.body["detail"].as_str().unwrap().contains("storage is full"),
        "{}",
        ready.body
    );
    // Reads still work.
    let listed = s.get(&t.workspace_key, "/api/v1/jobs?limit=500").await;
    assert_eq!(listed.status, 200, "{}", listed.body);

    // Space returns: the next write succeeds at once, with nothing restarted.
    std::fs::remove_file(filler).unwrap();
    let r = s.post(&s.platform, "/api/v1/calls/transcript", call(10_000)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    accepted.push(r.body["job_id"].as_i64().unwrap());
    let ready = s.get(&s.platform, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    // Runs whose results could not be stored are taken back when their lease
    // expires; then every job answered 202 finishes.
    s.clock.advance(chrono::Duration::seconds(31));
    s.state.wake_worker();
    for job in &accepted {
        let done = s.wait(&s.platform, *job).await;
        assert_eq!(done["status"], "completed", "job {job}: {done}");
    }
}
