//! `lora deploy`: create a model on an Ollama server from an exported Modelfile.
//!
//! The steps `ollama create NAME -f Modelfile` takes, over Ollama's REST API (docs/api.md):
//! hash the files the Modelfile names, upload the blobs the server lacks
//! (`HEAD`/`POST /api/blobs/sha256:…`), `POST /api/create` with the files' digests and the
//! Modelfile's settings, then `/api/show` and a short `/api/generate` as a smoke test.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ollama_rs::generation::chat::{ChatMessage, MessageRole};
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::models::ModelOptions;
use ollama_rs::models::create::CreateModelRequest;
use sha2::{Digest, Sha256};

use super::client::Client;
use super::host::Host;
use super::modelfile::{Command, Modelfile, SystemChoice, parameter_json, parse_commands};
use crate::chat::Role;
use crate::progress::{self, Bytes, Log, NoBytes, ProgressRead};

pub use super::client::ServerError;

/// The Modelfile names `lora export --format ollama` writes: the merged model (the
/// dependable route) and base + adapter (the route a server may refuse).
pub const MERGED_MODELFILE: &str = "Modelfile";
pub const ADAPTER_MODELFILE: &str = "Modelfile.adapter";
/// For a base from Ollama's store, `Modelfile` is the adapter route and this the merged model.
pub const MERGED_FALLBACK_MODELFILE: &str = "Modelfile.merged";
/// The first release whose `/api/create` takes files by digest (before, a Modelfile's text).
const MIN_VERSION: (u64, u64, u64) = (0, 5, 5);

/// What `lora deploy` is asked to do.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// A Modelfile, or a directory holding one named `Modelfile`.
    pub modelfile: PathBuf,
    /// The model's name on the server: `name`, `name:tag` or `namespace/name:tag`.
    pub name: String,
    /// Ollama's address (pass `$OLLAMA_HOST` here to honour it); `None`: Ollama's default (see
    /// [`Host::resolve`]). `host:port` without a scheme means plain HTTP, as for Ollama's own CLI.
    pub host: Option<String>,
    /// The smoke test's prompt.
    pub prompt: String,
    /// The smoke test's answer length in tokens.
    pub max_tokens: i32,
    /// How long one request may take (uploads get more time per byte).
    pub timeout: Duration,
    /// Print what would be sent, send nothing.
    pub dry_run: bool,
    /// The model's system message: the Modelfile's SYSTEM ([`SystemChoice::Inherit`]), another
    /// text, or none.
    pub system: SystemChoice,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub name: String,
    /// The server, without any credentials the address held.
    pub host: String,
    /// The Modelfile the model was created from.
    pub modelfile: PathBuf,
    /// The adapter route was refused and the merged Modelfile used instead.
    pub fell_back: bool,
    /// Digests of the blobs uploaded (the others were on the server already).
    pub uploaded: Vec<String>,
    /// The smoke test's answer (`None` for a dry run).
    pub answer: Option<String>,
    /// The same with Ollama's CLI.
    pub ollama_create: String,
    /// The smoke test's prompt.
    pub prompt: String,
    /// What `ollama create -f` needs besides the Modelfile, when `--system` overrode it.
    pub caveat: &'static str,
    /// Dry run only: the files the requests name, the `/api/create` body, and the merged
    /// Modelfile the adapter route would fall back to.
    pub blobs: Vec<Blob>,
    pub create_body: Option<String>,
    pub fallback: Option<PathBuf>,
}

/// A deployment as `lora deploy` prints it on stdout: the model, the smoke test and the
/// equivalent `ollama create` line; for a dry run, every request it would send.
impl fmt::Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.answer {
            Some(answer) => {
                let fell_back = if self.fell_back { " (fallback: merged model)" } else { "" };
                writeln!(
                    f,
                    "created {} on Ollama at {} from {}{fell_back}",
                    self.name,
                    self.host,
                    self.modelfile.display()
                )?;
                writeln!(f, "smoke test: {:?} -> {:?}", self.prompt, answer)?;
            }
            None => {
                writeln!(f, "dry run: nothing is sent to Ollama at {}", self.host)?;
                writeln!(f, "Modelfile: {}", self.modelfile.display())?;
                for b in &self.blobs {
                    let kind = if b.adapter { "adapter" } else { "model" };
                    writeln!(f, "  {kind} {} ({} bytes) {}", b.path.display(), b.bytes, b.digest)?;
                    writeln!(f, "    HEAD/POST /api/blobs/{}", b.digest)?;
                }
                writeln!(f, "POST /api/create\n{}", self.create_body.as_deref().unwrap_or_default())?;
                writeln!(f, "POST /api/show, then POST /api/generate with {:?}", self.prompt)?;
                if let Some(m) = &self.fallback {
                    writeln!(f, "if the server refuses the adapter: the merged model in {}", m.display())?;
                }
            }
        }
        writeln!(f, "the same with Ollama's CLI: {}{}", self.ollama_create, self.caveat)
    }
}

/// One file the Modelfile names, to be uploaded as a blob.
#[derive(Debug, Clone)]
pub struct Blob {
    pub path: PathBuf,
    /// Its name in the create request's `files`/`adapters` map (the file's base name).
    pub name: String,
    /// `sha256:<hex>`, the blob's address on the server.
    pub digest: String,
    pub bytes: u64,
    pub adapter: bool,
}

/// A Modelfile read and its files hashed: everything needed for the requests.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    pub modelfile: Modelfile,
    /// PARAMETER lines typed as the API takes them (checked before anything is sent).
    parameters: serde_json::Map<String, serde_json::Value>,
    /// FROM (when it is a file), then the adapter.
    pub blobs: Vec<Blob>,
    /// FROM when it names a model on the server rather than a file.
    pub from_model: Option<String>,
    /// Lines Ollama ignores (deprecated parameters), to tell the user about.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Reads the Modelfile at `path` and hashes the files it names (paths relative to
    /// its directory, like Ollama), reporting the hashing of big files to `bytes`.
    pub fn read(path: &Path, bytes: &Arc<dyn Bytes>) -> Result<Plan> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the Modelfile {}", path.display()))?;
        let commands = parse_commands(&text, path)?;
        let modelfile = Modelfile::from_commands(&commands, path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let at = |c: &Command| format!("{}:{}", path.display(), c.line);
        let adapters: Vec<&Command> = commands.iter().filter(|c| c.name == "adapter").collect();
        if adapters.len() > 1 {
            bail!("{}: a second ADAPTER; Ollama applies one adapter (merge the others first)", at(adapters[1]))
        }
        let mut blobs = Vec::new();
        let mut from_model = None;
        for c in commands.iter().filter(|c| c.name == "from" || c.name == "adapter") {
            let adapter = c.name == "adapter";
            let file = expand_path(&c.value, dir).with_context(|| at(c))?;
            if !adapter && !file.exists() && !looks_like_path(&c.value) {
                from_model = Some(c.value.clone());
                continue;
            }
            let word = c.name.to_uppercase();
            if !file.exists() {
                bail!("{}: {word} {}: no such file ({})", at(c), c.value, file.display())
            }
            if !file.is_file() {
                bail!(
                    "{}: {word} {} is a directory; lora deploy uploads GGUF files (see `lora export --format ollama`)",
                    at(c),
                    c.value
                )
            }
            blobs.push(hash_file(&file, adapter, bytes).with_context(|| at(c))?);
        }
        let mut warnings = Vec::new();
        let parameters = parameters(&commands, path, &mut warnings)?;
        Ok(Plan { path: path.to_path_buf(), modelfile, parameters, blobs, from_model, warnings })
    }

    /// The plan with its SYSTEM replaced or removed as `choice` says.
    pub fn with_system(mut self, choice: &SystemChoice) -> Plan {
        match choice {
            SystemChoice::Inherit => {}
            SystemChoice::Text(s) => self.modelfile.system = Some(s.clone()),
            SystemChoice::Omit => self.modelfile.system = None,
        }
        self
    }

    /// The `/api/create` body for model `name`.
    pub fn create_request(&self, name: &str) -> Result<CreateModelRequest> {
        let m = &self.modelfile;
        let mut req = CreateModelRequest::new(name.to_string());
        let map = |adapter: bool| {
            self.blobs.iter().filter(|b| b.adapter == adapter).map(|b| (b.name.clone(), b.digest.clone())).collect()
        };
        if let Some(from) = &self.from_model {
            req = req.from_model(from.clone());
        } else {
            req = req.files(map(false));
        }
        if self.blobs.iter().any(|b| b.adapter) {
            req = req.adapters(map(true));
        }
        if let Some(t) = &m.template {
            req = req.template(t.clone());
        }
        if let Some(s) = &m.system {
            req = req.system(s.clone());
        }
        if !self.parameters.is_empty() {
            // Passed through as JSON (ollama-rs's typed fields would narrow the integers).
            req = req.parameters(ModelOptions::default().extras(self.parameters.clone()));
        }
        if !m.messages.is_empty() {
            let messages = m.messages.iter().map(|msg| {
                // `parse_commands` refuses other roles; one set in code is sent as the user's.
                let role = Role::parse(&msg.role).map_or(MessageRole::User, message_role);
                ChatMessage::new(role, msg.content.clone())
            });
            req = req.messages(messages.collect());
        }
        if !m.license.is_empty() {
            req = req.licenses(m.license.clone());
        }
        Ok(req)
    }
}

/// ollama-rs's name for a role.
fn message_role(role: Role) -> MessageRole {
    match role {
        Role::System => MessageRole::System,
        Role::User => MessageRole::User,
        Role::Assistant => MessageRole::Assistant,
    }
}

/// PARAMETER lines as Ollama's API takes them: typed values, `stop` as a list.
fn parameters(
    commands: &[Command],
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    for c in commands.iter().filter(|c| c.name == "parameter") {
        let at = || format!("{}:{}", path.display(), c.line);
        match parameter_json(&c.key, &c.value).with_context(at)? {
            None => warnings.push(format!("warning: {}: Ollama ignores the deprecated parameter {}", at(), c.key)),
            Some(v) if c.key == "stop" => {
                let list = out.entry("stop").or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let Some(list) = list.as_array_mut() {
                    list.push(v);
                }
            }
            Some(v) => {
                out.insert(c.key.clone(), v);
            }
        }
    }
    Ok(out)
}

/// Resolves a FROM/ADAPTER path like Ollama: absolute, `~/…`, or relative to `dir`.
fn expand_path(value: &str, dir: &Path) -> Result<PathBuf> {
    if value == "~" || value.starts_with("~/") {
        let home = dirs::home_dir().context("no home directory for ~")?;
        return Ok(home.join(value.trim_start_matches('~').trim_start_matches('/')));
    }
    if value.starts_with('~') {
        bail!("{value}: ~user paths are not supported; write the path out")
    }
    // Without "./" steps, so messages show `out/model.gguf`, not `out/./model.gguf`.
    let rel: PathBuf = Path::new(value).components().filter(|c| *c != std::path::Component::CurDir).collect();
    Ok(dir.join(rel))
}

/// A FROM value that names a file, not a model (Ollama tries a model name when no file exists).
fn looks_like_path(value: &str) -> bool {
    value.starts_with(['.', '/', '~', '\\'])
        || [".gguf", ".bin", ".safetensors"].iter().any(|ext| value.to_ascii_lowercase().ends_with(ext))
}

/// sha256 of a file, its reading reported to `progress`.
fn hash_file(path: &Path, adapter: bool, progress: &Arc<dyn Bytes>) -> Result<Blob> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let bytes = file.metadata()?.len();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).context("a file without a name")?;
    let mut hasher = Sha256::new();
    let mut read = ProgressRead::new(file, &format!("hashing {name}"), bytes, progress.clone());
    std::io::copy(&mut read, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    drop(read);
    let hex = crate::io::hex(&hasher.finalize());
    Ok(Blob { path: path.to_path_buf(), name, digest: format!("sha256:{hex}"), bytes, adapter })
}

/// Checks a model name the way Ollama does (types/model/name.go): `[host/][namespace/]model[:tag]`,
/// each part starting with a letter, digit or '_' and made of those, '-' and '.'
/// (no '.' in a namespace), at most 80 characters (350 for a host).
pub fn validate_model_name(name: &str) -> Result<()> {
    let bad = || {
        anyhow::anyhow!(
            "invalid model name {name:?}: Ollama takes name or name:tag (optionally namespace/name:tag), made of \
             letters, digits, '_', '-' and '.', starting with a letter, digit or '_'; choose one with --name"
        )
    };
    let (rest, tag) = match (name.rfind(':'), name.rfind('/')) {
        (Some(c), slash) if slash.is_none_or(|s| c > s) => (&name[..c], Some(&name[c + 1..])),
        _ => (name, None),
    };
    let mut parts = rest.rsplitn(3, '/');
    let model = parts.next().unwrap_or("");
    let namespace = parts.next();
    let host = parts.next().map(|h| h.split_once("://").map_or(h, |(_, h)| h));
    let valid = |part: &str, max: usize, dot: bool, colon: bool| {
        let b = part.as_bytes();
        !b.is_empty()
            && b.len() <= max
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..].iter().all(|&c| {
                c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || (dot && c == b'.') || (colon && c == b':')
            })
    };
    let ok = valid(model, 80, true, false)
        && tag.is_none_or(|t| valid(t, 80, true, false))
        && namespace.is_none_or(|n| valid(n, 80, false, false))
        && host.is_none_or(|h| valid(h, 350, true, true));
    if ok { Ok(()) } else { Err(bad()) }
}

/// A Modelfile path, or the `Modelfile` inside a directory.
pub fn modelfile_path(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(MERGED_MODELFILE);
        if !file.is_file() {
            bail!("{} has no {MERGED_MODELFILE} (write one with `lora export --format ollama`)", path.display())
        }
        return Ok(file);
    }
    if !path.is_file() {
        bail!("no Modelfile at {}", path.display())
    }
    Ok(path.to_path_buf())
}

/// A model name from the export directory's name (`out/extract-lora/Modelfile` → `extract-lora`).
pub fn default_name(path: &Path) -> Result<String> {
    let file = modelfile_path(path)?;
    let dir = file
        .parent()
        .unwrap_or(Path::new("."))
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", file.display()))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(super::modelfile::ollama_name(&name))
}

/// The merged model's Modelfile beside an adapter Modelfile, if there is one
/// (`Modelfile.merged`, else `Modelfile`).
fn merged_sibling(adapter_modelfile: &Path) -> Option<PathBuf> {
    let dir = adapter_modelfile.parent().unwrap_or(Path::new("."));
    [MERGED_FALLBACK_MODELFILE, MERGED_MODELFILE].into_iter().map(|n| dir.join(n)).find(|candidate| {
        let same = match (candidate.canonicalize(), adapter_modelfile.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => true,
        };
        candidate.is_file() && !same
    })
}

/// `ollama create NAME -f PATH`, quoted for a POSIX shell where needed.
pub fn ollama_create_line(name: &str, modelfile: &Path) -> String {
    let path = modelfile.display().to_string();
    let safe = path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c));
    let path = if safe { path } else { format!("'{}'", path.replace('\'', r"'\''")) };
    format!("ollama create {name} -f {path}")
}

/// How [`deploy_with`] reports progress: one-line messages and the reading of big files.
pub struct DeployProgress<'a> {
    pub log: Log<'a>,
    pub bytes: Arc<dyn Bytes>,
}

/// Deploys the Modelfile: plan, upload, create, check. Reports nothing while it works; the
/// returned report displays the result (see [`DeployReport`]'s `Display`).
pub fn deploy(opts: &DeployOptions) -> Result<DeployReport> {
    deploy_with(opts, &DeployProgress { log: &progress::silent, bytes: Arc::new(NoBytes) })
}

/// [`deploy`], reporting each stage to `progress`.
pub fn deploy_with(opts: &DeployOptions, progress: &DeployProgress) -> Result<DeployReport> {
    validate_model_name(&opts.name)?;
    let host = Host::resolve(opts.host.as_deref())?;
    let path = modelfile_path(&opts.modelfile)?;
    let plan = Plan::read(&path, &progress.bytes)?.with_system(&opts.system);
    let fallback = if plan.blobs.iter().any(|b| b.adapter) { merged_sibling(&path) } else { None };
    if opts.dry_run {
        return dry_run(opts, &host, &plan, fallback, progress.log);
    }
    let client = connect(&host, opts.timeout, progress.log)?;
    let mut uploaded = upload_missing(&client, &plan, progress)?;
    let (plan, answer, fell_back) = match create_and_check(&client, &plan, opts, progress.log) {
        Ok(answer) => (plan, answer, false),
        Err(e) if is_refusal(&e) && fallback.is_some() => {
            let merged_path = fallback.unwrap_or_default();
            (progress.log)(&format!("{e:#}"));
            (progress.log)(&format!(
                "the adapter route was refused; falling back to the merged model in {}",
                merged_path.display()
            ));
            let merged = Plan::read(&merged_path, &progress.bytes)?.with_system(&opts.system);
            uploaded.extend(upload_missing(&client, &merged, progress)?);
            let answer = create_and_check(&client, &merged, opts, progress.log)?;
            (merged, answer, true)
        }
        Err(e) if is_refusal(&e) && plan.blobs.iter().any(|b| b.adapter) => {
            return Err(e.context(format!(
                "the adapter route was refused, and there is no merged {MERGED_MODELFILE} beside {} to fall back to \
                 (`lora export --format ollama` writes both)",
                path.display()
            )));
        }
        Err(e) => return Err(e),
    };
    Ok(DeployReport {
        name: opts.name.clone(),
        host: client.shown().to_string(),
        modelfile: plan.path.clone(),
        fell_back,
        uploaded,
        answer: Some(answer),
        ollama_create: ollama_create_line(&opts.name, &plan.path),
        prompt: opts.prompt.clone(),
        caveat: system_caveat(&opts.system),
        blobs: Vec::new(),
        create_body: None,
        fallback: None,
    })
}

/// `ollama create -f` reads SYSTEM from the file, which --system/--no-system overrode.
fn system_caveat(choice: &SystemChoice) -> &'static str {
    match choice {
        SystemChoice::Inherit => "",
        SystemChoice::Text(_) => " (after editing the Modelfile's SYSTEM line as --system says)",
        SystemChoice::Omit => " (after deleting the Modelfile's SYSTEM line)",
    }
}

fn is_refusal(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<ServerError>(), Some(ServerError::Refused { .. }))
}

/// The requests `deploy` would send, as a report; sends none.
fn dry_run(
    opts: &DeployOptions,
    host: &Host,
    plan: &Plan,
    fallback: Option<PathBuf>,
    log: Log,
) -> Result<DeployReport> {
    for w in &plan.warnings {
        log(w);
    }
    let mut body = serde_json::to_value(plan.create_request(&opts.name)?)?;
    // ollama-rs keeps parameters in a HashMap: sorted, the printout is the same every run.
    if let Some(p) = body.get_mut("parameters").and_then(|p| p.as_object_mut()) {
        p.sort_keys();
    }
    Ok(DeployReport {
        name: opts.name.clone(),
        host: host.shown(),
        modelfile: plan.path.clone(),
        fell_back: false,
        uploaded: Vec::new(),
        answer: None,
        ollama_create: ollama_create_line(&opts.name, &plan.path),
        prompt: opts.prompt.clone(),
        caveat: system_caveat(&opts.system),
        blobs: plan.blobs.clone(),
        create_body: Some(serde_json::to_string_pretty(&body)?),
        fallback,
    })
}

/// A client for the server at `host`, once it has answered with a version new enough.
fn connect(host: &Host, timeout: Duration, log: Log) -> Result<Client> {
    let client = Client::new(host, timeout)?;
    let version = client.version()?;
    if let Some(v) = parse_version(&version)
        && v != (0, 0, 0)
        && v < MIN_VERSION
    {
        let (a, b, c) = MIN_VERSION;
        bail!(
            "Ollama {version} at {} is too old: lora deploy needs {a}.{b}.{c} or newer (its /api/create takes files \
             by digest); upgrade Ollama, or use `ollama create` with the Modelfile",
            client.shown()
        )
    }
    log(&format!("Ollama {version} at {}", client.shown()));
    Ok(client)
}

/// Uploads the plan's files the server does not have; returns their digests.
fn upload_missing(client: &Client, plan: &Plan, progress: &DeployProgress) -> Result<Vec<String>> {
    let mut uploaded = Vec::new();
    for blob in &plan.blobs {
        if client.has_blob(&blob.digest)? {
            (progress.log)(&format!("{} is on the server already ({})", blob.name, blob.digest));
            continue;
        }
        (progress.log)(&format!("uploading {} ({:.1} MiB)", blob.name, blob.bytes as f64 / 1048576.0));
        upload(client, blob, &progress.bytes).with_context(|| format!("uploading {}", blob.path.display()))?;
        uploaded.push(blob.digest.clone());
    }
    Ok(uploaded)
}

/// Uploads one file as its blob, its reading reported to `progress`.
fn upload(client: &Client, blob: &Blob, progress: &Arc<dyn Bytes>) -> Result<(), ServerError> {
    let what = format!("the upload of {} as {}", blob.name, blob.digest);
    let file = std::fs::File::open(&blob.path).map_err(|e| {
        client.transport(&what, anyhow::Error::new(e).context(format!("cannot open {}", blob.path.display())))
    })?;
    let read = ProgressRead::new(file, &format!("uploading {}", blob.name), blob.bytes, progress.clone());
    // At least 1 MB/s on top of the usual timeout.
    let time = client.timeout() + Duration::from_secs(blob.bytes / 1_000_000);
    client.upload_blob(&blob.digest, read.take(blob.bytes), blob.bytes, time, &what)
}

/// `/api/create`, then `/api/show` and a short `/api/generate`; returns the answer.
fn create_and_check(client: &Client, plan: &Plan, opts: &DeployOptions, log: Log) -> Result<String> {
    let req = plan.create_request(&opts.name)?;
    for w in &plan.warnings {
        log(w);
    }
    log(&format!("creating {} from {}", opts.name, plan.path.display()));
    let status = client.call("POST /api/create", client.ollama().create_model(req))?;
    if status.message != "success" {
        log(&format!("create answered {:?}", status.message));
    }
    let info = client.call("POST /api/show", client.ollama().show_model_info(opts.name.clone()))?;
    if let Some(t) = &plan.modelfile.template
        && info.template != *t
    {
        log(&format!("warning: the server reports a different TEMPLATE for {} than the Modelfile's", opts.name));
    }
    // Ollama pads the names to 30 columns; one space is enough here.
    let params: Vec<String> = info
        .parameters
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    let params = params.join("; ");
    log(&format!("{} is on the server; parameters: {params}", opts.name));
    let request = GenerationRequest::new(opts.name.clone(), opts.prompt.clone())
        .options(ModelOptions::default().num_predict(opts.max_tokens));
    let answer = client.call("POST /api/generate (smoke test)", client.ollama().generate(request))?;
    let answer = answer.response.trim().to_string();
    if answer.is_empty() {
        log(&format!(
            "warning: {} answered the smoke test with nothing (check TEMPLATE and the stop parameters)",
            opts.name
        ));
    }
    Ok(answer)
}

/// "0.12.6", "v0.5.5-rc1" → (0, 12, 6), (0, 5, 5).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next().flatten().unwrap_or(0), it.next().flatten().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_checked_like_ollama() {
        for ok in ["extract", "extract-lora:v1", "me/extract:latest", "registry.example.com/me/x:1.0", "_x.y-z"] {
            validate_model_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "bad name", "x:", ":tag", "-x", "me.space/x", "a/b/c/d", "ünï", "x:a/b", &"x".repeat(81)] {
            assert!(validate_model_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("0.12.6"), Some((0, 12, 6)));
        assert_eq!(parse_version("v0.5.5-rc1"), Some((0, 5, 5)));
        assert!(parse_version("0.5.4").unwrap() < MIN_VERSION);
        assert_eq!(parse_version("dev"), None);
    }

    #[test]
    fn create_lines_are_shell_safe() {
        assert_eq!(ollama_create_line("m", Path::new("out/Modelfile")), "ollama create m -f out/Modelfile");
        assert_eq!(ollama_create_line("m", Path::new("my dir/Modelfile")), "ollama create m -f 'my dir/Modelfile'");
    }
}
