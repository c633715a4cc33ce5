//! A client can depend on `colmena-wire` without the server stack.
//!
//! Asks cargo for the crate's normal (non-dev, non-build) dependency tree and fails if any
//! package of the server stack is in it: an HTTP server, an async runtime, SQLite or the
//! metrics library. A `use` of one of them in the wire types would need the dependency, so
//! this also keeps server code out of `src/`.
use std::process::Command;

/// Package-name prefixes a POS integrator must not have to compile.
const FORBIDDEN: &[&str] = &["actix", "rusqlite", "libsqlite3", "tokio", "prometheus"];

#[test]
fn the_wire_crate_pulls_in_no_server_stack() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    // `--offline`: the lock file already pins everything, and the test must not need a network.
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--manifest-path", manifest])
        .args(["-p", "colmena-wire", "-e", "normal", "--prefix", "none"])
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first line is the crate itself: an empty or wrong tree would pass vacuously.
    assert!(
        stdout.starts_with("colmena-wire "),
        "unexpected cargo tree output:\n{stdout}"
    );
    let offending: Vec<&str> = stdout
        .lines()
        .filter(|line| FORBIDDEN.iter().any(|p| line.starts_with(p)))
        .collect();
    assert!(
        offending.is_empty(),
        "colmena-wire depends on the server stack: {offending:?}\nfull tree:\n{stdout}"
    );
}
