//! Real llama.cpp (the engine Ollama runs) loads every GGUF the exporter writes and scores
//! it like candle: tiny fixture models at f32 precision, and the default SmolLM2 model with
//! an adapter trained here, exported as F32, F16 and Q8_0 merged models and as a GGUF
//! adapter on the Q4_1 base. The adapter is trained on a Q8_0 copy of SmolLM2 kept in its
//! blocks (`base_dtype = q8_0`, QLoRA-style), and as a GGUF adapter on that same Q8_0 file it
//! gives llama.cpp candle's greedy answers.

use lora_book::llama_cpp::{LlamaCpp, required};
use lora_book::*;
use lorakit::candle::{DType, Device};
use lorakit::export::gguf::write_gguf;
use lorakit::export::merged::merged_tensors;
use lorakit::export::metadata::from_gguf_base;
use lorakit::export::{ExportDtype, ExportFormat, ExportRequest, export};
use lorakit::generate::{GenerationConfig, generate};
use lorakit::load::{LoadedModel, load, load_in_blocks, load_path};
use lorakit::train::{BaseDtype, TrainConfig, TrainOptions, train};
use lorakit::{Checkpoint, Llama, LoraAdapter};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn export_to(model: &Path, adapter: &Path, format: ExportFormat, dtype: ExportDtype, out: &Path) {
    let req = ExportRequest {
        dtype: Some(dtype),
        force: true,
        ..ExportRequest::new(model.display().to_string(), adapter, format, out)
    };
    export(&req).unwrap_or_else(|e| panic!("export {format:?} {}: {e:#}", dtype.name()));
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = row.iter().map(|&x| (x as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Max |p_llama − p_candle| over candle's top 5 next-token probabilities at the last
/// position of each prompt (the first token the model would answer with).
fn first_token_gap(candle_rows: &[Vec<f32>], llama_rows: &[Vec<f32>]) -> f64 {
    let mut worst = 0.0f64;
    for (c, l) in candle_rows.iter().zip(llama_rows) {
        let (pc, pl) = (softmax(c), softmax(l));
        let mut idx: Vec<usize> = (0..pc.len()).collect();
        idx.sort_by(|&a, &b| pc[b].total_cmp(&pc[a]));
        for &i in &idx[..5] {
            worst = worst.max((pc[i] - pl[i]).abs());
        }
    }
    worst
}

/// candle's logits at the last position of each prompt.
fn candle_last(model: &Llama, prompts: &[Vec<u32>]) -> Vec<Vec<f32>> {
    prompts
        .iter()
        .map(|p| {
            let logits = model.forward(&model.ids_tensor(std::slice::from_ref(p)).unwrap()).unwrap();
            let last = logits.dims()[1] - 1;
            logits.get(0).unwrap().get(last).unwrap().to_dtype(DType::F32).unwrap().to_vec1().unwrap()
        })
        .collect()
}

fn llama_last(llama: &LlamaCpp, model: &Path, lora: Option<(&Path, f32)>, prompts: &[Vec<u32>]) -> Vec<Vec<f32>> {
    prompts
        .iter()
        .map(|p| {
            let rows = llama.logits(model, lora, std::slice::from_ref(p));
            rows[0].last().unwrap().clone()
        })
        .collect()
}

fn llama() -> Option<LlamaCpp> {
    required()
}

// ---- tiny fixture models: everything in f32, so the agreement is near rounding ----

#[test]
fn tiny_exports_score_like_candle_in_llama_cpp() {
    lorakit::runtime::configure(); // the allocator settings `lora` uses (see lorakit::runtime)
    let Some(llama) = llama() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = fixture("tiny-llama-gguf/tiny-llama-f32.gguf");
    let ids = id_rows(&read_json(&fixture("tiny-peft/expected.json")).unwrap()["input_ids"]);
    for peft in ["tiny-peft", "tiny-peft-rslora"] {
        let mut model = Llama::new(Checkpoint::load(&base, DType::F32, &Device::Cpu).unwrap()).unwrap();
        let adapter = LoraAdapter::load_peft(&fixture(peft), &model.config, DType::F32, &Device::Cpu).unwrap();
        model.apply_adapter(&adapter).unwrap();
        let want = candle_last(&model, &ids);

        let merged = dir.path().join(format!("{peft}-merged.gguf"));
        export_to(&base, &fixture(peft), ExportFormat::Gguf, ExportDtype::F32, &merged);
        let gap = first_token_gap(&want, &llama_last(&llama, &merged, None, &ids));
        eprintln!("{peft}: merged F32 in llama.cpp, first-token top-5 |Δp| {gap:.2e}");
        assert!(gap <= 1e-3, "{peft}: merged F32 gap {gap}");

        let f16 = dir.path().join(format!("{peft}-merged-f16.gguf"));
        export_to(&base, &fixture(peft), ExportFormat::Gguf, ExportDtype::F16, &f16);
        let gap = first_token_gap(&want, &llama_last(&llama, &f16, None, &ids));
        eprintln!("{peft}: merged F16 in llama.cpp, first-token top-5 |Δp| {gap:.2e}");
        assert!(gap <= 5e-3, "{peft}: merged F16 gap {gap}");

        let lora = dir.path().join(format!("{peft}.lora.gguf"));
        export_to(&base, &fixture(peft), ExportFormat::GgufAdapter, ExportDtype::F32, &lora);
        let gap = first_token_gap(&want, &llama_last(&llama, &base, Some((&lora, 1.0)), &ids));
        eprintln!("{peft}: base + GGUF adapter in llama.cpp, first-token top-5 |Δp| {gap:.2e}");
        assert!(gap <= 1e-3, "{peft}: base + adapter gap {gap}");

        // Whole logit rows at every position, as the fixtures were checked.
        let rows = llama.logits(&base, Some((&lora, 1.0)), &ids);
        let got: Vec<f64> = rows.iter().flatten().flatten().map(|&x| x as f64).collect();
        let all = tensor_f64(&model.forward(&model.ids_tensor(&ids).unwrap()).unwrap());
        assert_close(&format!("{peft}: llama.cpp base + adapter, all logits"), &got, &all, 1e-4);
    }
}

// ---- SmolLM2 with an adapter trained here ----

struct Trained {
    adapter: PathBuf,
    exports: PathBuf,
    /// SmolLM2's weights as a Q8_0 GGUF: the base the adapter was trained on.
    q8_0_base: PathBuf,
}

/// A short real training run on the extraction task (shared by the tests of this file).
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        // A static is never dropped, so a TempDir would outlive every run: use cargo's
        // per-test scratch directory instead, cleared here.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("export_llama_cpp");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        // What a reader gets from `ollama pull` for a Q8_0 tag: every matrix in Q8_0 blocks.
        let q8_0_base = dir.join("smollm2-q8_0.gguf");
        let base = load(lorakit::fetch::DEFAULT_MODEL, DType::F32).unwrap();
        let md = from_gguf_base(base.gguf.as_ref().unwrap(), "SmolLM2 135M Q8_0", ExportDtype::Q8_0).unwrap();
        write_gguf(&q8_0_base, &md, &merged_tensors(&base.model, ExportDtype::Q8_0).unwrap()).unwrap();
        drop(base);
        let cfg = TrainConfig {
            train_data: root.join("data/extract/train.jsonl"),
            validation_data: None,
            output_dir: dir.join("run"),
            max_steps: Some(12),
            micro_batch: 4,
            lr: 3e-3,
            warmup_steps: 2,
            eval_every: 0,
            save_every: 0,
            base_dtype: BaseDtype::Q8_0,
            ..TrainConfig::default()
        };
        // As `lora train --base-dtype q8_0` loads it: the file's blocks, never an f32 copy.
        let mut m = in_q8_0_blocks(&q8_0_base);
        train(&cfg, &mut m, &TrainOptions { resume: false, stop: None, observer: None }).unwrap();
        assert!(m.model.is_quantized(), "the base was not kept in Q8_0 blocks while training");
        let exports = dir.join("exports");
        std::fs::create_dir_all(&exports).unwrap();
        Trained { adapter: cfg.output_dir.clone(), exports, q8_0_base }
    })
}

fn in_q8_0_blocks(file: &Path) -> LoadedModel {
    let settings = lorakit::settings::Settings::from_env();
    let q8_0 = lorakit::candle::quantized::GgmlDType::Q8_0;
    load_in_blocks(file.to_str().unwrap(), q8_0, &settings, &lorakit::progress::silent).unwrap()
}

fn smollm2() -> PathBuf {
    lorakit::fetch::default_model_path().unwrap()
}

/// Three held-out extraction prompts rendered with the model's chat template.
fn prompts(m: &LoadedModel) -> Vec<Vec<u32>> {
    test_prompts(m, 3)
}

/// The first `n` held-out extraction prompts rendered with the model's chat template.
fn test_prompts(m: &LoadedModel, n: usize) -> Vec<Vec<u32>> {
    let test = lorakit::data::load_dataset(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/extract/test.jsonl"))
        .unwrap();
    test.iter().take(n).map(|r| m.encode(&m.chat_prompt(r.prompt()).unwrap()).unwrap()).collect()
}

fn tuned_candle() -> LoadedModel {
    let mut m = load_path(&smollm2(), DType::F32).unwrap();
    let a = LoraAdapter::load_peft(&trained().adapter, &m.model.config, DType::F32, &Device::Cpu).unwrap();
    m.model.apply_adapter(&a).unwrap();
    m
}

/// The three chat prompts of `fixtures/smollm2/logits.json`.
fn fixture_prompts() -> Vec<Vec<u32>> {
    let f = read_json(&fixture("smollm2/logits.json")).unwrap();
    f["prompts"].as_array().unwrap().iter().map(|p| id_rows(&serde_json::json!([p["prompt_ids"]])).remove(0)).collect()
}

/// Max top-5 |Δp| over every position of every prompt (not just the first answer token,
/// where a tuned model is often so sure that every engine says p ≈ 1).
fn every_position_gap(llama: &LlamaCpp, file: &Path, model: &Llama, prompts: &[Vec<u32>]) -> f64 {
    let mut worst = 0.0f64;
    for p in prompts {
        let logits = model.forward(&model.ids_tensor(std::slice::from_ref(p)).unwrap()).unwrap();
        let want: Vec<Vec<f32>> = logits.get(0).unwrap().to_dtype(DType::F32).unwrap().to_vec2().unwrap();
        let got = llama.logits(file, None, std::slice::from_ref(p)).remove(0);
        worst = worst.max(first_token_gap(&want, &got));
    }
    worst
}

#[test]
fn smollm2_merged_f32_and_f16_score_like_candle() {
    lorakit::runtime::configure(); // the allocator settings `lora` uses (see lorakit::runtime)
    let Some(llama) = llama() else { return };
    let t = trained();
    let m = tuned_candle();
    let mut ps = fixture_prompts();
    ps.extend(prompts(&m));
    let want = candle_last(&m.model, &ps);
    // (dtype, first answer token tolerance, every position tolerance): F16 weights move
    // some mid-prompt positions by ~4.6e-3 (measured), so those get 1e-2.
    for (dtype, tol, all_tol) in [(ExportDtype::F32, 1e-3, 1e-3), (ExportDtype::F16, 5e-3, 1e-2)] {
        let out = t.exports.join(format!("merged-{}.gguf", dtype.name()));
        export_to(&smollm2(), &t.adapter, ExportFormat::Gguf, dtype, &out);
        let gap = first_token_gap(&want, &llama_last(&llama, &out, None, &ps));
        let all = every_position_gap(&llama, &out, &m.model, &ps[..3]);
        eprintln!(
            "SmolLM2 merged {}: llama.cpp vs candle top-5 |Δp|: first answer token {gap:.2e}, every position {all:.2e}",
            dtype.name()
        );
        assert!(gap <= tol, "merged {} gap {gap} > {tol}", dtype.name());
        assert!(all <= all_tol, "merged {} gap over all positions {all} > {all_tol}", dtype.name());
    }
}

#[test]
fn smollm2_ollama_export_keeps_the_greedy_answer_in_llama_cpp() {
    lorakit::runtime::configure(); // the allocator settings `lora` uses (see lorakit::runtime)
    let Some(llama) = llama() else { return };
    let t = trained();
    let out = t.exports.join("ollama");
    export_to(&smollm2(), &t.adapter, ExportFormat::Ollama, ExportDtype::Q8_0, &out);
    let modelfile = std::fs::read_to_string(out.join("Modelfile")).unwrap();
    assert!(modelfile.contains("FROM ./model.gguf"), "{modelfile}");
    assert!(
        modelfile.contains("PARAMETER stop \"<|im_end|>\"") || modelfile.contains("PARAMETER stop <|im_end|>"),
        "{modelfile}"
    );

    let m = tuned_candle();
    let cfg = GenerationConfig { max_new_tokens: 48, ..Default::default() };
    for p in prompts(&m) {
        let (want, _) = generate(&m.model, &p, &m.stop_ids, &cfg, |_| Ok(())).unwrap();
        let got = llama.greedy(&out.join("model.gguf"), None, &p, 48);
        eprintln!("candle:    {:?}\nllama.cpp: {:?}", m.decode(&want).unwrap(), m.decode(&got).unwrap());
        assert_eq!(strip_stop(&got, &m.stop_ids), strip_stop(&want, &m.stop_ids), "Q8_0 changed the greedy answer");
    }
    // The adapter route: the Q4_1 base itself plus adapter.gguf. llama.cpp multiplies Q4_1
    // weights with 8-bit activations (candle dequantizes), so only the first token is compared.
    let ps = prompts(&m);
    let want = candle_last(&m.model, &ps);
    let got = llama_last(&llama, &smollm2(), Some((&out.join("adapter.gguf"), 1.0)), &ps);
    for (w, g) in want.iter().zip(&got) {
        let am = |r: &[f32]| r.iter().enumerate().fold(0, |b, (i, &x)| if x > r[b] { i } else { b });
        assert_eq!(am(g), am(w), "Q4_1 base + adapter: first token differs");
    }
    eprintln!(
        "Q4_1 base + adapter.gguf: first-token top-5 |Δp| {:.2e} (quantized activations)",
        first_token_gap(&want, &got)
    );
}

fn strip_stop(ids: &[u32], stops: &[u32]) -> Vec<u32> {
    ids.iter().copied().take_while(|i| !stops.contains(i)).collect()
}

/// The loop of the brief with the weights Ollama serves: an adapter trained on a Q8_0 base,
/// kept in its blocks, exported as a GGUF adapter and applied by llama.cpp to that same Q8_0
/// file, answers as candle does with the same blocks.
///
/// Both engines round activations to 8 bits for Q8_0 products, but not at the same places
/// (llama.cpp in every product, candle only while decoding one token), so logits differ by
/// up to a few tenths and a near tie may go either way (measured: "Porto" and "Piti" 0.07 apart
/// in llama.cpp, 0.23 in candle). Answers must be identical up to their first difference, and
/// there both engines must hold the same two tokens on top, within `NEAR_TIE` of each other.
#[test]
fn adapter_trained_on_a_q8_0_base_answers_alike_on_it_in_llama_cpp() {
    const NEAR_TIE: f32 = 0.5;
    lorakit::runtime::configure(); // the allocator settings `lora` uses (see lorakit::runtime)
    let Some(llama) = llama() else { return };
    let t = trained();
    let adapter_gguf = t.exports.join("q8_0-base-adapter.gguf");
    export_to(&t.q8_0_base, &t.adapter, ExportFormat::GgufAdapter, ExportDtype::F32, &adapter_gguf);

    let mut m = in_q8_0_blocks(&t.q8_0_base);
    let prompts = test_prompts(&m, 8);
    let base_answers: Vec<Vec<u32>> = prompts.iter().map(|p| llama.greedy(&t.q8_0_base, None, p, 48)).collect();
    let a = LoraAdapter::load_peft(&t.adapter, &m.model.config, DType::F32, &Device::Cpu).unwrap();
    m.model.apply_adapter(&a).unwrap();
    let cfg = GenerationConfig { max_new_tokens: 48, ..Default::default() };
    let top2 = |r: &[f32]| {
        let mut i: Vec<usize> = (0..r.len()).collect();
        i.sort_by(|&a, &b| r[b].total_cmp(&r[a]));
        ([i[0] as u32, i[1] as u32], r[i[0]] - r[i[1]])
    };
    let (mut identical, mut changed) = (0, 0);
    for (p, base) in prompts.iter().zip(&base_answers) {
        let (want, _) = generate(&m.model, p, &m.stop_ids, &cfg, |_| Ok(())).unwrap();
        let got = llama.greedy(&t.q8_0_base, Some((&adapter_gguf, 1.0)), p, 48);
        let (want, got) = (strip_stop(&want, &m.stop_ids), strip_stop(&got, &m.stop_ids));
        eprintln!("candle:    {:?}\nllama.cpp: {:?}", m.decode(&want).unwrap(), m.decode(&got).unwrap());
        changed += usize::from(strip_stop(base, &m.stop_ids) != got);
        let Some(k) = want.iter().zip(&got).position(|(a, b)| a != b) else {
            assert_eq!(want, got, "one answer is the other's start");
            identical += 1;
            continue;
        };
        // The first difference: the same two tokens on top in both engines, nearly tied.
        let mut prefix = p.clone();
        prefix.extend(&want[..k]);
        let (ours, our_gap) = top2(&candle_last(&m.model, std::slice::from_ref(&prefix))[0]);
        let theirs = llama.logits(&t.q8_0_base, Some((&adapter_gguf, 1.0)), std::slice::from_ref(&prefix)).remove(0);
        let (theirs, their_gap) = top2(theirs.last().unwrap());
        eprintln!(
            "  first difference at answer token {k}: top two {ours:?} {our_gap:.3} apart in candle, {theirs:?} {their_gap:.3} in llama.cpp"
        );
        let pair = |t: [u32; 2]| if t[0] < t[1] { t } else { [t[1], t[0]] };
        assert!(
            pair(ours) == pair(theirs) && pair(ours) == pair([want[k], got[k]]),
            "not a tie between the same two tokens"
        );
        assert!(our_gap < NEAR_TIE && their_gap < NEAR_TIE, "the engines disagree where one is sure");
    }
    eprintln!(
        "Q8_0 base + adapter.gguf: {identical} of {} greedy answers identical, the rest split at near ties",
        prompts.len()
    );
    assert!(identical * 4 >= prompts.len() * 3, "fewer than 3 in 4 answers identical");
    assert!(changed > 0, "llama.cpp answered as the base without the adapter: was it applied?");
}
