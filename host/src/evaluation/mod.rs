//! Evaluation: each pod made a case (its containers, events, node, owners and
//! logs), the cases of a batch projected into the columns a pack reads, and
//! the packs run over them in the wasmtime sandbox behind the WIT contract.

pub mod cache;
pub mod case;
pub mod contract;
pub mod projection;
pub mod sandbox;
pub mod template;
