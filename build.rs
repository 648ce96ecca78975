//! Stamps the version: `VIDEO_PIPELINE_VERSION` if set, else `git describe`, else the
//! package version.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VIDEO_PIPELINE_VERSION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let version = std::env::var("VIDEO_PIPELINE_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(git_describe)
        .unwrap_or_else(|| std::env::var("CARGO_PKG_VERSION").unwrap_or_default());
    println!("cargo:rustc-env=VIDEO_PIPELINE_VERSION={version}");
}

fn git_describe() -> Option<String> {
    let output = Command::new("git")
        .args(["describe", "--tags", "--always", "--dirty"])
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| {
        format!(
            "{}+{text}",
            std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
        )
    })
}
