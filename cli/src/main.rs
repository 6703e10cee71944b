//! `lora`: the command-line face of lorakit.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lorakit::candle::DType;
use lorakit::chat::{Message, Role};
use lorakit::data::Record;
use lorakit::data::load_dataset;
use lorakit::data::synth::Task;
use lorakit::eval::EvalReport;
use lorakit::generate::{GenerationConfig, generate};
use lorakit::load::LoadedModel;
use lorakit::settings::Settings;
use lorakit::train::{Schedule, TrainConfig, TrainOptions, train};
use lorakit::{LoraAdapter, score};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use term::{log_stderr, print_comparison, print_export_report, print_summary};

mod demo;
mod term;

#[derive(Parser)]
#[command(name = "lora", version, about = "Train, try and ship LoRA adapters for Llama-family models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// `smollm2-135m` (default, fetched on first use), a .gguf file, a Hugging Face model
    /// directory, a Hub repo id such as meta-llama/Llama-3.2-1B-Instruct, or
    /// `ollama:NAME[:TAG]` (a model Ollama has pulled, read from its store).
    #[arg(long, default_value = lorakit::fetch::DEFAULT_MODEL)]
    model: String,
    /// A LoRA adapter directory (PEFT layout: adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    adapter: Option<PathBuf>,
}

/// The environment's settings, read once: this binary is lorakit's edge.
fn settings() -> &'static Settings {
    static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
    SETTINGS.get_or_init(Settings::from_env)
}

/// Load a model in `dtype` with the environment's settings, reporting downloads on stderr.
fn load(spec: &str, dtype: DType) -> Result<LoadedModel> {
    lorakit::load::load_with(spec, dtype, settings(), &log_stderr)
}

/// [`lorakit::eval::evaluate`] with a progress bar.
fn evaluate(m: &LoadedModel, records: &[Record], task: Task, max_new_tokens: usize) -> Result<EvalReport> {
    let bar = term::EvalBar::new(records.len());
    lorakit::eval::evaluate_with(m, records, task, max_new_tokens, &|done, total| bar.update(done, total))
}

/// `--host`, else `$OLLAMA_HOST` (else lorakit uses Ollama's default).
fn ollama_host(flag: Option<String>) -> Option<String> {
    flag.or_else(|| settings().ollama_host.clone())
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

    /// [`ModelArgs::load`], then the projections quantized when asked (`--quantize`).
    fn load_for_inference(&self, quantize: Option<lorakit::export::ExportDtype>) -> Result<LoadedModel> {
        use lorakit::export::ExportDtype;
        let mut m = self.load()?;
        match quantize {
            None => {}
            Some(d @ (ExportDtype::Q8_0 | ExportDtype::Q4_0)) => m.model.quantize(d.ggml())?,
            Some(other) => anyhow::bail!("--quantize takes q8_0 or q4_0 (got {other:?}); f32 and f16 are the default"),
        }
        Ok(m)
    }
}

/// Training settings; each flag overrides the config file (or the default).
#[derive(clap::Args, Default)]
struct TrainFlags {
    /// A TOML file with any of the settings below (unknown keys are errors).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The base model: `smollm2-135m` (default), a .gguf file, a Hugging Face directory or
    /// repo id, or `ollama:NAME[:TAG]` (a model Ollama has pulled).
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    train_data: Option<PathBuf>,
    #[arg(long)]
    validation_data: Option<PathBuf>,
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// The frozen base's storage while training: f32 (default, fastest) or a block type,
    /// dequantized layer by layer for each product (QLoRA-style: about the file's size in memory).
    #[arg(long, value_enum)]
    base_dtype: Option<lorakit::train::BaseDtype>,
    #[arg(long)]
    r: Option<usize>,
    #[arg(long)]
    alpha: Option<f64>,
    #[arg(long)]
    dropout: Option<f64>,
    /// Comma-separated, e.g. q_proj,v_proj.
    #[arg(long, value_delimiter = ',')]
    target_modules: Option<Vec<String>>,
    #[arg(long)]
    rslora: bool,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long)]
    warmup_steps: Option<usize>,
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    #[arg(long)]
    max_grad_norm: Option<f64>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long)]
    micro_batch: Option<usize>,
    #[arg(long)]
    grad_accum: Option<usize>,
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    train_on_prompt: bool,
    /// Validation loss every N steps and at the end (0: only at the end)
    #[arg(long)]
    eval_every: Option<usize>,
    /// A checkpoint every N steps and at the end (0: only at the end)
    #[arg(long)]
    save_every: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
}

impl TrainFlags {
    fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p)?,
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($to:expr => $($f:ident),*) => { $( if let Some(v) = &self.$f { $to.$f = v.clone(); } )* };
        }
        set!(c => model, train_data, output_dir, base_dtype, lr, weight_decay, warmup_steps, schedule, max_grad_norm,
             epochs, micro_batch, grad_accum, max_len, eval_every, save_every, seed);
        set!(c.lora => r, alpha, dropout, target_modules);
        if self.validation_data.is_some() {
            c.validation_data = self.validation_data.clone();
        }
        if self.max_steps.is_some() {
            c.max_steps = self.max_steps;
        }
        c.lora.use_rslora |= self.rslora;
        c.train_on_prompt |= self.train_on_prompt;
        if let Some(p) = &self.config {
            c.validate().with_context(|| format!("{} (and the command-line flags)", p.display()))?;
        } else {
            c.validate()?;
        }
        Ok(c)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train a LoRA adapter (see `--config` for a TOML file of settings).
    Train {
        #[command(flatten)]
        flags: TrainFlags,
        /// Continue from the newest checkpoint in the output directory.
        #[arg(long)]
        resume: bool,
        /// Start over: delete an earlier training run in the output directory first (only a
        /// directory that holds a run is deleted).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// No progress output.
        #[arg(long)]
        quiet: bool,
    },
    /// Task metric and loss on a held-out set, for the base model and with the adapter.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        /// Held-out examples (.json, .jsonl or .csv).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_enum, default_value = "extract")]
        task: Task,
        /// Evaluate only the first N examples.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Also write the report (both models, every answer) as JSON.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Inspect or create datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Talk to the model (with or without an adapter); an empty line or Ctrl-D ends.
    Chat {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 256)]
        max_new_tokens: usize,
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Run the projections in this block type (q8_0 or q4_0), as llama.cpp and Ollama
        /// do: faster, within quantization error of the full-precision answers.
        #[arg(long, value_enum)]
        quantize: Option<lorakit::export::ExportDtype>,
    },
    /// The whole loop on the sample data: answers before, train a LoRA, answers after.
    Demo {
        #[command(flatten)]
        flags: TrainFlags,
        /// Folder with train/validation/test.jsonl of one task.
        #[arg(long, default_value = "data/extract")]
        data_dir: PathBuf,
        #[arg(long, value_enum, default_value = "extract")]
        task: Task,
        /// Test examples to answer before and after (30 keep the whole demo near 3 minutes).
        #[arg(long, default_value_t = 30)]
        eval_examples: usize,
        /// Where the trained adapter is exported for Ollama (merged Q8_0 GGUF + Modelfile).
        #[arg(long, default_value = "models/ollama/demo")]
        export_dir: PathBuf,
    },
    /// The book's Part V experiments (before/after, rank, subspace similarity, efficiency),
    /// recorded as JSON and SVG.
    Experiments {
        /// Small steps, ranks and example counts (minutes, for CI); writes to
        /// target/experiments-quick unless --out is given.
        #[arg(long)]
        quick: bool,
        /// Run only these (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<lora_harness::experiments::Experiment>,
        /// Results folder (default: book/data/experiments, or target/experiments-quick with --quick).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep every run's adapter and records here (default: a temporary folder).
        #[arg(long)]
        runs_dir: Option<PathBuf>,
        /// Folder with extract/, support/ and persona/ datasets.
        #[arg(long, default_value = "data")]
        data_root: PathBuf,
        #[arg(long, default_value = lorakit::fetch::DEFAULT_MODEL)]
        model: String,
        /// Only redraw the SVG plots from the JSON files already in the results folder.
        #[arg(long)]
        replot: bool,
    },
    /// Benchmarks: training, export and generation speed and memory, side by side with
    /// PyTorch + PEFT and llama.cpp when given (scripts/bench.sh sets them up).
    Bench(lora_harness::bench::Args),
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
    /// Write a trained adapter as PEFT, a GGUF adapter, a merged GGUF model, or a
    /// directory for Ollama (merged GGUF + Modelfile).
    Export {
        /// Base model the adapter was trained on (the same spec as for training; with
        /// `ollama:NAME[:TAG]` the Modelfile says FROM NAME:TAG + ADAPTER).
        #[arg(long, default_value = lorakit::fetch::DEFAULT_MODEL)]
        model: String,
        /// The adapter: a `lora train` output directory or a PEFT directory.
        #[arg(long)]
        adapter: PathBuf,
        #[arg(long, value_enum)]
        format: lorakit::export::ExportFormat,
        /// Output file (gguf, gguf-adapter) or directory (peft, ollama).
        #[arg(long)]
        out: PathBuf,
        /// Storage type (default: f32 for adapters, f16 for gguf, q8_0 for ollama).
        #[arg(long, value_enum)]
        dtype: Option<lorakit::export::ExportDtype>,
        /// `general.name` in the GGUF (default: the adapter directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Take the vocabulary from this GGUF (for HF bases without a convertible tokenizer).
        #[arg(long)]
        vocab_from: Option<PathBuf>,
        /// The Modelfile's SYSTEM message (default: the system prompt the adapter was
        /// trained under, from its run's records).
        #[arg(long, conflicts_with = "no_system")]
        system: Option<String>,
        /// Write no SYSTEM line (the chat template's default system turn applies).
        #[arg(long)]
        no_system: bool,
        /// A Jinja chat template for the Modelfile (for a base without one, or to replace it).
        #[arg(long)]
        chat_template: Option<PathBuf>,
        /// Replace an existing output.
        #[arg(long)]
        force: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a model on an Ollama server from an exported Modelfile: upload the GGUF
    /// files, create, and ask it a question (falls back from the adapter route to the
    /// merged model if the server refuses it).
    Deploy {
        /// A Modelfile, or a directory with one (`lora export --format ollama` writes it);
        /// pass DIR/Modelfile.adapter to try base + adapter first.
        path: PathBuf,
        /// Name on the server, e.g. extract-lora or extract-lora:v1 (default: the
        /// directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Ollama's address (default: $OLLAMA_HOST, else http://127.0.0.1:11434).
        #[arg(long)]
        host: Option<String>,
        /// The smoke test's prompt.
        #[arg(long, default_value = "Say hello in one short sentence.")]
        prompt: String,
        /// The smoke test's answer length in tokens.
        #[arg(long, default_value_t = 48)]
        max_tokens: i32,
        /// Seconds one request may take (uploads get more for big files).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Print the requests that would be sent, and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace the Modelfile's SYSTEM message on the server.
        #[arg(long, conflicts_with = "no_system")]
        system: Option<String>,
        /// Create the model without the Modelfile's SYSTEM message.
        #[arg(long)]
        no_system: bool,
        /// Print, as JSON, what Ollama would run for --prompt and contact no server: the model
        /// and adapter files, the prompt text the Modelfile's TEMPLATE and SYSTEM render, the
        /// stop strings (`scripts/llama.sh ask` feeds it to llama.cpp).
        #[arg(long, conflicts_with = "dry_run")]
        print_prompt: bool,
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
        /// Run the projections in this block type (q8_0 or q4_0), as llama.cpp and Ollama
        /// do: faster, within quantization error of the full-precision answers.
        #[arg(long, value_enum)]
        quantize: Option<lorakit::export::ExportDtype>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Counts, token lengths (with the model's tokenizer and template), duplicates, and
    /// examples longer than --max-len.
    Check {
        file: PathBuf,
        #[arg(long, default_value = lorakit::fetch::DEFAULT_MODEL)]
        model: String,
        #[arg(long, default_value_t = 256)]
        max_len: usize,
    },
    /// Write a synthetic dataset (seeded, deduplicated) as train/validation/test.jsonl.
    Synth {
        #[arg(long, value_enum)]
        task: Task,
        /// Training records (the defaults make the book's data/ folder).
        #[arg(long, default_value_t = lorakit::data::synth::BOOK_SIZES.train)]
        train: usize,
        /// Validation records.
        #[arg(long, default_value_t = lorakit::data::synth::BOOK_SIZES.validation)]
        validation: usize,
        /// Test records, in phrasings train and validation never use.
        #[arg(long, default_value_t = lorakit::data::synth::BOOK_SIZES.test)]
        test: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// An Ollama model that rewrites the training questions (e.g. llama3.2); the
        /// validation and test splits are never rewritten.
        #[arg(long)]
        teacher: Option<String>,
        /// Ollama's address (default: $OLLAMA_HOST, else http://127.0.0.1:11434).
        #[arg(long)]
        ollama_host: Option<String>,
        /// Rewrites asked per training record.
        #[arg(long, default_value_t = 1)]
        paraphrases: usize,
        /// Seconds to wait for one answer from the teacher.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

fn main() {
    // Process-wide CPU settings, while the process still has one thread (see lorakit::runtime).
    lorakit::runtime::configure();
    let cli = Cli::parse();
    // Every command computes on lorakit's rayon pool (see lorakit::runtime).
    if let Err(e) = lorakit::runtime::install(|| run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train { flags, resume, overwrite, quiet } => {
            let cfg = flags.config()?;
            if overwrite {
                demo::clear_previous_run(&cfg.output_dir)?;
            }
            // A quantized base goes from the file to its blocks without an f32 copy.
            let mut m = match cfg.base_dtype.ggml() {
                None => load(&cfg.model, DType::F32)?,
                Some(t) => lorakit::load::load_in_blocks(&cfg.model, t, settings(), &log_stderr)
                    .with_context(|| format!("base_dtype = {}", cfg.base_dtype.name()))?,
            };
            let opts = TrainOptions {
                resume,
                stop: Some(ctrl_c_flag()?),
                observer: Some(Arc::new(term::TrainBar::new(quiet))),
            };
            let (_, summary) = train(&cfg, &mut m, &opts)?;
            if !quiet {
                print_summary(&cfg.output_dir, &summary);
            }
        }
        Command::Export {
            model,
            adapter,
            format,
            out,
            dtype,
            name,
            vocab_from,
            system,
            no_system,
            chat_template,
            force,
            json,
        } => {
            let system = system_choice(system, no_system);
            let req = lorakit::export::ExportRequest {
                model,
                adapter,
                format,
                out,
                dtype,
                name,
                vocab_from,
                system,
                chat_template,
                force,
            };
            let report = lorakit::export::export_with(&req, settings(), &log_stderr)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_export_report(&report);
            }
        }
        Command::Deploy { path, prompt, system, no_system, print_prompt: true, .. } => {
            print_ollama_prompt(&path, &prompt, system_choice(system, no_system))?
        }
        Command::Deploy { path, name, host, prompt, max_tokens, timeout, dry_run, system, no_system, .. } => {
            use lorakit::ollama::deploy::{DeployOptions, DeployProgress, default_name, deploy_with};
            let name = match name {
                Some(n) => n,
                None => default_name(&path)?,
            };
            let timeout = std::time::Duration::from_secs(timeout);
            let system = system_choice(system, no_system);
            let host = ollama_host(host);
            let opts = DeployOptions { modelfile: path, name, host, prompt, max_tokens, timeout, dry_run, system };
            let progress = DeployProgress { log: &log_stderr, bytes: Arc::new(term::ByteBar::default()) };
            print!("{}", deploy_with(&opts, &progress)?);
        }
        Command::Eval { model, data, task, limit, max_new_tokens, report } => {
            eval(model, data, task, limit, max_new_tokens, report)?
        }
        Command::Data { command: DataCommand::Check { file, model, max_len } } => {
            let records = load_dataset(&file)?;
            let m = load(&model, DType::F32)?;
            let report = lorakit::data::check(
                &records,
                |r| Ok(lorakit::data::tokenize_chat(&m, &r.messages, usize::MAX, false)?.ids.len()),
                max_len,
            )?;
            println!("{}: {report}", file.display());
        }
        Command::Data {
            command:
                DataCommand::Synth { task, train, validation, test, seed, out, teacher, ollama_host, paraphrases, timeout },
        } => {
            let sizes = lorakit::data::SplitSizes { train, validation, test };
            let mut splits = lorakit::data::task_splits(task, sizes, seed)?;
            if let Some(model) = teacher {
                use lorakit::ollama::teacher::{Teacher, paraphrase_records};
                let host = self::ollama_host(ollama_host);
                let t = Teacher::connect(host.as_deref(), &model, std::time::Duration::from_secs(timeout))?;
                let (train, stats) = paraphrase_records(&t, &splits.train, paraphrases, seed)?;
                eprintln!(
                    "teacher {model}: {} rewrites asked, {} kept, {} discarded (lost a name/number or repeated)",
                    stats.asked, stats.kept, stats.discarded
                );
                splits.train = train;
            }
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            // A second test of what no other split has: new values, facts or questions.
            let unseen = lorakit::data::synth::unseen_test(task, splits.test.len(), seed);
            let files = [
                ("train", &splits.train),
                ("validation", &splits.validation),
                ("test", &splits.test),
                ("test_unseen", &unseen),
            ];
            for (name, set) in files {
                let path = out.join(format!("{name}.jsonl"));
                lorakit::data::save_dataset(&path, set)?;
                println!("{}: {} records", path.display(), set.len());
            }
        }
        Command::Chat { model, system, max_new_tokens, temperature, seed, quantize } => {
            chat(model, system, max_new_tokens, temperature, seed, quantize)?
        }
        Command::Demo { flags, data_dir, task, eval_examples, export_dir } => {
            demo::run(flags, &data_dir, task, eval_examples, export_dir)?
        }
        Command::Experiments { quick, only, out, runs_dir, data_root, model, replot } => {
            let default = if quick { "target/experiments-quick" } else { "book/data/experiments" };
            let out = out.unwrap_or_else(|| PathBuf::from(default));
            if replot {
                lora_harness::experiments::replot(&out, &only)?;
                return Ok(());
            }
            let args: Vec<String> = std::env::args().skip(1).collect();
            let command = format!("lora {}", args.join(" "));
            let opts = lora_harness::experiments::Options { quick, only, out, runs_dir, data_root, model, command };
            lora_harness::experiments::run(&opts)?;
        }
        Command::Bench(args) => lora_harness::bench::main(&args)?,
        Command::Score { model, ids, text, top, full, json } => score_cmd(model, ids, text, top, full, json)?,
        Command::Generate { model, prompt, system, raw, max_new_tokens, temperature, top_k, top_p, seed, quantize } => {
            let m = model.load_for_inference(quantize)?;
            let text = if raw {
                prompt
            } else {
                let mut msgs = Vec::new();
                if let Some(s) = system {
                    msgs.push(Message::new(Role::System, s));
                }
                msgs.push(Message::new(Role::User, prompt));
                m.chat_prompt(&msgs)?
            };
            let prompt_ids = m.encode(&text)?;
            let cfg = GenerationConfig { max_new_tokens, temperature, top_k, top_p, seed };
            stream(&m, &prompt_ids, &cfg)?;
        }
    }
    Ok(())
}

/// `--system TEXT` / `--no-system`, as the library takes them.
/// `lora deploy --print-prompt`: the files and the exact prompt text Ollama would hand
/// llama.cpp for `message` sent alone, as `ollama run NAME "message"` does.
fn print_ollama_prompt(path: &Path, message: &str, system: lorakit::ollama::modelfile::SystemChoice) -> Result<()> {
    use lorakit::chat::{Message, Role};
    use lorakit::ollama::modelfile::{Modelfile, SystemChoice};
    let file = lorakit::ollama::deploy::modelfile_path(path)?;
    let mut modelfile = Modelfile::read(&file)?;
    match system {
        SystemChoice::Inherit => {}
        SystemChoice::Text(text) => modelfile.system = Some(text),
        SystemChoice::Omit => modelfile.system = None,
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let beside = |name: &str| dir.join(name).display().to_string();
    let request = serde_json::json!({
        "modelfile": file.display().to_string(),
        "model": beside(&modelfile.from),
        "adapters": modelfile.adapters.iter().map(|a| beside(a)).collect::<Vec<_>>(),
        "prompt": modelfile.ollama_prompt(&[Message::new(Role::User, message)])?,
        "stops": modelfile.stops(),
    });
    println!("{}", serde_json::to_string_pretty(&request)?);
    Ok(())
}

fn system_choice(system: Option<String>, no_system: bool) -> lorakit::ollama::modelfile::SystemChoice {
    use lorakit::ollama::modelfile::SystemChoice;
    match (system, no_system) {
        (Some(text), _) => SystemChoice::Text(text),
        (None, true) => SystemChoice::Omit,
        (None, false) => SystemChoice::Inherit,
    }
}

fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',').map(|x| x.trim().parse::<u32>().with_context(|| format!("--ids: {x:?} is not a token id"))).collect()
}

/// Generate and print the answer as it comes; returns its text.
fn stream(m: &LoadedModel, prompt_ids: &[u32], cfg: &GenerationConfig) -> Result<String> {
    let mut shown = String::new();
    let mut so_far = Vec::new();
    let stdout = std::io::stdout();
    generate(&m.model, prompt_ids, &m.stop_ids, cfg, |id| {
        // Decode the whole answer so far and print only what is new: a token can end in
        // the middle of a UTF-8 character.
        so_far.push(id);
        let text = m.decode(&so_far)?;
        if let Some(new) = text.strip_prefix(shown.as_str())
            && !new.ends_with('\u{FFFD}')
        {
            print!("{new}");
            stdout.lock().flush().ok();
            shown = text;
        }
        Ok(())
    })?;
    println!();
    m.decode(&so_far)
}

/// Ctrl-C asks the trainer to save a checkpoint and stop after the current step.
fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // a second Ctrl-C: stop now
        }
        eprintln!("\nstopping after this step (a checkpoint will be saved; Ctrl-C again to quit now)");
    })?;
    Ok(flag)
}

/// `lora eval`: the base model, then the adapter if one is given, on the same examples.
fn eval(
    model: ModelArgs,
    data: PathBuf,
    task: Task,
    limit: Option<usize>,
    max_new_tokens: usize,
    report: Option<PathBuf>,
) -> Result<()> {
    let mut records = load_dataset(&data)?;
    if let Some(n) = limit {
        records.truncate(n);
    }
    let mut m = load(&model.model, DType::F32)?;
    let base = evaluate(&m, &records, task, max_new_tokens)?;
    let tuned = match &model.adapter {
        Some(dir) => {
            let a = LoraAdapter::load_peft(dir, &m.model.config, DType::F32, m.model.device())?;
            m.model.apply_adapter(&a)?;
            Some(evaluate(&m, &records, task, max_new_tokens)?)
        }
        None => None,
    };
    print_comparison(&base, tuned.as_ref(), 3);
    if let Some(path) = report {
        let json = serde_json::json!({ "base": base, "adapter": tuned });
        lorakit::io::atomic_write(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}

/// `lora chat`: a conversation on stdin/stdout, the history resent each turn.
fn chat(
    model: ModelArgs,
    system: Option<String>,
    max_new_tokens: usize,
    temperature: f64,
    seed: u64,
    quantize: Option<lorakit::export::ExportDtype>,
) -> Result<()> {
    let m = model.load_for_inference(quantize)?;
    let mut history: Vec<Message> = system.map(|s| vec![Message::new(Role::System, s)]).unwrap_or_default();
    let cfg = GenerationConfig { max_new_tokens, temperature, top_k: None, top_p: None, seed };
    let stdin = std::io::stdin();
    loop {
        eprint!("you> ");
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        history.push(Message::new(Role::User, line.trim()));
        let ids = m.encode(&m.chat_prompt(&history)?)?;
        print!("model> ");
        let answer = stream(&m, &ids, &cfg)?;
        history.push(Message::new(Role::Assistant, answer));
    }
    Ok(())
}

/// `lora score`: the next-token distribution at every position.
fn score_cmd(
    model: ModelArgs,
    ids: Option<String>,
    text: Option<String>,
    top: usize,
    full: bool,
    json: bool,
) -> Result<()> {
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
            let tops: Vec<String> =
                pos.top.iter().map(|t| format!("{:?} {:.3}", m.decode(&[t.id]).unwrap_or_default(), t.prob)).collect();
            println!("{i:>4} {tok:?} → {}", tops.join(", "));
        }
    }
    Ok(())
}
