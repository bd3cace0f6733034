//! Writing output files so that a failure never leaves a half-written file where a good one was.

use anyhow::{Context, anyhow};
use std::path::Path;

/// Writes through a temporary file and renames it, so a failed write never leaves half a PNG
/// where a previous good one was.
pub fn save_png(path: &Path, write: impl FnOnce(&Path) -> image::ImageResult<()>) -> anyhow::Result<()> {
    let tmp = path.with_extension("png.partial");
    write(&tmp).map_err(|e| anyhow!("cannot write PNG: {e}: {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move PNG into place: {}", path.display()))
}
