//! Listing 7-2: the learning rate at every step of the default run (warmup, then cosine
//! decay), and the arithmetic that sets the number of steps.
//!
//!     cargo run -p lorakit --example listing_07_02_schedule
use book_support::data_dir;
use lorakit::data::load_dataset;
use lorakit::train::schedule::lr_at;
use lorakit::train::{Schedule, TrainConfig};

fn main() -> anyhow::Result<()> {
    let data = data_dir()?;
    // ANCHOR: steps
    let cfg = TrainConfig::default();
    let n = load_dataset(&data.join("extract/train.jsonl"))?.len();
    // The trainer's arithmetic: micro-batches per epoch, then updates of grad_accum of them.
    let per_epoch = (n / cfg.micro_batch).max(1);
    let total = (cfg.epochs * per_epoch).div_ceil(cfg.grad_accum);
    println!(
        "{n} examples / {} per micro-batch = {per_epoch} micro-batches; / {} per update = {total} updates",
        cfg.micro_batch, cfg.grad_accum
    );
    // ANCHOR_END: steps

    // ANCHOR: schedule
    for step in 0..total {
        let lr = lr_at(step, total, cfg.warmup_steps, cfg.lr, Schedule::Cosine);
        let bar = "#".repeat((lr / cfg.lr * 40.0).round() as usize);
        if step < 8 || step % 5 == 0 || step + 1 == total {
            println!("step {:>2}  lr {lr:.2e}  {bar}", step + 1);
        }
    }
    // ANCHOR_END: schedule
    Ok(())
}
