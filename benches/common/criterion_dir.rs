//! Where criterion keeps its results, found as criterion 0.8 finds it, so
//! that the benches' side files (`ratio.json`, `isa.txt`) land beside them
//! and `examples/perf_table.rs` reads both from one place.

use std::path::PathBuf;

/// `$CRITERION_HOME`, else `criterion` in cargo's target directory
/// (`$CARGO_TARGET_DIR`, else, under cargo, `cargo metadata`'s, which
/// follows `build.target-dir`), else the crate's `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    // Relative, as criterion's own fallback is: beside its results wherever
    // the binary is run from.
    target_dir()
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

fn target_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir));
    }
    // As criterion: only under cargo (`cargo bench`, `cargo run`), which
    // says where it is; a binary run by hand takes `target/criterion`.
    let cargo = std::env::var_os("CARGO")?;
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    meta["target_directory"].as_str().map(PathBuf::from)
}
