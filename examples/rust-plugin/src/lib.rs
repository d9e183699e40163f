//! A k8srule plugin written in Rust: it flags containers whose image is not
//! pinned (no tag, or `latest`, and no digest), so a restart may run other code.
//!
//! Copy this crate to start a plugin of your own: `describe` declares the rules
//! and the values the plugin reads; `evaluate` gets those values for many pods
//! at once and returns findings. Build and run it:
//!
//! ```sh
//! cd examples/rust-plugin && cargo build --release --target wasm32-unknown-unknown && cd ../..
//! k8srule diagnose -f examples/snapshots/crashloop.json \
//!     --rules examples/rust-plugin/target/wasm32-unknown-unknown/release/image_latest.wasm
//! ```

// The generated canonical ABI glue for `evaluate` takes the flattened batch.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use exports::k8srule::plugin::rule_pack::*;

struct Plugin;

/// A text in English only.
fn text(en: &str) -> Text {
    Text { translations: vec![Translation { lang: "en".to_string(), text: en.to_string() }] }
}

const TAG_STRING: u8 = 4;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "image-latest".into(),
            version: "0.1.0".into(),
            rules: vec![RuleInfo {
                id: "images.unpinned-tag".into(),
                cause: "image-unpinned".into(),
                severity: Severity::Warning,
                confidence: 1.0,
                scope: Scope::Container,
                title: text("container {0} runs image {1}, whose tag is not pinned"),
                detects: text("A container image with no tag, or the tag `latest`, and no digest."),
                why: text(
                    "The tag can point to a new image at any time, so a restart or a new node may run different code.",
                ),
                confirm: vec![text("kubectl get pod -o jsonpath='{{.spec.containers[*].image}}'")],
                fix: vec![text("Pin the image to a version tag or a digest (`image@sha256:...`).")],
                evidence: vec![text("image: {1}")],
                explains: vec![],
                references: vec!["https://kubernetes.io/docs/concepts/containers/images/#image-names".into()],
                arguments: vec!["container".into(), "image".into()],
            }],
            collections: vec![Collection { parent: None, path: "containers".into() }],
            inputs: vec![
                // only shown in findings: the host reads it for those findings alone
                Input { collection: Some(0), path: "name".into(), derive: Derive::Value, shown_only: true },
                Input { collection: Some(0), path: "image".into(), derive: Derive::Value, shown_only: false },
            ],
            literals: vec![],
        }
    }

    fn evaluate(batch: Batch) -> Vec<Finding> {
        let (Some(offsets), [_names, images]) = (batch.collections.first(), batch.columns.as_slice()) else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        for case in 0..batch.cases as usize {
            let (start, end) = (offsets[case], offsets[case + 1]);
            for row in start as usize..end as usize {
                if images.tags[row] != TAG_STRING {
                    continue;
                }
                let id = images.values[row] as usize;
                let bytes = &batch.strings[batch.string_offsets[id] as usize..batch.string_offsets[id + 1] as usize];
                if !unpinned(&String::from_utf8_lossy(bytes)) {
                    continue;
                }
                findings.push(Finding {
                    case: case as u32,
                    rule: 0,
                    container: Some(row as u32 - start),
                    args: vec![Value::Input(InputRow { input: 0, row: row as u32 }), Value::Interned(id as u32)],
                });
            }
        }
        findings
    }
}

/// No digest, and no tag or the tag `latest`.
fn unpinned(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

export!(Plugin);
