//! The model Ollama would serve from `lora export --format ollama` answers like the adapter
//! did in `lora eval`. Each held-out prompt is built from the exported Modelfile exactly as
//! Ollama builds it (its SYSTEM in front, the Go TEMPLATE rendered, its stop strings), run
//! greedily in real llama.cpp (the engine inside Ollama) on `model.gguf` and on the base +
//! `adapter.gguf`, and scored with the task metric. A Modelfile without its SYSTEM line must
//! score measurably worse, so the test can tell the difference.

use lora_book::llama_cpp::{self, LlamaCpp};
use lorakit::candle::DType;
use lorakit::chat::Message;
use lorakit::data::{Record, Task, load_dataset, task_metric};
use lorakit::eval::evaluate;
use lorakit::export::{ExportFormat, ExportRequest, export};
use lorakit::load::load;
use lorakit::lora::LoraAdapter;
use lorakit::ollama::modelfile::Modelfile;
use lorakit::train::{SystemPrompts, TrainConfig, TrainOptions, train};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Held-out prompts scored (the demo answers 30).
const PROMPTS: usize = 30;
/// The demo's answer length.
const MAX_TOKENS: usize = 48;
/// How far the deployed model's task metric may fall from `lora eval`'s.
const TOLERANCE: f64 = 0.05;

/// The user's message alone, as `ollama run NAME "message"` sends it.
fn ollama_prompts(modelfile: &Modelfile, test: &[Record]) -> Vec<String> {
    test.iter()
        .map(|r| modelfile.ollama_prompt(&[Message::new("user", r.user().expect("a user message"))]).unwrap())
        .collect()
}

/// Mean task metric of llama.cpp's answers to `prompts`.
fn served_metric(
    llama: &LlamaCpp,
    model: &Path,
    adapter: Option<&Path>,
    modelfile: &Modelfile,
    prompts: &[String],
    test: &[Record],
) -> (f64, Vec<String>) {
    let answers = llama.answer_like_ollama(model, adapter.map(|a| (a, 1.0)), prompts, &modelfile.stops(), MAX_TOKENS);
    let texts: Vec<String> = answers.iter().map(|a| a.text.trim().to_string()).collect();
    let total: f64 = texts.iter().zip(test).map(|(t, r)| task_metric(Task::Extract, t, r.answer().unwrap())).sum();
    (total / test.len() as f64, texts)
}

/// The message of the README's `ollama run demo "…"` line and the answer printed under it.
fn readme_example(readme: &Path) -> (String, String) {
    let text = std::fs::read_to_string(readme).unwrap();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("ollama run demo \""));
    let run = lines.next().expect("README.md has an `ollama run demo \"…\"` line");
    let message = run.trim_start_matches("ollama run demo \"").trim_end().trim_end_matches('"');
    let answer = lines.next().expect("the answer under the `ollama run demo` line");
    (message.to_string(), answer.trim().to_string())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The run `lora demo` leaves in `models/lora_adapters/demo` (book_commands runs the demo
/// earlier in the same `cargo test`), when it is this training: the same settings and data,
/// and written after this test was built and after the data last changed. Training takes
/// most of this test's time, and the trainer is deterministic, so the demo's adapter is the
/// one this test would train. Returns the run directory and the demo's own `lora eval`
/// metric on the same held-out prompts, or why the run cannot stand in.
fn fresh_demo_run(root: &Path, cfg: &TrainConfig) -> Result<(PathBuf, f64), String> {
    let run = root.join("models/lora_adapters/demo");
    let report = run.join("demo_report.json");
    let made = modified(&report).ok_or("no demo run")?;
    let built = std::env::current_exe().ok().and_then(|e| modified(&e)).ok_or("no test binary time")?;
    if made < built || modified(&cfg.train_data).is_none_or(|t| made < t) {
        return Err("the demo run is older than this build or than the data".into());
    }
    let mut theirs = TrainConfig::from_toml_file(&run.join("train_config.toml")).map_err(|e| format!("{e:#}"))?;
    theirs.train_data = root.join(&theirs.train_data);
    // Bookkeeping only: where it writes, and when it validates and saves.
    (theirs.output_dir, theirs.validation_data, theirs.eval_every, theirs.save_every) =
        (cfg.output_dir.clone(), None, cfg.eval_every, cfg.save_every);
    if &theirs != cfg {
        return Err(format!("the demo trained with other settings: {theirs:?}"));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let after = &report["after"];
    match (after["examples"].as_u64(), after["task"].as_str(), after["metric"].as_f64()) {
        (Some(n), Some("extract"), Some(metric)) if n == PROMPTS as u64 => Ok((run, metric)),
        _ => Err(format!("the demo report scores other prompts: {} of task {}", after["examples"], after["task"])),
    }
}

#[test]
fn deployed_model_answers_like_the_trained_adapter() {
    lorakit::runtime::configure(); // the allocator settings `lora` uses (see lorakit::runtime)
    let Some(llama) = llama_cpp::required() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ollama_fidelity");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // `lora demo`'s run: the default settings on the extraction task.
    let mut cfg = TrainConfig {
        train_data: root.join("data/extract/train.jsonl"),
        validation_data: None,
        output_dir: dir.join("run"),
        eval_every: 0,
        save_every: 0,
        ..TrainConfig::default()
    };
    let mut test = load_dataset(&root.join("data/extract/test.jsonl")).unwrap();
    test.truncate(PROMPTS);
    assert!(test.len() >= 20, "too few held-out prompts: {}", test.len());
    let mut m = load(&cfg.model, DType::F32).unwrap();
    let eval_metric = match fresh_demo_run(&root, &cfg) {
        Ok((run, metric)) => {
            eprintln!("the adapter of this build's `lora demo` run in {}", run.display());
            let adapter = LoraAdapter::load_peft(&run, &m.model.config, DType::F32, m.model.device()).unwrap();
            m.model.apply_adapter(&adapter).unwrap();
            cfg.output_dir = run;
            metric
        }
        Err(why) => {
            eprintln!("training the demo's adapter here: {why}");
            train(&cfg, &mut m, &TrainOptions { resume: false, stop: None, observer: None }).unwrap();
            evaluate(&m, &test, Task::Extract, MAX_TOKENS).unwrap().metric
        }
    };

    let out = dir.join("ollama");
    export(&ExportRequest::new(cfg.model.clone(), &cfg.output_dir, ExportFormat::Ollama, &out)).unwrap();
    let merged = Modelfile::read(&out.join("Modelfile")).unwrap();
    let routed = Modelfile::read(&out.join("Modelfile.adapter")).unwrap();
    let trained_under = test[0].system().expect("the task has a system prompt");
    assert_eq!(merged.system.as_deref(), Some(trained_under), "SYSTEM is the training prompt");
    let (record, _) = SystemPrompts::of_run(&cfg.output_dir).unwrap().expect("the run's record");
    assert_eq!(record.most_frequent().map(|p| p.text.as_str()), Some(trained_under));

    // The prompt Ollama builds is, token for token, the one the adapter was evaluated on.
    let prompts = ollama_prompts(&merged, &test);
    assert_eq!(prompts, ollama_prompts(&routed, &test), "both Modelfiles render the same prompts");
    let base = PathBuf::from(&routed.from);
    let served = llama.answer_like_ollama(&out.join("model.gguf"), None, &prompts[..1], &merged.stops(), 1);
    let candle_ids = m.encode(&m.chat_prompt(test[0].prompt()).unwrap()).unwrap();
    assert_eq!(
        served[0].prompt_ids, candle_ids,
        "llama.cpp's tokens of Ollama's prompt differ from the evaluated prompt"
    );

    let (merged_metric, merged_answers) =
        served_metric(&llama, &out.join("model.gguf"), None, &merged, &prompts, &test);
    let (adapter_metric, _) = served_metric(&llama, &base, Some(&out.join("adapter.gguf")), &routed, &prompts, &test);
    let bare = Modelfile { system: None, ..merged.clone() };
    let (bare_metric, bare_answers) =
        served_metric(&llama, &out.join("model.gguf"), None, &bare, &ollama_prompts(&bare, &test), &test);

    eprintln!("task metric on {} held-out prompts (extract, mean field accuracy):", test.len());
    eprintln!("  lora eval (candle, f32, base + adapter):               {:.3}", eval_metric);
    eprintln!("  llama.cpp as Ollama, merged Q8_0 model.gguf + SYSTEM:  {merged_metric:.3}");
    eprintln!("  llama.cpp as Ollama, base + adapter.gguf + SYSTEM:     {adapter_metric:.3}");
    eprintln!("  llama.cpp as Ollama, model.gguf without SYSTEM:        {bare_metric:.3}");
    for (i, (with, without)) in merged_answers.iter().zip(&bare_answers).take(3).enumerate() {
        eprintln!(
            "  prompt {}: {:?}\n    with SYSTEM:    {with}\n    without SYSTEM: {without}",
            i + 1,
            test[i].user().unwrap()
        );
    }

    // The README's `ollama run demo "…"` example and the answer it shows.
    let (message, shown) = readme_example(&root.join("README.md"));
    let asked = vec![merged.ollama_prompt(&[Message::new("user", &message)]).unwrap()];
    let answer = llama.answer_like_ollama(&out.join("model.gguf"), None, &asked, &merged.stops(), MAX_TOKENS);
    assert_eq!(
        answer[0].text.trim(),
        shown,
        "the README's deploy example: the deployed model answers {message:?} otherwise"
    );

    for (route, metric) in [("merged model.gguf", merged_metric), ("base + adapter.gguf", adapter_metric)] {
        assert!(
            (metric - eval_metric).abs() <= TOLERANCE,
            "{route}: served like Ollama, the task metric is {metric:.3}; lora eval says {:.3} (tolerance {TOLERANCE})",
            eval_metric
        );
    }
    assert!(
        eval_metric - bare_metric > TOLERANCE,
        "without SYSTEM the served model scores {bare_metric:.3} against {:.3}: this test could not tell a missing SYSTEM",
        eval_metric
    );
}
