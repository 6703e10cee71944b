//! `lora bench --smoke`: one training step, a q8_0 export and a short generation on the real
//! default model, without PyTorch or llama.cpp; the results file has the documented structure
//! and plausible values. (The real benchmark is scripts/bench.sh, never a test.)

use serde_json::Value;
use std::process::Command;

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for key in path.split('.') {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[key],
        };
    }
    cur.as_f64().unwrap_or_else(|| panic!("{path} is not a number: {cur}"))
}

#[test]
fn smoke_run_writes_the_results_and_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let started = std::time::Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["bench", "--smoke", "--out"])
        .arg(&out)
        .args(["--torch-skip-reason", "not in the smoke test"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "lora bench --smoke failed:\n{stderr}");
    assert!(started.elapsed().as_secs() < 60, "the smoke run took {:?}", started.elapsed());

    let file: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(file["schema"], 3);
    // One record, for this host: its CPU model and vector extensions.
    let hosts = file["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    let r = &hosts[0];
    assert!(r["host"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(r["machine"]["isa"].is_array());
    assert_eq!(r["plan"]["smoke"], true);
    assert!(r["git_commit"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(num(r, "machine.cores") >= 1.0 && num(r, "machine.ram_gib") > 0.0);
    for i in 0..3 {
        assert!(num(r, &format!("load_average.before.{i}")) >= 0.0);
        assert!(num(r, &format!("load_average.after.{i}")) >= 0.0);
    }
    assert!(num(r, "gemm_peak_gflops") > 0.0);

    let train = r["train"].as_array().unwrap();
    assert_eq!(train.len(), 1);
    let c = &train[0]["candle"];
    assert_eq!(num(c, "seq"), 16.0);
    assert_eq!(c["step_seconds"].as_array().unwrap().len(), 1);
    assert!(num(c, "tokens_per_second") > 0.0 && num(c, "peak_rss_mib") > 100.0);
    // Random tokens under a trained model: a loss near ln(49152) ≈ 10.8 or above, finite.
    let loss = num(c, "first_loss");
    assert!(loss.is_finite() && loss > 5.0, "first loss {loss}");
    assert_eq!(c["losses"], serde_json::json!([loss]));
    // One round, no warm-up: the median round is the only one.
    assert_eq!(train[0]["rounds"]["candle"].as_array().unwrap().len(), 1);
    assert_eq!(num(&train[0], "candle_tokens_per_second.median"), num(c, "tokens_per_second"));
    let adds = num(&train[0], "candle_training_mib");
    assert!(adds > 0.0 && adds < num(c, "peak_rss_mib"), "training adds {adds} MiB");
    // SmolLM2-135M, r=8 on all 7 projections of 30 layers: 30 × 8 × (2·1152 + 2·768 + 3·2112).
    assert_eq!(num(c, "trainable_params"), 2_442_240.0);
    assert!(num(&train[0], "mfu_candle") > 0.0);
    assert!(train[0]["trajectory"].is_null(), "no PyTorch, nothing to compare");
    assert!(train[0]["torch"].is_null() && train[0]["tokens_per_second_ratio"].is_null());

    let export = r["export"].as_array().unwrap();
    assert_eq!(export[0]["dtype"], "q8_0");
    assert!(num(&export[0], "bytes") > 50e6 && num(&export[0], "seconds") > 0.0);
    // On the q8_0 file: lorakit in f32, lorakit quantized to q8_0, candle's quantized_llama;
    // same prompt, same count of tokens.
    let generate = &r["generate"][0];
    let engines: Vec<&str> =
        generate["engines"].as_array().unwrap().iter().map(|e| e["engine"].as_str().unwrap()).collect();
    assert_eq!(engines, ["lorakit", "lorakit_quantized", "candle_quantized"]);
    for e in generate["engines"].as_array().unwrap() {
        assert_eq!(e["result"]["ids"].as_array().unwrap().len(), 4, "{e}");
        assert!(num(e, "result.decode_tokens_per_second") > 0.0 && num(e, "result.prefill_tokens_per_second") > 0.0);
        assert!(e["decode_ratio"].is_null(), "no llama.cpp, no ratio");
    }
    assert_eq!(generate["llama_cpp"], serde_json::json!([]), "no llama.cpp runs");
    let sides: Vec<&str> = r["skipped"].as_array().unwrap().iter().map(|s| s["side"].as_str().unwrap()).collect();
    assert_eq!(sides, ["pytorch+peft", "llama.cpp"]);
    assert_eq!(r["skipped"][0]["reason"], "not in the smoke test");

    let md = std::fs::read_to_string(dir.path().join("bench.md")).unwrap();
    assert!(md.contains("| 16 |") && md.contains("| q8_0 |"), "{md}");
    assert!(md.starts_with("#### "), "a heading names the host: {md}");

    // A second run on the same host replaces its record; --render rewrites without measuring.
    let again = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["bench", "--smoke", "--render", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("bench.md")).unwrap(), md);
}
