//! `Llama::quantize` (what `lora generate --quantize q8_0` runs) on a Q8_0 GGUF that
//! `lora export` wrote: its logits against the same model in f32, with real llama.cpp's
//! Q8_0 logits on the same file as the yardstick.
//!
//! Both engines multiply the Q8_0 weights by quantized activations, so neither reproduces
//! f32 exactly. They quantize the activations differently: llama.cpp in Q8_0 blocks (a scale
//! per 32 values), candle's AVX-512 VNNI kernel, where the inner dimension is a multiple of
//! 256 (here `down_proj`), in Q8_K (a scale per 256): coarser, so candle's error is measured
//! at about 1.7× llama.cpp's, with the same greedy choices at nearly every position.

use lora_book::*;
use lorakit::candle::quantized::{GgmlDType, QTensor, gguf_file};
use lorakit::candle::{DType, Device, Tensor};
use lorakit::export::{ExportDtype, ExportFormat, ExportRequest, export};
use lorakit::fetch::DEFAULT_MODEL;
use lorakit::load::{load, load_path};
use lorakit::model::KvCache;
use lorakit::{LoraAdapter, LoraConfig};
use std::path::{Path, PathBuf};

/// The default model as a merged Q8_0 GGUF: the export of an untrained adapter (B = 0)
/// is the base model itself.
fn q8_file(dir: &Path) -> PathBuf {
    let m = load(DEFAULT_MODEL, DType::F32).unwrap();
    let adapter = LoraAdapter::init(LoraConfig::default(), &m.model.config, 0, DType::F32, &Device::Cpu).unwrap();
    adapter.save_peft(&dir.join("adapter")).unwrap();
    let out = dir.join("q8.gguf");
    let mut req = ExportRequest::new(DEFAULT_MODEL, dir.join("adapter"), ExportFormat::Gguf, &out);
    req.dtype = Some(ExportDtype::Q8_0);
    export(&req).unwrap();
    out
}

fn prompt_ids() -> Vec<Vec<u32>> {
    let fixture = read_json(&fixture("smollm2/logits.json")).unwrap();
    fixture["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| id_rows(&serde_json::json!([p["prompt_ids"]])).remove(0))
        .collect()
}

fn row(t: &Tensor) -> Vec<f64> {
    tensor_f64(&t.flatten_all().unwrap())
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

#[test]
fn quantized_model_scores_like_llama_cpp_on_the_same_file() {
    let Some(llama) = llama_cpp::required() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = q8_file(dir.path());

    // Quantizing the dequantized file gives back the file's own blocks.
    let mut f = std::fs::File::open(&file).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let stored = content.tensor(&mut f, "blk.7.ffn_down.weight", &Device::Cpu).unwrap();
    assert_eq!(stored.dtype(), GgmlDType::Q8_0);
    let again = QTensor::quantize(&stored.dequantize(&Device::Cpu).unwrap(), GgmlDType::Q8_0).unwrap();
    assert!(again.data().unwrap() == stored.data().unwrap(), "re-quantized blocks differ from the file's");

    let dense = load_path(&file, DType::F32).unwrap();
    let mut quantized = load_path(&file, DType::F32).unwrap();
    quantized.model.quantize(GgmlDType::Q8_0).unwrap();
    assert!(quantized.model.is_quantized());

    // Both quantized engines against the full-precision model (which the fixture tests show
    // equals transformers' f32 forward): llama.cpp's Q8_0 error is the yardstick for ours.
    let prompts = prompt_ids();
    let llama_cpp = llama.logits(&file, None, &prompts);
    let (mut err_ours, mut err_llama, mut same_ours, mut same_llama, mut positions) = (0f64, 0f64, 0, 0, 0);
    let (mut mean_ours, mut mean_llama, mut n) = (0f64, 0f64, 0usize);
    for (p, theirs) in prompts.iter().zip(&llama_cpp) {
        // One token at a time, as decoding runs: single rows go through the Q8_0 kernel.
        let mut cache = KvCache::new(quantized.model.config.num_hidden_layers);
        let ids = Tensor::new(p.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let d = lorakit::ops::no_grad(|| dense.model.forward(&ids)).unwrap().squeeze(0).unwrap();
        for (pos, theirs) in theirs.iter().enumerate() {
            let one = Tensor::new(&p[pos..=pos], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let ours = row(&quantized.model.forward_step(&one, &mut cache).unwrap());
            let theirs: Vec<f64> = theirs.iter().map(|&x| x as f64).collect();
            let exact = row(&d.get(pos).unwrap());
            err_ours = err_ours.max(max_abs_diff(&ours, &exact).0);
            mean_ours += ours.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f64>();
            mean_llama += theirs.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f64>();
            n += exact.len();
            err_llama = err_llama.max(max_abs_diff(&theirs, &exact).0);
            same_ours += usize::from(argmax(&ours) == argmax(&exact));
            same_llama += usize::from(argmax(&theirs) == argmax(&exact));
            positions += 1;
        }
    }
    let (mean_ours, mean_llama) = (mean_ours / n as f64, mean_llama / n as f64);
    eprintln!(
        "over {positions} positions, against f32: mean |logit diff| lorakit Q8_0 {mean_ours:.3}, llama.cpp Q8_0 \
         {mean_llama:.3}; max {err_ours:.2} and {err_llama:.2}; same argmax: {same_ours} and {same_llama}"
    );
    assert!(mean_ours <= 2.0 * mean_llama, "lorakit's Q8_0 error {mean_ours} is far above llama.cpp's {mean_llama}");
    assert!(err_ours <= 3.0 * err_llama, "lorakit's largest Q8_0 error {err_ours} vs llama.cpp's {err_llama}");
    assert!(same_ours + 3 >= same_llama, "argmax kept at {same_ours} positions, llama.cpp {same_llama}");
    // A broken quantized path (wrong rows, a missing scale) would be off by whole logits.
    assert!(mean_ours < 1.0 && same_ours * 10 >= positions * 9);
}

/// `quantize` keeps only the blocks: a prompt (many rows, weights dequantized for the product)
/// gives the f32 model's logits bit for bit on a Q8_0 file (re-quantizing its dequantized
/// weights gives back its blocks), the weights read back are the file's, and what needs the
/// full-precision weights says so instead of using stale ones.
#[test]
fn a_quantized_model_holds_only_its_blocks_and_prefills_like_f32() {
    let dir = tempfile::tempdir().unwrap();
    let file = q8_file(dir.path());
    let dense = load_path(&file, DType::F32).unwrap();
    let mut quantized = load_path(&file, DType::F32).unwrap();
    quantized.model.quantize(GgmlDType::Q8_0).unwrap();

    let ids = Tensor::new(prompt_ids()[0].as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let exact = row(&lorakit::ops::no_grad(|| dense.model.forward(&ids)).unwrap());
    let ours = row(&lorakit::ops::no_grad(|| quantized.model.forward(&ids)).unwrap());
    assert_eq!(max_abs_diff(&ours, &exact).0, 0.0, "a quantized prefill differs from f32 on the file's own blocks");

    let (d, q) = (dense.model.named_weights().unwrap(), quantized.model.named_weights().unwrap());
    assert_eq!(d.len(), q.len());
    for ((name, a), (_, b)) in d.iter().zip(&q) {
        assert_eq!(row(a), row(b), "{name} read back from the blocks differs from the file's");
    }
    let f32_left: usize = (0..quantized.model.config.num_hidden_layers)
        .map(|l| quantized.model.projection_mut(l, lorakit::model::Projection::Q).unwrap().weight.elem_count())
        .sum();
    assert_eq!(f32_left, 0, "the projections' f32 weights are still held");

    let err = quantized.model.merge_adapter().unwrap_err().to_string();
    assert!(err.contains("quantized for inference"), "{err}");
    assert!(quantized.model.quantize(GgmlDType::Q8_0).is_err());
}
