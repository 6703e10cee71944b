//! `lora demo`: the whole loop on the sample task in one command. Answer held-out questions
//! with the base model, train an adapter, answer them again, print both side by side, and
//! export the adapter for Ollama. When the task folder has `test_unseen.jsonl` (what
//! training never showed: for `extract`, messages whose names, cities and products it never
//! saw), those are scored too, in a column of their own: the figure that shows the adapter
//! learnt the task, not the answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use lorakit::candle::DType;
use lorakit::data::load_dataset;
use lorakit::data::synth::Task;
use lorakit::eval::EvalReport;
use lorakit::export::{ExportFormat, ExportRequest};
use lorakit::train::{RunDir, TrainOptions, train};

use crate::term::{self, log_stderr, print_comparison, print_demo_comparison, print_export_report, print_summary};
use crate::{TrainFlags, ctrl_c_flag, evaluate, load, settings};

/// Run the demo with `flags` on the task whose files are in `data_dir`.
pub fn run(
    mut flags: TrainFlags,
    data_dir: &Path,
    task: Task,
    eval_examples: usize,
    export_dir: PathBuf,
) -> Result<()> {
    flags.train_data.get_or_insert(data_dir.join("train.jsonl"));
    flags.validation_data.get_or_insert(data_dir.join("validation.jsonl"));
    flags.output_dir.get_or_insert(PathBuf::from("models/lora_adapters/demo"));
    let cfg = flags.config()?;
    clear_previous_run(&cfg.output_dir)?;
    let mut test = load_dataset(&data_dir.join("test.jsonl"))?;
    test.truncate(eval_examples);
    let unseen_path = data_dir.join("test_unseen.jsonl");
    let mut unseen = if unseen_path.exists() { load_dataset(&unseen_path)? } else { Vec::new() };
    unseen.truncate(eval_examples);
    let mut m = load(&cfg.model, DType::F32)?;
    eprintln!("== before: the base model on {} held-out examples", test.len() + unseen.len());
    // Gold answers are under 40 tokens; the base model would ramble on.
    let before = evaluate(&m, &test, task, 48)?;
    let before_unseen = evaluate_some(&m, &unseen, task)?;
    eprintln!(
        "== training a LoRA adapter (r={}, alpha={}) on {}",
        cfg.lora.r,
        cfg.lora.alpha,
        cfg.train_data.display()
    );
    let opts = TrainOptions {
        resume: false,
        stop: Some(ctrl_c_flag()?),
        observer: Some(Arc::new(term::TrainBar::new(false))),
    };
    let (_, summary) = train(&cfg, &mut m, &opts)?;
    print_summary(&cfg.output_dir, &summary);
    eprintln!("== after: base + adapter on the same examples");
    let after = evaluate(&m, &test, task, 48)?;
    let after_unseen = evaluate_some(&m, &unseen, task)?;
    match (&before_unseen, &after_unseen) {
        (Some(b), Some(a)) => print_demo_comparison(&before, &after, b, a, 3),
        _ => print_comparison(&before, Some(&after), 5),
    }
    let json = serde_json::json!({
        "summary": summary,
        "before": before,
        "after": after,
        "before_unseen": before_unseen,
        "after_unseen": after_unseen,
    });
    let path = cfg.output_dir.join("demo_report.json");
    lorakit::io::atomic_write(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!("\nadapter, metrics, loss curve and this report are in {}", cfg.output_dir.display());
    eprintln!("== exporting for Ollama");
    let req = ExportRequest {
        force: true,
        ..ExportRequest::new(cfg.model.clone(), cfg.output_dir.clone(), ExportFormat::Ollama, export_dir)
    };
    print_export_report(&lorakit::export::export_with(&req, settings(), &log_stderr)?);
    Ok(())
}

/// [`evaluate`] on `records`, or `None` when there are none.
fn evaluate_some(
    m: &lorakit::load::LoadedModel,
    records: &[lorakit::data::Record],
    task: Task,
) -> Result<Option<EvalReport>> {
    if records.is_empty() { Ok(None) } else { evaluate(m, records, task, 48).map(Some) }
}

/// The demo (and `lora train --overwrite`) starts fresh, but only ever deletes a directory
/// that holds a training run.
pub(crate) fn clear_previous_run(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !RunDir::new(dir).is_run() {
        bail!("{} exists and is not a previous training run: choose another --output-dir", dir.display())
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))
}
