//! The training loop: micro-batches, gradient accumulation, clipping, the LR schedule,
//! evaluation, checkpoints and the run's records (metrics, plot, summary).

use super::checkpoint::{self, TrainState};
use super::config::TrainConfig;
use super::loss::eval_loss;
use super::run_dir::RunDir;
use super::schedule::lr_at;
use super::step::{MicroBatch, NonFinite, StepSettings, step};
use super::system_prompts::SystemPrompts;
use super::{AdamW, AdamWConfig};
use crate::data::{Record, TokenizedExample, load_dataset, tokenize_chat};
use crate::io::atomic_write;
use crate::load::LoadedModel;
use crate::lora::LoraAdapter;
use anyhow::{Context, Result, bail};
use candle_core::DType;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What the run continues from, when it stops, and who hears about its progress.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint in `output_dir/checkpoints`.
    pub resume: bool,
    /// Set to stop after the current step with a checkpoint (Ctrl-C).
    pub stop: Option<Arc<AtomicBool>>,
    /// Told about every step; `None` trains silently.
    pub observer: Option<Arc<dyn TrainObserver>>,
}

/// Progress reports from [`train`], for a caller that shows them (the `lora` CLI draws a
/// bar). Every method has an empty default.
pub trait TrainObserver: Send + Sync {
    /// The loop starts at step `done` of `total` (`done > 0` when resuming).
    fn started(&self, _total: usize, _done: usize) {}
    /// A step finished; `tokens_per_s` is the run's throughput so far.
    fn step(&self, _metrics: &StepMetrics, _total: usize, _tokens_per_s: f64) {}
    /// A one-line message ("resuming from …").
    fn note(&self, _message: &str) {}
    /// The loop ended: finished, stopped or failed.
    fn finished(&self) {}
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: usize,
    pub elapsed_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
}

/// What a run reports at the end (`summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    pub model: String,
    pub steps: usize,
    pub completed: bool,
    pub trainable_parameters: usize,
    pub base_parameters: usize,
    pub trainable_share_percent: f64,
    pub train_examples: usize,
    pub tokens_seen: usize,
    pub tokens_per_second: f64,
    pub wall_time_secs: f64,
    pub peak_rss_mib: f64,
    pub adapter_bytes: u64,
    pub first_loss: Option<f64>,
    pub final_loss: Option<f64>,
    pub final_val_loss: Option<f64>,
}

/// Tokenize a dataset file for training, naming the record that does not fit.
pub fn tokenize_file(m: &LoadedModel, path: &Path, cfg: &TrainConfig) -> Result<Vec<TokenizedExample>> {
    let records = load_dataset(path)?;
    tokenize_records(m, &records, cfg).with_context(|| format!("{}", path.display()))
}

pub fn tokenize_records(m: &LoadedModel, records: &[Record], cfg: &TrainConfig) -> Result<Vec<TokenizedExample>> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            tokenize_chat(m, &r.messages, cfg.max_len, cfg.train_on_prompt).with_context(|| format!("record {}", i + 1))
        })
        .collect()
}

/// Train a LoRA adapter on `m` (the adapter is applied to the model and returned).
pub fn train(cfg: &TrainConfig, m: &mut LoadedModel, opts: &TrainOptions) -> Result<(LoraAdapter, TrainSummary)> {
    crate::runtime::install(|| train_on_pool(cfg, m, opts))
}

fn train_on_pool(cfg: &TrainConfig, m: &mut LoadedModel, opts: &TrainOptions) -> Result<(LoraAdapter, TrainSummary)> {
    let mut run = prepare(cfg, m, opts)?;
    let interrupted = run_loop(&mut run, cfg, m, opts);
    if let Some(o) = &opts.observer {
        o.finished();
    }
    write_records(run, cfg, m, opts, interrupted?)
}

/// A run in progress: its data, adapter, optimizer and position.
struct Run {
    train_set: Vec<TokenizedExample>,
    val_set: Vec<TokenizedExample>,
    adapter: LoraAdapter,
    opt: AdamW,
    state: TrainState,
    history: Vec<StepMetrics>,
    per_epoch: usize,
    total_steps: usize,
    run_dir: RunDir,
}

/// Data, adapter and optimizer, fresh or restored from the newest checkpoint.
fn prepare(cfg: &TrainConfig, m: &mut LoadedModel, opts: &TrainOptions) -> Result<Run> {
    cfg.validate()?;
    let lora = cfg.lora.clone();
    lora.validate(Some(&m.model.config))?;
    // Before anything is written: a base that cannot be held in these blocks is refused whole.
    if let Some(dtype) = cfg.base_dtype.ggml()
        && !m.model.is_quantized()
    {
        m.model.quantize(dtype).with_context(|| {
            format!(
                "base_dtype = {}: the base cannot be kept in {} blocks of {} values (q8_0, q4_0 and q4_1 use 32)",
                cfg.base_dtype.name(),
                cfg.base_dtype.name(),
                dtype.block_size()
            )
        })?;
    }
    let train_records = load_dataset(&cfg.train_data)?;
    let train_set =
        tokenize_records(m, &train_records, cfg).with_context(|| format!("{}", cfg.train_data.display()))?;
    if train_set.is_empty() {
        bail!("{}: no training examples", cfg.train_data.display())
    }
    let val_set = match cfg.validation_path() {
        Some(p) => tokenize_file(m, &p, cfg)?,
        None => Vec::new(),
    };
    std::fs::create_dir_all(&cfg.output_dir)
        .with_context(|| format!("cannot create output directory {}", cfg.output_dir.display()))?;
    // Written first, so even an interrupted run's adapter can be served under its prompt.
    SystemPrompts::count(&train_records).write(&cfg.output_dir)?;
    let run_dir = RunDir::new(&cfg.output_dir);

    let dev = m.model.device().clone();
    let mut adapter = LoraAdapter::init(lora, &m.model.config, cfg.seed, DType::F32, &dev)?;
    adapter.base_model = cfg.model.clone();
    m.model.apply_adapter(&adapter)?;
    let vars = adapter.named_vars().into_iter().map(|(_, v)| v.clone()).collect();
    let adamw = AdamWConfig { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() };
    let mut opt = AdamW::new(vars, adamw)?;

    let per_epoch = (train_set.len() / cfg.micro_batch).max(1);
    let total_steps = cfg.max_steps.unwrap_or_else(|| (cfg.epochs * per_epoch).div_ceil(cfg.grad_accum)).max(1);
    let fingerprint = fingerprint(cfg)?;
    let mut state = TrainState {
        step: 0,
        micro_batches_done: 0,
        dropout_rng_word_pos: 0,
        fingerprint: fingerprint.clone(),
        elapsed_secs: 0.0,
        tokens_seen: 0,
    };
    let mut history: Vec<StepMetrics> = Vec::new();
    if opts.resume {
        match run_dir.latest_checkpoint()? {
            Some(ckpt) => {
                state = checkpoint::restore(&ckpt, &adapter, &mut opt, &dev)?;
                if state.fingerprint != fingerprint {
                    bail!(
                        "{}: this checkpoint is from a different config or dataset; resume with the same ones",
                        ckpt.path().display()
                    )
                }
                history = ckpt.read_metrics()?;
                log(opts, &format!("resuming from {} (step {})", ckpt.path().display(), state.step));
            }
            None => log(opts, "no checkpoint to resume from; starting a new run"),
        }
    } else if run_dir.latest_checkpoint()?.is_some() {
        bail!(
            "{} already holds a run's checkpoints: pass --resume to continue it, --overwrite to start over, or choose another output_dir",
            run_dir.checkpoints().display()
        )
    }
    Ok(Run { train_set, val_set, adapter, opt, state, history, per_epoch, total_steps, run_dir })
}

/// Steps until the end or a stop request, with evaluation, progress and checkpoints.
/// Returns whether the run was interrupted.
fn run_loop(run: &mut Run, cfg: &TrainConfig, m: &LoadedModel, opts: &TrainOptions) -> Result<bool> {
    let total_steps = run.total_steps;
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x00d0_d0d0);
    dropout_rng.set_word_pos(run.state.dropout_rng_word_pos);
    let pad = *m.stop_ids.first().unwrap_or(&0);
    if let Some(o) = &opts.observer {
        o.started(total_steps, run.state.step);
    }
    let started = Instant::now();
    let elapsed_before = run.state.elapsed_secs;

    while run.state.step < total_steps {
        let state = &mut run.state;
        let batches = (0..cfg.grad_accum)
            .map(|k| {
                let idx = batch_indices(state.micro_batches_done + k, run.per_epoch, run.train_set.len(), cfg);
                let examples: Vec<&TokenizedExample> = idx.iter().map(|&i| &run.train_set[i]).collect();
                MicroBatch::collate(&m.model, &examples, pad)
            })
            .collect::<Result<Vec<_>>>()?;
        let lr = lr_at(state.step, total_steps, cfg.warmup_steps, cfg.lr, cfg.schedule);
        let settings = StepSettings { lr, max_grad_norm: cfg.max_grad_norm };
        let rng = if cfg.lora.dropout > 0.0 { Some(&mut dropout_rng) } else { None };
        let out = step(&m.model, &mut run.opt, &batches, &settings, rng).map_err(|e| match e.downcast_ref() {
            Some(NonFinite::Loss(_)) => anyhow::anyhow!(
                "{e} at step {}: stopping. The last good checkpoint is kept in {} (try a lower lr or max_grad_norm)",
                state.step + 1,
                run.run_dir.checkpoints().display()
            ),
            Some(NonFinite::GradNorm(_)) => {
                anyhow::anyhow!("{e} at step {}: stopping, the last checkpoint is kept", state.step + 1)
            }
            None => e,
        })?;

        state.step += 1;
        state.micro_batches_done += cfg.grad_accum;
        state.tokens_seen += out.tokens;
        state.dropout_rng_word_pos = dropout_rng.get_word_pos();
        state.elapsed_secs = elapsed_before + started.elapsed().as_secs_f64();
        let mut metrics = StepMetrics {
            step: state.step,
            loss: out.loss,
            lr,
            grad_norm: out.grad_norm,
            tokens: out.tokens,
            elapsed_secs: state.elapsed_secs,
            val_loss: None,
        };
        let last = state.step == total_steps;
        if !run.val_set.is_empty() && (every(state.step, cfg.eval_every) || last) {
            metrics.val_loss = Some(eval_loss(m, &run.val_set, cfg.micro_batch * 2)?);
        }
        if let Some(o) = &opts.observer {
            o.step(&metrics, total_steps, (state.tokens_seen as f64) / state.elapsed_secs.max(1e-9));
        }
        run.history.push(metrics);

        let stop_now = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        if every(state.step, cfg.save_every) || last || stop_now {
            let ckpt = checkpoint::save(&run.run_dir, &run.adapter, &run.opt, state, 2)?;
            ckpt.write_metrics(&run.history)?;
            run.run_dir.write_metrics(&run.history)?;
        }
        if stop_now && !last {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The run's records (adapter, config, metrics, plot, summary), each written atomically.
fn write_records(
    run: Run,
    cfg: &TrainConfig,
    m: &LoadedModel,
    opts: &TrainOptions,
    interrupted: bool,
) -> Result<(LoraAdapter, TrainSummary)> {
    let Run { adapter, state, history, train_set, run_dir, .. } = run;
    adapter.save_peft(run_dir.path())?;
    atomic_write(&run_dir.train_config(), cfg.to_toml()?.as_bytes())?;
    run_dir.write_metrics(&history)?;
    super::curve::loss_curve(&run_dir.loss_svg(), &history)?;
    let adapter_bytes = std::fs::metadata(run_dir.adapter_weights()).map(|x| x.len()).unwrap_or(0);
    let base = m.model.config.num_parameters();
    let summary = TrainSummary {
        model: cfg.model.clone(),
        steps: state.step,
        completed: !interrupted,
        trainable_parameters: adapter.num_parameters(),
        base_parameters: base,
        trainable_share_percent: 100.0 * adapter.num_parameters() as f64 / base as f64,
        train_examples: train_set.len(),
        tokens_seen: state.tokens_seen,
        tokens_per_second: state.tokens_seen as f64 / state.elapsed_secs.max(1e-9),
        wall_time_secs: state.elapsed_secs,
        peak_rss_mib: crate::runtime::peak_rss_mib(),
        adapter_bytes,
        first_loss: history.first().map(|h| h.loss),
        final_loss: history.last().map(|h| h.loss),
        final_val_loss: history.iter().rev().find_map(|h| h.val_loss),
    };
    atomic_write(&run_dir.summary(), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    if interrupted {
        log(opts, &format!("interrupted at step {}: continue with --resume", state.step));
    }
    Ok((adapter, summary))
}

/// Example indices of micro-batch `k`: epochs are seeded permutations, so any position can
/// be recomputed from `k` alone (this is what makes `--resume` exact).
pub fn batch_indices(k: usize, per_epoch: usize, n: usize, cfg: &TrainConfig) -> Vec<usize> {
    let (epoch, offset) = (k / per_epoch, k % per_epoch);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(epoch as u64)));
    let start = (offset * cfg.micro_batch).min(n);
    order[start..(start + cfg.micro_batch).min(n)].to_vec()
}

/// Whether `step` is one of every `n` steps; `n = 0` means never (only the last step, which the
/// callers add).
pub fn every(step: usize, n: usize) -> bool {
    n > 0 && step.is_multiple_of(n)
}

/// Config and training data, hashed: a checkpoint only resumes the run that made it.
fn fingerprint(cfg: &TrainConfig) -> Result<String> {
    let mut h = Sha256::new();
    let mut c = cfg.clone();
    // Bookkeeping settings do not change the trajectory.
    (c.eval_every, c.save_every) = (0, 0);
    h.update(c.to_toml()?.as_bytes());
    h.update(std::fs::read(&cfg.train_data).with_context(|| format!("reading {}", cfg.train_data.display()))?);
    Ok(format!("{:x}", h.finalize()))
}

fn log(opts: &TrainOptions, msg: &str) {
    if let Some(o) = &opts.observer {
        o.note(msg);
    }
}
