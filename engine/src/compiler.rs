//! Compiling a component, in this process or — when the engine is given a
//! [`CompilerProcess`] — in a short-lived child process that the operating
//! system holds to a memory and CPU bound and the parent kills at a wall-clock
//! deadline. A compile bomb then costs one child its life, never the service
//! its memory.
//!
//! The child is the `gensail` binary's `compile-component` command, which
//! calls [`compile_in_this_process_for_parent`]: it lowers its own limits
//! (`RLIMIT_AS`, `RLIMIT_CPU`), compiles with the same wasmtime settings as
//! the parent but on-demand allocation (the pooling allocator reserves
//! hundreds of GB of address space, which `RLIMIT_AS` would refuse), and
//! writes the serialized component for the parent to load.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::component::Component;

/// How a child compile is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerProcess {
    /// The `gensail` binary: its `compile-component` command compiles.
    pub program: PathBuf,
    /// Killed after this long.
    pub wall_time: Duration,
    /// Its address space (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Its CPU time (`RLIMIT_CPU`), all threads together.
    pub cpu_seconds: u64,
}

impl CompilerProcess {
    /// A compiler process with the default bounds: 60 s wall time, 4 GiB of
    /// address space, 120 s of CPU (compiling uses every core). A real plugin
    /// compiles in well under a second and 200 MB.
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            wall_time: Duration::from_secs(60),
            memory_bytes: 4 << 30,
            cpu_seconds: 120,
        }
    }
}

/// Compiles `bytes` for `engine`, in a child when `compiler` is given.
pub(crate) fn compile(
    engine: &wasmtime::Engine,
    compiler: Option<&CompilerProcess>,
    bytes: &[u8],
) -> wasmtime::Result<Component> {
    match compiler {
        None => Component::new(engine, bytes),
        Some(compiler) => compile_in_child(engine, compiler, bytes),
    }
}

fn compile_in_child(
    engine: &wasmtime::Engine,
    compiler: &CompilerProcess,
    bytes: &[u8],
) -> wasmtime::Result<Component> {
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("component.wasm"), dir.path().join("component.cwasm"));
    std::fs::write(&input, bytes)?;
    let mut child = Command::new(&compiler.program)
        .arg("compile-component")
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--memory-bytes")
        .arg(compiler.memory_bytes.to_string())
        .arg("--cpu-seconds")
        .arg(compiler.cpu_seconds.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| wasmtime::format_err!("cannot start the compiler process {}: {e}", compiler.program.display()))?;
    let deadline = Instant::now() + compiler.wall_time;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            wasmtime::bail!(
                "compiling took longer than {} s, this server's limit; the component is too large or too complex",
                compiler.wall_time.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !status.success() {
        let mut said = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.by_ref().take(4096).read_to_string(&mut said);
        }
        wasmtime::bail!(
            "the compiler process failed ({status}) within its bounds of {} bytes of memory and {} s of CPU: {}",
            compiler.memory_bytes,
            compiler.cpu_seconds,
            crate::guest::clip(said.trim(), 1024)
        );
    }
    crate::cache::deserialize(engine, &output)
}

/// The child's side (`gensail compile-component`): lowers its own limits,
/// compiles `input` and writes the serialized component to `output`.
pub fn compile_in_this_process_for_parent(
    input: &Path,
    output: &Path,
    memory_bytes: u64,
    cpu_seconds: u64,
) -> anyhow::Result<()> {
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)?;
    rlimit::setrlimit(rlimit::Resource::CPU, cpu_seconds, cpu_seconds)?;
    let bytes = std::fs::read(input)?;
    let engine = wasmtime::Engine::new(&crate::engine::compile_config())
        .map_err(|e| anyhow::anyhow!("cannot configure wasmtime: {e:#}"))?;
    let compiled = engine
        .precompile_component(&bytes)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    std::fs::write(output, compiled)?;
    Ok(())
}
