use k8srule_dsl::{SourceFile, compile};

const OOM: &str = r#"
rule demo.oom {
  cause "cgroup-oom"
  severity error
  confidence 0.9
  for c in containers
  let t = c.lastState.terminated
  when t.reason == "OOMKilled" and not any(e in events: e.reason == "Killing")
  title "container {c.name} was OOMKilled with exit code {t.exitCode}" zh "容器 {c.name} 被 OOM 杀死"
  fix "raise the limit"
}
"#;

#[test]
fn compiled_pack_is_a_valid_component() {
    let wasm = compile(&[SourceFile::new("oom.k8srule", OOM)], "demo", "0.1.0").unwrap();
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator.validate_all(&wasm).unwrap();
    assert!(wasmparser::Parser::is_component(&wasm));
}

#[test]
fn all_errors_are_reported_with_carets() {
    let src = r#"
rule bad.one {
  cause "x"
  severity error
  for c in containers
  when c.lastStat.terminated.reason == "OOMKilled" and c.restartCount > "3"
  title "container {c.nam}"
}
"#;
    let err = compile(&[SourceFile::new("bad.k8srule", src)], "demo", "0.1.0").unwrap_err();
    insta::assert_snapshot!(err.rendered.join("\n"));
}

#[test]
fn inputs_only_shown_in_texts_are_marked_shown_only() {
    let (pack, diags) = k8srule_dsl::check_files(&[SourceFile::new("oom.k8srule", OOM)], "demo", "0.1.0");
    assert!(diags.is_empty(), "{diags:?}");
    let shown: Vec<(&str, bool)> = pack.info.inputs.iter().map(|i| (i.path.as_str(), i.shown_only)).collect();
    // the reason and the events are tested; the name and the exit code are only shown
    assert_eq!(
        shown,
        [
            ("lastState.terminated.reason", false),
            ("reason", false),
            ("name", true),
            ("lastState.terminated.exitCode", true)
        ]
    );
}

#[test]
fn explains_keys_that_no_loaded_rule_gives_are_warned_about() {
    let src = r#"rule custom.root {
  cause "custom.root"
  severity error
  explains "state.CrashLoopBackof", "custom.symptom", "signal.SIGKILL", "app-exit", "nothing.like.it"
  when true
  title "t"
}

rule custom.symptom {
  cause "custom.symptom.refined"
  severity info
  when true
  title "t"
}
"#;
    // the causes of other packs: a key, a template, a refinement
    let causes = ["state.CrashLoopBackOff", "signal.{0}", "app-exit.crash"].map(String::from);
    let files = [SourceFile::new("e.k8srule", src)];
    let warnings = k8srule_dsl::explains_warnings(&files, &causes);
    insta::assert_snapshot!(k8srule_dsl::render(&files, &warnings).join("\n"), @r#"
    warning: no loaded rule has the cause `state.CrashLoopBackof`, so this explains nothing
     --> e.k8srule:4:12
      |
    4 |   explains "state.CrashLoopBackof", "custom.symptom", "signal.SIGKILL", "app-exit", "nothing.like.it"
      |            ^^^^^^^^^^^^^^^^^^^^^^^
      |
      = help: did you mean `state.CrashLoopBackOff`?

    warning: no loaded rule has the cause `nothing.like.it`, so this explains nothing
     --> e.k8srule:4:85
      |
    4 |   explains "state.CrashLoopBackof", "custom.symptom", "signal.SIGKILL", "app-exit", "nothing.like.it"
      |                                                                                     ^^^^^^^^^^^^^^^^^
      |
      = help: a key names the `cause` of a rule, such as `state.CrashLoopBackOff`
    "#);
}

#[test]
fn a_workload_rule_reads_its_workload_and_nothing_of_a_pod() {
    let rule = |when: &str| {
        format!(
            "rule w.x {{\n  cause \"w.x\"\n  severity info\n  for w in workloads\n  when {when}\n  title \"t\"\n}}\n"
        )
    };
    let errors = |when: &str| match compile(&[SourceFile::new("w.k8srule", rule(when))], "w", "0.1.0") {
        Ok(_) => Vec::new(),
        Err(e) => e.rendered,
    };
    let (pack, diags) =
        k8srule_dsl::check_files(&[SourceFile::new("w.k8srule", rule("w.spec.replicas > 0"))], "w", "1");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(pack.info.rules[0].scope, k8srule_dsl::pack::Scope::Workload);
    assert_eq!(pack.info.inputs[0].path, "workload.spec.replicas");
    for name in ["pod", "node", "containers", "events", "owners", "controlPlane", "nodeLogs"] {
        let e = errors(&format!("has({name})"));
        assert!(e.len() == 1 && e[0].contains(&format!("a workload rule has no `{name}`")), "{e:?}");
    }
    // what an unknown name suggests are the names a workload rule has
    let e = errors("has(wrkload)");
    assert!(e.len() == 1 && e[0].contains("the names here are w, now"), "{e:?}");
}

#[test]
fn a_pack_has_at_most_as_many_regular_expressions_as_the_host_loads() {
    let max = k8srule_dsl::pack::MAX_REGEXES;
    // the same one twice is one; `capture` counts too
    let file = |n: usize| {
        let mut conditions: Vec<String> = (0..n).map(|i| format!("c.image matches \"^r{i}$\"")).collect();
        conditions.push("c.image matches \"^r0$\"".into());
        conditions.push("capture(c.image, \"^r1$\") == \"x\"".into());
        let rule = |(i, when): (usize, &String)| {
            format!(
                "rule r{i} {{\n  cause \"r\"\n  severity info\n  for c in containers\n  when {when}\n  title \"t\"\n}}\n"
            )
        };
        conditions.iter().enumerate().map(rule).collect::<String>()
    };
    let (pack, diags) = k8srule_dsl::check_files(&[SourceFile::new("r.k8srule", file(max - 1))], "r", "1");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(pack.info.inputs.len(), max);
    let err = compile(&[SourceFile::new("r.k8srule", file(max))], "r", "1").unwrap_err();
    assert_eq!(err.rendered.len(), 1, "{:?}", err.rendered);
    assert!(err.rendered[0].contains(&format!("more than {max} regular expressions")), "{}", err.rendered[0]);
}
