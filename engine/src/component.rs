//! Validation of a component against the contract, and what a loaded
//! algorithm is.

use semver::Version;
use serde::Serialize;
use wasmtime::component::{Component, InstancePre};

use crate::bindings::AlgorithmPre;
use crate::limits::{Limits, ShapeLimits};
use crate::sandbox::RunState;
use crate::{LoadError, WIT_PACKAGE, WIT_VERSION};

/// What a component says about itself, read without registering it.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// `metadata().id`.
    pub id: String,
    /// `metadata().version`.
    pub version: Version,
    /// `metadata().description`.
    pub description: String,
    /// The JSON Schema of the config, if the plugin publishes one.
    pub config_schema: Option<serde_json::Value>,
    /// The JSON Schema of the output, if the plugin publishes one.
    pub output_schema: Option<serde_json::Value>,
    /// The `gensail:algorithm` version the plugin was built against.
    pub wit_version: Version,
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size_bytes: u64,
}

/// A validated, compiled and pre-linked algorithm, ready to run. Cheap to
/// share: runs hold an `Arc` to the version they started on.
pub struct LoadedAlgorithm {
    /// What the component says about itself.
    pub info: ComponentInfo,
    /// The limits every run of this algorithm is held to.
    pub limits: Limits,
    pub(crate) pre: AlgorithmPre<RunState>,
}

impl std::fmt::Debug for LoadedAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedAlgorithm")
            .field("info", &self.info)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Rejects bytes that cannot be a component before wasmtime sees them, with a
/// message that tells a core module from garbage.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Bytes 4..8 are version and layer: 1,0 / 0,0 is a core module; components are layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

/// Refuses a component whose shape is past `limits`, by parsing it (every
/// nested core module included) without compiling anything; stops at the
/// first limit passed.
pub(crate) fn check_shape(bytes: &[u8], limits: &ShapeLimits) -> Result<(), LoadError> {
    use wasmparser::{Parser, Payload, TypeRef};
    let over = |what, found: u64, limit: u64, env| {
        if found > limit {
            Err(LoadError::TooLarge {
                what,
                found,
                limit,
                env,
            })
        } else {
            Ok(())
        }
    };
    let (mut functions, mut code, mut data) = (0u64, 0u64, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| LoadError::Compile(format!("the component does not parse: {e}")))? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import =
                        import.map_err(|e| LoadError::Compile(format!("the component does not parse: {e}")))?;
                    functions += u64::from(matches!(import.ty, TypeRef::Func(_)));
                }
            }
            Payload::FunctionSection(defined) => functions += u64::from(defined.count()),
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len() as u64;
                over(
                    "bytes in one function body",
                    size,
                    limits.function_bytes,
                    "FUNCTION_BYTES",
                )?;
                code += size;
            }
            Payload::DataSection(segments) => data += segments.range().len() as u64,
            _ => {}
        }
        over("functions", functions, limits.functions, "FUNCTIONS")?;
        over("bytes of code", code, limits.code_bytes, "CODE_BYTES")?;
        over("bytes of data", data, limits.data_bytes, "DATA_BYTES")?;
    }
    Ok(())
}

/// The `gensail:algorithm` version the component exports its `plugin` interface from.
pub(crate) fn plugin_wit_version(component: &Component, engine: &wasmtime::Engine) -> Result<Version, LoadError> {
    let prefix = format!("{WIT_PACKAGE}/plugin@");
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let Some(name) = exports.iter().find(|n| n.starts_with(&prefix)) else {
        return Err(LoadError::MissingExport {
            expected: format!("{WIT_PACKAGE}/plugin@{WIT_VERSION}"),
            found: if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            },
        });
    };
    let version = Version::parse(&name[prefix.len()..])
        .map_err(|e| LoadError::Link(format!("export {name} has no valid package version: {e}")))?;
    check_wit_compatible(&version)?;
    // The host import must be compatible too (a plugin that never logs may not import it).
    let host_prefix = format!("{WIT_PACKAGE}/host@");
    for (import, _) in ty.imports(engine) {
        if let Some(v) = import.strip_prefix(&host_prefix) {
            let v = Version::parse(v).map_err(|e| LoadError::Link(format!("import {import}: {e}")))?;
            check_wit_compatible(&v)?;
        }
    }
    Ok(version)
}

/// Same major version, minor version no greater than the host's.
#[allow(
    clippy::absurd_extreme_comparisons,
    reason = "the host's minor version is 0 today; the comparison is for the minors to come"
)]
fn check_wit_compatible(plugin: &Version) -> Result<(), LoadError> {
    let compatible = plugin.major == WIT_VERSION.major && plugin.minor <= WIT_VERSION.minor;
    if compatible {
        Ok(())
    } else {
        Err(LoadError::IncompatibleWit {
            plugin: plugin.clone(),
            host: WIT_VERSION,
        })
    }
}

/// Pre-links the component: every import resolved, the world's exports checked.
pub(crate) fn prelink(
    linker: &wasmtime::component::Linker<RunState>,
    component: &Component,
) -> Result<AlgorithmPre<RunState>, LoadError> {
    let pre: InstancePre<RunState> = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    AlgorithmPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))
}

/// Checks that `id` is a usable algorithm ID (1–64 of `a-z0-9_`, starting
/// with a letter): IDs are used in URLs, file names and config, so keep them plain.
pub fn check_id(id: &str) -> Result<(), LoadError> {
    let ok = (1..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LoadError::InvalidId(id.to_owned()))
    }
}

/// Parses a schema a plugin published; a malformed one is a load error rather
/// than something every later reader has to cope with.
pub(crate) fn parse_schema(which: &str, text: Option<String>) -> Result<Option<serde_json::Value>, LoadError> {
    let max = crate::guest::MAX_SCHEMA_BYTES;
    text.map(|t| {
        if t.len() > max {
            return Err(LoadError::Metadata(format!(
                "{which} is {} bytes; the limit is {max} bytes",
                t.len()
            )));
        }
        serde_json::from_str(&t).map_err(|e| LoadError::Metadata(format!("{which} is not valid JSON: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_modules_from_garbage() {
        assert!(matches!(check_header(b"hello world"), Err(LoadError::NotWasm)));
        assert!(matches!(check_header(b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule)));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn wit_compatibility_rule() {
        assert!(check_wit_compatible(&Version::new(1, 0, 0)).is_ok());
        assert!(check_wit_compatible(&Version::new(1, 0, 7)).is_ok());
        assert!(matches!(
            check_wit_compatible(&Version::new(1, 1, 0)),
            Err(LoadError::IncompatibleWit { .. })
        ));
        let err = check_wit_compatible(&Version::new(2, 0, 0)).unwrap_err().to_string();
        assert!(err.contains("2.0.0") && err.contains("1.0.0"), "{err}");
    }

    #[test]
    fn ids() {
        assert!(check_id("rise_dds_v5").is_ok());
        for bad in ["", "Rise", "5dds", "a-b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
