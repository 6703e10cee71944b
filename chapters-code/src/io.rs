//! Files are written to a temporary name in the same directory and renamed into place, so
//! a crash or a full disk never leaves a half-written file under the real name.

use anyhow::{Context, Result};
use std::path::Path;

/// Run `write` on a temporary path beside `path`, then rename it to `path`. On error the
/// temporary file is removed and `path` is untouched.
pub fn atomic_write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write to {}", dir.display()))?;
    write(tmp.path()).with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file().sync_all().ok();
    // tempfile creates 0600 files; outputs are ordinary files for the user to share.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).ok();
    }
    tmp.persist(path).with_context(|| format!("cannot move the new file into place at {}", path.display()))?;
    Ok(())
}

/// Write bytes atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |tmp| Ok(std::fs::write(tmp, bytes)?))
}

/// Hex sha256 of a file, read in streaming fashion (GGUF files can be gigabytes).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of a digest, as sha256 sums are written.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Build a directory under a temporary name beside `path` and rename it into place, so a
/// failed export leaves nothing (or the previous directory) under the real name. An
/// existing `path` is replaced only when `replace` is set.
pub fn atomic_dir(path: &Path, replace: bool, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    if path.exists() && !replace {
        anyhow::bail!("{} already exists (use --force to replace it)", path.display())
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempdir_in(parent)
        .with_context(|| format!("cannot write to {}", parent.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).ok();
    }
    build(tmp.path()).with_context(|| format!("writing {}", path.display()))?;
    if path.exists() {
        let old = parent.join(format!(".{name}.old"));
        std::fs::rename(path, &old).with_context(|| format!("cannot move the old {} aside", path.display()))?;
        std::fs::remove_dir_all(&old).ok();
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, path)
        .with_context(|| format!("cannot move the new directory into place at {}", path.display()))?;
    Ok(())
}
