//! Listing 11-2: why stop tokens matter. The same question, answered greedily by SmolLM2
//! twice: once stopping at the end-of-turn token, once without any stop token.
//!
//!     cargo run -p lorakit --example listing_11_02_stop_tokens
use lorakit::candle::DType;
use lorakit::chat::Message;
use lorakit::generate::{GenerationConfig, generate};

fn main() -> anyhow::Result<()> {
    // ANCHOR: stops
    let m = lorakit::load::load("smollm2-135m", DType::F32)?;
    let prompt = m.chat_prompt(&[Message::new("user", "What is the capital of France?")])?;
    let ids = m.encode(&prompt)?;
    let tok = m.tokenizer()?;
    println!("stop ids: {:?} = {:?}", m.stop_ids, m.stop_ids.iter().map(|&i| tok.id_to_token(i)).collect::<Vec<_>>());
    for (label, stops) in [("with stop tokens", m.stop_ids.clone()), ("without", vec![])] {
        let (out, reason) = generate(&m.model, &ids, &stops, &GenerationConfig::greedy(60), |_| Ok(()))?;
        // decode(.., false) keeps the special tokens visible.
        let text = tok.decode(&out, false).map_err(anyhow::Error::msg)?;
        println!("---- {label}: {} tokens, {reason:?} ----\n{text}", out.len());
    }
    // ANCHOR_END: stops
    Ok(())
}
