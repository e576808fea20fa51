//! The HTTP client of the commands that talk to a running agent (`alerts`, `sourcemaps`;
//! feature `client`).

/// What a request carries.
pub(super) enum Payload {
    /// Nothing.
    None,
    /// A JSON document.
    Json(serde_json::Value),
    /// Bytes as they are (a source map).
    Bytes(Vec<u8>),
}

/// A running agent's API: its address and a bearer token.
pub(super) struct Client {
    base: String,
    token: Option<String>,
}

impl Client {
    /// `url` (else `THORBIS_OBS_URL`, else the default admin listener) with `token` (else
    /// `THORBIS_OBS_TOKEN`).
    pub(super) fn new(url: Option<String>, token: Option<String>) -> Self {
        let base =
            url.or_else(|| std::env::var("THORBIS_OBS_URL").ok()).unwrap_or_else(|| "http://127.0.0.1:9464".into());
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.or_else(|| std::env::var("THORBIS_OBS_TOKEN").ok()),
        }
    }

    /// The agent's JSON answer, or an error naming the status and the agent's message.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Payload,
    ) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.base);
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let mut req = client.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Payload::None => req,
            Payload::Json(v) => req.json(&v),
            Payload::Bytes(b) => req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b),
        };
        let shown = crate::secret::redact_url(&url);
        let resp = req.send().await.map_err(|e| format!("{shown}: {}", transport(&e)))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{shown}: the answer broke off: {e}"))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned())
        });
        if !status.is_success() {
            let message =
                value.get("error").and_then(|e| e.as_str()).map(str::to_string).unwrap_or_else(|| value.to_string());
            return Err(format!("{shown}: {status}: {message}"));
        }
        Ok(value)
    }
}

/// What went wrong on the way, without the URL (shown apart, its credentials cut out).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect (is the agent running there?)"
    } else {
        "the request failed"
    };
    let cause = std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default();
    format!("{kind}{cause}")
}
