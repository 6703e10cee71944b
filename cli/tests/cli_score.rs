//! `lora score` from the outside: its JSON against the reference logits.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    let shared = std::env::var("LORA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("fixtures").join(name)
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn score(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lora")).arg("score").args(args).output().unwrap();
    assert!(out.status.success(), "lora score failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn check(report: &serde_json::Value, want: &serde_json::Value, ids: &[u64]) {
    assert_eq!(report["ids"].as_array().unwrap().len(), ids.len());
    let positions = report["positions"].as_array().unwrap();
    for (t, pos) in positions.iter().enumerate() {
        let row: Vec<f64> = pos["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let want_row: Vec<f64> = want[t].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let worst = row.iter().zip(&want_row).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "position {t}: max |diff| {worst}");
        let top = pos["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let best = want_row.iter().enumerate().fold(0, |b, (j, &x)| if x > want_row[b] { j } else { b });
        assert_eq!(top[0]["id"].as_u64().unwrap() as usize, best);
        let p: f64 = top.iter().map(|x| x["prob"].as_f64().unwrap()).sum();
        assert!(p > 0.0 && p <= 1.0 + 1e-6);
    }
}

#[test]
fn score_base_and_peft_adapter_json() {
    let exp = json(fixture("tiny-peft/expected.json"));
    let ids: Vec<u64> = exp["input_ids"][0].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    let ids_arg = ids.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    let model = fixture("tiny-llama");
    let base = json(fixture("tiny-llama/expected.json"));
    let r = score(&["--model", model.to_str().unwrap(), "--ids", &ids_arg, "--top", "3", "--full", "--json"]);
    check(&r, &base["cases"][0]["logits"][0], &ids);

    let adapter = fixture("tiny-peft");
    let r = score(&[
        "--model",
        model.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--ids",
        &ids_arg,
        "--top",
        "3",
        "--full",
        "--json",
    ]);
    check(&r, &exp["logits_adapter"][0], &ids);
}

#[test]
fn score_reports_bad_ids_clearly() {
    let model = fixture("tiny-llama");
    let out = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["score", "--model", model.to_str().unwrap(), "--ids", "1,x,3", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ids") && err.contains("\"x\""), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["score", "--model", model.to_str().unwrap(), "--ids", "1,999", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("999"), "names the bad id");
}
