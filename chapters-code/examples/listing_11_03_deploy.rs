//! Listing 11-3: create the fine-tuned model on an Ollama server — what `lora deploy` does:
//! upload the GGUF blobs the server lacks, `POST /api/create`, then ask a first question.
//! The server is `$OLLAMA_HOST` (default http://127.0.0.1:11434). `--dry-run` prints the
//! requests and sends nothing.
//!
//!     lora export --adapter models/lora_adapters/ch08 --format ollama --out models/ollama/ch11
//!     cargo run -p lorakit --example listing_11_03_deploy -- models/ollama/ch11 [--dry-run]
use std::path::PathBuf;
use std::time::Duration;

use lorakit::ollama::deploy::{DeployOptions, deploy};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let dir = args.iter().find(|a| !a.starts_with("--")).map(PathBuf::from).unwrap_or("models/ollama/ch11".into());
    // ANCHOR: deploy
    let opts = DeployOptions {
        // The directory `lora export --format ollama` wrote: its Modelfile names model.gguf.
        modelfile: dir,
        name: "extract-lora".into(),
        host: std::env::var("OLLAMA_HOST").ok(), // else http://127.0.0.1:11434
        prompt: "Hi, I'm Ana from Porto. 3 Desk Lamps please.".into(),
        max_tokens: 48,
        timeout: Duration::from_secs(300),
        dry_run,
        system: Default::default(), // the Modelfile's SYSTEM: the prompt the adapter trained under
    };
    let report = deploy(&opts)?;
    print!("{report}"); // the requests for a dry run; the model and its first answer otherwise
    if report.answer.is_some() {
        println!("uploaded {} blob(s); talk to it with: ollama run {}", report.uploaded.len(), report.name);
    }
    // ANCHOR_END: deploy
    Ok(())
}
