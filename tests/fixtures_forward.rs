//! The forward pass against transformers/PEFT/llama.cpp outputs in `../shared/fixtures`:
//! HF and GGUF loading, RoPE (with Llama 3 scaling), PEFT adapters, merging.

use lora_book::*;
use lorakit::candle::{DType, Device};
use lorakit::model::config::{HfConfig, RopeScaling};
use lorakit::model::rope::{Rope, inv_freq};
use lorakit::{Checkpoint, Llama, LoraAdapter};
use std::path::Path;

fn load(path: &Path) -> Llama {
    Llama::new(Checkpoint::load(path, DType::F32, &Device::Cpu).unwrap()).unwrap()
}

fn logits_at(model: &Llama, ids: &serde_json::Value, positions: Option<&serde_json::Value>) -> Vec<f64> {
    let rows = id_rows(ids);
    let t = model.ids_tensor(&rows).unwrap();
    let logits = match positions {
        Some(p) if !p.is_null() => {
            let pos: Vec<usize> = id_rows(p)[0].iter().map(|&x| x as usize).collect();
            model.forward_at(&t, &pos).unwrap()
        }
        _ => model.forward(&t).unwrap(),
    };
    tensor_f64(&logits)
}

fn check_argmax(what: &str, got: &[f64], want: &[f64], vocab: usize) {
    for (i, (g, w)) in got.chunks(vocab).zip(want.chunks(vocab)).enumerate() {
        let am = |r: &[f64]| r.iter().enumerate().fold(0, |b, (j, &x)| if x > r[b] { j } else { b });
        assert_eq!(am(g), am(w), "{what}: argmax differs at position {i}");
    }
}

#[test]
fn tiny_llama_hf_logits() {
    let exp = read_json(&fixture("tiny-llama/expected.json")).unwrap();
    let model = load(&fixture("tiny-llama"));
    let case = &exp["cases"][0];
    let got = logits_at(&model, &case["input_ids"], None);
    let want = flat_f64(&case["logits"]);
    assert_close("tiny-llama logits", &got, &want, 1e-4);
    check_argmax("tiny-llama", &got, &want, 256);
    let inv = flat_f64(&exp["rope"]["inv_freq_f32"]);
    let ours: Vec<f64> = Rope::new(&model.config).inv_freq().iter().map(|&x| x as f64).collect();
    assert_close("tiny-llama inv_freq", &ours, &inv, 1e-7);
}

#[test]
fn tiny_llama3_every_case() {
    let exp = read_json(&fixture("tiny-llama3/expected.json")).unwrap();
    let model = load(&fixture("tiny-llama3"));
    assert!(matches!(model.config.rope_scaling, RopeScaling::Llama3(_)));
    assert!(model.config.tie_word_embeddings);
    let inv = flat_f64(&exp["rope"]["inv_freq_f32"]);
    let ours: Vec<f64> = Rope::new(&model.config).inv_freq().iter().map(|&x| x as f64).collect();
    for (o, w) in ours.iter().zip(&inv) {
        assert!((o - w).abs() <= 1e-6 * w.abs(), "inv_freq {o} vs {w}");
    }
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let got = logits_at(&model, &case["input_ids"], Some(&case["position_ids"]));
        let want = flat_f64(&case["logits"]);
        let atol = if name == "contiguous_0" { 1e-4 } else { 1e-3 };
        assert_close(&format!("tiny-llama3 {name}"), &got, &want, atol);
        check_argmax(name, &got, &want, 256);
    }
}

#[test]
fn llama_3_2_1b_rope_frequencies() {
    let exp = read_json(&fixture("tiny-llama3/rope_inv_freq.json")).unwrap();
    // The real Llama-3.2-1B rope config, through the same config parser users hit.
    let cfg: HfConfig = serde_json::from_value(serde_json::json!({
        "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
        "head_dim": 64, "vocab_size": 128256, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "tie_word_embeddings": true
    }))
    .unwrap();
    let cfg = cfg.into_config("Llama-3.2-1B").unwrap();
    let ours = inv_freq(&cfg);
    let want = flat_f64(&exp["inv_freq"]);
    assert_eq!(ours.len(), want.len());
    for (i, (o, w)) in ours.iter().zip(&want).enumerate() {
        let o = *o as f64;
        assert!((o - w).abs() <= 1e-6 * w.abs(), "inv_freq[{i}]: {o} vs {w}");
    }
    // cos/sin at the recorded positions (HF's rotate-half layout repeats the half twice).
    let rope = Rope::new(&cfg);
    let positions: Vec<usize> =
        exp["positions"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
    let (cos, sin) = rope.cos_sin(&positions, DType::F64, &Device::Cpu).unwrap();
    let (cos, sin) = (tensor_f64(&cos), tensor_f64(&sin));
    for (k, &p) in positions.iter().enumerate() {
        let atol = if p <= 100 { 1e-5 } else { 2e-3 };
        let want_cos = flat_f64(&exp["cos"][k]);
        let want_sin = flat_f64(&exp["sin"][k]);
        assert_close(&format!("cos at {p}"), &cos[k * 32..(k + 1) * 32], &want_cos[..32], atol);
        assert_close(&format!("sin at {p}"), &sin[k * 32..(k + 1) * 32], &want_sin[..32], atol);
    }
}

#[test]
fn gguf_from_llama_cpp_converter_matches_hf_logits() {
    let dir = fixture("tiny-llama-gguf");
    let exp = read_json(&fixture("tiny-llama/expected.json")).unwrap();
    let model = load(&dir.join("tiny-llama-f32.gguf"));
    let case = &exp["cases"][0];
    let got = logits_at(&model, &case["input_ids"], None);
    assert_close("tiny-llama-f32.gguf", &got, &flat_f64(&case["logits"]), 1e-4);

    let exp3 = read_json(&fixture("tiny-llama3/expected.json")).unwrap();
    let model3 = load(&dir.join("tiny-llama3-f32.gguf"));
    assert!(matches!(model3.config.rope_scaling, RopeScaling::Factors(_)));
    for case in exp3["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let got = logits_at(&model3, &case["input_ids"], Some(&case["position_ids"]));
        let atol = if name == "contiguous_0" { 1e-4 } else { 1e-3 };
        assert_close(&format!("tiny-llama3-f32.gguf {name}"), &got, &flat_f64(&case["logits"]), atol);
    }

    let merged = load(&dir.join("tiny-peft-merged-f32.gguf"));
    let peft = read_json(&fixture("tiny-peft/expected.json")).unwrap();
    let got = logits_at(&merged, &peft["input_ids"], None);
    assert_close("tiny-peft-merged-f32.gguf", &got, &flat_f64(&peft["logits_merged"]), 1e-4);
}

fn peft_case(variant: &str, base_path: &Path) {
    let exp = read_json(&fixture(&format!("{variant}/expected.json"))).unwrap();
    let mut model = load(base_path);
    let adapter = LoraAdapter::load_peft(&fixture(variant), &model.config, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(adapter.config.scaling(), exp["scaling"].as_f64().unwrap());
    assert_eq!(adapter.num_parameters(), 8192); // as fixtures/README.md counts
    let base_logits = logits_at(&model, &exp["input_ids"], None);

    model.apply_adapter(&adapter).unwrap();
    let got = logits_at(&model, &exp["input_ids"], None);
    assert_close(
        &format!("{variant} adapter ({})", base_path.display()),
        &got,
        &flat_f64(&exp["logits_adapter"]),
        1e-4,
    );

    model.merge_adapter().unwrap();
    let got = logits_at(&model, &exp["input_ids"], None);
    assert_close(&format!("{variant} merged"), &got, &flat_f64(&exp["logits_merged"]), 1e-4);

    model.unmerge_adapter(&adapter).unwrap();
    let got = logits_at(&model, &exp["input_ids"], None);
    assert_close(&format!("{variant} unmerged = base"), &got, &base_logits, 1e-5);
}

#[test]
fn peft_adapter_and_merge() {
    peft_case("tiny-peft", &fixture("tiny-llama"));
}

#[test]
fn peft_rslora_adapter_and_merge() {
    peft_case("tiny-peft-rslora", &fixture("tiny-llama"));
}

#[test]
fn peft_adapter_on_gguf_base() {
    // The HF adapter on the GGUF copy of the base: same logits, so Q/K un-permutation is right.
    peft_case("tiny-peft", &fixture("tiny-llama-gguf").join("tiny-llama-f32.gguf"));
}
