//! The measurements themselves. Each runs in a fresh `lora bench --worker JSON` process, so
//! that its peak resident memory is its own (and not the high-water mark of an earlier job)
//! and the thread count is the one its environment sets. A worker prints one JSON object.

use super::Dtype;
use super::flops::train_step_flops;
use anyhow::{Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use lorakit::export::{ExportFormat, ExportRequest, export};
use lorakit::model::KvCache;
use lorakit::model::llama::argmax_rows;
use lorakit::progress;
use lorakit::runtime::{peak_rss_mib, reset_peak_rss, rss_mib};
use lorakit::settings::Settings;
use lorakit::train::config::BaseDtype;
use lorakit::train::{self, AdamW, AdamWConfig, MicroBatch, StepSettings};
use lorakit::{LoraAdapter, LoraConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    Gemm {
        smoke: bool,
    },
    Train {
        model: String,
        batch: usize,
        seq: usize,
        steps: usize,
        warmup: usize,
        adapter_out: Option<PathBuf>,
        /// Where to save the adapter as initialised, before the first step (PEFT layout), so
        /// that PyTorch can start from the same A and B.
        #[serde(default)]
        init_adapter_out: Option<PathBuf>,
        /// The frozen base's storage: f32, or kept in a block type (`--base-dtype`).
        #[serde(default)]
        base: BaseDtype,
    },
    Export {
        model: String,
        adapter: PathBuf,
        dtype: Dtype,
        out: PathBuf,
    },
    Generate {
        model: PathBuf,
        dtype: Dtype,
        prompt: Vec<u32>,
        decode: usize,
        reps: usize,
        engine: Engine,
        /// A PEFT adapter directory applied before generating (lorakit engines only).
        #[serde(default)]
        adapter: Option<PathBuf>,
    },
    /// `lora bench --scale`: write a random-weight model of `config` as GGUF files.
    RandomModel(super::scale::RandomModel),
    /// `lora bench --scale`: the first steps of the README's demo, timed.
    DemoSteps(super::scale::DemoSteps),
    /// The adapter in `adapter` as a GGUF LoRA adapter for llama.cpp, at `out`.
    ExportAdapter {
        model: String,
        adapter: PathBuf,
        out: PathBuf,
    },
}

/// Which candle code generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// lorakit's `Llama` as `lora generate` runs it by default: every weight dequantized to
    /// f32 on load (the model training uses), so F16 and Q8_0 files compute the same.
    Lorakit,
    /// lorakit's `Llama` quantized back to the file's block type (`lora generate
    /// --quantize q8_0`): the projections multiply in Q8_0, as llama.cpp does.
    LorakitQuantized,
    /// candle-transformers' `quantized_llama`: matmuls on the file's own storage type
    /// (candle's Q8_0 kernels).
    CandleQuantized,
}

impl Engine {
    /// The engine's row name in the table, for a file of `dtype`.
    pub fn label(self, dtype: Dtype) -> String {
        match self {
            Self::Lorakit => "lorakit, f32".into(),
            Self::LorakitQuantized => format!("lorakit, --quantize {}", dtype.name()),
            Self::CandleQuantized => "candle quantized_llama".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GemmShape {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub gflops: f64,
}

/// One side of the training comparison (candle here; tools/bench/torch_train.py writes the
/// same fields for PyTorch + PEFT).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainResult {
    pub seq: usize,
    pub batch: usize,
    pub tokens_per_step: usize,
    /// Seconds of each timed step (after the warm-up steps).
    pub step_seconds: Vec<f64>,
    pub median_step_seconds: f64,
    /// Median CPU time (user + system, all threads) of a timed step. With other work on the
    /// machine, wall time grows with the wait for a core while this mostly does not (spinning
    /// threads still count): at one thread it is the load-robust measure of work per step.
    #[serde(default)]
    pub median_step_cpu_seconds: Option<f64>,
    pub tokens_per_second: f64,
    /// Peak resident memory while training: the loaded model, activations, gradients,
    /// optimizer state and runtime. The high-water mark is reset after loading (Linux
    /// `clear_refs`), so a loader's temporary copies do not count.
    pub peak_rss_mib: f64,
    /// Peak resident memory of the whole process, loading included.
    pub process_peak_rss_mib: f64,
    /// False where the high-water mark could not be reset: then both peaks are the process's.
    pub peak_rss_reset_after_load: bool,
    /// Seconds to load the model (and quantize it, for a block base) before the first step.
    #[serde(default)]
    pub load_seconds: Option<f64>,
    /// Resident memory once the model was loaded, before the first step.
    #[serde(default)]
    pub rss_after_load_mib: Option<f64>,
    /// Loss of the first step: both sides train the same weights on the same batch, so it
    /// must agree (a check that the comparison is like for like).
    pub first_loss: f64,
    /// The loss of every step, warm-up included: from the same weights, batch and initial
    /// adapter, the two sides' trajectories must agree (see `report::Trajectory`).
    #[serde(default)]
    pub losses: Vec<f64>,
    pub trainable_params: usize,
    /// Model FLOPs of a step ([`train_step_flops`]) and their rate; the PyTorch side's are
    /// filled in from the same count.
    #[serde(default)]
    pub flops_per_step: f64,
    #[serde(default)]
    pub gflops_per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportResult {
    pub dtype: Dtype,
    pub seconds: f64,
    pub peak_rss_mib: f64,
    pub bytes: u64,
    pub path: PathBuf,
}

/// Prompt processing and decoding speed on one GGUF file (candle here; tools/llama/bench.mjs
/// writes the same fields for llama.cpp).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateResult {
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    /// The greedy continuation (first repetition), to compare the two engines' outputs.
    pub ids: Vec<u32>,
    /// Peak resident memory while generating: the high-water mark is reset after loading
    /// (and quantizing), so this is what the model takes to run, not to load.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    /// Peak resident memory of the whole process, loading included.
    #[serde(default)]
    pub process_peak_rss_mib: Option<f64>,
}

pub fn run_worker(spec: &str) -> Result<()> {
    let job: Job = serde_json::from_str(spec).with_context(|| format!("bad --worker job {spec}"))?;
    let out = match job {
        Job::Gemm { smoke } => serde_json::to_value(gemm(smoke)?)?,
        Job::Train { model, batch, seq, steps, warmup, adapter_out, init_adapter_out, base } => {
            let saves = Saves { init: init_adapter_out, trained: adapter_out };
            serde_json::to_value(train(&model, batch, seq, steps, warmup, saves, base)?)?
        }
        Job::Export { model, adapter, dtype, out } => {
            serde_json::to_value(export_merged(&model, adapter, dtype, out)?)?
        }
        Job::Generate { model, dtype, prompt, decode, reps, engine, adapter } => {
            serde_json::to_value(generate(&model, dtype, &prompt, decode, reps, engine, adapter.as_deref())?)?
        }
        Job::RandomModel(spec) => serde_json::to_value(spec.write()?)?,
        Job::DemoSteps(spec) => serde_json::to_value(spec.run()?)?,
        Job::ExportAdapter { model, adapter, out } => serde_json::to_value(export_adapter(&model, adapter, out)?)?,
    };
    println!("{out}");
    Ok(())
}

/// f32 GEMM throughput of candle's CPU matmul on the shapes a training step uses.
fn gemm(smoke: bool) -> Result<Vec<GemmShape>> {
    // (tokens × hidden)·(hidden × mlp), its transpose, and a square one.
    let shapes: &[(usize, usize, usize)] = if smoke {
        &[(64, 64, 64)]
    } else {
        &[(512, 576, 1536), (512, 1536, 576), (1024, 576, 1536), (2048, 2048, 2048)]
    };
    let mut out = Vec::new();
    for &(m, k, n) in shapes {
        let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
        // (n, k) transposed, as a linear layer's weight is used.
        let b = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu)?.t()?;
        a.matmul(&b)?;
        let reps = if smoke { 1 } else { (4e10 / (2.0 * (m * k * n) as f64)).clamp(5.0, 50.0) as usize };
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            a.matmul(&b)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let gflops = 2.0 * (m * k * n) as f64 / median(&mut times) / 1e9;
        out.push(GemmShape { m, k, n, gflops });
    }
    Ok(out)
}

/// The same deterministic batch tools/bench/torch_train.py builds: token ids spread over the
/// vocabulary, every next token scored.
pub fn bench_batch(batch: usize, seq: usize, vocab: usize) -> Vec<Vec<u32>> {
    let span = vocab.min(49_000).saturating_sub(100).max(1);
    (0..batch)
        .map(|b| (0..seq).map(|t| ((b * 7919 + t * 104_729) % span + 100).min(vocab - 1) as u32).collect())
        .collect()
}

/// Where a training job saves its adapter: as initialised, and as trained.
struct Saves {
    init: Option<PathBuf>,
    trained: Option<PathBuf>,
}

/// Training steps as the trainer takes them ([`train::step`]: loss, backward, global-norm
/// clipping at 1.0, AdamW), timed one by one.
fn train(
    model: &str,
    batch: usize,
    seq: usize,
    steps: usize,
    warmup: usize,
    saves: Saves,
    base: BaseDtype,
) -> Result<TrainResult> {
    let t = Instant::now();
    let mut m = match base.ggml() {
        None => lorakit::load::load(model, DType::F32)?,
        Some(blocks) => lorakit::load::load_in_blocks(model, blocks, &Settings::from_env(), &progress::silent)?,
    };
    let load_seconds = t.elapsed().as_secs_f64();
    let lora = LoraConfig::default();
    let mut adapter = LoraAdapter::init(lora.clone(), &m.model.config, 0, DType::F32, m.model.device())?;
    adapter.base_model = model.to_string();
    if let Some(dir) = &saves.init {
        adapter.save_peft(dir)?;
    }
    m.model.apply_adapter(&adapter)?;
    let rows = bench_batch(batch, seq, m.model.config.vocab_size);
    let labels: Vec<Vec<i64>> = rows.iter().map(|r| r.iter().map(|&x| x as i64).collect()).collect();
    let batches = [MicroBatch::new(m.model.ids_tensor(&rows)?, labels)];
    let settings = StepSettings { lr: 1e-4, max_grad_norm: 1.0 };
    let vars = adapter.named_vars().into_iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(vars, AdamWConfig { lr: 1e-4, ..Default::default() })?;
    let process_peak = peak_rss_mib();
    let peak_reset = reset_peak_rss();
    let rss_after_load = rss_mib();
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut losses = Vec::new();
    for step in 0..warmup + steps {
        let t = Instant::now();
        let cpu = cpu_seconds();
        let value = train::step(&m.model, &mut opt, &batches, &settings, None)?.loss;
        let dt = t.elapsed().as_secs_f64();
        losses.push(value);
        if step >= warmup {
            times.push(dt);
            cpu_times.push(cpu_seconds().zip(cpu).map(|(b, a)| b - a));
        }
        eprintln!("  candle seq {seq} step {}/{}: loss {value:.4}, {dt:.2} s", step + 1, warmup + steps);
    }
    if let Some(dir) = &saves.trained {
        adapter.save_peft(dir)?;
    }
    let step_seconds = times.clone();
    let med = median(&mut times);
    let flops = train_step_flops(&m.model.config, &lora, batch, seq);
    Ok(TrainResult {
        seq,
        batch,
        tokens_per_step: batch * seq,
        step_seconds,
        median_step_seconds: med,
        median_step_cpu_seconds: cpu_times.into_iter().collect::<Option<Vec<f64>>>().map(|mut v| median(&mut v)),
        tokens_per_second: (batch * seq) as f64 / med,
        peak_rss_mib: peak_rss_mib(),
        process_peak_rss_mib: if peak_reset { process_peak.max(peak_rss_mib()) } else { peak_rss_mib() },
        peak_rss_reset_after_load: peak_reset,
        load_seconds: Some(load_seconds),
        rss_after_load_mib: Some(rss_after_load),
        first_loss: losses[0],
        losses,
        trainable_params: adapter.num_parameters(),
        flops_per_step: flops,
        gflops_per_second: flops / med / 1e9,
    })
}

/// CPU time of this process so far, all threads (Linux /proc/self/stat, clock ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux architecture candle builds for.
    Some(ticks / 100.0)
}

fn export_merged(model: &str, adapter: PathBuf, dtype: Dtype, out: PathBuf) -> Result<ExportResult> {
    let mut req = ExportRequest::new(model, adapter, ExportFormat::Gguf, &out);
    req.dtype = Some(dtype.export());
    req.force = true;
    let t = Instant::now();
    let report = export(&req)?;
    let seconds = t.elapsed().as_secs_f64();
    let bytes = report.files.iter().map(|f| f.bytes).sum();
    Ok(ExportResult { dtype, seconds, peak_rss_mib: peak_rss_mib(), bytes, path: out })
}

fn export_adapter(model: &str, adapter: PathBuf, out: PathBuf) -> Result<ExportResult> {
    let mut req = ExportRequest::new(model, adapter, ExportFormat::GgufAdapter, &out);
    req.force = true;
    let t = Instant::now();
    let report = export(&req)?;
    let seconds = t.elapsed().as_secs_f64();
    let bytes = report.files.iter().map(|f| f.bytes).sum();
    Ok(ExportResult { dtype: Dtype::F32, seconds, peak_rss_mib: peak_rss_mib(), bytes, path: out })
}

/// Prompt processing and decoding on a merged GGUF with `engine`; see [`timed_generation`].
fn generate(
    model: &Path,
    dtype: Dtype,
    prompt: &[u32],
    decode: usize,
    reps: usize,
    engine: Engine,
    adapter: Option<&Path>,
) -> Result<GenerateResult> {
    let dev = &Device::Cpu;
    // The process's peak when loading was done, and whether the high-water mark was reset there.
    let loaded: (f64, bool);
    let mut result = match engine {
        Engine::Lorakit | Engine::LorakitQuantized => {
            let mut m = lorakit::load::load_path(model, DType::F32)?;
            if let Some(dir) = adapter {
                let a = LoraAdapter::load_peft(dir, &m.model.config, DType::F32, dev)?;
                m.model.apply_adapter(&a)?;
            }
            if engine == Engine::LorakitQuantized {
                m.model.quantize(dtype.export().ggml())?;
            }
            let m = &m.model;
            loaded = (peak_rss_mib(), reset_peak_rss());
            timed_generation(prompt, decode, reps, || {
                let mut cache = KvCache::new(m.config.num_hidden_layers);
                move |ids: &[u32]| {
                    Ok(argmax_rows(&m.forward_step(&Tensor::new(ids, dev)?.unsqueeze(0)?, &mut cache)?)?[0])
                }
            })?
        }
        Engine::CandleQuantized => {
            if adapter.is_some() {
                anyhow::bail!("candle's quantized_llama takes no adapter: merge it first")
            }
            let mut file = std::fs::File::open(model).with_context(|| format!("cannot open {}", model.display()))?;
            let content =
                gguf_file::Content::read(&mut file).with_context(|| format!("{}: not a GGUF file", model.display()))?;
            let weights = ModelWeights::from_gguf(content, &mut file, dev)
                .with_context(|| format!("{}: candle's quantized_llama cannot load it", model.display()))?;
            loaded = (peak_rss_mib(), reset_peak_rss());
            timed_generation(prompt, decode, reps, || {
                // A fresh copy has an empty KV cache (the tensors themselves are shared).
                let mut w = weights.clone();
                let mut pos = 0;
                move |ids: &[u32]| {
                    let logits = w.forward(&Tensor::new(ids, dev)?.unsqueeze(0)?, pos)?;
                    pos += ids.len();
                    Ok(argmax_rows(&logits.to_dtype(DType::F32)?)?[0])
                }
            })?
        }
    };
    let (load_peak, reset) = loaded;
    result.peak_rss_mib = Some(peak_rss_mib());
    result.process_peak_rss_mib = Some(if reset { load_peak.max(peak_rss_mib()) } else { peak_rss_mib() });
    Ok(result)
}

/// Prefill of `prompt` in one forward pass, then `decode` greedy tokens in all (the first
/// from the prefill), one at a time and not stopping at end-of-turn, so that every engine
/// decodes the same count. One untimed warm-up run, then the median of `reps` runs, each
/// from a fresh session: `session()` returns a step function from input ids to the next id.
fn timed_generation<S: FnMut(&[u32]) -> Result<u32>>(
    prompt: &[u32],
    decode: usize,
    reps: usize,
    mut session: impl FnMut() -> S,
) -> Result<GenerateResult> {
    let (mut prefill, mut step) = (Vec::new(), Vec::new());
    let mut first_ids = None;
    for rep in 0..=reps {
        let mut next_id = session();
        let t = Instant::now();
        let mut next = next_id(prompt)?;
        let t_prefill = t.elapsed().as_secs_f64();
        let mut out = vec![next];
        let t = Instant::now();
        for _ in 1..decode {
            next = next_id(&[next])?;
            out.push(next);
        }
        let t_decode = t.elapsed().as_secs_f64();
        if rep > 0 {
            prefill.push(prompt.len() as f64 / t_prefill);
            step.push((decode - 1) as f64 / t_decode);
            first_ids.get_or_insert(out);
        }
    }
    Ok(GenerateResult {
        prompt_tokens: prompt.len(),
        decode_tokens: decode,
        prefill_tokens_per_second: median(&mut prefill),
        decode_tokens_per_second: median(&mut step),
        ids: first_ids.unwrap_or_default(),
        peak_rss_mib: None,
        process_peak_rss_mib: None,
    })
}

pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { 0.5 * (xs[n / 2 - 1] + xs[n / 2]) }
}
