use super::analysis::{Context, context};
use super::*;

const DEMO: &str = include_str!("../../../../tests/lsp/demo.k8srule");

/// The completion context at the `|` of `text`.
fn at_cursor(text: &str) -> Option<Context> {
    let offset = text.find('|').unwrap();
    context(&text.replace('|', ""), offset, parse)
}

fn fields(text: &str) -> Vec<String> {
    match at_cursor(text) {
        Some(Context::Field(p)) => {
            k8srule_dsl::fields_at(&p.segments, p.base.as_deref()).into_iter().map(|f| f.name).collect()
        }
        _ => Vec::new(),
    }
}

fn in_rule(lines: &str) -> String {
    format!("rule a {{\n  cause \"a\"\n  severity info\n  for c in containers\n{lines}\n  title \"t\"\n}}\n")
}

#[test]
fn fields_complete_after_a_dot_wherever_a_path_is() {
    assert_eq!(fields(&in_rule("  when c.lastState.|")), ["waiting", "running", "terminated"]);
    assert_eq!(fields(&in_rule("  when c.lastState.ter|")), ["waiting", "running", "terminated"]);
    assert!(fields(&in_rule("  when any(e in c.events: e.|)")).contains(&"involvedObject".to_string()));
    assert!(fields(&in_rule("  let e = first(e in events: e.|)")).contains(&"reason".to_string()));
    assert!(fields(&in_rule("  let t = any(e in c.events: e.|)")).contains(&"reason".to_string()));
    assert!(fields(&in_rule("  let s = c.state\n  when s.|")).contains(&"waiting".to_string()));
    assert!(fields(&in_rule("  when pod.status.|")).contains(&"phase".to_string()));
    assert!(fields(&in_rule("  when c.ready\n  evidence \"{c.|}\"")).contains(&"restartCount".to_string()));
    // a map, a scalar, a comment, a plain text
    assert!(fields(&in_rule("  when pod.metadata.labels.|")).is_empty());
    assert!(fields(&in_rule("  when c.name.|")).is_empty());
    assert!(at_cursor(&in_rule("  when c.ready # c.|")).is_none());
    assert!(at_cursor(&in_rule("  when c.ready\n  evidence \"c.|\"")).is_none());
}

#[test]
fn a_workload_rule_completes_and_hovers_the_workload() {
    let rule = |lines: &str| {
        format!("rule a {{\n  cause \"a\"\n  severity info\n  for w in workloads\n{lines}\n  title \"t\"\n}}\n")
    };
    assert!(fields(&rule("  when w.|")).contains(&"status".to_string()));
    assert!(fields(&rule("  when w.status.|")).contains(&"conditions".to_string()));
    assert!(fields(&rule("  when any(s in w.status.conditions: s.|)")).contains(&"reason".to_string()));
    assert!(fields(&rule("  when any(e in w.events: e.|)")).contains(&"message".to_string()));
    let text = rule("  when w.spec.replicas == 0");
    let file = parse(&text);
    let analysis = analysis::analyze(&file, None);
    let at = text.find("replicas").unwrap();
    let Some(Meaning::Field(p)) = analysis.at(at).map(|r| r.meaning.clone()) else { panic!() };
    assert_eq!(p.show(), "workload.spec.replicas");
}

#[test]
fn names_in_scope_complete_in_expressions() {
    let Some(Context::Name { bindings, tables }) = at_cursor(&format!(
        "table sig {{\n  9: \"KILL\"\n}}\n{}",
        in_rule("  let t = c.lastState.terminated\n  when any(e in events: |)")
    )) else {
        panic!("a name context")
    };
    let names: Vec<&str> = bindings.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["c", "t", "e"]);
    assert_eq!(tables, ["sig"]);
}

#[test]
fn clauses_complete_at_the_start_of_a_line_and_causes_in_explains() {
    assert!(matches!(at_cursor(&in_rule("  sev|")), Some(Context::Clause)));
    let text = in_rule("  explains \"a\", \"b\\\"c\", \"st|");
    let Some(Context::Cause { start }) = at_cursor(&text) else { panic!("a cause context") };
    assert_eq!(&text.replace('|', "")[start..start + 2], "st");
    assert!(at_cursor(&in_rule("  title \"st|")).is_none());
}

#[test]
fn hover_and_definition_find_what_a_position_means() {
    let file = parse(DEMO);
    let analysis = analysis::analyze(&file, None);
    let meaning = |needle: &str, shift: usize| {
        let at = DEMO.find(needle).unwrap() + shift;
        analysis.at(at).map(|r| (&DEMO[r.span.start..r.span.end], r.meaning.clone()))
    };
    let Some(("terminated", Meaning::Field(p))) = meaning("terminated", 2) else { panic!() };
    assert_eq!(p.show(), "containers[].lastState.terminated");
    let Some(("t", Meaning::Name(b))) = meaning("t.exitCode", 0) else { panic!() };
    assert_eq!(&DEMO[b.def.start..b.def.end], "t");
    assert_eq!(b.def.start, DEMO.find("let t").unwrap() + 4);
    // just after a name is still on it
    let Some(("signal", Meaning::Table { entries: 2, def, .. })) = meaning("signal[", 6) else { panic!() };
    assert_eq!(def.start, DEMO.find("table signal").unwrap() + 6);
    let Some(("reason", Meaning::Field(_))) = meaning("{t.reason}", 3) else { panic!() };
    assert!(meaning("\"OOMKilled\"", 2).is_none());
}

#[test]
fn positions_count_utf16_units_and_clamp() {
    let text = "ab\n\u{955c}\u{1F600}x\n";
    let lines = Lines::new(text);
    let x = text.find('x').unwrap();
    assert_eq!(lines.position(x), Position { line: 1, character: 3 });
    assert_eq!(lines.offset(Position { line: 1, character: 3 }), x);
    assert_eq!(lines.offset(Position { line: 1, character: 99 }), x + 1, "past the end: the line's end");
    assert_eq!(lines.offset(Position { line: 9, character: 0 }), text.len());
    assert_eq!(lines.position(text.len() + 5), Position { line: 2, character: 0 });
    let mut edited = text.to_string();
    apply(
        &mut edited,
        TextDocumentContentChangeEvent {
            range: Some(Range { start: Position { line: 0, character: 1 }, end: Position { line: 1, character: 1 } }),
            range_length: None,
            text: "Z".into(),
        },
    );
    assert_eq!(edited, "aZ\u{1F600}x\n");
}

#[test]
fn every_function_of_the_language_is_documented() {
    let documented: Vec<&str> = FUNCTIONS.iter().map(|(name, ..)| *name).collect();
    assert_eq!(documented, k8srule_dsl::check::FUNCTIONS);
}

#[test]
fn a_file_too_large_or_that_could_nest_too_deep_is_one_message() {
    let huge = "#\n".repeat(MAX_FILE_BYTES);
    let too_large = "this file is larger than 1024 KiB: run `k8srule check` on it";
    assert_eq!(check("f", &huge, &[]), [(Span::default(), too_large.into(), false)]);
    let too_deep = "this file has more than 20000 operators, brackets and dots: run `k8srule check` on it";
    let chain = |op: &str, n: usize| format!("rule a {{\n  when x{}\n}}\n", format!(" {op} x").repeat(n));
    assert_eq!(check("f", &chain("and", MAX_NESTING + 1), &[]), [(Span::default(), too_deep.into(), false)]);
    let placeholders = format!("rule a {{\n  title \"{{{}x}}\"\n}}\n", "-".repeat(MAX_NESTING + 1));
    assert_eq!(check("f", &placeholders, &[]), [(Span::default(), too_deep.into(), false)]);
    assert!(refused(&chain("or", MAX_NESTING / 2)).is_none());
    assert!(refused(DEMO).is_none());
}

#[test]
fn a_file_with_many_problems_shows_the_first_thousand() {
    let text = "rule a {\n".repeat(2000);
    let found = check("f", &text, &[]);
    assert_eq!(found.len(), MAX_DIAGNOSTICS + 1);
    let (span, message, warning) = &found[MAX_DIAGNOSTICS];
    assert_eq!((*span, *warning), (Span::default(), false));
    assert!(message.starts_with("k8srule lsp shows the first 1000 of 4"), "{message}");
    assert!(message.ends_with(" problems of this file: `k8srule check` lists them all"), "{message}");
}
