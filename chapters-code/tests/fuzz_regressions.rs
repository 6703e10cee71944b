//! Inputs that once crashed a fuzz target (scripts/fuzz.sh, fuzz/fuzz_targets/), fed through
//! the public API from the files committed in tests/fuzz_regressions/<target>/: each must now
//! be a clean error naming the file. Also: no loader accepts a pickle checkpoint.

use lorakit::LlamaConfig;
use lorakit::candle::{DType, Device};
use lorakit::load::load_path;
use lorakit::lora::LoraAdapter;
use lorakit::model::Checkpoint;
use lorakit::model::config::RopeScaling;
use std::path::{Path, PathBuf};

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The error's whole chain, checked to name `file`.
fn assert_names(result: anyhow::Result<impl Sized>, file: &Path) -> String {
    let Err(e) = result else { panic!("{}: loaded, expected an error", file.display()) };
    let msg = format!("{e:#}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "{}: error does not name the file: {msg}", file.display());
    msg
}

/// The fuzz crate's tiny model (fuzz/src/lib.rs): two layers, hidden size 8.
fn tiny_model() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 4,
        vocab_size: 16,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        rope_scaling: RopeScaling::None,
        max_position_embeddings: 64,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

const TINY_ADAPTER: &str = r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]}"#;

// ---- pickle is never loaded ----

/// What `torch.save` writes: a zip archive, or with the legacy format a raw pickle stream.
const PICKLE: &[u8] = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.";
const TORCH_ZIP: &[u8] = b"PK\x03\x04\x00\x00\x08\x08\x00\x00archive/data.pkl\x80\x02}q\x00.";

fn assert_refuses_pickle(msg: &str) {
    assert!(msg.contains("only safetensors and GGUF"), "no pickle explanation: {msg}");
}

#[test]
fn model_pickle_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in
        [("model.bin", PICKLE), ("model.pt", PICKLE), ("model.pth", TORCH_ZIP), ("pytorch_model.bin", TORCH_ZIP)]
    {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let msg = assert_names(load_path(&path, DType::F32), &path);
        assert_refuses_pickle(&msg);
    }
}

#[test]
fn hf_directory_with_only_pickle_weights_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/tiny-llama/config.json"))
            .unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), TORCH_ZIP).unwrap();
    let msg = assert_names(Checkpoint::load(dir.path(), DType::F32, &Device::Cpu), dir.path());
    assert!(msg.contains("pytorch_model.bin"), "{msg}");
    assert_refuses_pickle(&msg);
}

#[test]
fn peft_adapter_with_only_pickle_weights_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adapter_config.json"), TINY_ADAPTER).unwrap();
    std::fs::write(dir.path().join("adapter_model.bin"), PICKLE).unwrap();
    let msg = assert_names(LoraAdapter::load_peft(dir.path(), &tiny_model(), DType::F32, &Device::Cpu), dir.path());
    assert!(msg.contains("adapter_model.safetensors") && msg.contains("adapter_model.bin"), "{msg}");
    assert_refuses_pickle(&msg);
    // Pickle bytes under the safetensors name are no better.
    std::fs::write(dir.path().join("adapter_model.safetensors"), PICKLE).unwrap();
    let w = dir.path().join("adapter_model.safetensors");
    assert_names(LoraAdapter::load_peft(dir.path(), &tiny_model(), DType::F32, &Device::Cpu), &w);
}

// ---- committed crash inputs, one directory per fuzz target ----

/// Each committed GGUF crash input, with a phrase its error must contain.
#[test]
fn gguf_crashes_are_clean_errors() {
    let expected = [
        // A tensor with a zero dimension: candle viewed its empty buffer through a dangling,
        // unaligned pointer (a debug-build panic, undefined behaviour in release).
        ("empty-tensor.gguf", "has no elements"),
        // token_embd.weight with 0 dimensions: its row count was indexed without a check.
        ("scalar-token-embd.gguf", "expected 2 dimensions"),
        // Dimensions whose product overflows usize: candle multiplied them unchecked
        // (a debug-build panic, a wrapped size and a wrong read in release).
        ("byte-size-overflow.gguf", "impossible shape"),
        // attn_q.weight of a size no head split fits: the un-permute's reshape failed with
        // candle's bare "shape mismatch", naming neither the file nor the tensor.
        ("unpermute-wrong-size.gguf", "attn_"),
        // rope_freqs.weight with 2 dimensions: read as a vector with candle's bare error.
        ("rope-freqs-2d.gguf", "rope_freqs.weight has shape"),
        // A block count in the hundreds of millions: the shape check listed every layer's
        // tensors before looking at the first (an out-of-memory under the fuzzer).
        ("billions-of-layers.gguf", "is missing"),
    ];
    let files = regressions("gguf");
    assert_eq!(files.len(), expected.len(), "a file in tests/fuzz_regressions/gguf/ without an expected error");
    for (name, phrase) in expected {
        let path = files.iter().find(|f| f.ends_with(name)).unwrap_or_else(|| panic!("{name} is missing"));
        let msg = assert_names(load_path(path, DType::F32), path);
        assert!(msg.contains(phrase), "{name}: expected {phrase:?} in: {msg}");
    }
}
