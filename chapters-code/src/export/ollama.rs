//! The directory `lora export --format ollama` writes: the merged model with a Modelfile
//! (the dependable route), and for a GGUF base also the small adapter with a second
//! Modelfile that points at the base file (the route Ollama may refuse).
//!
//! For a base from Ollama's own store (`ollama:NAME:TAG`) the adapter route comes first:
//! `Modelfile` says `FROM NAME:TAG` + `ADAPTER`, so the adapter applies to the very weights
//! it was trained on and the server keeps the model's own template; the merged model is
//! `Modelfile.merged`, with that template copied from the store.

use super::{ExportDtype, ExportRequest, write_gguf_adapter, write_merged};
use crate::load::LoadedModel;
use crate::lora::LoraAdapter;
use crate::ollama::deploy::{ADAPTER_MODELFILE, MERGED_FALLBACK_MODELFILE, MERGED_MODELFILE};
use crate::ollama::modelfile::{Modelfile, SystemChoice, ollama_name};
use crate::ollama::store::StoreModel;
use crate::ollama::template::{OllamaTemplate, check_stops, ollama_template};
use crate::train::SystemPrompts;
use anyhow::{Context, Result};
use std::path::Path;

/// `model.gguf` + `Modelfile` (the dependable route), and for a GGUF base also
/// `adapter.gguf` + `Modelfile.adapter` (FROM the base file, ADAPTER the small file).
pub fn write_dir(
    req: &ExportRequest,
    base: LoadedModel,
    adapter: &LoraAdapter,
    name: &str,
    dtype: ExportDtype,
    dir: &Path,
) -> Result<(Vec<String>, String)> {
    let mut notes = Vec::new();
    if let Some(store) = base.ollama.clone()
        && req.chat_template.is_none()
    {
        return write_store_dir(req, base, &store, adapter, name, dtype, dir, notes);
    }
    let jinja = match &req.chat_template {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the chat template {}", file.display()))?,
        None => base.template.as_ref().map(|t| t.source().to_string()).with_context(|| {
            format!(
                "{} has no chat template; Ollama needs one to chat (give one with --chat-template FILE.jinja)",
                base.path.display()
            )
        })?,
    };
    let tmpl = ollama_template(&jinja)?;
    let tokenizer = base.tokenizer()?;
    check_stops(&tmpl.stops, tokenizer)?;
    let system = system_line(req, &mut notes)?;
    let modelfile = |from: &str, adapters: &[&str]| exported_modelfile(from, adapters, &tmpl, system.clone());
    if base.path.is_file() {
        let base_abs = base.path.canonicalize().with_context(|| format!("cannot resolve {}", base.path.display()))?;
        write_gguf_adapter(adapter, &base, name, ExportDtype::F32, &dir.join("adapter.gguf"))?;
        modelfile(&base_abs.display().to_string(), &["./adapter.gguf"]).write(&dir.join(ADAPTER_MODELFILE))?;
    } else {
        notes.push("the base is not a GGUF file, so only the merged route (Modelfile) was written".into());
    }
    write_merged(base, adapter, name, dtype, req.vocab_from.as_deref(), &dir.join("model.gguf"))?;
    modelfile("./model.gguf", &[]).write(&dir.join(MERGED_MODELFILE))?;
    let cmd = format!("ollama create {} -f {}", ollama_name(name), req.out.join(MERGED_MODELFILE).display());
    Ok((notes, cmd))
}

/// The export of an adapter trained on a model from Ollama's store: `Modelfile` = FROM the
/// store's name + ADAPTER (the server has those weights and their template already), and
/// `Modelfile.merged` = the merged model with the store's template and stops.
#[allow(clippy::too_many_arguments)]
fn write_store_dir(
    req: &ExportRequest,
    base: LoadedModel,
    store: &StoreModel,
    adapter: &LoraAdapter,
    name: &str,
    dtype: ExportDtype,
    dir: &Path,
    mut notes: Vec<String>,
) -> Result<(Vec<String>, String)> {
    let from = store.name.short();
    let system = system_line(req, &mut notes)?;
    let template = store.template.clone().with_context(|| {
        format!(
            "Ollama model {from} has no template layer ({}); give a chat template with --chat-template FILE.jinja",
            store.manifest.display()
        )
    })?;
    let tmpl = OllamaTemplate { template, stops: store.stops(), format: "ollama" };
    write_gguf_adapter(adapter, &base, name, ExportDtype::F32, &dir.join("adapter.gguf"))?;
    let mut on_server = exported_modelfile(&from, &["./adapter.gguf"], &tmpl, system.clone());
    // FROM a model name inherits its TEMPLATE on the server; the stops stay, to be explicit.
    on_server.template = None;
    on_server.write(&dir.join(MERGED_MODELFILE))?;
    write_merged(base, adapter, name, dtype, req.vocab_from.as_deref(), &dir.join("model.gguf"))?;
    // Without a SYSTEM line the adapter route keeps the model's own on the server; the merged
    // route must say it to serve the same prompt.
    let merged_system = match (&req.system, system) {
        (SystemChoice::Inherit, None) => store.system.clone(),
        (_, system) => system,
    };
    exported_modelfile("./model.gguf", &[], &tmpl, merged_system).write(&dir.join(MERGED_FALLBACK_MODELFILE))?;
    notes.push(format!(
        "Modelfile: FROM {from} + ADAPTER ./adapter.gguf, the weights the adapter was trained on \
         (the Ollama server needs {from}); {MERGED_FALLBACK_MODELFILE}: the merged model.gguf, \
         which lora deploy falls back to if the server refuses the adapter"
    ));
    let cmd = format!("ollama create {} -f {}", ollama_name(name), req.out.join(MERGED_MODELFILE).display());
    Ok((notes, cmd))
}

// ANCHOR: exported_modelfile
/// The Modelfile an export writes: the model (and adapters), the translated template with
/// its stop strings, the system prompt, and the decoding defaults the adapter was evaluated
/// with.
pub fn exported_modelfile(
    from: &str,
    adapters: &[&str],
    template: &OllamaTemplate,
    system: Option<String>,
) -> Modelfile {
    let mut m = Modelfile::new(from).with_template(template);
    m.adapters = adapters.iter().map(|a| a.to_string()).collect();
    m.system = system;
    // Greedy: the adapter was trained to give one right answer. And no repeat penalty:
    // Ollama's llama.cpp runner (the one that applies ADAPTER) defaults to 1.1, which would
    // push down the quotes and braces a JSON answer must repeat.
    m.parameters.push(("temperature".into(), "0".into()));
    m.parameters.push(("repeat_penalty".into(), "1".into()));
    m
}
// ANCHOR_END: exported_modelfile

// ANCHOR: system_line
/// The SYSTEM line. An adapter learns its task under the system prompt of its training
/// examples; served under another (the chat template's default, say), it can fail outright.
/// So by default SYSTEM is that prompt, read from the run's records.
fn system_line(req: &ExportRequest, notes: &mut Vec<String>) -> Result<Option<String>> {
    match &req.system {
        SystemChoice::Text(s) => Ok(Some(s.clone())),
        SystemChoice::Omit => Ok(None),
        SystemChoice::Inherit => {
            let Some((record, source)) = SystemPrompts::of_run(&req.adapter)? else {
                notes.push(format!(
                    "{} holds no training records (system_prompts.json, or a train_config.toml whose data is still there), \
                     so the Modelfile has no SYSTEM line: give --system with the prompt the adapter was trained under",
                    req.adapter.display()
                ));
                return Ok(None);
            };
            let Some(top) = record.most_frequent() else {
                notes.push(
                    "the training examples carry no system prompt, so the Modelfile has none either \
                     (the chat template's default applies, as it did in training)"
                        .into(),
                );
                return Ok(None);
            };
            let (n, total) = (top.examples, record.examples);
            notes.push(if record.prompts.len() > 1 {
                format!(
                    "the training data carry {} different system prompts; SYSTEM is the most frequent, used by {n} of {total} \
                     examples (choose another with --system)",
                    record.prompts.len()
                )
            } else if n < total {
                format!("SYSTEM is the system prompt of {n} of {total} training examples (the others have none)")
            } else {
                format!("SYSTEM is the system prompt all {total} training examples carry (from {})", source.display())
            });
            Ok(Some(top.text.clone()))
        }
    }
}
// ANCHOR_END: system_line
