//! Hub models through hf-hub's standard cache, offline: a cache laid out as the Hub
//! client lays it out (`models--owner--name/{refs,snapshots}`) loads with no network.

use lora_book::*;
use lorakit::candle::{DType, Device};
use lorakit::{Checkpoint, Llama};

#[test]
fn repo_id_loads_from_hf_cache_offline() {
    let cache = tempfile_dir();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.join("models--acme--tiny-llama");
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny-llama").join(f), snap.join(f)).unwrap();
    }
    // SAFETY: this test binary has a single test, so nothing reads the environment concurrently.
    unsafe {
        std::env::set_var("HF_HUB_CACHE", &cache);
        std::env::set_var("HF_HUB_OFFLINE", "1");
    }
    assert!(lorakit::hub::looks_like_repo_id("acme/tiny-llama"));
    let dir = lorakit::load::resolve("acme/tiny-llama").unwrap();
    assert_eq!(dir, snap);
    let model = Llama::new(Checkpoint::load(&dir, DType::F32, &Device::Cpu).unwrap()).unwrap();
    let exp = read_json(&fixture("tiny-llama/expected.json")).unwrap();
    let ids = model.ids_tensor(&id_rows(&exp["cases"][0]["input_ids"])).unwrap();
    let got = tensor_f64(&model.forward(&ids).unwrap());
    assert_close("tiny-llama via HF cache", &got, &flat_f64(&exp["cases"][0]["logits"]), 1e-4);

    // A model that is not cached, offline: a clear error naming it.
    let err = lorakit::load::resolve("acme/not-cached").unwrap_err().to_string();
    assert!(err.contains("acme/not-cached") && err.contains("HF_HUB_OFFLINE"), "{err}");
    std::fs::remove_dir_all(&cache).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lora-hf-cache-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
