//! Models from the Hugging Face Hub (e.g. `meta-llama/Llama-3.2-1B-Instruct`), through
//! hf-hub's blocking client and the standard cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`), so a model downloaded once — by us or by Python — loads
//! offline afterwards. The cache, endpoint and token come in through [`Settings`].

use anyhow::{Context, Result, bail};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, CacheRepo, Repo, RepoType};
use std::path::PathBuf;

use crate::progress::Log;
use crate::settings::Settings;

/// Files a Llama checkpoint needs besides its weights.
const SIDE_FILES: [&str; 3] = ["config.json", "tokenizer.json", "tokenizer_config.json"];

/// `owner/name`, optionally `owner/name@revision`.
pub fn looks_like_repo_id(spec: &str) -> bool {
    let id = spec.split('@').next().unwrap_or(spec);
    let mut parts = id.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(o), Some(n), None) if !o.is_empty() && !n.is_empty())
        && !spec.starts_with('.')
        && !spec.ends_with(".gguf")
}

/// The local snapshot directory of a Hub model, downloading what is missing.
///
/// Looks in the cache first without touching the network; downloads only on a miss (with
/// `HF_TOKEN` for gated models such as Llama 3.2). `settings.hf_hub_offline`
/// (`HF_HUB_OFFLINE=1`) forbids the download; each download is reported to `log`.
pub fn snapshot_dir(spec: &str, settings: &Settings, log: Log) -> Result<PathBuf> {
    let (id, revision) = match spec.split_once('@') {
        Some((id, rev)) => (id, Some(rev.to_string())),
        None => (spec, None),
    };
    let repo = match &revision {
        Some(rev) => Repo::with_revision(id.to_string(), RepoType::Model, rev.clone()),
        None => Repo::model(id.to_string()),
    };
    let cache = Cache::new(settings.hf_hub_cache.clone().context("no home directory: set HF_HUB_CACHE or HF_HOME")?);
    let cached = cache.repo(repo.clone());
    let offline = settings.hf_hub_offline;
    // Built on the first miss only: a cached model never needs the network client.
    let mut api = None;
    let mut fetch = |file: &str, required: bool| -> Result<Option<PathBuf>> {
        if let Some(p) = cached_file(&cached, &cache, &repo, file) {
            return Ok(Some(p));
        }
        if offline {
            if required {
                bail!("{file} of {id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
            }
            return Ok(None);
        }
        let token = settings.hf_token.as_ref().map(|t| t.0.clone()).or_else(|| cache.token());
        let token_set = token.is_some();
        if api.is_none() {
            let mut builder = ApiBuilder::from_cache(cache.clone()).with_progress(false).with_token(token);
            if let Some(endpoint) = &settings.hf_endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            api = Some(builder.build().map_err(|e| anyhow::anyhow!("hf-hub client: {e}"))?.repo(repo.clone()));
        }
        log(&format!("downloading {id}/{file} ..."));
        match api.as_ref().expect("built above").download(file) {
            Ok(p) => Ok(Some(p)),
            // Optional files (tokenizer, shard index) may simply not exist in the repo.
            Err(_) if !required => Ok(None),
            Err(e) => Err(explain(id, file, e, token_set)),
        }
    };
    let config = fetch("config.json", true)?.expect("required");
    for f in &SIDE_FILES[1..] {
        fetch(f, false)?;
    }
    // Sharded checkpoints list their files in an index; small ones are a single file.
    if let Some(index) = fetch("model.safetensors.index.json", false)? {
        let text = std::fs::read_to_string(&index)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", index.display()))?;
        let mut shards: Vec<String> = v["weight_map"]
            .as_object()
            .with_context(|| format!("{}: no weight_map", index.display()))?
            .values()
            .filter_map(|s| s.as_str().map(String::from))
            .collect();
        shards.sort();
        shards.dedup();
        for shard in shards {
            fetch(&shard, true)?;
        }
    } else {
        fetch("model.safetensors", true)?;
    }
    Ok(config.parent().context("config.json has no parent directory")?.to_path_buf())
}

/// A file of the cached snapshot: the one `refs/REVISION` names, or, for a revision that is a
/// commit hash (which has no ref), `snapshots/COMMIT` itself, as Python's cache reads it.
fn cached_file(cached: &CacheRepo, cache: &Cache, repo: &Repo, file: &str) -> Option<PathBuf> {
    if let Some(p) = cached.get(file) {
        return Some(p);
    }
    let rev = repo.revision();
    let is_commit = rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit());
    let p = cache.path().join(repo.folder_name()).join("snapshots").join(rev).join(file);
    (is_commit && p.exists()).then_some(p)
}

fn explain(id: &str, file: &str, e: ApiError, token_set: bool) -> anyhow::Error {
    let text = e.to_string();
    let gated = text.contains("401") || text.contains("403") || text.to_lowercase().contains("gated");
    if gated && !token_set {
        anyhow::anyhow!(
            "{id} is gated: accept its licence on the Hub, then set HF_TOKEN to a read token \
             (downloading {file} failed: {text})"
        )
    } else {
        anyhow::anyhow!(
            "cannot download {id}/{file}: {text}\n(no network? A model already in the Hugging \
             Face cache loads offline; or pass a local directory or .gguf file)"
        )
    }
}
