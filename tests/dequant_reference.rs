//! Every GGML block type a GGUF base can hold dequantizes as llama.cpp's own Python reference
//! does (gguf-py's `quants.py`, from the llama.cpp source that node-llama-cpp bundles, at the
//! commit of the binary the other tests run). The crate reads a GGUF's tensors and turns blocks
//! into f32 with candle's `QTensor::dequantize` (the loader, and `FrozenWeight::full` when it
//! trains on a quantized base), so that is what is checked, both ways:
//!
//! - blocks candle wrote, dequantized by candle and by gguf-py;
//! - blocks gguf-py wrote (the types it can quantize), read back as raw bytes into a QTensor
//!   and dequantized by both;
//! - random bytes, so that every field of a block takes values no quantizer of either side
//!   would write (whatever llama.cpp's own quantizer writes is among them).
//!
//! The input mixes what real weights have and edge cases: per-block scales over several orders
//! of magnitude, blocks that sit off zero (the types with a minimum), all-zero blocks and
//! constant blocks.

use lora_book::llama_cpp;
use lorakit::candle::quantized::{GgmlDType, QTensor, ggml_file::qtensor_from_ggml};
use lorakit::candle::{Device, Tensor};
use std::path::Path;
use std::process::Command;

/// (candle's type, gguf-py's name, whether gguf-py can quantize it).
const TYPES: &[(GgmlDType, &str, bool)] = &[
    (GgmlDType::F16, "F16", true),
    (GgmlDType::BF16, "BF16", true),
    (GgmlDType::Q8_0, "Q8_0", true),
    (GgmlDType::Q4_0, "Q4_0", true),
    (GgmlDType::Q4_1, "Q4_1", true),
    (GgmlDType::Q5_0, "Q5_0", true),
    (GgmlDType::Q5_1, "Q5_1", true),
    (GgmlDType::Q2K, "Q2_K", false),
    (GgmlDType::Q3K, "Q3_K", false),
    (GgmlDType::Q4K, "Q4_K", false),
    (GgmlDType::Q5K, "Q5_K", false),
    (GgmlDType::Q6K, "Q6_K", false),
];

const ROWS: usize = 16;
const COLS: usize = 1024;

/// A fixed linear congruential sequence from `seed`.
fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state
    }
}

/// Rows of weight-like values: each 32-value block has its own scale (1e-4 … 10) and, for one
/// block in three, an offset; row 3 holds zero blocks and row 5 constant ones.
fn input() -> Vec<f32> {
    let mut next = lcg(20);
    let mut uniform = move || (next() >> 40) as f32 / (1u64 << 24) as f32; // in [0, 1)
    let mut x = Vec::with_capacity(ROWS * COLS);
    for row in 0..ROWS {
        for block in 0..COLS / 32 {
            let scale = 10f32.powf(uniform() * 5.0 - 4.0);
            let offset = if block % 3 == 0 { scale * (uniform() * 4.0 - 2.0) } else { 0.0 };
            for _ in 0..32 {
                let v = match row {
                    3 if block % 2 == 0 => 0.0,
                    5 => offset + scale,
                    _ => offset + scale * (uniform() * 2.0 - 1.0) * 1.7,
                };
                x.push(v);
            }
        }
    }
    x
}

fn write_f32(path: &Path, v: &[f32]) {
    std::fs::write(path, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn candle_dequant(q: &QTensor) -> Vec<f32> {
    q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// Largest finite |a − b| over the tensor, and how many values differ at all (bit for bit; two
/// NaNs are the same value).
fn compare(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0f32, 0), |(worst, n), (x, y)| {
        let same = x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
        let d = (x - y).abs();
        (if d.is_finite() { worst.max(d) } else { worst }, n + usize::from(!same))
    })
}

/// `n` bytes from a fixed sequence.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut next = lcg(seed);
    (0..n).map(|_| (next() >> 56) as u8).collect()
}

#[test]
fn every_block_type_dequantizes_like_gguf_py() {
    let Some(llama) = llama_cpp::required() else { return };
    let (python, gguf_path) = llama.gguf_py().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let x = input();
    write_f32(&dir.path().join("input.f32"), &x);
    let xt = Tensor::from_vec(x.clone(), (ROWS, COLS), &Device::Cpu).unwrap();

    let (mut candle_blocks, mut random_blocks) = (Vec::new(), Vec::new());
    for (i, &(dtype, name, _)) in TYPES.iter().enumerate() {
        let q = QTensor::quantize(&xt, dtype).unwrap();
        std::fs::write(dir.path().join(format!("candle-{name}.blocks")), q.data().unwrap()).unwrap();
        candle_blocks.push(q);
        let bytes = random_bytes(ROWS * COLS / dtype.block_size() * dtype.type_size(), i as u64 + 1);
        std::fs::write(dir.path().join(format!("random-{name}.blocks")), &bytes).unwrap();
        random_blocks.push(qtensor_from_ggml(dtype, &bytes, vec![ROWS, COLS], &Device::Cpu).unwrap());
    }
    let stems: Vec<[String; 2]> = TYPES
        .iter()
        .flat_map(|t| ["candle", "random"].map(|from| [format!("{from}-{}", t.1), t.1.to_string()]))
        .collect();
    let spec = serde_json::json!({
        "rows": ROWS, "cols": COLS,
        "dequantize": stems,
        "quantize": TYPES.iter().filter(|t| t.2).map(|t| t.1).collect::<Vec<_>>(),
    });
    std::fs::write(dir.path().join("spec.json"), spec.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/llama/dequant.py");
    let out = Command::new(&python).env("PYTHONPATH", &gguf_path).arg(&script).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "gguf-py failed:\n{}", String::from_utf8_lossy(&out.stderr));

    let mut failures = Vec::new();
    for ((&(dtype, name, gguf_py_quantizes), q), random) in TYPES.iter().zip(&candle_blocks).zip(&random_blocks) {
        let reference = read_f32(&dir.path().join(format!("candle-{name}.ref.f32")));
        let (worst, differing) = compare(&candle_dequant(q), &reference);
        let mut line =
            format!("{name:<5} of {} values, differing: candle's blocks {differing} (max {worst:.1e})", x.len());
        if differing > 0 {
            failures.push(format!("{name}: candle's blocks"));
        }
        let reference = read_f32(&dir.path().join(format!("random-{name}.ref.f32")));
        let (worst, differing) = compare(&candle_dequant(random), &reference);
        line += &format!(", random bytes {differing} (max {worst:.1e})");
        if differing > 0 {
            failures.push(format!("{name}: random bytes"));
        }
        if gguf_py_quantizes {
            let bytes = std::fs::read(dir.path().join(format!("ggufpy-{name}.blocks"))).unwrap();
            let theirs = qtensor_from_ggml(dtype, &bytes, vec![ROWS, COLS], &Device::Cpu).unwrap();
            let reference = read_f32(&dir.path().join(format!("ggufpy-{name}.ref.f32")));
            let (worst, differing) = compare(&candle_dequant(&theirs), &reference);
            let same_bytes = bytes.as_slice() == &*q.data().unwrap();
            line += &format!(
                ", gguf-py's blocks {differing} (max {worst:.1e}; {} candle's)",
                if same_bytes { "byte for byte" } else { "not byte for byte" }
            );
            if differing > 0 {
                failures.push(format!("{name}: gguf-py's blocks"));
            }
        }
        eprintln!("{line}");
    }
    assert!(failures.is_empty(), "dequantization differs from gguf-py: {failures:?}");
}
