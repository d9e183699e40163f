//! The command line, end to end, on fixture snapshots.

use k8srule_tests::{k8srule, root};

const NOW: &str = "2024-05-01T12:00:00Z";

fn example() -> String {
    root().join("examples/snapshots/crashloop.json").display().to_string()
}

#[test]
fn diagnoses_the_bundled_example_as_json() {
    let (code, out, err) = k8srule(&["diagnose", "-f", &example(), "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn the_same_snapshot_and_now_give_identical_json() {
    let a = k8srule(&["diagnose", "-f", &example(), "--now", NOW, "-o", "json"]);
    let b = k8srule(&["diagnose", "-f", &example(), "--now", NOW, "-o", "json"]);
    assert_eq!(a, b);
}

#[test]
fn a_user_rule_file_runs_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("my.k8srule");
    std::fs::write(
        &rule,
        r#"
rule my.oom {
  cause "cgroup-oom"
  severity error
  for c in containers
  when c.lastState.terminated.reason == "OOMKilled"
  title "container {c.name} of {pod.metadata.name} was OOMKilled (limit {c.resources.limits.memory})"
  evidence "exit code {c.lastState.terminated.exitCode}"
}
"#,
    )
    .unwrap();
    let (code, out, err) =
        k8srule(&["diagnose", "-f", &example(), "--now", NOW, "--no-builtin", "--rules", &rule.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("container app of web-7d4b9c-x2x9k was OOMKilled (limit 256Mi)"), "{out}");
    assert!(out.contains("evidence: exit code 137"), "{out}");
    assert!(out.ends_with("4 pods diagnosed, 1 unhealthy: cgroup-oom 1\n"), "{out}");
}

#[test]
fn a_broken_snapshot_is_an_input_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pods.json");
    std::fs::write(&file, "{\"kind\": \"Pod\",\n \"metadata\": {\"name\": }\n}").unwrap();
    let (code, out, err) = k8srule(&["diagnose", "-f", &file.display().to_string(), "--now", NOW]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err, format!("{}:2:23: expected value\n", file.display()));
}

#[test]
fn a_bad_rule_file_is_an_input_error_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("bad.k8srule");
    std::fs::write(
        &rule,
        "rule bad {\n  cause \"x\"\n  severity error\n  when pod.status.phse == \"Running\"\n  title \"t\"\n}\n",
    )
    .unwrap();
    let (code, _, err) = k8srule(&["diagnose", "-f", &example(), "--now", NOW, "--rules", &rule.display().to_string()]);
    assert_eq!(code, 2);
    let err = err.replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(err, @r#"
    error: `phse` is not a field of type `PodStatus`
     --> DIR/bad.k8srule:4:8
      |
    4 |   when pod.status.phse == "Running"
      |        ^^^^^^^^^^^^^^^
      = help: did you mean `phase`?
    "#);
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = k8srule(&["diagnose", "--now", NOW]);
    assert_eq!(code, 2);
    assert!(err.contains("--filename <PATH>"), "{err}");
    let (code, _, err) = k8srule(&["diagnose", "-f", &example(), "--now", "yesterday"]);
    assert_eq!(code, 2);
    assert_eq!(err, "--now: `yesterday` is not an RFC 3339 time such as 2024-05-01T12:00:00Z\n");
}

#[test]
fn check_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("two.k8srule");
    std::fs::write(&rule, "rule a {\n  cause \"x\"\n  severity error\n  for c in containers\n  when c.restartCount > \"3\" and c.redy\n  title \"{c.nme}\"\n}\n").unwrap();
    let (code, _, err) = k8srule(&["check", &rule.display().to_string()]);
    assert_eq!(code, 2);
    assert_eq!(err.matches("error:").count(), 3, "{err}");
    assert!(err.ends_with("3 error(s)\n"), "{err}");
}

#[test]
fn compiled_pack_runs_like_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("pack.wasm");
    let builtin = root().join("plugins/builtin");
    let (code, _, err) = k8srule(&["compile", &builtin.display().to_string(), "-o", &wasm.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let from_wasm = k8srule(&[
        "diagnose",
        "-f",
        &example(),
        "--now",
        NOW,
        "--no-builtin",
        "--rules",
        &wasm.display().to_string(),
        "-o",
        "json",
    ]);
    let from_source = k8srule(&[
        "diagnose",
        "-f",
        &example(),
        "--now",
        NOW,
        "--no-builtin",
        "--rules",
        &builtin.display().to_string(),
        "-o",
        "json",
    ]);
    assert_eq!(from_wasm.0, 0, "{}", from_wasm.2);
    let strip = |s: &str| s.lines().filter(|l| !l.contains("\"pack\"")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&from_wasm.1), strip(&from_source.1));
    assert!(from_wasm.1.contains("\"rule\": \"states.crashloopbackoff\""));
}

#[test]
fn builtin_rule_fixtures_pass() {
    let (code, out, _) = k8srule(&["test", &root().join("plugins/builtin").display().to_string()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().last().is_some_and(|l| l.ends_with(" 0 failed")), "{out}");
}
