//! The envelope every results file is wrapped in: what made it (command, git commit), on
//! which machine, when, and how long it took. The book quotes numbers from these files, so
//! each must say how to make it again.

use anyhow::{Context, Result};
use lorakit::io::atomic_write;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The machine a run was measured on: timings and memory only mean something with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    /// Logical cores the process may use.
    pub cores: usize,
    pub ram_gib: f64,
    pub os: String,
    /// 1-minute load average when the experiment started and ended: other processes on the
    /// machine slow the timings down, and this says by roughly how much.
    pub load_average_start: Option<f64>,
    pub load_average_end: Option<f64>,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let ram_kib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            ram_gib: (ram_kib / 1048576.0 * 10.0).round() / 10.0,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            load_average_start: load_average(),
            load_average_end: None,
        }
    }
}

/// The 1-minute load average (Linux), if readable.
pub fn load_average() -> Option<f64> {
    load_averages().ok().map(|l| l[0])
}

/// The 1-, 5- and 15-minute load averages (Linux).
pub fn load_averages() -> Result<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").context("cannot read /proc/loadavg")?;
    let v: Vec<f64> = text.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
    match v.as_slice() {
        [a, b, c] => Ok([*a, *b, *c]),
        _ => anyhow::bail!("/proc/loadavg: unexpected content {text:?}"),
    }
}

/// `git rev-parse HEAD` of the repository at `dir`, and whether tracked files other than
/// the results under `book/data/` had uncommitted changes (then the commit alone does not
/// reproduce the run). The results are left out because a run writes them itself: the
/// second file of a run would otherwise call the first one a local change.
pub fn git_commit_in(dir: &Path) -> (String, bool) {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = run(&["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude,top)book/data"])
        .is_some_and(|s| !s.is_empty());
    (commit, dirty)
}

/// [`git_commit_in`] the current directory.
pub fn git_commit() -> (String, bool) {
    git_commit_in(Path::new("."))
}

/// One results file: `{command, git_commit, git_dirty, machine, date, quick, wall_seconds,
/// settings, results}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub command: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub machine: Machine,
    /// UTC, RFC 3339, when the experiment finished.
    pub date: String,
    pub quick: bool,
    /// Wall-clock time of this experiment alone (runs it shares with an earlier one are
    /// counted there).
    pub wall_seconds: f64,
    /// The plan the numbers came from (steps, batch, learning rate, examples, ...).
    pub settings: serde_json::Value,
    pub results: T,
}

/// What every file of one `lora experiments` invocation shares.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub command: String,
    pub machine: Machine,
    pub quick: bool,
    pub settings: serde_json::Value,
}

impl Recorder {
    pub fn new(command: String, quick: bool, settings: serde_json::Value) -> Self {
        Self { command, machine: Machine::describe(), quick, settings }
    }

    pub fn wrap<T>(&self, results: T, wall_seconds: f64) -> Envelope<T> {
        let (git_commit, git_dirty) = git_commit();
        let mut machine = self.machine.clone();
        machine.load_average_end = load_average();
        Envelope {
            command: self.command.clone(),
            git_commit,
            git_dirty,
            machine,
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            quick: self.quick,
            wall_seconds: (wall_seconds * 10.0).round() / 10.0,
            settings: self.settings.clone(),
            results,
        }
    }
}

/// Write `value` as pretty JSON, atomically (a crash never leaves half a file).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).with_context(|| format!("serializing {}", path.display()))?;
    atomic_write(path, (text + "\n").as_bytes())
}
