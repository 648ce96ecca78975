//! How much room the filesystem holding a path has.

use std::path::Path;

/// Bytes on one filesystem: free for unprivileged writers, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub available: u64,
    pub total: u64,
}

/// The space of the filesystem that holds `path`.
pub fn space(path: &Path) -> std::io::Result<DiskSpace> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(DiskSpace {
        available: stats.f_bavail.saturating_mul(stats.f_frsize),
        total: stats.f_blocks.saturating_mul(stats.f_frsize),
    })
}
