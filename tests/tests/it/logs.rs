//! Container logs as evidence: bundles' `logs/` and cluster-info dumps'
//! `logs.txt` loaded, bounded and redacted; rules reading `c.logs`; the
//! app-exit refinements ranked above the plain app-exit.

use std::path::Path;

use k8srule_host::test_support::container_logs;
use k8srule_host::test_support::snapshot::{LogKey, MAX_LOG_LINES};
use k8srule_host::{Diagnoser, Snapshot};
use k8srule_tests::{diagnose_json, findings_of, k8srule, root};
use serde_json::Value;

const NOW: &str = "2024-05-01T12:00:00Z";

fn fixture(name: &str) -> String {
    root().join("tests/fixtures/logs").join(name).display().to_string()
}

fn diagnose(args: &[&str]) -> Value {
    diagnose_json(NOW, args)
}

fn evidence(f: &Value) -> String {
    f["evidence"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_bundle_with_logs_gives_refined_causes_with_the_lines_around_the_fatal_one() {
    let r = diagnose(&["-f", &fixture("bundle")]);
    let api = findings_of(&r, "shop/api-7c9f");
    assert_eq!(api[0]["rule"], "app-exit.crash", "{api:#?}");
    assert_eq!(api[0]["cause"], "app-exit.crash");
    assert_eq!(
        api[0]["title"],
        "container api crashed: panic: runtime error: invalid memory address or nil pointer dereference"
    );
    // the plain app-exit is ranked under the refinement that explains it
    let plain = api.iter().find(|f| f["rule"] == "crashloop.app-exit").expect("the plain app-exit stays");
    assert_eq!(plain["explained_by"], "app-exit.crash");
    // the fatal line, two lines before and two after, secrets redacted
    assert_eq!(
        evidence(api[0]).lines().take(6).collect::<Vec<_>>(),
        [
            "logs/shop/api-7c9f/api.previous.log:",
            "2024/05/01 11:57:59 connecting to postgres://[REDACTED]@db.shop:5432/app",
            "2024/05/01 11:58:00 using password=[REDACTED] for the cache",
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6b4f2a]",
            "",
        ]
    );
    assert!(!r.to_string().contains("s3cr3t") && !r.to_string().contains("hunter2"));
    // a Java heap OutOfMemoryError (exit 3) is not a cgroup OOM
    let orders = findings_of(&r, "shop/orders-0");
    assert_eq!(orders[0]["rule"], "app-exit.jvm-heap", "{orders:#?}");
    assert!(orders.iter().all(|f| f["cause"] != "cgroup-oom"), "{orders:#?}");
    // a log that is not UTF-8 is read with replacement characters
    assert!(evidence(orders[0]).contains("caf\u{fffd} order \u{fffd}\u{fffd} received"), "{}", evidence(orders[0]));
    assert!(findings_of(&r, "shop/web-1").is_empty());
    assert_eq!(
        r["notes"].as_array().unwrap().iter().filter(|n| n.as_str().unwrap().contains("logs")).collect::<Vec<_>>(),
        ["ignored the logs of 1 pod(s) not in the snapshot: shop/gone-5d8f"]
    );
}

#[test]
fn a_cluster_info_dump_gives_its_logs_txt_to_the_rules() {
    let r = diagnose(&["-f", &fixture("cluster-info-dump")]);
    let api = findings_of(&r, "shop/api-7c9f");
    assert_eq!(api[0]["rule"], "app-exit.crash", "{r:#}");
    assert!(evidence(api[0]).starts_with("shop/api-7c9f/logs.txt:\npanic: runtime error"), "{}", evidence(api[0]));
    let orders = findings_of(&r, "shop/orders-0");
    assert_eq!(orders[0]["rule"], "app-exit.jvm-heap", "{r:#}");
    assert!(findings_of(&r, "shop/web-1").is_empty());
    assert!(r["notes"].as_array().unwrap().iter().all(|n| !n.as_str().unwrap().contains("logs.txt")), "{r:#}");
}

#[test]
fn logs_are_not_read_when_no_rule_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("my.k8srule");
    std::fs::write(
        &rule,
        "rule my.exit {\n  cause \"app-exit\"\n  severity error\n  for c in containers\n  \
         when c.lastState.terminated.exitCode == 2\n  title \"{c.name} exited 2\"\n}\n",
    )
    .unwrap();
    let rule = rule.display().to_string();
    let r = diagnose(&["-f", &fixture("bundle"), "--no-builtin", "--rules", &rule]);
    assert_eq!(r["findings"].as_array().unwrap().len(), 1);
    assert_eq!(r["notes"], serde_json::json!(["skipped 4 container log file(s): no rule reads logs"]));
}

#[test]
fn configured_patterns_are_redacted_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("k8srule.yaml");
    std::fs::write(&config, "redact: ['db\\.shop']\n").unwrap();
    let r = diagnose(&["-f", &fixture("bundle"), "--config", &config.display().to_string()]);
    let api = findings_of(&r, "shop/api-7c9f");
    assert!(evidence(api[0]).contains("postgres://[REDACTED]@[REDACTED]:5432/app"), "{}", evidence(api[0]));
    std::fs::write(&config, "redact: ['(']\n").unwrap();
    let (code, _, err) = k8srule(&["diagnose", "-f", &fixture("bundle"), "--config", &config.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("redact pattern `(`"), "{err}");
}

#[test]
fn a_huge_line_is_cut_and_a_long_log_keeps_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path();
    std::fs::copy(root().join("tests/fixtures/logs/bundle/pods.json"), bundle.join("pods.json")).unwrap();
    let logs = bundle.join("logs/shop/api-7c9f");
    std::fs::create_dir_all(&logs).unwrap();
    // 50 MB in one line, then many short ones, then the panic
    let mut text = vec![b'x'; 50 << 20];
    text.push(b'\n');
    for i in 0..(MAX_LOG_LINES + 10) {
        text.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    text.extend_from_slice(b"panic: boom\n");
    std::fs::write(logs.join("api.previous.log"), &text).unwrap();
    let r = diagnose(&["-f", &bundle.display().to_string()]);
    let api = findings_of(&r, "shop/api-7c9f");
    assert_eq!(api[0]["title"], "container api crashed: panic: boom", "{api:#?}");

    let diagnoser = Diagnoser::builder().threads(1).build().unwrap();
    let mut snapshot = diagnoser.snapshot(0);
    let key = LogKey { namespace: "shop".into(), pod: "p".into(), container: "c".into() };
    let huge = [vec![b'y'; 50 << 20], b"\nend\n".to_vec()].concat();
    snapshot.add_container_log(key, true, "test", &huge[..]).unwrap();
    let lines = container_logs(&snapshot).remove(0).2;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], format!("{} … [cut {} bytes]", "y".repeat(4096), (50 << 20) - 4096));
    assert_eq!(lines[1], "end");
}

#[test]
fn a_snapshot_bundle_writes_its_logs_and_reads_them_back() {
    let diagnoser = Diagnoser::builder().threads(1).build().unwrap();
    let load = |path: &Path| {
        let mut s = diagnoser.snapshot(0);
        s.add_path(path).unwrap();
        s
    };
    let first = load(Path::new(&fixture("bundle")));
    let dir = tempfile::tempdir().unwrap();
    first.write_bundle(dir.path()).unwrap();
    let written = dir.path().join("logs/shop/api-7c9f/api.previous.log");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains("password=[REDACTED]") && text.contains("panic: runtime error"), "{text}");
    let back = load(dir.path());
    let lines = |s: &Snapshot| {
        let mut all = container_logs(s);
        all.sort();
        all
    };
    assert_eq!(lines(&back), lines(&first));
}

/// A cluster (the API emulator) with the bundle's pods and logs.
fn cluster_with_logs(args: &[&str]) -> (tempfile::TempDir, k8srule_tests::KubeApi) {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("tests/fixtures/logs/bundle/pods.json"), data.path().join("pods.json")).unwrap();
    let logs = data.path().join("logs/shop/api-7c9f");
    std::fs::create_dir_all(&logs).unwrap();
    let bundle_log = root().join("tests/fixtures/logs/bundle/logs/shop/api-7c9f/api.previous.log");
    std::fs::copy(bundle_log, logs.join("api.previous.log")).unwrap();
    let api = k8srule_tests::KubeApi::start(data.path(), args);
    (data, api)
}

#[test]
fn a_live_read_asks_pods_log_for_the_previous_run_with_bounds() {
    let (_data, api) = cluster_with_logs(&[]);
    let kc = api.kubeconfig();
    let r = diagnose(&["--kubeconfig", &kc, "-n", "shop", "--log-tail-lines", "50", "--log-limit-bytes", "4096"]);
    let crash = findings_of(&r, "shop/api-7c9f");
    assert_eq!(crash[0]["rule"], "app-exit.crash", "{r:#}");
    assert!(
        evidence(crash[0]).starts_with(
            "kubectl logs api-7c9f -n shop -c api --previous:\n2024/05/01 11:57:59 connecting to postgres://[REDACTED]@"
        ),
        "{}",
        evidence(crash[0])
    );
    let mut logs: Vec<String> = api
        .requests()
        .iter()
        .filter(|q| q["path"].as_str().unwrap().ends_with("/log"))
        .map(|q| format!("{}?{}", q["path"].as_str().unwrap(), q["query"].as_str().unwrap()))
        .collect();
    logs.sort();
    // restarted containers: their previous run; the running, ready web-1: nothing
    assert_eq!(
        logs,
        [
            "/api/v1/namespaces/shop/pods/api-7c9f/log?&container=api&limitBytes=4096&previous=true&tailLines=50",
            "/api/v1/namespaces/shop/pods/orders-0/log?&container=app&limitBytes=4096&previous=true&tailLines=50",
        ]
    );
    // orders-0 has no previous log on this server (400): no log, and no note
    assert_eq!(r["notes"], serde_json::json!([]));
    assert_eq!(findings_of(&r, "shop/orders-0")[0]["rule"], "crashloop.app-exit");
}

#[test]
fn a_forbidden_log_is_a_note_and_no_rule_reading_logs_asks_for_none() {
    let (_data, api) = cluster_with_logs(&["--forbid", "pods/log"]);
    let kc = api.kubeconfig();
    let r = diagnose(&["--kubeconfig", &kc, "-n", "shop"]);
    let notes: Vec<&str> = r["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(
        notes.iter().any(|n| n.starts_with("cannot read 2 container log(s)") && n.contains("forbidden")),
        "{notes:?}"
    );
    assert!(findings_of(&r, "shop/api-7c9f").iter().all(|f| f["rule"] != "app-exit.crash"));

    let (_data, api) = cluster_with_logs(&[]);
    let kc = api.kubeconfig();
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("my.k8srule");
    std::fs::write(&rule, "rule my.r {\n  cause \"x\"\n  severity info\n  for c in containers\n  when c.restartCount > 0\n  title \"{c.name}\"\n}\n").unwrap();
    let rule = rule.display().to_string();
    diagnose(&["--kubeconfig", &kc, "-n", "shop", "--no-builtin", "--rules", &rule]);
    assert!(api.requests().iter().all(|q| !q["path"].as_str().unwrap().ends_with("/log")));
}

#[test]
fn every_app_exit_refinement_is_explained_in_english_and_chinese() {
    let ids = [
        "exec-format",
        "not-executable",
        "command-not-found",
        "jvm-heap",
        "crash",
        "port-in-use",
        "dependency-unreachable",
        "missing-config",
        "permission",
        "tls",
    ];
    for id in ids.map(|i| format!("app-exit.{i}")) {
        let (code, en, err) = k8srule(&["explain", &id]);
        assert_eq!(code, 0, "{id}: {err}");
        assert!(en.starts_with(&format!("{id} ({id}, error, confidence ")), "{en}");
        assert!(
            en.contains("What it detects") && en.contains("How to fix") && en.contains("Explains: app-exit"),
            "{en}"
        );
        let (code, zh, _) = k8srule(&["explain", &id, "--lang", "zh"]);
        assert_eq!(code, 0);
        assert!(zh.contains("检测内容") && zh.contains("如何修复"), "{zh}");
        // the title, what it detects, why and the fix are translated
        let after = |text: &str, heading: &str| text.split(heading).nth(1).unwrap().lines().nth(1).unwrap().to_string();
        for heading in ["What it detects", "Why it happens", "How to fix"] {
            assert!(!zh.contains(&after(&en, heading)), "{id} {heading}: {zh}");
        }
        assert!(!zh.contains(en.lines().nth(2).unwrap()), "{zh}");
    }
}

#[test]
fn watch_reads_the_logs_of_the_pods_it_diagnoses() {
    let (_data, api) = cluster_with_logs(&[]);
    let kc = api.kubeconfig();
    let (handle, out, err) = k8srule_tests::k8srule_background(&[
        "watch",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
        "-o",
        "json",
        "--duration",
        "1",
    ]);
    assert_eq!(handle.join().unwrap(), 0, "{}", err.text());
    let lines: Vec<Value> = out.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let crash = lines.iter().find(|l| l["type"] == "new" && l["finding"]["rule"] == "app-exit.crash");
    let crash = crash.unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(crash["finding"]["pod"], "shop/api-7c9f");
    assert!(api.requests().iter().any(|q| q["path"] == "/api/v1/namespaces/shop/pods/api-7c9f/log"));
    assert!(api.requests().iter().all(|q| q["path"] != "/api/v1/namespaces/shop/pods/web-1/log"));
}
