//! Helpers for the end-to-end tests in `tests/tests/`.

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
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

/// A component from WebAssembly text of a core module exporting `describe`,
/// `evaluate`, `memory` and `cabi_realloc`.
pub fn component_from_wat(wat: &str) -> Vec<u8> {
    let module = wat::parse_str(wat).expect("valid wat");
    k8srule_dsl::component::componentize(module).expect("componentizes")
}

/// A core module in WebAssembly text that implements the contract's exports
/// with `evaluate_body` as the body of `evaluate`; its `describe` declares
/// nothing (an all-zero `plugin-info`). For hostile-pack tests.
pub fn hostile_wat(evaluate_body: &str, memory_pages: u32) -> String {
    let iface = k8srule_dsl::component::INTERFACE;
    format!(
        r#"(module
  (memory (export "memory") {memory_pages})
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1))) (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (block $ok (loop $grow
      (br_if $ok (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
      (br $grow)))
    (local.get $p))
  (func (export "{iface}#describe") (result i32) (i32.const 1024))
  (func $recurse (param i32) (result i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "{iface}#evaluate") (param i32 i64 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    {evaluate_body})
)"#
    )
}

/// A component of `world` in `wit` (which may add imports or change the
/// version) from a core module in WebAssembly text.
pub fn component_with_wit(wat: &str, wit: &[&str], world: &str) -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
    let mut module = wat::parse_str(wat).expect("valid wat");
    let mut resolve = wit_parser::Resolve::default();
    let mut last = None;
    for (i, text) in wit.iter().enumerate() {
        last = Some(resolve.push_str(format!("{i}.wit"), text).expect("valid wit"));
    }
    let world = resolve.select_world(&[last.expect("some wit")], Some(world)).expect("world exists");
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embeds");
    ComponentEncoder::default().module(&module).expect("module").validate(true).encode().expect("encodes")
}
