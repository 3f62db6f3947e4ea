//! Webhook configuration: endpoints and credentials per partner,
//! organization or workspace; write-only secrets; the outbound address guard.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first unexpected error")]

mod common;

use common::api::TestServer;
use reqwest::Method;
use serde_json::json;

fn path(entity: &str, id: i64, what: &str) -> String {
    format!("/api/v1/config/{entity}/{id}/{what}")
}

async fn with_allowlist() -> TestServer {
    TestServer::start_with(|c| c.webhook_allowlist = "127.0.0.1".into()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_lifecycle_with_a_signing_secret_shown_once() {
    let s = with_allowlist().await;
    let t = s.tenant("Acme").await;
    let p = path("workspace", t.workspace, "webhook");
    let put = s
        .request(
            Method::PUT,
            Some(&t.workspace_key),
            &p,
            Some(json!({"url": "http://127.0.0.1:9/hooks/gensail"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let secret = put.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 30);
    assert_eq!(
        put.body["signing_secret_hint"],
        format!("...{}", &secret[secret.len() - 4..])
    );

    let got = s.get(&t.workspace_key, &p).await;
    assert_eq!(got.body["url"], "http://127.0.0.1:9/hooks/gensail");
    assert!(got.body.get("signing_secret").is_none());
    assert_eq!(got.body["disabled"], false);
    // Changing the URL keeps the secret (receivers keep verifying) and does not show it again.
    let again = s
        .request(
            Method::PUT,
            Some(&t.workspace_key),
            &p,
            Some(json!({"url": "http://127.0.0.1:9/v2"})),
        )
        .await;
    assert!(again.body.get("signing_secret").is_none());
    assert_eq!(again.body["signing_secret_hint"], put.body["signing_secret_hint"]);
    // The secret is not stored in clear.
    let stored = s.stored_bytes().await;
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));

    assert_eq!(
        s.request(Method::DELETE, Some(&t.workspace_key), &p, None).await.status,
        204
    );
    assert_eq!(s.get(&t.workspace_key, &p).await.status, 404);
    assert_eq!(
        s.request(Method::PUT, Some(&t.workspace_key), &p, Some(json!({"url": 5})))
            .await
            .status,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_without_the_allowlist() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let p = path("workspace", t.workspace, "webhook");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://localhost/hook",
    ] {
        let r = s
            .request(Method::PUT, Some(&s.platform), &p, Some(json!({"url": url})))
            .await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(r.detail().contains("GENSAIL_WEBHOOK_ALLOWLIST"), "{}", r.detail());
    }
    let r = s
        .request(
            Method::PUT,
            Some(&s.platform),
            &p,
            Some(json!({"url": "ftp://example.com/x"})),
        )
        .await;
    assert!(r.detail().contains("https"), "{}", r.detail());
    assert_eq!(s.get(&s.platform, &p).await.status, 404, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_each_type_are_write_only() {
    let s = with_allowlist().await;
    let t = s.tenant("Acme").await;
    let p = path("organization", t.organization, "webhook-credential");
    let put = |body: serde_json::Value| {
        let s = &s;
        let p = p.clone();
        async move { s.request(Method::PUT, Some(&s.platform), &p, Some(body)).await }
    };
    let r = put(json!({"auth_type": "bearer", "token": "tok_live_abcdefgh1234"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["auth_type"].as_str(), r.body["secret_hint"].as_str()),
        (Some("bearer"), Some("...1234"))
    );
    let r = put(json!({"auth_type": "hmac", "secret": "hmac-secret-0123456789-x7f9", "key_id": "key-2026"})).await;
    assert_eq!(
        (r.body["key_id"].as_str(), r.body["secret_hint"].as_str()),
        (Some("key-2026"), Some("...x7f9"))
    );
    let r = put(json!({"auth_type": "basic", "username": "acme", "password": "pa55word-zz99"})).await;
    assert_eq!(
        (r.body["username"].as_str(), r.body["secret_hint"].as_str()),
        (Some("acme"), Some("...zz99"))
    );
    let got = s.get(&s.platform, &p).await.body;
    assert!(!got.to_string().contains("pa55word"), "{got}");
    let r = put(json!({"auth_type": "none"})).await;
    assert_eq!(r.body["secret_hint"], serde_json::Value::Null);

    for (body, words) in [
        (json!({"auth_type": "bearer"}), "token is required"),
        (
            json!({"auth_type": "hmac", "secret": "0123456789abcdef"}),
            "key_id is required",
        ),
        (
            json!({"auth_type": "hmac", "secret": "short", "key_id": "k"}),
            "at least 16",
        ),
        (
            json!({"auth_type": "basic", "username": "a:b", "password": "x"}),
            "must not contain ':'",
        ),
        (
            json!({"auth_type": "none", "token": "x"}),
            "token not used by auth_type none",
        ),
        (
            json!({"auth_type": "oauth"}),
            "auth_type: unknown variant `oauth`, expected one of",
        ),
    ] {
        let r = put(body.clone()).await;
        assert_eq!(r.status, 422, "{body}");
        assert!(r.detail().contains(words), "{body}: {}", r.detail());
    }
    assert_eq!(s.request(Method::DELETE, Some(&s.platform), &p, None).await.status, 204);
    assert_eq!(s.get(&s.platform, &p).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_configure_what() {
    let s = with_allowlist().await;
    let a = s.tenant("A").await;
    let b = s.tenant("B").await;
    let body = json!({"url": "http://127.0.0.1:9/hook"});
    let cases: Vec<(&str, &str, &str, i64, u16)> = vec![
        ("platform", &s.platform, "partner", a.partner, 200),
        ("partner A on its partner", &a.partner_key, "partner", a.partner, 200),
        (
            "partner A on its organization",
            &a.partner_key,
            "organization",
            a.organization,
            200,
        ),
        (
            "partner A on its workspace",
            &a.partner_key,
            "workspace",
            a.workspace,
            200,
        ),
        (
            "organization A on its partner",
            &a.organization_key,
            "partner",
            a.partner,
            403,
        ),
        (
            "organization A on itself",
            &a.organization_key,
            "organization",
            a.organization,
            200,
        ),
        (
            "workspace A on its organization",
            &a.workspace_key,
            "organization",
            a.organization,
            403,
        ),
        (
            "partner A on B's workspace",
            &a.partner_key,
            "workspace",
            b.workspace,
            403,
        ),
        (
            "workspace B on A's workspace",
            &b.workspace_key,
            "workspace",
            a.workspace,
            403,
        ),
        ("unknown workspace", &s.platform, "workspace", 9999, 404),
    ];
    for (name, key, entity, id, status) in cases {
        let r = s
            .request(Method::PUT, Some(key), &path(entity, id, "webhook"), Some(body.clone()))
            .await;
        assert_eq!(r.status.as_u16(), status, "{name}: {}", r.body);
    }
    let r = s
        .request(
            Method::PUT,
            Some(&s.platform),
            "/api/v1/config/team/1/webhook",
            Some(body),
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(r.detail().contains("partner, organization or workspace"));
}

mod delivery {
    use super::*;
    use crate::common::receiver::Receiver;
    use gensail::delivery::verify;

    /// A server that may reach 127.0.0.1, a tenant, and a receiver configured on its workspace.
    async fn setup() -> (TestServer, common::api::Tenant, Receiver, String) {
        let s = with_allowlist().await;
        let t = s.tenant("Acme").await;
        let receiver = Receiver::start().await;
        let put = s
            .request(
                Method::PUT,
                Some(&t.workspace_key),
                &path("workspace", t.workspace, "webhook"),
                Some(json!({"url": receiver.url})),
            )
            .await;
        let secret = put.body["signing_secret"].as_str().unwrap().to_owned();
        (s, t, receiver, secret)
    }

    fn now(s: &TestServer) -> i64 {
        gensail::clock::Clock::now(&*s.clock).timestamp()
    }

    async fn ingest(s: &TestServer, t: &common::api::Tenant, analytics_only: bool, ids: &[&str]) -> i64 {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/plugins/fixtures/dental_booking.txt"
        ))
        .unwrap();
        let body = json!({"transcript": text, "algorithm_ids": ids, "analytics_only": analytics_only, "source_call_id": "call-9", "contacted_at": "2026-01-20T09:30:00Z"});
        s.ok(&t.workspace_key, "/api/v1/calls/transcript", body, 202).await["job_id"]
            .as_i64()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_signed_delivery_per_run_and_none_when_analytics_only() {
        let (s, t, receiver, secret) = setup().await;
        let quiet = ingest(&s, &t, true, &["sentiment_v1"]).await;
        assert_eq!(s.wait(&t.workspace_key, quiet).await["status"], "completed");
        let job = ingest(&s, &t, false, &["sentiment_v1", "appointment_scheduling"]).await;
        let got = receiver.wait_for(2).await;
        assert_eq!(s.wait(&t.workspace_key, job).await["status"], "completed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let got_after = receiver.received();
        assert_eq!(
            got_after.len(),
            2,
            "exactly one delivery per run, none for the analytics-only job"
        );
        for r in &got {
            assert!(
                verify(&secret, r.header("x-signature"), &r.body, now(&s), 300),
                "bad signature {}",
                r.header("x-signature")
            );
            assert!(r.header("webhook-id").starts_with("dlv_"));
            let body = r.json();
            assert_eq!(body["status"], "completed");
            assert_eq!(body["call"]["job_id"], job);
            assert_eq!(body["call"]["contacted_date"], "2026-01-20");
            assert_eq!(body["call"]["contacted_time"], "09:30:00");
            assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        let appointment = got
            .iter()
            .map(|r| r.json())
            .find(|b| b["call"]["algorithm_id"] == "appointment_scheduling")
            .unwrap();
        assert_eq!(appointment["call"]["answered_by"], "Sofia");
        assert_eq!(appointment["data"][0]["patient"]["name"], "Maria Gonzalez");
        let sentiment = got
            .iter()
            .map(|r| r.json())
            .find(|b| b["call"]["algorithm_id"] == "sentiment_v1")
            .unwrap();
        assert_eq!(sentiment["call"]["call_sentiment"], "Positive");
        let deliveries = s
            .get(&t.workspace_key, &format!("/api/v1/jobs/{job}/deliveries"))
            .await
            .body;
        assert!(
            deliveries["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "delivered" && d["attempt_log"][0]["status_code"] == 200)
        );
        assert!(
            s.get(&t.workspace_key, &format!("/api/v1/jobs/{quiet}/deliveries"))
                .await
                .body["deliveries"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_with_analytics_only_false_delivers_for_an_analytics_only_parent() {
        let (s, t, receiver, _) = setup().await;
        let parent = ingest(&s, &t, true, &["sentiment_v1"]).await;
        s.wait(&t.workspace_key, parent).await;
        let quiet = s
            .ok(
                &t.workspace_key,
                &format!("/api/v1/jobs/{parent}/run-algorithms"),
                json!({"algorithm_ids": ["rise_dds_v5"]}),
                202,
            )
            .await;
        s.wait(&t.workspace_key, quiet["job_id"].as_i64().unwrap()).await;
        assert!(receiver.received().is_empty());
        let loud = s
            .ok(
                &t.workspace_key,
                &format!("/api/v1/jobs/{parent}/run-algorithms"),
                json!({"algorithm_ids": ["qa_scoring_v1"], "analytics_only": false}),
                202,
            )
            .await;
        let got = receiver.wait_for(1).await;
        assert_eq!(got[0].json()["call"]["job_id"], loud["job_id"]);
        assert_eq!(got[0].json()["call"]["parent_job_id"], parent);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_keep_the_delivery_id_and_honour_retry_after() {
        let (s, t, receiver, secret) = setup().await;
        receiver.script(&[(500, None), (429, Some(120))]);
        let job = ingest(&s, &t, false, &["sentiment_v1"]).await;
        let first = receiver.wait_for(1).await;
        assert_eq!(s.wait_publishing(&t.workspace_key, job).await, "publishing");
        // The 500 is retried after the backoff (30 s ± 50 % for the first retry).
        s.clock.advance(chrono::Duration::seconds(46));
        s.state.deliveries_due.notify_one();
        let second = receiver.wait_for(2).await;
        assert_eq!(second[1].header("webhook-id"), first[0].header("webhook-id"));
        // 429 with Retry-After: 120 s, not earlier.
        s.clock.advance(chrono::Duration::seconds(110));
        s.state.deliveries_due.notify_one();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 2, "retried before Retry-After");
        s.clock.advance(chrono::Duration::seconds(11));
        s.state.deliveries_due.notify_one();
        let third = receiver.wait_for(3).await;
        assert_eq!(third[2].header("webhook-id"), first[0].header("webhook-id"));
        assert!(verify(
            &secret,
            third[2].header("x-signature"),
            &third[2].body,
            now(&s),
            300
        ));
        assert_eq!(s.wait(&t.workspace_key, job).await["status"], "completed");
        let d = &s
            .get(&t.workspace_key, &format!("/api/v1/jobs/{job}/deliveries"))
            .await
            .body["deliveries"][0];
        let codes: Vec<i64> = d["attempt_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, [500, 429, 200]);

        // Replay: same delivery ID again.
        let r = s
            .ok(
                &t.workspace_key,
                &format!("/api/v1/jobs/{job}/retry"),
                json!({"mode": "redeliver"}),
                202,
            )
            .await;
        assert_eq!(r["deliveries_queued"], 1);
        let fourth = receiver.wait_for(4).await;
        assert_eq!(fourth[3].header("webhook-id"), first[0].header("webhook-id"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gone_disables_the_endpoint() {
        let (s, t, receiver, _) = setup().await;
        receiver.script(&[(410, None)]);
        let job = ingest(&s, &t, false, &["sentiment_v1"]).await;
        receiver.wait_for(1).await;
        assert_eq!(
            s.wait(&t.workspace_key, job).await["status"],
            "completed",
            "a delivery that fails does not change the analysis outcome"
        );
        let d = &s
            .get(&t.workspace_key, &format!("/api/v1/jobs/{job}/deliveries"))
            .await
            .body["deliveries"][0];
        assert_eq!(d["status"], "disabled");
        let endpoint = s
            .get(&t.workspace_key, &path("workspace", t.workspace, "webhook"))
            .await
            .body;
        assert_eq!(endpoint["disabled"], true);
        assert!(endpoint["disabled_reason"].as_str().unwrap().contains("410"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_nearest_level_wins_and_credentials_set_their_headers() {
        let s = with_allowlist().await;
        let t = s.tenant("Acme").await;
        let (partner_rx, workspace_rx) = (Receiver::start().await, Receiver::start().await);
        let put = |entity: &'static str, id: i64, what: &'static str, body: serde_json::Value| {
            let s = &s;
            async move {
                s.request(Method::PUT, Some(&s.platform), &path(entity, id, what), Some(body))
                    .await
            }
        };
        put("partner", t.partner, "webhook", json!({"url": partner_rx.url})).await;
        put("workspace", t.workspace, "webhook", json!({"url": workspace_rx.url})).await;
        put(
            "workspace",
            t.workspace,
            "webhook-credential",
            json!({"auth_type": "bearer", "token": "tok_abc_123"}),
        )
        .await;
        ingest(&s, &t, false, &["sentiment_v1"]).await;
        let got = workspace_rx.wait_for(1).await;
        assert_eq!(got[0].header("authorization"), "Bearer tok_abc_123");
        assert!(partner_rx.received().is_empty());

        // Without the workspace's endpoint, the partner's applies (to jobs created after).
        s.request(
            Method::DELETE,
            Some(&s.platform),
            &path("workspace", t.workspace, "webhook"),
            None,
        )
        .await;
        put(
            "partner",
            t.partner,
            "webhook-credential",
            json!({"auth_type": "hmac", "secret": "partner-hmac-secret-0123", "key_id": "k1"}),
        )
        .await;
        ingest(&s, &t, false, &["sentiment_v1"]).await;
        let got = partner_rx.wait_for(1).await;
        let sig = got[0].header("x-signature");
        assert!(sig.ends_with(",key=k1"), "{sig}");
        assert!(verify("partner-hmac-secret-0123", sig, &got[0].body, now(&s), 300));
        put(
            "partner",
            t.partner,
            "webhook-credential",
            json!({"auth_type": "basic", "username": "acme", "password": "s3cret"}),
        )
        .await;
        ingest(&s, &t, false, &["sentiment_v1"]).await;
        let got = partner_rx.wait_for(2).await;
        assert_eq!(got[1].header("authorization"), "Basic YWNtZTpzM2NyZXQ=");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_down_server_restarted_receiver_back_everything_arrives() {
        let s = with_allowlist().await;
        let t = s.tenant("Acme").await;
        // A port with nobody listening (yet).
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let url = format!("http://{address}/hooks");
        s.request(
            Method::PUT,
            Some(&s.platform),
            &path("workspace", t.workspace, "webhook"),
            Some(json!({"url": url})),
        )
        .await;
        let job = ingest(&s, &t, false, &["sentiment_v1", "rise_dds_v5"]).await;
        assert_eq!(s.wait_publishing(&t.workspace_key, job).await, "publishing");
        // Wait until both deliveries failed once (connection refused).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let d = s
                .get(&t.workspace_key, &format!("/api/v1/jobs/{job}/deliveries"))
                .await
                .body;
            if d["deliveries"].as_array().unwrap().iter().all(|d| d["attempts"] == 1) {
                assert!(
                    d["deliveries"][0]["last_error"]
                        .as_str()
                        .unwrap()
                        .contains("cannot reach the receiver"),
                    "{d}"
                );
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no failed attempt recorded: {d}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let s = s.restart(|c| c.webhook_allowlist = "127.0.0.1".into()).await;
        let receiver = Receiver::start_on(&address).await;
        s.clock.advance(chrono::Duration::minutes(2));
        s.state.deliveries_due.notify_one();
        let got = receiver.wait_for(2).await;
        let ids: std::collections::BTreeSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(s.wait(&t.workspace_key, job).await["status"], "completed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redirects_are_not_followed_and_no_credential_sends_no_authorization() {
        let (s, t, receiver, _) = setup().await;
        receiver.script(&[(302, None)]);
        let job = ingest(&s, &t, false, &["sentiment_v1"]).await;
        let got = receiver.wait_for(1).await;
        assert_eq!(got[0].header("authorization"), "", "no credential configured");
        assert_eq!(s.wait_publishing(&t.workspace_key, job).await, "publishing");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(receiver.received().len(), 1, "the redirect was followed");
        let d = &s
            .get(&t.workspace_key, &format!("/api/v1/jobs/{job}/deliveries"))
            .await
            .body["deliveries"][0];
        assert_eq!(d["status"], "pending");
        assert_eq!(d["attempt_log"][0]["status_code"], 302);
        assert!(d["next_attempt_at"].is_string());
    }
}
