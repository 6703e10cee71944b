//! Real llama.cpp for the tests: `tools/llama/score.mjs` on node-llama-cpp's prebuilt CPU
//! binary, installed outside the clone by `bash scripts/llama.sh install`.
//!
//! Every evaluation runs as in the reference check of `../shared/fixtures/tiny-llama-gguf`:
//! CPU only, F32 KV cache, flash attention off, 2 threads, positions 0..n-1, no BOS added.
//! One call is one `node` process (start + model load + evaluation): about 0.5 s on the tiny
//! fixtures; batch rows into one call where you can.
//!
//! ```text
//! let Some(llama) = llama_cpp::required() else { return }; // fails unless installed or LORA_SKIP_LLAMA=1
//! let logits = llama.logits(Path::new("m.gguf"), None, &[vec![1, 2, 3]]); // [row][position][vocab]
//! ```

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The installed runner.
#[derive(Debug, Clone)]
pub struct LlamaCpp {
    /// The install dir (`scripts/llama.sh path`), holding `node_modules/node-llama-cpp`.
    pub dir: PathBuf,
    script: PathBuf,
}

/// What llama.cpp reports about a model (`score.mjs --info`); `raw` has every field.
#[derive(Debug, Clone)]
pub struct LlamaInfo {
    pub architecture: String,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub chat_template: Option<String>,
    /// The llama.cpp release of the prebuilt binary.
    pub llama_cpp: String,
    pub raw: Value,
}

/// The last position of a row (`score.mjs --logits last`).
#[derive(Debug, Clone)]
pub struct LastScore {
    /// Raw logits over the vocabulary.
    pub logits: Vec<f32>,
    pub logsumexp: f64,
    pub argmax: u32,
    /// The `top` most probable tokens: (id, softmax probability), most probable first.
    pub top: Vec<(u32, f64)>,
}

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One answer of [`LlamaCpp::answer_like_ollama`].
#[derive(Debug, Clone)]
pub struct OllamaAnswer {
    pub prompt_ids: Vec<u32>,
    pub text: String,
    /// "eog", "stop" or "length".
    pub stopped_by: String,
}

/// The installed runner, or None when `bash scripts/llama.sh install` has not been run (or is
/// out of date). Installs nothing.
pub fn runner() -> Option<LlamaCpp> {
    let root = project_root();
    let out = Command::new("bash").arg(root.join("scripts/llama.sh")).arg("path").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    Some(LlamaCpp { dir, script: root.join("tools/llama/score.mjs") })
}

/// The runner for a test that needs it: panics with the install command when it is missing,
/// unless `LORA_SKIP_LLAMA=1`, where it prints a note and returns None (the test then returns).
pub fn required() -> Option<LlamaCpp> {
    if let Some(r) = runner() {
        return Some(r);
    }
    if std::env::var("LORA_SKIP_LLAMA").as_deref() == Ok("1") {
        eprintln!("note: LORA_SKIP_LLAMA=1 and llama.cpp is not installed: skipping this llama.cpp check");
        return None;
    }
    panic!(
        "llama.cpp (node-llama-cpp) is not installed for the tests: run `bash scripts/llama.sh install` \
         (or set LORA_SKIP_LLAMA=1 to skip the llama.cpp checks)"
    );
}

fn ids_arg(rows: &[Vec<u32>]) -> String {
    rows.iter().map(|r| r.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join(";")
}

fn f32_of(v: &Value) -> f32 {
    // score.mjs writes non-finite logits as null: keep them visible as NaN.
    v.as_f64().map(|x| x as f32).unwrap_or(f32::NAN)
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect()).unwrap_or_default()
}

impl LlamaCpp {
    /// Runs `score.mjs ARGS` and parses its JSON; Err carries the runner's stderr (which names
    /// the file and quotes llama.cpp's reason).
    pub fn run(&self, args: &[String]) -> Result<Value> {
        let out = Command::new("node")
            .arg(&self.script)
            .args(args)
            .env("LORA_LLAMA_DIR", &self.dir)
            .output()
            .context("running node (needed for the llama.cpp runner)")?;
        if !out.status.success() {
            bail!("llama.cpp runner failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!("llama.cpp runner printed no JSON: {}", String::from_utf8_lossy(&out.stderr).trim())
        })
    }

    fn model_args(model: &Path, lora: Option<(&Path, f32)>) -> Vec<String> {
        let mut a = vec!["--model".to_string(), model.display().to_string()];
        if let Some((path, scale)) = lora {
            a.extend(["--lora".into(), path.display().to_string(), "--lora-scale".into(), scale.to_string()]);
        }
        a
    }

    /// Raw logits at every position of every row: `[row][position][vocab]`. Each row runs in a
    /// fresh context at positions 0..n-1.
    pub fn try_logits(&self, model: &Path, lora: Option<(&Path, f32)>, ids: &[Vec<u32>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let mut args = Self::model_args(model, lora);
        args.extend(["--ids".into(), ids_arg(ids), "--logits".into(), "all".into(), "--top".into(), "0".into()]);
        let v = self.run(&args)?;
        let rows = v["rows"].as_array().context("no rows in the runner's output")?;
        Ok(rows
            .iter()
            .map(|r| {
                r["logits"]
                    .as_array()
                    .expect("logits")
                    .iter()
                    .map(|p| p.as_array().expect("position").iter().map(f32_of).collect())
                    .collect()
            })
            .collect())
    }

    /// [`try_logits`](Self::try_logits), panicking with the runner's message on failure.
    pub fn logits(&self, model: &Path, lora: Option<(&Path, f32)>, ids: &[Vec<u32>]) -> Vec<Vec<Vec<f32>>> {
        self.try_logits(model, lora, ids).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The last position of each row: logits, logsumexp, argmax and the `top` probabilities.
    pub fn last(&self, model: &Path, lora: Option<(&Path, f32)>, ids: &[Vec<u32>], top: usize) -> Vec<LastScore> {
        let mut args = Self::model_args(model, lora);
        args.extend(["--ids".into(), ids_arg(ids), "--logits".into(), "last".into(), "--top".into(), top.to_string()]);
        let v = self.run(&args).unwrap_or_else(|e| panic!("{e:#}"));
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| LastScore {
                logits: r["logits"][0].as_array().expect("logits").iter().map(f32_of).collect(),
                logsumexp: r["last"]["logsumexp"].as_f64().unwrap_or(f64::NAN),
                argmax: r["last"]["argmax"].as_u64().expect("argmax") as u32,
                top: r["last"]["top"]
                    .as_array()
                    .expect("top")
                    .iter()
                    .map(|t| (t["id"].as_u64().expect("id") as u32, t["prob"].as_f64().unwrap_or(f64::NAN)))
                    .collect(),
            })
            .collect()
    }

    /// llama.cpp's greedy continuation (temperature 0) of `prompt_ids`: up to `n` new ids,
    /// stopping before an end-of-generation token.
    pub fn try_greedy(
        &self,
        model: &Path,
        lora: Option<(&Path, f32)>,
        prompt_ids: &[u32],
        n: usize,
    ) -> Result<Vec<u32>> {
        let mut args = Self::model_args(model, lora);
        args.extend(["--prompt-ids".into(), ids_arg(&[prompt_ids.to_vec()]), "--greedy".into(), n.to_string()]);
        Ok(u32s(&self.run(&args)?["ids"]))
    }

    pub fn greedy(&self, model: &Path, lora: Option<(&Path, f32)>, prompt_ids: &[u32], n: usize) -> Vec<u32> {
        self.try_greedy(model, lora, prompt_ids, n).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Ollama's path from prompt text to answer, for each of `prompts`: tokenized by the
    /// GGUF's own tokenizer (BOS as the GGUF asks), greedy for up to `n` tokens, stopped at an
    /// end-of-generation token or cut before the first of `stops` in the answer's text.
    pub fn answer_like_ollama(
        &self,
        model: &Path,
        lora: Option<(&Path, f32)>,
        prompts: &[String],
        stops: &[&str],
        n: usize,
    ) -> Vec<OllamaAnswer> {
        let spec = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(spec.path(), serde_json::json!({ "prompts": prompts, "stops": stops }).to_string())
            .expect("write");
        let mut args = Self::model_args(model, lora);
        args.extend(["--prompts".into(), spec.path().display().to_string(), "--greedy".into(), n.to_string()]);
        let v = self.run(&args).unwrap_or_else(|e| panic!("{e:#}"));
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| OllamaAnswer {
                prompt_ids: u32s(&r["prompt_ids"]),
                text: r["text"].as_str().expect("text").to_string(),
                stopped_by: r["stopped_by"].as_str().expect("stopped_by").to_string(),
            })
            .collect()
    }

    /// What llama.cpp reports about the model.
    pub fn info(&self, model: &Path) -> LlamaInfo {
        self.info_with(model, None).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// llama.cpp's tokenization of `text` (special tokens parsed, no BOS added).
    pub fn tokenize(&self, model: &Path, text: &str) -> Vec<u32> {
        let info = self.info_with(model, Some(text)).unwrap_or_else(|e| panic!("{e:#}"));
        u32s(&info.raw["tokenize"]["ids"])
    }

    /// llama.cpp's tokenization of `text` with only the tokenizer of `gguf` loaded (special
    /// tokens parsed, no BOS added): for llama.cpp's vocabulary-only files.
    pub fn tokenize_vocab_only(&self, gguf: &Path, text: &str) -> Result<Vec<u32>> {
        let mut args = Self::model_args(gguf, None);
        args.extend(["--info".into(), "--vocab-only".into(), "--tokenize".into(), text.to_string()]);
        Ok(u32s(&self.run(&args)?["tokenize"]["ids"]))
    }

    pub fn info_with(&self, model: &Path, tokenize: Option<&str>) -> Result<LlamaInfo> {
        let mut args = Self::model_args(model, None);
        args.push("--info".into());
        if let Some(t) = tokenize {
            args.extend(["--tokenize".into(), t.to_string()]);
        }
        let v = self.run(&args)?;
        let id = |k: &str| v[k].as_u64().map(|x| x as u32);
        Ok(LlamaInfo {
            architecture: v["architecture"].as_str().unwrap_or_default().to_string(),
            n_vocab: v["n_vocab"].as_u64().unwrap_or(0) as usize,
            n_ctx_train: v["n_ctx_train"].as_u64().unwrap_or(0) as usize,
            bos: id("bos"),
            eos: id("eos"),
            chat_template: v["chat_template"].as_str().map(str::to_string),
            llama_cpp: v["llama_cpp"].as_str().unwrap_or_default().to_string(),
            raw: v,
        })
    }
}

/// One of llama.cpp's reference tokenizer checks (`models/ggml-vocab-NAME.gguf` with its
/// `.inp`/`.out` pair, as `tests/test-tokenizer-0.cpp` reads them).
#[derive(Debug, Clone)]
pub struct VocabCases {
    pub name: String,
    /// A vocabulary-only GGUF: tokenizer keys, no tensors.
    pub gguf: PathBuf,
    /// (text, llama.cpp's ids with no BOS added and special tokens not parsed).
    pub cases: Vec<(String, Vec<u32>)>,
}

impl LlamaCpp {
    /// llama.cpp's source as node-llama-cpp ships it: a git bundle of the release it was built from.
    fn source_bundle(&self) -> PathBuf {
        self.dir.join("node_modules/node-llama-cpp/llama/gitRelease.bundle")
    }

    /// The files under `tree` (a folder of llama.cpp's source, ending in `/`) that `keep` accepts,
    /// extracted once from the bundle into `<install dir>/<into>/<commit>/`, which is returned;
    /// each file's path there is its path in the source without `tree`'s first component.
    fn extract_source(&self, tree: &str, into: &str, keep: impl Fn(&str) -> bool) -> Result<PathBuf> {
        let bundle = self.source_bundle();
        let git = |dir: &Path, args: &[&str]| -> Result<Vec<u8>> {
            let out = Command::new("git").current_dir(dir).args(args).output().context("running git")?;
            if !out.status.success() {
                bail!("git {} in {}: {}", args.join(" "), dir.display(), String::from_utf8_lossy(&out.stderr));
            }
            Ok(out.stdout)
        };
        let heads = String::from_utf8(git(&self.dir, &["bundle", "list-heads", bundle.to_str().unwrap()])?)?;
        let commit = heads.split_whitespace().next().context("the bundle names no commit")?.to_string();
        let dir = self.dir.join(into).join(&commit);
        if dir.join(".complete").exists() {
            return Ok(dir);
        }
        // Tests run in parallel threads and processes: each extracts into a staging folder of
        // its own and renames it into place; a loser of that race uses the winner's copy.
        std::fs::create_dir_all(self.dir.join(into))?;
        let staging = tempfile::Builder::new().prefix(".staging-").tempdir_in(self.dir.join(into))?;
        let repo = staging.path().join("repo");
        let out = staging.path().join("out");
        std::fs::create_dir_all(&repo)?;
        git(&repo, &["init", "-q"])?;
        git(&repo, &["fetch", "-q", bundle.to_str().unwrap(), "HEAD"])?;
        let listing = String::from_utf8(git(&repo, &["ls-tree", "--name-only", &commit, tree])?)?;
        for path in listing.lines().filter(|p| keep(p)) {
            let bytes = git(&repo, &["show", &format!("{commit}:{path}")])?;
            let to = out.join(path.split_once('/').map_or(path, |(_, rest)| rest));
            std::fs::create_dir_all(to.parent().unwrap())?;
            std::fs::write(to, bytes)?;
        }
        std::fs::write(out.join(".complete"), "")?;
        if dir.exists() && !dir.join(".complete").exists() {
            // Left half-written by an interrupted extraction of an older version of this code.
            let _ = std::fs::remove_dir_all(&dir);
        }
        if let Err(e) = std::fs::rename(&out, &dir)
            && !dir.join(".complete").exists()
        {
            return Err(e).with_context(|| format!("moving the extracted files to {}", dir.display()));
        }
        Ok(dir)
    }

    /// llama.cpp's Python reference for the GGML block types: a `python` with numpy (installed by
    /// `scripts/llama.sh install`) and a `PYTHONPATH` holding gguf-py's `constants`, `lazy` and
    /// `quants` modules from the bundled source (the rest of gguf-py needs packages not installed).
    pub fn gguf_py(&self) -> Result<(PathBuf, PathBuf)> {
        let python = self.dir.parent().context("the install dir has no parent")?.join("gguf-py-venv/bin/python");
        if !python.exists() {
            bail!("{} is missing: run `bash scripts/llama.sh install`", python.display());
        }
        let wanted = ["constants.py", "lazy.py", "quants.py"];
        let root = self
            .extract_source("gguf-py/gguf/", "gguf-py", |p| wanted.iter().any(|w| p == format!("gguf-py/gguf/{w}")))?;
        std::fs::write(root.join("gguf/__init__.py"), "")?;
        Ok((python, root))
    }

    /// Every `models/ggml-vocab-*.gguf` of the bundled llama.cpp source that has reference
    /// tokenizations, extracted once into the install dir (`vocab/<commit>/`).
    pub fn reference_vocabs(&self) -> Result<Vec<VocabCases>> {
        let dir = self.extract_source("models/", "vocab", |p| p.starts_with("models/ggml-vocab-"))?;
        let mut vocabs = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let gguf = entry?.path();
            let (Some(name), Some("gguf")) =
                (gguf.file_stem().and_then(|s| s.to_str()), gguf.extension().and_then(|e| e.to_str()))
            else {
                continue;
            };
            let (inp, out) = (dir.join(format!("{name}.gguf.inp")), dir.join(format!("{name}.gguf.out")));
            if !inp.exists() || !out.exists() {
                continue;
            }
            let cases = parse_vocab_cases(&std::fs::read_to_string(&inp)?, &std::fs::read_to_string(&out)?)
                .with_context(|| format!("{}", inp.display()))?;
            vocabs.push(VocabCases { name: name.trim_start_matches("ggml-vocab-").to_string(), gguf, cases });
        }
        vocabs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(vocabs)
    }
}

/// The `.inp` texts (separated by `\n__ggml_vocab_test__\n`) paired with the `.out` lines.
fn parse_vocab_cases(inp: &str, out: &str) -> Result<Vec<(String, Vec<u32>)>> {
    let mut texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    if texts.last() == Some(&"") {
        texts.pop(); // the file ends with a separator
    }
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse::<u32>().context("an id")).collect::<Result<_>>())
        .collect::<Result<_>>()?;
    if texts.len() != ids.len() {
        bail!("{} texts but {} id lines", texts.len(), ids.len());
    }
    Ok(texts.into_iter().map(str::to_string).zip(ids).collect())
}
