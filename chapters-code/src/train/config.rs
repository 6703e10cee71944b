//! Everything a training run needs, from a TOML file and/or command-line flags.
//!
//! Defaults train SmolLM2-135M on the sample extraction task in a few minutes on two CPU
//! cores; each says why it is what it is.

use crate::lora::{LoraConfig, TARGET_MODULES};
use anyhow::{Context, Result, bail};
use candle_core::quantized::GgmlDType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Learning-rate schedule after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Linear,
    Constant,
}

/// What the frozen base weights are held in while training. `f32`: the weights themselves,
/// fastest per step. A block type (`q8_0`, … as in llama.cpp and Ollama's tags): each
/// projection kept in that type's blocks and dequantized for every product, forward and
/// backward (QLoRA's trade): the model then takes about the size of a file in that type, and
/// the adapter learns on exactly the weights Ollama serves when the base is that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BaseDtype {
    #[default]
    F32,
    #[cfg_attr(feature = "clap", value(name = "q8_0"))]
    #[serde(rename = "q8_0")]
    Q8_0,
    #[cfg_attr(feature = "clap", value(name = "q4_0"))]
    #[serde(rename = "q4_0")]
    Q4_0,
    #[cfg_attr(feature = "clap", value(name = "q4_1"))]
    #[serde(rename = "q4_1")]
    Q4_1,
    #[cfg_attr(feature = "clap", value(name = "q4_k"))]
    #[serde(rename = "q4_k")]
    Q4K,
    #[cfg_attr(feature = "clap", value(name = "q5_k"))]
    #[serde(rename = "q5_k")]
    Q5K,
    #[cfg_attr(feature = "clap", value(name = "q6_k"))]
    #[serde(rename = "q6_k")]
    Q6K,
}

impl BaseDtype {
    /// The block type, or None for full precision.
    pub fn ggml(self) -> Option<GgmlDType> {
        match self {
            Self::F32 => None,
            Self::Q8_0 => Some(GgmlDType::Q8_0),
            Self::Q4_0 => Some(GgmlDType::Q4_0),
            Self::Q4_1 => Some(GgmlDType::Q4_1),
            Self::Q4K => Some(GgmlDType::Q4K),
            Self::Q5K => Some(GgmlDType::Q5K),
            Self::Q6K => Some(GgmlDType::Q6K),
        }
    }

    /// The name in TOML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q4K => "q4_k",
            Self::Q5K => "q5_k",
            Self::Q6K => "q6_k",
        }
    }

    fn is_f32(&self) -> bool {
        *self == Self::F32
    }
}

/// A training run's settings. In TOML the LoRA keys sit beside the others (`r = 8`, not a
/// `[lora]` table), as in `lora train` flags; see [`TrainConfigFile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "TrainConfigFile", into = "TrainConfigFile")]
pub struct TrainConfig {
    /// Base model: `smollm2-135m`, a .gguf, an HF directory or a Hub repo id.
    pub model: String,
    /// Training data (.json, .jsonl or .csv).
    pub train_data: PathBuf,
    /// Validation data, evaluated every `eval_every` steps. When absent, a
    /// `validation.jsonl` beside `train_data` is used if there is one.
    pub validation_data: Option<PathBuf>,
    /// Where the adapter, metrics, plots and checkpoints go.
    pub output_dir: PathBuf,
    /// The frozen base's storage while training (see [`BaseDtype`]).
    pub base_dtype: BaseDtype,

    /// The adapter. Defaults: r = 8 is enough for a narrow task; alpha = 2r (scale 2
    /// regardless of r); dropout 0, PEFT's default (short runs are not overfitting-bound, and
    /// masks cost ~10% of a step); all seven projections, which on small models learns faster
    /// than q/v only; no rsLoRA.
    pub lora: LoraConfig,

    /// LoRA tolerates much higher rates than full fine-tuning (only A and B move).
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    /// Clip the global gradient norm (stabilises the first steps); 0 disables.
    pub max_grad_norm: f64,

    /// Passes over the training data (ignored when `max_steps` is set).
    pub epochs: usize,
    pub max_steps: Option<usize>,
    /// Sequences per forward pass: 4 keeps a step under a few seconds on 2 cores.
    pub micro_batch: usize,
    /// Micro-batches per optimizer step: 4 sequences × 2 = 8 sequences per update.
    pub grad_accum: usize,
    /// Longer examples are an error (named), not silently truncated.
    pub max_len: usize,
    /// Score every token, not only the answer.
    pub train_on_prompt: bool,

    /// Validation loss every this many steps and at the end (0: only at the end).
    pub eval_every: usize,
    /// A checkpoint every this many steps and at the end (0: only at the end).
    pub save_every: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: crate::fetch::DEFAULT_MODEL.to_string(),
            train_data: PathBuf::from("data/extract/train.jsonl"),
            validation_data: None,
            output_dir: PathBuf::from("models/lora_adapters/extract"),
            base_dtype: BaseDtype::F32,
            lora: LoraConfig {
                r: 8,
                alpha: 16.0,
                dropout: 0.0,
                target_modules: TARGET_MODULES.iter().map(|s| s.to_string()).collect(),
                use_rslora: false,
            },
            lr: 2e-3,
            weight_decay: 0.0,
            warmup_steps: 5,
            schedule: Schedule::Cosine,
            max_grad_norm: 1.0,
            epochs: 1,
            max_steps: None,
            micro_batch: 4,
            grad_accum: 2,
            max_len: 256,
            train_on_prompt: false,
            eval_every: 10,
            save_every: 10,
            seed: 42,
        }
    }
}

impl TrainConfig {
    /// Read a TOML config; unknown keys are errors (a typo must not silently use a default).
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// [`TrainConfig::from_toml_file`] on the file's text; `name` names the file in errors.
    pub fn from_toml_str(text: &str, name: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
    }

    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// The validation file to use: the configured one, else `validation.jsonl` beside
    /// the training data if it exists.
    pub fn validation_path(&self) -> Option<PathBuf> {
        self.validation_data.clone().or_else(|| {
            let sibling = self.train_data.parent()?.join("validation.jsonl");
            (sibling.exists() && sibling != self.train_data).then_some(sibling)
        })
    }

    /// Reject values that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.lora.validate(None)?;
        let checks: [(bool, &str); 8] = [
            (self.lr > 0.0 && self.lr.is_finite(), "lr must be a positive number"),
            (self.weight_decay >= 0.0, "weight_decay must be >= 0"),
            (self.max_grad_norm >= 0.0, "max_grad_norm must be >= 0 (0 disables clipping)"),
            (self.micro_batch > 0, "micro_batch must be at least 1"),
            (self.grad_accum > 0, "grad_accum must be at least 1"),
            (self.max_len >= 8, "max_len must be at least 8"),
            (self.epochs > 0 || self.max_steps.is_some_and(|s| s > 0), "epochs (or max_steps) must be at least 1"),
            (self.max_steps != Some(0), "max_steps must be at least 1"),
        ];
        for (ok, msg) in checks {
            if !ok {
                bail!("invalid training config: {msg}")
            }
        }
        Ok(())
    }
}

/// The TOML layout of [`TrainConfig`]: every key flat, in the order `train_config.toml` is
/// written in. Unknown keys are errors, and missing ones take the defaults.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfigFile {
    model: String,
    train_data: PathBuf,
    validation_data: Option<PathBuf>,
    output_dir: PathBuf,
    // Left out at f32, so the files (and resume fingerprints) of f32 runs stay as they were.
    #[serde(skip_serializing_if = "BaseDtype::is_f32")]
    base_dtype: BaseDtype,
    r: usize,
    alpha: f64,
    dropout: f64,
    target_modules: Vec<String>,
    use_rslora: bool,
    lr: f64,
    weight_decay: f64,
    warmup_steps: usize,
    schedule: Schedule,
    max_grad_norm: f64,
    epochs: usize,
    max_steps: Option<usize>,
    micro_batch: usize,
    grad_accum: usize,
    max_len: usize,
    train_on_prompt: bool,
    eval_every: usize,
    save_every: usize,
    seed: u64,
}

impl Default for TrainConfigFile {
    fn default() -> Self {
        TrainConfig::default().into()
    }
}

impl From<TrainConfig> for TrainConfigFile {
    fn from(c: TrainConfig) -> Self {
        let LoraConfig { r, alpha, dropout, target_modules, use_rslora } = c.lora;
        TrainConfigFile {
            model: c.model,
            train_data: c.train_data,
            validation_data: c.validation_data,
            output_dir: c.output_dir,
            base_dtype: c.base_dtype,
            r,
            alpha,
            dropout,
            target_modules,
            use_rslora,
            lr: c.lr,
            weight_decay: c.weight_decay,
            warmup_steps: c.warmup_steps,
            schedule: c.schedule,
            max_grad_norm: c.max_grad_norm,
            epochs: c.epochs,
            max_steps: c.max_steps,
            micro_batch: c.micro_batch,
            grad_accum: c.grad_accum,
            max_len: c.max_len,
            train_on_prompt: c.train_on_prompt,
            eval_every: c.eval_every,
            save_every: c.save_every,
            seed: c.seed,
        }
    }
}

impl From<TrainConfigFile> for TrainConfig {
    fn from(f: TrainConfigFile) -> Self {
        TrainConfig {
            model: f.model,
            train_data: f.train_data,
            validation_data: f.validation_data,
            output_dir: f.output_dir,
            base_dtype: f.base_dtype,
            lora: LoraConfig {
                r: f.r,
                alpha: f.alpha,
                dropout: f.dropout,
                target_modules: f.target_modules,
                use_rslora: f.use_rslora,
            },
            lr: f.lr,
            weight_decay: f.weight_decay,
            warmup_steps: f.warmup_steps,
            schedule: f.schedule,
            max_grad_norm: f.max_grad_norm,
            epochs: f.epochs,
            max_steps: f.max_steps,
            micro_batch: f.micro_batch,
            grad_accum: f.grad_accum,
            max_len: f.max_len,
            train_on_prompt: f.train_on_prompt,
            eval_every: f.eval_every,
            save_every: f.save_every,
            seed: f.seed,
        }
    }
}
