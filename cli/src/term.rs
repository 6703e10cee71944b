//! What `lora` shows on the terminal while lorakit works: log lines and progress bars on
//! stderr (bars only on a terminal), fed by lorakit's progress callbacks.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
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
            if let Ok(style) = ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}") {
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
        if bar.is_hidden() && !self.quiet && (m.step % (total / 20).max(1) == 0 || m.step == total) {
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
            b.set_style(ProgressStyle::with_template("{spinner} evaluating {pos}/{len} [{bar:30}] (ETA {eta})").expect("valid template"));
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
