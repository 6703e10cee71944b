//! Listing 11-1: the Modelfile for a fine-tuned SmolLM2 — the model's own Jinja chat template
//! translated into Ollama's Go template, its stop strings checked against the vocabulary —
//! and the same translation for Llama 3.2's template.
//!
//!     cargo run -p lorakit --example listing_11_01_modelfile
use book_support::crate_dir;
use lorakit::chat::{ChatTemplate, Message};
use lorakit::modelfile::{Modelfile, check_stops, ollama_template};
use lorakit::tokenizer::{read_gguf, tokenizer_from_gguf};

fn main() -> anyhow::Result<()> {
    // ANCHOR: modelfile
    // The chat template travels inside the GGUF file, as tokenizer.chat_template.
    let gguf = read_gguf(&lorakit::fetch::default_model_path()?)?;
    let jinja = ChatTemplate::from_gguf(&gguf)?;
    // Translated, then checked: the Jinja and the Go template must render the same prompts.
    let tmpl = ollama_template(jinja.source())?;
    // Every stop string must be a single token of this model's vocabulary.
    let tokenizer = tokenizer_from_gguf(&gguf)?;
    check_stops(&tmpl.stops, &tokenizer)?;
    for s in &tmpl.stops {
        println!("stop {s:<12} = token {}", tokenizer.token_to_id(s).expect("checked above"));
    }
    let mut modelfile = Modelfile::new("./model.gguf").with_template(&tmpl);
    modelfile.parameters.push(("temperature".into(), "0".into()));
    println!("---- Modelfile ({} template) ----\n{}", tmpl.format, modelfile.render());
    // ANCHOR_END: modelfile

    // ANCHOR: render
    // What the model sees for one question, from the Jinja template: Ollama's must match it.
    let question = [Message::new("user", "Hi, I'm Ana from Porto. 3 Desk Lamps please.")];
    println!("---- prompt ----\n{}", jinja.render(&question, true)?);
    // ANCHOR_END: render

    // ANCHOR: llama
    // Llama 3.2's template (in the crate's sources) gives another layout and other stops.
    let llama = std::fs::read_to_string(crate_dir()?.join("src/templates/llama3.2.jinja"))?;
    let t = ollama_template(&llama)?;
    println!("---- Llama 3.2: {} template, stops {:?} ----\n{}", t.format, t.stops, t.template);
    // ANCHOR_END: llama
    Ok(())
}
