//! Turning a trained adapter into files other tools load: a PEFT directory (Python's
//! `PeftModel.from_pretrained`), a GGUF adapter (llama.cpp `--lora`, Ollama `ADAPTER`), a
//! merged GGUF model, or a directory Ollama can create a model from.
//!
//! Every file is written under a temporary name and renamed into place; a directory is
//! built beside its final name and renamed as a whole.

pub mod adapter;
pub mod gguf;
pub mod merged;
pub mod metadata;
pub mod ollama;

pub use crate::ollama::modelfile::ollama_name;
pub use gguf::ExportDtype;

use crate::io::{atomic_dir, sha256_file};
use crate::load::{LoadedModel, load_with};
use crate::lora::{CONFIG_FILE, LoraAdapter, WEIGHTS_FILE};
use crate::ollama::modelfile::SystemChoice;
use crate::progress::{self, Log};
use crate::settings::Settings;
use anyhow::{Context, Result, bail};
use candle_core::DType;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `lora export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// A PEFT adapter directory: adapter_config.json + adapter_model.safetensors.
    Peft,
    /// A GGUF LoRA adapter for llama.cpp (`--lora`) and Ollama (`ADAPTER`).
    GgufAdapter,
    /// The base model with the adapter merged in, as one GGUF file.
    Gguf,
    /// A directory for Ollama: merged model.gguf + Modelfile (and, for a GGUF base, the
    /// adapter route: adapter.gguf + Modelfile.adapter). For an `ollama:NAME:TAG` base,
    /// Modelfile is FROM NAME:TAG + adapter.gguf, and the merged model's is Modelfile.merged.
    Ollama,
}

impl ExportFormat {
    /// The storage type used when none is asked for.
    pub fn default_dtype(self) -> ExportDtype {
        match self {
            Self::Peft | Self::GgufAdapter => ExportDtype::F32,
            Self::Gguf => ExportDtype::F16,
            // Ollama users want a small file; Q8_0 keeps the answers (see the tests).
            Self::Ollama => ExportDtype::Q8_0,
        }
    }
}

/// One export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// Base model: `smollm2-135m`, a .gguf file, an HF directory or a repo id.
    pub model: String,
    /// The trained adapter (a `lora train` output directory or any PEFT directory).
    pub adapter: PathBuf,
    pub format: ExportFormat,
    pub out: PathBuf,
    pub dtype: Option<ExportDtype>,
    /// `general.name` of GGUF files (default: derived from the adapter's directory name).
    pub name: Option<String>,
    /// Copy the vocabulary (`tokenizer.*` keys) from this GGUF instead of the base's.
    pub vocab_from: Option<PathBuf>,
    /// The Modelfile's SYSTEM line; by default the system prompt the adapter was trained
    /// under, read from its run's records.
    pub system: SystemChoice,
    /// A Jinja chat template file for the Modelfile, for a base without one (or to replace it).
    pub chat_template: Option<PathBuf>,
    /// Replace an existing output.
    pub force: bool,
}

impl ExportRequest {
    /// An export with the defaults: the format's dtype, names from the adapter, no extras.
    pub fn new(
        model: impl Into<String>,
        adapter: impl Into<PathBuf>,
        format: ExportFormat,
        out: impl Into<PathBuf>,
    ) -> Self {
        Self {
            model: model.into(),
            adapter: adapter.into(),
            format,
            out: out.into(),
            dtype: None,
            name: None,
            vocab_from: None,
            system: SystemChoice::Inherit,
            chat_template: None,
            force: false,
        }
    }
}

/// A file the export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// What was written, for the report printed at the end.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub format: ExportFormat,
    pub dtype: ExportDtype,
    pub out: PathBuf,
    pub files: Vec<ExportedFile>,
    pub seconds: f64,
    /// Things the reader should know (fallbacks, skipped parts).
    pub notes: Vec<String>,
    /// For `ollama`: the command that creates the model with Ollama's own CLI.
    pub ollama_create: Option<String>,
}

/// Run an export, with the environment's settings for finding the base model.
pub fn export(req: &ExportRequest) -> Result<ExportReport> {
    export_with(req, &Settings::from_env(), &progress::silent)
}

/// [`export`] with explicit settings, reporting a base-model download to `log`.
pub fn export_with(req: &ExportRequest, settings: &Settings, log: Log) -> Result<ExportReport> {
    let start = Instant::now();
    let dtype = req.dtype.unwrap_or(req.format.default_dtype());
    let base = load_with(&req.model, DType::F32, settings, log)?;
    // An adapter trained on an Ollama model records it; exported for another base, it would
    // lose the FROM NAME:TAG route (or not fit at all).
    let trained_on = read_object(&req.adapter.join(CONFIG_FILE))
        .and_then(|c| c.get("base_model_name_or_path")?.as_str().map(String::from))
        .filter(|b| b.starts_with(crate::ollama::store::PREFIX) && *b != req.model);
    let hint = trained_on.as_ref().map(|b| format!(" (it was trained on {b}: pass --model {b})")).unwrap_or_default();
    let adapter = LoraAdapter::load_peft(&req.adapter, &base.model.config, DType::F32, base.model.device())
        .with_context(|| format!("loading the adapter {} for {}{hint}", req.adapter.display(), base.path.display()))?;
    let name = req.name.clone().unwrap_or_else(|| default_name(&req.adapter));
    let mut notes = Vec::new();
    if let Some(b) = trained_on {
        notes.push(format!(
            "the adapter was trained on {b}, not {}; pass --model {b} to export it for that model",
            req.model
        ));
    }
    let mut ollama_create = None;
    let out = &req.out;
    match req.format {
        ExportFormat::Peft => {
            atomic_dir(out, req.force, |dir| write_peft(&adapter, &req.adapter, &base, dtype, dir))?;
        }
        ExportFormat::GgufAdapter => {
            refuse_existing(out, req.force)?;
            write_gguf_adapter(&adapter, &base, &name, dtype, out)?;
        }
        ExportFormat::Gguf => {
            refuse_existing(out, req.force)?;
            write_merged(base, &adapter, &name, dtype, req.vocab_from.as_deref(), out)?;
        }
        ExportFormat::Ollama => {
            atomic_dir(out, req.force, |dir| {
                let (n, cmd) = ollama::write_dir(req, base, &adapter, &name, dtype, dir)?;
                notes.extend(n);
                ollama_create = Some(cmd);
                Ok(())
            })?;
        }
    }
    let files = list_files(out)?;
    Ok(ExportReport {
        format: req.format,
        dtype,
        out: out.clone(),
        files,
        seconds: start.elapsed().as_secs_f64(),
        notes,
        ollama_create,
    })
}

fn default_name(adapter: &Path) -> String {
    let dir = adapter.canonicalize().unwrap_or_else(|_| adapter.to_path_buf());
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "lora".into())
}

fn refuse_existing(out: &Path, force: bool) -> Result<()> {
    if out.is_dir() {
        bail!("{} is a directory; this format writes one file", out.display())
    }
    if out.exists() && !force {
        bail!("{} already exists (use --force to replace it)", out.display())
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Ok(())
}

/// The PEFT directory. The source's `adapter_config.json` is kept, key for key, with our
/// fields set on top, so PEFT-only settings survive a round trip.
fn write_peft(adapter: &LoraAdapter, source: &Path, base: &LoadedModel, dtype: ExportDtype, dir: &Path) -> Result<()> {
    let st_dtype = match dtype {
        ExportDtype::F32 => DType::F32,
        ExportDtype::F16 => DType::F16,
        other => bail!("a PEFT adapter is written in f32 or f16, not {}", other.name()),
    };
    let tensors = adapter
        .tensors()?
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(st_dtype)?)))
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    candle_core::safetensors::save(&tensors, dir.join(WEIGHTS_FILE))?;
    let mut config = adapter.peft_config_json();
    if let Some(original) = read_object(&source.join(CONFIG_FILE)) {
        // Keep the source's file, key order and PEFT-only keys; set what this crate models.
        let ours = config;
        config = serde_json::Value::Object(original);
        for key in ["peft_type", "r", "lora_alpha", "lora_dropout", "use_rslora"] {
            config[key] = ours[key].clone();
        }
        if sorted(&config["target_modules"]) != sorted(&ours["target_modules"]) {
            config["target_modules"] = ours["target_modules"].clone();
        }
    }
    match config["base_model_name_or_path"].as_str() {
        None | Some("") => config["base_model_name_or_path"] = base.path.display().to_string().into(),
        // PEFT resolves this name on the Hub: give it the repo the built-in GGUF came from.
        Some(crate::fetch::DEFAULT_MODEL) => {
            config["base_model_name_or_path"] = crate::fetch::DEFAULT_MODEL_HF_REPO.into()
        }
        Some(_) => {}
    }
    std::fs::write(dir.join(CONFIG_FILE), serde_json::to_string_pretty(&config)? + "\n")?;
    Ok(())
}

fn read_object(path: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()? {
        serde_json::Value::Object(o) => Some(o),
        _ => None,
    }
}

fn sorted(v: &serde_json::Value) -> Vec<String> {
    let mut s: Vec<String> = v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect();
    s.sort();
    s
}

pub(crate) fn write_gguf_adapter(
    adapter: &LoraAdapter,
    base: &LoadedModel,
    name: &str,
    dtype: ExportDtype,
    out: &Path,
) -> Result<()> {
    let (md, tensors) = adapter::adapter_gguf(adapter, &base.model.config, name, dtype)?;
    gguf::write_gguf(out, &md, &tensors)
}

/// Merge the adapter into the base and write the whole model.
pub(crate) fn write_merged(
    mut base: LoadedModel,
    adapter: &LoraAdapter,
    name: &str,
    dtype: ExportDtype,
    vocab_from: Option<&Path>,
    out: &Path,
) -> Result<()> {
    let mut md = match &base.gguf {
        Some(header) => metadata::from_gguf_base(header, name, dtype)?,
        // With --vocab-from the HF tokenizer is not needed (it may not even exist).
        None => metadata::from_hf_dir(&base.path, &base.model.config, name, dtype, vocab_from.is_none())?,
    };
    if let Some(v) = vocab_from {
        metadata::replace_vocab(&mut md, v)?;
    }
    base.model.apply_adapter(adapter)?;
    base.model.merge_adapter()?;
    let tensors = merged::merged_tensors(&base.model, dtype)?;
    gguf::write_gguf(out, &md, &tensors)
}

/// Sizes and digests of what was written (one file, or a directory's files).
fn list_files(out: &Path) -> Result<Vec<ExportedFile>> {
    let mut paths = if out.is_dir() {
        std::fs::read_dir(out)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect()
    } else {
        vec![out.to_path_buf()]
    };
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::metadata(&path)?.len();
            let sha256 = sha256_file(&path)?;
            Ok(ExportedFile { path, bytes, sha256 })
        })
        .collect()
}
