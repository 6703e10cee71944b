//! `lora experiments`: the runs behind the book's Part V, recorded as JSON (and SVG plots)
//! that the chapters and their widgets read.
//!
//! * [`before_after`]: base vs base + LoRA on the three tasks' held-out prompts, 3 seeds.
//! * [`rank`]: r = 1..64, the alpha rules (fixed α, α = 2r, rsLoRA) and target sets.
//! * [`subspace`]: Hu et al.'s subspace similarity between the r=8 and r=64 adapters.
//! * [`efficiency`]: full fine-tuning vs LoRA on the same data and steps.
//!
//! One process loads the model once and trains every run in turn; a run that two
//! experiments need (the r=8 extraction adapter is in all four) is trained once.

pub mod before_after;
pub mod efficiency;
pub mod plots;
pub mod rank;
pub mod record;
pub mod subspace;
pub mod tables;

use anyhow::{Context, Result, bail};
use candle_core::DType;
use indicatif::{ProgressBar, ProgressStyle};
use lorakit::LoraConfig;
use lorakit::data::synth::Task;
use lorakit::data::{Record, load_dataset, prompting, save_dataset};
use lorakit::eval::{EvalReport, evaluate};
use lorakit::load::{LoadedModel, load};
use lorakit::train::trainer::StepMetrics;
use lorakit::train::{RunDir, Schedule, TrainConfig, TrainOptions, TrainSummary, train};
use record::Recorder;
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

/// The experiments, by the name of their results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Experiment {
    #[value(name = "before_after")]
    BeforeAfter,
    Rank,
    Subspace,
    Efficiency,
}

impl Experiment {
    pub const ALL: [Experiment; 4] = [Self::BeforeAfter, Self::Rank, Self::Subspace, Self::Efficiency];

    pub fn name(self) -> &'static str {
        match self {
            Self::BeforeAfter => "before_after",
            Self::Rank => "rank",
            Self::Subspace => "subspace",
            Self::Efficiency => "efficiency",
        }
    }

    pub fn json_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.json", self.name()))
    }
}

/// What `lora experiments` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Empty: all of them.
    pub only: Vec<Experiment>,
    pub out: PathBuf,
    /// Keep every run's adapter, metrics and checkpoints here (default: a temporary
    /// directory, deleted at the end).
    pub runs_dir: Option<PathBuf>,
    /// Folder with `extract/`, `support/`, `persona/` (train/validation/test.jsonl).
    pub data_root: PathBuf,
    pub model: String,
    /// The command line, recorded in every file.
    pub command: String,
}

/// Sizes of everything: [`Plan::full`] for the book, [`Plan::quick`] for CI.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub model: String,
    /// Optimizer steps of a run on each task (LoRA and full fine-tuning alike). Support
    /// gets more: it must learn 25 facts about a product it has never heard of.
    pub steps: TaskSteps,
    pub micro_batch: usize,
    pub grad_accum: usize,
    pub warmup_steps: usize,
    /// LoRA's peak learning rate (cosine decay after warmup).
    pub lr: f64,
    /// Full fine-tuning's: every weight moves, so it needs a much smaller rate.
    pub full_lr: f64,
    pub max_len: usize,
    /// Validation loss this many times per run, evenly spaced (the last at the end).
    pub val_points: usize,
    /// The first N validation examples (for the loss curves).
    pub val_examples: usize,
    /// The first N test examples, answered greedily and scored with the task metric.
    pub test_examples: usize,
    /// Solved training examples shown to the few-shot baseline.
    pub shots: usize,
    pub max_new_tokens: usize,
    pub seeds: Vec<u64>,
    /// The adapter of the before/after, efficiency and target-set runs: r, alpha = 2r.
    pub main_rank: usize,
    pub ranks: Vec<usize>,
    /// The alpha rules agree at this rank (scale 2)...
    pub alpha_ref_rank: usize,
    /// ...and are compared at these.
    pub alpha_ranks: Vec<usize>,
    /// The two adapters compared by subspace similarity.
    pub subspace_ranks: (usize, usize),
    /// Task of the rank, subspace and efficiency experiments.
    pub rank_task: Task,
}

impl Plan {
    pub fn full(model: &str) -> Self {
        Self {
            model: model.to_string(),
            steps: TaskSteps { extract: 16, support: 60, persona: 16 },
            micro_batch: 2,
            grad_accum: 1,
            warmup_steps: 2,
            lr: 3e-3,
            full_lr: 5e-5,
            max_len: 256,
            val_points: 4,
            val_examples: 16,
            test_examples: 120,
            shots: 3,
            max_new_tokens: 48,
            seeds: vec![42, 43, 44],
            main_rank: 8,
            ranks: vec![1, 2, 4, 8, 16, 32, 64],
            alpha_ref_rank: 4,
            alpha_ranks: vec![64],
            subspace_ranks: (8, 64),
            rank_task: Task::Extract,
        }
    }

    pub fn quick(model: &str) -> Self {
        Self {
            steps: TaskSteps { extract: 2, support: 2, persona: 2 },
            micro_batch: 1,
            warmup_steps: 1,
            val_points: 1,
            val_examples: 2,
            test_examples: 2,
            max_new_tokens: 16,
            seeds: vec![42, 43],
            main_rank: 2,
            ranks: vec![1, 2, 4],
            alpha_ref_rank: 1,
            alpha_ranks: vec![4],
            subspace_ranks: (2, 4),
            ..Self::full(model)
        }
    }
}

/// Optimizer steps per task.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TaskSteps {
    pub extract: usize,
    pub support: usize,
    pub persona: usize,
}

impl TaskSteps {
    pub fn get(&self, task: Task) -> usize {
        match task {
            Task::Extract => self.extract,
            Task::Support => self.support,
            Task::Persona => self.persona,
        }
    }
}

/// One LoRA training run, as the experiments vary it (everything else is in the [`Plan`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    pub task: Task,
    pub r: usize,
    pub alpha: f64,
    pub rslora: bool,
    pub targets: Vec<String>,
    pub seed: u64,
}

impl RunSpec {
    /// The plan's main adapter (r, alpha = 2r, all seven projections) on `task`.
    pub fn main(plan: &Plan, task: Task, seed: u64) -> Self {
        Self::ranked(task, plan.main_rank, 2.0 * plan.main_rank as f64, seed)
    }

    pub fn ranked(task: Task, r: usize, alpha: f64, seed: u64) -> Self {
        let targets = lorakit::lora::TARGET_MODULES.iter().map(|s| s.to_string()).collect();
        Self { task, r, alpha, rslora: false, targets, seed }
    }

    /// The factor on B·A: alpha/r, or alpha/√r with rsLoRA.
    pub fn scale(&self) -> f64 {
        if self.rslora { self.alpha / (self.r as f64).sqrt() } else { self.alpha / self.r as f64 }
    }

    fn dir_name(&self) -> String {
        let short: Vec<&str> = self.targets.iter().map(|t| t.trim_end_matches("_proj")).collect();
        format!(
            "{}-r{}-a{}{}-{}-s{}",
            self.task.name(),
            self.r,
            self.alpha,
            if self.rslora { "-rs" } else { "" },
            short.join(""),
            self.seed
        )
    }
}

/// A finished LoRA run: its training records and its held-out evaluation.
#[derive(Debug)]
pub struct LoraRun {
    pub spec: RunSpec,
    pub dir: PathBuf,
    pub summary: TrainSummary,
    pub history: Vec<StepMetrics>,
    pub eval: EvalReport,
    /// Median wall time of an optimizer step (steps right after a validation pass excluded).
    pub step_seconds: f64,
    /// The AdamW moments the run held, in bytes (read back from its last checkpoint).
    pub optimizer_state_bytes: u64,
}

/// One point of a loss curve, as the JSON files store it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: usize,
    pub loss: f64,
    pub val_loss: Option<f64>,
}

pub fn curve(history: &[StepMetrics]) -> Vec<CurvePoint> {
    history.iter().map(|h| CurvePoint { step: h.step, loss: h.loss, val_loss: h.val_loss }).collect()
}

/// Median time per optimizer step: the difference of consecutive `elapsed_secs`, leaving
/// out the steps that follow a validation pass (whose time that difference includes).
pub fn step_seconds(history: &[StepMetrics]) -> f64 {
    let mut d: Vec<f64> = Vec::new();
    let mut prev: Option<&StepMetrics> = None;
    for h in history {
        match prev {
            None => d.push(h.elapsed_secs),
            Some(p) if p.val_loss.is_none() => d.push(h.elapsed_secs - p.elapsed_secs),
            Some(_) => {}
        }
        prev = Some(h);
    }
    median(&mut d)
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Mean, spread (sample standard deviation; 0 for one value) and the values themselves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    pub spread: f64,
    pub per_seed: Vec<f64>,
}

impl Stat {
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n.max(1.0);
        let spread = if values.len() < 2 {
            0.0
        } else {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        Self { mean, spread, per_seed: values }
    }
}

/// Loads the model once, trains and evaluates runs on demand, and remembers them.
pub struct Runner {
    pub plan: Plan,
    pub m: LoadedModel,
    data_root: PathBuf,
    runs_dir: PathBuf,
    runs: Vec<Rc<LoraRun>>,
    base: Vec<(Task, Rc<EvalReport>)>,
    pub progress: Progress,
    /// False when the peak-RSS mark cannot be reset (then peaks are process-wide).
    pub peak_rss_per_run: bool,
}

impl Runner {
    pub fn new(plan: Plan, data_root: PathBuf, runs_dir: PathBuf, progress: Progress) -> Result<Self> {
        let m = load(&plan.model, DType::F32)?;
        Ok(Self { plan, m, data_root, runs_dir, runs: Vec::new(), base: Vec::new(), progress, peak_rss_per_run: true })
    }

    pub fn runs_dir(&self) -> &Path {
        &self.runs_dir
    }

    pub fn task_file(&self, task: Task, split: &str) -> PathBuf {
        self.data_root.join(task.name()).join(format!("{split}.jsonl"))
    }

    /// The first `plan.test_examples` held-out examples of `task`.
    pub fn test_set(&self, task: Task) -> Result<Vec<Record>> {
        let path = self.task_file(task, "test");
        let mut records = load_dataset(&path)?;
        if records.len() < self.plan.test_examples {
            bail!("{}: {} examples, the plan needs {}", path.display(), records.len(), self.plan.test_examples)
        }
        records.truncate(self.plan.test_examples);
        Ok(records)
    }

    /// The first `plan.test_examples` of `task`'s `test_unseen.jsonl` (values, facts or
    /// questions training never saw), or `None` when the task has no such file.
    pub fn unseen_set(&self, task: Task) -> Result<Option<Vec<Record>>> {
        let path = self.task_file(task, "test_unseen");
        if !path.exists() {
            return Ok(None);
        }
        let mut records = load_dataset(&path)?;
        records.truncate(self.plan.test_examples);
        Ok(Some(records))
    }

    /// The base model's answers on `task`'s unseen test, when it has one.
    pub fn base_eval_unseen(&mut self, task: Task) -> Result<Option<EvalReport>> {
        let Some(test) = self.unseen_set(task)? else { return Ok(None) };
        let what = format!("base model on {} {}", task.name(), task.unseen_label());
        Ok(Some(self.base_answers(&what, task, &test)?))
    }

    /// The base model (no adapter) answering `records`, reported as `what`.
    pub fn base_answers(&mut self, what: &str, task: Task, records: &[Record]) -> Result<EvalReport> {
        self.progress.start(&format!("{what} ({} examples)", records.len()));
        self.m.model.remove_adapter();
        let report = evaluate(&self.m, records, task, self.plan.max_new_tokens)?;
        self.progress.done(&format!("metric {:.3}", report.metric));
        Ok(report)
    }

    /// The prompting baselines on `test` (the test split, or the unseen test):
    /// the base model given [`prompting::instructions`], and given `plan.shots` training
    /// examples, a different draw for each seed.
    pub fn baselines(&mut self, task: Task, test: &[Record], label: &str) -> Result<(EvalReport, Vec<EvalReport>)> {
        let prompted = prompting::with_instructions(task, test);
        let prompted =
            self.base_answers(&format!("base model told the task, {} {label}", task.name()), task, &prompted)?;
        let pool = load_dataset(&self.task_file(task, "train"))?;
        let mut few_shot = Vec::new();
        for &seed in &self.plan.seeds.clone() {
            let shown = prompting::few_shot(test, &pool, self.plan.shots, seed);
            let what = format!("base model shown {} examples (draw {seed}), {} {label}", self.plan.shots, task.name());
            few_shot.push(self.base_answers(&what, task, &shown)?);
        }
        Ok((prompted, few_shot))
    }

    /// A trained run's answers on its task's unseen test (its adapter read back from
    /// the run directory), when the task has one.
    pub fn lora_eval_unseen(&mut self, run: &LoraRun) -> Result<Option<EvalReport>> {
        let Some(test) = self.unseen_set(run.spec.task)? else { return Ok(None) };
        let label = run.spec.task.unseen_label();
        self.progress.start(&format!("{} on {} examples, {label}", run.spec.dir_name(), test.len()));
        let m = &mut self.m.model;
        let adapter = lorakit::LoraAdapter::load_peft(&run.dir, &m.config, DType::F32, m.device())?;
        m.remove_adapter();
        m.apply_adapter(&adapter)?;
        let report = evaluate(&self.m, &test, run.spec.task, self.plan.max_new_tokens);
        self.m.model.remove_adapter();
        let report = report?;
        self.progress.done(&format!("metric {:.3}", report.metric));
        Ok(Some(report))
    }

    /// The first `plan.val_examples` validation examples, written once beside the runs.
    fn val_file(&self, task: Task) -> Result<PathBuf> {
        let out = self.runs_dir.join(format!("validation-{}.jsonl", task.name()));
        if !out.exists() {
            let path = self.task_file(task, "validation");
            let mut records = load_dataset(&path)?;
            records.truncate(self.plan.val_examples);
            save_dataset(&out, &records)?;
        }
        Ok(out)
    }

    /// The training config of a run: the plan's settings with the spec's variations.
    pub fn train_config(&self, spec: &RunSpec, lr: f64, output_dir: PathBuf) -> Result<TrainConfig> {
        let p = &self.plan;
        let steps = p.steps.get(spec.task);
        let cfg = TrainConfig {
            model: p.model.clone(),
            train_data: self.task_file(spec.task, "train"),
            validation_data: Some(self.val_file(spec.task)?),
            output_dir,
            base_dtype: Default::default(),
            lora: LoraConfig {
                r: spec.r,
                alpha: spec.alpha,
                dropout: 0.0,
                target_modules: spec.targets.clone(),
                use_rslora: spec.rslora,
            },
            lr,
            weight_decay: 0.0,
            warmup_steps: p.warmup_steps,
            schedule: Schedule::Cosine,
            max_grad_norm: 1.0,
            epochs: 1,
            max_steps: Some(steps),
            micro_batch: p.micro_batch,
            grad_accum: p.grad_accum,
            max_len: p.max_len,
            train_on_prompt: false,
            eval_every: steps.div_ceil(p.val_points.max(1)),
            // Only the final checkpoint: its optimizer file tells the state's size.
            save_every: steps,
            seed: spec.seed,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The base model's answers on `task`'s test examples (computed once).
    pub fn base_eval(&mut self, task: Task) -> Result<Rc<EvalReport>> {
        if let Some((_, r)) = self.base.iter().find(|(t, _)| *t == task) {
            return Ok(r.clone());
        }
        self.progress.start(&format!("base model on {} test examples of {}", self.plan.test_examples, task.name()));
        let test = self.test_set(task)?;
        self.m.model.remove_adapter();
        let report = Rc::new(evaluate(&self.m, &test, task, self.plan.max_new_tokens)?);
        self.progress.done(&format!("base {}: metric {:.3}", task.name(), report.metric));
        self.base.push((task, report.clone()));
        Ok(report)
    }

    /// Train (or recall) the run `spec`, then answer the test examples with it.
    pub fn lora(&mut self, spec: &RunSpec) -> Result<Rc<LoraRun>> {
        if let Some(r) = self.runs.iter().find(|r| &r.spec == spec) {
            return Ok(r.clone());
        }
        let dir = self.runs_dir.join(spec.dir_name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        let cfg = self.train_config(spec, self.plan.lr, dir.clone())?;
        let targets = if spec.targets.len() == lorakit::lora::TARGET_MODULES.len() {
            "all 7 projections".to_string()
        } else {
            spec.targets.join(",")
        };
        self.progress.start(&format!(
            "{}: r={} alpha={}{} on {targets}, seed {}, {} steps",
            spec.task.name(),
            spec.r,
            spec.alpha,
            if spec.rslora { " rsLoRA" } else { "" },
            spec.seed,
            cfg.max_steps.unwrap_or(0)
        ));
        self.m.model.remove_adapter();
        self.peak_rss_per_run &= lorakit::runtime::reset_peak_rss();
        let opts = TrainOptions { resume: false, stop: None, observer: None };
        let (_, summary) =
            train(&cfg, &mut self.m, &opts).with_context(|| format!("training run {}", spec.dir_name()))?;
        let run_dir = RunDir::new(&dir);
        let history = run_dir.read_metrics()?;
        let test = self.test_set(spec.task)?;
        let eval = evaluate(&self.m, &test, spec.task, self.plan.max_new_tokens)?;
        self.m.model.remove_adapter();
        let optimizer_state_bytes = optimizer_bytes(&run_dir)?;
        self.progress.done(&format!(
            "val loss {:.4}, metric {:.3}, {:.1} s/step",
            summary.final_val_loss.unwrap_or(f64::NAN),
            eval.metric,
            step_seconds(&history)
        ));
        let run = Rc::new(LoraRun {
            spec: spec.clone(),
            dir,
            step_seconds: step_seconds(&history),
            summary,
            history,
            eval,
            optimizer_state_bytes,
        });
        self.runs.push(run.clone());
        Ok(run)
    }
}

/// Bytes of the AdamW moments in a run's newest checkpoint.
fn optimizer_bytes(run: &RunDir) -> Result<u64> {
    let checkpoint =
        run.latest_checkpoint()?.with_context(|| format!("{}: no checkpoint", run.checkpoints().display()))?;
    let path = checkpoint.optimizer();
    let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(tensors.values().map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64).sum())
}

/// One bar for the whole invocation (a line per step when stderr is not a terminal).
pub struct Progress {
    bar: ProgressBar,
    total: usize,
    started: Instant,
    current: Option<Instant>,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} [{bar:24}] {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(250));
            b
        } else {
            ProgressBar::hidden()
        };
        Self { bar, total, started: Instant::now(), current: None }
    }

    pub fn start(&mut self, what: &str) {
        self.current = Some(Instant::now());
        self.bar.set_message(what.to_string());
        if self.bar.is_hidden() {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("[{secs:>6.0} s] {}/{} {what}", self.bar.position() + 1, self.total);
        }
    }

    pub fn done(&mut self, result: &str) {
        let secs = self.current.take().map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        self.bar.inc(1);
        let line = format!("    {result} ({secs:.0} s)");
        if self.bar.is_hidden() { eprintln!("{line}") } else { self.bar.println(line) }
    }

    pub fn say(&self, line: &str) {
        if self.bar.is_hidden() { eprintln!("{line}") } else { self.bar.println(line) }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Redraw the SVG plots and markdown tables from the results files already in `dir` (all, or `only`).
pub fn replot(dir: &Path, only: &[Experiment]) -> Result<()> {
    let mut drawn = 0;
    for e in Experiment::ALL.into_iter().filter(|e| only.is_empty() || only.contains(e)) {
        if e.json_path(dir).exists() {
            plots::draw(e, dir)?;
            tables::write(e, dir)?;
            eprintln!("redrew the plots and tables of {}", e.json_path(dir).display());
            drawn += 1;
        }
    }
    if drawn == 0 {
        bail!("{}: no results files to plot (run `lora experiments` first)", dir.display())
    }
    Ok(())
}

/// Run the chosen experiments and write their files to `opts.out`.
pub fn run(opts: &Options) -> Result<()> {
    let plan = if opts.quick { Plan::quick(&opts.model) } else { Plan::full(&opts.model) };
    let chosen: Vec<Experiment> =
        Experiment::ALL.into_iter().filter(|e| opts.only.is_empty() || opts.only.contains(e)).collect();
    for task in Task::ALL {
        for split in ["train", "validation", "test"] {
            let p = opts.data_root.join(task.name()).join(format!("{split}.jsonl"));
            if !p.exists() {
                bail!("{}: missing (the experiments need train/validation/test.jsonl of every task)", p.display())
            }
        }
    }
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;

    // Count the distinct jobs for the progress bar.
    let mut specs: Vec<RunSpec> = Vec::new();
    let mut jobs = 0;
    for e in &chosen {
        let (s, extra) = match e {
            Experiment::BeforeAfter => {
                // Per task: the base, the instructed base and a few-shot draw per seed; for
                // a task with an unseen test, those and every seed's adapter once more.
                let unseen = Task::ALL
                    .iter()
                    .filter(|t| opts.data_root.join(t.name()).join("test_unseen.jsonl").exists())
                    .count();
                let base = 2 + plan.seeds.len();
                (before_after::runs(&plan), Task::ALL.len() * base + unseen * (base + plan.seeds.len()))
            }
            Experiment::Rank => (rank::runs(&plan), 0),
            Experiment::Subspace => (subspace::runs(&plan), 0),
            Experiment::Efficiency => (efficiency::runs(&plan), 1),
        };
        jobs += extra;
        for spec in s {
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
    }
    let progress = Progress::new(jobs + specs.len());
    progress.say(&format!(
        "{} experiments ({}): {} training runs, writing to {}",
        if opts.quick { "quick" } else { "full" },
        chosen.iter().map(|e| e.name()).collect::<Vec<_>>().join(", "),
        specs.len() + usize::from(chosen.contains(&Experiment::Efficiency)),
        opts.out.display()
    ));

    let _tmp;
    let runs_dir = match &opts.runs_dir {
        Some(d) => d.clone(),
        None => {
            let t = tempfile::Builder::new().prefix("lora-experiments-").tempdir()?;
            let p = t.path().to_path_buf();
            _tmp = t;
            p
        }
    };
    std::fs::create_dir_all(&runs_dir).with_context(|| format!("cannot create {}", runs_dir.display()))?;
    let settings = serde_json::to_value(&plan)?;
    let recorder = Recorder::new(opts.command.clone(), opts.quick, settings);
    let mut runner = Runner::new(plan, opts.data_root.clone(), runs_dir, progress)?;
    for e in chosen {
        let started = Instant::now();
        let path = e.json_path(&opts.out);
        let secs = || started.elapsed().as_secs_f64();
        match e {
            Experiment::BeforeAfter => {
                record::write_json(&path, &recorder.wrap(before_after::run(&mut runner)?, secs()))?
            }
            Experiment::Rank => record::write_json(&path, &recorder.wrap(rank::run(&mut runner)?, secs()))?,
            Experiment::Subspace => record::write_json(&path, &recorder.wrap(subspace::run(&mut runner)?, secs()))?,
            Experiment::Efficiency => record::write_json(&path, &recorder.wrap(efficiency::run(&mut runner)?, secs()))?,
        }
        // The plots are drawn from the file just written, as the book's widgets read it.
        plots::draw(e, &opts.out)?;
        tables::write(e, &opts.out)?;
        runner.progress.say(&format!("wrote {} with its plots and tables", path.display()));
    }
    runner.progress.finish();
    if !runner.peak_rss_per_run {
        eprintln!("note: the peak-RSS mark could not be reset, so peak_rss_mib is the process's peak so far");
    }
    Ok(())
}
