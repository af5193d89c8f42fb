//! The dashboard's script logic (Prometheus text parsing, rates, histogram quantiles) under
//! node, when node is installed.

use std::path::Path;
use std::process::Command;

#[test]
fn dashboard_script_logic_under_node() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let out = match Command::new("node").arg("dashboard.test.js").current_dir(&dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: node not installed");
            return;
        }
        Err(e) => panic!("running node: {e}"),
    };
    assert!(
        out.status.success(),
        "dashboard.test.js failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
