//! Helpers shared by the integration tests: where the reference fixtures are, and
//! comparisons that report where two arrays differ most.

use anyhow::{Context, Result};
use lorakit::candle::{DType, Tensor};
use std::path::PathBuf;
pub mod listing_output;
pub mod llama_cpp;
pub mod numbers;
pub mod ollama_store;

/// `../shared` beside the project root (override with `LORA_SHARED_DIR`).
pub fn shared_dir() -> PathBuf {
    if let Ok(d) = std::env::var("LORA_SHARED_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("shared")
}

/// A folder of `../shared/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    shared_dir().join("fixtures").join(name)
}

pub fn read_json(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// A nested JSON array of numbers, flattened.
pub fn flat_f64(v: &serde_json::Value) -> Vec<f64> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<f64>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            other => out.push(other.as_f64().expect("number")),
        }
    }
    walk(v, &mut out);
    out
}

/// Rows of token ids from a JSON array of arrays.
pub fn id_rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .expect("array of rows")
        .iter()
        .map(|r| r.as_array().expect("row").iter().map(|x| x.as_u64().expect("id") as u32).collect())
        .collect()
}

/// Largest |a - b| and its index.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> (f64, usize) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0.0, 0), |(m, mi), (i, d)| if d > m || d.is_nan() { (d, i) } else { (m, mi) })
}

/// A tensor's values as f64.
pub fn tensor_f64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// Assert every element within `atol`, with a message naming the worst element.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64) {
    let (d, i) = max_abs_diff(got, want);
    assert!(d <= atol, "{what}: max |diff| {d:.3e} > {atol:.1e} at index {i} (got {}, want {})", got[i], want[i]);
    eprintln!("{what}: max |diff| {d:.3e} (tolerance {atol:.0e})");
}
