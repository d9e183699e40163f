//! Differential test of the compiler: random well-typed `when` expressions
//! over integers, booleans and strings are compiled (a pack of one rule per
//! expression) and run by the host on random pods; a rule must fire on a pod
//! exactly when a small reference interpreter of the language (written from
//! docs/language.md) says its expression is true there.
//!
//! Integer operands stay small (literals and fields within ±5, at most eight
//! leaves per expression, so |value| <= 5^8), so no operation overflows: overflow's
//! meaning is not what this test checks. Divisors are literals from 0 to 9
//! (0 gives null).

use k8srule_host::{Diagnoser, Snapshot};
use proptest::prelude::*;

/// A container's values that the expressions read; `None` is an absent field.
#[derive(Debug, Clone)]
struct Pod {
    name: &'static str,
    restarts: i64,
    ready: Option<bool>,
    exit_code: Option<i64>,
    reason: Option<&'static str>,
}

#[derive(Debug, Clone)]
enum Int {
    Lit(i64),
    Restarts,
    ExitCode,
    Neg(Box<Int>),
    Arith(&'static str, Box<Int>, Box<Int>),
    /// `/` or `%` by a literal.
    DivBy(&'static str, Box<Int>, i64),
}

#[derive(Debug, Clone)]
enum Str {
    Lit(&'static str),
    Name,
    Reason,
}

#[derive(Debug, Clone)]
enum Bool {
    Lit(bool),
    Ready,
    Cmp(&'static str, Int, Int),
    StrCmp(&'static str, Str, &'static str),
    IsNull(Int, bool),
    Not(Box<Bool>),
    And(Box<Bool>, Box<Bool>),
    Or(Box<Bool>, Box<Bool>),
}

const NAMES: [&str; 3] = ["app", "web", "db"];
const REASONS: [&str; 2] = ["OOMKilled", "Error"];

fn int() -> impl Strategy<Value = Int> {
    let leaf = prop_oneof![(-5i64..=5).prop_map(Int::Lit), Just(Int::Restarts), Just(Int::ExitCode)];
    // depth 3 of binary operators: at most 8 leaves
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| Int::Neg(Box::new(a))),
            (prop::sample::select(vec!["+", "-", "*"]), inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| Int::Arith(op, Box::new(a), Box::new(b))),
            (prop::sample::select(vec!["/", "%"]), inner, 0i64..=9).prop_map(|(op, a, k)| Int::DivBy(
                op,
                Box::new(a),
                k
            )),
        ]
    })
}

fn boolean() -> impl Strategy<Value = Bool> {
    let cmp = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
    let string =
        prop_oneof![prop::sample::select(NAMES.to_vec()).prop_map(Str::Lit), Just(Str::Name), Just(Str::Reason)];
    let literal = prop::sample::select([NAMES.as_slice(), REASONS.as_slice()].concat());
    let leaf = prop_oneof![
        any::<bool>().prop_map(Bool::Lit),
        Just(Bool::Ready),
        (cmp, int(), int()).prop_map(|(op, a, b)| Bool::Cmp(op, a, b)),
        (prop::sample::select(vec!["==", "!="]), string, literal).prop_map(|(op, s, l)| Bool::StrCmp(op, s, l)),
        (int(), any::<bool>()).prop_map(|(a, is)| Bool::IsNull(a, is)),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| Bool::Not(Box::new(a))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Bool::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Bool::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn pod() -> impl Strategy<Value = Pod> {
    (
        prop::sample::select(NAMES.to_vec()),
        0i64..=5,
        prop::option::of(any::<bool>()),
        prop::option::of(-5i64..=5),
        prop::option::of(prop::sample::select(REASONS.to_vec())),
    )
        .prop_map(|(name, restarts, ready, exit_code, reason)| Pod { name, restarts, ready, exit_code, reason })
}

impl Int {
    fn source(&self) -> String {
        match self {
            Int::Lit(n) if *n < 0 => format!("(-{})", -n),
            Int::Lit(n) => n.to_string(),
            Int::Restarts => "c.restartCount".into(),
            Int::ExitCode => "c.lastState.terminated.exitCode".into(),
            Int::Neg(a) => format!("(-{})", a.source()),
            Int::Arith(op, a, b) => format!("({} {op} {})", a.source(), b.source()),
            Int::DivBy(op, a, k) => format!("({} {op} {k})", a.source()),
        }
    }

    /// The value, `None` for null: null when a side is null or on division by zero.
    fn eval(&self, p: &Pod) -> Option<i64> {
        match self {
            Int::Lit(n) => Some(*n),
            Int::Restarts => Some(p.restarts),
            Int::ExitCode => p.exit_code,
            Int::Neg(a) => a.eval(p).map(|a| -a),
            Int::Arith(op, a, b) => {
                let (a, b) = (a.eval(p)?, b.eval(p)?);
                Some(match *op {
                    "+" => a + b,
                    "-" => a - b,
                    _ => a * b,
                })
            }
            Int::DivBy(_, _, 0) => None,
            Int::DivBy(op, a, k) => a.eval(p).map(|a| if *op == "/" { a / k } else { a % k }),
        }
    }
}

impl Str {
    fn source(&self) -> String {
        match self {
            Str::Lit(s) => format!("{s:?}"),
            Str::Name => "c.name".into(),
            Str::Reason => "c.lastState.terminated.reason".into(),
        }
    }

    fn eval(&self, p: &Pod) -> Option<&'static str> {
        match self {
            Str::Lit(s) => Some(s),
            Str::Name => Some(p.name),
            Str::Reason => p.reason,
        }
    }
}

impl Bool {
    fn source(&self) -> String {
        match self {
            Bool::Lit(b) => b.to_string(),
            Bool::Ready => "c.ready".into(),
            Bool::Cmp(op, a, b) => format!("({} {op} {})", a.source(), b.source()),
            Bool::StrCmp(op, s, l) => format!("({} {op} {l:?})", s.source()),
            Bool::IsNull(a, true) => format!("({} == null)", a.source()),
            Bool::IsNull(a, false) => format!("({} != null)", a.source()),
            Bool::Not(a) => format!("(not {})", a.source()),
            Bool::And(a, b) => format!("({} and {})", a.source(), b.source()),
            Bool::Or(a, b) => format!("({} or {})", a.source(), b.source()),
        }
    }

    /// Whether it holds: any comparison with null is false, except
    /// `== null` and `!= null`; a null boolean does not hold.
    fn holds(&self, p: &Pod) -> bool {
        match self {
            Bool::Lit(b) => *b,
            Bool::Ready => p.ready == Some(true),
            // null equals null alone and is not ordered; `!=` is the negation of `==`
            Bool::Cmp("==", a, b) => a.eval(p) == b.eval(p),
            Bool::Cmp("!=", a, b) => a.eval(p) != b.eval(p),
            Bool::Cmp(op, a, b) => {
                let (Some(a), Some(b)) = (a.eval(p), b.eval(p)) else { return false };
                match *op {
                    "<" => a < b,
                    "<=" => a <= b,
                    ">" => a > b,
                    _ => a >= b,
                }
            }
            Bool::StrCmp(op, s, l) => (s.eval(p) == Some(*l)) == (*op == "=="),
            Bool::IsNull(a, is) => a.eval(p).is_none() == *is,
            Bool::Not(a) => !a.holds(p),
            Bool::And(a, b) => a.holds(p) && b.holds(p),
            Bool::Or(a, b) => a.holds(p) || b.holds(p),
        }
    }
}

fn rule(i: usize, when: &Bool) -> String {
    format!(
        "rule p.r{i} {{\n  cause \"c{i}\"\n  severity error\n  for c in containers\n  when {}\n  title \"t\"\n}}\n",
        when.source()
    )
}

fn pod_json(i: usize, p: &Pod) -> serde_json::Value {
    let mut status = serde_json::json!({ "name": p.name, "image": "x", "restartCount": p.restarts });
    if let Some(ready) = p.ready {
        status["ready"] = ready.into();
    }
    if p.exit_code.is_some() || p.reason.is_some() {
        let mut terminated = serde_json::json!({});
        if let Some(code) = p.exit_code {
            terminated["exitCode"] = code.into();
        }
        if let Some(reason) = p.reason {
            terminated["reason"] = reason.into();
        }
        status["lastState"] = serde_json::json!({ "terminated": terminated });
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": format!("p{i}"), "namespace": "default", "uid": format!("u{i}") },
        "spec": { "containers": [{ "name": p.name, "image": "x" }] },
        "status": { "phase": "Running", "containerStatuses": [status] },
    })
}

proptest! {
    // each case compiles and loads a pack: 16 cases of 24 expressions on 6 pods
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn generated_wasm_agrees_with_the_reference(whens in prop::collection::vec(boolean(), 24), pods in prop::collection::vec(pod(), 6)) {
        let source: String = whens.iter().enumerate().map(|(i, w)| rule(i, w)).collect();
        let diagnoser = Diagnoser::builder().builtin(false).threads(1).rules_source("p.k8srule", source.as_str()).build();
        let diagnoser = match diagnoser {
            Ok(d) => d,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{source}"))),
        };
        let mut snapshot = Snapshot::new(0);
        for (i, p) in pods.iter().enumerate() {
            snapshot.add_value("pods", &pod_json(i, p)).unwrap();
        }
        let report = diagnoser.diagnose(&snapshot);
        prop_assert!(report.errors.is_empty(), "{:?}", report.errors);
        for (r, when) in whens.iter().enumerate() {
            for (i, p) in pods.iter().enumerate() {
                let id = format!("p.r{r}");
                let fired = report.findings.iter().any(|f| f.rule == id && f.subject().ends_with(&format!("/p{i}")));
                prop_assert_eq!(fired, when.holds(p), "rule {} on {:?}:\n{}", id, p, rule(r, when));
            }
        }
    }
}
