//! `colmena-central-failpoints`: `colmena-central` itself (its `main.rs`, compiled as a module), for
//! builds with `--features failpoints` only; see `tests/failpoints.rs` (its own test binary).
#[path = "../main.rs"]
mod program;

fn main() -> std::process::ExitCode {
    program::main()
}
