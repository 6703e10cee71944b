//! The models Ollama has already pulled (`--model ollama:NAME[:TAG]`), read where Ollama
//! keeps them: `manifests/<host>/<namespace>/<name>/<tag>` (a docker v2 manifest listing
//! the layers) and `blobs/sha256-<hex>` (the layers: the GGUF weights, the Go chat
//! template, the parameters, the system prompt). The GGUF is read in place, never copied.
//!
//! A blob's sha256 is checked on first use; a stamp in the lorakit cache (keyed by path,
//! size and modification time) spares the next runs hashing gigabytes again.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::progress::Log;
use crate::settings::Settings;

/// The `--model` prefix that names a model in Ollama's store.
pub const PREFIX: &str = "ollama:";
const DEFAULT_HOST: &str = "registry.ollama.ai";
const DEFAULT_NAMESPACE: &str = "library";
const DEFAULT_TAG: &str = "latest";

const MODEL_LAYER: &str = "application/vnd.ollama.image.model";
const TEMPLATE_LAYER: &str = "application/vnd.ollama.image.template";
const PARAMS_LAYER: &str = "application/vnd.ollama.image.params";
const SYSTEM_LAYER: &str = "application/vnd.ollama.image.system";
const ADAPTER_LAYER: &str = "application/vnd.ollama.image.adapter";

/// An Ollama model name with Ollama's defaults filled in: `llama3.2` is
/// `registry.ollama.ai/library/llama3.2:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

impl ModelName {
    /// `name`, `name:tag`, `namespace/name:tag` or `host/namespace/name:tag` (without `ollama:`).
    pub fn parse(text: &str) -> Result<ModelName> {
        // A tag is what follows the last ':' after the last '/' (a host may carry a port).
        let (path, tag) = match (text.rfind(':'), text.rfind('/')) {
            (Some(c), slash) if slash.is_none_or(|s| c > s) => (&text[..c], &text[c + 1..]),
            _ => (text, DEFAULT_TAG),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts[..] {
            [m] => (DEFAULT_HOST, DEFAULT_NAMESPACE, m),
            [n, m] => (DEFAULT_HOST, n, m),
            [h, n, m] => (h, n, m),
            _ => bail!(
                "{PREFIX}{text}: an Ollama model name is NAME[:TAG], NAMESPACE/NAME[:TAG] or HOST/NAMESPACE/NAME[:TAG]"
            ),
        };
        let name = ModelName { host: host.into(), namespace: namespace.into(), model: model.into(), tag: tag.into() };
        super::deploy::validate_model_name(&name.to_string()).map_err(|_| {
            anyhow::anyhow!("{PREFIX}{text} is not a valid Ollama model name (as in `ollama pull NAME:TAG`)")
        })?;
        Ok(name)
    }

    /// The manifest's path relative to the store root.
    pub fn manifest_path(&self) -> PathBuf {
        [&self.host, &self.namespace, &self.model, &self.tag].iter().collect()
    }

    /// The name as `ollama list` shows it (defaults left out), for FROM lines and messages.
    pub fn short(&self) -> String {
        match (self.host.as_str(), self.namespace.as_str()) {
            (DEFAULT_HOST, DEFAULT_NAMESPACE) => format!("{}:{}", self.model, self.tag),
            (DEFAULT_HOST, ns) => format!("{ns}/{}:{}", self.model, self.tag),
            (host, ns) => format!("{host}/{ns}/{}:{}", self.model, self.tag),
        }
    }
}

/// The full name, `host/namespace/name:tag`.
impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}:{}", self.host, self.namespace, self.model, self.tag)
    }
}

/// A model found in the store: where its GGUF is, and what Ollama serves it with.
#[derive(Debug, Clone)]
pub struct StoreModel {
    pub name: ModelName,
    pub manifest: PathBuf,
    /// The weights' blob, checked against its digest.
    pub gguf: PathBuf,
    /// The Go chat template Ollama renders prompts with.
    pub template: Option<String>,
    /// The model's default system message.
    pub system: Option<String>,
    /// The params layer (`{"stop": [...], "temperature": ...}`); empty without one.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Adapters the manifest already applies (training sees the base without them).
    pub adapters: usize,
}

impl StoreModel {
    /// The `stop` strings of the params layer.
    pub fn stops(&self) -> Vec<String> {
        let stops = self.parameters.get("stop").and_then(|s| s.as_array());
        stops.into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
    }
}

#[derive(Deserialize)]
struct Manifest {
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

/// Where the store may be: `$OLLAMA_MODELS` alone when set (as for Ollama), else the
/// user's `~/.ollama/models`, then the Linux service's `/usr/share/ollama/.ollama/models`.
pub fn store_roots(settings: &Settings) -> Vec<PathBuf> {
    match &settings.ollama_models {
        Some(dir) => vec![dir.clone()],
        None => dirs::home_dir()
            .map(|h| h.join(".ollama/models"))
            .into_iter()
            .chain([PathBuf::from("/usr/share/ollama/.ollama/models")])
            .collect(),
    }
}

/// Finds `ollama:NAME[:TAG]` (given without the prefix) in the store, checks its blobs, and
/// reads its template, parameters and system prompt.
pub fn resolve(text: &str, settings: &Settings, log: Log) -> Result<StoreModel> {
    let name = ModelName::parse(text)?;
    let roots = store_roots(settings);
    let present: Vec<&PathBuf> = roots.iter().filter(|r| r.join("manifests").is_dir()).collect();
    if present.is_empty() {
        let looked: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        let looked = match settings.ollama_models {
            Some(_) => format!("looked in {}, which OLLAMA_MODELS names", looked.join(", ")),
            None => format!("looked in {}; set OLLAMA_MODELS if Ollama keeps its models elsewhere", looked.join(", ")),
        };
        bail!(
            "no Ollama model store found for {PREFIX}{text} ({looked}): install Ollama and run `ollama pull {}`",
            name.short()
        )
    }
    let found = present.iter().map(|r| (r, r.join("manifests").join(name.manifest_path()))).find(|(_, m)| m.is_file());
    let Some((root, manifest)) = found else {
        let mut names: Vec<ModelName> = present.iter().flat_map(|r| list_models(r)).collect();
        names.sort_by_key(|n| n.to_string());
        names.dedup();
        let stores: Vec<String> = present.iter().map(|r| r.display().to_string()).collect();
        let near = nearest(&name, &names);
        let hint = if near.is_empty() {
            "it holds no models".to_string()
        } else {
            format!("nearest there: {}", near.join(", "))
        };
        bail!(
            "Ollama model {} not found in {} ({hint}); `ollama pull {}` fetches it",
            name.short(),
            stores.join(", "),
            name.short()
        )
    };
    read_model(name, root, &manifest, settings, log)
}

fn read_model(name: ModelName, root: &Path, manifest: &Path, settings: &Settings, log: Log) -> Result<StoreModel> {
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let parsed: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid Ollama manifest (JSON with a `layers` list)", manifest.display()))?;
    let pull = || format!("`ollama pull {}` fetches it again", name.short());
    let blob = |layer: &Layer| -> Result<PathBuf> {
        let hex =
            layer.digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(hex) = hex else {
            bail!(
                "{}: layer {} has the digest {:?}, not sha256:<64 hex digits>",
                manifest.display(),
                layer.media_type,
                layer.digest
            )
        };
        let path = root.join("blobs").join(format!("sha256-{hex}"));
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(_) => bail!(
                "{} names the blob {} ({}), but {} does not exist; {}",
                manifest.display(),
                layer.digest,
                layer.media_type,
                path.display(),
                pull()
            ),
        };
        if size != layer.size {
            bail!(
                "{} holds {size} bytes, but {} says the {} layer has {}; the blob is damaged, {}",
                path.display(),
                manifest.display(),
                layer.media_type,
                layer.size,
                pull()
            )
        }
        Ok(path)
    };
    let mut model = StoreModel {
        name: name.clone(),
        manifest: manifest.to_path_buf(),
        gguf: PathBuf::new(),
        template: None,
        system: None,
        parameters: serde_json::Map::new(),
        adapters: 0,
    };
    for layer in &parsed.layers {
        match layer.media_type.as_str() {
            MODEL_LAYER => {
                let path = blob(layer)?;
                verify_cached(&path, &layer.digest, settings, log).with_context(|| {
                    format!("the weights of Ollama model {} ({}); {}", name.short(), manifest.display(), pull())
                })?;
                model.gguf = path;
            }
            TEMPLATE_LAYER | PARAMS_LAYER | SYSTEM_LAYER => {
                let path = blob(layer)?;
                // Small files: read and check each time.
                let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
                check_digest(&path, &hex_sha256(&bytes), &layer.digest)
                    .with_context(|| format!("the {} layer of {}; {}", layer.media_type, manifest.display(), pull()))?;
                let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?;
                match layer.media_type.as_str() {
                    TEMPLATE_LAYER => model.template = Some(text),
                    SYSTEM_LAYER => model.system = Some(text),
                    _ => {
                        model.parameters = serde_json::from_str(&text).with_context(|| {
                            format!(
                                "{}: the params layer of {} is not a JSON object",
                                path.display(),
                                manifest.display()
                            )
                        })?
                    }
                }
            }
            ADAPTER_LAYER => model.adapters += 1,
            _ => {}
        }
    }
    if model.gguf.as_os_str().is_empty() {
        bail!(
            "{}: no {MODEL_LAYER} layer, so Ollama model {} has no weights to train",
            manifest.display(),
            name.short()
        )
    }
    Ok(model)
}

/// The models in a store, from its manifest tree (host/namespace/name/tag).
pub fn list_models(root: &Path) -> Vec<ModelName> {
    let dirs = |p: &Path| -> Vec<(String, PathBuf)> {
        let entries = std::fs::read_dir(p).into_iter().flatten().filter_map(|e| e.ok());
        entries.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect()
    };
    let mut out = Vec::new();
    for (host, h) in dirs(&root.join("manifests")) {
        for (namespace, n) in dirs(&h) {
            for (model, m) in dirs(&n) {
                for (tag, t) in dirs(&m) {
                    if t.is_file() {
                        let (host, namespace, model) = (host.clone(), namespace.clone(), model.clone());
                        out.push(ModelName { host, namespace, model, tag });
                    }
                }
            }
        }
    }
    out
}

/// Up to five names closest to `want`: its other tags first, then by spelling.
fn nearest(want: &ModelName, names: &[ModelName]) -> Vec<String> {
    let mut scored: Vec<(bool, usize, String)> = names
        .iter()
        .map(|n| {
            let other_repo = (n.host.as_str(), n.namespace.as_str(), n.model.as_str())
                != (want.host.as_str(), want.namespace.as_str(), want.model.as_str());
            (other_repo, strsim::levenshtein(&n.short(), &want.short()), n.short())
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, _, s)| s).collect()
}

/// `sha256:<hex>` of some bytes.
fn hex_sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::io::hex(&Sha256::digest(bytes)))
}

fn check_digest(path: &Path, got: &str, want: &str) -> Result<()> {
    if got != want {
        bail!("{} has the digest {got}, but the manifest says {want}: the blob is damaged", path.display())
    }
    Ok(())
}

/// What a stamp records of a blob that was hashed and found right.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    size: u64,
    mtime_ns: u128,
    digest: String,
}

/// Checks a blob's sha256 unless a stamp says this very file (path, size, modification
/// time) was checked before. Returns whether it hashed the file.
pub fn verify_cached(path: &Path, digest: &str, settings: &Settings, log: Log) -> Result<bool> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let stamp = Stamp {
        path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        size: meta.len(),
        mtime_ns: mtime_ns.map_or(0, |d| d.as_nanos()),
        digest: digest.to_string(),
    };
    let stamp_file = stamp_path(settings, digest);
    let known = stamp_file
        .as_ref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice::<Stamp>(&b).ok())
        .is_some_and(|s| s == stamp);
    if known {
        return Ok(false);
    }
    log(&format!("checking {} ({:.1} MiB) against its digest, once", path.display(), meta.len() as f64 / 1048576.0));
    let got = format!("sha256:{}", crate::io::sha256_file(path)?);
    check_digest(path, &got, digest)?;
    // A cache that cannot be written only costs the next run another hash.
    if let Some(f) = stamp_file
        && let Some(dir) = f.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = crate::io::atomic_write(&f, &serde_json::to_vec(&stamp)?);
    }
    Ok(true)
}

/// `<lorakit cache>/ollama-verified/<hex>.json`.
pub fn stamp_path(settings: &Settings, digest: &str) -> Option<PathBuf> {
    let hex = digest.trim_start_matches("sha256:");
    crate::fetch::cache_dir(settings).ok().map(|c| c.join("ollama-verified").join(format!("{hex}.json")))
}
