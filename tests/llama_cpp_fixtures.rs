//! The llama.cpp harness (`tests/support/llama_cpp.rs`, installed by `bash scripts/llama.sh
//! install`) reproduces `../shared/fixtures/tiny-llama-gguf/check.json`: real llama.cpp on the
//! GGUFs llama.cpp's own converters wrote scores like transformers/PEFT. With this in place, a
//! GGUF our exporter writes can be trusted when it passes the same comparison.
//! Needs the runner; `LORA_SKIP_LLAMA=1` skips these tests when it is not installed.

use lora_book::llama_cpp::{self, LlamaCpp};
use lora_book::*;
use std::path::PathBuf;

fn gguf(name: &str) -> PathBuf {
    fixture("tiny-llama-gguf").join(name)
}

fn flat(logits: &[Vec<Vec<f32>>]) -> Vec<f64> {
    logits.iter().flatten().flatten().map(|&x| x as f64).collect()
}

fn argmax(r: &[f64]) -> usize {
    r.iter().enumerate().fold(0, |b, (j, &x)| if x > r[b] { j } else { b })
}

/// llama.cpp's logits vs the expected ones: atol 1e-4 and the same argmax at every position.
fn compare(
    what: &str,
    llama: &LlamaCpp,
    model: &str,
    lora: Option<&str>,
    ids: &serde_json::Value,
    want: &serde_json::Value,
) {
    let rows = id_rows(ids);
    let lora_path = lora.map(gguf);
    let got = llama.logits(&gguf(model), lora_path.as_deref().map(|p| (p, 1.0)), &rows);
    let vocab = got[0][0].len();
    assert_eq!(vocab, 256, "{what}: vocabulary size");
    assert_eq!(
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        rows.iter().map(Vec::len).collect::<Vec<_>>(),
        "{what}: positions"
    );
    let got = flat(&got);
    let want = flat_f64(want);
    assert_close(what, &got, &want, 1e-4);
    for (i, (g, w)) in got.chunks(vocab).zip(want.chunks(vocab)).enumerate() {
        assert_eq!(argmax(g), argmax(w), "{what}: argmax differs at position {i}");
    }
}

#[test]
fn tiny_llama_base() {
    let Some(llama) = llama_cpp::required() else { return };
    let exp = read_json(&fixture("tiny-llama/expected.json")).unwrap();
    let case = &exp["cases"][0];
    compare(
        "llama.cpp tiny-llama-f32.gguf vs tiny-llama",
        &llama,
        "tiny-llama-f32.gguf",
        None,
        &case["input_ids"],
        &case["logits"],
    );
}

#[test]
fn tiny_llama3_contiguous() {
    let Some(llama) = llama_cpp::required() else { return };
    let exp = read_json(&fixture("tiny-llama3/expected.json")).unwrap();
    let case =
        exp["cases"].as_array().unwrap().iter().find(|c| c["name"] == "contiguous_0").expect("case contiguous_0");
    // llama.cpp takes no position ids: the case must be the plain 0..n-1 one.
    if let Some(p) = case["position_ids"].as_array() {
        let p = flat_f64(&serde_json::Value::Array(p.clone()));
        assert!(p.iter().enumerate().all(|(i, &x)| x == i as f64), "contiguous_0 positions are 0..n-1");
    }
    compare(
        "llama.cpp tiny-llama3-f32.gguf vs tiny-llama3 contiguous_0",
        &llama,
        "tiny-llama3-f32.gguf",
        None,
        &case["input_ids"],
        &case["logits"],
    );
}

#[test]
fn tiny_peft_adapter() {
    let Some(llama) = llama_cpp::required() else { return };
    let exp = read_json(&fixture("tiny-peft/expected.json")).unwrap();
    compare(
        "llama.cpp tiny-llama-f32.gguf + tiny-peft-f32.lora.gguf vs tiny-peft logits_adapter",
        &llama,
        "tiny-llama-f32.gguf",
        Some("tiny-peft-f32.lora.gguf"),
        &exp["input_ids"],
        &exp["logits_adapter"],
    );
}

#[test]
fn tiny_peft_rslora_adapter() {
    let Some(llama) = llama_cpp::required() else { return };
    let exp = read_json(&fixture("tiny-peft-rslora/expected.json")).unwrap();
    compare(
        "llama.cpp tiny-llama-f32.gguf + tiny-peft-rslora-f32.lora.gguf vs tiny-peft-rslora logits_adapter",
        &llama,
        "tiny-llama-f32.gguf",
        Some("tiny-peft-rslora-f32.lora.gguf"),
        &exp["input_ids"],
        &exp["logits_adapter"],
    );
}

#[test]
fn tiny_peft_merged() {
    let Some(llama) = llama_cpp::required() else { return };
    let exp = read_json(&fixture("tiny-peft/expected.json")).unwrap();
    compare(
        "llama.cpp tiny-peft-merged-f32.gguf vs tiny-peft logits_merged",
        &llama,
        "tiny-peft-merged-f32.gguf",
        None,
        &exp["input_ids"],
        &exp["logits_merged"],
    );
}

/// `greedy`, `last` and `info` agree with each other and with the file's metadata.
#[test]
fn greedy_last_and_info() {
    let Some(llama) = llama_cpp::required() else { return };
    let model = gguf("tiny-llama-f32.gguf");
    let info = llama.info(&model);
    eprintln!(
        "llama.cpp {} on tiny-llama-f32.gguf: {:?}",
        info.llama_cpp,
        (&info.architecture, info.n_vocab, info.n_ctx_train)
    );
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.n_vocab, 256);
    assert_eq!(info.n_ctx_train, 128);
    assert_eq!((info.bos, info.eos), (Some(1), Some(2)));

    let prompt = id_rows(&read_json(&fixture("tiny-llama/expected.json")).unwrap()["cases"][0]["input_ids"])[0].clone();
    let greedy = llama.greedy(&model, None, &prompt, 4);
    assert_eq!(greedy.len(), 4, "no end-of-generation token expected from this random model: {greedy:?}");
    // Each greedy step is the argmax of the last position of the sequence so far.
    let mut rows = Vec::new();
    for k in 0..greedy.len() {
        rows.push([prompt.as_slice(), &greedy[..k]].concat());
    }
    let last = llama.last(&model, None, &rows, 5);
    for (k, s) in last.iter().enumerate() {
        assert_eq!(s.argmax, greedy[k], "greedy step {k}");
        assert_eq!(s.top[0].0, greedy[k]);
        assert_eq!(s.logits.len(), 256);
        let p: f64 = s.logits.iter().map(|&x| (x as f64 - s.logsumexp).exp()).sum();
        assert!((p - 1.0).abs() < 1e-9, "softmax sums to {p}");
        assert!(s.top.windows(2).all(|w| w[0].1 >= w[1].1), "top sorted");
    }
    // The LoRA scale reaches llama.cpp: scale 0 is the base model.
    let adapter = gguf("tiny-peft-f32.lora.gguf");
    let base = llama.last(&model, None, &rows[..1], 0);
    let zero = llama.last(&model, Some((&adapter, 0.0)), &rows[..1], 0);
    let one = llama.last(&model, Some((&adapter, 1.0)), &rows[..1], 0);
    let d = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(d(&base[0].logits, &zero[0].logits) < 1e-5, "scale 0 changes the logits");
    assert!(d(&base[0].logits, &one[0].logits) > 0.1, "scale 1 leaves the logits unchanged");
}

/// A broken GGUF makes the runner fail with a message naming the file and llama.cpp's reason.
#[test]
fn truncated_gguf_is_refused() {
    let Some(llama) = llama_cpp::required() else { return };
    let dir = std::env::temp_dir().join(format!("lora-book-llama-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(gguf("tiny-llama-f32.gguf")).unwrap();
    let broken = dir.join("truncated.gguf");
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let err = llama.try_logits(&broken, None, &[vec![1, 2, 3]]).expect_err("a truncated GGUF must not load");
    let msg = format!("{err:#}");
    eprintln!("{msg}");
    assert!(msg.contains(&broken.display().to_string()), "the message names the file: {msg}");
    assert!(msg.contains("not within the file bounds"), "the message gives llama.cpp's reason: {msg}");

    // A model given as an adapter is refused too, naming the adapter.
    let as_adapter = gguf("tiny-llama3-f32.gguf");
    let err = llama
        .try_logits(&gguf("tiny-llama-f32.gguf"), Some((&as_adapter, 1.0)), &[vec![1, 2]])
        .expect_err("not an adapter");
    let msg = format!("{err:#}");
    assert!(msg.contains("tiny-llama3-f32.gguf") && msg.contains("general.type"), "{msg}");

    let missing = dir.join("missing.gguf");
    let err = llama.try_logits(&missing, None, &[vec![1]]).expect_err("a missing file");
    assert!(format!("{err:#}").contains("not found"), "{err:#}");
    std::fs::remove_dir_all(&dir).ok();
}
