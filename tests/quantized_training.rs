//! Training on a quantized base (`base_dtype = "q8_0"`, …): the frozen projections stay in
//! their blocks and are dequantized for each product. One training step on such a model must
//! compute what the same step computes on an f32 model holding those blocks dequantized:
//! the same loss and the same LoRA gradients (the products are the same f32 GEMMs on the
//! same f32 values, so the tolerance is f32 rounding, not quantization error).

use lora_book::*;
use lorakit::candle::quantized::GgmlDType;
use lorakit::candle::{DType, Device, Tensor};
use lorakit::fetch::DEFAULT_MODEL;
use lorakit::load::load;
use lorakit::train::{MicroBatch, causal_lm_loss};
use lorakit::{LoraAdapter, LoraConfig};

#[test]
fn a_step_on_blocks_equals_the_step_on_their_f32_values() {
    let prompts = ["<|im_start|>user\nExtract: Ana, 34, Porto.<|im_end|>\n", "The quick brown fox jumps over the dog."];
    for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_0, GgmlDType::Q4_1] {
        let mut blocks = load(DEFAULT_MODEL, DType::F32).unwrap();
        blocks.model.quantize(dtype).unwrap();
        let mut dense = load(DEFAULT_MODEL, DType::F32).unwrap();
        dense.model.quantize(dtype).unwrap();
        dense.model.dequantize().unwrap();
        assert!(blocks.model.is_quantized() && !dense.model.is_quantized());

        let rows: Vec<Vec<u32>> = prompts.iter().map(|p| blocks.encode(p).unwrap()[..8].to_vec()).collect();
        let labels: Vec<Vec<i64>> = rows.iter().map(|r| r.iter().map(|&x| x as i64).collect()).collect();
        let batch = MicroBatch::new(blocks.model.ids_tensor(&rows).unwrap(), labels);
        // B starts at zero, which would leave A's gradient zero: a seeded non-zero B instead.
        let adapter =
            LoraAdapter::init(LoraConfig::default(), &blocks.model.config, 7, DType::F32, &Device::Cpu).unwrap();
        for (name, v) in adapter.named_vars() {
            if name.contains("lora_B") {
                v.set(&Tensor::randn(0f32, 0.02, v.shape(), &Device::Cpu).unwrap()).unwrap();
            }
        }
        let mut results = Vec::new();
        for m in [&mut blocks, &mut dense] {
            m.model.apply_adapter(&adapter).unwrap();
            let (loss, _) = causal_lm_loss(&m.model, &batch.ids, &batch.labels, None).unwrap();
            let grads = loss.backward().unwrap();
            let g: Vec<Vec<f64>> = adapter
                .named_vars()
                .iter()
                .map(|(name, v)| tensor_f64(grads.get(v.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"))))
                .collect();
            results.push((loss.to_scalar::<f32>().unwrap() as f64, g));
        }
        let ((loss_q, grads_q), (loss_f, grads_f)) = (&results[0], &results[1]);
        eprintln!("{dtype:?}: loss on blocks {loss_q:.7}, on their f32 values {loss_f:.7}");
        assert!((loss_q - loss_f).abs() <= 1e-5 * loss_f.abs(), "{dtype:?}: loss {loss_q} vs {loss_f}");
        for ((name, _), (gq, gf)) in adapter.named_vars().iter().zip(grads_q.iter().zip(grads_f)) {
            assert!(gq.iter().any(|&x| x != 0.0), "{dtype:?} {name}: gradient is all zero");
            let scale = gf.iter().fold(0f64, |m, x| m.max(x.abs()));
            assert_close(&format!("{dtype:?} grad {name}"), gq, gf, 1e-5 * scale.max(1e-6));
        }
    }
}

/// The embedded default model is stored in Q4_1 (and Ollama's `llama3.2:1b` in Q8_0): for
/// these types, quantizing the loaded f32 weights again gives back the file's own blocks,
/// so `base_dtype` = the file's type trains on exactly the weights llama.cpp and Ollama
/// serve from that file.
#[test]
fn requantizing_the_default_models_weights_gives_back_its_blocks() {
    use lorakit::candle::quantized::{QTensor, gguf_file};
    let path = lorakit::fetch::default_model_path().unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut checked = 0;
    for name in ["blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.29.attn_v.weight", "blk.29.ffn_gate.weight"] {
        let stored = content.tensor(&mut f, name, &Device::Cpu).unwrap();
        if !matches!(stored.dtype(), GgmlDType::Q4_1 | GgmlDType::Q8_0 | GgmlDType::Q4_0) {
            eprintln!("{name} is {:?}: not a type that round-trips", stored.dtype());
            continue;
        }
        let again = QTensor::quantize(&stored.dequantize(&Device::Cpu).unwrap(), stored.dtype()).unwrap();
        assert!(
            again.data().unwrap() == stored.data().unwrap(),
            "{name}: re-quantized {:?} blocks differ",
            stored.dtype()
        );
        checked += 1;
    }
    assert!(checked >= 2, "too few projections in a round-tripping type");
}

/// `lora train --base-dtype T` loads the projections straight into T's blocks, one tensor at a
/// time (never the whole model in f32): the model must be the one that loading in f32 and
/// quantizing gives. Q4_1 is the file's own type (its blocks are kept, Q/K rows moved as
/// bytes); Q8_0 is another (each tensor dequantized and quantized on its own).
#[test]
fn loading_into_blocks_equals_loading_then_quantizing() {
    use lorakit::load::load_in_blocks;
    let settings = lorakit::settings::Settings::from_env();
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let direct = load_in_blocks(DEFAULT_MODEL, dtype, &settings, &lorakit::progress::silent).unwrap();
        let mut after = load(DEFAULT_MODEL, DType::F32).unwrap();
        after.model.quantize(dtype).unwrap();
        assert!(direct.model.is_quantized());
        let ids = direct.encode("<|im_start|>user\nExtract: Ana, 34, Porto.<|im_end|>\n").unwrap();
        let logits =
            |m: &lorakit::Llama| tensor_f64(&m.forward(&m.ids_tensor(std::slice::from_ref(&ids)).unwrap()).unwrap());
        let (a, b) = (logits(&direct.model), logits(&after.model));
        let differing = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
        eprintln!("{dtype:?}: loaded into blocks vs quantized after loading: {differing} of {} logits differ", a.len());
        assert_eq!(differing, 0, "{dtype:?}: the models differ");
    }
}
