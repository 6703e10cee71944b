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
