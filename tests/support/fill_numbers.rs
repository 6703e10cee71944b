//! `bash scripts/book.sh numbers [FILE…]`: rewrite every annotated number of the book's prose
//! from the results it names (see `tests/support/numbers.rs` for the syntax), at the precision
//! shown. Without arguments, the files `tests/book_numbers.rs` checks.

use anyhow::{Context, Result};
use lora_book::numbers::{COVERED, Sources, annotations, fill};
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files: Vec<String> = if args.is_empty() { COVERED.iter().map(|s| s.to_string()).collect() } else { args };
    let mut sources = Sources::new(&root.join("book"));
    for f in files {
        let path = root.join(&f);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let filled = fill(&text, &mut sources).with_context(|| f.clone())?;
        let count = annotations(&text)?.iter().filter(|a| a.expr.is_some()).count();
        if filled != text {
            std::fs::write(&path, &filled).with_context(|| format!("writing {}", path.display()))?;
            println!("{f}: {count} annotated numbers, rewritten");
        } else if count > 0 {
            println!("{f}: {count} annotated numbers, up to date");
        }
    }
    Ok(())
}
