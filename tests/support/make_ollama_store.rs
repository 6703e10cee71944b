//! `cargo run -p lora-book --example ollama-store -- DIR`: a model store at DIR holding the
//! book's SmolLM2 file as `smollm2:135m`, laid out as `ollama pull smollm2:135m` leaves one
//! (see tests/support/ollama_store.rs). `bash scripts/book.sh outputs` points
//! `OLLAMA_MODELS` at it to re-run the book's `ollama:` commands without Ollama.

use anyhow::{Context, Result};
use std::path::PathBuf;

fn main() -> Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).context("usage: ollama-store DIR")?);
    lora_book::ollama_store::write_smollm2(&dir)
}
