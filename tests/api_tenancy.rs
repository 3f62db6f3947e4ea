//! Tenancy and access: keys of every scope against jobs inside and outside
//! their scope (list endpoints included), algorithm availability by scope,
//! authentication, and per-scope rate limits with a controlled clock.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::{Tenant, TestServer};
use serde_json::json;

/// P1 → O1 → {W1, W2}; P1 → O2 → W3; P2 → O4 → W4.
struct World {
    p1: Tenant,
    w2: i64,
    w3: i64,
    p2: Tenant,
    jobs: [i64; 4],
}

async fn world(s: &TestServer) -> World {
    let p1 = s.tenant("P1").await;
    let w2 = s.workspace(p1.organization, "W2").await;
    let o2 = s
        .ok(
            &s.platform,
            "/api/v1/organizations",
            json!({"partner_id": p1.partner, "name": "O2"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let w3 = s.workspace(o2, "W3").await;
    let p2 = s.tenant("P2").await;
    let mut jobs = [0; 4];
    for (i, w) in [p1.workspace, w2, w3, p2.workspace].into_iter().enumerate() {
        jobs[i] = s
            .ingest(&s.platform, w, "dental_cancel.txt", &["internal_metrics_v1"])
            .await;
    }
    for j in jobs {
        s.wait(&s.platform, j).await;
    }
    World { p1, w2, w3, p2, jobs }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scope_reaches_exactly_its_jobs() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let w2_key = s.key("workspace", w.w2).await;
    let o2 = s.get(&s.platform, &format!("/api/v1/jobs/{}", w.jobs[2])).await;
    assert_eq!(o2.status, 200);
    // (key, which of the four jobs it reaches)
    let matrix: Vec<(&str, String, [bool; 4])> = vec![
        ("platform", s.platform.clone(), [true, true, true, true]),
        ("partner P1", w.p1.partner_key.clone(), [true, true, true, false]),
        (
            "organization O1",
            w.p1.organization_key.clone(),
            [true, true, false, false],
        ),
        ("workspace W1", w.p1.workspace_key.clone(), [true, false, false, false]),
        ("workspace W2", w2_key.clone(), [false, true, false, false]),
        ("partner P2", w.p2.partner_key.clone(), [false, false, false, true]),
        (
            "organization O4",
            w.p2.organization_key.clone(),
            [false, false, false, true],
        ),
    ];
    for (name, key, reach) in &matrix {
        for (i, job) in w.jobs.iter().enumerate() {
            let expected = if reach[i] { 200 } else { 403 };
            for endpoint in [
                format!("/api/v1/jobs/{job}"),
                format!("/api/v1/jobs/{job}/runs"),
                format!("/api/v1/jobs/{job}/logs"),
            ] {
                let r = s.get(key, &endpoint).await;
                assert_eq!(r.status.as_u16(), expected, "{name} GET {endpoint}: {}", r.body);
            }
            let r = s
                .post(
                    key,
                    &format!("/api/v1/jobs/{job}/run-algorithms"),
                    json!({"algorithm_ids": ["sentiment_v1"], "force_rerun": true}),
                )
                .await;
            assert_eq!(
                r.status.as_u16(),
                if reach[i] { 202 } else { 403 },
                "{name} run-algorithms on job {job}: {}",
                r.body
            );
            let run_id =
                s.get(&s.platform, &format!("/api/v1/jobs/{job}/runs")).await.body["runs"][0]["algorithm_run_id"]
                    .as_i64()
                    .unwrap();
            assert_eq!(
                s.get(key, &format!("/api/v1/algorithm-runs/{run_id}"))
                    .await
                    .status
                    .as_u16(),
                expected,
                "{name} run {run_id}"
            );
        }
        // Lists show exactly the reachable jobs (ingested ones, not the children just made).
        let listed = s.get(key, "/api/v1/jobs?limit=500").await.body;
        let mut ids: Vec<i64> = listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["parent_job_id"].is_null())
            .map(|j| j["job_id"].as_i64().unwrap())
            .collect();
        ids.sort();
        let want: Vec<i64> = w
            .jobs
            .iter()
            .enumerate()
            .filter(|(i, _)| reach[*i])
            .map(|(_, j)| *j)
            .collect();
        assert_eq!(ids, want, "{name} GET /jobs");
        let found = s
            .get(key, "/api/v1/jobs/lookup?source_call_id=call-dental_cancel.txt")
            .await;
        let n = found.body["jobs"]
            .as_array()
            .map_or(0, |j| j.iter().filter(|j| j["parent_job_id"].is_null()).count());
        assert_eq!(n, want.len(), "{name} lookup");
    }
    // Naming another tenant's workspace to ingest or list is refused.
    let r = s
        .post(
            &w.p1.partner_key,
            "/api/v1/calls/transcript",
            json!({"workspace_id": w.p2.workspace, "transcript": "Agent: hi"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        s.get(&w.p1.organization_key, &format!("/api/v1/jobs?workspace_id={}", w.w3))
            .await
            .status,
        403
    );
    assert_eq!(
        s.get(&w.p1.partner_key, &format!("/api/v1/jobs?workspace_id={}", w.w3))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_global_partner_organization_assigned_and_foreign() {
    let s = TestServer::start().await;
    let w = world(&s).await;
    let scope = |id: &'static str, body: serde_json::Value| {
        let s = &s;
        async move {
            assert_eq!(
                s.request(
                    reqwest::Method::PATCH,
                    Some(&s.platform),
                    &format!("/api/v1/algorithms/{id}"),
                    Some(body)
                )
                .await
                .status,
                200
            )
        }
    };
    scope(
        "rise_dds_v5",
        json!({"scope_type": "partner", "scope_id": w.p1.partner}),
    )
    .await;
    scope(
        "qa_scoring_v1",
        json!({"scope_type": "organization", "scope_id": w.p1.organization}),
    )
    .await;
    scope(
        "new_sentiment_v2",
        json!({"scope_type": "partner", "scope_id": w.p2.partner}),
    )
    .await;
    scope("appointment_scheduling", json!({"scope_type": "workspace"})).await;
    s.ok(
        &s.platform,
        &format!("/api/v1/workspaces/{}/algorithms", w.w3),
        json!({"algorithm_id": "appointment_scheduling"}),
        201,
    )
    .await;

    let w3_key = s.key("workspace", w.w3).await;
    let available = |key: String| {
        let s = &s;
        async move {
            let body = s.get(&key, "/api/v1/algorithms").await.body;
            body["algorithms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["algorithm_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let w1 = available(w.p1.workspace_key.clone()).await;
    let w3 = available(w3_key.clone()).await;
    let w4 = available(w.p2.workspace_key.clone()).await;
    assert!(
        w1.contains(&"rise_dds_v5".into())
            && w1.contains(&"qa_scoring_v1".into())
            && w1.contains(&"sentiment_v1".into())
    );
    assert!(!w1.contains(&"new_sentiment_v2".into()) && !w1.contains(&"appointment_scheduling".into()));
    assert!(w3.contains(&"rise_dds_v5".into()) && w3.contains(&"appointment_scheduling".into()));
    assert!(!w3.contains(&"qa_scoring_v1".into()), "O2 is not O1: {w3:?}");
    assert!(w4.contains(&"new_sentiment_v2".into()) && !w4.contains(&"rise_dds_v5".into()));

    let run = |key: String, job: i64, ids: serde_json::Value| {
        let s = &s;
        async move {
            s.post(
                &key,
                &format!("/api/v1/jobs/{job}/run-algorithms"),
                json!({"algorithm_ids": ids}),
            )
            .await
        }
    };
    assert_eq!(
        run(
            w.p1.workspace_key.clone(),
            w.jobs[0],
            json!(["rise_dds_v5", "qa_scoring_v1"])
        )
        .await
        .status,
        202
    );
    let r = run(
        w3_key.clone(),
        w.jobs[2],
        json!(["qa_scoring_v1", "appointment_scheduling", "new_sentiment_v2"]),
    )
    .await;
    assert_eq!(
        r.detail(),
        "Algorithms not available: ['qa_scoring_v1', 'new_sentiment_v2']"
    );
    // Availability follows the job's workspace, even for a partner key.
    let r = run(w.p1.partner_key.clone(), w.jobs[1], json!(["appointment_scheduling"])).await;
    assert_eq!(r.detail(), "Algorithms not available: ['appointment_scheduling']");
    let _ = w.w2;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_headers_and_platform_only_endpoints() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let none = s.request(reqwest::Method::GET, None, "/api/v1/jobs", None).await;
    assert_eq!(none.status, 401);
    assert!(none.detail().contains("Authorization: Bearer"), "{}", none.detail());
    assert_eq!(
        s.get("gs_not_a_real_token", "/api/v1/jobs").await.detail(),
        "Invalid API key"
    );
    // x-api-key works as well as Bearer.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs", s.base))
        .header("x-api-key", &t.workspace_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Platform endpoints need a platform key.
    let r = s
        .post(&t.partner_key, "/api/v1/partners", json!({"name": "Sneaky"}))
        .await;
    assert_eq!((r.status.as_u16(), r.detail()), (403, "This needs a platform key"));
    // A revoked key stops working; keys are stored hashed (the token is not in the database).
    let created = s
        .ok(
            &s.platform,
            "/api/v1/keys",
            json!({"scope_type": "workspace", "scope_id": t.workspace}),
            201,
        )
        .await;
    let token = created["token"].as_str().unwrap();
    assert_eq!(s.get(token, "/api/v1/jobs").await.status, 200);
    let stored = s.stored_bytes().await;
    let needle = token.as_bytes();
    assert!(
        !stored.windows(needle.len()).any(|w| w == needle),
        "token stored in clear"
    );
    let r = s
        .request(
            reqwest::Method::DELETE,
            Some(&s.platform),
            &format!("/api/v1/keys/{}", created["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(s.get(token, "/api/v1/jobs").await.status, 401);
    // Unknown paths and methods answer in the same JSON shape.
    let r = s.get(&t.workspace_key, "/api/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert!(r.body["detail"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_key_by_scope_with_headers() {
    let s = TestServer::start_with(|c| {
        c.rate_limits.workspace_per_minute = 3;
        c.rate_limits.organization_per_minute = 6;
    })
    .await;
    let t = s.tenant("Acme").await;
    for remaining in [2, 1, 0] {
        let r = s.get(&t.workspace_key, "/api/v1/jobs").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-ratelimit-limit"], "3");
        assert_eq!(r.headers["x-ratelimit-remaining"], remaining.to_string().as_str());
        assert!(r.headers.contains_key("x-ratelimit-reset"));
    }
    let r = s
        .post(
            &t.workspace_key,
            "/api/v1/jobs/1/run-algorithms",
            json!({"algorithm_ids": ["sentiment_v1"]}),
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "20");
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    assert!(r.detail().contains("Retry-After"));
    // Another key (another scope) has its own budget.
    let r = s.get(&t.organization_key, "/api/v1/jobs").await;
    assert_eq!(
        (r.status.as_u16(), r.headers["x-ratelimit-limit"].to_str().unwrap()),
        (200, "6")
    );
    // Time passes (on the service clock): one request is allowed again.
    s.clock.advance(chrono::Duration::seconds(19));
    assert_eq!(s.get(&t.workspace_key, "/api/v1/jobs").await.status, 429);
    s.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(s.get(&t.workspace_key, "/api/v1/jobs").await.status, 200);
    assert_eq!(s.get(&t.workspace_key, "/api/v1/jobs").await.status, 429);
    // Platform keys are not limited.
    for _ in 0..10 {
        assert_eq!(s.get(&s.platform, "/api/v1/jobs").await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    s.finished_job(&t, "dental_booking.txt", &["sentiment_v1"]).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(format!("{}/healthz", s.base)).send().await.unwrap().status(),
        200
    );
    let ready: serde_json::Value = client
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], true);
    assert!(ready["algorithms_loaded"].as_u64().unwrap() >= 8);
    let text = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "gensail_jobs{status=\"completed\"} 1",
        "gensail_algorithm_runs_total{algorithm_id=\"sentiment_v1\",outcome=\"completed\"} 1",
        "gensail_http_requests_total{method=\"POST\",route=\"/api/v1/calls/transcript\",status=\"202\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("gensail_algorithm_run_seconds_bucket{"), "{text}");
    assert!(
        text.contains("gensail_algorithm_fuel_total{algorithm_id=\"sentiment_v1\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_offline_docs_page() {
    let s = TestServer::start().await;
    let client = reqwest::Client::new();
    let doc: serde_json::Value = client
        .get(format!("{}/api/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/jobs/{job_id}/run-algorithms",
        "/api/v1/jobs",
        "/api/v1/calls/transcript",
        "/api/v1/algorithm-runs/{run_id}",
        "/api/v1/keys",
        "/api/v1/config/{entity_type}/{entity_id}/webhook-credential",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    let op = &doc["paths"]["/api/v1/jobs/{job_id}/run-algorithms"]["post"];
    for status in ["200", "202", "400", "401", "403", "404", "422", "429"] {
        assert!(
            op["responses"].get(status).is_some(),
            "run-algorithms documents {status}"
        );
    }
    // Every operation documents the answers the key middleware gives (added in
    // one place, so no handler can forget them), each with the error body,
    // and has an operation ID of its own (client generators name methods by it).
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{method} {path}: operation ID {id} repeats");
            for status in ["401", "429"] {
                let schema = &op["responses"][status]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} documents {status}"
                );
            }
        }
    }
    assert!(doc["components"]["schemas"]["RunAlgorithmsRequest"].is_object());
    // Every reference resolves (a type used only in a query's parameters is
    // easy to leave out of the components; validators refuse the document).
    fn refs<'v>(v: &'v serde_json::Value, out: &mut Vec<&'v str>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} does not resolve");
    }
    // The docs page and its script come from the binary, not a CDN.
    let page = client.get(format!("{}/docs/", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("cdn.") && !html.contains("unpkg"), "{html}");
    let js = client
        .get(format!("{}/docs/swagger-ui-bundle.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.unwrap().len() > 100_000);
}
