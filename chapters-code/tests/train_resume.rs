//! A run killed (SIGKILL) at a checkpoint boundary, or in the middle of a step, and then
//! resumed ends with exactly the adapter of an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/extract")
}

fn train(out: &Path, resume: bool) -> Child {
    let d = data_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lora"));
    cmd.args(["train", "--quiet", "--max-steps", "6", "--micro-batch", "2", "--grad-accum", "2", "--save-every", "1"])
        .args(["--dropout", "0.1", "--max-len", "256"])
        .arg("--train-data")
        .arg(d.join("train.jsonl"))
        .arg("--validation-data")
        .arg(d.join("validation.jsonl"))
        .arg("--output-dir")
        .arg(out);
    if resume {
        cmd.arg("--resume");
    }
    cmd.spawn().unwrap()
}

fn wait_for(path: &Path, child: &mut Child) {
    let t = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "training ended before {} appeared", path.display());
        assert!(t.elapsed() < Duration::from_secs(600), "timed out waiting for {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn adapter_bytes(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("adapter_model.safetensors")).unwrap()
}

#[test]
fn killed_runs_resume_to_the_same_adapter() {
    let root = tempfile::tempdir().unwrap();
    let reference = root.path().join("reference");
    assert!(train(&reference, false).wait().unwrap().success());

    // Killed right after a checkpoint is complete, and killed in the middle of a step.
    for (name, delay_ms) in [("boundary", 0u64), ("mid-step", 400)] {
        let out = root.path().join(name);
        let mut child = train(&out, false);
        wait_for(&out.join("checkpoints/step-000002/state.json"), &mut child);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!out.join("adapter_model.safetensors").exists(), "{name}: killed before the end");
        assert!(train(&out, true).wait().unwrap().success(), "{name}: resume failed");
        assert!(adapter_bytes(&out) == adapter_bytes(&reference), "{name}: resumed adapter differs");
    }
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_stops_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let mut child = train(&out, false);
    wait_for(&out.join("checkpoints/step-000001/state.json"), &mut child);
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C should end the run cleanly, got {status}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["completed"], false);
    let steps = summary["steps"].as_u64().unwrap();
    assert!(steps < 6, "stopped early (at step {steps})");
    let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
    assert_eq!(latest, format!("step-{steps:06}"), "the stop point is checkpointed");
}

#[test]
fn a_diverging_loss_stops_with_the_step_and_keeps_the_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("run");
    let d = data_dir();
    let result = Command::new(env!("CARGO_BIN_EXE_lora"))
        .args(["train", "--quiet", "--max-steps", "6", "--micro-batch", "2", "--grad-accum", "1"])
        .args(["--save-every", "1", "--lr", "1e30", "--max-grad-norm", "0", "--warmup-steps", "0"])
        .arg("--train-data")
        .arg(d.join("train.jsonl"))
        .arg("--validation-data")
        .arg(d.join("validation.jsonl"))
        .arg("--output-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("at step 2") && err.contains("checkpoint"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("checkpoints/latest")).unwrap(), "step-000001");
    assert!(!out.join("adapter_model.safetensors").exists(), "no final adapter from a failed run");
}
