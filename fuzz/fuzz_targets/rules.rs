#![no_main]

// the language alone: this target builds without the host
#[path = "../../tests/src/fuzz/rules.rs"]
mod rules;

libfuzzer_sys::fuzz_target!(|data: &[u8]| rules::rules(data));
