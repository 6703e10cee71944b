//! `lora export` from the outside: each format writes what it says, and bad input gets a
//! message naming the file or field at fault with nothing left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn lora(args: &[&str], cwd: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lora")).args(args).current_dir(cwd).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tiny_base() -> String {
    shared().join("tiny-llama-gguf/tiny-llama-f32.gguf").display().to_string()
}

fn tiny_adapter() -> String {
    shared().join("tiny-peft").display().to_string()
}

/// Everything in `dir` except the inputs a test put there.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

fn fails(args: &[&str], needles: &[&str], setup: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let keep: Vec<String> = leftovers(dir.path(), &[]);
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let (ok, _, err) = lora(&all, dir.path());
    assert!(!ok, "{args:?} should fail");
    for n in needles {
        assert!(err.contains(n), "{args:?}: message should name {n:?}:\n{err}");
    }
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
    assert_eq!(leftovers(dir.path(), &keep), Vec::<String>::new(), "{args:?} left files behind");
}

#[test]
fn every_format_writes_its_files_and_reports_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (base, adapter) = (tiny_base(), tiny_adapter());
    for (format, out) in [("gguf-adapter", "a.gguf"), ("gguf", "m.gguf"), ("peft", "peft")] {
        let (ok, stdout, err) =
            lora(&["export", "--model", &base, "--adapter", &adapter, "--format", format, "--out", out], dir.path());
        assert!(ok, "{format}: {err}");
        assert!(stdout.contains("sha256:"), "{format}: {stdout}");
    }
    assert!(dir.path().join("peft/adapter_model.safetensors").is_file());
    assert!(dir.path().join("peft/adapter_config.json").is_file());
    // JSON report: the digest is the file's.
    let (ok, stdout, err) = lora(
        &[
            "export",
            "--model",
            &base,
            "--adapter",
            &adapter,
            "--format",
            "gguf",
            "--dtype",
            "q8_0",
            "--out",
            "q.gguf",
            "--json",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["dtype"], "q8_0");
    let file = &report["files"][0];
    let bytes = std::fs::read(dir.path().join("q.gguf")).unwrap();
    assert_eq!(file["bytes"], bytes.len());
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(file["sha256"], digest);
    // An existing output is kept unless --force.
    let before = std::fs::read(dir.path().join("m.gguf")).unwrap();
    let (ok, _, err) =
        lora(&["export", "--model", &base, "--adapter", &adapter, "--format", "gguf", "--out", "m.gguf"], dir.path());
    assert!(!ok && err.contains("m.gguf") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("m.gguf")).unwrap(), before);
    let (ok, _, err) = lora(
        &[
            "export",
            "--model",
            &base,
            "--adapter",
            &adapter,
            "--format",
            "gguf",
            "--out",
            "m.gguf",
            "--force",
            "--dtype",
            "f32",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
}

#[test]
fn bad_input_names_the_culprit() {
    let (base, adapter) = (tiny_base(), tiny_adapter());
    let args = |format: &'static str, out: &'static str| -> Vec<String> {
        vec![
            "--model".into(),
            base.clone(),
            "--adapter".into(),
            adapter.clone(),
            "--format".into(),
            format.into(),
            "--out".into(),
            out.into(),
        ]
    };
    let run = |extra: &[&str], a: Vec<String>, needles: &[&str], setup: &dyn Fn(&Path)| {
        let mut all: Vec<&str> = a.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        fails(&all, needles, setup);
    };
    let nothing = |_: &Path| {};
    // Unknown format or dtype: clap names the flag and the choices.
    run(
        &[],
        vec![
            "--model".into(),
            base.clone(),
            "--adapter".into(),
            adapter.clone(),
            "--format".into(),
            "onnx".into(),
            "--out".into(),
            "x".into(),
        ],
        &["--format", "onnx"],
        &nothing,
    );
    run(&["--dtype", "q3_k"], args("gguf", "x.gguf"), &["--dtype", "q3_k"], &nothing);
    // An adapter cannot be quantized to Q8_0 here; the message says what to do instead.
    run(&["--dtype", "q8_0"], args("gguf-adapter", "x.gguf"), &["f32 or f16"], &nothing);
    // Missing adapter directory / config file.
    run(
        &[],
        vec![
            "--model".into(),
            base.clone(),
            "--adapter".into(),
            "nope".into(),
            "--format".into(),
            "gguf".into(),
            "--out".into(),
            "x.gguf".into(),
        ],
        &["nope", "adapter_config.json"],
        &nothing,
    );
    // An adapter with another base's shapes names the tensor.
    let wrong = |d: &Path| {
        let src = shared().join("tiny-peft");
        std::fs::create_dir(d.join("wrong")).unwrap();
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("adapter_config.json")).unwrap()).unwrap();
        cfg["r"] = 2.into();
        std::fs::write(d.join("wrong/adapter_config.json"), cfg.to_string()).unwrap();
        std::fs::copy(src.join("adapter_model.safetensors"), d.join("wrong/adapter_model.safetensors")).unwrap();
    };
    run(
        &[],
        vec![
            "--model".into(),
            base.clone(),
            "--adapter".into(),
            "wrong".into(),
            "--format".into(),
            "gguf".into(),
            "--out".into(),
            "x.gguf".into(),
        ],
        &["adapter_model.safetensors", "lora_A", "shape"],
        &wrong,
    );
    // A base without a chat template cannot chat in Ollama: the message says how to give one.
    run(&[], args("ollama", "od"), &["tiny-llama-f32.gguf", "no chat template", "--chat-template"], &nothing);
    run(&["--chat-template", "missing.jinja"], args("ollama", "od"), &["missing.jinja"], &nothing);
    // A truncated base GGUF names the file.
    let truncated = |d: &Path| {
        let bytes = std::fs::read(shared().join("tiny-llama-gguf/tiny-llama-f32.gguf")).unwrap();
        std::fs::write(d.join("cut.gguf"), &bytes[..bytes.len() / 3]).unwrap();
    };
    run(
        &[],
        vec![
            "--model".into(),
            "cut.gguf".into(),
            "--adapter".into(),
            adapter.clone(),
            "--format".into(),
            "gguf".into(),
            "--out".into(),
            "x.gguf".into(),
        ],
        &["cut.gguf"],
        &truncated,
    );
    // An output directory that cannot be written.
    let readonly = |d: &Path| {
        std::fs::create_dir(d.join("ro")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    };
    if !is_root() {
        run(&[], args("gguf", "ro/x.gguf"), &["ro"], &readonly);
        run(&[], args("ollama", "ro/dir"), &["ro"], &readonly);
    }
    // A file given where a directory is written, and the other way round.
    let file = |d: &Path| std::fs::write(d.join("taken"), b"x").unwrap();
    run(&[], args("peft", "taken"), &["taken", "--force"], &file);
    // A path through a file cannot be created, whoever runs the test.
    run(&[], args("gguf", "taken/x.gguf"), &["taken"], &file);
    run(&[], args("ollama", "taken/dir"), &["taken"], &file);
    let dir = |d: &Path| std::fs::create_dir(d.join("adir")).unwrap();
    run(&["--force"], args("gguf", "adir"), &["adir", "directory"], &dir);
}

/// root ignores directory permissions, so the read-only case cannot fail as root.
fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}
