//! What `lora` shows on the terminal while lorakit works: log lines and progress bars on
//! stderr (bars only on a terminal), fed by lorakit's progress callbacks.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use lorakit::eval::EvalReport;
use lorakit::progress::Bytes;
use lorakit::train::{StepMetrics, TrainObserver};

/// The log sink every command gives lorakit: one stderr line per message.
pub fn log_stderr(message: &str) {
    eprintln!("{message}");
}

/// A byte-count bar for files of 1 MiB or more, when stderr is a terminal.
#[derive(Default)]
pub struct ByteBar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bytes for ByteBar {
    fn start(&self, what: &str, total: u64) {
        let bar = if !std::io::stderr().is_terminal() || total < 1 << 20 {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            {
                bar.set_style(style);
            }
            bar.set_message(what.to_string());
            bar
        };
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// Training progress: a bar on a terminal; elsewhere (a log file, CI) a line every 5% of the
/// steps and at the last one. `quiet` shows nothing.
pub struct TrainBar {
    quiet: bool,
    bar: Mutex<ProgressBar>,
}

impl TrainBar {
    pub fn new(quiet: bool) -> TrainBar {
        TrainBar { quiet, bar: Mutex::new(ProgressBar::hidden()) }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, ProgressBar> {
        self.bar.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TrainObserver for TrainBar {
    fn started(&self, total: usize, done: usize) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} step {pos}/{len} [{bar:30}] {msg} (ETA {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_position(done as u64);
        *self.bar() = bar;
    }

    fn step(&self, m: &StepMetrics, total: usize, tokens_per_s: f64) {
        let msg = match m.val_loss {
            Some(v) => format!("loss {:.4} val {:.4} {:.0} tok/s", m.loss, v, tokens_per_s),
            None => format!("loss {:.4} {:.0} tok/s", m.loss, tokens_per_s),
        };
        let bar = self.bar();
        bar.set_position(m.step as u64);
        bar.set_message(msg.clone());
        if bar.is_hidden() && !self.quiet && (m.step.is_multiple_of((total / 20).max(1)) || m.step == total) {
            eprintln!("step {}/{total}: {msg}", m.step);
        }
    }

    fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    fn finished(&self) {
        self.bar().finish_and_clear();
    }
}

/// Evaluation progress: a bar over the examples, on a terminal only.
pub struct EvalBar {
    bar: ProgressBar,
}

impl EvalBar {
    pub fn new(total: usize) -> EvalBar {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{spinner} evaluating {pos}/{len} [{bar:30}] (ETA {eta})")
                    .expect("valid template"),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        EvalBar { bar }
    }

    /// The callback for `lorakit::eval::evaluate_with`.
    pub fn update(&self, done: usize, total: usize) {
        self.bar.set_position(done as u64);
        if done == total {
            self.bar.finish_and_clear();
        }
    }
}

/// `lora export`'s report on stdout.
pub fn print_export_report(r: &lorakit::export::ExportReport) {
    println!("exported {} ({}) in {:.1} s:", r.out.display(), r.dtype.name(), r.seconds);
    for f in &r.files {
        println!("  {:>10.2} MiB  sha256:{}  {}", f.bytes as f64 / 1048576.0, f.sha256, f.path.display());
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    if let Some(cmd) = &r.ollama_create {
        println!("deploy with `lora deploy {}`, or with Ollama's CLI: {cmd}", r.out.display());
    }
}

/// A finished run in three lines.
pub fn print_summary(dir: &Path, s: &lorakit::train::TrainSummary) {
    println!(
        "trained {} steps on {} examples in {:.0} s ({:.0} tokens/s, peak memory {:.0} MiB)",
        s.steps, s.train_examples, s.wall_time_secs, s.tokens_per_second, s.peak_rss_mib
    );
    println!(
        "trainable parameters: {} of {} ({:.2}%); adapter file {:.1} MiB; loss {:.3} -> {:.3}",
        s.trainable_parameters,
        s.base_parameters,
        s.trainable_share_percent,
        s.adapter_bytes as f64 / 1048576.0,
        s.first_loss.unwrap_or(f64::NAN),
        s.final_loss.unwrap_or(f64::NAN)
    );
    println!("output: {}", dir.display());
}

/// Base and adapted scores side by side, then the first `show` answers.
pub fn print_comparison(base: &EvalReport, tuned: Option<&EvalReport>, show: usize) {
    println!("\n{:<28} {:>10} {:>10}", format!("{:?} task, {} examples", base.task, base.examples), "base", "+ LoRA");
    let row = |name: &str, a: f64, b: Option<f64>| {
        let b = b.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        println!("{name:<28} {a:>10.3} {b:>10}");
    };
    row("task metric (mean)", base.metric, tuned.map(|t| t.metric));
    row("fully correct (share)", base.exact, tuned.map(|t| t.exact));
    row("loss on gold answers", base.loss, tuned.map(|t| t.loss));
    for (i, a) in base.answers.iter().take(show).enumerate() {
        println!("\n[{}] {}", i + 1, a.prompt);
        println!("  gold:   {}", a.gold);
        println!("  base:   {}", one_line(&a.prediction));
        if let Some(t) = tuned {
            println!("  + LoRA: {}", one_line(&t.answers[i].prediction));
        }
    }
}

/// The demo's table: the held-out phrasings (of values, facts or questions seen in training)
/// next to the unseen test (values, facts or questions training never saw), base and
/// adapter for each; then
/// `show` answers of each set, the adapter's misses first.
pub fn print_demo_comparison(
    before: &EvalReport,
    after: &EvalReport,
    b_unseen: &EvalReport,
    a_unseen: &EvalReport,
    show: usize,
) {
    println!("\n{:?} task{:>27}{:>23}", before.task, before.task.seen_label(), before.task.unseen_label());
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        format!("{} + {} examples", before.examples, b_unseen.examples),
        "base",
        "+ LoRA",
        "base",
        "+ LoRA"
    );
    let row = |name: &str, f: fn(&EvalReport) -> f64| {
        println!("{name:<28} {:>10.3} {:>10.3} {:>10.3} {:>10.3}", f(before), f(after), f(b_unseen), f(a_unseen));
    };
    row("task metric (mean)", |r| r.metric);
    row("fully correct (share)", |r| r.exact);
    row("loss on gold answers", |r| r.loss);
    // The adapter's misses first: they show what it has not learnt.
    let pick = |b: &EvalReport, a: &EvalReport| {
        let mut pairs: Vec<_> = b.answers.iter().zip(&a.answers).map(|(b, a)| (b.clone(), a.clone())).collect();
        pairs.sort_by_key(|(_, a)| a.score >= 1.0);
        pairs.truncate(show);
        pairs
    };
    for (i, (b, a)) in pick(before, after).into_iter().chain(pick(b_unseen, a_unseen)).enumerate() {
        println!("\n[{}] {}", i + 1, b.prompt);
        println!("  gold:   {}", b.gold);
        println!("  base:   {}", one_line(&b.prediction));
        println!("  + LoRA: {}", one_line(&a.prediction));
    }
}

fn one_line(s: &str) -> String {
    let flat = s.replace('\n', " ⏎ ");
    if flat.chars().count() > 160 { format!("{}…", flat.chars().take(160).collect::<String>()) } else { flat }
}
