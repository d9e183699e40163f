//! The end-to-end tests, one binary: every module links the whole host, so
//! one test executable instead of seven keeps build time and disk use down.

mod cli;
mod differential;
mod fuzz_corpus;
mod html;
mod live;
mod packs;
mod pipeline;
mod rust_plugin;
mod sandbox;
