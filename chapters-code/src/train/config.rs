//! Everything a training run needs, from a TOML file and/or command-line flags.
//!
//! Defaults train SmolLM2-135M on the sample extraction task in a few minutes on two CPU
//! cores; each says why it is what it is.

use crate::lora::{LoraConfig, TARGET_MODULES};
use anyhow::{Context, Result, bail};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
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

    /// LoRA rank: 8 is enough for a narrow task; the update has r·(in+out) parameters.
    pub r: usize,
    /// alpha = 2r is the common choice: scale 2 regardless of r.
    pub alpha: f64,
    /// PEFT's default, 0: short runs are not overfitting-bound, and masks cost ~10% of a step.
    pub dropout: f64,
    /// All seven projections: on small models this learns faster than q/v only.
    pub target_modules: Vec<String>,
    pub use_rslora: bool,

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
            r: 8,
            alpha: 16.0,
            dropout: 0.0,
            target_modules: TARGET_MODULES.iter().map(|s| s.to_string()).collect(),
            use_rslora: false,
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

    pub fn lora(&self) -> LoraConfig {
        LoraConfig {
            r: self.r,
            alpha: self.alpha,
            dropout: self.dropout,
            target_modules: self.target_modules.clone(),
            use_rslora: self.use_rslora,
        }
    }

    /// Reject values that cannot work, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.lora().validate(None)?;
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
