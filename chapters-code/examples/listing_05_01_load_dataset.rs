//! Listing 5-1: load the book's datasets in their three shapes, and read what the loader
//! says about malformed lines.
//!
//!     cargo run -p lorakit --example listing_05_01_load_dataset
use book_support::data_dir;
use lorakit::data::{DataError, load_dataset};

fn main() -> anyhow::Result<()> {
    let data = data_dir()?;
    // ANCHOR: load
    // One loader, three shapes: chat records in JSON Lines, an array of instruction records
    // in JSON, and instruction records in CSV. The extension picks the parser.
    for file in ["extract/train.jsonl", "sample_dataset.json", "training_examples.csv"] {
        let records = load_dataset(&data.join(file))?;
        println!("{file:<24} {:>4} records", records.len());
    }
    // Whatever the shape, a record is a conversation whose last message is the answer.
    let records = load_dataset(&data.join("training_examples.csv"))?;
    for m in &records[0].messages {
        println!("  {:<10} {}", m.role, m.content);
    }
    // ANCHOR_END: load

    // ANCHOR: errors
    let good = r#"{"instruction": "Say hello.", "output": "Hello!"}"#;
    let bad_lines = [
        r#"{"instruction": "Say hello.", "ouput": "Hello!"}"#,
        r#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello!"}]}"#,
        r#"{"messages": [{"role": "user", "content": "Hi"}]}"#,
        r#"{"instruction": "Say hello.", "output": "Hello!""#,
    ];
    let dir = std::env::temp_dir().join(format!("lorakit-ch05-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("train.jsonl");
    for bad in bad_lines {
        // A good line, then the bad one: the error must point at line 2.
        std::fs::write(&path, format!("{good}\n{bad}\n"))?;
        let err = load_dataset(&path).unwrap_err();
        let e: &DataError = err.downcast_ref().expect("dataset problems are DataErrors");
        println!("{:?} -> {}", e.location, err.to_string().replace(&format!("{}/", dir.display()), ""));
    }
    // ANCHOR_END: errors
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
