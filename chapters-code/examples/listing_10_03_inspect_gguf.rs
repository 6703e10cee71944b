//! Listing 10-3: open exported GGUF files with candle's GGUF reader and print what llama.cpp
//! and Ollama will read: the metadata keys and the tensors, counted by storage type.
//!
//!     cargo run -p lorakit --example listing_10_01_export     # first: writes models/export/ch10
//!     cargo run -p lorakit --example listing_10_03_inspect_gguf [FILE.gguf ...]
use std::collections::BTreeMap;
use std::path::PathBuf;

use lorakit::candle::quantized::gguf_file::{Content, Value};

fn main() -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        files = ["adapter-f32.gguf", "merged-q8_0.gguf"]
            .iter()
            .map(|f| PathBuf::from("models/export/ch10").join(f))
            .collect();
    }
    for path in files {
        // ANCHOR: inspect
        let mut file = std::fs::File::open(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let content =
            Content::read(&mut file).map_err(|e| anyhow::anyhow!("{}: not a GGUF file: {e}", path.display()))?;
        println!(
            "== {}: {} metadata keys, {} tensors",
            path.display(),
            content.metadata.len(),
            content.tensor_infos.len()
        );
        let mut keys: Vec<&String> = content.metadata.keys().collect();
        keys.sort();
        for key in keys {
            println!("  {key:<42} {}", show(&content.metadata[key]));
        }
        // Tensors by storage type, and the tensors of the first block.
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for info in content.tensor_infos.values() {
            *by_type.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
        }
        println!("  tensors by type: {by_type:?}");
        let mut names: Vec<&String> = content.tensor_infos.keys().filter(|n| n.starts_with("blk.0.")).collect();
        names.sort();
        for name in names {
            let info = &content.tensor_infos[name];
            println!("    {name:<32} {:?} {:?}", info.shape.dims(), info.ggml_dtype);
        }
        // ANCHOR_END: inspect
    }
    Ok(())
}

/// A metadata value on one line: long strings and arrays shortened.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 40 => {
            format!("{:?}… ({} chars)", s.chars().take(40).collect::<String>(), s.chars().count())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!("[{} values]", items.len()),
        other => format!("{other:?}"),
    }
}
