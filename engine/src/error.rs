//! Errors at the engine's boundary.

use semver::Version;

/// Why a component could not be loaded. Each message says what is wrong and,
/// where versions are involved, names both.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component: the file does not start with the WebAssembly header (\\0asm)")]
    NotWasm,
    /// The bytes are a core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for the wasm32-wasip2 target (cargo build --target wasm32-wasip2)"
    )]
    CoreModule,
    /// The component is larger in some dimension than this server compiles
    /// (checked before compiling: a compile bomb costs nothing).
    #[error(
        "the component has {found} {what}; this server compiles at most {limit} (a real plugin has far fewer: check the build, or ask the operator to raise GENSAIL_MAX_COMPONENT_{env})"
    )]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// How many or how much the component has.
        found: u64,
        /// The limit.
        limit: u64,
        /// The suffix of the environment variable that sets the limit.
        env: &'static str,
    },
    /// wasmtime could not compile the component.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component does not export the plugin interface at all.
    #[error(
        "the component does not export {expected} (it exports: {found}); build it with gensail-host-api or against wit/algorithm.wit"
    )]
    MissingExport {
        /// What was looked for.
        expected: String,
        /// What the component exports instead.
        found: String,
    },
    /// The component was built against an incompatible version of the WIT package.
    #[error(
        "the plugin was built against gensail:algorithm@{plugin}, but this host implements gensail:algorithm@{host}; a plugin must use the same major version and a minor version no greater than the host's"
    )]
    IncompatibleWit {
        /// The version the plugin was built against.
        plugin: Version,
        /// The version this host implements.
        host: Version,
    },
    /// The component's exports or imports do not match what the host provides.
    #[error("the component does not fit the host: {0}")]
    Link(String),
    /// `metadata()` failed or misbehaved.
    #[error("calling metadata() failed: {0}")]
    Metadata(String),
    /// The plugin calls itself something other than the ID it is loaded under.
    #[error(
        "metadata().id is {found:?}, but the plugin is being loaded as {expected:?}; the ID in metadata() must equal the algorithm ID"
    )]
    IdMismatch {
        /// The ID it is loaded under.
        expected: String,
        /// The ID its metadata reports.
        found: String,
    },
    /// The ID is not usable as an algorithm ID.
    #[error(
        "{0:?} is not a valid algorithm ID: use 1 to 64 characters of a-z, 0-9 and _ starting with a letter (e.g. rise_dds_v5)"
    )]
    InvalidId(String),
    /// `metadata().version` is not semver.
    #[error("metadata().version {version:?} is not a semver version (e.g. 1.2.0): {reason}")]
    InvalidVersion {
        /// What the plugin reported.
        version: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A newer or equal version of the ID is already loaded.
    #[error("{id} is already loaded at version {loaded}; refusing to replace it with {offered}, which is not newer")]
    NotNewer {
        /// The algorithm ID.
        id: String,
        /// The version loaded now.
        loaded: Version,
        /// The version offered.
        offered: Version,
    },
    /// A limit override is beyond what the engine was configured to allow.
    #[error("limit override out of range: {0}")]
    Limits(String),
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Errors of the engine as a whole (set-up, unknown algorithms).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime rejected the engine configuration.
    #[error("cannot configure wasmtime: {0}")]
    Config(String),
    /// No algorithm is loaded under that ID.
    #[error("no algorithm {0:?} is loaded")]
    UnknownAlgorithm(String),
}
