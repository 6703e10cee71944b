//! Listing 8-2: the whole training loop through the library — what `lora train` does —
//! on SmolLM2-135M and the Extract task, for a short run of 10 updates.
//!
//!     cargo run -p lorakit --example listing_08_02_train
use std::path::PathBuf;

use book_support::data_dir;
use lorakit::candle::DType;
use lorakit::train::{TrainConfig, TrainOptions, train};

fn main() -> anyhow::Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    let data = data_dir()?;
    // ANCHOR: train
    let cfg = TrainConfig {
        train_data: data.join("extract/train.jsonl"),
        // validation.jsonl beside the training file is picked up on its own.
        output_dir: PathBuf::from("models/lora_adapters/ch08"),
        max_steps: Some(10),
        eval_every: 5,
        save_every: 5,
        ..TrainConfig::default()
    };
    // train() refuses to start over a run's checkpoints (resume: true would continue them).
    // Run again, this listing repeats its own run from scratch: the old one goes first.
    if cfg.output_dir.exists() {
        eprintln!("removing the previous run in {}", cfg.output_dir.display());
        std::fs::remove_dir_all(&cfg.output_dir)?;
    }
    let mut m = lorakit::load::load(&cfg.model, DType::F32)?;
    let (_adapter, _summary) = train(&cfg, &mut m, &TrainOptions::default())?;
    // The run's summary, as the trainer wrote it beside the adapter.
    println!("{}", std::fs::read_to_string(cfg.output_dir.join("summary.json"))?);
    // ANCHOR_END: train
    Ok(())
}
