//! The benchmark's record: machine, versions, load, every measurement and the ratios, as JSON
//! and as the markdown table the book's efficiency chapter includes.

use super::Dtype;
use super::Plan;
use super::jobs::{Engine, ExportResult, GemmShape, GenerateResult, TrainResult};
use crate::experiments::record::load_averages as load_average;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

const REPO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub date: String,
    pub git_commit: String,
    pub command: String,
    pub machine: Machine,
    pub versions: Versions,
    /// 1-, 5- and 15-minute load averages. Above ~1.5 on this 2-core machine other work was
    /// competing for the cores and the numbers understate both sides.
    pub load_average: LoadAverage,
    pub plan: Plan,
    pub gemm: Vec<GemmShape>,
    /// The best of the GEMM shapes: the peak MFU is measured against.
    pub gemm_peak_gflops: f64,
    pub train: Vec<TrainRow>,
    pub export: Vec<ExportResult>,
    pub generate: Vec<GenerateRow>,
    pub skipped: Vec<Skip>,
    pub seconds: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    /// The vector extensions the CPU reports that matter for these kernels (hosts sold under
    /// one model name differ here, and so do their speeds).
    #[serde(default)]
    pub isa: Vec<String>,
    pub cores: usize,
    pub ram_gib: f64,
    pub os: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Versions {
    pub lorakit: String,
    pub candle: String,
    pub rustc: String,
    /// `dev` (opt-level 2, dependencies 3) or `release`.
    pub profile: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoadAverage {
    pub before: [f64; 3],
    pub after: Option<[f64; 3]>,
    /// The load after each phase.
    pub during: Vec<(String, [f64; 3])>,
    /// Whether the 1-minute load was below 1.5 before the run and below 3 (the benchmark's
    /// own 2 plus a margin) after every phase.
    pub quiet: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TrainRow {
    pub seq: usize,
    pub candle: TrainResult,
    pub torch: Option<serde_json::Value>,
    /// candle ÷ PyTorch tokens per second (above 1: candle is faster).
    pub tokens_per_second_ratio: Option<f64>,
    /// candle ÷ PyTorch peak RSS (below 1: candle uses less).
    pub peak_rss_ratio: Option<f64>,
    pub mfu_candle: f64,
    pub mfu_torch: Option<f64>,
    /// |candle − PyTorch| of the first step's loss: small when both trained the same thing.
    pub first_loss_diff: Option<f64>,
}

impl TrainRow {
    /// `torch` is the JSON tools/bench/torch_train.py printed: a [`TrainResult`] plus versions.
    pub fn new(candle: TrainResult, torch: Option<serde_json::Value>, peak_gflops: f64) -> Result<Self> {
        let mut parsed: Option<TrainResult> =
            torch.clone().map(serde_json::from_value).transpose().context("torch_train.py's result")?;
        if let Some(t) = parsed.as_mut() {
            // The same step, so the same FLOP count.
            t.flops_per_step = candle.flops_per_step;
            t.gflops_per_second = candle.flops_per_step / t.median_step_seconds / 1e9;
        }
        let mfu = |r: &TrainResult| r.gflops_per_second / peak_gflops;
        Ok(Self {
            seq: candle.seq,
            tokens_per_second_ratio: parsed.as_ref().map(|t| candle.tokens_per_second / t.tokens_per_second),
            peak_rss_ratio: parsed.as_ref().map(|t| candle.peak_rss_mib / t.peak_rss_mib),
            mfu_candle: mfu(&candle),
            mfu_torch: parsed.as_ref().map(mfu),
            first_loss_diff: parsed.as_ref().map(|t| (candle.first_loss - t.first_loss).abs()),
            candle,
            torch,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GenerateRow {
    pub dtype: Dtype,
    /// Every candle engine that ran on the file, in the order of the table.
    pub engines: Vec<EngineRun>,
    /// llama.cpp on the same file: with the plan's threads, and with one thread (see
    /// [`GenerateRow::new`]).
    pub llama_cpp: Vec<LlamaRun>,
}

/// One candle engine's generation on one file, compared with llama.cpp on the same file.
#[derive(Debug, Serialize, Deserialize)]
pub struct EngineRun {
    pub engine: Engine,
    pub result: GenerateResult,
    /// This engine ÷ llama.cpp's faster setting.
    pub prefill_ratio: Option<f64>,
    pub decode_ratio: Option<f64>,
    /// How many greedy tokens, from the first, this engine and llama.cpp agree on.
    pub same_greedy_prefix: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LlamaRun {
    pub threads: usize,
    pub result: GenerateResult,
    /// The llama.cpp release node-llama-cpp ships.
    pub llama_cpp: Option<String>,
}

impl GenerateRow {
    /// The ratios compare with llama.cpp's faster run of each phase: through node-llama-cpp
    /// on 2 cores, 2 decoding threads spin at ggml's barrier while node's own threads hold a
    /// core (measured: 68 tokens/s with 2 threads, 126 with 1), which is the harness's cost,
    /// not llama.cpp's.
    pub fn new(dtype: Dtype, runs: Vec<(Engine, GenerateResult)>, llama_cpp: Vec<LlamaRun>) -> Self {
        let best = |f: fn(&GenerateResult) -> f64| llama_cpp.iter().map(|l| f(&l.result)).reduce(f64::max);
        let best_prefill = best(|g| g.prefill_tokens_per_second);
        let best_decode = best(|g| g.decode_tokens_per_second);
        let reference_ids = llama_cpp.first().map(|l| l.result.ids.clone());
        let engines = runs
            .into_iter()
            .map(|(engine, result)| EngineRun {
                engine,
                prefill_ratio: best_prefill.map(|b| result.prefill_tokens_per_second / b),
                decode_ratio: best_decode.map(|b| result.decode_tokens_per_second / b),
                same_greedy_prefix: reference_ids
                    .as_ref()
                    .map(|l| result.ids.iter().zip(l).take_while(|(a, b)| a == b).count()),
                result,
            })
            .collect();
        Self { dtype, engines, llama_cpp }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Skip {
    pub side: String,
    pub reason: String,
}

impl Report {
    pub fn start(plan: &Plan, args: Vec<String>) -> Result<Self> {
        Ok(Self {
            schema: 2,
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            git_commit: git_commit(),
            command: format!("lora {}", args.join(" ")),
            machine: machine(),
            versions: Versions {
                lorakit: lorakit::VERSION.into(),
                candle: locked_version("candle-core").unwrap_or_else(|| "unknown".into()),
                rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
                profile: if cfg!(debug_assertions) { "dev".into() } else { "release".into() },
            },
            load_average: LoadAverage { before: load_average()?, after: None, during: Vec::new(), quiet: false },
            plan: plan.clone(),
            gemm: Vec::new(),
            gemm_peak_gflops: f64::NAN,
            train: Vec::new(),
            export: Vec::new(),
            generate: Vec::new(),
            skipped: Vec::new(),
            seconds: 0.0,
        })
    }

    pub fn set_gemm(&mut self, shapes: Vec<GemmShape>) {
        self.gemm_peak_gflops = shapes.iter().map(|s| s.gflops).fold(f64::NAN, f64::max);
        self.gemm = shapes;
    }

    pub fn sample_load(&mut self, phase: &str) -> Result<()> {
        self.load_average.during.push((phase.to_string(), load_average()?));
        Ok(())
    }

    pub fn finish(&mut self, seconds: f64) -> Result<()> {
        let after = load_average()?;
        // The benchmark itself keeps both cores busy, so the 1-minute load during the run
        // sits near 2; above 3 something else competed.
        let busy_during = self.load_average.during.iter().any(|(_, l)| l[0] > 3.0);
        self.load_average.quiet = self.load_average.before[0] < 1.5 && !busy_during;
        self.load_average.after = Some(after);
        self.seconds = seconds;
        Ok(())
    }

    /// The JSON at `path` and the markdown table beside it, each written atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        lorakit::io::atomic_write(path, (serde_json::to_string_pretty(self)? + "\n").as_bytes())?;
        lorakit::io::atomic_write(&path.with_extension("md"), self.markdown().as_bytes())
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let la = |l: &[f64; 3]| format!("{:.2}, {:.2}, {:.2}", l[0], l[1], l[2]);
        let _ = writeln!(s, "<!-- written by `{}`; do not edit -->", self.command);
        let _ = writeln!(
            s,
            "Machine: {}, {} cores, {:.0} GiB RAM, {}; {} threads per engine. {} (commit {}). \
             candle {} ({} build), {}.\n",
            cpu_label(m),
            m.cores,
            m.ram_gib,
            m.os,
            self.plan.threads,
            self.date,
            self.git_commit,
            self.versions.candle,
            self.versions.profile,
            torch_versions(self)
        );
        let after = self.load_average.after.as_ref().map(la).unwrap_or_else(|| "?".into());
        let _ = writeln!(
            s,
            "Load average (1, 5, 15 min) before: {}; after: {}; highest 1-minute value after a phase: {:.2}.{}\n",
            la(&self.load_average.before),
            after,
            self.load_average.during.iter().map(|(_, l)| l[0]).fold(f64::NAN, f64::max),
            if self.load_average.quiet {
                ""
            } else {
                " **The machine was busy with other work: these numbers are unreliable.**"
            }
        );
        let _ = writeln!(
            s,
            "**Training** ({}; batch {}, median of {} steps after {} warm-up; MFU against candle's measured f32 GEMM peak of {:.0} GFLOP/s):\n",
            self.plan.lora, self.plan.batch, self.plan.steps, self.plan.warmup, self.gemm_peak_gflops
        );
        s.push_str("| seq | candle tok/s | PyTorch+PEFT tok/s | ratio | candle peak RSS | PyTorch peak RSS | MFU candle | MFU PyTorch | CPU s/step candle / PyTorch | first-loss diff |\n");
        s.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in &self.train {
            let t: Option<TrainResult> = r.torch.clone().and_then(|v| serde_json::from_value(v).ok());
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {} | {:.0} MiB | {} | {:.0}% | {} | {} / {} | {} |",
                r.seq,
                r.candle.tokens_per_second,
                opt(t.as_ref().map(|t| t.tokens_per_second), |x| format!("{x:.0}")),
                opt(r.tokens_per_second_ratio, |x| format!("{x:.2}×")),
                r.candle.peak_rss_mib,
                opt(t.as_ref().map(|t| t.peak_rss_mib), |x| format!("{x:.0} MiB")),
                100.0 * r.mfu_candle,
                opt(r.mfu_torch, |x| format!("{:.0}%", 100.0 * x)),
                opt(r.candle.median_step_cpu_seconds, |x| format!("{x:.1}")),
                opt(t.as_ref().and_then(|t| t.median_step_cpu_seconds), |x| format!("{x:.1}")),
                opt(r.first_loss_diff, |x| format!("{x:.1e}")),
            );
        }
        let _ = writeln!(
            s,
            "\n**Generation** on the merged GGUF ({} prompt tokens in one batch, then {} greedy tokens one by one; \
             median of {} runs after a warm-up). lorakit's model in f32 (the file dequantized, as training uses it) and \
             with `--quantize` in the file's own block type; candle-transformers' `quantized_llama`; llama.cpp:\n",
            self.plan.prompt_tokens, self.plan.decode_tokens, self.plan.generate_reps
        );
        s.push_str("| file | engine | prefill tok/s | decode tok/s | prefill vs llama.cpp | decode vs llama.cpp | greedy tokens as llama.cpp |\n");
        s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        let ratio = |x: Option<f64>| opt(x, |x| format!("{x:.2}×"));
        for g in &self.generate {
            let name = g.dtype.name();
            for e in &g.engines {
                let r = &e.result;
                let _ = writeln!(
                    s,
                    "| {name} | {} | {:.0} | {:.1} | {} | {} | {} |",
                    e.engine.label(g.dtype),
                    r.prefill_tokens_per_second,
                    r.decode_tokens_per_second,
                    ratio(e.prefill_ratio),
                    ratio(e.decode_ratio),
                    opt(e.same_greedy_prefix, |n| format!("{n}/{}", r.ids.len())),
                );
            }
            for l in &g.llama_cpp {
                let _ = writeln!(
                    s,
                    "| {name} | llama.cpp, {} thread{} | {:.0} | {:.1} | — | — | — |",
                    l.threads,
                    if l.threads == 1 { "" } else { "s" },
                    l.result.prefill_tokens_per_second,
                    l.result.decode_tokens_per_second
                );
            }
        }
        s.push_str(
            "\nllama.cpp runs through node-llama-cpp, once with the same threads as candle and once with one: on \
             2 cores its 2 decoding threads spin at ggml's barrier while node's own threads hold a core, so one \
             thread decodes faster there. The ratios compare with llama.cpp's faster run of each phase.\n",
        );
        s.push_str(
            "\nThe last column counts the greedy tokens, from the first, that the engine and llama.cpp agree on: \
             engines that round differently (f32 against quantized activations) part ways where two candidate \
             tokens are nearly tied.\n",
        );
        s.push_str("\n**Merged-GGUF export** (`lora export --format gguf`):\n\n| dtype | seconds | peak RSS | file size |\n| --- | ---: | ---: | ---: |\n");
        for e in &self.export {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.0} MiB | {:.0} MiB |",
                e.dtype.name(),
                e.seconds,
                e.peak_rss_mib,
                e.bytes as f64 / 1048576.0
            );
        }
        for k in &self.skipped {
            let _ = writeln!(s, "\nNot measured: {}: {}", k.side, k.reason);
        }
        s
    }
}

fn opt<T>(x: Option<T>, f: impl Fn(T) -> String) -> String {
    x.map(f).unwrap_or_else(|| "—".into())
}

/// "PyTorch x, transformers y, PEFT z" from the first PyTorch result, or "no PyTorch".
fn torch_versions(r: &Report) -> String {
    let v = r.train.iter().find_map(|t| t.torch.as_ref()?.get("versions").cloned());
    let l = r.generate.iter().flat_map(|g| &g.llama_cpp).find_map(|l| l.llama_cpp.clone());
    let mut parts = Vec::new();
    if let Some(v) = v {
        let get = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
        parts.push(format!("PyTorch {}, transformers {}, PEFT {}", get("torch"), get("transformers"), get("peft")));
    }
    if let Some(l) = l {
        parts.push(format!("llama.cpp {l} (node-llama-cpp)"));
    }
    if parts.is_empty() { "no comparison engines".into() } else { parts.join(", ") }
}

pub(crate) fn machine() -> Machine {
    // The same description the experiments record (CPU model, cores, RAM), plus the kernel.
    let m = crate::experiments::record::Machine::describe();
    Machine {
        cpu: m.cpu_model,
        isa: isa(),
        cores: m.cores,
        ram_gib: m.ram_gib,
        os: command_output("uname", &["-sr"]).unwrap_or_else(|| std::env::consts::OS.into()),
    }
}

/// Which of the x86 extensions candle's and llama.cpp's kernels use the CPU has (/proc/cpuinfo).
fn isa() -> Vec<String> {
    const WANTED: [&str; 8] = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"];
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect())
        .unwrap_or_default();
    WANTED.iter().filter(|w| flags.contains(w)).map(|w| w.to_string()).collect()
}

/// The CPU as the tables name it: model, then its vector extensions.
pub(crate) fn cpu_label(m: &Machine) -> String {
    if m.isa.is_empty() { m.cpu.clone() } else { format!("{} ({})", m.cpu, m.isa.join(", ")) }
}

/// HEAD, with `+dirty` when the tree has uncommitted changes.
pub(crate) fn git_commit() -> String {
    let (commit, dirty) = crate::experiments::record::git_commit_in(Path::new(REPO_DIR));
    let short: String = commit.chars().take(12).collect();
    if dirty { format!("{short}+dirty") } else { short }
}

fn locked_version(package: &str) -> Option<String> {
    let lock = std::fs::read_to_string(Path::new(REPO_DIR).join("Cargo.lock")).ok()?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    lock[start..].split('"').next().map(str::to_string)
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
