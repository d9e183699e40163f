//! The generated code, expression by expression: each row of `ROWS` is an
//! expression and its value on the container of each sample pod, run in the
//! sandbox through the public API; `TRAPS` holds the expressions whose
//! meaning surprised rule authors, with what they mean or why `check`
//! refuses them. A value is read as the finding's title
//! (`title "{EXPR}"`, null shown as `<none>`); an expression whose values are
//! all `true`/`false` is also a `when` condition, which must fire exactly where
//! its value is `true`.

use k8srule_host::{Diagnoser, Snapshot};

/// 2024-05-01T12:00:00Z
const NOW: i64 = 1_714_564_800;

/// `full` has a node, a restarted container with resources, a last state and
/// an event; `bare` has almost nothing, so most paths are null there.
const PODS: &str = r#"
apiVersion: v1
kind: List
items:
- kind: Pod
  metadata:
    name: full
    namespace: default
    uid: u-full
    creationTimestamp: "2024-05-01T11:00:00Z"
    finalizers: [example.com/x, example.com/y]
  spec:
    nodeName: n1
    securityContext: {supplementalGroups: [1000, -2, 65534]}
    containers:
    - name: app
      image: registry.example.com/shop/app:1.2
      resources: {limits: {memory: 256Mi, cpu: 500m}, requests: {memory: 1.5Gi}}
  status:
    containerStatuses:
    - name: app
      ready: false
      restartCount: 3
      state: {waiting: {reason: CrashLoopBackOff}}
      lastState:
        terminated: {exitCode: 137, reason: OOMKilled, startedAt: "2024-05-01T11:50:00Z", finishedAt: "2024-05-01T11:50:30Z"}
- kind: Pod
  metadata: {name: bare, namespace: default, uid: u-bare, creationTimestamp: "2024-05-01T11:59:00Z"}
  spec: {containers: [{name: db, image: db}]}
  status:
    containerStatuses: [{name: db, ready: true, restartCount: 0, state: {running: {}}}]
- kind: Event
  metadata: {name: e1, namespace: default}
  involvedObject: {kind: Pod, uid: u-full, name: full, namespace: default, fieldPath: "spec.containers{app}"}
  reason: BackOff
  type: Warning
  count: 5
  message: Back-off restarting failed container
- kind: Node
  metadata: {name: n1}
  status: {nodeInfo: {kubeletVersion: v1.28.3}}
"#;

/// What every rule has before its `when`: the container `c` and three `let`s.
const PRELUDE: &str = r#"  for c in containers
  let r = c.restartCount
  let t = c.lastState.terminated
  let e = first(e in events: e.reason == "BackOff")
"#;

const TABLES: &str = "table signal {\n  9: \"SIGKILL\"\n}\n";

/// An expression and its value on pod `full` and on pod `bare`.
const ROWS: &[(&str, [&str; 2])] = &[
    // integers: 64-bit, checked; an overflow or a division by zero is null
    ("1 + 2 * 3", ["7", "7"]),
    ("(1 + 2) * 3", ["9", "9"]),
    ("r * 2 - 1", ["5", "-1"]),
    ("-r", ["-3", "0"]),
    ("7 / 2", ["3", "3"]),
    ("-7 / 2", ["-3", "-3"]),
    ("7 % 3", ["1", "1"]),
    ("-7 % 3", ["-1", "-1"]),
    ("r / 0", ["<none>", "<none>"]),
    ("r % 0", ["<none>", "<none>"]),
    ("10 / r", ["3", "<none>"]),
    ("9223372036854775807 + r", ["<none>", "9223372036854775807"]),
    ("-9223372036854775807 - r", ["<none>", "-9223372036854775807"]),
    ("3037000499 * 3037000499", ["9223372030926249001", "9223372030926249001"]),
    ("3037000500 * 3037000500", ["<none>", "<none>"]),
    ("t.exitCode - 128", ["9", "<none>"]),
    ("r in [0, 3]", ["true", "true"]),
    // null (absent paths): equal to null alone, never ordered; `!=` is `not ==`
    ("t.exitCode", ["137", "<none>"]),
    ("-t.exitCode", ["-137", "<none>"]),
    ("t.exitCode == 137", ["true", "false"]),
    ("t.exitCode != 137", ["false", "true"]),
    ("t.reason != \"OOMKilled\"", ["false", "true"]),
    ("t.exitCode == e.count", ["false", "true"]),
    ("t.exitCode != e.count", ["true", "false"]),
    ("t.exitCode > 0", ["true", "false"]),
    ("t.exitCode <= 0", ["false", "false"]),
    ("not (t.exitCode > 0)", ["false", "true"]),
    ("t.exitCode + 1 > 0", ["true", "false"]),
    ("t.exitCode == null", ["false", "true"]),
    ("t.exitCode != null", ["true", "false"]),
    ("t.exitCode in [137, 1]", ["true", "false"]),
    ("t.exitCode in [1, null]", ["false", "true"]),
    ("t.finishedAt contains \"2024\"", ["true", "false"]),
    ("not (t.reason matches \"OOM\")", ["false", "true"]),
    ("has(c.lastState.terminated)", ["true", "false"]),
    ("coalesce(t.exitCode, -1)", ["137", "-1"]),
    ("coalesce(t.reason, c.state.waiting.reason)", ["OOMKilled", "<none>"]),
    ("len(c.state.waiting.message)", ["<none>", "<none>"]),
    ("version(c.image)", ["<none>", "<none>"]),
    ("quantity(c.name)", ["<none>", "<none>"]),
    ("signal[t.exitCode]", ["<none>", "<none>"]),
    ("count(v in pod.spec.volumes: true)", ["0", "0"]),
    ("any(v in pod.spec.volumes: true)", ["false", "false"]),
    ("all(v in pod.spec.volumes: false)", ["true", "true"]),
    // logic
    ("c.ready or r > 2", ["true", "true"]),
    ("not c.ready and r > 2", ["true", "false"]),
    // strings
    ("c.name", ["app", "db"]),
    ("c.name == \"app\"", ["true", "false"]),
    ("c.name in [\"app\", \"web\"]", ["true", "false"]),
    ("c.image contains \"shop\"", ["true", "false"]),
    ("c.image startsWith \"registry.example.com/\"", ["true", "false"]),
    ("c.image endsWith \":1.2\"", ["true", "false"]),
    ("c.image matches \"^[a-z.]+/shop/\"", ["true", "false"]),
    ("capture(c.name, \"^(a)p\")", ["a", "<none>"]),
    ("capture(c.name, \"d.\")", ["<none>", "db"]),
    ("capture(t.reason, \"(OOM)\")", ["OOM", "<none>"]),
    ("capture(c.name, \"(a)\") == \"a\"", ["true", "false"]),
    ("len(c.name)", ["3", "2"]),
    ("c.state.waiting.reason", ["CrashLoopBackOff", "<none>"]),
    ("signal[t.exitCode - 128]", ["SIGKILL", "<none>"]),
    ("signal[1]", ["<none>", "<none>"]),
    // quantities, held in thousandths of a unit
    ("quantity(c.resources.limits.memory)", ["268435456000", "<none>"]),
    ("quantity(c.resources.limits.memory) == 256Mi", ["true", "false"]),
    ("quantity(c.resources.limits.memory) > 200Mi", ["true", "false"]),
    ("quantity(c.resources.limits.cpu) == 500m", ["true", "false"]),
    ("quantity(c.resources.requests.memory) > 1Gi", ["true", "false"]),
    ("quantity(c.resources.requests.memory) == 1.5Gi", ["true", "false"]),
    ("quantity(c.resources.limits.cpu) == 0.5", ["true", "false"]),
    ("quantity(c.resources.limits.cpu) < 1", ["true", "false"]),
    ("quantity(c.resources.limits.cpu) in [0.5, 2]", ["true", "false"]),
    ("coalesce(quantity(c.resources.limits.cpu), 1)", ["500", "1000"]),
    ("1.5Gi", ["1610612736000", "1610612736000"]),
    ("0.001E", ["1000000000000000000", "1000000000000000000"]),
    // decimals: a fraction left makes a float
    ("0.5", ["0.5", "0.5"]),
    ("-0.5 < 0", ["true", "true"]),
    ("3.25 > 3", ["true", "true"]),
    ("t.exitCode > 136.5", ["true", "false"]),
    // durations and times, in seconds
    ("5m", ["300", "300"]),
    ("1500ms", ["1.5", "1.5"]),
    ("2000ms", ["2", "2"]),
    ("age(pod.metadata.creationTimestamp) > 60500ms", ["true", "false"]),
    ("age(pod.metadata.creationTimestamp) >= 1.5m", ["true", "false"]),
    ("age(pod.metadata.creationTimestamp)", ["3600", "60"]),
    ("age(pod.metadata.creationTimestamp) > 5m", ["true", "false"]),
    ("age(pod.metadata.creationTimestamp) >= 1h", ["true", "false"]),
    ("now - time(pod.metadata.creationTimestamp)", ["3600", "60"]),
    ("time(t.finishedAt) - time(t.startedAt)", ["30", "<none>"]),
    // versions
    ("version(node.status.nodeInfo.kubeletVersion) in 1.28 .. 1.29", ["true", "false"]),
    ("version(node.status.nodeInfo.kubeletVersion) >= 1.28.3", ["true", "false"]),
    ("version(node.status.nodeInfo.kubeletVersion) < 1.28.3", ["false", "false"]),
    ("version(node.status.nodeInfo.kubeletVersion) in 1.29 .. 1.30", ["false", "false"]),
    ("version(node.status.nodeInfo.kubeletVersion) >= 1.28", ["true", "false"]),
    ("version(node.status.nodeInfo.kubeletVersion) == 1.28", ["false", "false"]),
    ("version(node.status.nodeInfo.kubeletVersion) in [1.27, 1.28.3]", ["true", "false"]),
    // quantifiers, and the row `first` found
    ("count(e in events: e.reason == \"BackOff\")", ["1", "0"]),
    ("any(e in c.events: e.reason == \"BackOff\")", ["true", "false"]),
    ("all(e in events: e.type == \"Warning\")", ["true", "true"]),
    ("any(f in pod.metadata.finalizers: f == \"example.com/x\")", ["true", "false"]),
    ("count(x in pod.spec.containers: true)", ["1", "1"]),
    ("e.message", ["Back-off restarting failed container", "<none>"]),
    ("e.count * 2", ["10", "<none>"]),
    ("e == null", ["false", "true"]),
    // lists shown: strings and integers, a separator between them
    ("join(pod.metadata.finalizers, \", \")", ["example.com/x, example.com/y", ""]),
    ("join(pod.spec.securityContext.supplementalGroups, \" \")", ["1000 -2 65534", ""]),
    ("join(c.events, \", \")", ["", ""]),
];

/// The traps a rule author fell into with the first edition of the language
/// (#21): each expression, what it means, and what it gives: its values on
/// the sample pods, or what `check` says about it.
const TRAPS: &[(&str, &str, Outcome)] = &[
    ("t.exitCode != 137", "`!=` is the negation of `==`: true where there is no exit code", Values(["false", "true"])),
    ("not (t.exitCode == 137)", "the same as `t.exitCode != 137`", Values(["false", "true"])),
    ("r != \"3\"", "a number never equals a string: always true", Refused(&["cannot compare a number with a string"])),
    ("t.exitCode > 136.5", "a decimal number, not the version 136.5", Values(["true", "false"])),
    ("quantity(c.resources.requests.memory) == 1.5Gi", "a quantity with a fraction", Values(["true", "false"])),
    ("age(pod.metadata.creationTimestamp) > 90000ms", "milliseconds: 90 s", Values(["true", "false"])),
    ("0.001E", "E is 10^18 (held in thousandths)", Values(["1000000000000000000", "1000000000000000000"])),
    ("1E", "10^18 units, more than a quantity holds", Refused(&["`1E` is too large"])),
    (
        "quantity(c.resources.limits.cpu) < 1",
        "a plain number next to a quantity is units: one CPU",
        Values(["true", "false"]),
    ),
    (
        "r > 5m",
        "a count is not a duration",
        Refused(&["`5m` is a duration or a quantity, and the other side is a number"]),
    ),
    (
        "age(pod.metadata.creationTimestamp) > 5Mi",
        "a duration is not a quantity",
        Refused(&["`Mi` is not a duration unit"]),
    ),
    ("c.name == \"app", "a string ends on its line", Refused(&["unclosed string"])),
    ("join(pod.metadata.finalizers, \"; \")", "a list shown in a text", Values(["example.com/x; example.com/y", ""])),
    (
        "lenn(c.name) > 3 or c.nam == \"x\" or r > \"3\"",
        "three mistakes, three messages, each where it is",
        Refused(&[
            "unknown function `lenn`",
            "`nam` is not a field of type `Container`",
            "cannot compare a number with a string",
        ]),
    ),
    (
        "r * 0.5",
        "arithmetic is on whole numbers",
        Refused(&["arithmetic is on whole numbers, and this one has a fraction"]),
    ),
];

enum Outcome {
    /// `check` accepts it; its values on `full` and on `bare`.
    Values([&'static str; 2]),
    /// `check` refuses it with these messages, and no other.
    Refused(&'static [&'static str]),
}
use Outcome::{Refused, Values};

fn is_condition(values: &[&str; 2]) -> bool {
    values.iter().all(|v| matches!(*v, "true" | "false"))
}

/// A rule `ID` with the prelude, `when WHEN` and `title TITLE`.
fn rule(id: &str, when: &str, title: &str) -> String {
    format!("rule {id} {{\n  cause \"c\"\n  severity info\n{PRELUDE}  when {when}\n  title \"{title}\"\n}}\n")
}

/// Runs each expression on the sample pods: one rule showing its value
/// (`v.N`), and one testing it (`w.N`) where all its values are booleans.
/// Returns what is wrong.
fn check_values(rows: &[(&str, [&str; 2])]) -> Vec<String> {
    let mut source = String::from(TABLES);
    for (i, (expr, values)) in rows.iter().enumerate() {
        let quoted = expr.replace('\\', "\\\\").replace('"', "\\\"");
        source += &rule(&format!("v.{i}"), "true", &format!("{{{quoted}}}"));
        if is_condition(values) {
            source += &rule(&format!("w.{i}"), expr, "t");
        }
    }
    let diagnoser = Diagnoser::builder()
        .builtin(false)
        .rules_source("t.k8srule", source.as_str())
        .build()
        .unwrap_or_else(|e| panic!("{e}\n{source}"));
    let mut snapshot = Snapshot::new(NOW);
    snapshot.add_text("pods.yaml", PODS).unwrap();
    let report = diagnoser.diagnose(&snapshot);
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let mut wrong = Vec::new();
    for (i, (expr, values)) in rows.iter().enumerate() {
        for (pod, want) in ["default/full", "default/bare"].iter().zip(values) {
            let finding = |id: &str| report.findings.iter().find(|f| f.rule == id && f.subject() == *pod);
            let got = finding(&format!("v.{i}")).map_or("(no finding)", |f| f.title.as_str());
            if got != *want {
                wrong.push(format!("{expr} on {pod}: want {want}, got {got}"));
            }
            if is_condition(values) {
                let fired = finding(&format!("w.{i}")).is_some();
                if fired != (*want == "true") {
                    wrong.push(format!("when {expr} on {pod}: fired {fired}, value {want}"));
                }
            }
        }
    }
    wrong
}

#[test]
fn expressions_have_their_values_on_sample_pods() {
    let wrong = check_values(ROWS);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_first_editions_traps_mean_what_they_say_or_are_refused() {
    let values: Vec<(&str, [&str; 2])> = TRAPS
        .iter()
        .filter_map(|(expr, _, outcome)| match outcome {
            Values(v) => Some((*expr, *v)),
            Refused(_) => None,
        })
        .collect();
    let mut wrong = check_values(&values);
    for (expr, meaning, outcome) in TRAPS {
        let Refused(want) = outcome else { continue };
        let source = format!("{TABLES}{}", rule("trap", expr, "t"));
        match Diagnoser::builder().builtin(false).rules_source("t.k8srule", source.as_str()).build() {
            Ok(_) => wrong.push(format!("{expr} ({meaning}): accepted, want {want:?}")),
            Err(e) => {
                let e = e.to_string();
                let said: Vec<&str> = e.lines().filter_map(|l| l.strip_prefix("error: ")).collect();
                if said != *want {
                    wrong.push(format!("{expr} ({meaning}): want {want:?}, got {e}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_long_list_is_joined_within_1024_bytes_cut_between_characters() {
    // 81 bytes an element and a 2-byte separator: the cut at 1024 falls inside a `ü`
    let finalizers: Vec<String> = (0..100).map(|_| format!("x{}", "ü".repeat(40))).collect();
    let pod = serde_json::json!({
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u", "finalizers": finalizers},
        "spec": {"containers": [{"name": "a"}]},
    });
    let rule = "rule j {\n  cause \"c\"\n  severity info\n  when true\n  title \"{join(pod.metadata.finalizers, \\\", \\\")}\"\n}\n";
    let diagnoser = Diagnoser::builder().builtin(false).rules_source("t.k8srule", rule).build().unwrap();
    let mut snapshot = Snapshot::new(NOW);
    snapshot.add_value("pod.json", &pod).unwrap();
    let report = diagnoser.diagnose(&snapshot);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let title = &report.findings[0].title;
    let shown = title.strip_suffix('…').unwrap_or_else(|| panic!("not cut: {title}"));
    assert!(shown.len() <= 1024 && shown.len() > 1000, "{}", shown.len());
    assert!(finalizers.join(", ").starts_with(shown));
}
