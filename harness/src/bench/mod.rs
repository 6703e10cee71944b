//! `lora bench`: what training, exporting and generating cost with candle, measured side by
//! side with the tools a reader would otherwise use (PyTorch + PEFT for training, llama.cpp
//! for generation) in the same run on the same machine. `scripts/bench.sh` sets up both and
//! runs this; the results go to a JSON file and a markdown table for the book.
//!
//! Each measurement runs in its own process (see [`jobs`]), one after the other, never two
//! at once: a 2-core machine has no room for a neighbour. The worker is the running binary
//! started again as `<exe> bench --worker JOB`, so a binary that calls [`main`] must route
//! that command line back here (the `lora` CLI does).

pub mod flops;
pub mod jobs;
pub mod report;
pub mod scale;

use anyhow::{Context, Result, bail};
use jobs::{Engine, ExportResult, GemmShape, GenerateResult, Job};
use lorakit::fetch::DEFAULT_MODEL;
use report::{GenerateRow, LlamaRun, Report, Rounds, Skip, TrainRow};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where tools/bench/torch_train.py and tools/llama/bench.mjs live (the repository's tools/).
pub(crate) const TOOLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools");

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One training step at sequence 16, tiny GEMMs, a q8_0 export and a 4-token generation:
    /// checks that the benchmark runs (for tests), measures nothing worth reporting.
    #[arg(long)]
    pub smoke: bool,
    /// Results file; a markdown table is written beside it (same name, .md).
    /// Default: book/data/bench.json, or target/bench-smoke/bench.json with --smoke.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Python of a virtualenv with tools/bench/requirements.txt: runs the PyTorch + PEFT side.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// node-llama-cpp's install directory (`bash scripts/llama.sh path`): runs the llama.cpp side.
    #[arg(long)]
    pub llama_dir: Option<PathBuf>,
    /// Why the PyTorch side is missing (recorded in the results), when --python is not given.
    #[arg(long)]
    pub torch_skip_reason: Option<String>,
    /// Why the llama.cpp side is missing (recorded in the results), when --llama-dir is not given.
    #[arg(long)]
    pub llama_skip_reason: Option<String>,
    /// The base model (a GGUF file or `smollm2-135m`).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Threads for every engine.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Training sequence lengths (default 128,256; 16 with --smoke).
    #[arg(long, value_delimiter = ',')]
    pub seq: Vec<usize>,
    /// Rows per training step.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Timed training steps per process (default 4; 1 with --smoke).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Untimed training steps first, in each process (default 1; 0 with --smoke).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Training rounds per sequence length, each a fresh process per engine, the engines
    /// alternating (candle, PyTorch, candle, …) so that a slow minute hits both (default 5; 1
    /// with --smoke).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Also time PyTorch under torch.compile (a third engine in each round).
    #[arg(long)]
    pub torch_compile: bool,
    /// Measure nothing: rewrite the results file (--out) in the current layout and its
    /// markdown beside it.
    #[arg(long)]
    pub render: bool,
    /// Keep the exported GGUFs and adapter here (default: a temporary folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Measure how training grows with the model instead: SmolLM2 against a model with
    /// Llama-3.2-1B's configuration and random weights, f32 and q8_0 bases (book/data/scale.json).
    #[arg(long)]
    pub scale: bool,
    /// With --scale: a GGUF holding the Llama 3 vocabulary for the 1B model (llama.cpp's
    /// models/ggml-vocab-llama-bpe.gguf; `bash scripts/llama.sh vocab llama-bpe` prints its path).
    #[arg(long)]
    pub vocab_gguf: Option<PathBuf>,
    /// With --scale: optimizer steps of the README's demo timed on each model and base.
    #[arg(long, default_value_t = 3)]
    pub demo_steps: usize,
    /// Internal: run one measurement (a JSON job) and print its result.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
}

/// What `lora bench` runs; the settings recorded with the results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub smoke: bool,
    pub model: String,
    pub threads: usize,
    pub batch: usize,
    pub seqs: Vec<usize>,
    pub steps: usize,
    pub warmup: usize,
    /// Fresh processes per engine and sequence length, alternating between the engines.
    #[serde(default = "one")]
    pub rounds: usize,
    /// Whether PyTorch also ran under torch.compile.
    #[serde(default)]
    pub torch_compile: bool,
    pub lora: String,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    pub generate_reps: usize,
    pub export_dtypes: Vec<Dtype>,
}

impl Plan {
    fn new(a: &Args) -> Result<Self> {
        let smoke = a.smoke;
        let seqs = if a.seq.is_empty() { if smoke { vec![16] } else { vec![128, 256] } } else { a.seq.clone() };
        let plan = Self {
            smoke,
            model: a.model.clone(),
            threads: a.threads,
            batch: a.batch,
            seqs,
            steps: a.steps.unwrap_or(if smoke { 1 } else { 4 }),
            warmup: a.warmup.unwrap_or(if smoke { 0 } else { 1 }),
            rounds: a.rounds.unwrap_or(if smoke { 1 } else { 5 }),
            torch_compile: a.torch_compile,
            lora: "r=8, alpha=16, dropout 0, q/k/v/o/gate/up/down of every layer, AdamW lr 1e-4, clip 1.0".into(),
            prompt_tokens: if smoke { 8 } else { 128 },
            decode_tokens: if smoke { 4 } else { 64 },
            generate_reps: if smoke { 1 } else { 3 },
            export_dtypes: if smoke { vec![Dtype::Q8_0] } else { vec![Dtype::F16, Dtype::Q8_0] },
        };
        if plan.threads == 0
            || plan.batch == 0
            || plan.steps == 0
            || plan.rounds == 0
            || plan.seqs.iter().any(|&s| s < 2)
        {
            bail!("--threads, --batch, --steps and --rounds must be at least 1 and every --seq at least 2")
        }
        Ok(plan)
    }
}

/// `lora bench`.
pub fn main(args: &Args) -> Result<()> {
    if let Some(job) = &args.worker {
        return jobs::run_worker(job);
    }
    if args.scale {
        return scale::run(args);
    }
    let plan = Plan::new(args)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if plan.smoke { "target/bench-smoke/bench.json" } else { "book/data/bench.json" })
    });
    if out.extension().and_then(|e| e.to_str()) != Some("json") {
        bail!("--out {}: give a .json path (the table goes beside it as .md)", out.display())
    }
    if args.render {
        let file = report::BenchFile::read(&out)?;
        file.write(&out)?;
        eprintln!("rewrote {} and {}", out.display(), out.with_extension("md").display());
        return Ok(());
    }
    if out.exists() {
        // The other hosts' records are kept: a file that cannot be read fails now, not after
        // the measurements.
        report::BenchFile::read(&out)?;
    }
    let torch =
        Side::new(args.python.clone(), args.torch_skip_reason.clone(), "--python", "tools/bench/torch_train.py")?;
    let llama =
        Side::new(args.llama_dir.clone(), args.llama_skip_reason.clone(), "--llama-dir", "tools/llama/bench.mjs")?;
    let tmp = tempfile::tempdir()?;
    let work = args.work_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let model_path = lorakit::load::resolve(&plan.model)?;
    if model_path.extension().and_then(|e| e.to_str()) != Some("gguf") {
        bail!("--model {}: the benchmark needs a GGUF base model (PyTorch reads the same file)", model_path.display())
    }
    let model = model_path.to_string_lossy().to_string();
    let started = std::time::Instant::now();

    let mut report = Report::start(&plan, std::env::args().skip(1).collect())?;
    eprintln!("== load average before: {:?}", report.load_average.before);

    eprintln!("== GEMM peak (candle f32 matmul, {} threads)", plan.threads);
    let shapes: Vec<GemmShape> = worker(plan.threads, &Job::Gemm { smoke: plan.smoke })?;
    report.set_gemm(shapes);

    let adapter = work.join("adapter");
    // PyTorch's engines, each dropped for the rest of the run at its first failure.
    let mut torch_engines: Vec<bool> = match torch.path {
        Some(_) if plan.torch_compile => vec![false, true],
        Some(_) => vec![false],
        None => vec![],
    };
    for (i, &seq) in plan.seqs.iter().enumerate() {
        let init = work.join(format!("adapter-init-{seq}"));
        let mut rounds = Rounds::default();
        for round in 0..plan.rounds {
            eprintln!("== training, batch {} × seq {seq}, round {}/{}", plan.batch, round + 1, plan.rounds);
            // The adapter of the first length's run is what the export and generation use;
            // the first round's initial adapter is where every PyTorch run starts.
            let job = Job::Train {
                model: model.clone(),
                batch: plan.batch,
                seq,
                steps: plan.steps,
                warmup: plan.warmup,
                adapter_out: (i == 0 && round == 0).then(|| adapter.clone()),
                init_adapter_out: (round == 0).then(|| init.clone()),
                base: Default::default(),
            };
            rounds.candle.push(worker(plan.threads, &job)?);
            report.sample_load(&format!("candle training, seq {seq}, round {}", round + 1))?;
            if let Some(python) = &torch.path {
                let mut failed = Vec::new();
                for &compiled in &torch_engines {
                    let side = if compiled { "pytorch+peft, torch.compile" } else { "pytorch+peft" };
                    match optional(run_torch(python, &plan, &model_path, seq, &init, compiled), side, &mut report) {
                        Some(r) if compiled => rounds.torch_compile.push(r),
                        Some(r) => rounds.torch.push(r),
                        None => failed.push(compiled),
                    }
                    report.sample_load(&format!("{side} training, seq {seq}, round {}", round + 1))?;
                }
                torch_engines.retain(|c| !failed.contains(c));
            }
        }
        report.train.push(TrainRow::new(seq, rounds, report.gemm_peak_gflops)?);
    }
    if let Some(reason) = &torch.skip {
        report.skipped.push(Skip { side: "pytorch+peft".into(), reason: reason.clone() });
    }

    let prompt = bench_prompt(&model_path, plan.prompt_tokens)?;
    for &dtype in &plan.export_dtypes {
        let file = work.join(format!("merged-{}.gguf", dtype.name()));
        eprintln!("== merged GGUF export, {}", dtype.name());
        let job = Job::Export { model: model.clone(), adapter: adapter.clone(), dtype, out: file.clone() };
        let exported: ExportResult = worker(plan.threads, &job)?;
        report.export.push(exported);
        eprintln!(
            "== generation on {}: {} prompt tokens, {} decoded",
            file.display(),
            prompt.len(),
            plan.decode_tokens
        );
        let generate = |engine| Job::Generate {
            model: file.clone(),
            dtype,
            prompt: prompt.clone(),
            decode: plan.decode_tokens,
            reps: plan.generate_reps,
            engine,
            adapter: None,
        };
        // lorakit quantized only where the file is (an F16 file has no block type to use).
        let engines: &[Engine] = match dtype {
            Dtype::F32 | Dtype::F16 => &[Engine::Lorakit, Engine::CandleQuantized],
            Dtype::Q8_0 => &[Engine::Lorakit, Engine::LorakitQuantized, Engine::CandleQuantized],
        };
        let mut runs = Vec::new();
        for &engine in engines {
            let r: GenerateResult = worker(plan.threads, &generate(engine))?;
            runs.push((engine, r));
        }
        let mut llama_runs = Vec::new();
        if let Some(dir) = &llama.path {
            // The plan's threads, and one (see GenerateRow::new for why both).
            let threads: Vec<usize> = if plan.threads > 1 { vec![plan.threads, 1] } else { vec![1] };
            for t in threads {
                if let Some(run) = optional(run_llama(dir, &plan, &file, &prompt, t), "llama.cpp", &mut report) {
                    llama_runs.push(run);
                }
            }
        }
        report.sample_load(&format!("generation, {}", dtype.name()))?;
        report.generate.push(GenerateRow::new(dtype, runs, llama_runs));
    }
    if let Some(reason) = &llama.skip {
        report.skipped.push(Skip { side: "llama.cpp".into(), reason: reason.clone() });
    }
    report.finish(started.elapsed().as_secs_f64())?;
    let file = report::BenchFile::write_host(&out, report)?;
    eprintln!("{}", file.markdown());
    eprintln!("wrote {} and {}", out.display(), out.with_extension("md").display());
    Ok(())
}

/// A comparison side's result; its failure is recorded (and shown) rather than ending the run.
fn optional<T>(r: Result<T>, side: &str, report: &mut Report) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("bench: the {side} side failed: {e:#}");
            report.skipped.push(Skip { side: side.into(), reason: format!("failed: {e:#}") });
            None
        }
    }
}

fn one() -> usize {
    1
}

/// An optional comparison side: its tool, or why it is skipped.
struct Side {
    path: Option<PathBuf>,
    skip: Option<String>,
}

impl Side {
    fn new(path: Option<PathBuf>, reason: Option<String>, flag: &str, script: &str) -> Result<Self> {
        if let Some(p) = &path {
            if !p.exists() {
                bail!("{flag} {}: not found", p.display())
            }
            return Ok(Self { path, skip: None });
        }
        let skip =
            reason.unwrap_or_else(|| format!("not run: no {flag} given ({script}; scripts/bench.sh sets it up)"));
        Ok(Self { path: None, skip: Some(skip) })
    }
}

/// The merged-GGUF storage types benchmarked (a serde mirror of [`lorakit::export::ExportDtype`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    F32,
    F16,
    Q8_0,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
        }
    }

    pub fn export(self) -> lorakit::export::ExportDtype {
        match self {
            Self::F32 => lorakit::export::ExportDtype::F32,
            Self::F16 => lorakit::export::ExportDtype::F16,
            Self::Q8_0 => lorakit::export::ExportDtype::Q8_0,
        }
    }
}

/// Run one job in a fresh `lora bench --worker` process with the plan's thread count.
pub(crate) fn worker<T: DeserializeOwned>(threads: usize, job: &Job) -> Result<T> {
    let exe = std::env::current_exe().context("cannot find the running lora executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "--worker", &serde_json::to_string(job)?]);
    run_json(cmd, threads, "lora bench worker")
}

/// tools/bench/torch_train.py on the same model and batch, from candle's initial adapter `init`.
fn run_torch(
    python: &Path,
    plan: &Plan,
    model: &Path,
    seq: usize,
    init: &Path,
    compiled: bool,
) -> Result<serde_json::Value> {
    let script = Path::new(TOOLS_DIR).join("bench/torch_train.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg("--gguf").arg(model).arg("--init-adapter").arg(init);
    if compiled {
        cmd.arg("--compile");
    }
    for (flag, v) in [
        ("--seq", seq),
        ("--batch", plan.batch),
        ("--steps", plan.steps),
        ("--warmup", plan.warmup),
        ("--threads", plan.threads),
    ] {
        cmd.args([flag, &v.to_string()]);
    }
    // No progress bars or deprecation notes from transformers in the log.
    cmd.env("TQDM_DISABLE", "1").env("TRANSFORMERS_VERBOSITY", "error").env("PYTHONWARNINGS", "ignore::FutureWarning");
    run_json(cmd, plan.threads, &script.display().to_string())
}

fn run_llama(dir: &Path, plan: &Plan, model: &Path, prompt: &[u32], threads: usize) -> Result<LlamaRun> {
    let script = Path::new(TOOLS_DIR).join("llama/bench.mjs");
    let ids: Vec<String> = prompt.iter().map(|i| i.to_string()).collect();
    let mut cmd = Command::new("node");
    cmd.arg(&script).arg("--model").arg(model).args(["--prompt-ids", &ids.join(",")]);
    for (flag, v) in [("--decode", plan.decode_tokens), ("--reps", plan.generate_reps), ("--threads", threads)] {
        cmd.args([flag, &v.to_string()]);
    }
    cmd.env("LORA_LLAMA_DIR", dir);
    let raw: serde_json::Value = run_json(cmd, plan.threads, &script.display().to_string())?;
    let llama_cpp = raw.get("llama_cpp").and_then(|v| v.as_str()).map(str::to_string);
    let result = serde_json::from_value(raw).context("bench.mjs's result")?;
    Ok(LlamaRun { threads, result, llama_cpp })
}

/// Run `cmd` (stderr shown as it goes) and parse the JSON object on the last line of its stdout.
pub(crate) fn run_json<T: DeserializeOwned>(mut cmd: Command, threads: usize, what: &str) -> Result<T> {
    let n = threads.to_string();
    for var in ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
        cmd.env(var, &n);
    }
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status)
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("{what} printed no result JSON (last line: {last:?})"))
}

/// A prompt of exactly `n` tokens: an ordinary English paragraph, repeated as needed (the
/// base model is a GGUF file: the built-in one, or one given with --model).
pub(crate) fn bench_prompt(model: &Path, n: usize) -> Result<Vec<u32>> {
    const TEXT: &str = "The customer wrote that the order of two blue mugs and a teapot should reach Oslo by \
        Friday, and asked whether the shop could wrap the teapot as a present. Write the order as JSON \
        with the fields item, quantity, colour, city and deadline, and say nothing else. ";
    let tok = lorakit::tokenizer::tokenizer_from_gguf(&lorakit::tokenizer::read_gguf(model)?)
        .with_context(|| format!("{}: the benchmark prompt needs the model's tokenizer", model.display()))?;
    let once = tok.encode(TEXT, false).map_err(anyhow::Error::msg)?.get_ids().to_vec();
    if once.is_empty() {
        bail!("the benchmark prompt tokenized to nothing")
    }
    Ok(once.iter().copied().cycle().take(n).collect())
}
