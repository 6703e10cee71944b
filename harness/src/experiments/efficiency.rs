//! Full fine-tuning vs LoRA on the same data, batches, steps and schedule: what each trains,
//! holds in memory, takes per step and writes to disk, and how good the result is.
//!
//! Full fine-tuning here trains every weight matrix: the seven projections of every layer
//! and the (tied) embedding, as candle `Var`s. The RMSNorm gains (0.03% of the weights)
//! stay frozen, because `ops::rms_norm` has no weight gradient. The loop is the trainer's
//! (same batches, accumulation, clipping, schedule, AdamW); only the learning rate differs,
//! as it must: a rate that suits LoRA's small fresh matrices wrecks pretrained weights.

use super::{CurvePoint, Plan, RunSpec, Runner, curve, step_seconds};
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor, Var};
use lorakit::data::TokenizedExample;
use lorakit::eval::evaluate;
use lorakit::model::{Checkpoint, Llama};
use lorakit::runtime::{peak_rss_mib, reset_peak_rss};
use lorakit::train::schedule::lr_at;
use lorakit::train::step::NonFinite;
use lorakit::train::trainer::{StepMetrics, every, tokenize_file};
use lorakit::train::{self, AdamW, AdamWConfig, MicroBatch, StepSettings, batch_indices, eval_loss};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub task: lorakit::data::synth::Task,
    pub metric_name: String,
    pub seed: u64,
    pub lora: Side,
    pub full: Side,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Side {
    /// What was trained, in words.
    pub trains: String,
    pub trainable_params: usize,
    /// AdamW's two moments, as held in memory (f32).
    pub optimizer_state_bytes: u64,
    /// Peak resident memory while training (the base model included).
    pub peak_rss_mib: f64,
    pub step_seconds: f64,
    /// What the run ships: the adapter file, or every trained weight.
    pub checkpoint_bytes: u64,
    pub val_loss: Option<f64>,
    pub metric: f64,
    pub test_loss: f64,
    pub lr: f64,
    pub train_seconds: f64,
    pub curve: Vec<CurvePoint>,
}

pub fn runs(plan: &Plan) -> Vec<RunSpec> {
    vec![RunSpec::main(plan, plan.rank_task, plan.seeds[0])]
}

pub fn run(runner: &mut Runner) -> Result<Results> {
    let spec = runs(&runner.plan).remove(0);
    let lora = runner.lora(&spec)?;
    let lora_side = Side {
        trains: format!("LoRA A and B, r={} on all 7 projections of every layer", spec.r),
        trainable_params: lora.summary.trainable_parameters,
        optimizer_state_bytes: lora.optimizer_state_bytes,
        peak_rss_mib: lora.summary.peak_rss_mib,
        step_seconds: lora.step_seconds,
        checkpoint_bytes: lora.summary.adapter_bytes,
        val_loss: lora.summary.final_val_loss,
        metric: lora.eval.metric,
        test_loss: lora.eval.loss,
        lr: runner.plan.lr,
        train_seconds: lora.summary.wall_time_secs,
        curve: curve(&lora.history),
    };
    runner.progress.start(&format!("full fine-tuning, lr {}, seed {}", runner.plan.full_lr, spec.seed));
    let full = full_fine_tune(runner, &spec)?;
    // The frozen base model again, for any run after this one.
    runner.m.model = Llama::new(Checkpoint::load(&runner.m.path, DType::F32, &Device::Cpu)?)?;
    runner.progress.done(&format!(
        "val loss {:.4}, metric {:.3}, {:.1} s/step, peak {:.0} MiB",
        full.val_loss.unwrap_or(f64::NAN),
        full.metric,
        full.step_seconds,
        full.peak_rss_mib
    ));
    Ok(Results {
        task: spec.task,
        metric_name: super::before_after::metric_info(spec.task).0.into(),
        seed: spec.seed,
        lora: lora_side,
        full,
    })
}

/// Train every weight matrix of the base model with the run's data and schedule.
fn full_fine_tune(runner: &mut Runner, spec: &RunSpec) -> Result<Side> {
    let dir = runner.runs_dir().join(format!("full-{}-s{}", spec.task.name(), spec.seed));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cfg = runner.train_config(spec, runner.plan.full_lr, dir.clone())?;
    let m = &mut runner.m;
    m.model.remove_adapter();

    // The base weights as Vars: ops::frozen_linear gives a weight that is a Var its gradient.
    let mut ckpt = Checkpoint::load(&m.path, DType::F32, &Device::Cpu)?;
    let mut names: Vec<String> = ckpt.tensors.iter().filter(|(_, t)| t.rank() == 2).map(|(k, _)| k.clone()).collect();
    names.sort();
    let mut vars: Vec<(String, Var)> = Vec::new();
    for name in names {
        let t = ckpt.tensors.remove(&name).expect("listed above");
        let v = Var::from_tensor(&t)?;
        ckpt.tensors.insert(name.clone(), v.as_tensor().clone());
        vars.push((name, v));
    }
    m.model = Llama::new(ckpt)?;
    let trainable_params: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();

    let train_set = tokenize_file(m, &cfg.train_data, &cfg)?;
    let val_path = cfg.validation_path().context("the experiments always have a validation file")?;
    let val_set = tokenize_file(m, &val_path, &cfg)?;
    if train_set.is_empty() {
        bail!("{}: no training examples", cfg.train_data.display())
    }
    let adamw = AdamWConfig { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() };
    let mut opt = AdamW::new(vars.iter().map(|(_, v)| v.clone()).collect(), adamw)?;
    let pad = *m.stop_ids.first().unwrap_or(&0);
    let per_epoch = (train_set.len() / cfg.micro_batch).max(1);
    let total = cfg.max_steps.expect("the plan sets max_steps");

    reset_peak_rss();
    let started = Instant::now();
    let mut history: Vec<StepMetrics> = Vec::new();
    let mut micro_batches = 0;
    for step in 0..total {
        // The trainer's batches, schedule and step.
        let batches = (0..cfg.grad_accum)
            .map(|k| {
                let idx = batch_indices(micro_batches + k, per_epoch, train_set.len(), &cfg);
                let examples: Vec<&TokenizedExample> = idx.iter().map(|&i| &train_set[i]).collect();
                MicroBatch::collate(&m.model, &examples, pad)
            })
            .collect::<Result<Vec<_>>>()?;
        let lr = lr_at(step, total, cfg.warmup_steps, cfg.lr, cfg.schedule);
        let settings = StepSettings { lr, max_grad_norm: cfg.max_grad_norm };
        let out = train::step(&m.model, &mut opt, &batches, &settings, None).map_err(|e| match e.downcast_ref() {
            Some(NonFinite::Loss(_)) => anyhow::anyhow!("full fine-tuning: {e} at step {}; lower full_lr", step + 1),
            _ => e,
        })?;
        micro_batches += cfg.grad_accum;
        let done = step + 1;
        let mut h = StepMetrics {
            step: done,
            loss: out.loss,
            lr,
            grad_norm: out.grad_norm,
            tokens: out.tokens,
            elapsed_secs: started.elapsed().as_secs_f64(),
            val_loss: None,
        };
        if every(done, cfg.eval_every) || done == total {
            h.val_loss = Some(eval_loss(m, &val_set, cfg.micro_batch * 2)?);
        }
        history.push(h);
    }
    let train_seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    let (mo, v) = opt.state();
    let optimizer_state_bytes: u64 =
        mo.iter().chain(v).map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64).sum();
    drop(opt);

    // What full fine-tuning ships: every trained weight.
    let weights: HashMap<String, Tensor> = vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let file = dir.join("model.safetensors");
    candle_core::safetensors::save(&weights, &file).with_context(|| format!("writing {}", file.display()))?;
    let checkpoint_bytes = std::fs::metadata(&file)?.len();
    std::fs::remove_file(&file).ok();
    drop(weights);

    let test = runner.test_set(spec.task)?;
    let eval = evaluate(&runner.m, &test, spec.task, runner.plan.max_new_tokens)?;
    Ok(Side {
        trains: "every weight matrix: the 7 projections of every layer and the tied embedding".into(),
        trainable_params,
        optimizer_state_bytes,
        peak_rss_mib: peak,
        step_seconds: step_seconds(&history),
        checkpoint_bytes,
        val_loss: history.last().and_then(|h| h.val_loss),
        metric: eval.metric,
        test_loss: eval.loss,
        lr: cfg.lr,
        train_seconds,
        curve: curve(&history),
    })
}
