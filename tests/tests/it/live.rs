//! The live path over real HTTP, against the Kubernetes API emulator in
//! `tests/kube-api` on loopback: lists and pages, forbidden lists, watch,
//! snapshot bundles, and clusters that cannot be used.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8srule_host::test_support::live::{Cluster, Target, block_on};
use k8srule_host::test_support::watch::{self, Change};
use k8srule_host::{Diagnoser, Finding};
use k8srule_tests::{KubeApi, k8srule, k8srule_background, root, wait_for};
use serde_json::{Value, json};

const NOW: &str = "2024-05-01T12:00:00Z";

/// The example snapshot (shop: a crash-looping web pod owned by a
/// ReplicaSet, a healthy api pod, ...) plus kube-system pods.
fn example_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/snapshots/crashloop.json"), dir.path().join("crashloop.json")).unwrap();
    let kube_system = json!({"kind": "PodList", "apiVersion": "v1", "items": [
        {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": "kube-controller-manager-master", "namespace": "kube-system", "uid": "kcm",
                      "labels": {"component": "kube-controller-manager", "tier": "control-plane"}},
         "spec": {"nodeName": "master", "containers": [{"name": "kube-controller-manager", "image": "k8s/kcm:1.30"}]},
         "status": {"phase": "Running", "containerStatuses": [{"name": "kube-controller-manager", "ready": true,
                    "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T09:00:00Z"}}}]}},
        {"kind": "Pod", "apiVersion": "v1",
         "metadata": {"name": "coredns-1", "namespace": "kube-system", "uid": "dns", "labels": {"k8s-app": "kube-dns"}},
         "spec": {"nodeName": "node-1", "containers": [{"name": "coredns", "image": "coredns:1.11"}]},
         "status": {"phase": "Running"}}
    ]});
    std::fs::write(dir.path().join("kube-system.json"), kube_system.to_string()).unwrap();
    dir
}

/// A pod whose container is in CrashLoopBackOff after OOM kills.
fn crashing_pod(ns: &str, name: &str, uid: &str) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": "2024-05-01T10:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                                          "uid": "rs-big", "controller": true}]},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "shop/web:1",
                 "resources": {"limits": {"memory": "256Mi"}}}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                          "startedAt": "2024-05-01T11:40:02Z", "finishedAt": "2024-05-01T11:41:10Z"}}}]}})
}

fn healthy_pod(ns: &str, name: &str, uid: &str) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "shop/web:1"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
            "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}}}]}})
}

fn node() -> Value {
    json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-1", "uid": "node-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.30.0", "containerRuntimeVersion": "containerd://1.7.0"}}})
}

fn write(dir: &Path, file: &str, items: Vec<Value>) {
    std::fs::write(dir.join(file), json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string()).unwrap();
}

fn report(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn lists_of<'r>(requests: &'r [Value], path: &str) -> Vec<&'r Value> {
    requests.iter().filter(|r| r["path"] == path).collect()
}

#[test]
fn a_large_cluster_is_listed_in_pages_of_500_without_a_request_per_pod() {
    let data = tempfile::tempdir().unwrap();
    let pods: Vec<Value> = (0..1203).map(|i| crashing_pod("big", &format!("web-{i:04}"), &format!("u-{i}"))).collect();
    write(data.path(), "pods.json", pods);
    let rs = json!({"kind": "ReplicaSet", "apiVersion": "apps/v1",
        "metadata": {"name": "web-7d4b9c", "namespace": "big", "uid": "rs-big"}, "spec": {"replicas": 3}});
    write(data.path(), "rest.json", vec![node(), rs]);
    let api = KubeApi::start(data.path(), &["--bare-list-items"]);

    let (code, out, err) = k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "-A", "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!((r["summary"]["pods"].as_u64(), r["summary"]["unhealthy"].as_u64()), (Some(1203), Some(1203)));
    assert!(r["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "crashloop.cgroup-oom"), "{out}");
    assert_eq!(r["notes"], json!([]));

    let requests = api.requests();
    let pages = lists_of(&requests, "/api/v1/pods");
    assert_eq!(pages.len(), 3, "{pages:#?}");
    assert!(pages.iter().all(|p| p["params"]["limit"] == "500" && p["method"] == "GET" && p["status"] == 200));
    assert!(pages[0]["params"].get("continue").is_none());
    assert!(pages[1..].iter().all(|p| p["params"]["continue"].is_string()));
    // the built-in workload rules read every workload's events: no field selector
    let events = lists_of(&requests, "/api/v1/events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["params"].get("fieldSelector"), None);
    assert_eq!(lists_of(&requests, "/api/v1/nodes").len(), 1);
    // one list per workload kind, though the pods name only a ReplicaSet
    for kind in ["apps/v1/replicasets", "apps/v1/deployments", "apps/v1/daemonsets", "apps/v1/statefulsets"] {
        assert_eq!(lists_of(&requests, &format!("/apis/{kind}")).len(), 1, "{kind}");
    }
    for kind in ["/apis/batch/v1/jobs", "/apis/batch/v1/cronjobs", "/api/v1/replicationcontrollers"] {
        assert_eq!(lists_of(&requests, kind).len(), 1, "{kind}");
    }
    // all namespaces without a selector hold the control plane: no kube-system list;
    // besides the lists, the previous log of each restarted container (app-exit.* read logs)
    let (logs, lists): (Vec<&Value>, Vec<&Value>) =
        requests.iter().partition(|r| r["path"].as_str().unwrap().ends_with("/log"));
    assert_eq!(lists.len(), 12, "{lists:#?}");
    assert_eq!(logs.len(), 1203);
    assert!(logs.iter().all(|r| r["params"]["previous"] == "true"), "{:#?}", logs[0]);
    assert!(requests.iter().all(|r| r["method"] == "GET"));
}

#[test]
fn a_list_whose_continue_token_expired_is_read_again_from_the_start() {
    let data = tempfile::tempdir().unwrap();
    let pods: Vec<Value> = (0..1203).map(|i| crashing_pod("big", &format!("web-{i:04}"), &format!("u-{i}"))).collect();
    write(data.path(), "pods.json", pods);
    let api = KubeApi::start(data.path(), &["--list-delay", "0.5"]);
    let args = ["diagnose", "--kubeconfig", &api.kubeconfig(), "-n", "big", "--now", NOW, "-o", "json"];
    let (run, out, err) = k8srule_background(&args);
    // once the first page is served (each page takes 0.5 s), a write and a compaction
    // expire its continue token
    let first_served =
        || lists_of(&api.requests(), "/api/v1/namespaces/big/pods").first().is_some_and(|p| p["status"] == 200);
    assert!(wait_for(20, first_served));
    api.post("/_objects", &crashing_pod("big", "web-late", "u-late"));
    api.post("/_compact", &json!({}));
    assert_eq!(run.join().unwrap(), 0, "{}", err.text());
    let pages: Vec<Value> =
        lists_of(&api.requests(), "/api/v1/namespaces/big/pods").into_iter().map(|p| p["status"].clone()).collect();
    assert_eq!(pages, vec![json!(200), json!(410), json!(200), json!(200), json!(200)]);
    // the pods of the first read are dropped: each pod once, the late one too
    let r = report(&out.text());
    assert_eq!(r["summary"]["pods"].as_u64(), Some(1204));
}

#[test]
fn one_namespace_reads_the_control_plane_for_context_without_diagnosing_it() {
    let data = example_data();
    let api = KubeApi::start(data.path(), &[]);
    // the context's namespace is shop
    let (code, out, err) = k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["summary"]["pods"], 4, "{out}");
    assert!(r["findings"].as_array().unwrap().iter().all(|f| f["pod"].as_str().unwrap().starts_with("shop/")), "{out}");
    let requests = api.requests();
    let kube_system = lists_of(&requests, "/api/v1/namespaces/kube-system/pods");
    let selectors: Vec<&Value> = kube_system.iter().map(|r| &r["params"]["labelSelector"]).collect();
    assert_eq!(selectors, [&json!("component"), &json!("tier=control-plane")]);
    assert_eq!(lists_of(&requests, "/api/v1/namespaces/shop/pods").len(), 1);
    assert_eq!(lists_of(&requests, "/apis/apps/v1/namespaces/shop/replicasets").len(), 1);
    // the workload rules read every workload of the namespace, named by a pod or not
    assert_eq!(lists_of(&requests, "/apis/apps/v1/namespaces/shop/statefulsets").len(), 1, "{requests:#?}");
}

#[test]
fn workloads_whose_owners_are_gone_are_listed_once() {
    // a ReplicaSet and a Job whose owner references name objects that no longer exist
    let data = tempfile::tempdir().unwrap();
    let orphan = |kind: &str, api: &str, name: &str, owner: &str| {
        json!({"kind": kind, "apiVersion": api,
            "metadata": {"name": name, "namespace": "shop", "uid": format!("u-{name}"),
                         "ownerReferences": [{"apiVersion": api, "kind": owner, "name": "gone", "uid": "u-gone",
                                              "controller": true}]},
            "spec": {}, "status": {}})
    };
    write(
        data.path(),
        "pods.json",
        vec![
            healthy_pod("shop", "api", "u-api"),
            orphan("ReplicaSet", "apps/v1", "web-1", "ReplicaSet"),
            orphan("Job", "batch/v1", "nightly", "Job"),
        ],
    );
    let api = KubeApi::start(data.path(), &[]);
    let kubeconfig = api.kubeconfig();
    let (handle, out, err) = k8srule_background(&["diagnose", "--kubeconfig", &kubeconfig, "--now", NOW, "-o", "json"]);
    assert!(wait_for(30, || handle.is_finished()), "still listing: {} requests", api.requests().len());
    assert_eq!(handle.join().unwrap(), 0, "{}", err.text());
    assert_eq!(report(&out.text())["summary"]["pods"], 1);
    let requests = api.requests();
    for kind in ["/apis/apps/v1/namespaces/shop/replicasets", "/apis/batch/v1/namespaces/shop/jobs"] {
        assert_eq!(lists_of(&requests, kind).len(), 1, "{kind}");
    }
}

#[test]
fn a_forbidden_list_is_a_note_and_the_run_goes_on() {
    let data = example_data();
    let api = KubeApi::start(data.path(), &["--forbid", "nodes"]);
    let (code, out, err) =
        k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "-n", "shop", "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["summary"]["pods"], 4);
    let notes = r["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let note = notes[0].as_str().unwrap();
    assert!(note.starts_with("cannot list nodes: nodes is forbidden: User"), "{note}");
    assert!(note.ends_with("; rules that read nodes ran without them"), "{note}");
    // the table shows it too
    let (code, out, _) = k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "--now", NOW]);
    assert_eq!(code, 0);
    assert!(out.contains("cannot list nodes"), "{out}");
}

#[test]
fn forbidden_pods_are_an_input_error() {
    let data = example_data();
    let api = KubeApi::start(data.path(), &["--forbid", "pods"]);
    let (code, out, err) = k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "--now", NOW]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("cannot list pods in namespace shop: pods is forbidden: User"), "{err}");
}

#[test]
fn a_snapshot_loads_back_to_the_same_findings() {
    let data = example_data();
    let api = KubeApi::start(data.path(), &["--bare-list-items", "--forbid", "nodes"]);
    let kc = api.kubeconfig();
    let (code, live, err) = k8srule(&["diagnose", "--kubeconfig", &kc, "-n", "shop", "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(report(&live)["summary"]["unhealthy"].as_u64().unwrap() > 0, "{live}");
    assert_eq!(report(&live)["notes"].as_array().unwrap().len(), 1, "{live}");

    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("bundle");
    let bundle_arg = bundle.display().to_string();
    let (code, out, err) = k8srule(&["snapshot", "--kubeconfig", &kc, "-n", "shop", "-o", &bundle_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("wrote {bundle_arg}: 4 pods, 2 events, 0 nodes, 1 owners\n")), "{out}");
    assert!(bundle.join("_k8srule/control-plane.json").is_file());
    assert!(err.starts_with("note: cannot list nodes: nodes is forbidden"), "{err}");

    let (code, loaded, err) = k8srule(&["diagnose", "-f", &bundle_arg, "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&loaded), report(&live));

    // a snapshot never overwrites
    let (code, _, err) = k8srule(&["snapshot", "--kubeconfig", &kc, "-o", &bundle_arg]);
    assert_eq!(code, 2);
    assert_eq!(err, format!("{bundle_arg}: exists and is not empty\n"));
}

#[test]
fn a_pod_without_status_is_diagnosed_as_far_as_possible() {
    let data = tempfile::tempdir().unwrap();
    let bare = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "bare", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "x"}]}});
    write(data.path(), "pods.json", vec![bare, crashing_pod("shop", "web", "u-web"), node()]);
    let api = KubeApi::start(data.path(), &[]);
    let (code, out, err) = k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["summary"]["pods"], 2);
    assert!(r["findings"].as_array().unwrap().iter().any(|f| f["pod"] == "shop/web"), "{out}");
}

#[test]
fn clusters_that_cannot_be_used_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    // nothing listens on this port once the listener is dropped
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let kc = kc.display().to_string();
    let (code, out, err) = k8srule(&["diagnose", "--kubeconfig", &kc]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err, format!("cannot reach the cluster at http://127.0.0.1:{port}: connection refused\n"));

    let (code, _, err) = k8srule(&["diagnose", "--kubeconfig", &kc, "--context", "prod"]);
    assert_eq!((code, err), (2, format!("{kc}: no context `prod` in the kubeconfig\n")));

    let missing = dir.path().join("nope").display().to_string();
    let (code, _, err) = k8srule(&["diagnose", "--kubeconfig", &missing]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{missing}: ")), "{err}");

    let snapshots = root().join("examples/snapshots").display().to_string();
    let (code, _, err) = k8srule(&["diagnose", "-f", &snapshots, "--context", "prod"]);
    assert_eq!((code, err.as_str()), (2, "--context: chooses a live cluster; it cannot be used with -f\n"));
}

type Changes = Arc<std::sync::Mutex<Vec<Change>>>;

/// Runs the library's watch on another thread until the returned flag is set.
fn start_watch(
    api: &KubeApi,
    options: watch::Options,
) -> (std::thread::JoinHandle<Result<(), String>>, Changes, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let target = Target { kubeconfig: Some(api.kubeconfig().into()), all_namespaces: true, ..Target::default() };
    let options = watch::Options { stop: Some(stop.clone()), ..options };
    let sink_changes = changes.clone();
    let handle = std::thread::spawn(move || {
        let diagnoser = Diagnoser::builder().build().map_err(|e| e.to_string())?;
        let mut sink = |c: Change| sink_changes.lock().unwrap().push(c);
        block_on(async {
            let cluster = Cluster::connect(&target).await?;
            watch::watch(&cluster, &diagnoser, &options, &mut sink).await
        })
        .and_then(|r| r)
        .map_err(|e| e.to_string())
    });
    (handle, changes, stop)
}

fn new_of(changes: &[Change], pod: &str) -> Vec<Finding> {
    changes
        .iter()
        .filter_map(|c| if let Change::New(f) = c { Some(&**f) } else { None })
        .filter(|f| f.subject() == pod)
        .cloned()
        .collect()
}

fn resolved_of(changes: &[Change], pod: &str) -> Vec<(Finding, bool)> {
    changes
        .iter()
        .filter_map(|c| {
            if let Change::Resolved { finding, pod_deleted } = c {
                Some(((**finding).clone(), *pod_deleted))
            } else {
                None
            }
        })
        .filter(|(f, _)| f.subject() == pod)
        .collect()
}

#[test]
fn watch_reports_new_and_resolved_findings_as_pods_change() {
    let data = tempfile::tempdir().unwrap();
    write(
        data.path(),
        "pods.json",
        vec![crashing_pod("shop", "web", "u-web"), healthy_pod("shop", "api", "u-api"), node()],
    );
    let api = KubeApi::start(data.path(), &[]);
    let (handle, changes, stop) = start_watch(&api, watch::Options::default());
    let synced = || changes.lock().unwrap().iter().any(|c| matches!(c, Change::Synced { .. }));
    assert!(wait_for(30, synced), "{:#?}", changes.lock().unwrap());
    {
        let c = changes.lock().unwrap();
        assert!(new_of(&c, "shop/web").iter().any(|f| f.rule == "crashloop.cgroup-oom"), "{c:#?}");
        assert!(new_of(&c, "shop/api").is_empty(), "{c:#?}");
        assert!(matches!(c.last(), Some(Change::Synced { pods: 2, .. })), "{c:#?}");
    }

    // added: a new crash-looping pod
    api.post("/_objects", &crashing_pod("shop", "worker", "u-worker"));
    assert!(
        wait_for(20, || !new_of(&changes.lock().unwrap(), "shop/worker").is_empty()),
        "{:#?}",
        changes.lock().unwrap()
    );

    // modified: api starts crash-looping, then web recovers
    let mut api_pod = crashing_pod("shop", "api", "u-api");
    api_pod["metadata"]["ownerReferences"] = json!([]);
    api.post("/_objects", &api_pod);
    assert!(
        wait_for(20, || !new_of(&changes.lock().unwrap(), "shop/api").is_empty()),
        "{:#?}",
        changes.lock().unwrap()
    );
    api.post("/_objects", &healthy_pod("shop", "web", "u-web"));
    assert!(
        wait_for(20, || !resolved_of(&changes.lock().unwrap(), "shop/web").is_empty()),
        "{:#?}",
        changes.lock().unwrap()
    );

    // an event: the sandbox network of a Pending pod fails, then the event is gone
    let mut net = healthy_pod("shop", "net", "u-net");
    net["status"] = json!({"phase": "Pending"});
    api.post("/_objects", &net);
    let cni = |c: &[Change]| new_of(c, "shop/net").iter().any(|f| f.rule == "creating.cni-error");
    // (the order in which the two watches see the pod and its event does not matter)
    api.post("/_objects", &json!({"kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "net.1", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": "net", "namespace": "shop", "uid": "u-net"},
        "reason": "FailedCreatePodSandBox", "type": "Warning",
        "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"5f2c7d\": plugin type=\"calico\" failed (add): connection is unauthorized"}));
    assert!(wait_for(20, || cni(&changes.lock().unwrap())), "{:#?}", changes.lock().unwrap());
    api.post("/_delete", &json!({"kind": "Event", "namespace": "shop", "name": "net.1"}));
    let cni_resolved =
        |c: &[Change]| resolved_of(c, "shop/net").iter().any(|(f, deleted)| f.rule == "creating.cni-error" && !deleted);
    assert!(wait_for(20, || cni_resolved(&changes.lock().unwrap())), "{:#?}", changes.lock().unwrap());

    // deleted: worker's findings are resolved, as deleted
    api.post("/_delete", &json!({"kind": "Pod", "namespace": "shop", "name": "worker"}));
    assert!(
        wait_for(20, || !resolved_of(&changes.lock().unwrap(), "shop/worker").is_empty()),
        "{:#?}",
        changes.lock().unwrap()
    );

    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let c = changes.lock().unwrap();
    let web_new: Vec<String> = new_of(&c, "shop/web").into_iter().map(|f| f.rule).collect();
    let web_resolved: Vec<String> = resolved_of(&c, "shop/web")
        .into_iter()
        .map(|(f, deleted)| {
            assert!(!deleted);
            f.rule
        })
        .collect();
    assert_eq!(web_new, web_resolved, "every finding of web is resolved once it is healthy");
    assert!(resolved_of(&c, "shop/worker").iter().all(|(_, deleted)| *deleted));
    // a change that does not change findings reports nothing: each finding was new once
    let mut seen = std::collections::HashSet::new();
    for f in new_of(&c, "shop/worker") {
        assert!(seen.insert((f.rule, f.container)), "{c:#?}");
    }
    // only lists and watches
    assert!(api.requests().iter().all(|r| r["method"] == "GET"));
}

/// The Events that `watch --emit-events` created (through events.k8s.io) on `pod`.
fn event_writes(api: &KubeApi, method: &str, pod: &str) -> Vec<Value> {
    let of_pod = |r: &Value| {
        r["method"] == method
            && r["path"].as_str().unwrap().starts_with("/apis/events.k8s.io/v1/namespaces/shop/events")
            && r["body"]["regarding"]["name"] == pod
    };
    api.requests().into_iter().filter(of_pod).collect()
}

/// The causes of the findings reported new on `pod`, as Event reasons.
fn reasons_of(changes: &[Change], pod: &str) -> std::collections::BTreeSet<String> {
    new_of(changes, pod).iter().map(|f| watch::event_reason(&f.cause)).collect()
}

#[test]
fn watch_writes_one_event_per_cause_on_a_pod_while_it_stays() {
    let data = tempfile::tempdir().unwrap();
    write(data.path(), "pods.json", vec![crashing_pod("shop", "web", "u-web"), node()]);
    let api = KubeApi::start(data.path(), &[]);
    let options = watch::Options { emit_events: true, resync: std::time::Duration::from_secs(1), ..Default::default() };
    let (handle, changes, stop) = start_watch(&api, options.clone());
    assert!(wait_for(30, || changes.lock().unwrap().iter().any(|c| matches!(c, Change::Synced { .. }))));
    let reasons = reasons_of(&changes.lock().unwrap(), "shop/web");
    assert!(reasons.len() >= 2 && reasons.contains("CgroupOom"), "{reasons:?}");
    let created = || event_writes(&api, "POST", "web");
    assert!(wait_for(10, || created().len() == reasons.len()), "{:#?}", created());
    let written: std::collections::BTreeSet<String> =
        created().iter().map(|r| r["body"]["reason"].as_str().unwrap().to_string()).collect();
    assert_eq!(written, reasons, "one Event per cause");

    // the findings stay through a change of the pod and several resyncs
    let mut labelled = crashing_pod("shop", "web", "u-web");
    labelled["metadata"]["labels"] = json!({"team": "checkout"});
    api.post("/_objects", &labelled);
    api.post("/_objects", &crashing_pod("shop", "worker", "u-worker"));
    assert!(wait_for(20, || !new_of(&changes.lock().unwrap(), "shop/worker").is_empty()));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(created().len(), reasons.len(), "{:#?}", created());
    assert!(event_writes(&api, "PATCH", "web").is_empty());

    // gone, then back: the same Events again, as their series
    api.post("/_objects", &healthy_pod("shop", "web", "u-web"));
    let healthy = |c: &[Change]| resolved_of(c, "shop/web").len() == new_of(c, "shop/web").len();
    assert!(wait_for(20, || healthy(&changes.lock().unwrap())), "{:#?}", changes.lock().unwrap());
    api.post("/_objects", &crashing_pod("shop", "web", "u-web"));
    let patched = || event_writes(&api, "PATCH", "web");
    assert!(wait_for(20, || patched().len() == reasons.len()), "{:#?}", patched());
    assert_eq!(created().len(), reasons.len());
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let events = api.get("/_objects");
    let events: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "Event" && o["involvedObject"]["name"] == "web")
        .collect();
    assert_eq!(events.len(), reasons.len(), "{events:#?}");
    let oom = events.iter().find(|e| e["reason"] == "CgroupOom").unwrap();
    assert_eq!(
        (&oom["involvedObject"]["uid"], &oom["reportingComponent"], &oom["type"], &oom["action"]),
        (&json!("u-web"), &json!("k8srule"), &json!("Warning"), &json!("Diagnose"))
    );
    assert_eq!(oom["series"]["count"], 2, "{oom:#}");
    assert!(oom["message"].as_str().unwrap().contains("256Mi"), "{oom}");

    // after a restart, the Events on the pod stand for its findings
    let (handle, changes, stop) = start_watch(&api, options);
    assert!(wait_for(30, || changes.lock().unwrap().iter().any(|c| matches!(c, Change::Synced { .. }))));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    assert_eq!(reasons_of(&changes.lock().unwrap(), "shop/web"), reasons);
    assert_eq!((created().len(), patched().len()), (reasons.len(), reasons.len()));

    // deploy/watch.yaml grants every write the watch made
    let manifests = std::fs::read_to_string(root().join("deploy/watch.yaml")).unwrap();
    let mut granted = std::collections::BTreeSet::new();
    for doc in serde_norway::Deserializer::from_str(&manifests) {
        let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for (group, resource, verb) in rule_grants(rule) {
                granted.insert(format!("{verb} {resource}.{group}"));
            }
        }
    }
    for r in api.requests().iter().filter(|r| r["method"] != "GET") {
        let verb = match r["method"].as_str().unwrap() {
            "POST" => "create",
            "PATCH" => "patch",
            other => panic!("an unexpected write: {other} {}", r["path"]),
        };
        assert!(r["path"].as_str().unwrap().starts_with("/apis/events.k8s.io/v1/"), "{r}");
        assert!(granted.contains(&format!("{verb} events.events.k8s.io")), "{verb}: {granted:?}");
    }
}

/// Each (apiGroup, resource, verb) of an RBAC rule.
fn rule_grants(rule: &Value) -> Vec<(String, String, String)> {
    let strings = |k: &str| -> Vec<String> {
        rule[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
    };
    let mut out = Vec::new();
    for g in strings("apiGroups") {
        for r in strings("resources") {
            for v in strings("verbs") {
                out.push((g.clone(), r.clone(), v));
            }
        }
    }
    out
}

#[test]
fn watch_drops_the_events_over_its_rate_limit_and_says_so() {
    let data = tempfile::tempdir().unwrap();
    let pods = ["a", "b", "c", "d"].map(|p| crashing_pod("shop", p, &format!("u-{p}")));
    write(data.path(), "pods.json", pods.into_iter().chain([node()]).collect());
    let api = KubeApi::start(data.path(), &[]);
    let options = watch::Options { emit_events: true, events_per_minute: 3, ..Default::default() };
    let (handle, changes, stop) = start_watch(&api, options);
    assert!(wait_for(30, || changes.lock().unwrap().iter().any(|c| matches!(c, Change::Synced { .. }))));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let c = changes.lock().unwrap();
    let causes: usize = ["a", "b", "c", "d"].iter().map(|p| reasons_of(&c, &format!("shop/{p}")).len()).sum();
    let created = api.requests().into_iter().filter(|r| r["method"] == "POST").count();
    assert_eq!(created, 3, "{:#?}", api.requests());
    let dropped = format!("{} Events not written: over the limit of 3 a minute", causes - 3);
    assert!(c.iter().any(|c| matches!(c, Change::Note(n) if *n == dropped)), "{dropped}: {c:#?}");
}

#[test]
fn watch_reads_logs_again_only_for_pods_whose_findings_change() {
    let data = tempfile::tempdir().unwrap();
    write(data.path(), "pods.json", vec![crashing_pod("shop", "web", "u-web"), node()]);
    let api = KubeApi::start(data.path(), &[]);
    let (handle, changes, stop) = start_watch(&api, watch::Options::default());
    assert!(wait_for(30, || changes.lock().unwrap().iter().any(|c| matches!(c, Change::Synced { .. }))));
    let log_reads = |pod: &str| {
        let path = format!("/api/v1/namespaces/shop/pods/{pod}/log");
        api.requests().iter().filter(|r| r["path"] == path.as_str()).count()
    };
    let first = log_reads("web");
    assert!(first > 0, "a crash-looping pod's previous log is read");
    // a label changes nothing the rules see; then a new crash-looping pod,
    // which the watch sees after the label: once it is reported, web's
    // change has been diagnosed too, without reading its log again
    let mut labelled = crashing_pod("shop", "web", "u-web");
    labelled["metadata"]["labels"] = json!({"team": "checkout"});
    api.post("/_objects", &labelled);
    api.post("/_objects", &crashing_pod("shop", "worker", "u-worker"));
    assert!(wait_for(20, || !new_of(&changes.lock().unwrap(), "shop/worker").is_empty()));
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    assert!(log_reads("worker") > 0);
    assert_eq!(log_reads("web"), first, "{:#?}", api.requests());
    assert!(resolved_of(&changes.lock().unwrap(), "shop/web").is_empty(), "{:#?}", changes.lock().unwrap());
}

#[test]
fn watch_on_the_command_line_prints_json_lines() {
    let data = example_data();
    let api = KubeApi::start(data.path(), &["--forbid", "nodes"]);
    let kc = api.kubeconfig();
    let (handle, out, err) = k8srule_background(&["watch", "--kubeconfig", &kc, "-o", "json", "--duration", "1"]);
    assert_eq!(handle.join().unwrap(), 0, "{}", err.text());
    let lines: Vec<Value> = out.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "note", "{lines:#?}");
    assert!(lines[0]["message"].as_str().unwrap().starts_with("cannot watch nodes: nodes is forbidden"), "{lines:#?}");
    assert_eq!(types.last(), Some(&"synced"), "{lines:#?}");
    assert_eq!(lines.last().unwrap()["scope"], "namespace shop");
    assert!(lines.iter().any(|l| l["type"] == "new" && l["finding"]["rule"] == "crashloop.cgroup-oom"), "{lines:#?}");
    // a confidence is written as in the report (0.95), not widened from f32 (0.949999988079071)
    for c in lines.iter().filter_map(|l| l["finding"]["confidence"].as_f64()) {
        assert_eq!((c * 100.0).round() / 100.0, c, "{lines:#?}");
    }
}

#[test]
fn a_cluster_info_dump_directory_loads_as_it_is() {
    let dump = root().join("tests/fixtures/cluster-info-dump").display().to_string();
    let (code, out, err) = k8srule(&["diagnose", "-f", &dump, "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["summary"]["pods"], 5, "{out}");
    let findings = r["findings"].as_array().unwrap();
    let oom = findings.iter().find(|f| f["rule"] == "crashloop.cgroup-oom").expect("the OOM kill is found");
    assert_eq!(oom["pod"], "shop/web-7d4b9c-x2x9k");
    assert!(oom["evidence"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().contains("OOMKilled")));
    assert_eq!(
        r["notes"],
        // the pods' logs.txt are read: the built-in app-exit.* rules read logs
        json!(["skipped 2 object(s) of kind Service: no rule reads them"])
    );
}

#[test]
fn only_what_the_rules_read_is_listed() {
    let data = example_data();
    let api = KubeApi::start(data.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("my.k8srule");
    std::fs::write(
        &rule,
        "rule my.oom {\n  cause \"cgroup-oom\"\n  severity error\n  for c in containers\n  \
         when c.lastState.terminated.reason == \"OOMKilled\"\n  title \"{c.name} was OOMKilled\"\n}\n",
    )
    .unwrap();
    let rule = rule.display().to_string();
    let (code, out, err) =
        k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "--no-builtin", "--rules", &rule, "--now", NOW]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("app was OOMKilled"), "{out}");
    let paths: Vec<String> = api.requests().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    // and the pods' owners up the chain, whose `k8srule.dev/ignore` annotations silence findings
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/shop/pods",
            "/apis/apps/v1/namespaces/shop/replicasets",
            "/apis/apps/v1/namespaces/shop/deployments"
        ]
    );
}

#[test]
fn watch_and_diagnose_see_each_control_plane_pod_once() {
    // kube-controller-manager-master has both `component` and `tier=control-plane`
    let data = example_data();
    let api = KubeApi::start(data.path(), &[]);
    let kc = api.kubeconfig();
    let rules = data.path().join("cp.k8srule");
    std::fs::write(
        &rules,
        r#"rule test.control-plane {
  cause "test"
  severity info
  let n = count(m in controlPlane: m.metadata.labels["component"] == "kube-controller-manager")
  when n > 0
  title "{n} controller manager(s)"
}"#,
    )
    .unwrap();
    let rules = rules.display().to_string();
    let packs = ["--no-builtin", "--no-cache", "--rules", &rules];
    let (code, out, err) =
        k8srule(&[&["diagnose", "--kubeconfig", &kc, "-n", "shop", "-o", "json"][..], &packs].concat());
    assert_eq!(code, 0, "{err}");
    let titles: Vec<String> =
        report(&out)["findings"].as_array().unwrap().iter().map(|f| f["title"].as_str().unwrap().to_string()).collect();
    assert!(!titles.is_empty() && titles.iter().all(|t| t == "1 controller manager(s)"), "{titles:?}");

    let args = [&["watch", "--kubeconfig", &kc, "-n", "shop", "-o", "json", "--duration", "1"][..], &packs].concat();
    let (handle, out, err) = k8srule_background(&args);
    assert_eq!(handle.join().unwrap(), 0, "{}", err.text());
    let text = out.text();
    let news: Vec<Value> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|l| l["type"] == "new").collect();
    assert!(!news.is_empty(), "{text}");
    assert!(news.iter().all(|l| l["finding"]["title"] == "1 controller manager(s)"), "{text}");
}

#[test]
fn workload_rules_list_every_workload_and_its_events() {
    let data = tempfile::tempdir().unwrap();
    // a ReplicaSet whose pods a quota refuses: it has no pod at all
    let rs = json!({"kind": "ReplicaSet", "apiVersion": "apps/v1",
        "metadata": {"name": "web-7d4b9c", "namespace": "shop", "uid": "rs-web"},
        "spec": {"replicas": 2}, "status": {"replicas": 0}});
    let refused = json!({"kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "web-7d4b9c.1", "namespace": "shop"},
        "involvedObject": {"kind": "ReplicaSet", "namespace": "shop", "name": "web-7d4b9c", "uid": "rs-web"},
        "reason": "FailedCreate", "type": "Warning", "lastTimestamp": "2024-05-01T11:59:00Z",
        "message": "Error creating: pods \"web-7d4b9c-q8x2l\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=4, limited: pods=4"});
    let node_event = json!({"kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "node-1.1", "namespace": "shop"},
        "involvedObject": {"kind": "Node", "name": "node-1", "uid": "node-1"},
        "reason": "NodeNotReady", "type": "Normal", "message": "Node node-1 status is now: NodeNotReady"});
    write(data.path(), "objects.json", vec![healthy_pod("shop", "api-0", "u-api"), rs, refused, node_event]);
    let api = KubeApi::start(data.path(), &[]);
    let (code, out, err) = k8srule(&["diagnose", "--kubeconfig", &api.kubeconfig(), "-o", "json", "--now", NOW]);
    assert_eq!(code, 0, "{err}");
    let report = report(&out);
    let found: Vec<(&Value, &Value, &Value)> =
        (report["findings"].as_array().unwrap().iter()).map(|f| (&f["rule"], &f["pod"], &f["workload"])).collect();
    assert_eq!(found, [(&json!("workload.quota-exceeded"), &Value::Null, &json!("shop/ReplicaSet/web-7d4b9c"))]);
    assert_eq!(report["summary"]["failing_workloads"], 1);
    let requests = api.requests();
    // every owner kind listed once, though no pod names an owner; events of every kind asked for
    for path in ["/apis/apps/v1/namespaces/shop/replicasets", "/apis/batch/v1/namespaces/shop/cronjobs"] {
        assert_eq!(lists_of(&requests, path).len(), 1, "{path}: {requests:?}");
    }
    let events = lists_of(&requests, "/api/v1/namespaces/shop/events");
    assert_eq!(events.len(), 1);
    assert!(!events[0].to_string().contains("involvedObject.kind"), "{:?}", events[0]);
}

#[test]
fn watch_diagnoses_workloads_and_writes_their_events_on_them() {
    let data = tempfile::tempdir().unwrap();
    write(data.path(), "pods.json", vec![healthy_pod("shop", "api-0", "u-api"), node()]);
    let api = KubeApi::start(data.path(), &[]);
    let options = watch::Options { emit_events: true, resync: std::time::Duration::from_secs(1), ..Default::default() };
    let (handle, changes, stop) = start_watch(&api, options.clone());
    let synced =
        |changes: &Changes| wait_for(30, || changes.lock().unwrap().iter().any(|c| matches!(c, Change::Synced { .. })));
    assert!(synced(&changes));
    assert!(!changes.lock().unwrap().iter().any(|c| matches!(c, Change::New(_))), "{:#?}", changes.lock().unwrap());

    // a ReplicaSet whose pods a quota refuses: no pod, only its FailedCreate event
    let rs = |replicas: u32| {
        json!({"kind": "ReplicaSet", "apiVersion": "apps/v1",
            "metadata": {"name": "web-7d4b9c", "namespace": "shop", "uid": "rs-web"},
            "spec": {"replicas": 2}, "status": {"replicas": replicas}})
    };
    api.post("/_objects", &rs(0));
    api.post("/_objects", &json!({"kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "web-7d4b9c.1", "namespace": "shop"},
        "involvedObject": {"kind": "ReplicaSet", "namespace": "shop", "name": "web-7d4b9c", "uid": "rs-web"},
        "reason": "FailedCreate", "type": "Warning", "lastTimestamp": "2024-05-01T11:59:00Z",
        "message": "Error creating: pods \"web-7d4b9c-q8x2l\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=4, limited: pods=4"}));
    // an event of another kind is not kept
    api.post(
        "/_objects",
        &json!({"kind": "Event", "apiVersion": "v1",
        "metadata": {"name": "node-1.1", "namespace": "shop"},
        "involvedObject": {"kind": "Node", "name": "node-1", "uid": "node-1"},
        "reason": "NodeNotReady", "type": "Normal", "message": "Node node-1 status is now: NodeNotReady"}),
    );
    let subject = "shop/ReplicaSet/web-7d4b9c";
    let quota = |c: &[Change]| new_of(c, subject).iter().filter(|f| f.rule == "workload.quota-exceeded").count();
    assert!(wait_for(20, || quota(&changes.lock().unwrap()) == 1), "{:#?}", changes.lock().unwrap());
    {
        let c = changes.lock().unwrap();
        let f = &new_of(&c, subject)[0];
        assert_eq!((f.pod.as_deref(), f.workload.as_deref()), (None, Some(subject)));
    }

    // one Event, on the ReplicaSet, while the cause stays (through a few resyncs)
    let created = || {
        api.requests()
            .into_iter()
            .filter(|r| r["method"] == "POST" && r["path"] == "/apis/events.k8s.io/v1/namespaces/shop/events")
            .collect::<Vec<_>>()
    };
    assert!(wait_for(10, || created().len() == 1), "{:#?}", created());
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let created = created();
    assert_eq!(created.len(), 1, "{created:#?}");
    let body = &created[0]["body"];
    assert_eq!(
        (&body["regarding"], &body["reason"], &body["type"]),
        (
            &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "namespace": "shop", "name": "web-7d4b9c", "uid": "rs-web"}),
            &json!("WorkloadQuotaExceeded"),
            &json!("Warning")
        )
    );

    // after a restart, the Event on the ReplicaSet stands for its finding
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let (handle, changes, stop) = start_watch(&api, options);
    assert!(synced(&changes));
    assert_eq!(quota(&changes.lock().unwrap()), 1, "{:#?}", changes.lock().unwrap());
    let writes = api.requests().into_iter().filter(|r| r["method"] != "GET").count();
    assert_eq!(writes, 1, "{:#?}", api.requests());

    // the ReplicaSet gets its pods: resolved
    api.post("/_objects", &rs(2));
    let resolved = |c: &[Change]| resolved_of(c, subject);
    assert!(wait_for(20, || resolved(&changes.lock().unwrap()).len() == 1), "{:#?}", changes.lock().unwrap());
    assert!(!resolved(&changes.lock().unwrap())[0].1, "not deleted");
    // refused again, then deleted: resolved as deleted
    api.post("/_objects", &rs(0));
    assert!(wait_for(20, || quota(&changes.lock().unwrap()) == 2), "{:#?}", changes.lock().unwrap());
    api.post(
        "/_delete",
        &json!({"kind": "ReplicaSet", "apiVersion": "apps/v1", "namespace": "shop", "name": "web-7d4b9c"}),
    );
    assert!(wait_for(20, || resolved(&changes.lock().unwrap()).len() == 2), "{:#?}", changes.lock().unwrap());
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let c = changes.lock().unwrap();
    assert!(resolved(&c)[1].1, "deleted: {c:#?}");
    assert!(c.iter().all(|c| !matches!(c, Change::Note(_))), "{c:#?}");

    // deploy/clusterrole.yaml grants every list and watch the watch made
    let role: Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("deploy/clusterrole.yaml")).unwrap()).unwrap();
    let granted: std::collections::BTreeSet<(String, String, String)> =
        role["rules"].as_array().unwrap().iter().flat_map(rule_grants).collect();
    let reads: Vec<Value> = api.requests().into_iter().filter(|r| r["method"] == "GET").collect();
    assert!(reads.iter().any(|r| r["path"] == "/apis/batch/v1/cronjobs"), "every workload kind is watched");
    for r in reads {
        let path = r["path"].as_str().unwrap();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", "v1", rest @ ..] => ("", rest),
            ["apis", group, _, rest @ ..] => (*group, rest),
            _ => continue, // discovery
        };
        let resource = match rest {
            ["namespaces", _, resource, ..] | [resource, ..] => *resource,
            [] => continue,
        };
        let verb = if r["query"].as_str().unwrap_or("").contains("watch=true") { "watch" } else { "list" };
        assert!(granted.contains(&(group.into(), resource.into(), verb.into())), "{verb} {path}: {granted:?}");
    }
}
