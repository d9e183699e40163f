//! `k8srule check` and `fmt` on rule files with mistakes: every error at
//! once, `explains` keys checked against the loaded rules' causes.

use k8srule_tests::k8srule;

const RULE: &str = r#"rule custom.restarts {
  cause "custom.restarts"
  severity warning
  explains "state.CrashLoopBackOff", "state.CrashLoopBackof"
  for c in containers
  when c.restartCount > 5
  title "container {c.name} restarted {c.restartCount} times"
}
"#;

#[test]
fn check_warns_about_explains_keys_no_loaded_rule_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.k8srule");
    std::fs::write(&path, RULE).unwrap();
    let (code, out, err) = k8srule(&["check", &path.display().to_string()]);
    // a warning, not an error: the first key is a built-in rule's cause
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1 file(s) checked, no errors\n");
    let err = err.replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(err, @r#"
    warning: no loaded rule has the cause `state.CrashLoopBackof`, so this explains nothing
     --> DIR/r.k8srule:4:38
      |
    4 |   explains "state.CrashLoopBackOff", "state.CrashLoopBackof"
      |                                      ^^^^^^^^^^^^^^^^^^^^^^^
      |
      = help: did you mean `state.CrashLoopBackOff`?

    1 warning(s)
    "#);
}

#[test]
fn check_reports_every_mistake_and_fmt_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.k8srule");
    let broken = RULE
        .replace("severity warning", "severty warning")
        .replace("c.restartCount > 5", "c.restartCount > 5m or lenn(c.name) > 3")
        .replace("{c.name} restarted", "{c.nam} restarted")
        .replace("times\"", "times");
    std::fs::write(&path, &broken).unwrap();
    let (code, _, err) = k8srule(&["check", &path.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    let messages: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ") || l.starts_with("warning: ")).collect();
    assert_eq!(
        messages,
        [
            "error: expected a clause (`cause`, `severity`, `when`, `title`, ...)",
            "warning: no loaded rule has the cause `state.CrashLoopBackof`, so this explains nothing",
            "error: `5m` is a duration or a quantity, and the other side is a number",
            "error: unknown function `lenn`",
            "error: unclosed string",
        ]
    );
    assert!(err.ends_with("1 warning(s)\n4 error(s)\n"), "{err}");
    let (code, _, err) = k8srule(&["fmt", &path.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("error: ").count(), 2, "the syntax errors: {err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
}

#[test]
fn rules_and_pack_build_warn_about_explains_keys_no_loaded_rule_gives() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    std::fs::create_dir(&pack).unwrap();
    let wit = k8srule_host::test_support::packs::manifest::wit_version();
    std::fs::write(pack.join("pack.yaml"), format!("name: p\nversion: 1.0.0\nk8srule: \"*\"\nwit: {wit}\n")).unwrap();
    std::fs::write(pack.join("r.k8srule"), RULE).unwrap();
    let warning =
        "warning: rule custom.restarts explains `state.CrashLoopBackof`, which no loaded rule has as its cause\n";

    let (code, out, err) = k8srule(&["rules", "--rules", &pack.join("r.k8srule").display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("custom.restarts"), "{out}");
    assert_eq!(err, warning);

    let wasm = dir.path().join("p.wasm").display().to_string();
    let (code, _, err) = k8srule(&["pack", "build", &pack.display().to_string(), "-o", &wasm]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, warning);
}

/// A rule whose `when` is a chain of `n` conditions joined by `and`.
fn chain(n: usize) -> String {
    let when = vec!["c.restartCount > 1"; n].join(" and ");
    format!(
        "rule deep {{\n  cause \"deep\"\n  severity info\n  for c in containers\n  when {when}\n  title \"t\"\n}}\n"
    )
}

/// The binary, as users run it (its own main thread, not a test's).
fn k8srule_binary(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_k8srule-cli")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn deep_expressions_are_checked_or_refused_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // 2 x 2,500 operators and dots, and 5,000 more for the `>`s: under the bound, checked and compiled
    let deep = dir.path().join("deep.k8srule");
    std::fs::write(&deep, chain(2_500)).unwrap();
    let (code, err) = k8srule_binary(&["check", deep.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let out = dir.path().join("deep.wasm");
    let (code, err) = k8srule_binary(&["compile", deep.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // past the bound: one error naming the file, no stack overflow
    let deeper = dir.path().join("deeper.k8srule");
    std::fs::write(&deeper, chain(10_000)).unwrap();
    for command in ["check", "fmt"] {
        let (code, err) = k8srule_binary(&[command, deeper.to_str().unwrap()]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(err.contains("this file has more than 20000 operators, brackets and dots"), "{command}: {err}");
        assert!(err.contains("deeper.k8srule"), "{command}: {err}");
    }
}
