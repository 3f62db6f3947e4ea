//! The CLI's API client: the server and token every client command takes,
//! JSON requests whose error answers become the server's `detail`, and a
//! progress stream read as Server-Sent Events.

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the service is and who is calling.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The service's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "GENSAIL_SERVER")]
    pub server: String,
    /// An API key (workspace, organization, partner or platform).
    #[arg(long, env = "GENSAIL_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// A client of one server.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for these arguments.
    pub fn new(args: &ServerArgs) -> Self {
        Self {
            base: format!("{}/api/v1", args.server.trim_end_matches('/')),
            token: args.token.trim().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn json(&self, request: reqwest::RequestBuilder, path: &str) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("{path} answered {status} without JSON"))?;
        if !status.is_success() {
            let detail = body["detail"]
                .as_str()
                .map_or_else(|| body["detail"].to_string(), str::to_owned);
            bail!("{status}: {detail}");
        }
        Ok(body)
    }

    /// `GET path` as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json(self.request(reqwest::Method::GET, path), path).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request(reqwest::Method::POST, path).json(body), path)
            .await
    }

    /// `GET path` as text (exports).
    pub async fn text(&self, path: &str) -> anyhow::Result<String> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|b| b["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("{status}: {detail}");
        }
        Ok(text)
    }

    /// Follows an event stream (`progress` events, then `done`), calling
    /// `on_event` with each event's name and data; returns the `done` data.
    pub async fn follow(&self, path: &str, mut on_event: impl FnMut(&str, &Value)) -> anyhow::Result<Value> {
        let mut response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        if !response.status().is_success() {
            bail!("{path} answered {}", response.status());
        }
        let mut buffer = String::new();
        while let Some(chunk) = response.chunk().await? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let name = block.lines().find_map(|l| l.strip_prefix("event: "));
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                let (Some(name), Some(data)) = (name, data) else {
                    continue;
                };
                let data: Value = serde_json::from_str(data).unwrap_or(Value::String(data.to_owned()));
                on_event(name, &data);
                match name {
                    "done" => return Ok(data),
                    "error" => bail!("{}", data.as_str().unwrap_or("the progress stream failed")),
                    _ => {}
                }
            }
        }
        bail!("the progress stream ended before the work did; follow it again with `show`")
    }
}
