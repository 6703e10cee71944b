//! `--model ollama:NAME[:TAG]`: a real Ollama store layout in a temporary directory
//! (manifests with the right digests and sizes, blobs, template/params/system layers)
//! around the tiny GGUF fixture. Names, resolution, every error, the digest stamp, loading,
//! and the export's Modelfiles (FROM NAME:TAG + ADAPTER, and the merged fallback).

use std::path::{Path, PathBuf};

use candle_core::DType;
use lorakit::export::{ExportFormat, ExportRequest, export_with};
use lorakit::load::{load_with, resolve_with};
use lorakit::ollama::modelfile::Modelfile;
use lorakit::ollama::store::{ModelName, resolve, stamp_path, verify_cached};
use lorakit::progress::silent;
use lorakit::settings::Settings;
use sha2::Digest;

const TEMPLATE: &str =
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
const PARAMS: &str = r#"{"stop":["<|im_end|>","<|im_start|>"],"temperature":0.6}"#;
const SYSTEM: &str = "You are a tiny model.";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn tiny_gguf() -> PathBuf {
    fixtures().join("tiny-llama-gguf/tiny-llama-f32.gguf")
}

/// A store under a temporary directory, with its own lorakit cache.
struct Store {
    tmp: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        Store { tmp: tempfile::tempdir().unwrap() }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("models")
    }

    fn settings(&self) -> Settings {
        Settings {
            ollama_models: Some(self.root()),
            cache_dir: Some(self.tmp.path().join("cache")),
            ..Settings::default()
        }
    }

    /// Stores `bytes` as a blob; returns the layer entry.
    fn blob(&self, media: &str, bytes: &[u8]) -> serde_json::Value {
        let hex: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let dir = self.root().join("blobs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("sha256-{hex}")), bytes).unwrap();
        serde_json::json!({
            "mediaType": format!("application/vnd.ollama.image.{media}"),
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
        })
    }

    /// A model with weights, template, params and system layers, as `ollama pull` leaves it.
    fn add(&self, path: &str, gguf: &[u8]) -> PathBuf {
        let layers = vec![
            self.blob("model", gguf),
            self.blob("template", TEMPLATE.as_bytes()),
            self.blob("params", PARAMS.as_bytes()),
            self.blob("system", SYSTEM.as_bytes()),
        ];
        let config = self.blob("config", b"{}");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "digest": config["digest"], "size": 2 },
            "layers": layers,
        });
        let file = self.root().join("manifests").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, serde_json::to_string(&manifest).unwrap()).unwrap();
        file
    }

    fn add_tiny(&self, path: &str) -> PathBuf {
        self.add(path, &std::fs::read(tiny_gguf()).unwrap())
    }

    fn model_blob(&self, path: &str) -> PathBuf {
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.root().join("manifests").join(path)).unwrap()).unwrap();
        let hex = m["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
        self.root().join("blobs").join(format!("sha256-{hex}"))
    }
}

const TINY: &str = "registry.ollama.ai/library/tiny/1b";

fn err<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("should fail"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn names_parse_in_every_form() {
    let n = |s: &str| ModelName::parse(s).unwrap();
    let full = |s: &str| n(s).to_string();
    assert_eq!(full("llama3.2"), "registry.ollama.ai/library/llama3.2:latest");
    assert_eq!(full("llama3.2:1b"), "registry.ollama.ai/library/llama3.2:1b");
    assert_eq!(full("me/extract:v1"), "registry.ollama.ai/me/extract:v1");
    assert_eq!(full("example.com/me/extract:v1"), "example.com/me/extract:v1");
    assert_eq!(full("localhost:5000/me/x"), "localhost:5000/me/x:latest");
    assert_eq!(n("llama3.2:1b").manifest_path(), Path::new("registry.ollama.ai/library/llama3.2/1b"));
    assert_eq!(n("llama3.2").short(), "llama3.2:latest");
    assert_eq!(n("me/extract:v1").short(), "me/extract:v1");
    assert_eq!(n("example.com/me/extract:v1").short(), "example.com/me/extract:v1");
    for bad in ["", "bad name", "x:", ":1b", "a/b/c/d", "-x"] {
        let e = err(ModelName::parse(bad));
        assert!(e.contains("ollama:"), "{bad}: {e}");
    }
}

#[test]
fn resolves_and_loads_through_ollama_models() {
    let store = Store::new();
    store.add_tiny(TINY);
    let settings = store.settings();
    let found = resolve("tiny:1b", &settings, &silent).unwrap();
    assert_eq!(found.gguf, store.model_blob(TINY));
    assert_eq!(found.template.as_deref(), Some(TEMPLATE));
    assert_eq!(found.system.as_deref(), Some(SYSTEM));
    assert_eq!(found.stops(), ["<|im_end|>", "<|im_start|>"]);
    assert_eq!(found.parameters["temperature"], 0.6);
    // Every --model goes through resolve_with / load_with; the GGUF is read in place.
    assert_eq!(resolve_with("ollama:tiny:1b", &settings, &silent).unwrap(), store.model_blob(TINY));
    let m = load_with("ollama:tiny:1b", DType::F32, &settings, &silent).unwrap();
    assert_eq!(m.path, store.model_blob(TINY));
    assert_eq!(m.model.config.num_hidden_layers, 2);
    assert_eq!(m.ollama.as_ref().unwrap().name.short(), "tiny:1b");
    // The full name finds the same manifest.
    let full = resolve("registry.ollama.ai/library/tiny:1b", &settings, &silent).unwrap();
    assert_eq!(full.manifest, store.root().join("manifests").join(TINY));
}

#[test]
fn no_store_names_every_place_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-store");
    let settings = Settings { ollama_models: Some(missing.clone()), ..Settings::default() };
    let e = err(resolve("llama3.2:1b", &settings, &silent));
    assert!(e.contains(&missing.display().to_string()) && e.contains("ollama pull llama3.2:1b"), "{e}");
    // Without OLLAMA_MODELS: the user's store, then the Linux service's.
    let roots = lorakit::ollama::store::store_roots(&Settings::default());
    assert_eq!(roots.last().unwrap(), Path::new("/usr/share/ollama/.ollama/models"));
    assert!(roots[0].ends_with(".ollama/models"), "{roots:?}");
}

#[test]
fn unknown_names_and_tags_list_the_nearest() {
    let store = Store::new();
    let gguf = b"not even a GGUF: never read for a name that is not there";
    for path in [TINY, "registry.ollama.ai/library/tiny/2b", "registry.ollama.ai/library/llama3.2/1b"] {
        store.add(path, gguf);
    }
    let e = err(resolve("tiny:3b", &store.settings(), &silent));
    assert!(e.contains("tiny:3b not found") && e.contains("nearest there: tiny:1b, tiny:2b"), "{e}");
    assert!(e.contains("ollama pull tiny:3b"), "{e}");
    let e = err(resolve("llama3.3", &store.settings(), &silent));
    assert!(e.contains("llama3.3:latest not found") && e.contains("llama3.2:1b"), "{e}");
    let e = err(load_with("ollama:tinny:1b", DType::F32, &store.settings(), &silent));
    assert!(e.contains("tiny:1b"), "{e}");
}

#[test]
fn broken_stores_are_named_file_by_file() {
    let store = Store::new();
    let manifest = store.add_tiny(TINY);
    let blob = store.model_blob(TINY);
    let settings = store.settings();

    // A blob of the right size with a byte changed.
    let good = std::fs::read(&blob).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&blob, &bad).unwrap();
    let e = err(resolve("tiny:1b", &settings, &silent));
    assert!(
        e.contains(&blob.display().to_string()) && e.contains("damaged") && e.contains("ollama pull tiny:1b"),
        "{e}"
    );

    // A blob of the wrong size.
    std::fs::write(&blob, &good[..100]).unwrap();
    let e = err(resolve("tiny:1b", &settings, &silent));
    assert!(e.contains("holds 100 bytes") && e.contains(&manifest.display().to_string()), "{e}");

    // A manifest naming a blob that is not there.
    std::fs::remove_file(&blob).unwrap();
    let e = err(resolve("tiny:1b", &settings, &silent));
    assert!(e.contains(&blob.display().to_string()) && e.contains("does not exist"), "{e}");
    assert!(e.contains(&manifest.display().to_string()), "{e}");

    // A manifest that is not JSON.
    std::fs::write(&manifest, "{ not json").unwrap();
    let e = err(resolve("tiny:1b", &settings, &silent));
    assert!(e.contains(&manifest.display().to_string()) && e.contains("not a valid Ollama manifest"), "{e}");

    // A damaged small layer (the params).
    let store = Store::new();
    store.add_tiny(TINY);
    let params = store.root().join("blobs").join(format!(
        "sha256-{}",
        sha2::Sha256::digest(PARAMS.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    std::fs::write(&params, PARAMS.replace("0.6", "0.7")).unwrap();
    let e = err(resolve("tiny:1b", &store.settings(), &silent));
    assert!(e.contains("params layer") && e.contains(&params.display().to_string()), "{e}");
}

#[test]
fn unsupported_architectures_name_the_ollama_model() {
    let store = Store::new();
    // The fixture with general.architecture = "gemma" (same length as "llama").
    let mut gguf = std::fs::read(tiny_gguf()).unwrap();
    let key = b"general.architecture";
    let at = gguf.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 8;
    assert_eq!(&gguf[at..at + 5], b"llama");
    gguf[at..at + 5].copy_from_slice(b"gemma");
    store.add(TINY, &gguf);
    let e = err(load_with("ollama:tiny:1b", DType::F32, &store.settings(), &silent));
    assert!(e.contains("Ollama model tiny:1b") && e.contains("\"gemma\" is not supported"), "{e}");
}

#[test]
fn a_blob_is_hashed_once_until_it_changes() {
    let store = Store::new();
    store.add_tiny(TINY);
    let (settings, blob) = (store.settings(), store.model_blob(TINY));
    let digest = format!("sha256:{}", blob.file_name().unwrap().to_str().unwrap().trim_start_matches("sha256-"));
    let logged = std::sync::Mutex::new(Vec::new());
    let log = |m: &str| logged.lock().unwrap().push(m.to_string());
    assert!(verify_cached(&blob, &digest, &settings, &log).unwrap(), "first use hashes");
    assert!(stamp_path(&settings, &digest).unwrap().is_file());
    assert!(!verify_cached(&blob, &digest, &settings, &log).unwrap(), "the stamp spares the second");
    resolve("tiny:1b", &settings, &log).unwrap();
    assert_eq!(logged.lock().unwrap().len(), 1, "{:?}", logged.lock().unwrap());
    // A new modification time (the file was replaced) hashes again, and finds damage.
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&blob).unwrap().set_modified(later).unwrap();
    let e = err(verify_cached(&blob, &digest, &settings, &log));
    assert!(e.contains("damaged"), "{e}");
}

#[test]
fn export_of_an_ollama_base_says_from_name_tag_and_adapter() {
    let store = Store::new();
    store.add_tiny(TINY);
    let out = store.tmp.path().join("export");
    let req = ExportRequest::new("ollama:tiny:1b", fixtures().join("tiny-peft"), ExportFormat::Ollama, &out);
    let report = export_with(&req, &store.settings(), &silent).unwrap();
    let primary = Modelfile::read(&out.join("Modelfile")).unwrap();
    assert_eq!(primary.from, "tiny:1b");
    assert_eq!(primary.adapters, ["./adapter.gguf"]);
    assert_eq!(primary.template, None, "FROM a model keeps its template on the server");
    assert_eq!(primary.stops(), ["<|im_end|>", "<|im_start|>"]);
    assert!(primary.parameters.contains(&("temperature".into(), "0".into())));
    let merged = Modelfile::read(&out.join("Modelfile.merged")).unwrap();
    assert_eq!((merged.from.as_str(), merged.template.as_deref()), ("./model.gguf", Some(TEMPLATE)));
    assert_eq!(merged.stops(), primary.stops());
    // tiny-peft has no training records: the adapter route keeps the model's SYSTEM on the
    // server, and the merged route writes it out.
    assert_eq!((primary.system.as_deref(), merged.system.as_deref()), (None, Some(SYSTEM)));
    for f in ["adapter.gguf", "model.gguf"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(report.notes.iter().any(|n| n.contains("FROM tiny:1b")), "{:?}", report.notes);
    assert!(report.ollama_create.unwrap().ends_with("/export/Modelfile"));
}

#[test]
fn an_adapter_trained_on_an_ollama_model_says_so_when_exported_for_another_base() {
    let tmp = tempfile::tempdir().unwrap();
    let peft = tmp.path().join("peft");
    std::fs::create_dir_all(&peft).unwrap();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(fixtures().join("tiny-peft").join(f), peft.join(f)).unwrap();
    }
    let config = peft.join("adapter_config.json");
    let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["base_model_name_or_path"] = "ollama:tiny:1b".into();
    std::fs::write(&config, c.to_string()).unwrap();
    let out = tmp.path().join("a.gguf");
    let req = ExportRequest::new(tiny_gguf().display().to_string(), &peft, ExportFormat::GgufAdapter, &out);
    let report = export_with(&req, &Settings::default(), &silent).unwrap();
    assert!(report.notes.iter().any(|n| n.contains("pass --model ollama:tiny:1b")), "{:?}", report.notes);
}

#[test]
fn a_model_with_its_own_adapter_is_loaded_without_it_and_says_so() {
    let store = Store::new();
    let manifest = store.add_tiny(TINY);
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let adapter =
        store.blob("adapter", &std::fs::read(fixtures().join("tiny-llama-gguf/tiny-peft-f32.lora.gguf")).unwrap());
    m["layers"].as_array_mut().unwrap().push(adapter);
    std::fs::write(&manifest, m.to_string()).unwrap();
    let logged = std::sync::Mutex::new(Vec::<String>::new());
    let log = |s: &str| logged.lock().unwrap().push(s.to_string());
    load_with("ollama:tiny:1b", DType::F32, &store.settings(), &log).unwrap();
    let logged = logged.lock().unwrap();
    assert!(logged.iter().any(|l| l.contains("applies an adapter of its own")), "{logged:?}");
}
