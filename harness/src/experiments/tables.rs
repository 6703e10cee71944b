//! The experiments' markdown tables (`<name>.md` beside `<name>.json`), which the book's
//! Part V chapters include: every number in them is printed here from the results file, so
//! the chapters never carry a typed-in copy that could go stale.

use super::record::Envelope;
use super::{Experiment, Stat, before_after, efficiency, rank, subspace};
use anyhow::{Context, Result};
use lorakit::io::atomic_write;
use serde::de::DeserializeOwned;
use std::fmt::Write;
use std::path::Path;

/// Write `dir/<name>.md` for experiment `e` from `dir/<name>.json`.
pub fn write(e: Experiment, dir: &Path) -> Result<()> {
    let text = match e {
        Experiment::BeforeAfter => {
            let env = envelope(e, dir)?;
            let examples = before_after_examples(&env.results);
            atomic_write(&dir.join("before_after_examples.md"), examples.as_bytes())?;
            with_footer(before_after_table(&env.results), &env)
        }
        Experiment::Rank => {
            let env = envelope(e, dir)?;
            with_footer(rank_tables(&env.results), &env)
        }
        Experiment::Subspace => {
            let env = envelope(e, dir)?;
            with_footer(subspace_table(&env.results), &env)
        }
        Experiment::Efficiency => {
            let env = envelope(e, dir)?;
            with_footer(efficiency_table(&env.results), &env)
        }
    };
    atomic_write(&dir.join(format!("{}.md", e.name())), text.as_bytes())
}

fn envelope<T: DeserializeOwned>(e: Experiment, dir: &Path) -> Result<Envelope<T>> {
    let path = e.json_path(dir);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a {} results file", path.display(), e.name()))
}

/// Where the numbers came from: the command, commit, machine, date and load.
fn with_footer<T>(mut md: String, env: &Envelope<T>) -> String {
    let m = &env.machine;
    let load = match (m.load_average_start, m.load_average_end) {
        (Some(a), Some(b)) => format!(", load average {a:.1} at the start and {b:.1} at the end"),
        _ => String::new(),
    };
    let commit = &env.git_commit[..env.git_commit.len().min(7)];
    let dirty = if env.git_dirty { " plus uncommitted changes" } else { "" };
    let _ = write!(
        md,
        "\n<small>Measured by `{}` at commit {commit}{dirty}, {}; {} × {} cores, {} GiB RAM{load}; {:.0} s.</small>\n",
        env.command, env.date, m.cpu_model, m.cores, m.ram_gib, env.wall_seconds
    );
    md
}

/// `mean ± spread`, both with `digits` decimals.
fn pm(s: &Stat, digits: usize) -> String {
    format!("{:.digits$} ± {:.digits$}", s.mean, s.spread)
}

fn mib(bytes: u64) -> String {
    let m = bytes as f64 / 1048576.0;
    if m >= 100.0 { format!("{m:.0} MiB") } else { format!("{m:.2} MiB") }
}

/// 1234567 → "1,234,567".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn loss(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

fn before_after_table(r: &before_after::Results) -> String {
    let shots = r.use_cases.first().map(|u| u.baselines.shots).unwrap_or(0);
    let mut md = format!(
        "| use case | metric | base | base, told the task | base, shown {shots} examples | base + LoRA | per seed | \
         test loss, base → LoRA | answers better / same / worse |\n|---|---|---:|---:|---:|---:|---|---|---|\n",
    );
    // One row per test set: a use case's test, then its unseen test if it has one.
    let mut row =
        |label: String, metric: &str, base: &Stat, b: &before_after::Baselines, lora: &Stat, losses, answers| {
            let (base_loss, lora_loss): (f64, &Stat) = losses;
            let per_seed: Vec<String> = lora.per_seed.iter().map(|v| format!("{v:.3}")).collect();
            let _ = writeln!(
                md,
                "| {label} | `{metric}` | {:.3} | {:.3} | {} | **{}** | {} | {base_loss:.3} → {} | {} |",
                base.mean,
                b.prompted.mean,
                pm(&b.few_shot, 3),
                pm(lora, 3),
                per_seed.join(", "),
                pm(lora_loss, 3),
                tally(answers),
            );
        };
    for u in &r.use_cases {
        let name = u.task.name();
        let losses = (u.base_test_loss, &u.lora_test_loss);
        row(name.into(), &u.metric_name, &u.base, &u.baselines, &u.lora, losses, &u.examples);
        if let Some(x) = &u.unseen {
            let label = format!("{name}, {}", u.task.unseen_label());
            let losses = (x.base_test_loss, &x.lora_test_loss);
            row(label, &u.metric_name, &x.base, &x.baselines, &x.lora, losses, &x.answers);
        }
    }
    md
}

/// Example by example (first seed): how many answers the adapter made better, left the
/// same, made worse.
fn tally(examples: &[before_after::Example]) -> String {
    let count = |f: fn(f64, f64) -> bool| examples.iter().filter(|e| f(e.score_after, e.score_before)).count();
    let (better, worse) = (count(|a, b| a > b), count(|a, b| a < b));
    format!("{better} / {} / {worse} of {}", examples.len() - better - worse, examples.len())
}

/// Per task, the first two test answers the adapter improved and the first two it did not
/// (first seed), side by side with the gold answer.
fn before_after_examples(r: &before_after::Results) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ⏎ ");
    let mut md = String::new();
    for u in &r.use_cases {
        let improved = u.examples.iter().filter(|e| e.score_after > e.score_before).take(2);
        let not = u.examples.iter().filter(|e| e.score_after <= e.score_before).take(2);
        let _ = write!(
            md,
            "\n**{}** (`{}`)\n\n| prompt | gold answer | base model | base + LoRA | score before → after |\n|---|---|---|---|---|\n",
            u.task.name(),
            u.metric_name
        );
        for e in improved.chain(not) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} → {} |",
                cell(&e.prompt),
                cell(&e.reference),
                cell(&e.before),
                cell(&e.after),
                e.score_before,
                e.score_after
            );
        }
    }
    md
}

fn targets(t: &[String]) -> String {
    if t.len() == lorakit::lora::TARGET_MODULES.len() { "all 7".into() } else { t.join(", ") }
}

fn rank_row(md: &mut String, run: &rank::Run) {
    let _ = writeln!(
        md,
        "| {} | {} | {}{} | {} | {} | {} | {:.2} s | {:.0} MiB | {} | {:.3} | {:.2} |",
        run.r,
        run.alpha,
        format_args!("{:.3}", run.scale),
        if run.rslora { " (rsLoRA)" } else { "" },
        targets(&run.targets),
        thousands(run.trainable_params),
        mib(run.adapter_bytes),
        run.step_seconds,
        run.peak_rss_mib,
        loss(run.val_loss),
        run.metric,
        run.exact,
    );
}

fn rank_tables(r: &rank::Results) -> String {
    let header = "| r | alpha | scale | targets | trainable | adapter file | step | peak RSS | val loss | metric | exact |\n\
                  |---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
    let mut md = String::new();
    for (name, title) in [("rank", "Rank, with alpha = 2r"), ("alpha", "Alpha rules"), ("targets", "Target modules")] {
        let Some(ids) = r.groups.get(name) else { continue };
        let _ = write!(md, "\n**{title}** (`{}`, seed {})\n\n{header}", r.metric_name, r.seed);
        for &i in ids {
            rank_row(&mut md, &r.runs[i]);
        }
    }
    md
}

fn subspace_table(r: &subspace::Results) -> String {
    let mut md = format!(
        "| module | dim | φ(1,1), layer {l} | at init | mean over layers | at init | φ({a},{b}), layer {l} | at init | random φ(1,1) | random φ({a},{b}) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        l = r.layer,
        a = r.r1,
        b = r.r2
    );
    for m in &r.per_module {
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.4} |",
            m.name,
            m.dim,
            m.phi_1_1,
            m.phi_1_1_init,
            m.phi_1_1_mean_layers,
            m.phi_1_1_init_mean_layers,
            m.phi_r1_r2,
            m.phi_r1_r2_init,
            m.random_phi_1_1,
            m.random_phi_r1_r2
        );
    }
    md
}

fn efficiency_table(r: &efficiency::Results) -> String {
    let (l, f) = (&r.lora, &r.full);
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.1}×", a / b) } else { "–".into() };
    let mut md = String::from("| | LoRA | full fine-tuning | full / LoRA |\n|---|---:|---:|---:|\n");
    let mut row = |name: &str, a: String, b: String, ratio: String| {
        let _ = writeln!(md, "| {name} | {a} | {b} | {ratio} |");
    };
    row("trains", l.trains.clone(), f.trains.clone(), String::new());
    row(
        "trainable parameters",
        thousands(l.trainable_params),
        thousands(f.trainable_params),
        ratio(f.trainable_params as f64, l.trainable_params as f64),
    );
    row(
        "AdamW state",
        mib(l.optimizer_state_bytes),
        mib(f.optimizer_state_bytes),
        ratio(f.optimizer_state_bytes as f64, l.optimizer_state_bytes as f64),
    );
    row(
        "peak RSS",
        format!("{:.0} MiB", l.peak_rss_mib),
        format!("{:.0} MiB", f.peak_rss_mib),
        ratio(f.peak_rss_mib, l.peak_rss_mib),
    );
    row(
        "time per step",
        format!("{:.2} s", l.step_seconds),
        format!("{:.2} s", f.step_seconds),
        ratio(f.step_seconds, l.step_seconds),
    );
    row(
        "checkpoint",
        mib(l.checkpoint_bytes),
        mib(f.checkpoint_bytes),
        ratio(f.checkpoint_bytes as f64, l.checkpoint_bytes as f64),
    );
    row("learning rate", format!("{}", l.lr), format!("{}", f.lr), String::new());
    row("validation loss", loss(l.val_loss), loss(f.val_loss), String::new());
    row("test loss", format!("{:.4}", l.test_loss), format!("{:.4}", f.test_loss), String::new());
    row(&format!("`{}`", r.metric_name), format!("{:.3}", l.metric), format!("{:.3}", f.metric), String::new());
    md
}
