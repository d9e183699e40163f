//! The checker on single expressions: each row is an expression, checked in a
//! container rule (`c` is the container, `signal` a table), and what the
//! checker makes of it: the type it infers, or its error.

use super::*;

/// The type `src` checks to, or `error: MESSAGE` for each error, one a line.
fn infer(src: &str) -> String {
    let (ty, diags) = check_expr(src);
    match ty {
        Some(ty) if diags.is_empty() => ty.name().to_string(),
        _ => diags.iter().map(|d| format!("error: {}", d.message)).collect::<Vec<_>>().join("\n"),
    }
}

fn check_expr(src: &str) -> (Option<Ty>, Vec<Diagnostic>) {
    let expr = match crate::parse::parse_expr(src, 0) {
        Ok(e) => e,
        Err(errors) => return (None, errors),
    };
    let mut c = Checker::new("t", "1");
    let tables = Tables::from([("signal".to_string(), vec![(9, c.literal("SIGKILL"))])]);
    let containers = c.collection(None, "containers".to_string());
    let slot = c.new_row_slot();
    let mut env =
        Env { vars: vec![("c".to_string(), Binding::Row(slot, containers))], tables: &tables, workload: false };
    let ty = c.lower(&expr, &mut env).and_then(|l| c.value(l, expr.span, None)).map(|(_, ty)| ty);
    (ty, c.diags.into_iter().map(|(_, d)| d).collect())
}

/// Expressions and the type the checker infers.
const TYPES: &[(&str, &str)] = &[
    ("137", "a number"),
    ("-c.restartCount", "a number"),
    ("c.restartCount * 2 + 1", "a number"),
    ("c.name", "a string"),
    ("c.ready", "a boolean"),
    ("c.lastState.terminated.exitCode", "a number"),
    ("pod.metadata.labels[\"app.kubernetes.io/name\"]", "a value"),
    ("null", "a value"),
    ("5m", "a duration"),
    ("500ms", "a duration"),
    ("256Mi", "a quantity"),
    ("1.5Gi", "a quantity"),
    ("0.001E", "a quantity"),
    ("0.5", "a number"),
    ("-0.5", "a number"),
    ("quantity(c.resources.requests.cpu) < 0.5", "a boolean"),
    ("quantity(c.resources.requests.cpu) < 1", "a boolean"),
    ("age(pod.metadata.creationTimestamp) > 1.5h", "a boolean"),
    ("age(pod.metadata.creationTimestamp) > 1500ms", "a boolean"),
    ("time(pod.metadata.creationTimestamp) < now - 5m", "a boolean"),
    ("version(node.status.nodeInfo.kubeletVersion) == 1.28", "a boolean"),
    ("version(node.status.nodeInfo.kubeletVersion) in [1.27, 1.28.3]", "a boolean"),
    ("1.10.3", "a version"),
    ("now", "a timestamp"),
    ("time(pod.metadata.creationTimestamp)", "a timestamp"),
    ("age(pod.metadata.creationTimestamp)", "a duration"),
    ("now - time(pod.metadata.creationTimestamp)", "a duration"),
    ("age(pod.metadata.creationTimestamp) > 5m", "a boolean"),
    ("age(pod.metadata.creationTimestamp) + 1h", "a duration"),
    ("quantity(c.resources.limits.memory)", "a quantity"),
    ("quantity(c.resources.requests.cpu) < 100m", "a boolean"),
    ("version(node.status.nodeInfo.kubeletVersion)", "a version"),
    ("version(node.status.nodeInfo.kubeletVersion) in 1.10 .. 1.11", "a boolean"),
    ("len(c.name)", "a number"),
    ("has(c.state.waiting)", "a boolean"),
    ("coalesce(c.state.waiting.reason, c.state.terminated.reason, \"none\")", "a string"),
    ("signal[c.lastState.terminated.exitCode - 128]", "a string"),
    ("c.name in [\"app\", \"web\"]", "a boolean"),
    ("c.image contains \"nginx\"", "a boolean"),
    ("c.image matches \"^registry\\\\.example\\\\.com/\"", "a boolean"),
    ("capture(c.image, \"/([a-z]+)/\")", "a string"),
    ("any(e in c.events: e.reason == \"BackOff\")", "a boolean"),
    ("all(e in events: e.type == \"Normal\")", "a boolean"),
    ("count(e in events: e.reason == \"BackOff\")", "a number"),
    ("any(f in pod.metadata.finalizers: f == \"x\")", "a boolean"),
    ("c.state.waiting.reason == null", "a boolean"),
    ("not c.ready and c.restartCount > 3 or c.kind == \"init\"", "a boolean"),
];

/// Expressions the checker refuses, and its message.
const ERRORS: &[(&str, &str)] = &[
    ("c.restartCount > \"3\"", "cannot compare a number with a string"),
    ("c.name < \"b\"", "`<` orders numbers, versions, quantities and times, not strings or booleans"),
    ("c.name + 1", "expected a number, found a string"),
    ("-c.name", "expected a number, found a string"),
    ("c.lastStat.terminated", "`lastStat` is not a field of type `Container`"),
    ("containers.name", "`name` is read from a list"),
    ("c.name.first", "`first` is read from a value that has no fields"),
    ("pods", "unknown name `pods`"),
    ("signal", "unknown name `signal`"),
    ("lenn(c.name)", "unknown function `lenn`"),
    ("len(c.name, c.image)", "`len` takes one argument"),
    ("len(1)", "`len` needs a field, such as `pod.metadata.creationTimestamp`"),
    ("coalesce(c.name)", "`coalesce` takes two or more arguments"),
    ("coalesce(c.name, 1)", "`coalesce` mixes a string and a number"),
    ("first(e in events: e.reason == \"x\")", "`first(...)` gives a list element: bind it with `let`"),
    ("any(e in c.name: true)", "this is not a list"),
    ("any(e in now: true)", "a quantifier needs a list such as `events` or `c.events`"),
    ("not c.restartCount", "expected a condition, found a number"),
    ("c.ready and 1", "expected a condition, found a number"),
    ("c.image contains c.name", "`contains` needs a string literal on its right"),
    ("\"x\" contains \"y\"", "`contains` needs a field on its left"),
    ("c.image matches \"(\"", "invalid regular expression: unclosed group"),
    ("capture(c.image, \"(\")", "invalid regular expression: unclosed group"),
    // what the host would refuse to load: it compiles regular expressions to at most 1 MiB
    ("capture(c.image, \"\\\\w{50}\")", "the regular expression is too large: it compiles to more than 1 MiB"),
    ("capture(c.image, c.name)", "the regular expression of `capture` is a string literal"),
    ("capture(c.image)", "`capture` takes a field and a regular expression"),
    ("c.name in c.image", "`in` needs a list `[...]` or a version range `A .. B` on its right"),
    ("c.name in [\"a\", 1]", "cannot compare a string with a number"),
    ("c.restartCount in 1.10 .. 1.11", "a version range needs a version on its left, found a number"),
    ("1.10 .. 1.11", "a list or range can only follow `in`"),
    ("[1, 2]", "a list or range can only follow `in`"),
    ("signal[c.name]", "table keys are numbers, found a string"),
    ("c[1]", "an index must be a string key such as `[\"app.kubernetes.io/name\"]`"),
    ("1.name", "`.name` needs an object on its left"),
    ("c.restartCount >", "expected an expression"),
    ("99999999999999999999", "integer out of range"),
    ("c.restartCount > 5m", "`5m` is a duration or a quantity, and the other side is a number"),
    ("c.restartCount > 5s", "`5s` is a duration, and the other side is a number"),
    ("c.restartCount + 256Mi", "`256Mi` is a quantity, and the other side is a number"),
    ("age(pod.metadata.creationTimestamp) > 5Mi", "`Mi` is not a duration unit"),
    ("quantity(c.resources.limits.memory) > 5s", "`s` is not a quantity unit"),
    ("quantity(c.resources.limits.memory) > c.restartCount", "cannot compare a quantity with a number"),
    ("time(pod.metadata.creationTimestamp) > 5m", "cannot compare a timestamp with a duration"),
    ("version(node.status.nodeInfo.kubeletVersion) == 1", "cannot compare a version with a number"),
    ("c.restartCount * 0.5", "arithmetic is on whole numbers, and this one has a fraction"),
    ("join(pod.metadata.finalizers, \", \") == \"x\"", "`join(...)` makes a text, which a rule can only show"),
    ("join(pod.metadata.finalizers)", "`join` takes a list and a separator"),
    ("join(pod.metadata.finalizers, c.name)", "the separator of `join` is a string literal"),
    ("join(c.name, \", \")", "this is not a list"),
    ("5E", "`5E` is too large"),
    ("8Ei", "`8Ei` is too large"),
];

#[test]
fn expressions_have_the_types_the_checker_infers() {
    let wrong: Vec<String> = TYPES
        .iter()
        .filter(|(src, want)| infer(src) != *want)
        .map(|(src, want)| format!("{src}: want {want}, got {}", infer(src)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn expressions_the_checker_refuses_get_one_message_each() {
    let wrong: Vec<String> = ERRORS
        .iter()
        .filter(|(src, want)| infer(src) != format!("error: {want}"))
        .map(|(src, want)| format!("{src}: want error: {want}, got {}", infer(src)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every refused expression rendered as `check` shows it: the caret under
/// the offending part, and the help.
#[test]
fn refused_expressions_render_with_a_caret_and_help() {
    let rendered: String = ERRORS
        .iter()
        .flat_map(|(src, _)| check_expr(src).1.into_iter().map(|d| d.render("expr", src)))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(rendered);
}
