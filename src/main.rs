//! The `tessera` command; everything it does lives in the library (`tessera::cli`).
fn main() -> std::process::ExitCode {
    tessera::cli::main()
}
