//! Listing 10-1: export one trained adapter in every format — PEFT, GGUF adapter (F32,
//! F16), merged GGUF (F32, F16, Q8_0, Q4_0) — and print what was written.
//!
//! It exports the adapter Listing 8-2 trained (or the directory given as argument):
//!
//!     cargo run -p lorakit --example listing_08_02_train     # once, if models/lora_adapters/ch08 is missing
//!     cargo run -p lorakit --example listing_10_01_export
use std::path::PathBuf;

use lorakit::export::{ExportDtype, ExportFormat, ExportRequest, export};

fn main() -> anyhow::Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    let adapter = PathBuf::from(std::env::args().nth(1).unwrap_or("models/lora_adapters/ch08".into()));
    if !adapter.join("adapter_config.json").is_file() {
        anyhow::bail!(
            "{}: no trained adapter there; train one with `cargo run -p lorakit --example listing_08_02_train`",
            adapter.display()
        )
    }
    // ANCHOR: export
    let out = PathBuf::from("models/export/ch10");
    let jobs = [
        (ExportFormat::Peft, ExportDtype::F32, "peft"),
        (ExportFormat::GgufAdapter, ExportDtype::F32, "adapter-f32.gguf"),
        (ExportFormat::GgufAdapter, ExportDtype::F16, "adapter-f16.gguf"),
        (ExportFormat::Gguf, ExportDtype::F32, "merged-f32.gguf"),
        (ExportFormat::Gguf, ExportDtype::F16, "merged-f16.gguf"),
        (ExportFormat::Gguf, ExportDtype::Q8_0, "merged-q8_0.gguf"),
        (ExportFormat::Gguf, ExportDtype::Q4_0, "merged-q4_0.gguf"),
    ];
    for (format, dtype, name) in jobs {
        // The base the adapter was trained on: the merged files copy its metadata and vocabulary.
        let mut req = ExportRequest::new("smollm2-135m", &adapter, format, out.join(name));
        req.dtype = Some(dtype);
        req.force = true;
        let report = export(&req)?;
        println!("{:<12} {:<5} -> {}", format!("{format:?}"), dtype.name(), report.out.display());
        for f in &report.files {
            let file = f.path.file_name().unwrap_or_default().to_string_lossy();
            println!("    {file:<28} {:>12} bytes  sha256 {}…", f.bytes, &f.sha256[..12]);
        }
    }
    // ANCHOR_END: export

    // ANCHOR: base
    // For scale: the base model file the adapter was trained on (SmolLM2-135M-Instruct, Q4_1).
    let base = lorakit::fetch::default_model_path()?;
    println!("base model {:>37} bytes", std::fs::metadata(&base)?.len());
    // ANCHOR_END: base
    Ok(())
}
