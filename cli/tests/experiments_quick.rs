//! `lora experiments --quick` end to end on the real model (about 35 s on 2 cores):
//! every results file is written, has the envelope and the fields the book's widgets read,
//! and its numbers are consistent with each other and with what LoRA is.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn unit(v: &Value, what: &str) {
    let x = f(v);
    assert!((0.0..=1.0).contains(&x), "{what} = {x} is outside [0, 1]");
}

fn check_envelope(v: &Value) {
    assert!(v["command"].as_str().unwrap().starts_with("lora experiments --quick"), "{}", v["command"]);
    assert!(!v["git_commit"].as_str().unwrap().is_empty());
    assert!(v["git_dirty"].is_boolean());
    let m = &v["machine"];
    assert!(!m["cpu_model"].as_str().unwrap().is_empty());
    assert!(u(&m["cores"]) >= 1 && f(&m["ram_gib"]) > 0.0, "{m}");
    assert!(v["date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["quick"], Value::Bool(true));
    // An experiment whose runs were all trained by an earlier one (subspace reuses the rank
    // sweep's adapters) can take less than the 0.1 s the file rounds to.
    assert!(f(&v["wall_seconds"]) >= 0.0, "wall_seconds = {}", v["wall_seconds"]);
    assert!(v["settings"]["steps"]["extract"].as_u64().is_some());
}

fn check_curve(c: &Value, steps: u64) {
    let c = c.as_array().unwrap();
    assert_eq!(c.len() as u64, steps, "one curve point per step");
    for (i, p) in c.iter().enumerate() {
        assert_eq!(u(&p["step"]), i as u64 + 1);
        assert!(f(&p["loss"]).is_finite() && f(&p["loss"]) > 0.0);
        assert!(p["val_loss"].is_null() || f(&p["val_loss"]) > 0.0);
    }
    assert!(f(&c.last().unwrap()["val_loss"]) > 0.0, "the last step has a validation loss");
}

#[test]
fn quick_experiments_write_consistent_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_lora"))
        .current_dir(root())
        .args(["experiments", "--quick", "--out"])
        .arg(&out)
        .arg("--runs-dir")
        .arg(tmp.path().join("runs"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut wall = 0.0;
    for name in ["before_after", "rank", "subspace", "efficiency"] {
        let v = read(&out, &format!("{name}.json"));
        check_envelope(&v);
        wall += f(&v["wall_seconds"]);
    }
    assert!(wall > 1.0, "the experiments trained for {wall} s in all");
    for svg in ["before_after", "rank_loss", "rank_metric", "subspace", "efficiency"] {
        let text = std::fs::read_to_string(out.join(format!("{svg}.svg"))).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{svg}.svg");
    }
    // The plots are drawn from the JSON files: --replot draws the same bytes again.
    let first = std::fs::read(out.join("rank_metric.svg")).unwrap();
    std::fs::remove_file(out.join("rank_metric.svg")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["experiments", "--replot", "--only", "rank", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(out.join("rank_metric.svg")).unwrap(), first);

    let settings = read(&out, "rank.json")["settings"].clone();
    let steps = |task: &str| u(&settings["steps"][task]);
    let seeds = settings["seeds"].as_array().unwrap().len();
    let test_examples = u(&settings["test_examples"]) as usize;

    // Before/after: three use cases, base once, LoRA once per seed.
    let ba = read(&out, "before_after.json")["results"].clone();
    let cases = ba["use_cases"].as_array().unwrap();
    let tasks: Vec<&str> = cases.iter().map(|c| c["task"].as_str().unwrap()).collect();
    assert_eq!(tasks, ["extract", "support", "persona"]);
    for c in cases {
        assert!(!c["metric_name"].as_str().unwrap().is_empty());
        assert_eq!(c["base"]["per_seed"].as_array().unwrap().len(), 1);
        assert_eq!(f(&c["base"]["spread"]), 0.0);
        let per_seed: Vec<f64> = c["lora"]["per_seed"].as_array().unwrap().iter().map(f).collect();
        assert_eq!(per_seed.len(), seeds);
        let mean = per_seed.iter().sum::<f64>() / seeds as f64;
        assert!((f(&c["lora"]["mean"]) - mean).abs() < 1e-12);
        assert!(f(&c["lora"]["spread"]) >= 0.0);
        unit(&c["base"]["mean"], "base metric");
        unit(&c["lora"]["mean"], "LoRA metric");
        let examples = c["examples"].as_array().unwrap();
        assert_eq!(examples.len(), test_examples);
        for e in examples {
            for k in ["prompt", "reference", "before", "after"] {
                assert!(e[k].is_string(), "{k} in {e}");
            }
            unit(&e["score_before"], "score_before");
            unit(&e["score_after"], "score_after");
        }
        // The examples are the first seed's answers, so their mean is its metric.
        let after = examples.iter().map(|e| f(&e["score_after"])).sum::<f64>() / examples.len() as f64;
        assert!((after - per_seed[0]).abs() < 1e-12);
        // The prompting baselines: one instructed run, a few-shot draw per seed.
        let check_baselines = |b: &serde_json::Value, what: &str| {
            unit(&b["prompted"]["mean"], &format!("{what}: instructed base"));
            assert_eq!(b["few_shot"]["per_seed"].as_array().unwrap().len(), seeds, "{what}: few-shot draws");
            unit(&b["few_shot"]["mean"], &format!("{what}: few-shot base"));
            assert_eq!(u(&b["shots"]), u(&settings["shots"]), "{what}: shots");
            assert!(!b["instructions"].as_str().unwrap().is_empty(), "{what}: instructions");
            assert_eq!(b["answers"].as_array().unwrap().len(), test_examples, "{what}: answers");
        };
        check_baselines(&c["baselines"], c["task"].as_str().unwrap());
        // Every task has a test of what training never showed; it is scored like the test,
        // per seed.
        let unseen = &c["unseen"];
        let what = format!("{}, unseen", c["task"]);
        assert!(unseen.is_object(), "{what}: {unseen}");
        assert_eq!(u(&unseen["examples"]) as usize, test_examples);
        assert_eq!(unseen["lora"]["per_seed"].as_array().unwrap().len(), seeds);
        unit(&unseen["base"]["mean"], &format!("base metric, {what}"));
        unit(&unseen["lora"]["mean"], &format!("LoRA metric, {what}"));
        check_baselines(&unseen["baselines"], &what);
        check_curve(&c["curve"], steps(c["task"].as_str().unwrap()));
    }

    // Rank: parameters exactly linear in r; everything else measured and sane.
    let rank = read(&out, "rank.json")["results"].clone();
    let runs = rank["runs"].as_array().unwrap();
    let group = |name: &str| -> Vec<&Value> {
        rank["groups"][name].as_array().unwrap().iter().map(|i| &runs[u(i) as usize]).collect()
    };
    let by_rank = group("rank");
    let rs: Vec<u64> = by_rank.iter().map(|r| u(&r["r"])).collect();
    let planned: Vec<u64> = settings["ranks"].as_array().unwrap().iter().map(u).collect();
    assert_eq!(rs, planned);
    let per_r = u(&by_rank[0]["trainable_params"]) / rs[0];
    for r in &by_rank {
        assert_eq!(u(&r["trainable_params"]), per_r * u(&r["r"]), "parameters are r × Σ(in + out)");
        assert!(u(&r["adapter_bytes"]) >= 4 * u(&r["trainable_params"]), "f32 adapter file");
        assert_eq!(f(&r["alpha"]), 2.0 * u(&r["r"]) as f64);
        assert!(f(&r["step_seconds"]) > 0.0 && f(&r["peak_rss_mib"]) > 100.0);
        assert!(f(&r["val_loss"]) > 0.0);
        unit(&r["metric"], "metric");
        check_curve(&r["curve"], steps("extract"));
    }
    for r in runs {
        let (alpha, rr) = (f(&r["alpha"]), u(&r["r"]) as f64);
        let scale = if r["rslora"].as_bool().unwrap() { alpha / rr.sqrt() } else { alpha / rr };
        assert!((f(&r["scale"]) - scale).abs() < 1e-12);
    }
    let alpha = group("alpha");
    assert!(alpha.iter().any(|r| r["rslora"] == Value::Bool(true)));
    assert!((f(&alpha[0]["scale"]) - 2.0).abs() < 1e-12, "the alpha rules agree at the reference rank");
    let targets: Vec<u64> = group("targets").iter().map(|r| u(&r["trainable_params"])).collect();
    assert!(targets.windows(2).all(|w| w[0] < w[1]), "q,v < attention < all 7: {targets:?}");
    assert_eq!(group("targets")[0]["targets"], serde_json::json!(["q_proj", "v_proj"]));

    // Subspace similarity: shapes, range, and ‖U₁ⁱᵀU₂ʲ‖² growing with i and j.
    let sub = read(&out, "subspace.json")["results"].clone();
    let (r1, r2) = (u(&sub["r1"]) as usize, u(&sub["r2"]) as usize);
    assert!(r1 < r2);
    for key in ["phi", "phi_init"] {
        let phi: Vec<Vec<f64>> =
            sub[key].as_array().unwrap().iter().map(|row| row.as_array().unwrap().iter().map(f).collect()).collect();
        assert_eq!(phi.len(), r1);
        assert!(phi.iter().all(|row| row.len() == r2));
        for i in 0..r1 {
            for j in 0..r2 {
                assert!((0.0..=1.0 + 1e-12).contains(&phi[i][j]), "{key}[{i}][{j}] = {}", phi[i][j]);
                let mass = |i: usize, j: usize| phi[i][j] * (i.min(j) + 1) as f64;
                if i > 0 {
                    assert!(mass(i, j) >= mass(i - 1, j) - 1e-9);
                }
                if j > 0 {
                    assert!(mass(i, j) >= mass(i, j - 1) - 1e-9);
                }
            }
        }
    }
    let modules = sub["per_module"].as_array().unwrap();
    assert_eq!(modules.len(), 7);
    for m in modules {
        for k in ["phi_1_1", "phi_1_1_init", "phi_1_1_mean_layers", "phi_r1_r2", "phi_r1_r2_init"] {
            unit(&m[k], k);
        }
        assert!((f(&m["random_phi_1_1"]) - 1.0 / u(&m["dim"]) as f64).abs() < 1e-15);
    }

    // Efficiency: full fine-tuning trains, holds and writes far more.
    let eff = read(&out, "efficiency.json")["results"].clone();
    let (lora, full) = (&eff["lora"], &eff["full"]);
    for side in [lora, full] {
        let p = u(&side["trainable_params"]);
        assert_eq!(u(&side["optimizer_state_bytes"]), 8 * p, "AdamW keeps two f32 moments per parameter");
        assert!(u(&side["checkpoint_bytes"]) >= 4 * p);
        assert!(f(&side["step_seconds"]) > 0.0 && f(&side["val_loss"]) > 0.0);
        unit(&side["metric"], "metric");
        check_curve(&side["curve"], steps("extract"));
    }
    assert!(u(&full["trainable_params"]) > 40 * u(&lora["trainable_params"]));
    assert!(f(&full["peak_rss_mib"]) > f(&lora["peak_rss_mib"]));
    let main =
        runs.iter().find(|r| u(&r["r"]) == u(&settings["main_rank"]) && r["targets"].as_array().unwrap().len() == 7);
    assert_eq!(lora["trainable_params"], main.unwrap()["trainable_params"], "the same run as the rank sweep's");
}
