//! A core module to a component of the `k8srule:plugin/rule-pack` world.

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// The WIT contract, as the host and every plugin see it.
pub const WIT: &str = include_str!("../../wit/plugin.wit");

/// The interface every pack exports, with its version.
pub const INTERFACE: &str = "k8srule:plugin/rule-pack@0.4.0";

/// Wraps a core module that exports `describe`, `evaluate`, `memory` and
/// `cabi_realloc` into a component.
pub fn componentize(mut module: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("plugin.wit", WIT).map_err(|e| format!("the WIT contract does not parse: {e}"))?;
    let world = resolve.select_world(&[pkg], Some("plugin")).map_err(|e| e.to_string())?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).map_err(|e| e.to_string())?;
    wrap_module(&module)
}

/// Wraps a core module that already carries its world (as wit-bindgen
/// guests built for `wasm32-unknown-unknown` do) into a component.
pub fn wrap_module(module: &[u8]) -> Result<Vec<u8>, String> {
    ComponentEncoder::default()
        .module(module)
        .and_then(|enc| enc.validate(true).encode())
        .map_err(|e| format!("cannot build the component: {e:#}"))
}
