//! Listing 6-1: generate the book's synthetic datasets, check the splits, and split a
//! dataset of your own.
//!
//!     cargo run -p lorakit --example listing_06_01_synthetic
use std::collections::HashSet;

use book_support::data_dir;
use lorakit::data::synth::{BOOK_SEED, BOOK_SIZES, BOOK_UNSEEN_RECORDS, prompt_key, unseen_test};
use lorakit::data::{Task, load_dataset, split, synthesize, task_splits};

fn main() -> anyhow::Result<()> {
    // ANCHOR: splits
    // Per task, seed 42: 300 train and 40 validation records, 120 test (held-out phrasings).
    for task in Task::ALL {
        let s = task_splits(task, BOOK_SIZES, BOOK_SEED)?;
        println!(
            "{task:<8} train {:>3}  validation {:>3}  test {:>3}",
            s.train.len(),
            s.validation.len(),
            s.test.len()
        );
        let show = |name: &str, r: &lorakit::data::Record| {
            println!("  {name:<6} {}\n         -> {}", r.user().unwrap_or(""), r.answer().unwrap_or(""));
        };
        show("train", &s.train[0]);
        show("test", &s.test[0]);
        // No prompt may sit in two splits: a test question seen in training measures memory.
        let train: HashSet<String> = s.train.iter().map(prompt_key).collect();
        let leaked = s.test.iter().chain(&s.validation).filter(|r| train.contains(&prompt_key(r))).count();
        assert_eq!(leaked, 0);
    }
    // ANCHOR_END: splits

    // ANCHOR: unseen
    // Every task gets a second test of what no split above contains: Extract's names, cities
    // and products, Support's held-out facts, Persona's new questions. A right answer there
    // is copied or reasoned from the prompt, not recalled from training.
    for task in Task::ALL {
        let unseen = unseen_test(task, BOOK_UNSEEN_RECORDS, BOOK_SEED);
        println!("{task:<8} unseen test {:>3}", unseen.len());
        println!("  test   {}\n         -> {}", unseen[0].user().unwrap_or(""), unseen[0].answer().unwrap_or(""));
    }
    // ANCHOR_END: unseen

    // ANCHOR: reproducible
    // Same seed, same bytes: the generator reproduces the committed data/ folder.
    let s = task_splits(Task::Extract, BOOK_SIZES, BOOK_SEED)?;
    let committed = load_dataset(&data_dir()?.join("extract/train.jsonl"))?;
    println!("data/extract/train.jsonl is the seed-{BOOK_SEED} output: {}", committed == s.train);
    // ANCHOR_END: reproducible

    // ANCHOR: split_any
    // Any dataset: drop repeated prompts, shuffle with a seed, then cut off test and validation.
    let mut mine = synthesize(Task::Support, 60, 7);
    let repeats: Vec<_> = mine[..10].to_vec();
    mine.extend(repeats);
    let s = split(&mine, 1, 0.2, 0.1)?;
    println!(
        "{} records ({} unique prompts): train {}, validation {}, test {}",
        mine.len(),
        mine.iter().map(prompt_key).collect::<HashSet<_>>().len(),
        s.train.len(),
        s.validation.len(),
        s.test.len()
    );
    // ANCHOR_END: split_any
    Ok(())
}
