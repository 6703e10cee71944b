//! `lora bench --scale`: what training costs as the model grows, from the book's
//! SmolLM2-135M to a model with Llama-3.2-1B's exact configuration.
//!
//! Llama 3.2's weights cannot be downloaded here, and what a step costs does not depend on
//! their values. So the benchmark writes a model of that configuration with random weights,
//! the Llama 3 vocabulary (llama.cpp's `ggml-vocab-llama-bpe.gguf`) and Llama 3.2's chat
//! template, as GGUF files in f32 and in Q8_0 (how Ollama's `llama3.2:1b` is stored), and runs
//! on it what the book runs on SmolLM2: fixed-shape training steps (to set against the FLOP
//! count), the first steps of the README's demo on its own data (to project the demo's time),
//! generation with the trained adapter, and that adapter's GGUF export loaded by llama.cpp on
//! the Q8_0 file. Random weights prove the path and measure the cost; their answers mean nothing.

use super::flops::train_step_flops;
use super::jobs::{Engine, ExportResult, GenerateResult, Job, TrainResult, median};
use super::report::{LoadAverage, Machine, Skip};
use super::{Args, Dtype, TOOLS_DIR, bench_prompt, run_json, worker};
use crate::experiments::record::load_averages;
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use lorakit::chat::LLAMA_3_2_TEMPLATE;
use lorakit::export::gguf::{strv, write_gguf};
use lorakit::export::merged::merged_tensors;
use lorakit::export::metadata;
use lorakit::lora::{TARGET_MODULES, module_path};
use lorakit::model::config::HfConfig;
use lorakit::model::weights::Format;
use lorakit::runtime::{peak_rss_mib, reset_peak_rss, rss_mib};
use lorakit::train::config::BaseDtype;
use lorakit::train::{StepMetrics, TrainConfig, TrainObserver, TrainOptions};
use lorakit::{Checkpoint, Llama, LlamaConfig, LoraConfig};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `config.json` of meta-llama/Llama-3.2-1B-Instruct.
pub const LLAMA_3_2_1B_CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 128256
}"#;

const RANDOM_NAME: &str = "Llama-3.2-1B configuration, random weights";

pub fn llama_3_2_1b() -> Result<LlamaConfig> {
    let hf: HfConfig = serde_json::from_str(LLAMA_3_2_1B_CONFIG)?;
    hf.into_config("Llama-3.2-1B-Instruct config.json")
}

/// The worker job that writes the random model: one GGUF file per storage type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandomModel {
    /// A GGUF file whose `tokenizer.*` keys are copied (a vocabulary of `vocab_size` tokens).
    pub vocab: PathBuf,
    pub files: Vec<(Dtype, PathBuf)>,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenFile {
    /// The storage type of most of the file's weights.
    pub storage: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub seconds: f64,
}

impl RandomModel {
    pub fn write(&self) -> Result<Vec<WrittenFile>> {
        let cfg = llama_3_2_1b()?;
        let vocab = lorakit::tokenizer::read_gguf(&self.vocab)?;
        let tokens = match vocab.metadata.get("tokenizer.ggml.tokens") {
            Some(v) => v.to_vec().map(|t| t.len()).unwrap_or(0),
            None => 0,
        };
        if tokens != cfg.vocab_size {
            bail!("{}: {tokens} tokens, the configuration has {}", self.vocab.display(), cfg.vocab_size)
        }
        let model = random_llama(cfg.clone(), self.seed)?;
        let mut out = Vec::new();
        for (dtype, path) in &self.files {
            let t = Instant::now();
            let mut md = metadata::from_config(&cfg, RANDOM_NAME, dtype.export());
            metadata::replace_vocab(&mut md, &self.vocab)?;
            md.retain(|(k, _)| k != "tokenizer.chat_template");
            md.push(("tokenizer.chat_template".into(), strv(LLAMA_3_2_TEMPLATE)));
            write_gguf(path, &md, &merged_tensors(&model, dtype.export())?)?;
            let bytes = std::fs::metadata(path)?.len();
            out.push(WrittenFile {
                storage: dtype.name().into(),
                path: path.clone(),
                bytes,
                seconds: t.elapsed().as_secs_f64(),
            });
            eprintln!("  wrote {} ({bytes} bytes)", path.display());
        }
        Ok(out)
    }
}

/// A Llama of `config` with every matrix drawn uniformly with standard deviation 0.02 (the
/// configuration's `initializer_range`) by a seeded generator, and the norms at one.
fn random_llama(config: LlamaConfig, seed: u64) -> Result<Llama> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let bound = 0.02 * 3f32.sqrt();
    let mut uniform = |rows: usize, cols: usize| -> Result<Tensor> {
        let values: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-bound..bound)).collect();
        Ok(Tensor::from_vec(values, (rows, cols), &Device::Cpu)?)
    };
    let ones = |n: usize| Tensor::ones(n, DType::F32, &Device::Cpu);
    let (h, v) = (config.hidden_size, config.vocab_size);
    let mut tensors = HashMap::new();
    tensors.insert("model.embed_tokens.weight".to_string(), uniform(v, h)?);
    for layer in 0..config.num_hidden_layers {
        for module in TARGET_MODULES {
            let (fan_in, fan_out) = config.module_shape(module).context("a Llama projection")?;
            tensors.insert(format!("{}.weight", module_path(layer, module)), uniform(fan_out, fan_in)?);
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            tensors.insert(format!("model.layers.{layer}.{norm}.weight"), ones(h)?);
        }
    }
    tensors.insert("model.norm.weight".to_string(), ones(h)?);
    let format = Format::HfDir { dir: PathBuf::from("random") };
    Llama::new(Checkpoint { config, tensors, format })
}

/// The worker job that times the first `steps` optimizer steps of the README's demo
/// (`lora demo`: the trainer's default settings on data/extract/train.jsonl).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSteps {
    pub model: String,
    pub base: BaseDtype,
    pub train_data: PathBuf,
    pub steps: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoStepsResult {
    /// Optimizer steps of the whole demo run on this data.
    pub demo_steps: usize,
    /// Seconds and tokens of each timed step (micro-batches × rows, padding not counted).
    pub step_seconds: Vec<f64>,
    pub step_tokens: Vec<usize>,
    /// Median over the steps after the first (which also warms the allocator and caches).
    pub median_step_seconds: f64,
    /// `demo_steps` × the median: the demo's training, without its evaluations and export.
    pub projected_train_seconds: f64,
    pub load_seconds: f64,
    pub rss_after_load_mib: f64,
    /// Peak resident memory of the process while training (loading excluded where the
    /// kernel's high-water mark could be reset).
    pub peak_rss_mib: f64,
    pub first_loss: f64,
}

/// Records every step and asks the trainer to stop after the last one wanted.
struct StopAfter {
    steps: usize,
    stop: Arc<AtomicBool>,
    total: Mutex<usize>,
    seen: Mutex<Vec<StepMetrics>>,
}

impl TrainObserver for StopAfter {
    fn started(&self, total: usize, _done: usize) {
        *self.total.lock().unwrap() = total;
    }
    fn step(&self, m: &StepMetrics, total: usize, _tokens_per_s: f64) {
        eprintln!(
            "  demo step {}/{total}: loss {:.4}, {} tokens, {:.1} s so far",
            m.step, m.loss, m.tokens, m.elapsed_secs
        );
        let mut seen = self.seen.lock().unwrap();
        seen.push(m.clone());
        if seen.len() >= self.steps {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

impl DemoSteps {
    pub fn run(&self) -> Result<DemoStepsResult> {
        if self.steps < 2 {
            bail!("time at least 2 demo steps (the first is not counted in the median)")
        }
        let tmp = tempfile::tempdir()?;
        // Alone in a folder, so that no validation.jsonl beside it is evaluated.
        let data = tmp.path().join("train.jsonl");
        std::fs::copy(&self.train_data, &data).with_context(|| format!("cannot read {}", self.train_data.display()))?;
        let cfg = TrainConfig {
            model: self.model.clone(),
            train_data: data,
            output_dir: tmp.path().join("run"),
            base_dtype: self.base,
            eval_every: 0,
            save_every: 0,
            ..TrainConfig::default()
        };
        let t = Instant::now();
        let mut m = match self.base.ggml() {
            None => lorakit::load::load(&cfg.model, DType::F32)?,
            Some(blocks) => lorakit::load::load_in_blocks(
                &cfg.model,
                blocks,
                &lorakit::settings::Settings::from_env(),
                &lorakit::progress::silent,
            )?,
        };
        let load_seconds = t.elapsed().as_secs_f64();
        let reset = reset_peak_rss();
        let load_peak = peak_rss_mib();
        let rss_after_load_mib = rss_mib();
        let stop = Arc::new(AtomicBool::new(false));
        let observer = Arc::new(StopAfter {
            steps: self.steps,
            stop: stop.clone(),
            total: Mutex::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let opts = TrainOptions { resume: false, stop: Some(stop), observer: Some(observer.clone()) };
        lorakit::train::train(&cfg, &mut m, &opts)?;
        let seen = observer.seen.lock().unwrap().clone();
        if seen.len() < 2 {
            bail!("the demo's training ran {} steps, fewer than 2", seen.len())
        }
        let mut step_seconds = Vec::new();
        let mut previous = 0.0;
        for s in &seen {
            step_seconds.push(s.elapsed_secs - previous);
            previous = s.elapsed_secs;
        }
        let med = median(&mut step_seconds[1..].to_vec());
        let demo_steps = *observer.total.lock().unwrap();
        Ok(DemoStepsResult {
            demo_steps,
            step_tokens: seen.iter().map(|s| s.tokens).collect(),
            step_seconds,
            median_step_seconds: med,
            projected_train_seconds: demo_steps as f64 * med,
            load_seconds,
            rss_after_load_mib,
            peak_rss_mib: if reset { peak_rss_mib() } else { peak_rss_mib().max(load_peak) },
            first_loss: seen[0].loss,
        })
    }
}

/// The settings of a `--scale` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalePlan {
    pub threads: usize,
    pub batch: usize,
    pub seq: usize,
    pub steps: usize,
    pub warmup: usize,
    pub demo_steps_timed: usize,
    pub lora: String,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub params: usize,
    pub layers: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    /// The GGUF files measured (for the random model, as written by this run).
    pub files: Vec<WrittenFile>,
    /// Model FLOPs of one fixed-shape step ([`train_step_flops`]).
    pub flops_per_step: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainCase {
    pub model: String,
    pub base: BaseDtype,
    pub fixed: TrainResult,
    pub demo: DemoStepsResult,
}

/// The 1B model over SmolLM2, for each base.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Growth {
    pub base: BaseDtype,
    pub params_ratio: f64,
    pub flops_ratio: f64,
    pub step_seconds_ratio: f64,
    pub demo_step_seconds_ratio: f64,
    pub peak_rss_ratio: f64,
    pub rss_after_load_ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlamaCppCheck {
    pub adapter: ExportResult,
    pub llama_cpp: Option<String>,
    pub prompt_ids: Vec<u32>,
    /// llama.cpp's greedy tokens with the adapter on the Q8_0 file.
    pub ids: Vec<u32>,
    pub stopped_at_eog: bool,
    /// For each lorakit engine, how many of them, from the first, it agrees on (with random
    /// weights the top two logits are often nearly tied, so rounding differences tip them).
    pub same_greedy_prefix: Vec<(Engine, usize)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ScaleReport {
    pub schema: u32,
    pub date: String,
    pub git_commit: String,
    pub command: String,
    pub machine: Machine,
    pub load_average: LoadAverage,
    pub plan: ScalePlan,
    pub models: Vec<ModelInfo>,
    pub train: Vec<TrainCase>,
    pub growth: Vec<Growth>,
    /// Generation on the 1B Q8_0 file with the adapter trained on it.
    pub generate: Vec<(Engine, GenerateResult)>,
    pub llama_cpp: Option<LlamaCppCheck>,
    pub skipped: Vec<Skip>,
    pub seconds: f64,
}

const SMALL: &str = "smollm2-135m";
const LARGE: &str = "llama-3.2-1b-random";

/// `lora bench --scale`.
pub fn run(args: &Args) -> Result<()> {
    let vocab = args.vocab_gguf.clone().context(
        "--scale needs --vocab-gguf: a GGUF with the Llama 3 vocabulary (scripts/bench.sh --scale finds \
         llama.cpp's ggml-vocab-llama-bpe.gguf)",
    )?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("book/data/scale.json"));
    if out.extension().and_then(|e| e.to_str()) != Some("json") {
        bail!("--out {}: give a .json path (the table goes beside it as .md)", out.display())
    }
    let plan = ScalePlan {
        threads: args.threads,
        batch: args.batch,
        seq: args.seq.first().copied().unwrap_or(128),
        steps: args.steps.unwrap_or(3),
        warmup: args.warmup.unwrap_or(1),
        demo_steps_timed: args.demo_steps,
        lora: "r=8, alpha=16, dropout 0, q/k/v/o/gate/up/down of every layer".into(),
        prompt_tokens: 32,
        decode_tokens: 16,
    };
    let tmp = tempfile::tempdir()?;
    let work = args.work_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let started = Instant::now();
    let t = plan.threads;
    let mut report = ScaleReport {
        schema: 1,
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        git_commit: super::report::git_commit(),
        command: format!("lora {}", std::env::args().skip(1).collect::<Vec<_>>().join(" ")),
        machine: super::report::machine(),
        load_average: LoadAverage { before: load_averages()?, after: None, during: Vec::new(), quiet: false },
        plan: plan.clone(),
        models: Vec::new(),
        train: Vec::new(),
        growth: Vec::new(),
        generate: Vec::new(),
        llama_cpp: None,
        skipped: Vec::new(),
        seconds: 0.0,
    };

    eprintln!("== writing a model of Llama-3.2-1B's configuration with random weights (f32 and q8_0)");
    let files = vec![
        (Dtype::F32, work.join("llama-3.2-1b-random.f32.gguf")),
        (Dtype::Q8_0, work.join("llama-3.2-1b-random.q8_0.gguf")),
    ];
    let written: Vec<WrittenFile> = worker(t, &Job::RandomModel(RandomModel { vocab, files: files.clone(), seed: 1 }))?;
    let lora = LoraConfig::default();
    let small_path = lorakit::load::resolve(&args.model)?;
    let small_gguf = lorakit::tokenizer::read_gguf(&small_path)?;
    let small_cfg = Checkpoint::load_gguf(&small_path, DType::F32, &Device::Cpu)?.config;
    let large_cfg = llama_3_2_1b()?;
    let info = |id: &str, name: &str, cfg: &LlamaConfig, files: Vec<WrittenFile>| ModelInfo {
        id: id.into(),
        name: name.into(),
        params: cfg.num_parameters(),
        layers: cfg.num_hidden_layers,
        hidden_size: cfg.hidden_size,
        intermediate_size: cfg.intermediate_size,
        vocab_size: cfg.vocab_size,
        files,
        flops_per_step: train_step_flops(cfg, &lora, plan.batch, plan.seq),
    };
    let small_file = WrittenFile {
        storage: main_storage(&small_gguf),
        path: small_path.clone(),
        bytes: std::fs::metadata(&small_path)?.len(),
        seconds: 0.0,
    };
    report.models.push(info(SMALL, "SmolLM2-135M-Instruct", &small_cfg, vec![small_file]));
    report.models.push(info(LARGE, RANDOM_NAME, &large_cfg, written));

    let demo_data = PathBuf::from("data/extract/train.jsonl");
    let adapter = work.join("adapter-1b-q8_0");
    let cases = [
        (SMALL, small_path.clone(), BaseDtype::F32),
        (SMALL, small_path.clone(), BaseDtype::Q8_0),
        (LARGE, files[0].1.clone(), BaseDtype::F32),
        (LARGE, files[1].1.clone(), BaseDtype::Q8_0),
    ];
    for (id, path, base) in cases {
        let model = path.to_string_lossy().to_string();
        let name = serde_json::to_value(base)?;
        eprintln!("== {id}, {name} base: {} steps of batch {} × seq {}", plan.steps, plan.batch, plan.seq);
        let last = id == LARGE && base == BaseDtype::Q8_0;
        let fixed: TrainResult = worker(
            t,
            &Job::Train {
                model: model.clone(),
                batch: plan.batch,
                seq: plan.seq,
                steps: plan.steps,
                warmup: plan.warmup,
                adapter_out: last.then(|| adapter.clone()),
                init_adapter_out: None,
                base,
            },
        )?;
        eprintln!("== {id}, {name} base: the first {} steps of the demo", plan.demo_steps_timed);
        let demo: DemoStepsResult = worker(
            t,
            &Job::DemoSteps(DemoSteps { model, base, train_data: demo_data.clone(), steps: plan.demo_steps_timed }),
        )?;
        report.load_average.during.push((format!("{id}, {name}"), load_averages()?));
        report.train.push(TrainCase { model: id.into(), base, fixed, demo });
    }
    for base in [BaseDtype::F32, BaseDtype::Q8_0] {
        let find = |id: &str| report.train.iter().find(|c| c.model == id && c.base == base).expect("measured");
        let (s, l) = (find(SMALL), find(LARGE));
        report.growth.push(Growth {
            base,
            params_ratio: report.models[1].params as f64 / report.models[0].params as f64,
            flops_ratio: report.models[1].flops_per_step / report.models[0].flops_per_step,
            step_seconds_ratio: l.fixed.median_step_seconds / s.fixed.median_step_seconds,
            demo_step_seconds_ratio: l.demo.median_step_seconds / s.demo.median_step_seconds,
            peak_rss_ratio: l.fixed.process_peak_rss_mib / s.fixed.process_peak_rss_mib,
            rss_after_load_ratio: l.fixed.rss_after_load_mib.unwrap_or(f64::NAN)
                / s.fixed.rss_after_load_mib.unwrap_or(f64::NAN),
        });
    }

    let q8 = files[1].1.clone();
    let prompt = bench_prompt(&q8, plan.prompt_tokens)?;
    for engine in [Engine::Lorakit, Engine::LorakitQuantized] {
        eprintln!("== generating on the 1B q8_0 file with the adapter: {}", engine.label(Dtype::Q8_0));
        let job = Job::Generate {
            model: q8.clone(),
            dtype: Dtype::Q8_0,
            prompt: prompt.clone(),
            decode: plan.decode_tokens,
            reps: 1,
            engine,
            adapter: Some(adapter.clone()),
        };
        let r: GenerateResult = worker(t, &job)?;
        report.generate.push((engine, r));
    }

    eprintln!("== the adapter as GGUF, applied by llama.cpp to the q8_0 file");
    let exported: ExportResult = worker(
        t,
        &Job::ExportAdapter {
            model: q8.to_string_lossy().to_string(),
            adapter: adapter.clone(),
            out: work.join("adapter-1b-q8_0.gguf"),
        },
    )?;
    match &args.llama_dir {
        Some(dir) => match llama_greedy(dir, t, &q8, &exported.path, &prompt, plan.decode_tokens) {
            Ok((ids, eog, version)) => {
                let same = report
                    .generate
                    .iter()
                    .map(|(e, r)| (*e, r.ids.iter().zip(&ids).take_while(|(a, b)| a == b).count()))
                    .collect();
                report.llama_cpp = Some(LlamaCppCheck {
                    adapter: exported,
                    llama_cpp: version,
                    prompt_ids: prompt.clone(),
                    ids,
                    stopped_at_eog: eog,
                    same_greedy_prefix: same,
                });
            }
            Err(e) => {
                eprintln!("bench: llama.cpp failed: {e:#}");
                report.skipped.push(Skip { side: "llama.cpp".into(), reason: format!("failed: {e:#}") });
            }
        },
        None => report.skipped.push(Skip {
            side: "llama.cpp".into(),
            reason: args.llama_skip_reason.clone().unwrap_or_else(|| "no --llama-dir given".into()),
        }),
    }

    let after = load_averages()?;
    report.load_average.quiet =
        report.load_average.before[0] < 1.5 && !report.load_average.during.iter().any(|(_, l)| l[0] > 3.0);
    report.load_average.after = Some(after);
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let md = markdown(&report);
    lorakit::io::atomic_write(&out, (serde_json::to_string_pretty(&report)? + "\n").as_bytes())?;
    lorakit::io::atomic_write(&out.with_extension("md"), md.as_bytes())?;
    eprintln!("{md}");
    eprintln!("wrote {} and {}", out.display(), out.with_extension("md").display());
    Ok(())
}

/// The storage type holding most of a GGUF file's numbers, by name ("q4_1").
fn main_storage(content: &candle_core::quantized::gguf_file::Content) -> String {
    let mut count: HashMap<String, usize> = HashMap::new();
    for info in content.tensor_infos.values() {
        *count.entry(format!("{:?}", info.ggml_dtype).to_lowercase()).or_default() += info.shape.elem_count();
    }
    count.into_iter().max_by_key(|(_, n)| *n).map(|(name, _)| name).unwrap_or_default()
}

/// llama.cpp's greedy continuation of `prompt` on `model` with the GGUF adapter `lora`
/// (tools/llama/score.mjs): the ids, whether it stopped at end-of-generation, its release.
fn llama_greedy(
    dir: &Path,
    threads: usize,
    model: &Path,
    lora: &Path,
    prompt: &[u32],
    n: usize,
) -> Result<(Vec<u32>, bool, Option<String>)> {
    let script = Path::new(TOOLS_DIR).join("llama/score.mjs");
    let ids: Vec<String> = prompt.iter().map(|i| i.to_string()).collect();
    let mut cmd = Command::new("node");
    cmd.arg(&script).arg("--model").arg(model).arg("--lora").arg(lora);
    cmd.args(["--prompt-ids", &ids.join(","), "--greedy", &n.to_string()]);
    cmd.env("LORA_LLAMA_DIR", dir);
    let v: serde_json::Value = run_json(cmd, threads, &script.display().to_string())?;
    let ids = v["ids"]
        .as_array()
        .context("score.mjs printed no ids")?
        .iter()
        .filter_map(|x| x.as_u64())
        .map(|x| x as u32)
        .collect();
    Ok((ids, v["stopped_at_eog"].as_bool().unwrap_or(false), v["llama_cpp"].as_str().map(str::to_string)))
}

fn markdown(r: &ScaleReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let p = &r.plan;
    let _ = writeln!(
        s,
        "Measured {} on {} ({} cores, {:.0} GiB), {} threads; load average before {:.2}{}.\n",
        r.date,
        super::report::cpu_label(&r.machine),
        r.machine.cores,
        r.machine.ram_gib,
        p.threads,
        r.load_average.before[0],
        if r.load_average.quiet { "" } else { " (busy: the times are unreliable)" }
    );
    let _ = writeln!(
        s,
        "| model | base | step b{}×s{} (s) | tokens/s | GFLOP/s | RSS after load (MiB) | peak RSS (MiB) | demo step (s) | demo, projected (min) |",
        p.batch, p.seq
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in &r.train {
        let base = serde_json::to_value(c.base).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {base} | {:.2} | {:.0} | {:.1} | {:.0} | {:.0} | {:.2} | {:.1} |",
            c.model,
            c.fixed.median_step_seconds,
            c.fixed.tokens_per_second,
            c.fixed.gflops_per_second,
            c.fixed.rss_after_load_mib.unwrap_or(f64::NAN),
            c.fixed.process_peak_rss_mib,
            c.demo.median_step_seconds,
            c.demo.projected_train_seconds / 60.0,
        );
    }
    let _ = writeln!(s, "\n| base | params ×| FLOPs × | step time × | demo step × | peak RSS × |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    for g in &r.growth {
        let base = serde_json::to_value(g.base).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let _ = writeln!(
            s,
            "| {base} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            g.params_ratio, g.flops_ratio, g.step_seconds_ratio, g.demo_step_seconds_ratio, g.peak_rss_ratio
        );
    }
    if let Some(l) = &r.llama_cpp {
        let _ = writeln!(
            s,
            "\nllama.cpp ({}) loaded the {}-byte adapter on the q8_0 file and decoded {} greedy tokens; {}.",
            l.llama_cpp.as_deref().unwrap_or("?"),
            l.adapter.bytes,
            l.ids.len(),
            l.same_greedy_prefix
                .iter()
                .map(|(e, n)| format!("{} agrees on the first {n}", e.label(Dtype::Q8_0)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use lorakit::model::config::RopeScaling;

    #[test]
    fn the_1b_configuration_is_llama_3_2_1b() {
        let c = llama_3_2_1b().unwrap();
        assert_eq!((c.hidden_size, c.intermediate_size, c.num_hidden_layers), (2048, 8192, 16));
        assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (32, 8, 64));
        assert_eq!(c.vocab_size, 128_256);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.rope_theta, 500_000.0);
        match &c.rope_scaling {
            RopeScaling::Llama3(s) => assert_eq!((s.factor, s.original_max_position_embeddings), (32.0, 8192)),
            other => panic!("rope scaling {other:?}"),
        }
        // Meta's model card: 1.23B parameters (the embedding counted once, tied).
        assert_eq!(c.num_parameters(), 1_235_814_400);
        assert_eq!(c.eos_token_ids, [128_001, 128_008, 128_009]);
    }
}
