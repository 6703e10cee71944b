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
