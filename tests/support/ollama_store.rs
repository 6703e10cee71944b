//! A model store laid out as `ollama pull` leaves one (`manifests/registry.ollama.ai/library/
//! NAME/TAG`, `blobs/sha256-<hex>`), holding a GGUF file as `NAME:TAG`: the weights (a symlink
//! to the file, not a copy), the file's chat template translated to Go, its stop strings and
//! a system prompt. For `--model ollama:NAME:TAG` without an Ollama installation: the book's
//! commands run against it (`OLLAMA_MODELS`), and so do cli/tests/ollama_store.rs.

use anyhow::{Context, Result};
use lorakit::io::sha256_file;
use lorakit::ollama::template::ollama_template;
use serde_json::{Value, json};
use std::path::Path;

/// The store the book's commands use: the book's SmolLM2 file as `smollm2:135m`, with the
/// system prompt Ollama's own `smollm2` model carries.
pub fn write_smollm2(root: &Path) -> Result<()> {
    let gguf = lorakit::load::resolve(lorakit::fetch::DEFAULT_MODEL)?;
    write_store(root, "smollm2", "135m", &gguf, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
}

/// Write `NAME:TAG` into the store at `root` (created if missing; an existing manifest is replaced).
pub fn write_store(root: &Path, name: &str, tag: &str, gguf: &Path, system: &str) -> Result<()> {
    let blobs = root.join("blobs");
    std::fs::create_dir_all(&blobs).with_context(|| format!("cannot create {}", blobs.display()))?;
    let gguf = gguf.canonicalize().with_context(|| format!("{} not found", gguf.display()))?;
    let content = lorakit::tokenizer::read_gguf(&gguf)?;
    let jinja = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .with_context(|| format!("{}: no tokenizer.chat_template", gguf.display()))?;
    let tmpl = ollama_template(jinja)?;
    let params = json!({ "stop": tmpl.stops, "temperature": 0.2 }).to_string();

    let model = layer(&blobs, "model", Blob::Link(&gguf))?;
    let layers = [
        model,
        layer(&blobs, "template", Blob::Bytes(tmpl.template.as_bytes()))?,
        layer(&blobs, "params", Blob::Bytes(params.as_bytes()))?,
        layer(&blobs, "system", Blob::Bytes(system.as_bytes()))?,
    ];
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": layer(&blobs, "config", Blob::Bytes(b"{}"))?,
        "layers": layers,
    });
    let file = root.join("manifests/registry.ollama.ai/library").join(name).join(tag);
    std::fs::create_dir_all(file.parent().unwrap())?;
    std::fs::write(&file, manifest.to_string()).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

enum Blob<'a> {
    Bytes(&'a [u8]),
    Link(&'a Path),
}

/// One layer: its blob written (or linked) under its digest, and its manifest entry.
fn layer(blobs: &Path, media: &str, blob: Blob) -> Result<Value> {
    let (digest, size) = match blob {
        Blob::Bytes(bytes) => {
            let tmp = blobs.join(format!(".{media}.tmp"));
            std::fs::write(&tmp, bytes)?;
            let digest = sha256_file(&tmp)?;
            std::fs::rename(&tmp, blobs.join(format!("sha256-{digest}")))?;
            (digest, bytes.len() as u64)
        }
        Blob::Link(target) => {
            let digest = sha256_file(target)?;
            let path = blobs.join(format!("sha256-{digest}"));
            if std::fs::symlink_metadata(&path).is_err() {
                std::os::unix::fs::symlink(target, &path)?;
            }
            (digest, std::fs::metadata(target)?.len())
        }
    };
    Ok(json!({
        "mediaType": format!("application/vnd.ollama.image.{media}"),
        "digest": format!("sha256:{digest}"),
        "size": size,
    }))
}
