//! The Ollama-native loop from the outside: `lora train --model ollama:NAME:TAG` on a store
//! found through `OLLAMA_MODELS` (SmolLM2's GGUF as the model blob, linked, not copied),
//! `lora export --format ollama`, and `lora deploy` against the Ollama stand-in
//! (support/ollama_stand_in.rs), which must receive `from` and `adapters`.

#[path = "support/ollama_stand_in.rs"]
mod stand_in;
#[path = "../../tests/support/ollama_store.rs"]
#[allow(dead_code)] // its SmolLM2 store is the book's
mod store_layout;

use std::path::Path;
use std::process::{Command, Output};

use lorakit::ollama::modelfile::Modelfile;
use serde_json::json;
use sha2::Digest;
use stand_in::{AdapterRefusal, Config, StandIn};

const SYSTEM: &str = "Extract the order as JSON with keys name, city, product, quantity.";

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> String {
    format!("sha256:{}", hex(&std::fs::read(path).unwrap()))
}

/// A store holding `smol:135m`: SmolLM2's GGUF (a link to the cached file), its chat
/// template in Go, its stops and a system prompt, as `ollama pull` leaves them.
fn store(root: &Path, gguf: &Path) {
    store_layout::write_store(root, "smol", "135m", gguf, "You are a helpful AI assistant named SmolLM.").unwrap();
}

/// `lora ARGS` with the store and a fresh lorakit cache (for the digest stamps).
fn lora(work: &Path, args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(args)
        .env("OLLAMA_MODELS", work.join("models"))
        .env("LORAKIT_CACHE", work.join("cache"))
        .env_remove("OLLAMA_HOST")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "lora {args:?}:\n{}\n{stderr}", String::from_utf8_lossy(&o.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn train_export_deploy_from_an_ollama_model() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let smollm2 = lorakit::load::resolve("smollm2-135m").unwrap().canonicalize().unwrap();
    store(&w.join("models"), &smollm2);
    let data = w.join("train.jsonl");
    let lines: Vec<String> = (0..4)
        .map(|i| {
            json!({ "messages": [
                { "role": "system", "content": SYSTEM },
                { "role": "user", "content": format!("I'm Ana from Porto and I want {i} lamps.") },
                { "role": "assistant", "content": format!(r#"{{"name":"Ana","city":"Porto","product":"lamp","quantity":{i}}}"#) },
            ]})
            .to_string()
        })
        .collect();
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();

    // Train: the blob is hashed on first use, once.
    let run = w.join("run");
    let o = lora(
        w,
        &["train", "--model", "ollama:smol:135m", "--quiet", "--max-steps", "2", "--micro-batch", "2"]
            .into_iter()
            .chain(["--max-len", "96", "--target-modules", "q_proj,v_proj", "--train-data", s(&data)])
            .chain(["--output-dir", s(&run)])
            .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("against its digest, once"), "{stderr}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["base_model_name_or_path"], "ollama:smol:135m");

    // Export: the stamp spares the hash; the Modelfile says FROM the store's name + ADAPTER.
    let out = w.join("smol-extract");
    let args = ["export", "--model", "ollama:smol:135m", "--adapter", s(&run), "--format", "ollama", "--out", s(&out)];
    let o = lora(w, &args);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("against its digest"), "hashed again");
    let modelfile = Modelfile::read(&out.join("Modelfile")).unwrap();
    assert_eq!(modelfile.from, "smol:135m");
    assert_eq!(modelfile.adapters, ["./adapter.gguf"]);
    assert_eq!(modelfile.system.as_deref(), Some(SYSTEM), "the training system prompt");
    assert!(modelfile.stops().contains(&"<|im_end|>"), "{modelfile:?}");
    let merged = Modelfile::read(&out.join("Modelfile.merged")).unwrap();
    assert_eq!(merged.from, "./model.gguf");

    // Deploy: the server has smol:135m (created from the same GGUF); the adapter goes up
    // alone, and /api/create names the base with `from`.
    let server = StandIn::start(Config::default());
    let dry = lora(w, &["deploy", s(&out), "--host", &server.url, "--dry-run"]);
    let dry = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.contains(r#""from": "smol:135m""#) && dry.contains("Modelfile.merged"), "{dry}");
    assert!(server.requests().is_empty(), "a dry run sends nothing");
    let base = w.join("base");
    std::fs::create_dir_all(&base).unwrap();
    let mut base_file = Modelfile::new(smollm2.display().to_string());
    base_file.template = merged.template.clone();
    base_file.write(&base.join("Modelfile")).unwrap();
    lora(w, &["deploy", s(&base), "--host", &server.url, "--name", "smol:135m"]);
    let o = lora(w, &["deploy", s(&out), "--host", &server.url]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("created smol-extract") && !stdout.contains("fallback"), "{stdout}");
    let creates = server.requests_to("POST /api/create");
    let create = creates.last().unwrap().json.clone().unwrap();
    let adapter = sha256_file(&out.join("adapter.gguf"));
    assert_eq!(create["from"], "smol:135m");
    assert_eq!(create["adapters"], json!({ "adapter.gguf": adapter }));
    assert!(create.get("files").is_none() && create.get("template").is_none(), "{create}");
    assert_eq!(create["system"], SYSTEM);
    assert!(server.blobs().contains(&adapter));
    assert_eq!(server.model("smol-extract").unwrap().adapters.len(), 1);

    // A server that refuses the adapter gets the merged model instead.
    let refusing = StandIn::start(Config { refuse_adapters: Some(AdapterRefusal::AtCreate), ..Config::default() });
    lora(w, &["deploy", s(&base), "--host", &refusing.url, "--name", "smol:135m"]);
    let o = lora(w, &["deploy", s(&out), "--host", &refusing.url]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(fallback: merged model)") && stdout.contains("Modelfile.merged"), "{stdout}");
    let create = refusing.requests_to("POST /api/create").last().unwrap().json.clone().unwrap();
    assert_eq!(create["files"], json!({ "model.gguf": sha256_file(&out.join("model.gguf")) }));
}
