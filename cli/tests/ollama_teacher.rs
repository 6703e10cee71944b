//! `lora data synth --teacher` against a stand-in for Ollama's HTTP API on 127.0.0.1
//! (no Ollama can run here): the rewrites land in the training split only, and an
//! unreachable or slow server gives a clear error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

/// Serves `/api/tags` and `/api/generate` like Ollama: the "paraphrase" is the message
/// with "Please:" in front (names and numbers kept). `delay` simulates a slow server.
fn stand_in(delay_ms: u64) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(400) {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut len = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let reply = if request_line.starts_with("GET /api/tags") {
                serde_json::json!({"models": [{"name": "teacher:latest", "modified_at": "2026-11-01T00:00:00Z", "size": 1}]})
            } else if request_line.starts_with("POST /api/generate") {
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let prompt = req["prompt"].as_str().unwrap();
                let message = prompt.rsplit("\n\n").next().unwrap();
                serde_json::json!({"model": req["model"], "created_at": "2026-11-01T00:00:00Z",
                                   "response": format!("Please: {message}"), "done": true})
            } else {
                serde_json::json!({"error": "not found"})
            };
            let body = reply.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, handle)
}

fn synth(out: &std::path::Path, host: &str, timeout: &str) -> std::process::Output {
    synth_with(out, Some(host), None, timeout)
}

/// `lora data synth --teacher teacher` with `--ollama-host flag` and `OLLAMA_HOST=env`, each if given.
fn synth_with(out: &std::path::Path, flag: Option<&str>, env: Option<&str>, timeout: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lora"));
    c.args([
        "data",
        "synth",
        "--task",
        "extract",
        "--train",
        "30",
        "--validation",
        "4",
        "--test",
        "6",
        "--teacher",
        "teacher",
        "--timeout",
        timeout,
    ]);
    c.arg("--out").arg(out).env_remove("OLLAMA_HOST");
    if let Some(h) = flag {
        c.args(["--ollama-host", h]);
    }
    if let Some(h) = env {
        c.env("OLLAMA_HOST", h);
    }
    c.output().unwrap()
}

fn lines(path: std::path::PathBuf) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(String::from).collect()
}

#[test]
fn teacher_rewrites_land_in_train_only() {
    let (host, _server) = stand_in(0);
    let dir = tempfile::tempdir().unwrap();
    let out = synth(dir.path(), &host, "30");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let train = lines(dir.path().join("train.jsonl"));
    let rewritten = train.iter().filter(|l| l.contains("Please: ")).count();
    assert!(rewritten > 0 && rewritten * 2 == train.len(), "one kept rewrite per training record");
    for split in ["validation.jsonl", "test.jsonl", "test_unseen.jsonl"] {
        assert!(lines(dir.path().join(split)).iter().all(|l| !l.contains("Please: ")), "{split} untouched");
    }
    // The unseen test, as large as the test split.
    assert_eq!(lines(dir.path().join("test_unseen.jsonl")).len(), lines(dir.path().join("test.jsonl")).len());
}

#[test]
fn unreachable_and_slow_servers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port (bound and dropped).
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("http://127.0.0.1:{port}");
    let out = synth(&dir.path().join("a"), &host, "30");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&host) && err.contains("ollama serve"), "{err}");
    assert!(!dir.path().join("a").exists(), "no output from a failed run");

    let (slow, _server) = stand_in(3000);
    let out = synth(&dir.path().join("b"), &slow, "1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("did not answer"), "{err}");
}

/// `OLLAMA_HOST` as Ollama's own CLI takes it: `host:port` without a scheme.
#[test]
fn ollama_host_without_a_scheme_reaches_the_server() {
    let (url, _server) = stand_in(0);
    let dir = tempfile::tempdir().unwrap();
    let out = synth_with(dir.path(), None, Some(url.trim_start_matches("http://")), "30");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(lines(dir.path().join("train.jsonl")).iter().any(|l| l.contains("Please: ")), "rewrites were kept");
}

/// 0.0.0.0 is where a server listens, not an address to connect to: it means this machine,
/// and a bare host means Ollama's port 11434 (not http's 80). Nothing can run Ollama here, so
/// the error names the address the teacher tried; skipped when something listens on 11434.
#[test]
fn listen_addresses_and_bare_hosts_mean_ollamas_port_on_this_machine() {
    if TcpStream::connect_timeout(&"127.0.0.1:11434".parse().unwrap(), Duration::from_millis(500)).is_ok() {
        eprintln!("skipped: something listens on 127.0.0.1:11434");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = [("--ollama-host 0.0.0.0", Some("0.0.0.0"), None), ("OLLAMA_HOST=127.0.0.1", None, Some("127.0.0.1"))];
    for (i, (case, flag, env)) in cases.into_iter().enumerate() {
        let out = synth_with(&dir.path().join(i.to_string()), flag, env, "1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: should fail\n{err}");
        assert!(err.contains("cannot reach Ollama at http://127.0.0.1:11434: is it running?"), "{case}: {err}");
        assert!(!err.contains("0.0.0.0") && !err.contains(":80"), "{case}: {err}");
    }
}
