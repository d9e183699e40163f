//! Several clusters at once against two API emulators with different pods
//! and a context whose server is closed: `--context` given more than once and
//! `--all-contexts` read them concurrently into one report whose findings
//! name their `cluster`; the unreachable one is a note. `snapshot` saves a
//! bundle per context that `diagnose -f` reads back.

use k8srule_tests::{KubeApi, k8srule, root};
use serde_json::{Value, json};

const NOW: &str = "2024-05-01T12:00:00Z";

/// east: the example's pods (web OOM-killed, worker-0 crashing with SIGSEGV);
/// west: only a worker-0 of its own, in the same namespace.
fn data() -> (tempfile::TempDir, tempfile::TempDir) {
    let east = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/snapshots/crashloop.json"), east.path().join("crashloop.json")).unwrap();
    let example: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("examples/snapshots/crashloop.json")).unwrap())
            .unwrap();
    let worker = example["items"].as_array().unwrap().iter().find(|o| o["metadata"]["name"] == "worker-0").unwrap();
    let west = tempfile::tempdir().unwrap();
    std::fs::write(west.path().join("pods.json"), json!({"kind": "List", "items": [worker]}).to_string()).unwrap();
    (east, west)
}

/// A kubeconfig with the contexts east and west on the emulators and gone
/// on a port nothing listens on.
fn kubeconfig(dir: &std::path::Path, east: &KubeApi, west: &KubeApi) -> (String, String) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gone = format!("http://{closed}");
    let contexts = ["east", "west", "gone"]
        .map(|c| json!({"name": c, "context": {"cluster": c, "user": "u", "namespace": "shop"}}));
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "east",
        "clusters": [
            {"name": "east", "cluster": {"server": east.url}},
            {"name": "west", "cluster": {"server": west.url}},
            {"name": "gone", "cluster": {"server": gone}},
        ],
        "users": [{"name": "u", "user": {}}],
        "contexts": contexts,
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    (path.display().to_string(), gone)
}

/// (cluster, pod, rule) of each finding.
fn findings(report: &Value) -> Vec<(String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("<none>").to_string();
    report["findings"].as_array().unwrap().iter().map(|f| (s(&f["cluster"]), s(&f["pod"]), s(&f["rule"]))).collect()
}

fn run(args: &[&str]) -> (u8, String) {
    let (code, out, err) = k8srule(args);
    assert!(code <= 1, "{code}: {err}");
    (code, out)
}

#[test]
fn two_clusters_and_an_unreachable_one_make_one_report() {
    let (east_data, west_data) = data();
    let (east, west) = (KubeApi::start(east_data.path(), &[]), KubeApi::start(west_data.path(), &[]));
    let dir = tempfile::tempdir().unwrap();
    let (kc, gone) = kubeconfig(dir.path(), &east, &west);
    let given = ["diagnose", "--kubeconfig", &kc, "--now", NOW, "--context", "east", "--context", "west"];
    let (code, out) = run(&[&given[..], &["--context", "gone", "-o", "json"]].concat());
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    let t = |c: &str, p: &str, r: &str| (c.to_string(), format!("shop/{p}"), r.to_string());
    assert_eq!(
        findings(&report),
        [
            t("east", "web-7d4b9c-x2x9k", "crashloop.cgroup-oom"),
            t("east", "web-7d4b9c-x2x9k", "states.crashloopbackoff"),
            t("east", "web-7d4b9c-x2x9k", "signals.exit-signal"),
            t("east", "worker-0", "signals.exit-signal"),
            t("east", "worker-0", "states.crashloopbackoff"),
            // a pod of the same name in another cluster is another pod
            t("west", "worker-0", "signals.exit-signal"),
            t("west", "worker-0", "states.crashloopbackoff"),
        ]
    );
    assert_eq!(report["summary"], json!({"pods": 5, "unhealthy": 3, "failing_workloads": 0}));
    let notes: Vec<&str> = report["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    let unreachable = format!("cluster gone: not read: cannot reach the cluster at {gone}: connection refused");
    assert!(notes.contains(&unreachable.as_str()), "{notes:#?}");
    // each emulator was asked for its own pods
    for api in [&east, &west] {
        assert!(api.requests().iter().any(|r| r["path"] == "/api/v1/namespaces/shop/pods"));
    }
    // every context of the kubeconfig: the same report
    let (_, all) = run(&["diagnose", "--kubeconfig", &kc, "--now", NOW, "--all-contexts", "-o", "json"]);
    assert_eq!(all, out);
    // exit codes as for one cluster
    assert_eq!(run(&[&given[..], &["--fail-on", "error"]].concat()).0, 1);
    assert_eq!(run(&[&given[..], &["--fail-on", "critical"]].concat()).0, 0);
    // every format names the clusters
    let (_, table) = run(&given);
    assert!(table.contains("pod shop/worker-0 in cluster west\n"), "{table}");
    assert!(table.contains("pod shop/worker-0 in cluster east\n"), "{table}");
    for (format, east_says, west_says) in [
        ("wide", "pod shop/worker-0 in cluster east", "pod shop/worker-0 in cluster west"),
        ("markdown", "### Pod `shop/worker-0` in cluster `east`", "### Pod `shop/worker-0` in cluster `west`"),
        ("junit", "classname=\"east/shop/worker-0\"", "classname=\"west/shop/worker-0\""),
        ("html", "data-cluster=\"east\"", "<h2>Pod <code>shop/worker-0</code> in cluster <code>west</code></h2>"),
        ("yaml", "cluster: east", "cluster: west"),
    ] {
        let (_, shown) = run(&[&given[..], &["-o", format]].concat());
        assert!(shown.contains(east_says) && shown.contains(west_says), "{format}:\n{shown}");
    }
    // one context: the report as it always was, no cluster named
    let (_, one) = run(&["diagnose", "--kubeconfig", &kc, "--now", NOW, "--context", "west", "-o", "json"]);
    assert!(!one.contains("\"cluster\""), "{one}");
    let (_, one) = run(&["diagnose", "--kubeconfig", &kc, "--now", NOW, "--context", "west"]);
    assert!(one.starts_with("pod shop/worker-0\n"), "{one}");
}

#[test]
fn a_snapshot_of_several_clusters_reads_back_with_their_names() {
    let (east_data, west_data) = data();
    let (east, west) = (KubeApi::start(east_data.path(), &[]), KubeApi::start(west_data.path(), &[]));
    let dir = tempfile::tempdir().unwrap();
    let (kc, _) = kubeconfig(dir.path(), &east, &west);
    let saved = dir.path().join("fleet");
    let saved = saved.display().to_string();
    let (code, out, err) = k8srule(&["snapshot", "--kubeconfig", &kc, "--all-contexts", "-o", &saved]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(context west): 1 pods"), "{out}");
    assert!(err.contains("note: context gone: not read: cannot reach the cluster at"), "{err}");
    let clusters: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("fleet/clusters.json")).unwrap()).unwrap();
    assert_eq!(clusters["clusters"][0], json!({"context": "east", "dir": "east"}));
    assert_eq!(clusters["clusters"][1], json!({"context": "west", "dir": "west"}));
    assert_eq!(clusters["clusters"][2]["context"], "gone");
    let (_, live) = run(&["diagnose", "--kubeconfig", &kc, "--now", NOW, "--all-contexts", "-o", "json"]);
    let (_, back) = run(&["diagnose", "-f", &saved, "--now", NOW, "-o", "json"]);
    let (live, back): (Value, Value) = (serde_json::from_str(&live).unwrap(), serde_json::from_str(&back).unwrap());
    assert_eq!(findings(&back), findings(&live));
    assert_eq!(back["summary"], live["summary"]);
    assert!(
        back["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().starts_with("cluster gone: not read:"))
    );
    // read alone
    let example = root().join("examples/snapshots/crashloop.json").display().to_string();
    let (code, _, err) = k8srule(&["diagnose", "-f", &saved, "-f", &example, "--now", NOW]);
    assert_eq!(code, 2);
    assert!(err.contains("a snapshot of several clusters is read alone"), "{err}");
}

#[test]
fn watch_reads_one_cluster() {
    let (code, _, err) = k8srule(&["watch", "--context", "a", "--context", "b"]);
    assert_eq!(code, 2);
    assert!(err.contains("--context: watch reads one cluster"), "{err}");
}

#[test]
fn clusters_are_read_at_the_same_time() {
    // each list answers after 0.3 s: read one after the other, west would start after east's last list
    let (east_data, west_data) = data();
    let slow = ["--list-delay", "0.3"];
    let (east, west) = (KubeApi::start(east_data.path(), &slow), KubeApi::start(west_data.path(), &slow));
    let dir = tempfile::tempdir().unwrap();
    let (kc, _) = kubeconfig(dir.path(), &east, &west);
    run(&["diagnose", "--kubeconfig", &kc, "--now", NOW, "--context", "east", "--context", "west"]);
    let times = |api: &KubeApi| -> Vec<f64> { api.requests().iter().map(|r| r["time"].as_f64().unwrap()).collect() };
    let (east, west) = (times(&east), times(&west));
    assert!(east.len() >= 3 && west.len() >= 3, "{east:?} {west:?}");
    let first_of_west = west.iter().copied().fold(f64::INFINITY, f64::min);
    let last_of_east = east.iter().copied().fold(0.0, f64::max);
    assert!(first_of_west < last_of_east, "west started at {first_of_west}, east's last list at {last_of_east}");
}
