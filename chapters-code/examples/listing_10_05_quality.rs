//! Listing 10-5: what merging and quantization cost, measured. First the size of the trained
//! update next to the weights it is merged into; then the held-out questions go through the
//! base model with the adapter applied in f32 (the reference) and through each merged GGUF
//! Listing 10-1 wrote: task metric, loss on the gold answers, and how many answers are word
//! for word the reference's.
//!
//!     cargo run -p lorakit --example listing_10_01_export     # first: writes models/export/ch10
//!     cargo run -p lorakit --example listing_10_05_quality
use std::collections::HashMap;
use std::path::PathBuf;

use book_support::data_dir;
use lorakit::LoraAdapter;
use lorakit::candle::{DType, Tensor};
use lorakit::data::{Task, load_dataset};
use lorakit::eval::{EvalReport, evaluate};
use lorakit::lora::module_path;

fn main() -> anyhow::Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    let data = data_dir()?;
    let exported = PathBuf::from("models/export/ch10");
    let mut m = lorakit::load::load("smollm2-135m", DType::F32)?;
    let adapter = LoraAdapter::load_peft(&exported.join("peft"), &m.model.config, DType::F32, m.model.device())?;
    // ANCHOR: ratio
    // How big is the update next to the weight it is added to? |s·B·A| / |W| per matrix.
    let weights: HashMap<String, Tensor> = m.model.named_weights()?.into_iter().collect();
    let norm = |t: &Tensor| -> anyhow::Result<f32> { Ok(t.sqr()?.sum_all()?.sqrt()?.to_scalar()?) };
    let mut ratios = Vec::new();
    for ((layer, module), pair) in adapter.layers() {
        let w = &weights[&format!("{}.weight", module_path(layer, module))];
        let delta = (pair.b.as_tensor().matmul(pair.a.as_tensor())? * adapter.config.scaling())?;
        ratios.push(norm(&delta)? / norm(w)?);
    }
    ratios.sort_by(f32::total_cmp);
    let n = ratios.len();
    println!(
        "|s·B·A| / |W| over {n} matrices: min {:.4}, median {:.4}, max {:.4}",
        ratios[0],
        ratios[n / 2],
        ratios[n - 1]
    );
    // ANCHOR_END: ratio

    // ANCHOR: quality
    let mut test = load_dataset(&data.join("extract/test.jsonl"))?;
    test.truncate(20);
    let row = |name: &str, r: &EvalReport, reference: Option<&EvalReport>| {
        let same =
            reference.map(|f| r.answers.iter().zip(&f.answers).filter(|(a, b)| a.prediction == b.prediction).count());
        let same = same.map(|n| format!("{n}/{}", r.answers.len())).unwrap_or("-".into());
        println!("{name:<24} {:>7.3} {:>7.3} {:>8.4} {same:>7}", r.metric, r.exact, r.loss);
    };
    println!("\n{:<24} {:>7} {:>7} {:>8} {:>7}", "", "metric", "exact", "loss", "same");
    row("base, no adapter", &evaluate(&m, &test, Task::Extract, 48)?, None);
    // The reference: the base GGUF with the adapter applied in f32, unmerged.
    m.model.apply_adapter(&adapter)?;
    let reference = evaluate(&m, &test, Task::Extract, 48)?;
    row("base + adapter (f32)", &reference, Some(&reference));
    for dtype in ["f32", "f16", "q8_0", "q4_0"] {
        let file = exported.join(format!("merged-{dtype}.gguf"));
        let merged = lorakit::load::load(&file.display().to_string(), DType::F32)?;
        row(&format!("merged-{dtype}.gguf"), &evaluate(&merged, &test, Task::Extract, 48)?, Some(&reference));
    }
    // ANCHOR_END: quality
    Ok(())
}
