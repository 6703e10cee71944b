//! A training run's folder, and the one place its file names are written.
//!
//! The trainer writes it, and export, the experiments and the CLI read it back; naming the
//! files here keeps them all agreeing on the layout:
//!
//! ```text
//! output_dir/
//!   adapter_config.json, adapter_model.safetensors   the adapter (PEFT)
//!   train_config.toml, metrics.jsonl, loss.svg, summary.json, system_prompts.json
//!   checkpoints/latest                               names the newest complete checkpoint
//!   checkpoints/step-NNNNNN/                         adapter, state.json, optimizer.safetensors, metrics.jsonl
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::trainer::StepMetrics;
use crate::io::atomic_write;
use crate::lora::{CONFIG_FILE, WEIGHTS_FILE};

/// How a checkpoint folder's name starts; the step follows, in six digits.
pub(crate) const STEP_PREFIX: &str = "step-";
/// A checkpoint's state file; also named in the error for an unreadable one.
pub(crate) const STATE: &str = "state.json";
/// The metrics file, in the run folder and in each checkpoint.
const METRICS: &str = "metrics.jsonl";

/// A training run's output folder (`output_dir`); it need not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The run folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir(path.into())
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The folder holding the checkpoints.
    pub fn checkpoints(&self) -> PathBuf {
        self.0.join("checkpoints")
    }

    /// The file naming the newest complete checkpoint (written last, so never a partial one).
    pub fn latest_pointer(&self) -> PathBuf {
        self.checkpoints().join("latest")
    }

    /// The checkpoint of `step`: zero-padded, so names sort in step order.
    pub fn checkpoint(&self, step: usize) -> CheckpointDir {
        CheckpointDir(self.checkpoints().join(format!("{STEP_PREFIX}{step:06}")))
    }

    /// The newest complete checkpoint, if any; an error when `latest` names an incomplete one.
    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointDir>> {
        let pointer = self.latest_pointer();
        if !pointer.exists() {
            return Ok(None);
        }
        let name = std::fs::read_to_string(&pointer)?.trim().to_string();
        let checkpoint = CheckpointDir(self.checkpoints().join(&name));
        if !checkpoint.state().exists() {
            bail!("{} names {name}, which is incomplete or missing", pointer.display())
        }
        Ok(Some(checkpoint))
    }

    /// One line of JSON per optimizer step; the experiments read it back.
    pub fn metrics(&self) -> PathBuf {
        self.0.join(METRICS)
    }

    /// The config the run was trained with.
    pub fn train_config(&self) -> PathBuf {
        self.0.join("train_config.toml")
    }

    /// The end-of-run report.
    pub fn summary(&self) -> PathBuf {
        self.0.join("summary.json")
    }

    /// The loss curve.
    pub fn loss_svg(&self) -> PathBuf {
        self.0.join("loss.svg")
    }

    /// The system prompts the run trained under (see `SystemPrompts`).
    pub fn system_prompts(&self) -> PathBuf {
        self.0.join("system_prompts.json")
    }

    /// The adapter's weights, in PEFT's file.
    pub fn adapter_weights(&self) -> PathBuf {
        self.0.join(WEIGHTS_FILE)
    }

    /// The adapter's PEFT config.
    pub fn adapter_config(&self) -> PathBuf {
        self.0.join(CONFIG_FILE)
    }

    /// Whether this folder holds a training run, not just an adapter (so it may be cleared).
    pub fn is_run(&self) -> bool {
        self.train_config().exists() || self.checkpoints().exists()
    }

    /// The run's metrics so far; none when the file does not exist yet.
    pub fn read_metrics(&self) -> Result<Vec<StepMetrics>> {
        read_metrics(&self.metrics())
    }

    /// Writes the run's metrics, atomically.
    pub fn write_metrics(&self, history: &[StepMetrics]) -> Result<()> {
        write_metrics(&self.metrics(), history)
    }
}

/// One checkpoint's folder: the adapter (PEFT files) plus what resuming needs besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDir(PathBuf);

impl CheckpointDir {
    /// The checkpoint folder at `path` (for one being written under a temporary name, say).
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        CheckpointDir(path.into())
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The folder's name, which `latest` holds.
    pub fn name(&self) -> &str {
        self.0.file_name().and_then(|n| n.to_str()).unwrap_or_default()
    }

    /// Step, data position and RNG position (`TrainState`); written last, so it marks a complete checkpoint.
    pub fn state(&self) -> PathBuf {
        self.0.join(STATE)
    }

    /// The AdamW moments.
    pub fn optimizer(&self) -> PathBuf {
        self.0.join("optimizer.safetensors")
    }

    /// The metrics up to this checkpoint, so a resumed run continues its history.
    pub fn metrics(&self) -> PathBuf {
        self.0.join(METRICS)
    }

    /// The metrics up to this checkpoint; none when the file does not exist.
    pub fn read_metrics(&self) -> Result<Vec<StepMetrics>> {
        read_metrics(&self.metrics())
    }

    /// Writes the metrics up to this checkpoint, atomically.
    pub fn write_metrics(&self, history: &[StepMetrics]) -> Result<()> {
        write_metrics(&self.metrics(), history)
    }
}

/// One JSON line per step; atomic, so a crash leaves the previous file whole.
fn write_metrics(path: &Path, history: &[StepMetrics]) -> Result<()> {
    let mut out = String::new();
    for h in history {
        out.push_str(&serde_json::to_string(h)?);
        out.push('\n');
    }
    atomic_write(path, out.as_bytes())
}

/// The lines `write_metrics` wrote; none for a run that has not written any yet.
fn read_metrics(path: &Path) -> Result<Vec<StepMetrics>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_sort_by_step() {
        let run = RunDir::new("out");
        assert_eq!(run.checkpoint(7).name(), "step-000007");
        assert!(run.checkpoint(99).name() < run.checkpoint(100).name());
    }

    #[test]
    fn latest_checkpoint_must_be_complete() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert!(!run.is_run());
        assert_eq!(run.latest_checkpoint().unwrap(), None);
        std::fs::create_dir_all(run.checkpoint(3).path()).unwrap();
        std::fs::write(run.latest_pointer(), "step-000003\n").unwrap();
        assert!(run.is_run());
        assert!(run.latest_checkpoint().is_err());
        std::fs::write(run.checkpoint(3).state(), "{}").unwrap();
        assert_eq!(run.latest_checkpoint().unwrap(), Some(run.checkpoint(3)));
    }
}
