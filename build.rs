//! Builds the guest crates under `plugins/` for `wasm32-wasip2`, so a fresh
//! checkout needs nothing but `cargo build` (no committed `.wasm`).
//!
//! - The bundled algorithms (every crate directly under `plugins/` whose
//!   manifest builds a `cdylib`) are embedded in the binary: `BUNDLED` in
//!   `$OUT_DIR/bundled_plugins.rs`.
//! - All built components, test guests included, are in the directory named by
//!   the compile-time variable `GENSAIL_PLUGIN_WASM_DIR`, for tests and benchmarks.
//!
//! The guest build uses its own target directory next to the host's, so the
//! nested cargo never waits on the outer one's lock.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = PathBuf::from(cargo_env("CARGO_MANIFEST_DIR"));
    let plugins = root.join("plugins");
    watch(&root, &plugins);
    ensure_wasm_target();

    let target_dir = host_target_dir().join("gensail-plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&plugins)
        .args(["build", "--release", "--target", WASM_TARGET, "--target-dir"])
        .arg(&target_dir);
    // The outer build's flags and target settings are for the host, not the guests.
    for (key, _) in std::env::vars() {
        let keep = key == "CARGO_HOME" || key == "CARGO_MAKEFLAGS";
        if (key.starts_with("CARGO_") && !keep) || key == "RUSTFLAGS" || key == "RUSTC_WORKSPACE_WRAPPER" {
            build.env_remove(&key);
        }
    }
    let status = build.status().expect("run cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins in {} for {WASM_TARGET} failed (see the errors above)",
            plugins.display()
        );
    }

    let wasm_dir = target_dir.join(WASM_TARGET).join("release");
    println!("cargo:rustc-env=GENSAIL_PLUGIN_WASM_DIR={}", wasm_dir.display());
    // For tests/plugins_native.rs, which runs the plugins' unit tests natively.
    println!("cargo:rustc-env=GENSAIL_HOST_TARGET={}", cargo_env("TARGET"));
    println!(
        "cargo:rustc-env=GENSAIL_CARGO={}",
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
    );
    let mut bundled = String::from(
        "/// The bundled algorithms: (ID, component bytes), built from `plugins/` by build.rs.\npub const BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for name in bundled_crates(&plugins) {
        let wasm = wasm_dir.join(format!("{name}.wasm"));
        assert!(wasm.exists(), "the plugin build did not produce {}", wasm.display());
        bundled.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            wasm.display().to_string()
        ));
    }
    bundled.push_str("];\n");
    let out = PathBuf::from(cargo_env("OUT_DIR")).join("bundled_plugins.rs");
    std::fs::write(out, bundled).expect("write bundled_plugins.rs");
}

/// A variable cargo always sets for build scripts.
fn cargo_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// Crates directly under `plugins/` that build a component (`cdylib`), sorted.
fn bundled_crates(plugins: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(plugins)
        .expect("read plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::read_to_string(e.path().join("Cargo.toml")).is_ok_and(|m| m.contains("cdylib")))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Re-run when guest sources, the SDK or the WIT change; not on build output
/// (a `plugins/target` left by a manual build must not force rebuilds).
fn watch(root: &Path, plugins: &Path) {
    for path in [
        "wit",
        "host-api/src",
        "host-api/Cargo.toml",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugins/.cargo",
        // sqlx::migrate! embeds the migrations; a new file must rebuild the crate.
        "migrations",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    for dir in [plugins.to_path_buf(), plugins.join("test-guests")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let skip = name == "target" || name == "fixtures" || name == "test-guests";
            if entry.path().is_dir() && !skip {
                println!("cargo:rerun-if-changed={}", entry.path().display());
            }
        }
    }
}

/// `rust-toolchain.toml` names the target, but rustup does not add a missing
/// target to a toolchain that is already installed: add it here.
fn ensure_wasm_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET) => {}
        Ok(_) => {
            let added = Command::new("rustup").args(["target", "add", WASM_TARGET]).status();
            if !added.is_ok_and(|s| s.success()) {
                panic!(
                    "the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed; run it by hand (it needs access to the Rust distribution server) and build again"
                );
            }
        }
        Err(_) => {
            // No rustup (a distribution's Rust): the build below says whether the target exists.
            println!("cargo:warning=rustup not found; assuming the {WASM_TARGET} target is installed");
        }
    }
}

/// The host build's target directory (`OUT_DIR` is `<target>/[<triple>/]<profile>/build/<pkg>/out`).
fn host_target_dir() -> PathBuf {
    let out = PathBuf::from(cargo_env("OUT_DIR"));
    out.ancestors()
        .nth(4)
        .expect("OUT_DIR has the usual depth")
        .to_path_buf()
}
