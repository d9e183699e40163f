//! The library: rule source -> parse -> compile -> validate -> run -> finding.

use k8srule_dsl::SourceFile;
use k8srule_host::{Diagnoser, Snapshot};

const RULE: &str = r#"
table signal {
  9: "SIGKILL"
  11: "SIGSEGV"
}

rule demo.signal {
  cause "signal.{signal[code - 128]}"
  severity warning
  confidence 0.8
  for c in containers
  let code = c.lastState.terminated.exitCode
  let backoff = first(e in c.events: e.reason == "BackOff")
  when code > 128 and code < 160 and not (c.lastState.terminated.reason in ["OOMKilled"])
  title "container {c.name} was killed by {signal[code - 128]} (exit code {code})"
  evidence "event: {backoff.message}"
}

rule demo.old-kubelet {
  cause "kubelet-old"
  severity info
  when version(node.status.nodeInfo.kubeletVersion) in 1.10 .. 1.11 and count(e in events: e.type == "Warning") >= 2
  title "old kubelet {node.status.nodeInfo.kubeletVersion}"
}

rule demo.age {
  cause "stuck-terminating"
  severity error
  when has(pod.metadata.deletionTimestamp) and age(pod.metadata.deletionTimestamp) > 5m and pod.metadata.name startsWith "stuck"
  title "deleted {age(pod.metadata.deletionTimestamp) / 60} minutes ago"
}
"#;

const SNAPSHOT: &str = r#"
apiVersion: v1
kind: List
items:
- kind: Pod
  metadata: {name: crash, namespace: ns, uid: u1}
  spec: {nodeName: n1, containers: [{name: a}, {name: b}, {name: c}]}
  status:
    containerStatuses:
    - {name: a, lastState: {terminated: {exitCode: 139, reason: Error}}}
    - {name: b, lastState: {terminated: {exitCode: 137, reason: OOMKilled}}}
    - {name: c, lastState: {terminated: {exitCode: 137, reason: Error}}}
- kind: Pod
  metadata: {name: stuck-1, namespace: ns, uid: u2, deletionTimestamp: "2024-05-01T11:50:00Z"}
  spec: {nodeName: n1, containers: [{name: a}]}
- kind: Pod
  metadata: {name: stuck-2, namespace: ns, uid: u3, deletionTimestamp: "2024-05-01T11:58:00Z"}
  spec: {nodeName: n2, containers: [{name: a}]}
- kind: Event
  involvedObject: {kind: Pod, uid: u1, name: crash, namespace: ns, fieldPath: "spec.containers{a}"}
  reason: BackOff
  type: Warning
  message: Back-off restarting failed container a
- kind: Event
  involvedObject: {kind: Pod, uid: u1, name: crash, namespace: ns}
  reason: Unhealthy
  type: Warning
  message: probe failed
- kind: Node
  metadata: {name: n1}
  status: {nodeInfo: {kubeletVersion: v1.10.7}}
- kind: Node
  metadata: {name: n2}
  status: {nodeInfo: {kubeletVersion: v1.12.0}}
"#;

#[test]
fn compiled_rules_are_valid_components_and_diagnose() {
    let wasm = k8srule_dsl::compile(&[SourceFile::new("demo.k8srule", RULE)], "demo", "1.0.0").unwrap();
    wasmparser::Validator::new().validate_all(&wasm).unwrap();

    let d = Diagnoser::builder().builtin(false).pack_bytes("demo", wasm).build().unwrap();
    let now = k8srule_host::test_support::snapshot::parse_time("2024-05-01T12:00:00Z").unwrap();
    let mut s = Snapshot::new(now);
    s.add_text("snap.yaml", SNAPSHOT).unwrap();
    let report = d.diagnose(&s);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    type Row = (String, String, Option<String>, String, Vec<String>);
    let got: Vec<Row> = report
        .findings
        .iter()
        .map(|f| (f.rule.clone(), f.cause.clone(), f.container.clone(), f.title.clone(), f.evidence.clone()))
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        vec![
            (
                s("demo.signal"),
                s("signal.SIGSEGV"),
                Some(s("a")),
                s("container a was killed by SIGSEGV (exit code 139)"),
                vec![s("event: Back-off restarting failed container a")]
            ),
            (
                s("demo.signal"),
                s("signal.SIGKILL"),
                Some(s("c")),
                s("container c was killed by SIGKILL (exit code 137)"),
                vec![]
            ),
            (s("demo.old-kubelet"), s("kubelet-old"), None, s("old kubelet v1.10.7"), vec![]),
            (s("demo.age"), s("stuck-terminating"), None, s("deleted 10 minutes ago"), vec![]),
        ]
    );
}

/// `diagnose -f` parses only the fields the packs read: the report is the
/// one the whole objects give, and what is dropped is really gone.
#[test]
fn parsing_only_the_fields_rules_read_changes_no_finding() {
    let d = Diagnoser::builder().build().unwrap();
    let file = k8srule_tests::root().join("examples/snapshots/mixed.json");
    let mut whole = Snapshot::new(1_714_564_800);
    whole.add_path(&file).unwrap();
    let mut kept = d.snapshot(1_714_564_800);
    kept.add_path(&file).unwrap();
    let json = |s: &Snapshot| serde_json::to_string_pretty(&d.diagnose(s)).unwrap();
    assert!(!d.diagnose(&whole).findings.is_empty());
    assert_eq!(json(&kept), json(&whole));
    // what a snapshot holds, as its bundle writes it
    let size = |s: &Snapshot| {
        let dir = tempfile::tempdir().unwrap();
        s.write_bundle(dir.path()).unwrap();
        let files = walk(dir.path());
        files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum::<u64>()
    };
    assert!(size(&kept) < size(&whole), "{} of {} bytes kept", size(&kept), size(&whole));
}

/// Pods are diagnosed in parts on several threads; the report is the one a
/// single thread gives, a failing pack's one error included.
#[test]
fn threads_give_the_report_of_one_thread() {
    let text = std::fs::read_to_string(k8srule_tests::root().join("examples/snapshots/mixed.json")).unwrap();
    // 150 copies of the cluster (3,000 pods), renamed so each pod and its events stay apart
    let mut snapshot = Snapshot::new(1_714_564_800);
    for copy in 0..150 {
        let renamed = text
            .replace("\"uid\": \"", &format!("\"uid\": \"{copy}-"))
            .replace("\"namespace\": \"", &format!("\"namespace\": \"c{copy}-"));
        snapshot.add_text(&format!("copy-{copy}.json"), &renamed).unwrap();
    }
    assert_eq!(snapshot.pod_count(), 3_000);
    let trapping = k8srule_tests::component_from_wat(&k8srule_tests::hostile_wat("unreachable", 2));
    let report = |threads| {
        let d = Diagnoser::builder().threads(threads).pack_bytes("trapping", trapping.clone()).build().unwrap();
        d.diagnose(&snapshot)
    };
    let one = report(1);
    assert_eq!((one.summary.pods, one.summary.unhealthy), (3_000, 150 * 16));
    assert_eq!(one.errors.len(), 1, "{:?}", one.errors);
    let json = |r: &k8srule_host::Report| serde_json::to_string_pretty(r).unwrap();
    assert_eq!(json(&report(3)), json(&one));
}

/// The files under `dir`, at any depth.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}
