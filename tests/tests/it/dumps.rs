//! `-n`, `-A`, `-l` and `pod/NAME` on snapshot files as on a live cluster,
//! and `pod/NAME` against a cluster reading only that pod and its events.

use k8srule_tests::{KubeApi, k8srule, root};
use serde_json::Value;

const NOW: &str = "2024-05-01T12:00:00Z";

fn fleet() -> String {
    root().join("tests/fixtures/report/fleet.json").display().to_string()
}

/// The pods a diagnosis of the fleet with `flags` covered, and its unhealthy pods.
fn pods(flags: &[&str]) -> (u64, Vec<String>) {
    let fleet = fleet();
    let mut args = vec!["diagnose", "-f", &fleet, "--now", NOW, "-o", "json"];
    args.extend(flags);
    let (code, out, err) = k8srule(&args);
    assert_eq!(code, 0, "{flags:?}: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let mut unhealthy: Vec<String> =
        report["findings"].as_array().unwrap().iter().map(|f| f["pod"].as_str().unwrap().to_string()).collect();
    unhealthy.dedup();
    (report["summary"]["pods"].as_u64().unwrap(), unhealthy)
}

#[test]
fn namespace_and_label_filters_apply_to_files() {
    let (all, _) = pods(&[]);
    assert_eq!(all, 15);
    assert_eq!(pods(&["-A"]).0, all);
    let (n, unhealthy) = pods(&["-n", "monitoring"]);
    assert_eq!(
        (n, unhealthy),
        (2, vec!["monitoring/metrics-agent-b7x9q".into(), "monitoring/metrics-agent-p2m4k".into()])
    );
    let (n, unhealthy) = pods(&["-l", "app=web"]);
    assert_eq!(n, 4);
    assert!(unhealthy.iter().all(|p| p.starts_with("shop/web-6d4f8b7c9-")), "{unhealthy:?}");
    assert_eq!(pods(&["-l", "app in (web, checkout),app!=web"]).0, 2);
    assert_eq!(pods(&["-l", "pod-template-hash"]).0, 10);
    assert_eq!(pods(&["-l", "!pod-template-hash", "-n", "shop"]).0, 3);
    assert_eq!(pods(&["-l", "app=web", "-n", "monitoring"]).0, 0);
    // one pod, by name, in a namespace or any
    assert_eq!(pods(&["pod/search-0"]), (1, vec!["shop/search-0".into()]));
    assert_eq!(pods(&["search-0", "-n", "shop"]).0, 1);

    let fleet = fleet();
    let (code, _, err) = k8srule(&["diagnose", "-f", &fleet, "search-0", "-n", "monitoring"]);
    assert_eq!((code, err.as_str()), (2, "pods \"search-0\" not found in namespace monitoring\n"));
    let (code, _, err) = k8srule(&["diagnose", "-f", &fleet, "-l", "app=web,"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("--selector: `` in `app=web,` is not a label requirement"), "{err}");
}

#[test]
fn one_pod_of_a_cluster_is_read_with_field_selectors() {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(fleet(), data.path().join("fleet.json")).unwrap();
    let api = KubeApi::start(data.path(), &[]);
    let kubeconfig = api.kubeconfig();
    let (code, out, err) = k8srule(&[
        "diagnose",
        "pod/web-6d4f8b7c9-9qz7m",
        "-n",
        "shop",
        "--kubeconfig",
        &kubeconfig,
        "--now",
        NOW,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["pods"], 1);
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["pod"] == "shop/web-6d4f8b7c9-9qz7m"), "{out}");
    assert!(findings.iter().any(|f| f["cause"] == "cgroup-oom"), "{out}");

    let requests = api.requests();
    let lists = |path: &str| -> Vec<Value> { requests.iter().filter(|r| r["path"] == path).cloned().collect() };
    let pods = lists("/api/v1/namespaces/shop/pods");
    assert_eq!(pods.len(), 1, "{requests:#?}");
    assert_eq!(pods[0]["params"]["fieldSelector"], "metadata.name=web-6d4f8b7c9-9qz7m");
    let events = lists("/api/v1/namespaces/shop/events");
    assert_eq!(events.len(), 1, "{requests:#?}");
    assert_eq!(events[0]["params"]["fieldSelector"], "involvedObject.kind=Pod,involvedObject.name=web-6d4f8b7c9-9qz7m");

    let (code, _, err) = k8srule(&["diagnose", "pod/nope", "-n", "shop", "--kubeconfig", &kubeconfig, "--now", NOW]);
    assert_eq!((code, err.as_str()), (2, "pods \"nope\" not found in namespace shop\n"));
}
