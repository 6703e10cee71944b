//! Regenerate the book's `data/` folder from the synthetic task generators (seed 42):
//! `cargo run -p lorakit --example make_datasets [-- OUT_DIR]`. The test
//! `committed_data_matches_generator` fails if the committed files drift from this output.
use std::path::PathBuf;

use lorakit::data::synth::{BOOK_SEED, BOOK_SIZES, Task, book_datasets};
use lorakit::data::{load_dataset, task_splits};

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"));
    for (rel, bytes) in book_datasets()? {
        let path = out.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap_or(&out))?;
        lorakit::io::atomic_write(&path, &bytes)?;
        // Read back through the loader: what we commit must load.
        let n = load_dataset(&path)?.len();
        println!("{:<28} {n:>4} records", rel.display());
    }
    for task in Task::ALL {
        let splits = task_splits(task, BOOK_SIZES, BOOK_SEED)?;
        println!("\n{task}/train.jsonl, first record:\n{}", serde_json::to_string_pretty(&splits.train[0])?);
    }
    Ok(())
}
