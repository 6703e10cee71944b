//! Runs killed (SIGKILL) at random moments, and during checkpoint writes, then resumed, end
//! with exactly the adapter of an uninterrupted run; Ctrl-C and a diverging loss stop cleanly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/extract")
}

/// Short examples, so each of the many runs below takes seconds.
fn short_data(root: &Path) -> PathBuf {
    let path = root.join("short.jsonl");
    let lines: Vec<String> =
        (0..12).map(|i| format!(r#"{{"instruction": "Add {i} and {}.", "output": "{}"}}"#, i + 3, 2 * i + 3)).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
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

/// The quick run the kill trials repeat: 4 steps of 2 short examples, q/v only, no
/// validation, with dropout (whose random stream must resume exactly too).
fn quick_train(data: &Path, out: &Path, resume: bool) -> Child {
    let mut cmd = quick_command(data, out);
    if resume {
        cmd.arg("--resume");
    }
    cmd.spawn().unwrap()
}

fn quick_command(data: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lora"));
    cmd.args(["train", "--quiet", "--max-steps", "4", "--micro-batch", "2", "--save-every", "1"])
        .args(["--dropout", "0.1", "--max-len", "64", "--target-modules", "q_proj,v_proj"])
        .arg("--train-data")
        .arg(data)
        .arg("--output-dir")
        .arg(out);
    cmd
}

/// Running the same command again on a finished run: refused with the way out, and with
/// `--overwrite` a fresh run from step 0 that ends with the same adapter.
#[test]
fn a_second_run_is_refused_unless_it_resumes_or_overwrites() {
    let root = tempfile::tempdir().unwrap();
    let data = short_data(root.path());
    let out = root.path().join("run");
    assert!(quick_train(&data, &out, false).wait().unwrap().success());
    let first = adapter_bytes(&out);
    let again = quick_command(&data, &out).output().unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && err.contains("--overwrite") && err.contains("--resume"), "{err}");
    assert_eq!(adapter_bytes(&out), first, "a refused run changed the adapter");
    // A stray file from the old run must not survive a restart.
    std::fs::write(out.join("checkpoints/step-000099"), "stale").unwrap();
    let over = quick_command(&data, &out).arg("--overwrite").output().unwrap();
    assert!(over.status.success(), "{}", String::from_utf8_lossy(&over.stderr));
    assert_eq!(adapter_bytes(&out), first, "the overwritten run trains the same adapter again");
    assert!(!out.join("checkpoints/step-000099").exists(), "--overwrite kept the old run's checkpoints");
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

/// What a kill may leave: complete checkpoints under their real names (a half-written one
/// only under a dot-name), `latest` naming a complete one, and no partial final adapter.
fn check_what_a_kill_left(out: &Path, reference: &[u8], trial: &str) {
    let ckpts = out.join("checkpoints");
    if let Ok(entries) = std::fs::read_dir(&ckpts) {
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with("step-") {
                for f in ["state.json", "adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors"] {
                    assert!(ckpts.join(&name).join(f).is_file(), "{trial}: {name} lacks {f}");
                }
            }
        }
        if let Ok(latest) = std::fs::read_to_string(ckpts.join("latest")) {
            assert!(
                ckpts.join(latest.trim()).join("state.json").is_file(),
                "{trial}: latest names {latest:?}, not complete"
            );
        }
    }
    if out.join("adapter_model.safetensors").exists() {
        assert!(adapter_bytes(out) == reference, "{trial}: a final adapter different from the reference");
    }
}

/// 20 runs killed with SIGKILL: 14 at pseudo-random moments over a whole run, 6 the moment
/// a checkpoint starts being written. Each resumes to the uninterrupted run's adapter bytes.
#[test]
fn killed_runs_resume_to_the_same_adapter() {
    let root = tempfile::tempdir().unwrap();
    let data = short_data(root.path());
    let reference = root.path().join("reference");
    let t = Instant::now();
    assert!(quick_train(&data, &reference, false).wait().unwrap().success());
    let full = t.elapsed();
    let want = adapter_bytes(&reference);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand01 = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut killed_in_write = 0;
    for trial in 0..20 {
        let name = format!("trial-{trial:02}");
        let out = root.path().join(&name);
        let mut child = quick_train(&data, &out, false);
        if trial < 14 {
            std::thread::sleep(full.mul_f64(rand01()));
        } else {
            // The moment a checkpoint's temporary directory appears.
            let ckpts = out.join("checkpoints");
            let t = Instant::now();
            'watch: while child.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(600) {
                for e in std::fs::read_dir(&ckpts).into_iter().flatten() {
                    if e.unwrap().file_name().to_string_lossy().starts_with(".step-") {
                        killed_in_write += 1;
                        break 'watch;
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let _ = child.kill();
        child.wait().unwrap();
        check_what_a_kill_left(&out, &want, &name);
        let resumed = quick_train(&data, &out, true).wait().unwrap();
        assert!(resumed.success(), "{name}: resume failed");
        assert!(adapter_bytes(&out) == want, "{name}: resumed adapter differs");
        std::fs::remove_dir_all(&out).unwrap();
    }
    eprintln!(
        "20 kills ({killed_in_write} during a checkpoint write) all resumed to the reference adapter; one run takes {:.1} s",
        full.as_secs_f64()
    );
    assert!(killed_in_write >= 3, "only {killed_in_write} kills landed in a checkpoint write");
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
