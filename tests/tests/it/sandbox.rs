//! Hostile and broken packs are refused or stopped with a clear error naming
//! the pack; the other packs' findings stay intact and nothing panics.

use std::time::Duration;

use k8srule_host::packs::wit_version;
use k8srule_host::{Diagnoser, Limits, Report, Snapshot};
use k8srule_tests::{component_from_wat, component_with_wit, hostile_wat};

const GOOD_RULE: &str = r#"
rule good.restarts {
  cause "restarts"
  severity info
  for c in containers
  when c.restartCount > 3
  title "container {c.name} restarted {c.restartCount} times"
}
"#;

fn snapshot() -> Snapshot {
    let mut s = Snapshot::new(0);
    s.add_text(
        "pods.yaml",
        "kind: Pod\nmetadata: {name: p, namespace: ns, uid: u}\nspec: {containers: [{name: app}]}\nstatus: {containerStatuses: [{name: app, restartCount: 9}]}\n",
    )
    .unwrap();
    s
}

fn limits() -> Limits {
    Limits { memory_bytes: 64 << 20, timeout: Duration::from_millis(500), max_findings: 1000, max_text_bytes: 64 << 10 }
}

/// Diagnoses with a good pack and the hostile one; returns the report.
fn run_with(hostile: Vec<u8>) -> Report {
    let d = Diagnoser::builder()
        .builtin(false)
        .limits(limits())
        .rules_source("good.k8srule", GOOD_RULE)
        .pack_bytes("hostile", hostile)
        .build()
        .unwrap();
    d.diagnose(&snapshot())
}

/// The hostile pack's one error message, after checking the good pack's finding is intact.
fn hostile_error(report: &Report) -> String {
    let titles: Vec<&str> = report.findings.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(titles, ["container app restarted 9 times"]);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(report.errors[0].pack, "hostile");
    report.errors[0].message.clone()
}

fn evaluate(body: &str) -> String {
    hostile_error(&run_with(component_from_wat(&hostile_wat(body, 2))))
}

#[test]
fn an_endless_loop_times_out() {
    assert_eq!(evaluate("(loop $l (br $l)) (i32.const 0)"), "timed out after 500ms");
}

#[test]
fn deep_recursion_overflows_the_stack() {
    assert_eq!(evaluate("(call $recurse (i32.const 0))"), "stack overflow");
}

#[test]
fn growing_memory_to_4_gib_is_stopped_at_the_cap() {
    let body = "(loop $l (drop (memory.grow (i32.const 1024))) (br $l)) (i32.const 0)";
    assert_eq!(evaluate(body), "ran out of memory (limit 64 MiB)");
}

#[test]
fn a_huge_stream_of_findings_is_refused() {
    // 10,000 zeroed findings at 65536: more than the limit of 1,000
    let body = "(memory.grow (i32.const 8)) drop
        (i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const 10000)) (i32.const 2048)";
    assert_eq!(evaluate(body), "returned 10000 findings for 1 pods; the limit is 1000");
}

#[test]
fn a_100_mb_string_is_refused() {
    // one finding whose argument is a text of 100 MiB of NUL bytes
    let body = "(drop (memory.grow (i32.const 1700)))
        (i32.store (i32.const 65536) (i32.const 0)) (i32.store (i32.const 65540) (i32.const 0))
        (i32.store (i32.const 65552) (i32.const 70000)) (i32.store (i32.const 65556) (i32.const 1))
        (i32.store8 (i32.const 70000) (i32.const 5)) (i32.store (i32.const 70008) (i32.const 1048576))
        (i32.store (i32.const 70012) (i32.const 104857600))
        (i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const 1)) (i32.const 2048)";
    let hostile = component_from_wat(&hostile_wat(body, 2));
    let d = Diagnoser::builder()
        .builtin(false)
        .limits(Limits { memory_bytes: 256 << 20, ..limits() })
        .rules_source("good.k8srule", GOOD_RULE)
        .pack_bytes("hostile", hostile)
        .build()
        .unwrap();
    assert_eq!(hostile_error(&d.diagnose(&snapshot())), "returned a text of 104857600 bytes; the limit is 65536");
}

#[test]
fn an_out_of_range_rule_index_is_refused() {
    let body = "(i32.store (i32.const 65536) (i32.const 0)) (i32.store (i32.const 65540) (i32.const 7))
        (i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const 1)) (i32.const 2048)";
    assert_eq!(evaluate(body), "returned a finding for rule 7; it declares 0");
}

#[test]
fn a_trap_is_reported() {
    assert_eq!(evaluate("unreachable"), "trapped: wasm `unreachable` instruction executed");
}

/// The contract with `extra` in its world, at `version`.
fn contract_with(extra: &str, version: &str) -> String {
    k8srule_dsl::component::WIT
        .replace(&format!("package k8srule:plugin@{};", wit_version()), &format!("package k8srule:plugin@{version};"))
        .replace("world plugin {", &format!("world plugin {{\n  {extra}"))
}

#[test]
fn a_component_importing_wasi_filesystem_is_refused() {
    let wasi = "package wasi:filesystem@0.2.0;\ninterface types { read: func(path: string) -> string; }";
    let wit = contract_with("import wasi:filesystem/types@0.2.0;", wit_version());
    let wat = hostile_wat("(i32.const 0)", 2).replacen(
        "(module",
        r#"(module (import "wasi:filesystem/types@0.2.0" "read" (func (param i32 i32 i32)))"#,
        1,
    );
    let message = hostile_error(&run_with(component_with_wit(&wat, &[wasi, &wit], "plugin")));
    assert_eq!(message, "imports `wasi:filesystem/types@0.2.0`; packs must be pure and import nothing");
}

#[test]
fn a_component_with_an_unknown_import_is_refused() {
    let wit = contract_with("import phone-home: func();", wit_version());
    let wat = hostile_wat("(i32.const 0)", 2).replacen("(module", r#"(module (import "$root" "phone-home" (func))"#, 1);
    let message = hostile_error(&run_with(component_with_wit(&wat, &[&wit], "plugin")));
    assert_eq!(message, "imports `phone-home`; packs must be pure and import nothing");
}

#[test]
fn a_component_for_another_contract_version_is_refused() {
    let wit = contract_with("", "0.0.9");
    let wat = hostile_wat("(i32.const 0)", 2).replace(&format!("@{}#", wit_version()), "@0.0.9#");
    let message = hostile_error(&run_with(component_with_wit(&wat, &[&wit], "plugin")));
    assert_eq!(
        message,
        format!(
            "is built for `k8srule:plugin/rule-pack@0.0.9`; this k8srule runs packs for `k8srule:plugin/rule-pack@{}`",
            wit_version()
        )
    );
}

#[test]
fn corrupt_and_truncated_wasm_are_refused() {
    let good = k8srule_dsl::compile(&[k8srule_dsl::SourceFile::new("g", GOOD_RULE)], "g", "1").unwrap();
    let truncated = good[..good.len() / 2].to_vec();
    assert!(hostile_error(&run_with(truncated)).starts_with("invalid component: "));
    let mut corrupt = good.clone();
    corrupt[40..80].fill(0xff);
    assert!(hostile_error(&run_with(corrupt)).starts_with("invalid component: "));
    assert_eq!(
        hostile_error(&run_with(b"\x7fELF not wasm".to_vec())),
        "not WebAssembly (expected a `.wasm` component or module, or a `.k8srule` file)"
    );
}

#[test]
fn compiled_packs_are_cached_and_a_tampered_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        Diagnoser::builder()
            .cache_dir(Some(dir.path().to_path_buf()))
            .rules_source("good.k8srule", GOOD_RULE)
            .build()
            .unwrap()
    };
    let titles = |d: &Diagnoser| d.diagnose(&snapshot()).findings.into_iter().map(|f| f.title).collect::<Vec<_>>();
    let first = titles(&build());
    let mut entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "the built-in pack and the rule file: {entries:?}");
    let written: Vec<_> = entries.iter().map(|p| std::fs::read(p).unwrap()).collect();

    // a warm cache is read, not written again
    let modified = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: Vec<_> = entries.iter().map(|p| modified(p)).collect();
    assert_eq!(titles(&build()), first);
    assert_eq!(entries.iter().map(|p| modified(p)).collect::<Vec<_>>(), before);

    // a tampered entry is detected, compiled again and rewritten
    let mut tampered = written[0].clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&entries[0], &tampered).unwrap();
    assert_eq!(titles(&build()), first);
    assert_eq!(std::fs::read(&entries[0]).unwrap(), written[0]);
}
