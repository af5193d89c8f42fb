//! Helpers for tests.

use std::path::PathBuf;

/// `promtool` from `PATH`, if installed (Debian's `prometheus` package provides it).
pub(crate) fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("promtool")).find(|p| p.is_file())
}
