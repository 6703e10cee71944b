//! Checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! A checkpoint is a directory `checkpoints/step-NNNNNN/` holding the adapter (PEFT files),
//! the optimizer's moments and `state.json` (step, data position, RNG position). It is
//! written under a temporary name and renamed into place, and `checkpoints/latest` (written
//! atomically) names the newest complete one — so a crash at any moment leaves the previous
//! checkpoint intact and findable.

use super::run_dir::{CheckpointDir, RunDir, STATE, STEP_PREFIX};
use crate::io::atomic_write;
use crate::lora::LoraAdapter;
use crate::train::AdamW;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the run is, beyond the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer updates done.
    pub step: usize,
    /// Micro-batches consumed in total (the data position: epoch and offset follow from it).
    pub micro_batches_done: usize,
    /// Position of the dropout RNG's stream (ChaCha word position).
    pub dropout_rng_word_pos: u128,
    /// A fingerprint of the training config and data; resuming with others is refused.
    pub fingerprint: String,
    pub elapsed_secs: f64,
    pub tokens_seen: usize,
}

/// Write a checkpoint for `state.step` and point `latest` at it; keeps the newest `keep`.
pub fn save(
    run: &RunDir,
    adapter: &LoraAdapter,
    opt: &AdamW,
    state: &TrainState,
    keep: usize,
) -> Result<CheckpointDir> {
    let dir = run.checkpoints();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let checkpoint = run.checkpoint(state.step);
    let name = checkpoint.name();
    let final_dir = checkpoint.path();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempdir_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let staged = CheckpointDir::new(tmp.path());
    adapter.save_peft(staged.path())?;
    let (m, v) = opt.state();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (i, (name, _)) in adapter.named_vars().iter().enumerate() {
        tensors.insert(format!("{name}.exp_avg"), m[i].to_dtype(DType::F32)?);
        tensors.insert(format!("{name}.exp_avg_sq"), v[i].to_dtype(DType::F32)?);
    }
    candle_core::safetensors::save(&tensors, staged.optimizer())?;
    std::fs::write(staged.state(), serde_json::to_string_pretty(state)?)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(final_dir)?;
    }
    let tmp_path = tmp.keep();
    std::fs::rename(&tmp_path, final_dir)
        .with_context(|| format!("cannot move checkpoint into {}", final_dir.display()))?;
    atomic_write(&run.latest_pointer(), name.as_bytes())?;
    prune(&dir, keep)?;
    Ok(checkpoint)
}

/// Remove all but the newest `keep` complete checkpoints, and abandoned temporary ones.
fn prune(dir: &Path, keep: usize) -> Result<()> {
    let staging = format!(".{STEP_PREFIX}");
    let mut steps: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(&staging) {
            std::fs::remove_dir_all(&path).ok();
        } else if name.starts_with(STEP_PREFIX) {
            steps.push(path);
        }
    }
    steps.sort();
    let n = steps.len();
    for old in steps.into_iter().take(n.saturating_sub(keep)) {
        std::fs::remove_dir_all(old).ok();
    }
    Ok(())
}

/// Load a checkpoint's state, adapter tensors (into the live adapter) and optimizer moments.
pub fn restore(checkpoint: &CheckpointDir, adapter: &LoraAdapter, opt: &mut AdamW, dev: &Device) -> Result<TrainState> {
    let path = checkpoint.path();
    let state: TrainState = serde_json::from_str(
        &std::fs::read_to_string(checkpoint.state()).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{}: invalid {STATE}", path.display()))?;
    let weights = candle_core::safetensors::load(path.join(crate::lora::WEIGHTS_FILE), dev)?;
    let moments = candle_core::safetensors::load(checkpoint.optimizer(), dev)?;
    let (mut m, mut v) = (Vec::new(), Vec::new());
    for (name, var) in adapter.named_vars() {
        let w = weights.get(&name).with_context(|| format!("{}: tensor {name} missing", path.display()))?;
        var.set(&w.to_dtype(var.dtype())?)?;
        let get = |suffix: &str| -> Result<Tensor> {
            let key = format!("{name}.{suffix}");
            Ok(moments
                .get(&key)
                .with_context(|| format!("{}: tensor {key} missing", path.display()))?
                .to_dtype(var.dtype())?)
        };
        m.push(get("exp_avg")?);
        v.push(get("exp_avg_sq")?);
    }
    opt.set_state(m, v, state.step)?;
    Ok(state)
}
