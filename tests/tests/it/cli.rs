//! The command line, end to end, on fixture snapshots.

use std::path::Path;

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
      |
      = help: did you mean `phase`?
    "#);
}

#[test]
fn usage_errors_exit_2() {
    // without -f, diagnose reads a cluster: a kubeconfig that is not there is an input error
    let (code, _, err) = k8srule(&["diagnose", "--now", NOW, "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("/nonexistent/kubeconfig: "), "{err}");
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
    let diagnose_with = |rules: &Path| {
        let rules = rules.display().to_string();
        k8srule(&["diagnose", "-f", &example(), "--now", NOW, "--no-builtin", "--rules", &rules, "-o", "json"])
    };
    let (from_wasm, from_source) = (diagnose_with(&wasm), diagnose_with(&builtin));
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

#[test]
fn explain_prints_what_why_confirm_fix_in_english_and_chinese() {
    let (code, en, err) = k8srule(&["explain", "crashloop.cgroup-oom"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("explain_en", en);
    let (code, zh, _) = k8srule(&["explain", "crashloop.cgroup-oom", "--lang", "zh"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("explain_zh", zh);
    let (code, _, err) = k8srule(&["explain", "no.such-rule"]);
    assert_eq!((code, err.as_str()), (2, "no.such-rule: no such rule (see `k8srule rules`)\n"));
}

#[test]
fn explain_takes_any_language_a_pack_has_and_falls_back_to_english() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("t.k8srule");
    std::fs::write(
        &rules,
        "rule team.failed {\n  cause \"team-failed\"\n  severity error\n  when pod.status.phase == \"Failed\"\n  \
         title \"pod failed\" ja \"ポッドが失敗しました\" pt-BR \"o pod falhou\"\n  fix \"look at it\" ja \"確認する\"\n}\n",
    )
    .unwrap();
    let rules = rules.display().to_string();
    let explain = |lang: &str| {
        let (code, out, err) = k8srule(&["explain", "team.failed", "--no-builtin", "--rules", &rules, "--lang", lang]);
        assert_eq!(code, 0, "{lang}: {err}");
        out
    };
    // the tag, in any case, and a more specific one (RFC 4647 lookup)
    for lang in ["ja", "JA", "ja-JP"] {
        let out = explain(lang);
        assert!(out.contains("\nポッドが失敗しました\n") && out.contains("  確認する\n"), "{lang}: {out}");
    }
    assert!(explain("pt-br").contains("\no pod falhou\n"));
    // a language the rule has no text in: English texts and headings
    let fr = explain("fr");
    assert!(fr.contains("\npod failed\n") && fr.contains("How to fix\n  look at it"), "{fr}");
    let (code, _, err) = k8srule(&["explain", "team.failed", "--lang", "english"]);
    assert_eq!(code, 2);
    assert!(err.contains("`english` is not a language tag"), "{err}");
}

/// Every row of the cheat-sheet has a built-in rule with its cause key, and
/// every built-in rule documents itself.
#[test]
fn builtin_rules_cover_the_cheat_sheet() {
    let (code, out, err) = k8srule(&["rules", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rules = listing["rules"].as_array().unwrap();
    let causes: Vec<&str> = rules.iter().map(|r| r["cause"].as_str().unwrap()).collect();
    let states = [
        "Error",
        "NodeLost",
        "Unknown",
        "Waiting",
        "Pending",
        "ContainerCreating",
        "Terminating",
        "CrashLoopBackOff",
        "InvalidImageName",
        "ImageInspectError",
        "ErrImageNeverPull",
        "ImagePullBackOff",
        "RegistryUnavailable",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreStartHookError",
        "PostStartHookError",
        "ContainersNotInitialized",
        "ContainersNotReady",
        "PodInitializing",
        "DockerDaemonNotReady",
        "NetworkPluginNotReady",
    ];
    let keys = [
        "app-exit",
        "system-oom",
        "cgroup-oom",
        "memory-fragmentation",
        "probe-failure",
        "pod-config-error",
        "volume-mount-failure",
        "disk-full",
        "image-pull-failure",
        "cni-error",
        "controller-manager-unhealthy",
        "duplicate-container-name",
        "docker-leftover",
        "immutable-file-attr",
        "docker17-hang",
        "finalizers",
        "kubelet-listwatch-bug",
        "runtime-out-of-sync",
        "daemonset-controller-bug",
    ];
    for s in states {
        let key = format!("state.{s}");
        assert!(causes.contains(&key.as_str()), "no rule for {key}");
    }
    for k in keys {
        assert!(causes.iter().any(|c| k8srule_host::test_support::cause_matches(c, k)), "no rule for {k}");
    }
    assert!(causes.iter().any(|c| c.starts_with("signal.")), "no rule decodes signals");
    // the causes that leave no pod are found by workload rules, titled with what their placeholders show
    for key in [
        "workload.quota-exceeded",
        "workload.admission-denied",
        "workload.service-account-missing",
        "workload.backoff-limit",
        "workload.deadline-exceeded",
        "workload.progress-deadline",
    ] {
        let rule = rules.iter().find(|r| r["cause"] == key).unwrap_or_else(|| panic!("no rule for {key}"));
        assert_eq!(rule["scope"], "workload", "{rule}");
        assert!(rule["title"].as_str().unwrap().contains("<w.metadata.name>"), "{rule}");
    }
    for r in rules {
        let id = r["id"].as_str().unwrap();
        let (code, doc, _) = k8srule(&["explain", id]);
        assert_eq!(code, 0);
        for section in ["What it detects\n  ", "Why it happens\n  ", "How to confirm\n  ", "How to fix\n  "] {
            let body = doc.split(section).nth(1).unwrap_or("");
            assert!(!body.trim_start().is_empty() && !body.starts_with('\n'), "{id}: empty `{}`", section.trim());
        }
    }
}

/// docs/cli.md is generated from the CLI definition; regenerate it with
/// `K8SRULE_UPDATE_DOCS=1 cargo test -p k8srule-tests --test it cli_reference`.
#[test]
fn cli_reference_is_current() {
    let path = root().join("docs/cli.md");
    let current = k8srule_host::test_support::reference();
    if std::env::var_os("K8SRULE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == current,
        "docs/cli.md is out of date: run K8SRULE_UPDATE_DOCS=1 cargo test -p k8srule-tests --test it cli_reference"
    );
}

#[test]
fn every_report_format_renders_the_mixed_namespace() {
    // relative to the test's directory, so the HTML page names the same source everywhere
    let mixed = "../examples/snapshots/mixed.json";
    for format in ["table", "wide", "json", "yaml", "markdown", "junit", "html"] {
        let (code, out, err) = k8srule(&["diagnose", "-f", mixed, "--now", NOW, "-o", format]);
        assert_eq!(code, 0, "{format}: {err}");
        insta::assert_snapshot!(format!("mixed_{format}"), out);
    }
}

#[test]
fn min_severity_filters_and_fail_on_gates() {
    let mixed = root().join("examples/snapshots/mixed.json").display().to_string();
    let (code, out, _) = k8srule(&[
        "diagnose",
        "-f",
        &mixed,
        "--now",
        NOW,
        "-o",
        "json",
        "--min-severity",
        "error",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(code, 1, "the mixed namespace has critical findings");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let severities: Vec<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["severity"].as_str().unwrap()).collect();
    assert!(
        severities.contains(&"critical") && severities.iter().all(|s| *s == "error" || *s == "critical"),
        "{severities:?}"
    );
    let (code, _, _) = k8srule(&["diagnose", "-f", &example(), "--now", NOW, "--fail-on", "critical"]);
    assert_eq!(code, 0, "the example has no critical finding");
}

#[test]
fn one_pod_can_be_focused_and_kubectl_plugin_name_works() {
    let (code, out, err) = k8srule(&["diagnose", "pod/worker-0", "-f", &example(), "--now", NOW]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pod shop/worker-0") && !out.contains("web-7d4b9c"), "{out}");
    assert!(out.ends_with("1 pods diagnosed, 1 unhealthy: signal 1 (SIGSEGV 1)\n"), "{out}");
    let (code, _, err) = k8srule(&["diagnose", "nope", "-f", &example(), "--now", NOW]);
    assert_eq!((code, err.as_str()), (2, "pods \"nope\" not found\n"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = ["/usr/local/bin/kubectl-diagnose", "worker-0", "-f", &example(), "--now", NOW];
    assert_eq!(k8srule_host::run_cli(argv, &mut out, &mut err), 0, "{}", String::from_utf8_lossy(&err));
    assert!(String::from_utf8_lossy(&out).contains("pod shop/worker-0"));
}

#[test]
fn fmt_check_passes_on_builtin_rules() {
    let (code, out, _) = k8srule(&["fmt", "--check", &root().join("plugins/builtin").display().to_string()]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn help_follows_color_and_kubectl_names_the_plugin_as_kubectl_does() {
    // not a terminal here: no colour unless asked for
    let (code, plain, _) = k8srule(&["diagnose", "--help"]);
    assert_eq!(code, 0);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(plain.contains("crashloop.json\n"), "each example on its own line: {plain}");
    let (_, colored, _) = k8srule(&["diagnose", "--help", "--color", "always"]);
    assert!(colored.contains('\x1b'), "{colored}");
    let (code, _, err) = k8srule(&["diagnose", "--no-such-flag", "--color=never"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag") && !err.contains('\x1b'), "{err}");

    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(k8srule_host::run_cli(["kubectl-diagnose", "--help"], &mut out, &mut err), 0);
    let help = String::from_utf8(out).unwrap();
    assert!(help.contains("Usage: kubectl diagnose [OPTIONS]"), "{help}");
    assert!(!help.contains("kubectl-diagnose diagnose"), "{help}");
}
