//! A stand-in for Ollama's HTTP API on 127.0.0.1, for the `lora deploy` tests (no Ollama
//! can run here). It checks what the real server checks (ollama/ollama `server/routes.go`,
//! `server/create.go`, `types/model/name.go`, `api/types.go`):
//!
//! - blobs: the digest has the form `sha256:<64 hex>`, and an upload's sha256 equals it
//!   (400 "digest mismatch, expected …, got …" otherwise);
//! - create: a valid model name, `files` keyed by relative paths with digests of stored
//!   GGUF blobs, at most one adapter, a TEMPLATE that parses as a Go template;
//! - show and generate: the model exists; at load, parameters have the types Ollama's
//!   options take (a `stop` list of strings, numbers for numbers). Generate renders the
//!   model's TEMPLATE over `.Messages` the way Ollama does and records the prompt.
//!
//! Errors are Ollama's `{"error": "…"}` bodies with its status codes. A [`Config`] makes
//! it fail on purpose: refuse adapters (at create, or at load as Ollama's own engine did),
//! answer a route with an error, answer slowly, drop the connection, corrupt uploads,
//! report an old version. Each connection carries one request (`Connection: close`).

#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where an adapter is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterRefusal {
    /// `/api/create` answers 400.
    AtCreate,
    /// The model is created, but loading it for `/api/generate` fails with a 500, as with
    /// Ollama 0.12's own engine ("loras are not yet implemented").
    AtLoad,
}

/// What a route does instead of its usual answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status with Ollama's `{"error": message}` body.
    Error(u16, String),
    /// This status with a plain-text body (gin's "404 page not found", a proxy's page).
    Plain(u16, String),
    /// Wait, then answer as usual.
    Delay(Duration),
    /// Read the request, then close the connection without a word.
    Drop,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// What `GET /api/version` reports.
    pub version: String,
    /// `("POST /api/create", fault)`: the first entry whose route is a prefix of
    /// "METHOD /path" applies.
    pub faults: Vec<(String, Fault)>,
    pub refuse_adapters: Option<AdapterRefusal>,
    /// Flip one bit of every uploaded blob before hashing it (a transfer gone wrong).
    pub corrupt_uploads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { version: "0.12.6".into(), faults: Vec::new(), refuse_adapters: None, corrupt_uploads: false }
    }
}

impl Config {
    pub fn fault(mut self, route: &str, fault: Fault) -> Self {
        self.faults.push((route.into(), fault));
        self
    }
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The body, when it was JSON.
    pub json: Option<Value>,
    pub body_len: u64,
}

/// A model made by `/api/create`.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub files: BTreeMap<String, String>,
    pub adapters: BTreeMap<String, String>,
    pub template: Option<String>,
    pub system: Option<String>,
    pub parameters: serde_json::Map<String, Value>,
    pub messages: Vec<Value>,
}

struct Blob {
    /// The first bytes, to recognise a GGUF file.
    head: Vec<u8>,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    blobs: HashMap<String, Blob>,
    /// By fully qualified lower-case name (`registry.ollama.ai/library/x:latest`).
    models: BTreeMap<String, Model>,
    /// Prompts `/api/generate` rendered, in order.
    prompts: Vec<String>,
}

pub struct StandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl StandIn {
    pub fn start(config: Config) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, config) = (state.clone(), stop.clone(), Arc::new(config));
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, config) = (s.clone(), config.clone());
                // A thread per connection: a delayed answer does not hold up the others.
                std::thread::spawn(move || {
                    let _ = serve(conn, &config, &s);
                });
            }
        });
        StandIn { url: format!("http://{addr}"), addr, state, stop, accept: Some(accept) }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests whose "METHOD /path" starts with `route`.
    pub fn requests_to(&self, route: &str) -> Vec<Request> {
        self.requests().into_iter().filter(|r| format!("{} {}", r.method, r.path).starts_with(route)).collect()
    }

    /// Digests of the stored blobs, sorted.
    pub fn blobs(&self) -> Vec<String> {
        let mut b: Vec<String> = self.state.lock().unwrap().blobs.keys().cloned().collect();
        b.sort();
        b
    }

    pub fn model(&self, name: &str) -> Option<Model> {
        let key = parse_name(name)?;
        self.state.lock().unwrap().models.get(&key).cloned()
    }

    pub fn prompts(&self) -> Vec<String> {
        self.state.lock().unwrap().prompts.clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// An HTTP answer.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, content_type: "application/json; charset=utf-8", body: body.to_string() }
}

fn error(status: u16, message: impl Into<String>) -> Reply {
    reply(status, json!({ "error": message.into() }))
}

fn plain(status: u16, text: &str) -> Reply {
    Reply { status, content_type: "text/plain", body: text.into() }
}

/// What came with the request: blobs are hashed while they stream in, JSON is kept.
enum Body {
    Bytes(Vec<u8>),
    Blob { digest: String, head: Vec<u8> },
}

fn serve(stream: TcpStream, config: &Config, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else { return Ok(()) };
    let (method, path) = (method.to_string(), target.split('?').next().unwrap_or("").to_string());
    let (mut len, mut chunked) = (0u64, false);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body_reader = (&mut reader).take(len);
    let body = if method == "POST" && path.starts_with("/api/blobs/") {
        let mut hasher = Sha256::new();
        let (mut head, mut buf, mut first) = (Vec::new(), vec![0u8; 1 << 16], true);
        loop {
            let n = body_reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if first && config.corrupt_uploads {
                buf[0] ^= 1;
            }
            first = false;
            if head.len() < 8 {
                head.extend_from_slice(&buf[..n.min(8 - head.len())]);
            }
            hasher.update(&buf[..n]);
        }
        Body::Blob { digest: format!("sha256:{}", hex(&hasher.finalize())), head }
    } else {
        let mut b = Vec::new();
        body_reader.read_to_end(&mut b)?;
        Body::Bytes(b)
    };
    let json = match &body {
        Body::Bytes(b) => serde_json::from_slice(b).ok(),
        Body::Blob { .. } => None,
    };
    state.lock().unwrap().requests.push(Request { method: method.clone(), path: path.clone(), json, body_len: len });

    let route = format!("{method} {path}");
    let fault = config.faults.iter().find(|(r, _)| route.starts_with(r.as_str())).map(|(_, f)| f.clone());
    let answer = match fault {
        // Go's net/http takes chunked bodies too; every client here sends a length.
        _ if chunked => error(411, "the stand-in reads Content-Length bodies only"),
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Error(status, message)) => error(status, message),
        Some(Fault::Plain(status, text)) => plain(status, &text),
        Some(Fault::Delay(d)) => {
            std::thread::sleep(d);
            handle(&method, &path, &body, config, state)
        }
        None => handle(&method, &path, &body, config, state),
    };
    let mut out = stream;
    let reason = match answer.status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let body = if method == "HEAD" { "" } else { answer.body.as_str() };
    write!(
        out,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        answer.status,
        answer.content_type,
        body.len()
    )?;
    out.flush()
}

fn handle(method: &str, path: &str, body: &Body, config: &Config, state: &Mutex<State>) -> Reply {
    let json_body = || -> Result<Value, Reply> {
        match body {
            Body::Bytes(b) if b.is_empty() => Err(error(400, "missing request body")),
            Body::Bytes(b) => serde_json::from_slice(b).map_err(|e| error(400, e.to_string())),
            Body::Blob { .. } => Err(error(400, "unexpected body")),
        }
    };
    let with_json = |f: &dyn Fn(Value) -> Reply| match json_body() {
        Ok(v) => f(v),
        Err(r) => r,
    };
    match (method, path) {
        ("GET" | "HEAD", "/") => plain(200, "Ollama is running"),
        ("GET" | "HEAD", "/api/version") => reply(200, json!({ "version": config.version })),
        ("HEAD", p) if p.starts_with("/api/blobs/") => {
            let digest = &p["/api/blobs/".len()..];
            if !valid_digest(digest) {
                return error(400, "invalid digest format");
            }
            if state.lock().unwrap().blobs.contains_key(&normal_digest(digest)) {
                reply(200, json!({}))
            } else {
                error(404, format!("blob {digest:?} not found"))
            }
        }
        ("POST", p) if p.starts_with("/api/blobs/") => {
            let digest = &p["/api/blobs/".len()..];
            if !valid_digest(digest) {
                return error(400, "invalid digest format");
            }
            let Body::Blob { digest: got, head } = body else { return error(500, "no body") };
            let mut s = state.lock().unwrap();
            if s.blobs.contains_key(&normal_digest(digest)) {
                return reply(200, json!({}));
            }
            if got != digest {
                return error(400, format!("digest mismatch, expected {digest:?}, got {got:?}"));
            }
            s.blobs.insert(got.clone(), Blob { head: head.clone() });
            Reply { status: 201, content_type: "text/plain", body: String::new() }
        }
        ("POST", "/api/create") => with_json(&|v| create(&v, config, state)),
        ("POST", "/api/show") => with_json(&|v| show(&v, state)),
        ("POST", "/api/generate") => with_json(&|v| generate(&v, config, state)),
        _ => plain(404, "404 page not found"),
    }
}

/// `/api/create` in the order create.go checks things.
fn create(r: &Value, config: &Config, state: &Mutex<State>) -> Reply {
    let files = match string_map(r, "files") {
        Ok(f) => f,
        Err(e) => return error(400, e),
    };
    let adapters = match string_map(r, "adapters") {
        Ok(a) => a,
        Err(e) => return error(400, e),
    };
    for (name, digest) in files.iter().flatten() {
        if !valid_fs_path(name) {
            return error(400, "file path must be relative");
        }
        if digest.is_empty() {
            return error(400, "invalid digest format");
        }
    }
    if adapters.iter().flatten().any(|(_, d)| d.is_empty()) {
        return error(400, "invalid digest format");
    }
    let name = [&r["model"], &r["name"]].iter().filter_map(|v| v.as_str()).find(|s| !s.is_empty()).unwrap_or("");
    let Some(key) = parse_name(name) else { return error(400, "invalid model name") };
    let mut model = Model::default();
    let s = state.lock().unwrap();
    match (r["from"].as_str().filter(|f| !f.is_empty()), &files) {
        (Some(from), _) => match parse_name(from).and_then(|k| s.models.get(&k)) {
            Some(base) => model = base.clone(),
            None => return error(500, format!("pull model manifest: model {from:?} not found")),
        },
        (None, Some(files)) => {
            if files.is_empty() {
                return error(400, "no files provided to convert");
            }
            if let Err((status, message)) = check_gguf_blobs(files, &s) {
                return error(status, message);
            }
            model.files = files.clone();
        }
        (None, None) => return error(400, "neither 'from' or 'files' was specified"),
    }
    if let Some(adapters) = adapters {
        if adapters.len() > 1 {
            return error(400, "only one adapter is currently supported");
        }
        // create.go answers 400 for every adapter failure.
        if let Err((_, message)) = check_gguf_blobs(&adapters, &s) {
            return error(400, message);
        }
        if !adapters.is_empty() && config.refuse_adapters == Some(AdapterRefusal::AtCreate) {
            return error(400, "this server does not support LoRA adapters for this model");
        }
        model.adapters = adapters;
    }
    drop(s);
    if let Some(t) = r["template"].as_str().filter(|t| !t.is_empty()) {
        if let Err(e) = parse_template(t) {
            return error(400, format!("template error: {e}"));
        }
        model.template = Some(t.to_string());
    }
    model.system = r["system"].as_str().filter(|s| !s.is_empty()).map(String::from).or(model.system);
    if let Some(p) = r["parameters"].as_object() {
        model.parameters.extend(p.clone());
    }
    if let Some(m) = r["messages"].as_array() {
        model.messages = m.clone();
    }
    state.lock().unwrap().models.insert(key, model);
    let statuses = ["parsing GGUF", "using existing layer", "writing manifest", "success"];
    if r["stream"] == json!(false) {
        reply(200, json!({ "status": "success" }))
    } else {
        let lines: String = statuses.iter().map(|s| format!("{}\n", json!({ "status": s }))).collect();
        Reply { status: 200, content_type: "application/x-ndjson", body: lines }
    }
}

/// Each digest names a stored blob that starts with GGUF's magic.
fn check_gguf_blobs(files: &BTreeMap<String, String>, s: &State) -> Result<(), (u16, String)> {
    for digest in files.values() {
        if !valid_digest(digest) {
            return Err((500, "invalid digest format".into()));
        }
        let Some(blob) = s.blobs.get(&normal_digest(digest)) else {
            let file = digest.replace(':', "-");
            return Err((500, format!("open /root/.ollama/models/blobs/{file}: no such file or directory")));
        };
        if !blob.head.starts_with(b"GGUF") {
            return Err((400, "supplied file was not in GGUF format".into()));
        }
    }
    Ok(())
}

fn show(r: &Value, state: &Mutex<State>) -> Reply {
    let name = [&r["model"], &r["name"]].iter().filter_map(|v| v.as_str()).find(|s| !s.is_empty()).unwrap_or("");
    if name.is_empty() {
        return error(400, "model is required");
    }
    let Some(key) = parse_name(name) else { return error(400, "invalid model name") };
    let s = state.lock().unwrap();
    let Some(m) = s.models.get(&key) else { return error(404, format!("model '{name}' not found")) };
    // Ollama lists parameters as `name  value`, a list one line per element.
    let mut params = Vec::new();
    for (k, v) in &m.parameters {
        match v {
            Value::Array(items) => params.extend(items.iter().map(|i| format!("{k:<30} {i}"))),
            v => params.push(format!("{k:<30} {v}")),
        }
    }
    reply(
        200,
        json!({
            "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {}\n", m.files.keys().next().cloned().unwrap_or_default()),
            "parameters": params.join("\n"),
            "template": m.template.clone().unwrap_or_else(|| "{{ .Prompt }}".into()),
            "system": m.system.clone().unwrap_or_default(),
            "details": { "format": "gguf", "family": "llama", "families": ["llama"] },
            "model_info": { "general.architecture": "llama" },
            "capabilities": ["completion"],
        }),
    )
}

fn generate(r: &Value, config: &Config, state: &Mutex<State>) -> Reply {
    let name = r["model"].as_str().unwrap_or("");
    let Some(m) = parse_name(name).and_then(|k| state.lock().unwrap().models.get(&k).cloned()) else {
        return error(404, format!("model '{name}' not found"));
    };
    // Loading the model: the stored parameters must be what api.Options.FromMap takes.
    let mut options = m.parameters.clone();
    if let Some(o) = r["options"].as_object() {
        options.extend(o.clone());
    }
    if let Err(e) = check_options(&options) {
        return error(500, e);
    }
    if !m.adapters.is_empty() && config.refuse_adapters == Some(AdapterRefusal::AtLoad) {
        return error(500, "llama runner process has terminated: loras are not yet implemented");
    }
    // The conversation Ollama templates for a prompt: SYSTEM, the MESSAGEs, the prompt.
    let mut messages = Vec::new();
    if let Some(s) = r["system"].as_str().filter(|s| !s.is_empty()).map(String::from).or(m.system.clone()) {
        messages.push(("system".to_string(), s));
    }
    for msg in &m.messages {
        messages.push((msg["role"].as_str().unwrap_or("").into(), msg["content"].as_str().unwrap_or("").into()));
    }
    messages.push(("user".into(), r["prompt"].as_str().unwrap_or("").into()));
    let template = m.template.clone().unwrap_or_else(|| "{{ .Prompt }}".into());
    let prompt = match render_template(&template, &collate(messages)) {
        Ok(p) => p,
        Err(e) => return error(500, format!("template: {e}")),
    };
    state.lock().unwrap().prompts.push(prompt);
    let answer = "Hello from the stand-in!";
    let done = json!({ "model": name, "created_at": "2026-11-25T00:00:00Z", "response": answer, "done": true,
                       "done_reason": "stop", "total_duration": 1000, "eval_count": 5 });
    if r["stream"] == json!(false) {
        reply(200, done)
    } else {
        let mut last = done;
        last["response"] = json!("");
        let first = json!({ "model": name, "created_at": "2026-11-25T00:00:00Z", "response": answer, "done": false });
        Reply { status: 200, content_type: "application/x-ndjson", body: format!("{first}\n{last}\n") }
    }
}

/// Ollama joins consecutive messages of one role (template.collate).
fn collate(messages: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (role, content) in messages {
        match out.last_mut() {
            Some((r, c)) if *r == role => *c = format!("{c}\n\n{content}"),
            _ => out.push((role, content)),
        }
    }
    out
}

/// The types api.Options.FromMap accepts, with its messages.
fn check_options(options: &serde_json::Map<String, Value>) -> Result<(), String> {
    const INTS: &[&str] = &[
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "draft_num_predict",
    ];
    const FLOATS: &[&str] =
        &["top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty"];
    for (k, v) in options {
        if v.is_null() {
            continue;
        }
        if INTS.contains(&k.as_str()) && !v.is_number() {
            return Err(format!("option {k:?} must be of type integer"));
        }
        if FLOATS.contains(&k.as_str()) && !v.is_number() {
            return Err(format!("option {k:?} must be of type float32"));
        }
        if k == "use_mmap" && !v.is_boolean() {
            return Err(format!("option {k:?} must be of type boolean"));
        }
        if k == "stop" {
            let Some(items) = v.as_array() else { return Err(format!("option {k:?} must be of type array")) };
            if !items.iter().all(Value::is_string) {
                return Err(format!("option {k:?} must be of an array of strings"));
            }
        }
    }
    Ok(())
}

fn current_date(_: &[gtmpl::Value]) -> Result<gtmpl::Value, gtmpl::FuncError> {
    Ok(gtmpl::Value::from(chrono::Local::now().format("%Y-%m-%d").to_string()))
}

fn parse_template(t: &str) -> Result<gtmpl::Template, String> {
    let mut tmpl = gtmpl::Template::default();
    tmpl.add_func("currentDate", current_date);
    tmpl.parse(t).map_err(|e| e.to_string())?;
    Ok(tmpl)
}

/// Renders a TEMPLATE with the variables Ollama gives a `.Messages` template.
pub fn render_template(template: &str, messages: &[(String, String)]) -> Result<String, String> {
    let tmpl = parse_template(template)?;
    let obj = |pairs: Vec<(&str, gtmpl::Value)>| {
        gtmpl::Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<HashMap<_, _>>())
    };
    let msgs = messages
        .iter()
        .map(|(role, content)| obj(vec![("Role", role.as_str().into()), ("Content", content.as_str().into())]))
        .collect();
    let system: Vec<&str> = messages.iter().filter(|(r, _)| r == "system").map(|(_, c)| c.as_str()).collect();
    let prompt = messages.iter().rev().find(|(r, _)| r == "user").map(|(_, c)| c.as_str()).unwrap_or("");
    let ctx = obj(vec![
        ("Messages", gtmpl::Value::Array(msgs)),
        ("System", system.join("\n\n").into()),
        ("Prompt", prompt.into()),
        ("Response", "".into()),
    ]);
    tmpl.render(&gtmpl::Context::from(ctx)).map_err(|e| e.to_string())
}

/// `files`/`adapters`: absent, or a map of strings (Go's decoder refuses anything else).
fn string_map(r: &Value, field: &str) -> Result<Option<BTreeMap<String, String>>, String> {
    match &r[field] {
        Value::Null => Ok(None),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => {
                    Err(format!("json: cannot unmarshal {v} into Go struct field CreateRequest.{field} of type string"))
                }
            })
            .collect::<Result<_, _>>()
            .map(Some),
        v => Err(format!(
            "json: cannot unmarshal {v} into Go struct field CreateRequest.{field} of type map[string]string"
        )),
    }
}

/// Go's io/fs.ValidPath: relative, slash-separated, no empty, "." or ".." element.
fn valid_fs_path(p: &str) -> bool {
    p == "." || (!p.is_empty() && p.split('/').all(|e| !e.is_empty() && e != "." && e != ".."))
}

/// manifest.BlobsPath: `sha256:` or `sha256-` and 64 hex digits.
fn valid_digest(d: &str) -> bool {
    let hex = d.strip_prefix("sha256:").or_else(|| d.strip_prefix("sha256-"));
    hex.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn normal_digest(d: &str) -> String {
    d.replacen("sha256-", "sha256:", 1).to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// types/model/name.go ParseName + IsValid: the fully qualified lower-case name, or
/// `None` for an invalid one.
pub fn parse_name(s: &str) -> Option<String> {
    const MISSING: &str = "!MISSING!";
    fn cut(s: &str, sep: char) -> Option<(&str, &str)> {
        s.rfind(sep).map(|i| {
            let (b, a) = (&s[..i], &s[i + 1..]);
            (if b.is_empty() { MISSING } else { b }, if a.is_empty() { MISSING } else { a })
        })
    }
    let (mut rest, mut tag) = (s, "");
    let (colon, slash) = (s.rfind(':').map_or(-1, |i| i as i64), s.rfind('/').map_or(-1, |i| i as i64));
    if colon > slash {
        (rest, tag) = cut(s, ':').unwrap();
    }
    let (mut host, mut namespace) = ("", "");
    let model = match cut(rest, '/') {
        None => rest,
        Some((before, model)) => {
            match cut(before, '/') {
                None => namespace = before,
                Some((h, ns)) => {
                    namespace = ns;
                    host = h.split_once("://").map_or(h, |(_, h)| h);
                }
            }
            model
        }
    };
    let or = |a: &'static str, b: &str| -> String { if b.is_empty() { a.to_string() } else { b.to_string() } };
    let (host, namespace, tag) = (or("registry.ollama.ai", host), or("library", namespace), or("latest", tag));
    let valid = |kind: u8, p: &str| {
        let b = p.as_bytes();
        let max = if kind == 0 { 350 } else { 80 };
        let alnum = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        !b.is_empty()
            && b.len() <= max
            && alnum(b[0])
            && p.char_indices().skip(1).all(|(i, _)| match b[i] {
                b'_' | b'-' => true,
                b'.' => kind != 1,
                b':' => kind == 0,
                c => alnum(c),
            })
    };
    (valid(0, &host) && valid(1, &namespace) && valid(2, model) && valid(3, &tag))
        .then(|| format!("{host}/{namespace}/{model}:{tag}").to_ascii_lowercase())
}

/// A port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
