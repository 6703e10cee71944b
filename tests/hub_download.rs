//! Downloading a Hub model through hf-hub's real client, offline: a stand-in for the Hub on
//! 127.0.0.1 answers as huggingface.co does (`/{repo}/resolve/{revision}/{file}`, byte ranges,
//! `ETag` and `X-Repo-Commit` headers, 404 for a file the repo lacks, 401 for a gated repo). The
//! files land in the standard cache layout and load again with the network off.

use lora_book::fixture;
use lorakit::settings::{Secret, Settings};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

const COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// What the stand-in saw: each request's path and its `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `files` as the repo `acme/tiny-llama` at any revision; `gated/*` answers 401.
fn stand_in(files: HashMap<String, Vec<u8>>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (mut range, mut auth) = (None, None);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                    break;
                }
                let (name, value) = line.trim().split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "range" => range = value.trim().strip_prefix("bytes=").map(str::to_string),
                    "authorization" => auth = Some(value.trim().to_string()),
                    _ => {}
                }
            }
            log.lock().unwrap().push((path.clone(), auth));
            let file = path.strip_prefix("/acme/tiny-llama/resolve/").and_then(|p| p.split_once('/')).map(|(_, f)| f);
            let head = |status: &str, extra: &str, len: usize| {
                format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
            };
            let reply = match file.and_then(|f| files.get(f)) {
                _ if path.starts_with("/gated/") => head("401 Unauthorized", "", 0).into_bytes(),
                None => head("404 Not Found", "X-Error-Code: EntryNotFound\r\n", 0).into_bytes(),
                Some(bytes) => {
                    // `bytes=A-B`, or `bytes=A-` for the rest of the file.
                    let last = bytes.len() - 1;
                    let (start, end) = match range.as_deref().and_then(|r| r.split_once('-')) {
                        Some((a, b)) => (a.parse().unwrap(), b.parse::<usize>().map_or(last, |b| b.min(last))),
                        None => (0, last),
                    };
                    let etag = format!("{:x}", Sha256::digest(bytes));
                    let extra = format!(
                        "Content-Range: bytes {start}-{end}/{}\r\nETag: \"{etag}\"\r\nX-Repo-Commit: {COMMIT}\r\n",
                        bytes.len()
                    );
                    let mut out = head("206 Partial Content", &extra, end + 1 - start).into_bytes();
                    out.extend_from_slice(&bytes[start..=end]);
                    out
                }
            };
            stream.write_all(&reply).ok();
        }
    });
    (url, seen)
}

#[test]
fn a_hub_model_downloads_into_the_standard_cache_then_loads_offline() {
    let files: HashMap<String, Vec<u8>> = ["config.json", "model.safetensors"]
        .into_iter()
        .map(|f| (f.to_string(), std::fs::read(fixture("tiny-llama").join(f)).unwrap()))
        .collect();
    let (url, seen) = stand_in(files.clone());
    let cache = tempfile::tempdir().unwrap();
    let settings = Settings {
        hf_hub_cache: Some(cache.path().to_path_buf()),
        hf_endpoint: Some(url),
        hf_token: Some(Secret("hf_StandInToken".into())),
        ..Settings::default()
    };
    let messages = Mutex::new(Vec::new());
    let log = |m: &str| messages.lock().unwrap().push(m.to_string());

    let dir = lorakit::hub::snapshot_dir("acme/tiny-llama", &settings, &log).unwrap();
    assert_eq!(dir, cache.path().join("models--acme--tiny-llama/snapshots").join(COMMIT));
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name} differs from what the Hub served");
    }
    // The optional files the repo lacks (tokenizer, shard index) are skipped, not errors.
    assert!(!dir.join("tokenizer.json").exists());
    assert!(messages.lock().unwrap().iter().any(|m| m.contains("downloading acme/tiny-llama/model.safetensors")));
    // The token reaches the Hub, as a bearer token, on every request.
    for (path, auth) in seen.lock().unwrap().iter() {
        assert_eq!(auth.as_deref(), Some("Bearer hf_StandInToken"), "{path}");
    }

    // Cached now: with the network forbidden it loads, and nothing is requested.
    let before = seen.lock().unwrap().len();
    let offline = Settings { hf_hub_offline: true, ..settings.clone() };
    assert_eq!(lorakit::hub::snapshot_dir("acme/tiny-llama", &offline, &log).unwrap(), dir);
    // A revision given as the commit hash reads that snapshot directly.
    let pinned = format!("acme/tiny-llama@{COMMIT}");
    assert_eq!(lorakit::hub::snapshot_dir(&pinned, &offline, &log).unwrap(), dir);
    assert_eq!(seen.lock().unwrap().len(), before, "a cached model touched the network");

    // A gated repo without a token: the error says what to do.
    let anonymous = Settings { hf_token: None, ..settings };
    let err = format!("{:#}", lorakit::hub::snapshot_dir("gated/model", &anonymous, &log).unwrap_err());
    assert!(err.contains("gated/model is gated") && err.contains("HF_TOKEN"), "{err}");
}
