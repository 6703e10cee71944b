//! Listing 9-2: the same held-out questions through the base model and through base +
//! adapter, scored with the task metric (what `lora eval` prints).
//!
//! It evaluates the adapter Listing 8-2 trained, or the directory given as argument:
//!
//!     cargo run -p lorakit --example listing_09_02_evaluate                                # models/lora_adapters/ch08
//!     cargo run -p lorakit --example listing_09_02_evaluate -- models/lora_adapters/demo   # after `lora demo`
use std::path::PathBuf;

use book_support::data_dir;
use lorakit::LoraAdapter;
use lorakit::candle::DType;
use lorakit::data::{Task, load_dataset};
use lorakit::eval::evaluate;

fn main() -> anyhow::Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    let adapter_dir = PathBuf::from(std::env::args().nth(1).unwrap_or("models/lora_adapters/ch08".into()));
    let data = data_dir()?;
    // ANCHOR: evaluate
    let mut test = load_dataset(&data.join("extract/test.jsonl"))?;
    test.truncate(10);
    let mut m = lorakit::load::load("smollm2-135m", DType::F32)?;
    // Greedy answers, at most 48 new tokens each: the gold answers are shorter than that.
    let before = evaluate(&m, &test, Task::Extract, 48)?;
    let adapter = LoraAdapter::load_peft(&adapter_dir, &m.model.config, DType::F32, m.model.device())?;
    m.model.apply_adapter(&adapter)?;
    let after = evaluate(&m, &test, Task::Extract, 48)?;
    println!("{:<22} {:>8} {:>8}", "", "base", "+ LoRA");
    println!("{:<22} {:>8.3} {:>8.3}", "task metric (mean)", before.metric, after.metric);
    println!("{:<22} {:>8.3} {:>8.3}", "fully correct", before.exact, after.exact);
    println!("{:<22} {:>8.3} {:>8.3}", "loss on gold answers", before.loss, after.loss);
    println!("{:<22} {:>8.2} {:>8.2}", "perplexity", before.loss.exp(), after.loss.exp());
    for (b, a) in before.answers.iter().zip(&after.answers).take(3) {
        println!("\n{}\n  gold:   {}\n  base:   {}\n  + LoRA: {}", b.prompt, b.gold, b.prediction, a.prediction);
    }
    // ANCHOR_END: evaluate
    Ok(())
}
