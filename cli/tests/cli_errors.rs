//! Bad input to `lora train`: a non-zero exit, a message naming the file and the key or
//! record at fault, and no output left behind.

use std::path::Path;
use std::process::Command;

fn lora(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lora")).args(args).current_dir(cwd).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn data() -> String {
    format!("{}/../data/extract/train.jsonl", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `lora train` with `args` in a fresh directory; asserts failure, that the message
/// contains every `needles`, and that no output directory was created.
fn fails(args: &[&str], config: Option<&str>, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<String> = vec!["train".into(), "--quiet".into(), "--output-dir".into(), "out".into()];
    if let Some(text) = config {
        std::fs::write(dir.path().join("run.toml"), text).unwrap();
        all.extend(["--config".into(), "run.toml".into()]);
    }
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    let (ok, err) = lora(&refs, dir.path());
    assert!(!ok, "{args:?} should fail");
    for n in needles {
        assert!(err.contains(n), "{args:?}: message should name {n:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    assert!(!dir.path().join("out").exists(), "{args:?}: left an output directory behind");
}

#[test]
fn config_errors_name_the_key() {
    fails(&[], Some("r = 8\nlearning_rate = 0.1\n"), &["run.toml", "learning_rate"]);
    fails(&[], Some("r = \"eight\"\n"), &["run.toml", "r"]);
    fails(&[], Some("lr = -0.001\n"), &["lr"]);
    fails(&["--lr=-1"], None, &["lr"]);
    fails(&["--r", "0"], None, &["r", "0"]);
    fails(&["--alpha", "0"], None, &["alpha"]);
    fails(&["--alpha=-2"], None, &["alpha"]);
    fails(&["--dropout", "1.5"], None, &["dropout"]);
    fails(&["--target-modules", "q_proj,qkv_proj"], None, &["qkv_proj"]);
    fails(&["--micro-batch", "0"], None, &["micro_batch"]);
    fails(&["--max-steps", "0"], None, &["max_steps"]);
}

#[test]
fn data_and_model_errors_name_the_file() {
    let train = data();
    fails(&["--train-data", "nope.jsonl"], None, &["nope.jsonl"]);
    // r larger than SmolLM2's smallest projection (576 × 192).
    fails(&["--train-data", &train, "--r", "1000"], None, &["1000", "exceeds"]);
    // Every example is longer than 16 tokens: the first one is named.
    fails(&["--train-data", &train, "--max-len", "16"], None, &["train.jsonl", "record 1", "max_len"]);
    fails(&["--train-data", &train, "--model", "missing-model.gguf"], None, &["missing-model.gguf"]);
}
