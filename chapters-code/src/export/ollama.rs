//! The directory `lora export --format ollama` writes: the merged model with a Modelfile
//! (the dependable route), and for a GGUF base also the small adapter with a second
//! Modelfile that points at the base file (the route Ollama may refuse).

use super::{ExportDtype, ExportRequest, ollama_name, write_gguf_adapter, write_merged};
use crate::load::LoadedModel;
use crate::lora::LoraAdapter;
use crate::modelfile::{Modelfile, check_stops, ollama_template};
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
    let jinja = match &req.chat_template {
        Some(file) => std::fs::read_to_string(file).with_context(|| format!("cannot read the chat template {}", file.display()))?,
        None => base.template.as_ref().map(|t| t.source().to_string()).with_context(|| {
            format!("{} has no chat template; Ollama needs one to chat (give one with --chat-template FILE.jinja)", base.path.display())
        })?,
    };
    let tmpl = ollama_template(&jinja)?;
    let tokenizer = base.tokenizer()?;
    check_stops(&tmpl.stops, tokenizer)?;
    let modelfile = |from: String, adapters: Vec<String>| {
        let mut m = Modelfile::new(from).with_template(&tmpl);
        m.adapters = adapters;
        m.system = req.system.clone();
        // Greedy by default: the adapter was trained to give one right answer.
        m.parameters.push(("temperature".into(), "0".into()));
        m
    };
    if base.path.is_file() {
        let base_abs = base.path.canonicalize().with_context(|| format!("cannot resolve {}", base.path.display()))?;
        write_gguf_adapter(adapter, &base, name, ExportDtype::F32, &dir.join("adapter.gguf"))?;
        modelfile(base_abs.display().to_string(), vec!["./adapter.gguf".into()]).write(&dir.join("Modelfile.adapter"))?;
    } else {
        notes.push("the base is not a GGUF file, so only the merged route (Modelfile) was written".into());
    }
    write_merged(base, adapter, name, dtype, req.vocab_from.as_deref(), &dir.join("model.gguf"))?;
    modelfile("./model.gguf".into(), vec![]).write(&dir.join("Modelfile"))?;
    let cmd = format!("ollama create {} -f {}", ollama_name(name), req.out.join("Modelfile").display());
    Ok((notes, cmd))
}

