//! `lora deploy` from the outside, against a stand-in for Ollama's API on 127.0.0.1
//! (support/ollama_stand_in.rs) that checks what the real server checks. The success
//! paths (merged model, base + adapter, fallback when the adapter is refused) and every
//! error path: unreachable, not Ollama, HTTP errors with the server's message, timeouts,
//! dropped connections, digest mismatch, old server, bad name, bad Modelfile, dry run.

#[path = "support/ollama_stand_in.rs"]
mod stand_in;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lorakit::chat::{ChatTemplate, Message};
use lorakit::ollama::modelfile::Modelfile;
use lorakit::ollama::template::ollama_template;
use serde_json::{Value, json};
use sha2::Digest;
use stand_in::{AdapterRefusal, Config, Fault, StandIn, closed_port};

const LLAMA32_JINJA: &str = include_str!("../../chapters-code/src/templates/llama3.2.jinja");
const DEFAULT_PROMPT: &str = "Say hello in one short sentence.";
const STAND_IN_ANSWER: &str = "Hello from the stand-in!";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn tiny_base() -> PathBuf {
    fixtures().join("tiny-llama-gguf/tiny-llama-f32.gguf")
}

fn lora(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lora")).args(args).env_remove("OLLAMA_HOST").output().unwrap()
}

/// The directory `lora export --format ollama` writes (model.gguf + Modelfile,
/// adapter.gguf + Modelfile.adapter), for the tiny fixture base and tiny-peft; each test
/// gets its own.
///
/// `lora export --format ollama` refuses this base (its SentencePiece vocabulary cannot
/// be loaded, so the stop tokens cannot be checked), so the GGUFs come from
/// `lora export --format gguf` and `gguf-adapter`, and the Modelfiles from lorakit's
/// modelfile module the way export/ollama.rs writes them (Llama 3.2 template, greedy).
/// The SmolLM2 test at the end deploys a directory written by `--format ollama` itself.
fn exported() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, peft) = (tiny_base(), fixtures().join("tiny-peft"));
    for (format, out, dtype) in [("gguf", "model.gguf", "q8_0"), ("gguf-adapter", "adapter.gguf", "f32")] {
        let out = d.join(out);
        let o = lora(&[
            "export",
            "--model",
            path_str(&base),
            "--adapter",
            path_str(&peft),
            "--format",
            format,
            "--dtype",
            dtype,
            "--out",
            path_str(&out),
        ]);
        assert!(o.status.success(), "export {format}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let t = ollama_template(LLAMA32_JINJA).unwrap();
    let modelfile = |from: String, adapters: Vec<String>| {
        let mut m = Modelfile::new(from).with_template(&t);
        m.adapters = adapters;
        m.parameters.push(("temperature".into(), "0".into()));
        m
    };
    modelfile("./model.gguf".into(), vec![]).write(&d.join("Modelfile")).unwrap();
    let base_abs = base.canonicalize().unwrap().display().to_string();
    modelfile(base_abs, vec!["./adapter.gguf".into()]).write(&d.join("Modelfile.adapter")).unwrap();
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    secs: f64,
}

fn deploy(target: &Path, server: &str, extra: &[&str]) -> Run {
    let start = Instant::now();
    let mut args = vec!["deploy", path_str(target), "--host", server];
    args.extend_from_slice(extra);
    let o = lora(&args);
    Run {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// A failure with a non-zero exit, a message naming each needle, and no panic.
fn assert_fails(r: &Run, case: &str, needles: &[&str]) {
    assert!(!r.ok, "{case}: should fail\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "{case}: the message should name {n:?}:\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("panicked"), "{case} panicked:\n{}", r.stderr);
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let hex: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn body(server: &StandIn, route: &str, index: usize) -> Value {
    let reqs = server.requests_to(route);
    reqs.get(index).unwrap_or_else(|| panic!("no request {index} to {route}: {reqs:?}")).json.clone().unwrap()
}

#[test]
fn merged_model_is_uploaded_once_created_and_answers() {
    let server = StandIn::start(Config::default());
    let export = exported();
    let dir = export.path();
    let r = deploy(dir, &server.url, &["--name", "tiny-lora", "--max-tokens", "12"]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);

    // The blob, addressed by the file's sha256, went up once.
    let digest = sha256(&dir.join("model.gguf"));
    let uploads = server.requests_to("POST /api/blobs/");
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(uploads[0].path, format!("/api/blobs/{digest}"));
    assert_eq!(uploads[0].body_len, std::fs::metadata(dir.join("model.gguf")).unwrap().len());
    assert_eq!(server.blobs(), vec![digest.clone()]);

    // The create body: the file by digest, the TEMPLATE, every stop string, typed parameters.
    let create = body(&server, "POST /api/create", 0);
    assert_eq!(create["model"], "tiny-lora");
    assert_eq!(create["files"], json!({ "model.gguf": digest }));
    assert!(create.get("adapters").is_none(), "{create}");
    let modelfile = Modelfile::read(&dir.join("Modelfile")).unwrap();
    assert_eq!(create["template"].as_str(), modelfile.template.as_deref());
    let stops: Vec<&str> =
        create["parameters"]["stop"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    for stop in ["<|eot_id|>", "<|eom_id|>", "<|start_header_id|>", "<|end_header_id|>"] {
        assert!(stops.contains(&stop), "stop {stop} missing from {create}");
    }
    assert_eq!(create["parameters"]["temperature"], json!(0.0));
    assert_eq!(create["stream"], json!(false));

    // Then show, and the smoke test with the requested length.
    assert_eq!(body(&server, "POST /api/show", 0)["name"], "tiny-lora");
    let generate = body(&server, "POST /api/generate", 0);
    assert_eq!((generate["model"].as_str(), generate["prompt"].as_str()), (Some("tiny-lora"), Some(DEFAULT_PROMPT)));
    assert_eq!(generate["options"]["num_predict"], 12);
    // The server rendered the prompt with the TEMPLATE exactly as the Jinja original
    // renders it (Ollama's currentDate prints YYYY-MM-DD; the Jinja gets the same date).
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let want = ChatTemplate::new(LLAMA32_JINJA, "", "")
        .unwrap()
        .render_with(&[Message::new("user", DEFAULT_PROMPT)], true, json!({ "date_string": today }))
        .unwrap();
    assert_eq!(server.prompts(), vec![want]);

    assert!(r.stdout.contains(STAND_IN_ANSWER), "{}", r.stdout);
    let line = format!("ollama create tiny-lora -f {}", dir.join("Modelfile").display());
    assert!(r.stdout.contains(&line), "no `{line}` in\n{}", r.stdout);

    // Again: the server has the blob, so nothing is uploaded; the model is created anew.
    let r = deploy(dir, &server.url, &["--name", "tiny-lora"]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(server.requests_to("POST /api/blobs/").len(), 1);
    assert_eq!(server.requests_to("HEAD /api/blobs/").len(), 2);
    assert_eq!(server.requests_to("POST /api/create").len(), 2);
    assert!(r.stderr.contains("on the server already"), "{}", r.stderr);
}

#[test]
fn adapter_route_sends_the_base_and_the_adapter() {
    let server = StandIn::start(Config::default());
    let export = exported();
    let modelfile = export.path().join("Modelfile.adapter");
    let r = deploy(&modelfile, &server.url, &["--name", "me/tiny-lora:v1"]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let (base, adapter) = (sha256(&tiny_base()), sha256(&export.path().join("adapter.gguf")));
    let create = body(&server, "POST /api/create", 0);
    assert_eq!(create["files"], json!({ "tiny-llama-f32.gguf": base }));
    assert_eq!(create["adapters"], json!({ "adapter.gguf": adapter }));
    let mut both = vec![base, adapter];
    both.sort();
    assert_eq!(server.blobs(), both);
    assert_eq!(server.model("me/tiny-lora:v1").unwrap().adapters.len(), 1);
    assert!(!r.stderr.contains("falling back"), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("ollama create me/tiny-lora:v1 -f {}", modelfile.display())), "{}", r.stdout);
}

#[test]
fn refused_adapter_falls_back_to_the_merged_model() {
    for (stage, message) in [
        (AdapterRefusal::AtCreate, "does not support LoRA adapters"),
        (AdapterRefusal::AtLoad, "loras are not yet implemented"),
    ] {
        let server = StandIn::start(Config { refuse_adapters: Some(stage), ..Config::default() });
        let export = exported();
        let r = deploy(&export.path().join("Modelfile.adapter"), &server.url, &["--name", "tiny-lora"]);
        assert!(r.ok, "{stage:?}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(message) && r.stderr.contains("falling back to the merged model"),
            "{stage:?}: {}",
            r.stderr
        );
        assert!(r.stdout.contains("(fallback: merged model)"), "{stage:?}: {}", r.stdout);
        let merged = export.path().join("Modelfile");
        assert!(
            r.stdout.contains(&format!("ollama create tiny-lora -f {}", merged.display())),
            "{stage:?}: {}",
            r.stdout
        );
        // The model the server ends with is the merged one.
        let model = server.model("tiny-lora").unwrap();
        assert!(model.adapters.is_empty(), "{stage:?}: {model:?}");
        assert_eq!(model.files.keys().collect::<Vec<_>>(), ["model.gguf"]);
        let creates = server.requests_to("POST /api/create");
        assert_eq!(creates.len(), 2, "{stage:?}");
        assert!(creates[1].json.as_ref().unwrap().get("adapters").is_none());
    }
}

#[test]
fn refused_adapter_without_a_merged_model_is_an_error() {
    let dir = exported();
    std::fs::remove_file(dir.path().join("Modelfile")).unwrap();
    let server = StandIn::start(Config { refuse_adapters: Some(AdapterRefusal::AtCreate), ..Config::default() });
    let r = deploy(&dir.path().join("Modelfile.adapter"), &server.url, &["--name", "tiny-lora"]);
    assert_fails(&r, "no fallback", &["no merged Modelfile beside", "does not support LoRA adapters", &server.url]);
}

#[test]
fn unreachable_server_says_how_to_start_ollama() {
    let host = format!("127.0.0.1:{}", closed_port());
    let export = exported();
    let r = deploy(export.path(), &host, &["--name", "tiny-lora"]);
    assert_fails(&r, "--host", &[&format!("cannot reach Ollama at http://{host}"), "ollama serve", "OLLAMA_HOST"]);
    // The same through OLLAMA_HOST, as Ollama's own CLI reads it.
    let o = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["deploy", path_str(export.path()), "--name", "tiny-lora"])
        .env("OLLAMA_HOST", &host)
        .output()
        .unwrap();
    let r = Run {
        ok: o.status.success(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
        secs: 0.0,
    };
    assert_fails(&r, "OLLAMA_HOST", &[&format!("http://{host}"), "ollama serve"]);
}

#[test]
fn http_errors_show_the_servers_message() {
    let export = exported();
    let cases: &[(&str, Fault, &[&str])] = &[
        (
            "GET /api/version",
            Fault::Plain(404, "404 page not found".into()),
            &["HTTP 404", "404 page not found", "is this an Ollama server?"],
        ),
        ("HEAD /api/blobs/", Fault::Error(500, "stat failed".into()), &["HEAD /api/blobs/sha256:", "HTTP 500"]),
        (
            "POST /api/blobs/",
            Fault::Error(500, "mkdir /root/.ollama/models/blobs: permission denied".into()),
            &["model.gguf", "HTTP 500", "permission denied"],
        ),
        (
            "POST /api/create",
            Fault::Error(500, "write /root/.ollama/models/manifests: no space left on device".into()),
            &["POST /api/create", "no space left on device"],
        ),
        (
            "POST /api/show",
            Fault::Error(404, "model 'tiny-lora' not found".into()),
            &["POST /api/show", "model 'tiny-lora' not found"],
        ),
        (
            "POST /api/generate",
            Fault::Error(500, "llama runner process has terminated: out of memory".into()),
            &["POST /api/generate", "out of memory"],
        ),
        (
            "POST /api/create",
            Fault::Plain(502, "<html>Bad Gateway</html>".into()),
            &["POST /api/create", "Bad Gateway"],
        ),
    ];
    for (route, fault, needles) in cases {
        let server = StandIn::start(Config::default().fault(route, fault.clone()));
        let r = deploy(export.path(), &server.url, &["--name", "tiny-lora"]);
        let mut all = needles.to_vec();
        all.push(&server.url);
        assert_fails(&r, route, &all);
    }
}

#[test]
fn slow_server_times_out() {
    let export = exported();
    for (route, step) in [("GET /api/version", "GET /api/version"), ("POST /api/generate", "POST /api/generate")] {
        let server = StandIn::start(Config::default().fault(route, Fault::Delay(Duration::from_secs(6))));
        let r = deploy(export.path(), &server.url, &["--name", "tiny-lora", "--timeout", "1"]);
        assert_fails(&r, route, &[&server.url, step, "within 1 s", "--timeout"]);
        assert!(r.secs < 5.0, "{route}: gave up after {:.1} s, not 1 s", r.secs);
    }
}

#[test]
fn dropped_connection_names_the_step() {
    let export = exported();
    for (route, needles) in
        [("POST /api/blobs/", &["model.gguf", "upload"][..]), ("POST /api/create", &["/api/create"][..])]
    {
        let server = StandIn::start(Config::default().fault(route, Fault::Drop));
        let r = deploy(export.path(), &server.url, &["--name", "tiny-lora"]);
        let mut all = needles.to_vec();
        all.push(&server.url);
        assert_fails(&r, route, &all);
    }
}

#[test]
fn damaged_upload_is_a_digest_mismatch() {
    let export = exported();
    let server = StandIn::start(Config { corrupt_uploads: true, ..Config::default() });
    let r = deploy(export.path(), &server.url, &["--name", "tiny-lora"]);
    let digest = sha256(&export.path().join("model.gguf"));
    assert_fails(
        &r,
        "corrupt",
        &["digest mismatch", &digest, "model.gguf", "HTTP 400", "run lora deploy again", &server.url],
    );
    assert!(server.blobs().is_empty());
    assert!(server.requests_to("POST /api/create").is_empty());
}

#[test]
fn old_server_is_refused_before_any_upload() {
    let export = exported();
    let server = StandIn::start(Config { version: "0.5.4".into(), ..Config::default() });
    let r = deploy(export.path(), &server.url, &["--name", "tiny-lora"]);
    assert_fails(&r, "0.5.4", &["Ollama 0.5.4", "too old", "0.5.5", &server.url]);
    let routes: Vec<String> = server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(routes, ["GET /api/version"]);
}

#[test]
fn bad_model_names_send_nothing() {
    let export = exported();
    let server = StandIn::start(Config::default());
    for name in ["Bad Name", "x:", "-lead", "a/b/c/d", "me.space/x", "ünï"] {
        assert!(stand_in::parse_name(name).is_none(), "the stand-in should refuse {name:?} too");
        let r = deploy(export.path(), &server.url, &[&format!("--name={name}")]);
        assert_fails(&r, name, &["invalid model name", &format!("{name:?}"), "--name"]);
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn broken_modelfiles_send_nothing() {
    let server = StandIn::start(Config::default());
    // ADAPTER names a file that is not there.
    let dir = exported();
    let text = std::fs::read_to_string(dir.path().join("Modelfile.adapter")).unwrap();
    std::fs::write(dir.path().join("Modelfile.adapter"), text.replace("./adapter.gguf", "./missing.gguf")).unwrap();
    let r = deploy(&dir.path().join("Modelfile.adapter"), &server.url, &["--name", "x"]);
    assert_fails(&r, "missing adapter", &["Modelfile.adapter:2", "ADAPTER ./missing.gguf", "no such file"]);
    // FROM names a file that is not there.
    std::fs::remove_file(dir.path().join("model.gguf")).unwrap();
    let r = deploy(dir.path(), &server.url, &["--name", "x"]);
    assert_fails(&r, "missing model", &["Modelfile:1", "FROM ./model.gguf", "no such file"]);
    // A directory without a Modelfile.
    std::fs::remove_file(dir.path().join("Modelfile")).unwrap();
    let r = deploy(dir.path(), &server.url, &["--name", "x"]);
    assert_fails(&r, "no Modelfile", &["has no Modelfile", "lora export --format ollama"]);
    // A line Ollama would not read.
    let dir = exported();
    std::fs::write(dir.path().join("Modelfile"), "FROM ./model.gguf\nPARAMETER temperature warm\n").unwrap();
    let r = deploy(dir.path(), &server.url, &["--name", "x"]);
    assert_fails(&r, "bad parameter", &["Modelfile:2", "temperature", "not a number"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn template_the_server_cannot_parse_is_refused_with_its_message() {
    let dir = exported();
    std::fs::write(dir.path().join("Modelfile"), "FROM ./model.gguf\nTEMPLATE \"{{ range .Messages }}\"\n").unwrap();
    let server = StandIn::start(Config::default());
    let r = deploy(dir.path(), &server.url, &["--name", "x"]);
    assert_fails(&r, "bad template", &["POST /api/create", "template error", &server.url]);
}

#[test]
fn dry_run_sends_nothing() {
    // Named after its directory, as `lora deploy DIR` does without --name.
    let export = exported();
    let dir = export.path().join("My Adapter");
    std::fs::create_dir(&dir).unwrap();
    for f in ["Modelfile", "Modelfile.adapter", "model.gguf", "adapter.gguf"] {
        std::fs::rename(export.path().join(f), dir.join(f)).unwrap();
    }
    let server = StandIn::start(Config::default());
    let r = deploy(&dir.join("Modelfile.adapter"), &server.url, &["--dry-run"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    let adapter = sha256(&dir.join("adapter.gguf"));
    for needle in [
        "dry run: nothing is sent",
        "POST /api/create",
        "\"model\": \"my-adapter\"",
        &adapter,
        "<|eot_id|>",
        "if the server refuses the adapter",
    ] {
        assert!(r.stdout.contains(needle), "no {needle:?} in\n{}", r.stdout);
    }
    assert!(r.stdout.contains("ollama create my-adapter -f '"), "{}", r.stdout);
}

/// `--host` and `OLLAMA_HOST` are read the way Ollama reads OLLAMA_HOST: 0.0.0.0 (where a
/// server listens, not an address to connect to) is this machine, and a bare host gets
/// Ollama's port. A dry run connects to nothing, so no server is needed.
#[test]
fn listen_addresses_and_bare_hosts_resolve_like_ollama() {
    let export = exported();
    let first_line = |flag: Option<&str>, env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lora"));
        c.args(["deploy", path_str(export.path()), "--name", "tiny-lora", "--dry-run"]).env_remove("OLLAMA_HOST");
        if let Some(h) = flag {
            c.args(["--host", h]);
        }
        if let Some(h) = env {
            c.env("OLLAMA_HOST", h);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "--host {flag:?}, OLLAMA_HOST {env:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().to_string()
    };
    let at = |host: &str| format!("dry run: nothing is sent to Ollama at {host}");
    assert_eq!(first_line(Some("0.0.0.0"), None), at("http://127.0.0.1:11434"));
    assert_eq!(first_line(None, Some("0.0.0.0")), at("http://127.0.0.1:11434"));
    assert_eq!(first_line(Some("localhost"), None), at("http://localhost:11434"));
    assert_eq!(first_line(None, Some("127.0.0.1")), at("http://127.0.0.1:11434"));
    assert_eq!(first_line(None, None), at("http://127.0.0.1:11434"));
    // The flag wins over the environment.
    assert_eq!(first_line(Some("localhost:8080"), Some("0.0.0.0")), at("http://localhost:8080"));
}

/// A directory written by `lora export --format ollama` itself, from SmolLM2 and a fresh
/// adapter: both of its routes deploy, and the server's prompt is the chat template's.
#[test]
fn smollm2_export_deploys_through_both_routes() {
    use lorakit::candle::{DType, Device};
    let work = tempfile::tempdir().unwrap();
    let m = lorakit::load::load("smollm2-135m", DType::F32).unwrap();
    let cfg = lorakit::LoraConfig { r: 2, target_modules: vec!["q_proj".into()], ..Default::default() };
    lorakit::LoraAdapter::init(cfg, &m.model.config, 7, DType::F32, &Device::Cpu)
        .unwrap()
        .save_peft(&work.path().join("peft"))
        .unwrap();
    let out = work.path().join("smol");
    let o = lora(&[
        "export",
        "--model",
        "smollm2-135m",
        "--adapter",
        path_str(&work.path().join("peft")),
        "--format",
        "ollama",
        "--out",
        path_str(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let server = StandIn::start(Config::default());
    for target in [out.clone(), out.join("Modelfile.adapter")] {
        let r = deploy(&target, &server.url, &[]);
        assert!(r.ok, "{}: {}\n{}", target.display(), r.stdout, r.stderr);
        assert!(r.stdout.contains("ollama create smol -f"), "{}", r.stdout);
    }
    let creates = server.requests_to("POST /api/create");
    assert_eq!(creates.len(), 2);
    for c in &creates {
        let c = c.json.as_ref().unwrap();
        let stops = c["parameters"]["stop"].as_array().unwrap();
        assert!(stops.contains(&json!("<|im_end|>")), "{c}");
    }
    assert!(creates[1].json.as_ref().unwrap()["adapters"]["adapter.gguf"].is_string());
    // The prompt the server rendered is the one transformers' template gives.
    let want = m.template.as_ref().unwrap().render(&[Message::new("user", DEFAULT_PROMPT)], true).unwrap();
    assert_eq!(server.prompts(), vec![want.clone(), want]);
}

/// The stand-in is no pushover: it refuses what Ollama refuses, so the successes above
/// mean that lora's requests pass the real server's checks.
#[test]
fn stand_in_refuses_what_ollama_refuses() {
    let server = StandIn::start(Config::default());
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        let r = http.post(format!("{}{path}", server.url)).body(body).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let export = exported();
    let gguf = std::fs::read(export.path().join("model.gguf")).unwrap();
    let digest = sha256(&export.path().join("model.gguf"));
    let (status, text) = post(&format!("/api/blobs/{digest}"), gguf[..100].to_vec());
    assert_eq!((status, text.contains("digest mismatch")), (400, true), "{text}");
    assert_eq!(post("/api/blobs/sha256:abc", vec![1]).0, 400);
    assert_eq!(post(&format!("/api/blobs/{digest}"), gguf).0, 201);
    let text_blob = b"not a gguf".to_vec();
    let text_digest =
        format!("sha256:{}", sha2::Sha256::digest(&text_blob).iter().map(|b| format!("{b:02x}")).collect::<String>());
    assert_eq!(post(&format!("/api/blobs/{text_digest}"), text_blob).0, 201);

    let create = |body: Value| post("/api/create", body.to_string().into_bytes());
    let missing = format!("sha256:{}", "0".repeat(64));
    for (body, status, message) in [
        (json!({ "model": "bad name", "files": { "m.gguf": digest } }), 400, "invalid model name"),
        (json!({ "model": "x", "files": { "../m.gguf": digest } }), 400, "file path must be relative"),
        (json!({ "model": "x" }), 400, "neither 'from' or 'files'"),
        (json!({ "model": "x", "files": { "m.gguf": missing } }), 500, "no such file"),
        (json!({ "model": "x", "files": { "m.gguf": text_digest } }), 400, "not in GGUF format"),
        (
            json!({ "model": "x", "files": { "m.gguf": digest }, "adapters": { "a.gguf": digest, "b.gguf": digest } }),
            400,
            "only one adapter",
        ),
        (json!({ "model": "x", "files": { "m.gguf": digest }, "template": "{{ .Messages" }), 400, "template error"),
    ] {
        let (got, text) = create(body.clone());
        assert_eq!(got, status, "{body}: {text}");
        assert!(text.contains(message), "{body}: {text}");
    }
    // Parameters of the wrong type pass create (Ollama stores them as given) but fail at load.
    let (status, text) =
        create(json!({ "model": "x", "files": { "m.gguf": digest }, "parameters": { "temperature": "0" } }));
    assert_eq!(status, 200, "{text}");
    assert!(text.lines().any(|l| l == r#"{"status":"success"}"#), "streams NDJSON status lines by default: {text}");
    let (status, text) =
        post("/api/generate", json!({ "model": "x", "prompt": "hi", "stream": false }).to_string().into_bytes());
    assert_eq!((status, text.contains("must be of type float32")), (500, true), "{text}");
    let (status, text) = post("/api/show", json!({ "model": "nope" }).to_string().into_bytes());
    assert_eq!((status, text.contains("model 'nope' not found")), (404, true), "{text}");
}
