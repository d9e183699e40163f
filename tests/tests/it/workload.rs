//! Rules with the workload scope (`for w in workloads`) next to pod and
//! container rules in one pack: each runs on its own kind of case only, a
//! snapshot loaded for diagnosis keeps what workload rules read, and
//! `capture` gives strings that equal the same text from elsewhere.

use k8srule_host::{Diagnoser, Report, Snapshot};

/// 2024-05-01T12:00:00Z
const NOW: i64 = 1_714_564_800;

/// A pod without status owned by a ReplicaSet without status, a Deployment
/// refused by a quota (one event with the uid, one with only the name).
const OBJECTS: &str = r#"
apiVersion: v1
kind: List
items:
- kind: Pod
  metadata:
    name: web-1
    namespace: shop
    uid: u-pod
    ownerReferences: [{kind: ReplicaSet, name: web, uid: u-rs, controller: true}]
  spec: {containers: [{name: app, image: app}]}
- kind: ReplicaSet
  apiVersion: apps/v1
  metadata: {name: web, namespace: shop, uid: u-rs}
  spec: {replicas: 1}
- kind: Deployment
  apiVersion: apps/v1
  metadata: {name: api, namespace: shop, uid: u-dep, annotations: {note: big}}
  spec: {replicas: 3, template: {spec: {containers: [{name: api}]}}}
  status:
    replicas: 1
    conditions:
    - {type: Progressing, status: "True", reason: NewReplicaSetAvailable, message: fine}
    - {type: ReplicaFailure, status: "True", reason: FailedCreate, message: "pods \"api-1\" is forbidden: exceeded quota: compute-quota"}
- kind: Event
  metadata: {name: e1, namespace: shop}
  involvedObject: {kind: Deployment, name: api, namespace: shop, uid: u-dep}
  reason: FailedCreate
  type: Warning
  message: "Error creating: pods \"api-1\" is forbidden: exceeded quota: compute-quota, requested: cpu=2"
  lastTimestamp: "2024-05-01T11:58:00Z"
- kind: Event
  metadata: {name: e2, namespace: shop}
  involvedObject: {kind: Deployment, name: api, namespace: shop}
  reason: ScalingReplicaSet
  type: Normal
  message: "Scaled up replica set api-7d to 3"
  lastTimestamp: "2024-05-01T11:57:00Z"
- kind: Event
  metadata: {name: e3, namespace: shop}
  involvedObject: {kind: Pod, name: api, namespace: shop}
  reason: PodOnly
  message: "an event of a pod named like the Deployment"
"#;

/// The report of `rules` alone over `objects` (YAML), on a snapshot loaded
/// for diagnosis when `pruned`; no pack may fail.
fn report_of(rules: &str, objects: &str, pruned: bool) -> Report {
    let diagnoser = Diagnoser::builder().builtin(false).rules_source("t.k8srule", rules).build().unwrap();
    let mut snapshot = if pruned { diagnoser.snapshot(NOW) } else { Snapshot::new(NOW) };
    snapshot.add_text("objects.yaml", objects).unwrap();
    let report = diagnoser.diagnose(&snapshot);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

fn diagnose(rules: &str, pruned: bool) -> Vec<(String, Option<String>, Option<String>, String)> {
    let report = report_of(rules, OBJECTS, pruned);
    let mut found: Vec<_> = report.findings.into_iter().map(|f| (f.rule, f.pod, f.workload, f.title)).collect();
    found.sort();
    found
}

#[test]
fn pod_and_workload_rules_of_one_pack_each_run_on_their_own_cases() {
    // each rule fires on what it cannot read: on the other kind of case, everything is missing
    let rules = r#"
rule p {
  cause "p"
  severity info
  when not has(pod.status.phase)
  title "pod {pod.metadata.name}"
}
rule c {
  cause "c"
  severity info
  for c in containers
  when not has(c.ready)
  title "container {c.name}"
}
rule w {
  cause "w"
  severity info
  for w in workloads
  when not has(w.status.replicas)
  title "workload {w.metadata.name}"
}
"#;
    let pod = || Some("shop/web-1".to_string());
    let want = vec![
        ("c".to_string(), pod(), Some("shop/ReplicaSet/web".to_string()), "container app".to_string()),
        ("p".to_string(), pod(), Some("shop/ReplicaSet/web".to_string()), "pod web-1".to_string()),
        ("w".to_string(), None, Some("shop/ReplicaSet/web".to_string()), "workload web".to_string()),
    ];
    assert_eq!(diagnose(rules, false), want);
    assert_eq!(diagnose(rules, true), want);
}

#[test]
fn a_snapshot_loaded_for_diagnosis_keeps_what_workload_rules_read() {
    let rules = r#"
rule q {
  cause "q"
  severity warning
  for w in workloads
  let f = first(s in w.status.conditions: s.type == "ReplicaFailure" and s.status == "True")
  let e = first(e in w.events: e.reason == "FailedCreate")
  let s = first(e in w.events: e.reason == "ScalingReplicaSet")
  let r = capture(s.message, "replica set ([a-z0-9-]+)")
  when f != null and e != null and w.spec.replicas > w.status.replicas
    and capture(e.message, "exceeded quota: ([a-z-]+)") == "compute-quota"
    and capture(f.message, "\"([a-z0-9-]+)\"") == capture(e.message, "pods \"([^\"]+)\"")
  title "{w.metadata.name}: {r}; {f.reason}: {f.message}; {len(w.events)} events; {w.metadata.annotations.note}"
}
"#;
    let want = vec![(
        "q".to_string(),
        None,
        Some("shop/Deployment/api".to_string()),
        "api: api-7d; FailedCreate: pods \"api-1\" is forbidden: exceeded quota: compute-quota; 2 events; big"
            .to_string(),
    )];
    assert_eq!(diagnose(rules, false), want);
    assert_eq!(diagnose(rules, true), want);
}

#[test]
fn a_capture_equals_the_same_text_from_anywhere() {
    // the captured `regular` is in no object and no literal: the container's kind is the same text
    let rules = r#"
rule k {
  cause "k"
  severity info
  for c in containers
  when capture(c.image, "^([a-z]+)/") == c.kind
  title "{c.name}"
}
"#;
    let pod = "kind: Pod\nmetadata: {name: p, namespace: ns, uid: u}\nspec:\n  containers:\n  - {name: a, image: regular/app}\n  - {name: b, image: other/app}\n";
    let report = report_of(rules, pod, false);
    let titles: Vec<&str> = report.findings.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(titles, ["a"]);
}

#[test]
fn a_workload_without_a_uid_is_diagnosed_as_a_pod_without_one_is() {
    // what a rule author writes in a fixture: no uid, the events matched by name
    let rules = r#"
rule w {
  cause "w"
  severity info
  for w in workloads
  when any(e in w.events: e.reason == "FailedCreate")
  title "{w.metadata.name}"
}
"#;
    let objects = r#"
kind: List
items:
- {kind: Job, apiVersion: batch/v1, metadata: {name: etl, namespace: data}}
- {kind: Job, apiVersion: batch/v1, metadata: {name: etl, namespace: other}}
- kind: Event
  metadata: {name: e, namespace: data}
  involvedObject: {kind: Job, name: etl, namespace: data}
  reason: FailedCreate
"#;
    let report = report_of(rules, objects, false);
    let found: Vec<Option<&str>> = report.findings.iter().map(|f| f.workload.as_deref()).collect();
    assert_eq!(found, [Some("data/Job/etl")], "{:?}", report.notes);
    assert!(report.notes.iter().all(|n| !n.contains("skipped")), "{:?}", report.notes);
}

#[test]
fn a_workload_of_a_typed_list_has_the_list_s_kind() {
    // the API's lists (`kubectl get --raw`) give their items no kind
    let rules = r#"
rule w {
  cause "w"
  severity info
  for w in workloads
  when any(e in w.events: e.reason == "FailedCreate")
  title "{w.kind} {w.metadata.name}"
}
"#;
    let objects = r#"
- kind: DeploymentList
  apiVersion: apps/v1
  items:
  - metadata: {name: api, namespace: shop}
- kind: Event
  metadata: {name: e, namespace: shop}
  involvedObject: {kind: Deployment, name: api, namespace: shop}
  reason: FailedCreate
"#;
    let report = report_of(rules, objects, false);
    let found: Vec<(Option<&str>, &str)> =
        report.findings.iter().map(|f| (f.workload.as_deref(), f.title.as_str())).collect();
    assert_eq!(found, [(Some("shop/Deployment/api"), "Deployment api")]);
}
