//! A guest that misbehaves on request, for the engine's sandbox tests and the
//! per-run overhead benchmark. The config's `mode` picks the behaviour. The ID
//! is always `hostile_v1`; the version is the crate's, so `hostile_next` (this
//! source at a newer version) can replace it.

wit_bindgen::generate!({ path: "../../../wit", world: "gensail:algorithm/algorithm" });

/// Direct bindings to the WASI clocks and random sources.
mod probe {
    wit_bindgen::generate!({ path: "../hostile/wit-probe", world: "gensail:probe/probe", generate_all });
}

use exports::gensail::algorithm::plugin::{AlgorithmError, AlgorithmMetadata, Guest, Transcript};
use gensail::algorithm::host::{LogLevel, log};

struct Hostile;

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, acc: &mut [u64; 64]) -> u64 {
    acc[(depth % 64) as usize] = depth;
    // The data dependency and the non-tail call keep the compiler from turning this into a loop.
    1 + recurse(depth + 1, acc) + acc[(depth * 7 % 64) as usize]
}

impl Guest for Hostile {
    fn metadata() -> AlgorithmMetadata {
        // The `hostile_metadata` build describes itself with 50 MB, and reads
        // the clock and randomness while doing so.
        if cfg!(feature = "huge-metadata") {
            let noise = probe::wasi::random::random::get_random_u64()
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()));
            return AlgorithmMetadata {
                id: "hostile_metadata_v1".into(),
                version: format!("1.0.{}", noise % 2),
                description: "d".repeat(50 << 20),
                config_schema: None,
                output_schema: Some(format!("{{\"description\": \"{}\"}}", "s".repeat(1 << 20))),
            };
        }
        AlgorithmMetadata {
            id: "hostile_v1".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Misbehaves on request (test only).".into(),
            config_schema: None,
            output_schema: None,
        }
    }

    fn run(transcript: Transcript, config_json: String) -> Result<String, AlgorithmError> {
        let config: serde_json::Value = serde_json::from_str(&config_json).unwrap_or_default();
        let mode = config["mode"].as_str().unwrap_or("noop");
        match mode {
            "noop" => Ok("{}".into()),
            "echo" => Ok(serde_json::json!({
                "segments": transcript.segments.len(),
                "words": transcript.segments.iter().map(|s| s.text.split_whitespace().count()).sum::<usize>(),
            })
            .to_string()),
            // Output that names the version, so two versions' outputs differ.
            "version" => Ok(serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "segments": transcript.segments.len(),
            })
            .to_string()),
            // A regression: 0.1.x succeeds, every later version fails.
            "new_versions_fail" => match env!("CARGO_PKG_VERSION").starts_with("0.1.") {
                true => Ok("{\"ok\":true}".into()),
                false => Err(AlgorithmError::Failed(format!(
                    "version {} regressed",
                    env!("CARGO_PKG_VERSION")
                ))),
            },
            "busy" => {
                // Bounded work, for runs that must still be in flight a little while.
                let iterations = config["iterations"].as_u64().unwrap_or(1_000_000);
                let mut x: u64 = 0;
                for i in 0..iterations {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                Ok(serde_json::json!({"x": x % 1000}).to_string())
            }
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok("{}".into())
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recursion" => {
                let mut acc = [0u64; 64];
                Ok(recurse(0, &mut acc).to_string())
            }
            "panic" => panic!("hostile guest panicked on purpose"),
            "huge_output" => Ok(format!("\"{}\"", "x".repeat(8 << 20))),
            "invalid_json" => Ok("this is { not json".into()),
            "error" => Err(AlgorithmError::Failed("the hostile guest refuses".into())),
            "log_flood" => {
                for i in 0..20_000 {
                    log(
                        LogLevel::Info,
                        &format!("flood line {i}"),
                        &[("i".into(), i.to_string())],
                    );
                    eprintln!("stderr flood line {i}");
                }
                Ok("{\"flooded\":true}".into())
            }
            "stdio" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                log(LogLevel::Warn, "structured line", &[("key".into(), "value".into())]);
                Ok("{}".into())
            }
            "escape" => {
                // Everything an escaping guest would try; the host must deny all of it.
                let env = std::env::vars().count();
                let args = std::env::args().count();
                let fs = std::fs::read_dir("/")
                    .map(|d| d.count().to_string())
                    .unwrap_or_else(|e| format!("error: {e}"));
                let file = std::fs::read_to_string("/etc/passwd")
                    .map(|_| "read".to_owned())
                    .unwrap_or_else(|e| format!("error: {e}"));
                let net = std::net::TcpStream::connect("127.0.0.1:80")
                    .map(|_| "connected".to_owned())
                    .unwrap_or_else(|e| format!("error: {e}"));
                Ok(serde_json::json!({"env": env, "args": args, "fs": fs, "file": file, "net": net}).to_string())
            }
            // Every clock and random source, read twice: the host must answer
            // the same on every run with the same inputs.
            "clocks_and_random" => {
                use probe::wasi::clocks::{monotonic_clock, wall_clock};
                use probe::wasi::random::{insecure, insecure_seed, random};
                let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
                let mut reads = Vec::new();
                for _ in 0..2 {
                    let wall = wall_clock::now();
                    let seed = insecure_seed::insecure_seed();
                    reads.push(serde_json::json!({
                        "wall": [wall.seconds, wall.nanoseconds],
                        "std_wall": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
                        "monotonic": monotonic_clock::now(),
                        "std_elapsed": std::time::Instant::now().elapsed().as_nanos() as u64,
                        "random": hex(random::get_random_bytes(32)),
                        "random_u64": random::get_random_u64(),
                        "insecure": hex(insecure::get_insecure_random_bytes(32)),
                        "insecure_u64": insecure::get_insecure_random_u64(),
                        "insecure_seed": [seed.0, seed.1],
                        "hash_map_keys": format!("{:?}", std::collections::hash_map::RandomState::new()),
                    }));
                }
                Ok(serde_json::Value::Array(reads).to_string())
            }
            "random_bomb" => loop {
                std::hint::black_box(probe::wasi::random::insecure::get_insecure_random_bytes(64 << 20));
            },
            "huge_error" => Err(AlgorithmError::Failed("e".repeat(100 << 20))),
            "log_bomb" => {
                let fields: Vec<(String, String)> =
                    (0..10_000).map(|i| (format!("k{i}"), "v".repeat(1 << 10))).collect();
                log(LogLevel::Error, &format!("nul\0byte {}", "m".repeat(50 << 20)), &fields);
                log(LogLevel::Info, "second line\0", &[]);
                Ok("{}".into())
            }
            "stderr_flood" => {
                use std::io::Write;
                let chunk = vec![b'x'; 32 << 20];
                for _ in 0..3 {
                    let _ = std::io::stderr().write_all(&chunk);
                }
                Ok("{}".into())
            }
            // One 100 MB write straight to the stream, ignoring check-write.
            "stderr_one_write" => {
                let stderr = probe::wasi::cli::stderr::get_stderr();
                let chunk = vec![b'x'; 100 << 20];
                let _ = stderr.write(&chunk);
                let _ = stderr.write(&chunk);
                Ok("{}".into())
            }
            // A stream handle the guest never had.
            "invalid_handle" => {
                // SAFETY: deliberately a handle that does not exist; the host must refuse it.
                #[allow(unsafe_code)]
                let forged = unsafe { probe::wasi::io::streams::OutputStream::from_handle(0x0dead) };
                let _ = forged.write(b"forged");
                Ok("{}".into())
            }
            // Output bytes that are not UTF-8, where the contract says string.
            "invalid_utf8" => {
                // SAFETY: deliberately not UTF-8; the host must refuse it, not trust it.
                #[allow(unsafe_code)]
                let bad = unsafe { String::from_utf8_unchecked(vec![b'"', 0xff, 0xfe, b'"']) };
                Ok(bad)
            }
            // Pollables never dropped, until the host's handle table is full.
            "handle_exhaustion" => {
                let mut held = Vec::new();
                loop {
                    held.push(probe::wasi::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
                    std::hint::black_box(&held);
                }
            }
            other => Err(AlgorithmError::InvalidConfig(format!("unknown mode {other}"))),
        }
    }
}

export!(Hostile);
