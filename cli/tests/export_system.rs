//! `lora export --format ollama` writes the system prompt the adapter was trained under as
//! the Modelfile's SYSTEM line, so `ollama run NAME "message"` builds the prompt the adapter
//! learned on. From a real training run (one step on SmolLM2, which records the data's
//! system prompts), and from a run that only names its training data, where the data carry
//! several prompts and the most frequent one is chosen.

use std::path::{Path, PathBuf};
use std::process::Command;

use lorakit::candle::{DType, Device};
use lorakit::data::load_dataset;
use lorakit::ollama::modelfile::Modelfile;
use lorakit::train::{TrainConfig, TrainOptions, train};
use lorakit::{LoraAdapter, LoraConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A small adapter: rank 2 on q_proj, enough to go through every export step quickly.
fn small_lora() -> LoraConfig {
    LoraConfig { r: 2, target_modules: vec!["q_proj".into()], ..Default::default() }
}

/// `lora export --format ollama` of `run` into `out`; returns stdout (the report and its notes).
fn export_ollama(run: &Path, out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["export", "--model", "smollm2-135m", "--adapter"])
        .arg(run)
        .args(["--format", "ollama", "--out"])
        .arg(out)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "lora export failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// The SYSTEM line of both Modelfiles of an export, checked to be the same.
fn system_lines(out: &Path) -> Option<String> {
    let merged = Modelfile::read(&out.join("Modelfile")).unwrap();
    let routed = Modelfile::read(&out.join("Modelfile.adapter")).unwrap();
    assert_eq!(merged.system, routed.system, "both routes carry the same SYSTEM");
    merged.system
}

#[test]
fn modelfile_system_is_the_training_datas_system_message() {
    let work = tempfile::tempdir().unwrap();
    let data = root().join("data/extract/train.jsonl");
    let records = load_dataset(&data).unwrap();
    let trained_under = records[0].system().expect("the extract task has a system message");
    assert!(records.iter().all(|r| r.system() == Some(trained_under)), "one system message for all examples");

    // One optimizer step, as `lora train` runs it: the trainer records the data's prompts.
    let cfg = TrainConfig {
        train_data: data,
        validation_data: None,
        output_dir: work.path().join("run"),
        lora: small_lora(),
        max_steps: Some(1),
        micro_batch: 1,
        grad_accum: 1,
        eval_every: 0,
        save_every: 0,
        ..TrainConfig::default()
    };
    let mut m = lorakit::load::load(&cfg.model, DType::F32).unwrap();
    train(&cfg, &mut m, &TrainOptions { resume: false, stop: None, observer: None }).unwrap();

    let out = work.path().join("ollama");
    let report = export_ollama(&cfg.output_dir, &out);
    assert_eq!(system_lines(&out).as_deref(), Some(trained_under));
    let text = std::fs::read_to_string(out.join("Modelfile")).unwrap();
    assert!(text.lines().any(|l| l == format!("SYSTEM {trained_under}")), "{text}");
    assert!(report.contains("SYSTEM is the system prompt all 300 training examples carry"), "{report}");
}

#[test]
fn several_system_messages_give_the_most_frequent_with_a_note() {
    let work = tempfile::tempdir().unwrap();
    let (common, rare) = ("Answer with JSON only.", "Be brief.");
    let line = |system: Option<&str>| {
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(serde_json::json!({ "role": "system", "content": s }));
        }
        messages.push(serde_json::json!({ "role": "user", "content": "Hi, I'm Ana from Porto. 3 Desk Lamps please." }));
        messages.push(serde_json::json!({ "role": "assistant", "content": "{\"name\":\"Ana\"}" }));
        serde_json::json!({ "messages": messages }).to_string()
    };
    let lines = [line(Some(rare)), line(Some(common)), line(None), line(Some(common)), line(Some(common))];
    let data = work.path().join("train.jsonl");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();

    // An adapter directory whose train_config.toml names the data (no system_prompts.json):
    // the export counts the prompts in the data itself.
    let run = work.path().join("run");
    let m = lorakit::load::load("smollm2-135m", DType::F32).unwrap();
    LoraAdapter::init(small_lora(), &m.model.config, 7, DType::F32, &Device::Cpu).unwrap().save_peft(&run).unwrap();
    let cfg = TrainConfig { train_data: data, output_dir: run.clone(), ..TrainConfig::default() };
    std::fs::write(run.join("train_config.toml"), cfg.to_toml().unwrap()).unwrap();

    let out = work.path().join("ollama");
    let report = export_ollama(&run, &out);
    assert_eq!(system_lines(&out).as_deref(), Some(common));
    assert!(
        report.contains(
            "the training data carry 2 different system prompts; SYSTEM is the most frequent, used by 3 of 5"
        ),
        "{report}"
    );
}
