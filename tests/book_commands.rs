//! Every command the book shows works from the repository root, and prints what the book says.
//!
//! 1. The quoted outputs (`book/listings/*.txt`): each file starts with the command a reader
//!    types (`$ cargo run -p lorakit --example …`, `$ lora …`, `$ bash scripts/…`, `$ cat …`);
//!    the rest is its standard output. Each command runs again, in file-name order (Listing 8-2 trains the adapter the
//!    later listings read), and its output is compared with
//!    `lora_book::listing_output::first_difference`: text equal, numbers within their last
//!    printed digits, measurements of the machine (time, speed, memory) free.
//!    `bash scripts/book.sh outputs NAME` rewrites a quoted output after a deliberate change.
//!    A generated answer that differs between CPUs with and without AVX-512 (a near-tie in
//!    greedy decoding, rounded differently) keeps the other CPU's output in `NAME.txt.alt`,
//!    and the book says that the answer varies.
//! 2. The shell blocks of the chapters (```` ```sh ````/```` ```bash ````) run from the
//!    repository root, with `lora` on the PATH. A block that writes a training run or an
//!    export (`lora train`, `lora export`, `lora demo`, `lora deploy`) runs twice, since those
//!    must cope with their own earlier output (a command that only works once fails), unless
//!    it passes `--overwrite`, `--resume` or `--force` (checked in `cli/tests`); the others
//!    only read, or overwrite one report file, and run once.
//!    Ollama's model store (`OLLAMA_MODELS`) holds SmolLM2 as `smollm2:135m`, as after
//!    `ollama pull smollm2:135m`, for the `--model ollama:…` commands.
//!    A block marked ```` ```sh,no_run ```` needs what a test cannot have (an Ollama server, a
//!    Hugging Face token, an hour of CPU) or is a long job checked elsewhere; its `lora`
//!    commands are still checked: the subcommand exists and accepts every flag shown.
//!
//!     cargo test -p lora-book --test book_commands

use anyhow::{Context, Result, bail};
use lora_book::listing_output::first_difference;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the listings and the `lora` CLI and returns each executable by name, as cargo reports
/// them. The selection is the workspace's, as `cargo test --workspace` makes it: the same
/// packages with their dev-dependencies resolve to the same features, so this is a no-op after
/// it, and no second build of lorakit or book-support lands beside the one skeptic links.
fn build_programs() -> Result<HashMap<String, PathBuf>> {
    let out = as_a_reader(&mut Command::new(env!("CARGO")))
        .current_dir(root())
        .args(["build", "-q", "--message-format=json", "--workspace", "--examples", "--bins"])
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build of the listings failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut programs = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str()) {
            programs.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    Ok(programs)
}

/// `$ cargo run -p lorakit --example NAME [-- ARGS…]` or `$ lora ARGS…` as program + arguments.
fn parse_command(line: &str, programs: &HashMap<String, PathBuf>) -> Result<(PathBuf, Vec<String>)> {
    let words = shell_words(line.strip_prefix("$ ").context("the first line is not a `$ ` command")?)?;
    let program = |name: &str| programs.get(name).cloned().with_context(|| format!("cargo built no program `{name}`"));
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["cargo", "run", "-p", "lorakit", "--example", name, rest @ ..] => {
            let args = match rest {
                [] => vec![],
                ["--", args @ ..] => args.iter().map(|s| s.to_string()).collect(),
                _ => bail!("arguments must follow `--`"),
            };
            Ok((program(name)?, args))
        }
        ["lora", args @ ..] => Ok((program("lora")?, args.iter().map(|s| s.to_string()).collect())),
        // Anything else (`bash scripts/…`, `cat FILE`) as a reader's shell runs it.
        _ => Ok((PathBuf::from("bash"), vec!["-c".into(), line[2..].to_string()])),
    }
}

/// Splits as a shell would for the commands the book shows: words, "double" and 'single' quotes.
fn shell_words(s: &str) -> Result<Vec<String>> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => (quote, in_word) = (Some(c), true),
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unclosed quote in `{s}`");
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn check(file: &Path, programs: &HashMap<String, PathBuf>, bin_dir: &Path) -> Result<()> {
    let quoted = std::fs::read_to_string(file)?;
    let (command, expected) = quoted.split_once('\n').unwrap_or((&quoted, ""));
    let (exe, args) = parse_command(command, programs)?;
    let out = as_a_reader(&mut Command::new(&exe))
        .args(&args)
        .current_dir(root())
        .env("PATH", path_with(bin_dir))
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!("`{command}` exited with {}:\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    if let Some(diff) = first_difference(expected, &printed) {
        // A greedy answer decided by a near-tie can differ with the CPU's vector width (its
        // float sums round differently); `NAME.txt.alt` holds the other CPU's output.
        let alt = std::fs::read_to_string(format!("{}.alt", file.display())).ok();
        let alt_matches = alt
            .as_deref()
            .and_then(|a| a.split_once('\n'))
            .is_some_and(|(c, a)| c == command && first_difference(a, &printed).is_none());
        if !alt_matches {
            bail!("`{command}` prints something else than the book quotes, {diff}");
        }
    }
    Ok(())
}

/// Part 1: every quoted output, in file-name order. Returns the failures.
fn check_quoted_outputs(programs: &HashMap<String, PathBuf>, bin_dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("book/listings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "only {} quoted outputs found", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let started = std::time::Instant::now();
        match check(file, programs, bin_dir) {
            Ok(()) => eprintln!("ok   book/listings/{name} ({:.1} s)", started.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!("FAIL book/listings/{name}: {e:#}");
                failures.push(format!("book/listings/{name}: {e:#}"));
            }
        }
    }
    failures
}

/// A shell block of a chapter: where it is, whether it runs, its text.
struct Block {
    at: String,
    runs: bool,
    text: String,
}

fn shell_blocks() -> Vec<Block> {
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root().join("book"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    let mut blocks = Vec::new();
    for md in chapters {
        let text = std::fs::read_to_string(&md).unwrap();
        let name = md.file_name().unwrap().to_string_lossy().into_owned();
        let mut open: Option<(usize, bool, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let fence = line.trim_start().strip_prefix("```");
            match (&mut open, fence) {
                (None, Some(info)) => {
                    let mut flags = info.split(',').map(str::trim);
                    if matches!(flags.next(), Some("sh" | "bash" | "console" | "shell")) {
                        open = Some((i + 1, !flags.any(|f| f == "no_run"), String::new()));
                    }
                }
                (Some(_), Some("")) => {
                    let (line, runs, text) = open.take().unwrap();
                    blocks.push(Block { at: format!("book/{name}:{line}"), runs, text });
                }
                (Some((_, _, body)), _) => {
                    body.push_str(line);
                    body.push('\n');
                }
                (None, None) => {}
            }
        }
    }
    blocks
}

/// Every `lora …` invocation of a block: its words, continuation lines joined.
fn lora_invocations(block: &str) -> Vec<Vec<String>> {
    let joined = block.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let code = line.split(" #").next().unwrap_or("");
        let words = shell_words(code).unwrap_or_default();
        for (i, w) in words.iter().enumerate() {
            let starts_command = i == 0 || matches!(words[i - 1].as_str(), "do" | "then" | ";" | "&&" | "||" | "|");
            if w == "lora" && starts_command {
                found.push(
                    words[i..].iter().take_while(|w| !matches!(w.as_str(), ";" | "&&" | "||" | "|")).cloned().collect(),
                );
            }
        }
    }
    found
}

/// `lora SUB… --flags`: the subcommand exists and its help lists every flag shown.
fn check_lora_invocation(lora: &Path, words: &[String]) -> Result<()> {
    let mut path: Vec<&str> = words[1..]
        .iter()
        .map(String::as_str)
        .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
        .collect();
    // Positional arguments made of letters (a model name) end the subcommand path: try shorter paths.
    let help = loop {
        let out = Command::new(lora).args(&path).arg("--help").output()?;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if path.pop().is_none() {
            bail!("`lora` rejects `{}`", words.join(" "));
        }
    };
    for flag in words.iter().filter(|w| w.starts_with("--")) {
        let flag = flag.split('=').next().unwrap();
        let listed = help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).any(|w| w == flag);
        if !listed {
            bail!("`lora {}` has no flag {flag}", path.join(" "));
        }
    }
    Ok(())
}

/// Whether a block runs a `lora` command that writes a run or an export directory without
/// saying what to do with earlier output. (`--overwrite`, `--resume` and `--force` say it, and
/// `cli/tests` check that they do it.)
fn writes_a_run(block: &str) -> bool {
    lora_invocations(block).iter().any(|w| {
        matches!(w.get(1).map(String::as_str), Some("train" | "export" | "demo" | "deploy"))
            && !w.iter().any(|a| matches!(a.as_str(), "--overwrite" | "--resume" | "--force"))
    })
}

/// Runs a block with bash from the repository root, `lora` on the PATH.
fn run_block(block: &Block, bin_dir: &Path) -> Result<()> {
    let out = as_a_reader(&mut Command::new("timeout"))
        .args(["1200", "bash", "-euo", "pipefail", "-c", &block.text])
        .current_dir(root())
        .env("PATH", path_with(bin_dir))
        .output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        bail!("exited with {}:\n{}", out.status, tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(())
}

/// Ollama's model store, as after `ollama pull smollm2:135m` (see [`lora_book::ollama_store`]).
static OLLAMA_MODELS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Without the variables cargo sets for a test run, which a reader's shell does not have. They
/// would also cost minutes: ring's build script reruns when `CARGO_MANIFEST_DIR` changes, so a
/// `cargo` run with it set rebuilds ring and all above it (lorakit, lora), and the next plain
/// build rebuilds them back. With Ollama's store (`OLLAMA_MODELS`), as the reader has it.
fn as_a_reader(cmd: &mut Command) -> &mut Command {
    if let Some(store) = OLLAMA_MODELS.get() {
        cmd.env("OLLAMA_MODELS", store);
    }
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || matches!(k.as_ref(), "OUT_DIR" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR")
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// `$PATH` with `bin_dir` (where `lora` is) in front, as the book tells readers to set it.
fn path_with(bin_dir: &Path) -> String {
    format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default())
}

/// Part 2: the chapters' shell blocks. Returns the failures.
fn check_shell_blocks(programs: &HashMap<String, PathBuf>, bin_dir: &Path) -> Vec<String> {
    let lora = programs.get("lora").expect("cargo built lora");
    let blocks = shell_blocks();
    assert!(blocks.iter().filter(|b| b.runs).count() >= 4, "too few runnable shell blocks found");
    let mut failures = Vec::new();
    for block in &blocks {
        for words in lora_invocations(&block.text) {
            if let Err(e) = check_lora_invocation(lora, &words) {
                failures.push(format!("{}: {e:#}", block.at));
            }
        }
        if block.runs {
            let rounds: &[&str] = if writes_a_run(&block.text) { &["first", "second"] } else { &["first"] };
            for round in rounds {
                let started = std::time::Instant::now();
                match run_block(block, bin_dir) {
                    Ok(()) => eprintln!("ok   {} ({round} run, {:.1} s)", block.at, started.elapsed().as_secs_f64()),
                    Err(e) => {
                        eprintln!("FAIL {} ({round} run): {e:#}", block.at);
                        failures.push(format!("{} ({round} run): {e:#}", block.at));
                        break;
                    }
                }
            }
        }
    }
    failures
}

#[test]
fn every_command_the_book_shows_works() {
    let programs = build_programs().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&programs["lora"], bin_dir.path().join("lora")).unwrap();
    let store = bin_dir.path().join("ollama-models");
    lora_book::ollama_store::write_smollm2(&store).unwrap();
    OLLAMA_MODELS.set(store).unwrap();
    let mut failures = check_quoted_outputs(&programs, bin_dir.path());
    failures.extend(check_shell_blocks(&programs, bin_dir.path()));
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn commands_are_split_as_a_shell_splits_them() {
    assert_eq!(
        shell_words(r#"lora generate --system "Extract it." --prompt "Hi, I'm Ana""#).unwrap(),
        ["lora", "generate", "--system", "Extract it.", "--prompt", "Hi, I'm Ana"]
    );
    assert!(shell_words("lora \"open").is_err());
}

#[test]
fn lora_commands_are_found_in_loops_and_after_continuations() {
    let block = "for r in 4 8; do\n  lora train --r $r \\\n    --alpha 8\ndone\nlora data check x.jsonl  # a comment\n";
    let found = lora_invocations(block);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0], ["lora", "train", "--r", "$r", "--alpha", "8"]);
    assert_eq!(found[1], ["lora", "data", "check", "x.jsonl"]);
    assert!(writes_a_run(block), "a training block runs twice");
    assert!(!writes_a_run("lora train --config c.toml --overwrite\n"), "--overwrite is trusted");
    assert!(!writes_a_run("lora eval --data x.jsonl --report e.json\nbash scripts/llama.sh ask d \"hi\"\n"));
}

/// The check catches drift: a quoted output with one word or one count changed fails, and a
/// `lora` command with a flag that does not exist fails, while the real ones pass.
#[test]
fn a_drifted_output_or_a_wrong_flag_fails() {
    let programs = build_programs().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let quoted = std::fs::read_to_string(root().join("book/listings/ch07_lora_config.txt")).unwrap();
    let copy = bin_dir.path().join("ch07_lora_config.txt");
    std::fs::write(&copy, &quoted).unwrap();
    check(&copy, &programs, bin_dir.path()).unwrap();
    for (from, to) in [("q_proj", "x_proj"), ("2442240", "2442241")] {
        assert!(quoted.contains(from), "the listing no longer prints {from}");
        std::fs::write(&copy, quoted.replacen(from, to, 1)).unwrap();
        assert!(check(&copy, &programs, bin_dir.path()).is_err(), "{from} -> {to} went unnoticed");
    }
    // The other CPU's output (`NAME.txt.alt`) is accepted only when it is what was printed.
    let alt = bin_dir.path().join("ch07_lora_config.txt.alt");
    std::fs::write(&alt, &quoted).unwrap();
    check(&copy, &programs, bin_dir.path()).unwrap();
    std::fs::write(&alt, quoted.replacen("q_proj", "y_proj", 1)).unwrap();
    assert!(check(&copy, &programs, bin_dir.path()).is_err(), "an alternative that does not match passed");
    let lora = &programs["lora"];
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    check_lora_invocation(lora, &words("lora train --config x.toml --overwrite")).unwrap();
    assert!(check_lora_invocation(lora, &words("lora train --config x.toml --no-such-flag")).is_err());
    assert!(check_lora_invocation(lora, &words("lora no-such-command --x")).is_err());
}
