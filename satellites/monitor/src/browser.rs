//! Headless Chromium for the dashboard's browser tests (this crate's, against a bare monitoring
//! router, and the binary's, against a running `serve`): find the browser, run it on a page with
//! a fresh profile and a time bound, and read what the page wrote into its DOM.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bound on one browser run: a stuck browser fails the test instead of hanging it.
pub const RUN_MAX: Duration = Duration::from_secs(90);

/// Chromium from `PATH` (`chromium` or `chromium-browser`), if installed.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// A fresh browser profile directory, removed on drop.
#[derive(Debug)]
pub struct Profile(PathBuf);

impl Profile {
    /// A profile under the temporary directory, named by `tag` and this process.
    pub fn new(tag: &str) -> Profile {
        Profile(std::env::temp_dir().join(format!("{tag}-chromium-{}", std::process::id())))
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium with `extra` flags (`--dump-dom`, `--screenshot=...`) on `url`.
///
/// The page polls every second of page time; 6 s of virtual time gives it about six scrapes
/// (taken within milliseconds of real time, so "changing" is checked across two loads or from a
/// writer that moves the counters meanwhile).
///
/// # Panics
/// When Chromium cannot be started or does not finish within [`RUN_MAX`].
pub fn browse(chrome: &Path, profile: &Profile, extra: &[String], url: &str) -> Output {
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg("--virtual-time-budget=6000")
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    while child.try_wait().expect("chromium's status").is_none() {
        if started.elapsed() > RUN_MAX {
            let _ = child.kill();
            panic!("chromium did not finish within {RUN_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("chromium's output")
}

/// The value of `data-NAME="..."` in a dumped DOM.
pub fn data_attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let start = dom.find(&format!("data-{name}=\""))? + name.len() + 7;
    dom[start..].split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_attributes_are_read_from_the_dom() {
        let dom = r#"<body data-polls="7" data-orders-rate="2.5">"#;
        assert_eq!(data_attribute(dom, "polls"), Some("7"));
        assert_eq!(data_attribute(dom, "orders-rate"), Some("2.5"));
        assert_eq!(data_attribute(dom, "missing"), None);
    }
}
