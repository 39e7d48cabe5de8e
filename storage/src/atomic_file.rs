//! Small files replaced atomically: write a temporary sibling, fsync it, rename it over the old one, fsync
//! the directory. A crash leaves either the old content or the new, never a torn mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` by writing a sibling and renaming it over, without fsyncs: for files that
/// are checked when read and rebuilt when wrong (segment indexes), where a crash may leave the old content,
/// the new or a damaged file, never a half-renamed one.
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).at(&tmp)?;
    fs::rename(&tmp, path).at(path)
}
