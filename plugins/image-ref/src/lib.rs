//! A k8srule plugin: says exactly what is wrong with an image reference the
//! kubelet cannot parse (InvalidImageName): an uppercase repository, two
//! tags, a bad digest, a port that is not a number, and the rest of the
//! distribution reference grammar ([`reference`]). It reports containers
//! waiting with reason InvalidImageName, and any container whose image does
//! not parse. Build, pack and run it:
//!
//! ```sh
//! cd plugins/image-ref && cargo build --release --target wasm32-unknown-unknown && cd ../..
//! k8srule pack test plugins/image-ref
//! k8srule pack build plugins/image-ref -o image-ref-0.1.0.wasm
//! k8srule diagnose -f cluster.json --rules image-ref-0.1.0.wasm
//! ```

// The generated canonical ABI glue for `evaluate` takes the flattened batch.
#![allow(clippy::too_many_arguments)]

pub mod reference;

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use exports::k8srule::plugin::rule_pack::*;

struct Plugin;

/// A text in English only.
fn text(en: &str) -> Text {
    Text { translations: vec![Translation { lang: "en".to_string(), text: en.to_string() }] }
}

const TAG_STRING: u8 = 4;
/// String id of literal 0, `InvalidImageName`.
const INVALID_IMAGE_NAME: i64 = 0;

/// Inputs, in the order `describe` declares them.
const NAME: usize = 0;
const IMAGE: usize = 1;
const REASON: usize = 2;
const MESSAGE: usize = 3;
const POD: usize = 4;
const NAMESPACE: usize = 5;

impl Guest for Plugin {
    fn describe() -> PluginInfo {
        // what is only shown in findings the host reads for those findings alone
        let input = |collection, path: &str, shown_only| Input {
            collection,
            path: path.into(),
            derive: Derive::Value,
            shown_only,
        };
        PluginInfo {
            name: "image-ref".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: "images.invalid-reference".into(),
                cause: "state.InvalidImageName".into(),
                severity: Severity::Error,
                confidence: 1.0,
                scope: Scope::Container,
                title: text("container {0} has an invalid image reference `{1}`: {2}"),
                detects: text(
                    "A container image that does not follow the distribution reference grammar, with what exactly is wrong: an uppercase repository, more than one tag, a bad digest, a port that is not a number, a URL scheme, whitespace, bad separators.",
                ),
                why: text(
                    "The kubelet parses `image:` before it pulls. A reference it cannot parse is never pulled: the container waits with reason InvalidImageName until the pod spec changes.",
                ),
                confirm: vec![text("kubectl get pod {6} -n {7} -o jsonpath='{{.spec.containers[*].image}}'")],
                fix: vec![
                    text("{3}"),
                    text(
                        "Change the image in the workload that owns the pod (Deployment, StatefulSet, Job); the pod is recreated with it.",
                    ),
                ],
                evidence: vec![text("image: {1}"), text("state.waiting: reason={4} message={5}")],
                explains: vec![
                    "state.ContainersNotReady".into(),
                    "state.ContainersNotInitialized".into(),
                    "state.PodInitializing".into(),
                ],
                references: vec![
                    "https://kubernetes.io/docs/concepts/containers/images/#image-names".into(),
                    "https://github.com/distribution/reference/blob/main/reference.go".into(),
                ],
                arguments: [
                    "c.name",
                    "c.image",
                    "what is wrong",
                    "how to write it",
                    "c.state.waiting.reason",
                    "c.state.waiting.message",
                    "pod.metadata.name",
                    "pod.metadata.namespace",
                ]
                .map(String::from)
                .to_vec(),
            }],
            collections: vec![Collection { parent: None, path: "containers".into() }],
            inputs: vec![
                input(Some(0), "name", true),
                input(Some(0), "image", false),
                input(Some(0), "state.waiting.reason", false),
                input(Some(0), "state.waiting.message", true),
                input(None, "pod.metadata.name", true),
                input(None, "pod.metadata.namespace", true),
            ],
            literals: vec!["InvalidImageName".into()],
        }
    }

    fn evaluate(batch: Batch) -> Vec<Finding> {
        let (Some(offsets), true) = (batch.collections.first(), batch.columns.len() == 6) else {
            return Vec::new();
        };
        let column = |i: usize, row: usize| {
            let c = &batch.columns[i];
            (c.tags[row], c.values[row])
        };
        let string = |i: usize, row: usize| match column(i, row) {
            (TAG_STRING, id) => {
                let id = id as usize;
                let bytes = &batch.strings[batch.string_offsets[id] as usize..batch.string_offsets[id + 1] as usize];
                Some((id as u32, String::from_utf8_lossy(bytes)))
            }
            _ => None,
        };
        let value = |i: usize, row: usize| match string(i, row) {
            Some((id, _)) => Value::Interned(id),
            None => Value::Null,
        };
        let shown = |input: usize, row: usize| Value::Input(InputRow { input: input as u32, row: row as u32 });
        let mut findings = Vec::new();
        for case in 0..batch.cases as usize {
            let (start, end) = (offsets[case] as usize, offsets[case + 1] as usize);
            for row in start..end {
                let waiting_invalid = column(REASON, row) == (TAG_STRING, INVALID_IMAGE_NAME);
                let image = string(IMAGE, row);
                let problem = match reference::check(image.as_ref().map_or("", |(_, s)| &**s)) {
                    Err(p) => p,
                    Ok(()) if waiting_invalid => reference::Problem {
                        what: "the kubelet could not parse it (see its message)".into(),
                        fix: "Compare the image with the kubelet's message and the registry's name for it.".into(),
                    },
                    Ok(()) => continue,
                };
                if image.is_none() && !waiting_invalid {
                    // no image at all (an incomplete snapshot): nothing to say
                    continue;
                }
                findings.push(Finding {
                    case: case as u32,
                    rule: 0,
                    container: Some((row - start) as u32),
                    args: vec![
                        shown(NAME, row),
                        value(IMAGE, row),
                        Value::Text(problem.what),
                        Value::Text(problem.fix),
                        value(REASON, row),
                        shown(MESSAGE, row),
                        shown(POD, case),
                        shown(NAMESPACE, case),
                    ],
                });
            }
        }
        findings
    }
}

export!(Plugin);
