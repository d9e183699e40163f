//! Helpers for the end-to-end tests in `tests/tests/`.

// Test helpers: a failure here is a test failure.
#![allow(clippy::expect_used)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the `k8srule` command line in-process: exit code, stdout, stderr.
pub fn k8srule(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("k8srule").chain(args.iter().copied());
    let code = k8srule_host::cli::run(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// A component from WebAssembly text of a core module exporting `describe`,
/// `evaluate`, `memory` and `cabi_realloc`.
pub fn component_from_wat(wat: &str) -> Vec<u8> {
    let module = wat::parse_str(wat).expect("valid wat");
    k8srule_dsl::component::componentize(module).expect("componentizes")
}
