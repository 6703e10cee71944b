//! One entry point from a model name to everything needed to use it: weights, tokenizer,
//! chat template and stop tokens. The same code path serves the embedded default
//! (`smollm2-135m`), a local `.gguf`, a local HF directory, a Hub repo id and a model
//! Ollama has pulled (`ollama:NAME[:TAG]`).

use crate::chat::{ChatTemplate, Message, end_of_turn_ids, end_of_turn_ids_gguf};
use crate::model::{Checkpoint, Llama};
use crate::ollama::store::{self, StoreModel};
use crate::progress::{self, Log};
use crate::settings::Settings;
use crate::{fetch, hub, tokenizer};
use anyhow::{Context, Result, bail};
use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// A model ready for training or generation.
pub struct LoadedModel {
    pub model: Llama,
    /// `None` for checkpoints without a usable vocabulary (e.g. test models fed ids).
    pub tokenizer: Option<Tokenizer>,
    /// Why there is no tokenizer, for the error shown when text is needed.
    tokenizer_problem: String,
    pub template: Option<ChatTemplate>,
    /// EOS and end-of-turn ids: generation stops on any of them.
    pub stop_ids: Vec<u32>,
    /// The file or directory the weights came from.
    pub path: PathBuf,
    /// The GGUF header (metadata, tensor index) when the weights came from a `.gguf` file.
    pub gguf: Option<Content>,
    /// The Ollama model the weights came from (`ollama:NAME[:TAG]`): its template, stops and
    /// system prompt, and the name an export's Modelfile can say FROM.
    pub ollama: Option<StoreModel>,
}

/// Resolve a model name to a local path: `smollm2-135m` (fetched on first use), an existing
/// path, `ollama:NAME[:TAG]` (the GGUF blob in Ollama's store, checked once), or a Hugging
/// Face repo id (cache first, then download). Uses the environment's
/// settings and reports nothing; [`resolve_with`] takes both.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    resolve_with(spec, &Settings::from_env(), &progress::silent)
}

/// [`resolve`] with explicit settings, reporting downloads to `log`.
pub fn resolve_with(spec: &str, settings: &Settings, log: Log) -> Result<PathBuf> {
    if spec == fetch::DEFAULT_MODEL {
        return fetch::default_model_path_with(settings, log);
    }
    if let Some(name) = spec.strip_prefix(store::PREFIX) {
        return Ok(store::resolve(name, settings, log)?.gguf);
    }
    let p = Path::new(spec);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    if hub::looks_like_repo_id(spec) {
        return hub::snapshot_dir(spec, settings, log);
    }
    bail!(
        "model {spec:?} not found: give {}, a .gguf file, a Hugging Face model directory, a \
         repo id such as meta-llama/Llama-3.2-1B-Instruct, or ollama:NAME[:TAG] for a model Ollama has pulled",
        fetch::DEFAULT_MODEL
    )
}

/// Load a model by name (see [`resolve`]) in `dtype` on the CPU.
pub fn load(spec: &str, dtype: DType) -> Result<LoadedModel> {
    load_with(spec, dtype, &Settings::from_env(), &progress::silent)
}

/// [`load`] with explicit settings, reporting downloads to `log`.
pub fn load_with(spec: &str, dtype: DType, settings: &Settings, log: Log) -> Result<LoadedModel> {
    load_any(spec, dtype, None, settings, log)
}

/// [`load`] with the projections kept in `blocks` (e.g. Q8_0), to train on a quantized base:
/// a GGUF file's projections go from the file to blocks one tensor at a time, never all in
/// f32 (see [`Checkpoint::load_with_gguf_header_in`]); an HF directory loads in f32, to be
/// quantized after. The model comes back quantized either way.
pub fn load_in_blocks(spec: &str, blocks: GgmlDType, settings: &Settings, log: Log) -> Result<LoadedModel> {
    let mut m = load_any(spec, DType::F32, Some(blocks), settings, log)?;
    if !m.model.is_quantized() {
        m.model.quantize(blocks)?;
    }
    Ok(m)
}

fn load_any(spec: &str, dtype: DType, blocks: Option<GgmlDType>, settings: &Settings, log: Log) -> Result<LoadedModel> {
    let Some(name) = spec.strip_prefix(store::PREFIX) else {
        return load_path_in(&resolve_with(spec, settings, log)?, dtype, blocks);
    };
    let found = store::resolve(name, settings, log)?;
    if found.adapters > 0 {
        log(&format!(
            "note: Ollama model {} applies an adapter of its own; lora uses its base weights without it",
            found.name.short()
        ));
    }
    let mut loaded = load_path_in(&found.gguf, dtype, blocks)
        .with_context(|| format!("loading Ollama model {} ({})", found.name.short(), found.gguf.display()))?;
    loaded.ollama = Some(found);
    Ok(loaded)
}

pub fn load_path(path: &Path, dtype: DType) -> Result<LoadedModel> {
    load_path_in(path, dtype, None)
}

fn load_path_in(path: &Path, dtype: DType, blocks: Option<GgmlDType>) -> Result<LoadedModel> {
    let dev = Device::Cpu;
    // A GGUF header is parsed once: weights, tokenizer and exports all read it.
    let (ckpt, gguf, kept) = Checkpoint::load_with_gguf_header_in(path, dtype, &dev, blocks)?;
    let eos = ckpt.config.eos_token_ids.clone();
    let loaded = match &gguf {
        None => hf_tokenizer(path, eos.first().copied()),
        Some(content) => tokenizer::tokenizer_from_gguf(content)
            .with_context(|| format!("{}: building the tokenizer", path.display()))
            .and_then(|tok| {
                let template = ChatTemplate::from_gguf(content).ok();
                let stops = end_of_turn_ids_gguf(content, &tok)?;
                Ok((tok, template, stops))
            }),
    };
    let (tokenizer, tokenizer_problem, template, stop_ids) = match loaded {
        Ok((tok, template, stops)) => (Some(tok), String::new(), template, stops),
        // Ids can still be scored and generated without a vocabulary.
        Err(e) => (None, format!("{e:#}"), None, eos),
    };
    let model = Llama::with_blocks(ckpt, kept).with_context(|| path.display().to_string())?;
    let path = path.to_path_buf();
    Ok(LoadedModel { model, tokenizer, tokenizer_problem, template, stop_ids, path, gguf, ollama: None })
}

fn hf_tokenizer(dir: &Path, eos: Option<u32>) -> Result<(Tokenizer, Option<ChatTemplate>, Vec<u32>)> {
    let tok = tokenizer::tokenizer_from_file(&dir.join("tokenizer.json"))?;
    let cfg_path = dir.join("tokenizer_config.json");
    let template = if cfg_path.exists() {
        let text = std::fs::read_to_string(&cfg_path)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", cfg_path.display()))?;
        // bos/eos are strings or {"content": ...} objects.
        let token = |k: &str| -> String {
            match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                obj => obj["content"].as_str().unwrap_or_default().to_string(),
            }
        };
        match v["chat_template"].as_str() {
            Some(src) => Some(ChatTemplate::new(src, token("bos_token"), token("eos_token"))?),
            None => None,
        }
    } else {
        None
    };
    let stops = end_of_turn_ids(&tok, eos);
    Ok((tok, template, stops))
}

impl LoadedModel {
    /// Token ids of a text, without adding special tokens (templates carry their own).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let ids = self.tokenizer()?.encode(text, false).map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        Ok(ids.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer()?.decode(ids, true).map_err(|e| anyhow::anyhow!("tokenizer: {e}"))
    }

    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer
            .as_ref()
            .with_context(|| format!("{} has no usable tokenizer: {}", self.path.display(), self.tokenizer_problem))
    }

    /// A chat rendered with the model's own template, ready for the assistant's answer.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<String> {
        let t = self.template.as_ref().with_context(|| format!("{} has no chat template", self.path.display()))?;
        t.render(messages, true)
    }
}
