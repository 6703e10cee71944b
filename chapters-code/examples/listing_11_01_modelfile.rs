//! Listing 11-1: the Modelfile `lora demo` exports for the fine-tuned SmolLM2 — the model's
//! own Jinja chat template translated into Ollama's Go template, its stop strings checked
//! against the vocabulary, and the system prompt of the training data — and the same
//! translation for Llama 3.2's template.
//!
//!     cargo run -p lorakit --example listing_11_01_modelfile
use book_support::{crate_dir, data_dir};
use lorakit::chat::{ChatTemplate, Message};
use lorakit::data::load_dataset;
use lorakit::export::ollama::exported_modelfile;
use lorakit::ollama::template::{check_stops, ollama_template};
use lorakit::tokenizer::{read_gguf, tokenizer_from_gguf};
use lorakit::train::SystemPrompts;

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
    // SYSTEM: the prompt the demo's adapter was trained under, the most frequent system
    // message of its training data (here, the only one).
    let records = load_dataset(&data_dir()?.join("extract/train.jsonl"))?;
    let prompts = SystemPrompts::count(&records);
    let system = prompts.most_frequent().map(|p| p.text.clone());
    println!("system prompts in {} training examples: {}", prompts.examples, prompts.prompts.len());
    // The merged route's Modelfile, as `lora export --format ollama` writes it.
    let modelfile = exported_modelfile("./model.gguf", &[], &tmpl, system);
    println!("---- Modelfile ({} template) ----\n{}", tmpl.format, modelfile.render());
    // ANCHOR_END: modelfile

    // ANCHOR: render
    // The prompt Ollama builds for `ollama run demo "…"`: SYSTEM in front of the message,
    // then the Go template. It must equal the Jinja render of the same conversation, which
    // is how every training example was rendered.
    let question = Message::new("user", "Hi, I'm Ana from Porto. 3 Desk Lamps please.");
    let ollama = modelfile.ollama_prompt(std::slice::from_ref(&question))?;
    let system = Message::new("system", modelfile.system.clone().unwrap_or_default());
    let trained = jinja.render(&[system, question], true)?;
    println!("---- prompt (equal to the Jinja render: {}) ----\n{ollama}", ollama == trained);
    // ANCHOR_END: render

    // ANCHOR: llama
    // Llama 3.2's template (in the crate's sources) gives another layout and other stops.
    let llama = std::fs::read_to_string(crate_dir()?.join("src/templates/llama3.2.jinja"))?;
    let t = ollama_template(&llama)?;
    println!("---- Llama 3.2: {} template, stops {:?} ----\n{}", t.format, t.stops, t.template);
    // ANCHOR_END: llama
    Ok(())
}
