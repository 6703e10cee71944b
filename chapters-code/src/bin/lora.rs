//! `lora`: the command-line face of lorakit.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lorakit::candle::DType;
use lorakit::chat::Message;
use lorakit::generate::{GenerationConfig, generate};
use lorakit::load::{LoadedModel, load};
use lorakit::{LoraAdapter, score};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "lora", version, about = "Train, try and ship LoRA adapters for Llama-family models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// `smollm2-135m` (default, fetched on first use), a .gguf file, a Hugging Face model
    /// directory, or a Hub repo id such as meta-llama/Llama-3.2-1B-Instruct.
    #[arg(long, default_value = lorakit::fetch::DEFAULT_MODEL)]
    model: String,
    /// A LoRA adapter directory (PEFT layout: adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    adapter: Option<PathBuf>,
}

impl ModelArgs {
    fn load(&self) -> Result<LoadedModel> {
        let mut m = load(&self.model, DType::F32)?;
        if let Some(dir) = &self.adapter {
            let adapter = LoraAdapter::load_peft(dir, &m.model.config, DType::F32, m.model.device())?;
            m.model.apply_adapter(&adapter)?;
        }
        Ok(m)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Score a text or token ids: next-token logits and probabilities at every position.
    Score {
        #[command(flatten)]
        model: ModelArgs,
        /// Comma-separated token ids.
        #[arg(long, conflicts_with = "text", required_unless_present = "text")]
        ids: Option<String>,
        /// Text to tokenize (no special tokens are added).
        #[arg(long)]
        text: Option<String>,
        /// How many top tokens to list per position.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Also print the whole logits row of every position.
        #[arg(long)]
        full: bool,
        /// Print one JSON object (otherwise a readable table).
        #[arg(long)]
        json: bool,
    },
    /// Generate an answer to a prompt (rendered with the model's chat template).
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        /// The user's message.
        #[arg(long)]
        prompt: String,
        /// A system message (the template's default when absent).
        #[arg(long)]
        system: Option<String>,
        /// Use the prompt as raw text, without the chat template.
        #[arg(long)]
        raw: bool,
        #[arg(long, default_value_t = 128)]
        max_new_tokens: usize,
        /// 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        top_p: Option<f64>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Score { model, ids, text, top, full, json } => {
            let m = model.load()?;
            let ids = match (ids, text) {
                (Some(s), _) => parse_ids(&s)?,
                (None, Some(t)) => m.encode(&t)?,
                (None, None) => bail!("give --ids or --text"),
            };
            let report = score::score(&m.model, &ids, top, full)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                for (i, pos) in report.positions.iter().enumerate() {
                    let tok = m.decode(&ids[i..=i]).unwrap_or_default();
                    let tops: Vec<String> = pos
                        .top
                        .iter()
                        .map(|t| format!("{:?} {:.3}", m.decode(&[t.id]).unwrap_or_default(), t.prob))
                        .collect();
                    println!("{i:>4} {tok:?} → {}", tops.join(", "));
                }
            }
        }
        Command::Generate { model, prompt, system, raw, max_new_tokens, temperature, top_k, top_p, seed } => {
            let m = model.load()?;
            let text = if raw {
                prompt
            } else {
                let mut msgs = Vec::new();
                if let Some(s) = system {
                    msgs.push(Message::new("system", s));
                }
                msgs.push(Message::new("user", prompt));
                m.chat_prompt(&msgs)?
            };
            let prompt_ids = m.encode(&text)?;
            let cfg = GenerationConfig { max_new_tokens, temperature, top_k, top_p, seed };
            let mut shown = String::new();
            let mut so_far = Vec::new();
            let stdout = std::io::stdout();
            generate(&m.model, &prompt_ids, &m.stop_ids, &cfg, |id| {
                // Decode the whole answer so far and print only what is new: a token can
                // end in the middle of a UTF-8 character.
                so_far.push(id);
                let text = m.decode(&so_far)?;
                if let Some(new) = text.strip_prefix(shown.as_str()) {
                    if !new.ends_with('\u{FFFD}') {
                        print!("{new}");
                        stdout.lock().flush().ok();
                        shown = text;
                    }
                }
                Ok(())
            })?;
            println!();
        }
    }
    Ok(())
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(|x| x.trim().parse::<u32>().with_context(|| format!("--ids: {x:?} is not a token id")))
        .collect()
}
