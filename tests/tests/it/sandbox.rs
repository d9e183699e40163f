//! Hostile and broken packs are refused or stopped with a clear error naming
//! the pack; the other packs' findings stay intact and nothing panics.

use std::time::Duration;

use k8srule_host::test_support::packs::manifest::wit_version;
use k8srule_host::test_support::sandbox::{
    MAX_COLLECTIONS, MAX_INPUTS, MAX_LITERAL_BYTES, MAX_LITERALS, MAX_PLACEHOLDERS, MAX_REGEXES, MAX_RULE_BYTES,
    MAX_RULES,
};
use k8srule_host::{Diagnoser, Limits, Report, Snapshot};
use k8srule_tests::{
    component_from_wat, component_with_wit, describe_rules, evaluate_findings, hostile_pack_wat, hostile_wat, wat_bytes,
};

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
    Limits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_millis(500),
        max_findings: 1000,
        max_findings_per_case: 2,
        max_text_bytes: 64 << 10,
        ..Limits::default()
    }
}

/// Diagnoses with a good pack and the hostile one; returns the report.
fn run_with(hostile: Vec<u8>) -> Report {
    run_on(hostile, &snapshot(), limits())
}

fn run_on(hostile: Vec<u8>, snapshot: &Snapshot, limits: Limits) -> Report {
    let d = Diagnoser::builder()
        .builtin(false)
        .limits(limits)
        .rules_source("good.k8srule", GOOD_RULE)
        .pack_bytes("hostile", hostile)
        .build()
        .unwrap();
    d.diagnose(snapshot)
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
    assert_eq!(evaluate(body), "returned 10000 findings for 1 pods; the limit is 1000 per call");
}

#[test]
fn a_100_mb_string_is_refused() {
    // one finding of rule 0 whose argument is a text of 100 MiB of NUL bytes
    let body = "(drop (memory.grow (i32.const 1700)))
        (i32.store (i32.const 65536) (i32.const 0)) (i32.store (i32.const 65540) (i32.const 0))
        (i32.store (i32.const 65552) (i32.const 70000)) (i32.store (i32.const 65556) (i32.const 1))
        (i32.store8 (i32.const 70000) (i32.const 5)) (i32.store (i32.const 70008) (i32.const 1048576))
        (i32.store (i32.const 70012) (i32.const 104857600))
        (i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const 1)) (i32.const 2048)";
    let hostile = component_from_wat(&hostile_pack_wat(&describe_rules(1), body, 2));
    let d = Diagnoser::builder()
        .builtin(false)
        .limits(Limits { memory_bytes: 256 << 20, ..limits() })
        .rules_source("good.k8srule", GOOD_RULE)
        .pack_bytes("hostile", hostile)
        .build()
        .unwrap();
    assert_eq!(
        hostile_error(&d.diagnose(&snapshot())),
        "rule `r` returned a finding with more than 65536 bytes of arguments; the limit is 65536"
    );
}

/// The error of a pack declaring `rules` rules whose `evaluate` returns `findings`.
fn findings_error(rules: u32, findings: &[(u32, u32, Option<u32>)]) -> String {
    hostile_error(&run_with(component_from_wat(&hostile_pack_wat(
        &describe_rules(rules),
        &evaluate_findings(findings),
        2,
    ))))
}

#[test]
fn a_finding_returned_twice_is_refused() {
    assert_eq!(
        findings_error(1, &[(0, 0, Some(0)), (0, 0, None), (0, 0, Some(0))]),
        "returned rule `r` twice for pod ns/p container app; a finding is one per pod, rule and container"
    );
    assert_eq!(
        findings_error(1, &[(0, 0, None), (0, 0, None)]),
        "returned rule `r` twice for pod ns/p; a finding is one per pod, rule and container"
    );
}

#[test]
fn more_findings_for_one_pod_than_the_cap_are_refused() {
    // distinct findings, below the cap of 1000 per call, above the cap of 2 per pod
    assert_eq!(
        findings_error(3, &[(0, 0, None), (0, 1, None), (0, 2, Some(0))]),
        "returned more than 2 findings for pod ns/p; the limit is 2 per pod"
    );
}

#[test]
fn the_arguments_of_one_finding_are_capped_together_with_the_values_the_host_reads() {
    // a pod whose message is 40,000 bytes: one shown value is within the cap, two are not
    let mut big = Snapshot::new(0);
    let message = "m".repeat(40_000);
    big.add_text(
        "pods.yaml",
        &format!("kind: Pod\nmetadata: {{name: p, namespace: ns, uid: u}}\nspec: {{containers: [{{name: app}}]}}\nstatus: {{message: {message}, containerStatuses: [{{name: app, restartCount: 9}}]}}\n"),
    )
    .unwrap();
    // one rule and one shown-only input `pod.status.message` of the case
    let path = "pod.status.message";
    let describe = format!(
        "{} {} (i32.store (i32.const 1056) (i32.const 16384)) (i32.store (i32.const 1060) (i32.const 1))
        (i32.store (i32.const 16392) (i32.const 600)) (i32.store (i32.const 16396) (i32.const {}))
        (i32.store8 (i32.const 16412) (i32.const 1)) (i32.const 1024)",
        describe_rules(1).trim_end().trim_end_matches("(i32.const 1024)"),
        wat_bytes(600, path),
        path.len()
    );
    // one finding of rule 0 for case 0 whose arguments are `args` values `input(0, 0)`
    let evaluate = |args: u32| {
        let mut body = format!(
            "(i32.store (i32.const 65552) (i32.const 70000)) (i32.store (i32.const 65556) (i32.const {args}))
            (i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const 1))"
        );
        for a in 0..args {
            body += &format!("(i32.store8 (i32.const {}) (i32.const 6))", 70000 + 16 * a);
        }
        body + "(i32.const 2048)"
    };
    let report = run_on(component_from_wat(&hostile_pack_wat(&describe, &evaluate(1), 2)), &big, limits());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.findings.len(), 2);
    let report = run_on(component_from_wat(&hostile_pack_wat(&describe, &evaluate(2), 2)), &big, limits());
    assert_eq!(report.errors.len(), 1);
    assert_eq!(
        report.errors[0].message,
        "rule `r` returned a finding with more than 65536 bytes of arguments; the limit is 65536"
    );
}

#[test]
fn declaring_more_than_a_pack_may_is_refused() {
    // (offset of the list in `plugin-info`, size of an element, count, what the error names)
    let cases = [
        (16, 100, MAX_RULES + 1, format!("declares {} rules; the limit is {MAX_RULES}", MAX_RULES + 1)),
        (
            24,
            16,
            MAX_COLLECTIONS + 1,
            format!("declares {} collections; the limit is {MAX_COLLECTIONS}", MAX_COLLECTIONS + 1),
        ),
        (32, 32, MAX_INPUTS + 1, format!("declares {} inputs; the limit is {MAX_INPUTS}", MAX_INPUTS + 1)),
        (40, 8, MAX_LITERALS + 1, format!("declares {} literals; the limit is {MAX_LITERALS}", MAX_LITERALS + 1)),
    ];
    for (offset, size, count, expected) in cases {
        let describe = format!(
            "(i32.store (i32.const {}) (i32.const 65536)) (i32.store (i32.const {}) (i32.const {count})) (i32.const 1024)",
            1024 + offset,
            1028 + offset
        );
        let pages = 2 + (size * count).div_ceil(65536) as u32;
        let message =
            hostile_error(&run_with(component_from_wat(&hostile_pack_wat(&describe, "(i32.const 0)", pages))));
        assert_eq!(message, expected);
    }
    // inputs whose derive is `matches("")`: regular expressions to compile
    let n = MAX_REGEXES + 1;
    let describe = format!(
        "(i32.store (i32.const 1056) (i32.const 65536)) (i32.store (i32.const 1060) (i32.const {n}))
        (block $done (loop $l (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
          (i32.store8 (i32.add (i32.const 65552) (i32.mul (local.get $i) (i32.const 32))) (i32.const 4))
          (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
        (i32.const 1024)"
    );
    let message = hostile_error(&run_with(component_from_wat(&hostile_pack_wat(&describe, "(i32.const 0)", 4))));
    assert_eq!(message, format!("declares {n} regular expressions; the limit is {MAX_REGEXES}"));
    // one literal longer than all literals together may be
    let n = MAX_LITERAL_BYTES + 1;
    let describe = format!(
        "(i32.store (i32.const 1064) (i32.const 2048)) (i32.store (i32.const 1068) (i32.const 1))
        (i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const {n})) (i32.const 1024)"
    );
    let pages = 2 + n.div_ceil(65536) as u32;
    let message = hostile_error(&run_with(component_from_wat(&hostile_pack_wat(&describe, "(i32.const 0)", pages))));
    assert_eq!(message, format!("declares {n} bytes of literals; the limit is {MAX_LITERAL_BYTES}"));
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
    // 0.2.0 is the previous contract (texts `{en, zh}`); 0.0.9 any other
    for version in ["0.2.0", "0.0.9"] {
        let wit = contract_with("", version);
        let wat = hostile_wat("(i32.const 0)", 2).replace(&format!("@{}#", wit_version()), &format!("@{version}#"));
        let message = hostile_error(&run_with(component_with_wit(&wat, &[&wit], "plugin")));
        assert_eq!(
            message,
            format!(
                "is built for `k8srule:plugin/rule-pack@{version}`; this k8srule runs packs for \
                 `k8srule:plugin/rule-pack@{}`: rebuild the pack with this k8srule (`k8srule pack build`, or a Rust \
                 pack against its wit/plugin.wit)",
                wit_version()
            )
        );
    }
    assert_eq!(wit_version(), "0.4.0");
}

#[test]
fn corrupt_and_truncated_wasm_are_refused() {
    let good = k8srule_dsl::compile(&[k8srule_dsl::SourceFile::new("g", GOOD_RULE)], "g", "1").unwrap();
    // cut inside the last section (a cut between sections leaves a valid, smaller component)
    let truncated = good[..good.len() - 1].to_vec();
    let e = hostile_error(&run_with(truncated));
    assert!(e.starts_with("invalid component: "), "{e}");
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

    // a warm cache is read, not written again (a new entry would be a new file)
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    let before: Vec<_> = entries.iter().map(|p| inode(p)).collect();
    assert_eq!(titles(&build()), first);
    assert_eq!(entries.iter().map(|p| inode(p)).collect::<Vec<_>>(), before);

    // a tampered entry is detected, compiled again and rewritten
    let mut tampered = written[0].clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&entries[0], &tampered).unwrap();
    assert_eq!(titles(&build()), first);
    assert_eq!(std::fs::read(&entries[0]).unwrap(), written[0]);
}

/// A `describe` body declaring `n` rules, each with `title` as its title
/// (stored at 20000) in English only, `cause_bytes` zero bytes as its cause.
fn describe_titled(n: u32, title: &str, cause_bytes: usize) -> String {
    describe_titled_in(n, &[("en", title)], cause_bytes)
}

/// As [`describe_titled`], the title in each (language, text) of `title`
/// (the tags at 19000, the texts at 20000, the translations at 18000).
fn describe_titled_in(n: u32, title: &[(&str, &str)], cause_bytes: usize) -> String {
    let mut body = describe_rules(n).trim_end().trim_end_matches("(i32.const 1024)").to_string();
    let (mut lang_at, mut text_at) = (19000usize, 20000usize);
    for (i, (lang, text)) in title.iter().enumerate() {
        let at = 18000 + 16 * i;
        body += &wat_bytes(lang_at as u32, lang);
        body += &wat_bytes(text_at as u32, text);
        for (offset, value) in [(0, lang_at), (4, lang.len()), (8, text_at), (12, text.len())] {
            body += &format!("(i32.store (i32.const {}) (i32.const {value}))", at + offset);
        }
        lang_at += lang.len();
        text_at += text.len();
    }
    for i in 0..n as usize {
        let rule = 8192 + 100 * i;
        body += &format!(
            "(i32.store (i32.const {}) (i32.const 18000)) (i32.store (i32.const {}) (i32.const {}))
            (i32.store (i32.const {}) (i32.const 65536)) (i32.store (i32.const {}) (i32.const {cause_bytes}))",
            rule + 28,
            rule + 32,
            title.len(),
            rule + 8,
            rule + 12
        );
    }
    body + "(i32.const 1024)"
}

#[test]
fn a_text_must_start_in_english_and_name_languages_by_valid_tags() {
    let refused = |title: &[(&str, &str)]| {
        hostile_error(&run_with(component_from_wat(&hostile_pack_wat(
            &describe_titled_in(1, title, 0),
            "(i32.const 0)",
            2,
        ))))
    };
    assert_eq!(
        refused(&[("zh", "标题"), ("en", "title")]),
        "rule 0 (`r`) has a text that does not start with English (`en`)"
    );
    assert_eq!(
        refused(&[("en", "title"), ("xx", "x")]),
        "rule 0 (`r`) has a text in `xx`, not a language tag: the primary language is not in the IANA Language Subtag Registry"
    );
}

#[test]
fn a_rule_whose_texts_would_multiply_its_arguments_is_refused() {
    let title = "{0}".repeat(MAX_PLACEHOLDERS + 1);
    let hostile = component_from_wat(&hostile_pack_wat(&describe_titled(1, &title, 0), "(i32.const 0)", 2));
    assert_eq!(
        hostile_error(&run_with(hostile)),
        format!("rule 0 (`r`) declares {} placeholders; the limit is {MAX_PLACEHOLDERS}", MAX_PLACEHOLDERS + 1)
    );
    // texts, id and `explains` together
    let hostile = component_from_wat(&hostile_pack_wat(&describe_titled(1, "", MAX_RULE_BYTES), "(i32.const 0)", 4));
    assert_eq!(
        hostile_error(&run_with(hostile)),
        format!("rule 0 (`r`) declares {} bytes of texts; the limit is {MAX_RULE_BYTES}", MAX_RULE_BYTES + 1)
    );
}

#[test]
fn the_texts_of_one_calls_findings_are_capped_by_the_memory_limit() {
    // 5 rules titled `{0}` 256 times, each finding's argument a text of 60,000 bytes:
    // every finding is within its caps, and renders to 15 MB
    let title = "{0}".repeat(MAX_PLACEHOLDERS);
    let findings: Vec<_> = (0..5).map(|rule| (0, rule, None)).collect();
    let mut evaluate = evaluate_findings(&findings);
    for i in 0..5 {
        evaluate = format!(
            "(i32.store (i32.const {}) (i32.const 70000)) (i32.store (i32.const {}) (i32.const 1))",
            65552 + 24 * i,
            65556 + 24 * i
        ) + &evaluate;
    }
    let evaluate = "(i32.store8 (i32.const 70000) (i32.const 5)) (i32.store (i32.const 70008) (i32.const 131072))
        (i32.store (i32.const 70012) (i32.const 60000))"
        .to_string()
        + &evaluate;
    let hostile = component_from_wat(&hostile_pack_wat(&describe_titled(5, &title, 0), &evaluate, 4));
    let report = run_on(hostile, &snapshot(), Limits { max_findings_per_case: 10, ..limits() });
    assert_eq!(
        hostile_error(&report),
        "returned findings whose texts are more than 67108864 bytes; the limit is 67108864 per call (the memory limit)"
    );
}

#[test]
fn integer_overflow_in_a_rule_is_null_not_a_wrapped_number() {
    // restartCount is 9; each `wrapped` rule fired when the arithmetic wrapped
    let rules = r#"
rule arith.add { cause "a" severity info for c in containers
  when c.restartCount + 9223372036854775807 < 0 title "add wrapped" }
rule arith.sub { cause "a" severity info for c in containers
  when 0 - 9223372036854775807 - c.restartCount > 0 title "sub wrapped" }
rule arith.mul { cause "a" severity info for c in containers
  when c.restartCount * 1024819115206086201 < 0 title "mul wrapped" }
rule arith.null { cause "a" severity info for c in containers
  when c.restartCount + 9223372036854775807 == null title "overflow is null" }
rule arith.exact { cause "a" severity info for c in containers
  when c.restartCount * 1024819115206086200 == 9223372036854775800 and c.restartCount - 10 == 0 - 1
  title "exact" }
rule arith.negate { cause "a" severity info for c in containers
  when c.restartCount / (0 - 1) == 0 - 9 and (0 - 9223372036854775807 - 1) / (c.restartCount - 10) == null
  title "divided by -1" }
"#;
    let d = Diagnoser::builder().builtin(false).rules_source("arith.k8srule", rules).build().unwrap();
    let report = d.diagnose(&snapshot());
    let titles: Vec<&str> = report.findings.iter().map(|f| f.title.as_str()).collect();
    assert_eq!(titles, ["exact", "divided by -1", "overflow is null"]);
}

/// A diagnoser with only `rule` (a pack named after it), caching in `dir` under `limits`.
fn cached(dir: &std::path::Path, rule: &str, limits: Limits) -> Diagnoser {
    Diagnoser::builder()
        .builtin(false)
        .limits(limits)
        .cache_dir(Some(dir.to_path_buf()))
        .rules_source(rule, GOOD_RULE.replace("good.restarts", rule))
        .build()
        .unwrap()
}

fn rules_found(d: &Diagnoser) -> Vec<String> {
    d.diagnose(&snapshot()).findings.into_iter().map(|f| f.rule).collect()
}

/// The one cache entry that `rule` compiles to: its file name and bytes.
fn entry_of(rule: &str) -> (std::ffi::OsString, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    cached(dir.path(), rule, Limits::default());
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(entries.len(), 1);
    (entries[0].file_name(), std::fs::read(entries[0].path()).unwrap())
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_cache_entry_others_can_write_is_never_run() {
    // the entry of pack `b` replaced by the compiled code of pack `a`, digest and all
    let (a_name, a_entry) = entry_of("a.rule");
    let (b_name, b_entry) = entry_of("b.rule");
    assert_ne!(a_name, b_name);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("k8srule");
    let b_path = cache.join(&b_name);

    // written by the user themselves, the entry is trusted and run: that is what is at stake
    cached(&cache, "b.rule", Limits::default());
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&b_path), 0o600);
    std::fs::write(&b_path, &a_entry).unwrap();
    assert_eq!(rules_found(&cached(&cache, "b.rule", Limits::default())), ["a.rule"]);

    // group-writable, the same entry is not run: `b` is compiled again and the entry rewritten
    chmod(&b_path, 0o664);
    assert_eq!(rules_found(&cached(&cache, "b.rule", Limits::default())), ["b.rule"]);
    assert_eq!(std::fs::read(&b_path).unwrap(), b_entry);
    assert_eq!(mode(&b_path), 0o600);

    // in a group-writable directory, no entry is run and none is written
    std::fs::write(&b_path, &a_entry).unwrap();
    chmod(&cache, 0o770);
    assert_eq!(rules_found(&cached(&cache, "b.rule", Limits::default())), ["b.rule"]);
    assert_eq!(std::fs::read(&b_path).unwrap(), a_entry);
    let c_name = entry_of("c.rule").0;
    cached(&cache, "c.rule", Limits::default());
    assert!(!cache.join(c_name).exists());
}

#[test]
fn the_cache_evicts_the_least_recently_used_entries_beyond_its_cap() {
    let entries: Vec<_> = ["a.rule", "b.rule", "c.rule"].map(entry_of).into();
    let size = |i: usize| entries[i].1.len() as u64;
    // room for any two of the three entries
    let cap = size(0) + size(1) + size(2) - 1;
    let limits = Limits { max_cache_bytes: cap, ..Limits::default() };
    let dir = tempfile::tempdir().unwrap();
    cached(dir.path(), "a.rule", limits.clone());
    cached(dir.path(), "b.rule", limits.clone());
    // a hit makes `a` the most recently used, so `b` goes when `c` comes
    assert_eq!(rules_found(&cached(dir.path(), "a.rule", limits.clone())), ["a.rule"]);
    cached(dir.path(), "c.rule", limits);
    let mut kept: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    kept.sort();
    let mut expected = vec![entries[0].0.clone(), entries[2].0.clone()];
    expected.sort();
    assert_eq!(kept, expected);
    let total: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(total <= cap, "{total} > {cap}");
}
