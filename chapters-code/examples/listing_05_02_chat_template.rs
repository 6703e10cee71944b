//! Listing 5-2: render one training record with the model's own chat template, then
//! tokenize it and show which tokens the loss will score.
//!
//!     cargo run -p lorakit --example listing_05_02_chat_template
use book_support::data_dir;
use lorakit::candle::DType;
use lorakit::data::{load_dataset, tokenize_chat};
use lorakit::train::IGNORE;

fn main() -> anyhow::Result<()> {
    let record = load_dataset(&data_dir()?.join("extract/train.jsonl"))?.remove(0);
    // ANCHOR: render
    // SmolLM2-135M-Instruct: fetched on first use, its template read from the GGUF.
    let m = lorakit::load::load("smollm2-135m", DType::F32)?;
    let template = m.template.as_ref().expect("SmolLM2 ships a chat template");
    // What the model sees when asked: the conversation so far plus the assistant's header.
    let prompt = template.render(record.prompt(), true)?;
    // What it trains on: the same text followed by the answer and the end-of-turn token.
    let full = template.render(&record.messages, false)?;
    println!("---- prompt ----\n{prompt}");
    println!("---- answer (the rest of the full rendering) ----\n{}", &full[prompt.len()..]);
    // ANCHOR_END: render

    // ANCHOR: mask
    let ex = tokenize_chat(&m, &record.messages, 256, false)?;
    println!("{} tokens, {} of them scored", ex.ids.len(), ex.n_targets());
    let first_scored = ex.labels.iter().position(|&l| l != IGNORE).expect("an answer");
    let tok = m.tokenizer()?;
    for (t, (&id, &label)) in ex.ids.iter().zip(&ex.labels).enumerate().skip(first_scored - 4) {
        let piece = tok.decode(&[id], false).map_err(anyhow::Error::msg)?;
        let mark = if label == IGNORE { "  masked" } else { "  scored" };
        println!("{t:>3} {id:>6} {mark}  {piece:?}");
    }
    // ANCHOR_END: mask
    Ok(())
}
