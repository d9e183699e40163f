//! The bodies of the fuzz targets in `fuzz/`: plain functions, so that the
//! saved corpus (`fuzz/corpus/<target>/`) replays through them on stable as
//! ordinary tests (`tests/tests/it/fuzz_corpus.rs`). Any input is fine; a
//! panic here is a bug found: a panic in the code under test, or a property
//! that does not hold.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use k8srule_host::Diagnoser;
use k8srule_host::test_support::packs::{self, Manifest};

mod rules;
pub use rules::rules;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory of its corpus) and its body.
pub const TARGETS: [(&str, Target); 5] =
    [("rules", rules), ("snapshot", snapshot), ("fixture", fixture), ("manifest", manifest), ("doc", doc)];

/// 2024-05-01T12:00:00Z, the time every snapshot is diagnosed at.
const NOW: i64 = 1_714_564_800;

/// The built-in rules, loaded once per process, diagnosing on one thread.
fn builtin() -> &'static Diagnoser {
    static DIAGNOSER: OnceLock<Diagnoser> = OnceLock::new();
    DIAGNOSER.get_or_init(|| Diagnoser::builder().threads(1).build().expect("the built-in rules load"))
}

/// A directory for the files a target must write, one per process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory")).path()
}

/// A snapshot file (JSON, a `List`, YAML, several YAML documents) loaded as
/// `diagnose -f` loads it, then diagnosed by the built-in rules: an error
/// names the file, and no pack fails on the data.
pub fn snapshot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let diagnoser = builtin();
    let mut snapshot = diagnoser.snapshot(NOW);
    if let Err(e) = snapshot.add_text("fuzz.yaml", text) {
        assert!(e.to_string().starts_with("fuzz.yaml"), "{e}");
        return;
    }
    let report = diagnoser.diagnose(&snapshot);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// A `.test.yaml` rule fixture, run against the built-in rules: an error
/// names the file, and no pack fails on the data.
pub fn fixture(data: &[u8]) {
    let path = scratch().join("fuzz.test.yaml");
    std::fs::write(&path, data).expect("writes the fixture");
    match k8srule_host::test_support::fixture::run_fixture_with(&path, builtin()) {
        Ok(outcome) => assert!(outcome.errors.is_empty(), "{:?}", outcome.errors),
        Err(e) => assert!(e.to_string().contains(&path.display().to_string()), "{e}"),
    }
}

/// A pack manifest, as `pack.yaml` and as the custom sections of a pack
/// file: errors name the file; a manifest that reads is carried unchanged
/// by the custom section `pack build` writes.
pub fn manifest(data: &[u8]) {
    let path = PathBuf::from("fuzz.wasm");
    for result in [
        packs::manifest::embedded_manifest(data, &path).map(drop),
        packs::manifest::embedded_sources(data, &path).map(drop),
    ] {
        if let Err(e) = result {
            assert!(e.to_string().contains("fuzz.wasm"), "{e}");
        }
    }
    let dir = scratch();
    std::fs::write(dir.join("pack.yaml"), data).expect("writes pack.yaml");
    match Manifest::read(dir) {
        Ok(manifest) => {
            let mut component = b"\0asm\x0d\0\x01\0".to_vec();
            packs::manifest::embed(&mut component, &manifest, None);
            let carried = packs::manifest::embedded_manifest(&component, &path).expect("the embedded manifest reads");
            assert_eq!(carried, Some(manifest));
        }
        Err(e) => assert!(e.to_string().contains("pack.yaml"), "{e}"),
    }
}

/// A JSON document in the doc store, added from a parsed value and read
/// from the text directly: both read back as the value serde_json parses.
pub fn doc(data: &[u8]) {
    use serde::de::DeserializeSeed as _;
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let all = k8srule_host::test_support::fields::Fields::All;
    let mut store = k8srule_host::test_support::tree::Arena::default();
    let node = store.add_value(&value, &all);
    assert_eq!(store.get(node).to_value(), value);
    assert_eq!(serde_json::to_value(store.get(node)).expect("serializes"), value);
    let mut de = serde_json::Deserializer::from_slice(data);
    let streamed = all.document(&mut store).deserialize(&mut de).expect("the text parsed as a value");
    assert_eq!(store.get(streamed).to_value(), value);
}
