//! A plugin written in Rust with wit-bindgen implements the same contract and
//! is loaded exactly like a compiled `.k8srule` pack.

use std::process::Command;

use k8srule_host::{Diagnoser, Snapshot};
use k8srule_tests::root;

#[test]
fn rust_guest_built_with_wit_bindgen_runs_in_the_host() {
    let dir = root().join("examples/rust-plugin");
    let target = root().join("target/guests");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--target", "wasm32-unknown-unknown"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the example plugin builds (needs `rustup target add wasm32-unknown-unknown`)");
    let module = std::fs::read(target.join("wasm32-unknown-unknown/release/image_latest.wasm")).unwrap();
    assert!(wasmparser::Parser::is_core_wasm(&module));

    let d = Diagnoser::builder().builtin(false).pack_bytes("image-latest", module).build().unwrap();
    let mut s = Snapshot::new(0);
    s.add_text(
        "pods.yaml",
        "kind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n  containers:\n  - {name: pinned, image: 'nginx:1.25'}\n  - {name: floating, image: 'registry:5000/team/nginx'}\n  - {name: latest, image: 'nginx:latest'}\n  - {name: digest, image: 'nginx@sha256:0123'}\n",
    )
    .unwrap();
    let report = d.diagnose(&s);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let titles: Vec<&str> = report.findings.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "container floating runs image registry:5000/team/nginx, whose tag is not pinned",
            "container latest runs image nginx:latest, whose tag is not pinned"
        ]
    );
}

#[test]
fn the_repository_s_rust_plugins_declare_the_contract_they_are_built_against() {
    // `k8srule pack build DIR` checks `pack.yaml` against this k8srule
    for dir in ["examples/rust-plugin", "plugins/image-ref"] {
        let dir = root().join(dir);
        let checked = k8srule_host::test_support::packs::manifest::Manifest::read(&dir).and_then(|m| m.check(&dir));
        assert!(checked.is_ok(), "{}: {}", dir.display(), checked.unwrap_err());
    }
}
