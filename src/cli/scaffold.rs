//! `gensail algorithms new NAME`: a plugin crate on the SDK, ready to test,
//! build for `wasm32-wasip2`, run and publish.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const CARGO_TOML: &str = include_str!("template/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("template/lib.rs.tmpl");
const README: &str = include_str!("template/README.md.tmpl");
/// The bundled plugins' lock file: a new crate starts from dependency
/// versions known to build with this SDK (cargo drops what it does not use).
const LOCK: &str = include_str!("../../plugins/Cargo.lock");

/// Where the SDK was when this binary was built (a checkout of the repository).
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("host-api")
}

/// Writes the crate `name` into `dir/name` and returns its path.
pub fn create(name: &str, dir: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    gensail_engine::check_algorithm_id(name).map_err(|e| anyhow::anyhow!("{e}; the crate name is the algorithm ID"))?;
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the gensail-host-api SDK is not at {}; pass --sdk PATH (the host-api directory of a gensail checkout)",
            sdk.display()
        )
    })?;
    if !sdk.join("Cargo.toml").is_file() {
        bail!(
            "{} is not the gensail-host-api crate (no Cargo.toml); pass --sdk PATH",
            sdk.display()
        );
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists; choose another name or directory", root.display());
    }
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{sdk}}", &sdk.display().to_string().replace('\\', "/"))
    };
    std::fs::create_dir_all(root.join("src")).with_context(|| format!("cannot create {}", root.display()))?;
    std::fs::write(root.join("Cargo.toml"), fill(CARGO_TOML))?;
    std::fs::write(root.join("src/lib.rs"), fill(LIB_RS))?;
    std::fs::write(root.join("README.md"), fill(README))?;
    std::fs::write(root.join("Cargo.lock"), LOCK)?;
    std::fs::write(root.join(".gitignore"), "/target\n")?;
    Ok(root)
}
