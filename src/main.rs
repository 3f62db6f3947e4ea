//! The `gensail` command; everything it does lives in the library.

fn main() -> std::process::ExitCode {
    gensail::cli::main()
}
