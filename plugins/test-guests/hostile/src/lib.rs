//! A guest that misbehaves on request, for the engine's sandbox tests and the
//! per-run overhead benchmark. The config's `mode` picks the behaviour. The ID
//! is always `hostile_v1`; the version is the crate's, so `hostile_next` (this
//! source at a newer version) can replace it.

wit_bindgen::generate!({ path: "../../../wit", world: "gensail:algorithm/algorithm" });

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
            other => Err(AlgorithmError::InvalidConfig(format!("unknown mode {other}"))),
        }
    }
}

export!(Hostile);
