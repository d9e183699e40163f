#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| k8srule_tests::fuzz::snapshot(data));
