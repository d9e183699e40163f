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
