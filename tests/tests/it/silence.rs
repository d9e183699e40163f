//! `k8srule.dev/ignore` annotations on pods and on their workloads: the
//! findings they name leave the report's findings, `--fail-on` and the
//! table, and stay in JSON's `silenced` and `-o wide` with who silenced them
//! and why; a value that names nothing is a note.

use k8srule_tests::{KubeApi, diagnose_json, k8srule, k8srule_background, root};

const NOW: &str = "2024-05-01T12:00:00Z";

fn fixture(name: &str) -> String {
    root().join("tests/fixtures/silence").join(name).display().to_string()
}

/// (pod, rule, annotated object, entry, reason) of each silenced finding.
fn silenced(report: &serde_json::Value) -> Vec<(String, String, String, String, Option<String>)> {
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    report["silenced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let by = &f["silenced"];
            (s(&f["pod"]), s(&f["rule"]), s(&by["object"]), s(&by["entry"]), by["reason"].as_str().map(Into::into))
        })
        .collect()
}

#[test]
fn a_rule_id_a_cause_key_and_a_deployment_silence_their_findings() {
    let report = diagnose_json(NOW, &["-f", &fixture("silenced.json")]);
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["summary"], serde_json::json!({"pods": 3, "unhealthy": 0, "failing_workloads": 0}));
    let reason = |r: &str| Some(r.to_string());
    let row = |pod: &str, rule: &str, object: &str, entry: &str, why: Option<String>| {
        (format!("shop/{pod}"), rule.to_string(), format!("shop/{object}"), entry.to_string(), why)
    };
    let ticket = reason("a batch sized to be killed; see TICKET-12");
    let load = reason("load test in progress");
    assert_eq!(
        silenced(&report),
        [
            // a rule id on the pod: its root cause, and the symptoms it explains with it
            row("oom-1", "crashloop.cgroup-oom", "Pod/oom-1", "crashloop.cgroup-oom", ticket.clone()),
            row("oom-1", "states.crashloopbackoff", "Pod/oom-1", "crashloop.cgroup-oom", ticket.clone()),
            row("oom-1", "signals.exit-signal", "Pod/oom-1", "crashloop.cgroup-oom", ticket),
            // a cause key covers its refinements: `signal` is `signal.SIGSEGV` too
            row("segv-1", "signals.exit-signal", "Pod/segv-1", "signal", None),
            row("segv-1", "states.crashloopbackoff", "Pod/segv-1", "signal", None),
            // on the Deployment over the pod's ReplicaSet, each entry by its name
            row("web-6f7c8d9-abcde", "crashloop.cgroup-oom", "Deployment/web", "cgroup-oom", load.clone()),
            row(
                "web-6f7c8d9-abcde",
                "states.crashloopbackoff",
                "Deployment/web",
                "state.CrashLoopBackOff",
                load.clone()
            ),
            row("web-6f7c8d9-abcde", "signals.exit-signal", "Deployment/web", "signal.SIGKILL", load),
        ]
    );
    assert_eq!(report["notes"], serde_json::json!([]));
    // nothing left to fail on
    let (code, table, err) = k8srule(&["diagnose", "-f", &fixture("silenced.json"), "--now", NOW, "--fail-on", "info"]);
    assert_eq!(code, 0, "{err}");
    assert!(!table.contains("pod shop/"), "{table}");
    assert!(
        table
            .contains("note: 8 finding(s) of 3 pod(s) or workload(s) silenced by k8srule.dev/ignore annotations (-o wide lists them)"),
        "{table}"
    );
    let (_, wide, _) = k8srule(&["diagnose", "-f", &fixture("silenced.json"), "--now", NOW, "-o", "wide"]);
    assert!(
        wide.contains(
            "ERROR shop/web-6f7c8d9-abcde [app]: cgroup-oom (crashloop.cgroup-oom), by shop/Deployment/web `cgroup-oom`: load test in progress"
        ),
        "{wide}"
    );
}

#[test]
fn an_entry_that_names_nothing_is_a_note_and_the_rest_still_silences() {
    let files = ["-f", &fixture("silenced.json"), "-f", &fixture("malformed.json")];
    let report = diagnose_json(NOW, &files);
    let findings: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["pod"].as_str().unwrap(), f["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(findings, [("shop/loud-1", "signals.exit-signal")]);
    assert_eq!(
        report["notes"],
        serde_json::json!([
            "shop/Pod/loud-1: annotation k8srule.dev/ignore: `Not A Rule!`, `no-such-cause` name(s) no loaded rule or cause; ignored"
        ])
    );
    assert!(silenced(&report).iter().any(|s| s.0 == "shop/loud-1" && s.1 == "states.crashloopbackoff"));
    let gate = |level: &str| {
        let mut args = vec!["diagnose", "--now", NOW, "--fail-on", level];
        args.extend(files);
        k8srule(&args).0
    };
    // the one finding left is a warning; the silenced errors do not count
    assert_eq!((gate("warning"), gate("error")), (1, 0));
}

/// The example's pods on the API emulator, their ReplicaSet's Deployment
/// annotated to silence `cgroup-oom`.
fn annotated_cluster() -> (tempfile::TempDir, KubeApi) {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/snapshots/crashloop.json"), data.path().join("crashloop.json")).unwrap();
    let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "dep-1",
                     "annotations": {"k8srule.dev/ignore": "cgroup-oom", "k8srule.dev/ignore-reason": "load test"}}});
    std::fs::write(data.path().join("deployment.json"), deployment.to_string()).unwrap();
    let api = KubeApi::start(data.path(), &[]);
    (data, api)
}

#[test]
fn a_live_read_and_watch_follow_the_owners_to_the_annotated_deployment() {
    let (_data, api) = annotated_cluster();
    let kc = api.kubeconfig();
    let report = diagnose_json(NOW, &["--kubeconfig", &kc]);
    let silenced = silenced(&report);
    assert_eq!(silenced[0].1, "crashloop.cgroup-oom");
    assert_eq!((silenced[0].2.as_str(), silenced[0].4.as_deref()), ("shop/Deployment/web", Some("load test")));
    assert!(!report["findings"].as_array().unwrap().iter().any(|f| f["pod"] == "shop/web-7d4b9c-x2x9k"), "{report:#}");
    let (handle, out, err) = k8srule_background(&["watch", "--kubeconfig", &kc, "-o", "json", "--duration", "1"]);
    assert_eq!(handle.join().unwrap(), 0, "{}", err.text());
    let new: Vec<(String, String)> = out
        .text()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["type"] == "new")
        .map(|l| (l["finding"]["pod"].as_str().unwrap().into(), l["finding"]["rule"].as_str().unwrap().into()))
        .collect();
    assert!(new.iter().any(|(pod, _)| pod == "shop/worker-0"), "{new:?}");
    assert!(!new.iter().any(|(pod, _)| pod == "shop/web-7d4b9c-x2x9k"), "{new:?}");
}

#[test]
fn a_workload_finding_is_silenced_by_the_workload_or_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    // two ReplicaSets a quota refuses: one annotated itself, one through its Deployment
    let refused = |rs: &str, annotations: serde_json::Value, owner: serde_json::Value| {
        vec![
            serde_json::json!({"kind": "ReplicaSet", "apiVersion": "apps/v1",
                "metadata": {"name": rs, "namespace": "shop", "uid": format!("rs-{rs}"), "annotations": annotations,
                             "ownerReferences": owner},
                "spec": {"replicas": 1}, "status": {"replicas": 0}}),
            serde_json::json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": format!("{rs}.1"), "namespace": "shop"},
                "involvedObject": {"kind": "ReplicaSet", "namespace": "shop", "name": rs, "uid": format!("rs-{rs}")},
                "reason": "FailedCreate", "type": "Warning",
                "message": format!("Error creating: pods \"{rs}-x\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2")}),
        ]
    };
    let mut items =
        refused("web-1", serde_json::json!({"k8srule.dev/ignore": "workload.quota-exceeded"}), serde_json::json!([]));
    let owner = serde_json::json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "d-api", "controller": true}]);
    items.extend(refused("api-2", serde_json::json!({}), owner));
    items.push(serde_json::json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "api", "namespace": "shop", "uid": "d-api",
                     "annotations": {"k8srule.dev/ignore": "workload", "k8srule.dev/ignore-reason": "quota raised on Monday"}}}));
    items.extend(refused("cart-3", serde_json::json!({}), serde_json::json!([])));
    let file = dir.path().join("workloads.json");
    std::fs::write(&file, serde_json::json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string()).unwrap();
    let report = diagnose_json(NOW, &["-f", file.to_str().unwrap()]);
    let kept: Vec<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["workload"].as_str().unwrap()).collect();
    assert_eq!(kept, ["shop/ReplicaSet/cart-3"]);
    let by: Vec<(&str, &str, &str)> = (report["silenced"].as_array().unwrap().iter())
        .map(|f| {
            let s = &f["silenced"];
            (f["workload"].as_str().unwrap(), s["object"].as_str().unwrap(), s["entry"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        by,
        [
            ("shop/ReplicaSet/api-2", "shop/Deployment/api", "workload"),
            ("shop/ReplicaSet/web-1", "shop/ReplicaSet/web-1", "workload.quota-exceeded"),
        ]
    );
    assert_eq!(report["summary"]["failing_workloads"], 1);
    // the one left fails the run; silenced, it would not
    let (code, table, err) = k8srule(&["diagnose", "-f", file.to_str().unwrap(), "--now", NOW, "--fail-on", "error"]);
    assert_eq!(code, 1, "{err}");
    assert!(table.contains("workload shop/ReplicaSet/cart-3"), "{table}");
    let (code, _, err) = k8srule(&["diagnose", "-f", file.to_str().unwrap(), "--now", NOW, "--fail-on", "critical"]);
    assert_eq!(code, 0, "{err}");
}
