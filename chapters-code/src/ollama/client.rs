//! One client for an Ollama server: ollama-rs calls with a timeout on one runtime, and plain HTTP for the rest.
//!
//! ollama-rs makes the create, show, generate and list calls. It has none for `/api/version` or
//! the blobs, so those are plain requests with reqwest, whose blocking client streams a
//! (possibly multi-gigabyte) file as the request body.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result};
use ollama_rs::Ollama;
use ollama_rs::error::OllamaError;
use ollama_rs::models::LocalModel;
use reqwest::blocking::Body;

use super::host::Host;

/// A failure talking to the server. Only [`Refused`](ServerError::Refused) makes
/// `deploy` fall back from the adapter route to the merged model.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot reach Ollama at {host} ({cause}): is it running? Start it with `ollama serve`, or point --host or OLLAMA_HOST at it"
    )]
    Unreachable { host: String, cause: String },
    #[error(
        "Ollama at {host} did not answer {what} within {secs} s (raise --timeout for a slow server or a large model)"
    )]
    Timeout { host: String, what: String, secs: u64 },
    #[error("Ollama at {host} refused {what}{}: {message}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Refused { host: String, what: String, status: Option<u16>, message: String },
    #[error("talking to Ollama at {host} ({what}) failed: {cause}")]
    Transport { host: String, what: String, cause: String },
}

/// An Ollama server: ollama-rs for the calls it has, reqwest for the others. Every call
/// gives up after the timeout (an upload gets more, see [`upload_blob`](Client::upload_blob)).
pub struct Client {
    host: Host,
    shown: String,
    http: reqwest::blocking::Client,
    ollama: Ollama,
    rt: tokio::runtime::Runtime,
    timeout: Duration,
}

impl Client {
    /// A client for `host`; nothing is sent yet.
    pub fn new(host: &Host, timeout: Duration) -> Result<Client> {
        let shown = host.shown();
        // Per-request timeouts below; uploads need longer than small calls.
        let http = reqwest::blocking::Client::builder()
            .timeout(None)
            .connect_timeout(timeout)
            .build()
            .context("cannot build an HTTP client")?;
        let ollama =
            Ollama::try_new(host.url().as_str()).with_context(|| format!("Ollama's address {shown} is not a URL"))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Client { host: host.clone(), shown, http, ollama, rt, timeout })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The address without credentials, as messages show it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// ollama-rs's client, for the futures [`call`](Client::call) runs.
    pub fn ollama(&self) -> &Ollama {
        &self.ollama
    }

    /// Runs an ollama-rs call with the timeout, mapping its errors; `what` names the request.
    pub fn call<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, OllamaError>>,
    ) -> Result<T, ServerError> {
        let (host, what) = (self.shown.clone(), what.to_string());
        match self.rt.block_on(async { tokio::time::timeout(self.timeout, fut).await }) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(OllamaError::ReqwestError(e))) => Err(self.transport_error(e, &what)),
            // ollama-rs hands back the body of a non-2xx answer: Ollama's {"error": "..."}.
            Ok(Err(OllamaError::Other(body))) => {
                Err(ServerError::Refused { host, what, status: None, message: server_message(&body) })
            }
            Ok(Err(OllamaError::InternalError(e))) => {
                Err(ServerError::Refused { host, what, status: None, message: e.message })
            }
            Ok(Err(e)) => Err(ServerError::Transport { host, what, cause: error_chain(&e) }),
            Err(_) => Err(ServerError::Timeout { host, what, secs: self.timeout.as_secs() }),
        }
    }

    /// `GET /api/tags`: the models on the server.
    pub fn list_models(&self) -> Result<Vec<LocalModel>, ServerError> {
        self.call("GET /api/tags", self.ollama.list_local_models())
    }

    /// `GET /api/version`.
    pub fn version(&self) -> Result<String, ServerError> {
        let what = "GET /api/version";
        let url = self.host.endpoint("api/version").map_err(|e| self.transport(what, e))?;
        let resp = self.http.get(url).timeout(self.timeout).send().map_err(|e| self.transport_error(e, what))?;
        let status = resp.status();
        let body = resp.text().map_err(|e| self.transport_error(e, what))?;
        if !status.is_success() {
            return Err(self.refused(what, status, &body));
        }
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json["version"].as_str().map(String::from).ok_or_else(|| ServerError::Transport {
            host: self.shown.clone(),
            what: what.into(),
            cause: format!("not an Ollama answer: {}", excerpt(&body)),
        })
    }

    /// `HEAD /api/blobs/<digest>`: 200 if the server has it, 404 if not.
    pub fn has_blob(&self, digest: &str) -> Result<bool, ServerError> {
        let what = format!("HEAD /api/blobs/{digest}");
        let url = self.host.endpoint(&format!("api/blobs/{digest}")).map_err(|e| self.transport(&what, e))?;
        let resp = self.http.head(url).timeout(self.timeout).send().map_err(|e| self.transport_error(e, &what))?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.refused(&what, s, "")),
        }
    }

    /// `POST /api/blobs/<digest>` with `bytes` bytes of `body` streamed as the request body,
    /// allowed to take `time`. The server hashes what it received and refuses a mismatch (a
    /// file changed or cut in transit). `what` names the upload in errors.
    pub fn upload_blob(
        &self,
        digest: &str,
        body: impl Read + Send + 'static,
        bytes: u64,
        time: Duration,
        what: &str,
    ) -> Result<(), ServerError> {
        let url = self.host.endpoint(&format!("api/blobs/{digest}")).map_err(|e| self.transport(what, e))?;
        let body = Body::sized(body, bytes);
        let resp = self.http.post(url).body(body).timeout(time).send().map_err(|e| self.transport_error(e, what))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().unwrap_or_default();
            return Err(self.refused(what, status, &body));
        }
        Ok(())
    }

    /// A failure before or around a request, as [`ServerError::Transport`].
    pub fn transport(&self, what: &str, e: anyhow::Error) -> ServerError {
        ServerError::Transport { host: self.shown.clone(), what: what.into(), cause: format!("{e:#}") }
    }

    /// Maps a reqwest failure to what the reader needs to know; never shows the URL
    /// (it may carry credentials).
    fn transport_error(&self, e: reqwest::Error, what: &str) -> ServerError {
        let (host, what) = (self.shown.clone(), what.to_string());
        if e.is_timeout() {
            return ServerError::Timeout { host, what, secs: self.timeout.as_secs() };
        }
        let connect = e.is_connect();
        let cause = error_chain(&e.without_url());
        if connect { ServerError::Unreachable { host, cause } } else { ServerError::Transport { host, what, cause } }
    }

    fn refused(&self, what: &str, status: reqwest::StatusCode, body: &str) -> ServerError {
        let mut message = server_message(body);
        if status == reqwest::StatusCode::NOT_FOUND && what.contains("/api/version") {
            message.push_str(" (is this an Ollama server?)");
        }
        if message.contains("digest mismatch") {
            message.push_str(" (the server received other bytes than were hashed: the file changed during the upload, or the transfer was damaged; run lora deploy again)");
        }
        ServerError::Refused {
            host: self.shown.clone(),
            what: what.to_string(),
            status: Some(status.as_u16()),
            message,
        }
    }
}

/// Ollama's `{"error": "..."}`, or the start of whatever else the body was.
fn server_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(String::from))
        .unwrap_or_else(|| if body.trim().is_empty() { "no message".into() } else { excerpt(body) })
}

fn excerpt(s: &str) -> String {
    let t: String = s.trim().chars().take(200).collect();
    if t.len() < s.trim().len() { format!("{t}…") } else { t }
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
