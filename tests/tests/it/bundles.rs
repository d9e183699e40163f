//! Trees other tools collect, read by `diagnose -f DIR`: a Troubleshoot
//! support bundle and an OpenShift must-gather tree
//! (`tests/fixtures/bundles/README.md` cites the layouts). Their pods,
//! events, nodes, owners and container logs reach the rules; every other file
//! is counted in a note.

use k8srule_tests::{diagnose_json, findings_of, root};
use serde_json::Value;

const NOW: &str = "2024-05-01T12:00:00Z";

const TROUBLESHOOT: &str = "support-bundle-2024-05-01T11_59_30";
const MUST_GATHER: &str = "must-gather.local.5031";
const MUST_GATHER_IMAGE: &str = "must-gather.local.5031/quay-io-openshift-release-dev-ocp-v4-0-art-dev-sha256-7c1e2b";

/// A rule that fires on every pod whose node, BackOff event and owners were read.
const READS_ALL: &str = r#"rule bundle.read {
  cause "bundle-read"
  severity info
  let e = first(e in events: e.reason == "BackOff")
  let o = first(o in owners: o.kind in ["Deployment", "StatefulSet"])
  when node.metadata.name != null and e != null
  title "{pod.metadata.name} on {node.metadata.name}: {e.reason} x{e.count}, owned by {o.kind} {o.name}"
}
"#;

fn fixture(name: &str) -> String {
    root().join("tests/fixtures/bundles").join(name).display().to_string()
}

/// `diagnose -o json` with the rule `text` added to `args`.
fn diagnose(text: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("read.k8srule");
    std::fs::write(&rule, text).unwrap();
    let rule = rule.display().to_string();
    diagnose_json(NOW, &[&["--rules", rule.as_str()], args].concat())
}

fn evidence(f: &Value) -> Vec<&str> {
    f["evidence"].as_array().unwrap().iter().flat_map(|e| e.as_str().unwrap().lines()).collect()
}

fn notes(report: &Value) -> Vec<&str> {
    report["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect()
}

#[test]
fn a_troubleshoot_support_bundle_is_read_by_its_layout() {
    let r = diagnose(READS_ALL, &["-f", &fixture(TROUBLESHOOT)]);
    assert_eq!(r["summary"]["pods"], 2, "{r:#}");
    let api = findings_of(&r, "shop/api-6d9f7c8b5-x2x9k");
    assert_eq!(api[0]["rule"], "app-exit.crash", "{api:#?}");
    assert_eq!(api[0]["title"], "container api crashed: panic: runtime error: index out of range [3] with length 3");
    let plain = api.iter().find(|f| f["rule"] == "crashloop.app-exit").expect("the plain app-exit stays");
    assert_eq!(plain["explained_by"], "app-exit.crash");
    // the previous run's file, `<container>-previous.log`, redacted as every log is
    assert_eq!(
        evidence(api[0])[..4],
        [
            "cluster-resources/pods/logs/shop/api-6d9f7c8b5-x2x9k/api-previous.log:",
            "2024/05/01 11:57:59 connecting to postgres://[REDACTED]@db.shop:5432/orders",
            "2024/05/01 11:58:00 serving on :8080",
            "panic: runtime error: index out of range [3] with length 3",
        ]
    );
    assert!(!r.to_string().contains("s3cr3t"));
    // the node, the pod's events and its owners (ReplicaSet, then Deployment) were read
    let read = api.iter().find(|f| f["rule"] == "bundle.read").expect("the node and events were read");
    assert_eq!(read["title"], "api-6d9f7c8b5-x2x9k on node-1: BackOff x42, owned by Deployment api");
    assert!(findings_of(&r, "shop/web-58c7d9b6f4-qp7lm").iter().all(|f| f["rule"] != "bundle.read"));
    // version.yaml, namespaces.json, auth-cani-list/, services/ and cluster-info/: counted, not parsed
    assert_eq!(
        notes(&r),
        [format!(
            "skipped 5 file(s) of the Troubleshoot support bundle {}: not pods, events, nodes, workloads or their logs",
            fixture(TROUBLESHOOT)
        )]
    );
}

#[test]
fn a_must_gather_tree_is_read_by_its_layout_each_pod_once() {
    let r = diagnose(READS_ALL, &["-f", &fixture(MUST_GATHER)]);
    // each pod is in core/pods.yaml and in pods/<pod>/<pod>.yaml
    assert_eq!(r["summary"]["pods"], 2, "{r:#}");
    let orders = findings_of(&r, "orders/orders-0");
    assert_eq!(orders[0]["rule"], "app-exit.crash", "{orders:#?}");
    // the kubelet's timestamps are dropped, so `^Traceback` matches
    assert_eq!(orders[0]["title"], "container app crashed: Traceback (most recent call last):");
    assert_eq!(
        evidence(orders[0])[..3],
        [
            "namespaces/orders/pods/orders-0/app/app/logs/previous.log:",
            "INFO starting orders worker 7.2",
            "INFO consuming from amqp://[REDACTED]@rabbitmq.orders:5672/",
        ]
    );
    assert!(!r.to_string().contains("hunter2"));
    assert_eq!(orders.iter().filter(|f| f["rule"] == "app-exit.crash").count(), 1, "one finding per pod: {orders:#?}");
    let read = orders.iter().find(|f| f["rule"] == "bundle.read").expect("the node and events were read");
    assert_eq!(read["title"], "orders-0 on worker-1: BackOff x23, owned by StatefulSet orders");
    // the image's folder is read by its layout; the folder above it as any other
    let image = fixture(MUST_GATHER_IMAGE);
    assert_eq!(
        notes(&r),
        [
            "skipped 1 file(s) *.html: not JSON, YAML or node-logs/<node>/<source>.log".to_string(),
            format!(
                "skipped 6 file(s) of the must-gather tree {image}: not pods, events, nodes, workloads or their logs"
            ),
            "skipped 1 file(s) timestamp: not JSON, YAML or node-logs/<node>/<source>.log".to_string(),
        ]
    );
}

#[test]
fn the_trees_logs_are_counted_when_no_rule_reads_logs() {
    let rule = "rule t.restarts {\n  cause \"app-exit\"\n  severity error\n  for c in containers\n  \
                when c.restartCount > 4\n  title \"{c.name} restarted\"\n}\n";
    let r = diagnose(rule, &["--no-builtin", "-f", &fixture(TROUBLESHOOT), "-f", &fixture(MUST_GATHER_IMAGE)]);
    assert_eq!(r["summary"]["pods"], 4, "{r:#}");
    let pods: Vec<&Value> = r["findings"].as_array().unwrap().iter().map(|f| &f["pod"]).collect();
    assert_eq!(pods, ["orders/orders-0", "shop/api-6d9f7c8b5-x2x9k"]);
    // api.log, api-previous.log; current.log and previous.log of both orders pods
    assert!(notes(&r).contains(&"skipped 6 container log file(s): no rule reads logs"), "{r:#}");
}
