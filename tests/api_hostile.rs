//! Hostile guests and hostile clients through the API, on SQLite and (in
//! CI's second pass) PostgreSQL: what a guest writes is stored bounded and as
//! valid text, its job settles, and the server answers throughout; hostile
//! path, query and body values on every route get a JSON answer, never a 5xx
//! or a dropped connection.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_logs_and_messages_are_stored_bounded_and_as_valid_text() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    for (mode, status) in [("log_bomb", "completed"), ("huge_error", "failed")] {
        let workspace = s.workspace(t.organization, mode).await;
        s.ok(
            &s.platform,
            &format!("/api/v1/workspaces/{workspace}/algorithms"),
            json!({"algorithm_id": "hostile_v1", "config": {"mode": mode}}),
            201,
        )
        .await;
        let job = s
            .ingest(&s.platform, workspace, "dental_booking.txt", &["hostile_v1"])
            .await;
        let settled = s.wait(&s.platform, job).await;
        assert_eq!(settled["status"], status, "{mode}: {settled}");
        let runs = s.runs(&s.platform, job).await;
        let stored = serde_json::to_string(&runs).unwrap();
        assert!(stored.len() < 100 << 10, "{mode}: {} bytes stored", stored.len());
        assert!(!stored.contains("\\u0000"), "{mode}: a NUL byte was stored");
        match mode {
            // The NUL byte PostgreSQL refused (and re-ran the job for, forever).
            "log_bomb" => assert!(runs[0]["logs"].as_str().unwrap().starts_with("error: nul\u{FFFD}byte")),
            _ => assert!(
                runs[0]["error"]["message"]
                    .as_str()
                    .unwrap()
                    .ends_with("more bytes cut]"),
                "{}",
                runs[0]["error"]["message"].as_str().unwrap().len()
            ),
        }
        let logs = s.get(&s.platform, &format!("/api/v1/jobs/{job}/logs")).await;
        assert!(
            logs.body.to_string().len() < 100 << 10,
            "{mode}: the job log is bounded"
        );
    }
}

/// Values that have crashed or confused parsers: out-of-range and malformed
/// numbers and times, encodings, huge and empty strings.
fn hostile_texts() -> Vec<String> {
    [
        "abc",
        "-1",
        "0",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "1.5",
        "1e309",
        "NaN",
        "%00",
        "%F0%9F%92%A5",
        "%FF%FE",
        "..%2F..%2Fetc%2Fpasswd",
        "null",
        "true",
        "%20",
        "100000000d",
        "9999999999999h",
        "99999999999999999999m",
        "-5m",
        "2026-13-45T99:99:99Z",
        "+262143-12-31T23:59:59Z",
        "[]",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(["9".repeat(4000), "a,".repeat(2000)])
    .collect()
}

/// Bodies of every JSON shape, with hostile values where fields are expected.
fn hostile_bodies() -> Vec<serde_json::Value> {
    let deep = (0..200).fold(json!(1), |inner, _| json!([inner]));
    let text = "9".repeat(4000);
    vec![
        json!(null),
        json!(true),
        json!(1e308),
        json!(-1),
        json!("a string"),
        json!([]),
        json!({}),
        deep,
        json!({"workspace_id": u64::MAX, "transcript": text, "algorithm_ids": [text]}),
        json!({"workspace_id": -1, "transcript": {"segments": [{"speaker": "A", "start_ms": u64::MAX, "end_ms": 0, "text": "\u{0}"}]}}),
        json!({"transcript": {"duration_ms": u64::MAX, "segments": [{"speaker": "A", "start_ms": 0, "end_ms": 1, "text": "hi"}]}}),
        json!({"algorithm_ids": vec!["sentiment_v1"; 10_000], "force_rerun": "yes"}),
        json!({"algorithm_ids": {"a": 1}, "analytics_only": 1}),
        json!({"name": text, "status": text, "mode": text, "version": text, "url": text, "config": text}),
        json!({"name": "\u{0}\u{feff}", "scope": {"type": "x"}, "settings": [1, 2], "min_duration_seconds": -1e300}),
        json!({"url": "http://[64:ff9b::a9fe:a9fe]/", "secret": "\u{0}"}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_on_every_route_get_json_and_never_a_server_error() {
    use reqwest::Method;
    let s = TestServer::start().await;
    let doc = s.get(&s.platform, "/api/v1/openapi.json").await.body;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "the OpenAPI document lists the routes");
    let (texts, bodies) = (hostile_texts(), hostile_bodies());
    let large = json!({"algorithm_ids": vec!["sentiment_v1"; 100_000]});
    let with_params = |template: &str, value: &str| {
        let mut path = template.to_owned();
        while let (Some(open), Some(close)) = (path.find('{'), path.find('}')) {
            path.replace_range(open..=close, value);
        }
        path
    };
    let (mut sent, mut refused) = (0, 0);
    for (template, item) in paths.iter().filter(|(p, _)| p.starts_with("/api/v1/")) {
        for (name, method) in [
            ("get", Method::GET),
            ("put", Method::PUT),
            ("post", Method::POST),
            ("delete", Method::DELETE),
            ("patch", Method::PATCH),
        ] {
            let Some(operation) = item.get(name) else { continue };
            let queries: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            // Each hostile value in every path parameter; then, on an ID that
            // does not exist (never the test's own key), each hostile value in
            // each query parameter, and each hostile body.
            let mut cases: Vec<(String, Option<serde_json::Value>)> = Vec::new();
            if template.contains('{') {
                cases.extend(texts.iter().map(|v| (with_params(template, v), None)));
                // Refused on its path before its (large) body is read: the
                // answer must still reach a client that is still sending.
                if method != Method::GET {
                    cases.push((with_params(template, "abc"), Some(large.clone())));
                }
            }
            let absent = with_params(template, "999999");
            for q in &queries {
                cases.extend(texts.iter().map(|v| (format!("{absent}?{q}={v}"), None)));
            }
            if method != Method::GET {
                cases.extend(bodies.iter().map(|b| (absent.clone(), Some(b.clone()))));
                cases.push((absent.clone(), Some(json!("not JSON"))));
            }
            for (path, body) in cases {
                let case = format!("{} {path}", method.as_str());
                let r = if body == Some(json!("not JSON")) {
                    // Not JSON at all, though labelled so.
                    s.raw(method.clone(), &s.platform, &path, b"{\"unterminated\": [1, 2".to_vec())
                        .await
                } else {
                    s.request(method.clone(), Some(&s.platform), &path, body).await
                };
                sent += 1;
                assert!(r.status.as_u16() < 500, "{case}: {} {}", r.status, r.body);
                if r.status.is_client_error() {
                    refused += 1;
                    assert!(r.body["detail"].is_string(), "{case}: {} {}", r.status, r.body);
                }
            }
        }
    }
    eprintln!("{sent} hostile requests, {refused} refused with a JSON detail");
    assert!(sent > 1000 && refused > sent * 9 / 10, "{sent} sent, {refused} refused");
    // The service still works afterwards, with the same platform key.
    let t = s.tenant("After the storm").await;
    let job = s
        .ingest(&t.workspace_key, t.workspace, "dental_booking.txt", &["sentiment_v1"])
        .await;
    assert_eq!(s.wait(&s.platform, job).await["status"], "completed");
}

/// serde would take a JSON array as a struct's fields in order: `["Globex"]`
/// must not create a partner named Globex, nor `["platform", null]` a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_an_object_never_the_fields_in_order() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    for (path, body) in [
        ("/api/v1/partners", json!(["Globex"])),
        ("/api/v1/keys", json!(["platform", null])),
        ("/api/v1/organizations", json!([t.partner, "Initech"])),
        // Routes that read raw bytes (an optional body) follow the same rule.
        ("/api/v1/algorithms/sentiment_v1/activate", json!(["1.0.0"])),
        ("/api/v1/jobs/retry", json!(["rerun", "call-1", null])),
    ] {
        let r = s.post(&s.platform, path, body.clone()).await;
        assert_eq!(r.status, 422, "{path} {body}: {}", r.body);
        assert!(r.detail().contains("JSON object"), "{path}: {}", r.detail());
    }
    // A wrong field is still named.
    let r = s.post(&s.platform, "/api/v1/partners", json!({"name": 7})).await;
    assert_eq!(r.status, 422);
    assert!(r.detail().contains("name"), "{}", r.detail());
}
