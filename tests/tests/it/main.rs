//! The end-to-end tests, one binary: every module links the whole host, so
//! one test executable instead of seven keeps build time and disk use down.

mod architecture;
mod bundles;
mod check;
mod cli;
mod clusters;
mod corpus;
mod differential;
mod dumps;
mod expressions;
mod fuzz_corpus;
mod hostile;
mod html;
mod live;
mod logs;
mod lsp;
mod mcp;
mod metrics;
mod oci;
mod packs;
mod pipeline;
mod report;
mod rust_plugin;
mod sandbox;
mod silence;
mod workload;
