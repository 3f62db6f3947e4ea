//! Webhook configuration: endpoints and credentials per partner,
//! organization or workspace; write-only secrets; the outbound address guard.

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
    let put = s.request(Method::PUT, Some(&t.workspace_key), &p, Some(json!({"url": "http://127.0.0.1:9/hooks/gensail"}))).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let secret = put.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 30);
    assert_eq!(put.body["signing_secret_hint"], format!("...{}", &secret[secret.len() - 4..]));

    let got = s.get(&t.workspace_key, &p).await;
    assert_eq!(got.body["url"], "http://127.0.0.1:9/hooks/gensail");
    assert!(got.body.get("signing_secret").is_none());
    assert_eq!(got.body["disabled"], false);
    // Changing the URL keeps the secret (receivers keep verifying) and does not show it again.
    let again = s.request(Method::PUT, Some(&t.workspace_key), &p, Some(json!({"url": "http://127.0.0.1:9/v2"}))).await;
    assert!(again.body.get("signing_secret").is_none());
    assert_eq!(again.body["signing_secret_hint"], put.body["signing_secret_hint"]);
    // The secret is not stored in clear.
    let db = std::fs::read(s.data.path().join("gensail.db")).unwrap();
    let wal = std::fs::read(s.data.path().join("gensail.db-wal")).unwrap_or_default();
    assert!(!db.windows(secret.len()).chain(wal.windows(secret.len())).any(|w| w == secret.as_bytes()));

    assert_eq!(s.request(Method::DELETE, Some(&t.workspace_key), &p, None).await.status, 204);
    assert_eq!(s.get(&t.workspace_key, &p).await.status, 404);
    assert_eq!(s.request(Method::PUT, Some(&t.workspace_key), &p, Some(json!({"url": 5}))).await.status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_without_the_allowlist() {
    let s = TestServer::start().await;
    let t = s.tenant("Acme").await;
    let p = path("workspace", t.workspace, "webhook");
    for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/hook", "http://localhost/hook"] {
        let r = s.request(Method::PUT, Some(&s.platform), &p, Some(json!({"url": url}))).await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(r.detail().contains("GENSAIL_WEBHOOK_ALLOWLIST"), "{}", r.detail());
    }
    let r = s.request(Method::PUT, Some(&s.platform), &p, Some(json!({"url": "ftp://example.com/x"}))).await;
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
    assert_eq!((r.body["auth_type"].as_str(), r.body["secret_hint"].as_str()), (Some("bearer"), Some("...1234")));
    let r = put(json!({"auth_type": "hmac", "secret": "hmac-secret-0123456789-x7f9", "key_id": "key-2026"})).await;
    assert_eq!((r.body["key_id"].as_str(), r.body["secret_hint"].as_str()), (Some("key-2026"), Some("...x7f9")));
    let r = put(json!({"auth_type": "basic", "username": "acme", "password": "pa55word-zz99"})).await;
    assert_eq!((r.body["username"].as_str(), r.body["secret_hint"].as_str()), (Some("acme"), Some("...zz99")));
    let got = s.get(&s.platform, &p).await.body;
    assert!(!got.to_string().contains("pa55word"), "{got}");
    let r = put(json!({"auth_type": "none"})).await;
    assert_eq!(r.body["secret_hint"], serde_json::Value::Null);

    for (body, words) in [
        (json!({"auth_type": "bearer"}), "token is required"),
        (json!({"auth_type": "hmac", "secret": "0123456789abcdef"}), "key_id is required"),
        (json!({"auth_type": "hmac", "secret": "short", "key_id": "k"}), "at least 16"),
        (json!({"auth_type": "basic", "username": "a:b", "password": "x"}), "must not contain ':'"),
        (json!({"auth_type": "none", "token": "x"}), "token not used by auth_type none"),
        (json!({"auth_type": "oauth"}), "auth_type must be"),
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
        ("partner A on its organization", &a.partner_key, "organization", a.organization, 200),
        ("partner A on its workspace", &a.partner_key, "workspace", a.workspace, 200),
        ("organization A on its partner", &a.organization_key, "partner", a.partner, 403),
        ("organization A on itself", &a.organization_key, "organization", a.organization, 200),
        ("workspace A on its organization", &a.workspace_key, "organization", a.organization, 403),
        ("partner A on B's workspace", &a.partner_key, "workspace", b.workspace, 403),
        ("workspace B on A's workspace", &b.workspace_key, "workspace", a.workspace, 403),
        ("unknown workspace", &s.platform, "workspace", 9999, 404),
    ];
    for (name, key, entity, id, status) in cases {
        let r = s.request(Method::PUT, Some(key), &path(entity, id, "webhook"), Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), status, "{name}: {}", r.body);
    }
    let r = s.request(Method::PUT, Some(&s.platform), "/api/v1/config/team/1/webhook", Some(body)).await;
    assert_eq!(r.status, 404);
    assert!(r.detail().contains("partner, organization or workspace"));
}
