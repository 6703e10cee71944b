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

/// `book/data/bench.json`: one record per host measured (a host being a CPU model and its
/// vector extensions: the speeds differ between hosts sold under one name). A run replaces the
/// record of its own host and keeps the others.
#[derive(Debug, Serialize, Deserialize)]
pub struct BenchFile {
    pub schema: u32,
    pub hosts: Vec<Report>,
}

impl BenchFile {
    /// The file at `path`: this layout, or a single record of the earlier one (schema 2).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if v.get("hosts").is_some() {
            return serde_json::from_value(v).with_context(|| format!("{}: not a benchmark file", path.display()));
        }
        let mut one: Report =
            serde_json::from_value(v).with_context(|| format!("{}: not a benchmark record", path.display()))?;
        one.host = host_id(&one.machine);
        Ok(Self { schema: 3, hosts: vec![one] })
    }

    /// Put `report` in the file at `path` (created if missing) in place of its host's record,
    /// and write the markdown beside it; returns the whole file.
    pub fn write_host(path: &Path, report: Report) -> Result<Self> {
        let mut file = if path.exists() { Self::read(path)? } else { Self { schema: 3, hosts: Vec::new() } };
        match file.hosts.iter_mut().find(|h| h.host == report.host) {
            Some(old) => *old = report,
            None => file.hosts.push(report),
        }
        file.write(path)?;
        Ok(file)
    }

    /// The JSON at `path` and the markdown beside it, each written atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        lorakit::io::atomic_write(path, (serde_json::to_string_pretty(self)? + "\n").as_bytes())?;
        lorakit::io::atomic_write(&path.with_extension("md"), self.markdown().as_bytes())
    }

    /// Each host's tables under a heading naming it.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            let _ = writeln!(s, "#### {}\n", cpu_label(&h.machine));
            s.push_str(&h.markdown());
        }
        s
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// Which host this record is for ([`host_id`]): the key of its record in [`BenchFile`].
    #[serde(default)]
    pub host: String,
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

/// Every round of one sequence length: candle's results, and the JSON
/// tools/bench/torch_train.py printed (a [`TrainResult`] plus versions) for PyTorch eager and
/// under torch.compile.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Rounds {
    pub candle: Vec<TrainResult>,
    pub torch: Vec<serde_json::Value>,
    #[serde(default)]
    pub torch_compile: Vec<serde_json::Value>,
}

/// The median of the rounds' tokens per second, and the slowest and fastest round.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The first losses of both sides, from the same weights, batch and initial adapter.
#[derive(Debug, Serialize, Deserialize)]
pub struct Trajectory {
    pub candle: Vec<f64>,
    pub torch: Vec<f64>,
    pub max_abs_diff: f64,
    /// [`LOSS_TOLERANCE`].
    pub tolerance: f64,
    pub agree: bool,
}

/// Steps whose losses [`Trajectory`] compares.
pub const TRAJECTORY_STEPS: usize = 5;
/// How far the two sides' losses may differ over those steps (f32 sums in another order).
/// Measured on SmolLM2 (losses near 13): 1.9e-6 at seq 128, 2.9e-6 at 256; one step at
/// lr 1e-4 moves the loss by about 0.05, so a wrong gradient or update shows far above this.
pub const LOSS_TOLERANCE: f64 = 5e-4;

#[derive(Debug, Serialize, Deserialize)]
pub struct TrainRow {
    pub seq: usize,
    /// candle's median round (by tokens per second).
    pub candle: TrainResult,
    /// PyTorch + PEFT's median round (eager).
    pub torch: Option<serde_json::Value>,
    /// PyTorch + PEFT's median round under torch.compile.
    #[serde(default)]
    pub torch_compile: Option<serde_json::Value>,
    /// Tokens per second over the rounds.
    #[serde(default)]
    pub candle_tokens_per_second: Option<Spread>,
    #[serde(default)]
    pub torch_tokens_per_second: Option<Spread>,
    #[serde(default)]
    pub torch_compile_tokens_per_second: Option<Spread>,
    /// candle ÷ PyTorch eager, median tokens per second (above 1: candle is faster).
    pub tokens_per_second_ratio: Option<f64>,
    /// candle ÷ PyTorch under torch.compile.
    #[serde(default)]
    pub compile_ratio: Option<f64>,
    /// candle ÷ PyTorch peak RSS (below 1: candle uses less).
    pub peak_rss_ratio: Option<f64>,
    /// What training adds to the loaded model: the peak minus the memory right after loading
    /// (each side releases freed heap pages first, the same way), per side, and their ratio.
    #[serde(default)]
    pub candle_training_mib: Option<f64>,
    #[serde(default)]
    pub torch_training_mib: Option<f64>,
    #[serde(default)]
    pub training_memory_ratio: Option<f64>,
    pub mfu_candle: f64,
    pub mfu_torch: Option<f64>,
    /// |candle − PyTorch| of the first step's loss: small when both trained the same thing.
    pub first_loss_diff: Option<f64>,
    /// The first [`TRAJECTORY_STEPS`] losses of both sides.
    #[serde(default)]
    pub trajectory: Option<Trajectory>,
    /// Every round, in the order they ran.
    #[serde(default)]
    pub rounds: Option<Rounds>,
}

impl TrainRow {
    pub fn new(seq: usize, rounds: Rounds, peak_gflops: f64) -> Result<Self> {
        let parse = |runs: &[serde_json::Value], flops: f64| -> Result<Vec<TrainResult>> {
            runs.iter()
                .map(|v| {
                    let mut t: TrainResult = serde_json::from_value(v.clone()).context("torch_train.py's result")?;
                    // The same step, so the same FLOP count.
                    t.flops_per_step = flops;
                    t.gflops_per_second = flops / t.median_step_seconds / 1e9;
                    Ok(t)
                })
                .collect()
        };
        let (c_i, candle_spread) = median_round(&rounds.candle).context("no candle round")?;
        let candle = rounds.candle[c_i].clone();
        let torch = parse(&rounds.torch, candle.flops_per_step)?;
        let compiled = parse(&rounds.torch_compile, candle.flops_per_step)?;
        let t = median_round(&torch);
        let c = median_round(&compiled);
        let t_run = t.map(|(i, _)| &torch[i]);
        let mfu = |r: &TrainResult| r.gflops_per_second / peak_gflops;
        let training = |r: &TrainResult| r.rss_after_load_mib.map(|a| r.peak_rss_mib - a);
        let trajectory = t_run.map(|t| {
            let n = TRAJECTORY_STEPS.min(candle.losses.len()).min(t.losses.len());
            let (a, b) = (candle.losses[..n].to_vec(), t.losses[..n].to_vec());
            let max_abs_diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
            Trajectory {
                agree: n > 0 && max_abs_diff <= LOSS_TOLERANCE,
                candle: a,
                torch: b,
                max_abs_diff,
                tolerance: LOSS_TOLERANCE,
            }
        });
        Ok(Self {
            seq,
            tokens_per_second_ratio: t.map(|(_, s)| candle_spread.median / s.median),
            compile_ratio: c.map(|(_, s)| candle_spread.median / s.median),
            peak_rss_ratio: t_run.map(|t| candle.peak_rss_mib / t.peak_rss_mib),
            candle_training_mib: training(&candle),
            torch_training_mib: t_run.and_then(training),
            training_memory_ratio: t_run.and_then(training).zip(training(&candle)).map(|(t, c)| c / t),
            mfu_candle: mfu(&candle),
            mfu_torch: t_run.map(mfu),
            first_loss_diff: t_run.map(|t| (candle.first_loss - t.first_loss).abs()),
            trajectory,
            candle_tokens_per_second: Some(candle_spread),
            torch_tokens_per_second: t.map(|(_, s)| s),
            torch_compile_tokens_per_second: c.map(|(_, s)| s),
            torch: t.map(|(i, _)| rounds.torch[i].clone()),
            torch_compile: c.map(|(i, _)| rounds.torch_compile[i].clone()),
            candle,
            rounds: Some(rounds),
        })
    }
}

/// The round with the median tokens per second (the lower middle one of an even count), and
/// the spread over all rounds.
fn median_round(runs: &[TrainResult]) -> Option<(usize, Spread)> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| runs[a].tokens_per_second.total_cmp(&runs[b].tokens_per_second));
    let mid = *order.get((order.len().max(1) - 1) / 2)?;
    let tps = |i: usize| runs[i].tokens_per_second;
    Some((mid, Spread { median: tps(mid), min: tps(order[0]), max: tps(order[order.len() - 1]) }))
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
        let machine = machine();
        Ok(Self {
            host: host_id(&machine),
            schema: 3,
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            git_commit: git_commit(),
            command: format!("lora {}", args.join(" ")),
            machine,
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
        self.training_markdown(&mut s);
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

impl Report {
    /// The training tables: speed over the rounds, then memory and the check that both sides
    /// trained the same thing.
    fn training_markdown(&self, s: &mut String) {
        let p = &self.plan;
        let rounds = if p.rounds > 1 {
            format!(
                "{} rounds, each engine a fresh process per round, alternating; tokens/s are the median round's median step, with the slowest and fastest round",
                p.rounds
            )
        } else {
            "one process per engine".into()
        };
        let _ = writeln!(
            s,
            "**Training** ({}; batch {}; {} steps timed after {} warm-up in each process; {rounds}; MFU against candle's measured f32 GEMM peak of {:.0} GFLOP/s):\n",
            p.lora, p.batch, p.steps, p.warmup, self.gemm_peak_gflops
        );
        let compile = p.torch_compile;
        s.push_str("| seq | candle tok/s | PyTorch+PEFT tok/s | ratio |");
        if compile {
            s.push_str(" torch.compile tok/s | ratio to compile |");
        }
        s.push_str(" MFU candle / PyTorch | CPU s/step candle / PyTorch |\n");
        s.push_str(if compile {
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        } else {
            "| ---: | ---: | ---: | ---: | ---: | ---: |\n"
        });
        let ratio = |x: Option<f64>| opt(x, |x| format!("{x:.2}×"));
        for r in &self.train {
            let t: Option<TrainResult> = r.torch.clone().and_then(|v| serde_json::from_value(v).ok());
            let tps = |spread: Option<Spread>, median: Option<f64>| match (spread, median) {
                (Some(sp), _) if sp.max > sp.min => format!("{:.0} ({:.0}–{:.0})", sp.median, sp.min, sp.max),
                (Some(sp), _) => format!("{:.0}", sp.median),
                (None, m) => opt(m, |x| format!("{x:.0}")),
            };
            let _ = write!(
                s,
                "| {} | {} | {} | {} |",
                r.seq,
                tps(r.candle_tokens_per_second, Some(r.candle.tokens_per_second)),
                tps(r.torch_tokens_per_second, t.as_ref().map(|t| t.tokens_per_second)),
                ratio(r.tokens_per_second_ratio),
            );
            if compile {
                let _ = write!(s, " {} | {} |", tps(r.torch_compile_tokens_per_second, None), ratio(r.compile_ratio));
            }
            let _ = writeln!(
                s,
                " {:.0}% / {} | {} / {} |",
                100.0 * r.mfu_candle,
                opt(r.mfu_torch, |x| format!("{:.0}%", 100.0 * x)),
                opt(r.candle.median_step_cpu_seconds, |x| format!("{x:.1}")),
                opt(t.as_ref().and_then(|t| t.median_step_cpu_seconds), |x| format!("{x:.1}")),
            );
        }
        let _ = writeln!(
            s,
            "\nMemory of the median rounds (peak RSS while training, loaded model included; and what training adds to \
             the memory right after loading, each side having released its freed heap pages the same way), and whether \
             both trained the same thing (the largest difference between their first {TRAJECTORY_STEPS} losses, from the \
             same weights, batch and initial adapter; tolerance {LOSS_TOLERANCE:.0e}):\n"
        );
        s.push_str("| seq | peak RSS candle / PyTorch | ratio | training adds, candle / PyTorch | ratio | losses: largest difference |\n");
        s.push_str("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in &self.train {
            let t: Option<TrainResult> = r.torch.clone().and_then(|v| serde_json::from_value(v).ok());
            let mib = |x: Option<f64>| opt(x, |x| format!("{x:.0} MiB"));
            let check = match (&r.trajectory, r.first_loss_diff) {
                (Some(tr), _) => format!(
                    "{:.1e} over {} steps{}",
                    tr.max_abs_diff,
                    tr.candle.len(),
                    if tr.agree { "" } else { " (**disagree**)" }
                ),
                (None, Some(d)) => format!("{d:.1e} (first step only)"),
                (None, None) => "—".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} / {} | {} | {} / {} | {} | {check} |",
                r.seq,
                mib(Some(r.candle.peak_rss_mib)),
                mib(t.as_ref().map(|t| t.peak_rss_mib)),
                ratio(r.peak_rss_ratio),
                mib(r.candle_training_mib),
                mib(r.torch_training_mib),
                ratio(r.training_memory_ratio),
            );
        }
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

/// A host's key: the CPU model and its widest vector extension, e.g. `amd-epyc-avx2` or
/// `intel-xeon-avx512-amx` (a record from before the extensions were recorded has none).
pub fn host_id(m: &Machine) -> String {
    let mut id: String = m
        .cpu
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !matches!(*w, "r" | "tm" | "cpu" | "processor"))
        .collect::<Vec<_>>()
        .join("-");
    let has = |f: &str| m.isa.iter().any(|x| x == f);
    for (flag, name) in [("avx512f", "avx512"), ("amx_tile", "amx")] {
        if has(flag) {
            id += &format!("-{name}");
        }
    }
    if !has("avx512f") && has("avx2") {
        id += "-avx2";
    }
    id
}

/// The CPU as the tables name it: model, then its vector extensions.
pub(crate) fn cpu_label(m: &Machine) -> String {
    if m.isa.is_empty() {
        format!("{} (vector extensions not recorded)", m.cpu)
    } else {
        format!("{} ({})", m.cpu, m.isa.join(", "))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(cpu: &str, isa: &[&str]) -> Machine {
        Machine {
            cpu: cpu.into(),
            isa: isa.iter().map(|s| s.to_string()).collect(),
            cores: 2,
            ram_gib: 24.0,
            os: "Linux".into(),
        }
    }

    #[test]
    fn hosts_are_told_apart_by_their_vector_extensions() {
        let amd = machine("AMD EPYC", &["avx", "avx2", "fma", "f16c"]);
        assert_eq!(host_id(&amd), "amd-epyc-avx2");
        let amd512 = machine("AMD EPYC", &["avx2", "avx512f"]);
        assert_eq!(host_id(&amd512), "amd-epyc-avx512");
        let intel = machine("Intel(R) Xeon(R) Platinum 8488C", &["avx2", "avx512f", "amx_tile"]);
        assert_eq!(host_id(&intel), "intel-xeon-platinum-8488c-avx512-amx");
        assert_eq!(host_id(&machine("AMD EPYC", &[])), "amd-epyc");
        assert_eq!(cpu_label(&amd), "AMD EPYC (avx, avx2, fma, f16c)");
    }

    /// A candle or PyTorch round with `tps` tokens per second and these losses.
    fn round(tps: f64, losses: &[f64]) -> TrainResult {
        serde_json::from_value(serde_json::json!({
            "seq": 16, "batch": 4, "tokens_per_step": 64, "step_seconds": [64.0 / tps],
            "median_step_seconds": 64.0 / tps, "tokens_per_second": tps, "peak_rss_mib": 900.0,
            "process_peak_rss_mib": 1000.0, "peak_rss_reset_after_load": true, "rss_after_load_mib": 600.0,
            "first_loss": losses[0], "losses": losses, "trainable_params": 10, "flops_per_step": 1e9,
        }))
        .unwrap()
    }

    #[test]
    fn the_row_takes_the_median_round_and_checks_the_trajectories() {
        let same = [11.0, 10.5, 10.1];
        let rounds = Rounds {
            candle: [300.0, 280.0, 320.0].map(|t| round(t, &same)).into(),
            torch: [200.0, 250.0, 150.0].map(|t| serde_json::to_value(round(t, &same)).unwrap()).into(),
            torch_compile: Vec::new(),
        };
        let row = TrainRow::new(16, rounds, 100.0).unwrap();
        assert_eq!(row.candle.tokens_per_second, 300.0);
        let s = row.torch_tokens_per_second.unwrap();
        assert_eq!((s.median, s.min, s.max), (200.0, 150.0, 250.0));
        assert_eq!(row.tokens_per_second_ratio, Some(1.5));
        assert_eq!(row.candle_training_mib, Some(300.0));
        assert_eq!(row.training_memory_ratio, Some(1.0));
        assert!(row.trajectory.as_ref().unwrap().agree);
        assert!(row.compile_ratio.is_none() && row.torch_compile.is_none());

        // Same first loss (B = 0), then a different step: the trajectory check catches it.
        let rounds = Rounds {
            candle: vec![round(300.0, &same)],
            torch: vec![serde_json::to_value(round(200.0, &[11.0, 10.6, 10.2])).unwrap()],
            torch_compile: Vec::new(),
        };
        let row = TrainRow::new(16, rounds, 100.0).unwrap();
        assert_eq!(row.first_loss_diff, Some(0.0));
        let t = row.trajectory.unwrap();
        assert!(!t.agree && (t.max_abs_diff - 0.1).abs() < 1e-9, "{t:?}");
    }
}
