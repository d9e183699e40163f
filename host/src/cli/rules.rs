//! Rules as `k8srule rules` and `k8srule explain` show them.

use std::fmt::Write as _;

use crate::evaluation::contract as types;
use crate::evaluation::template::render_template;
use crate::report::findings::pick;
use crate::report::{Lang, Severity};

/// A rule as `k8srule rules -o json` and `k8srule pack inspect` list it.
pub fn rule_summary(r: &types::RuleInfo) -> serde_json::Value {
    let scope = match r.scope {
        types::Scope::Pod => "pod",
        types::Scope::Container => "container",
        types::Scope::Workload => "workload",
    };
    serde_json::json!({
        "id": r.id, "cause": r.cause, "severity": Severity::from(r.severity), "confidence": r.confidence,
        "scope": scope, "title": render_template(pick(&r.title, &Lang::EN), &argument_names(r)),
    })
}

/// What each placeholder of a rule's texts stands for: `<c.name>`.
fn argument_names(r: &types::RuleInfo) -> Vec<String> {
    r.arguments.iter().map(|a| format!("<{a}>")).collect()
}

/// The headings of `explain`, English first.
const HEADINGS: [(&str, [&str; 4]); 2] = [
    ("en", ["What it detects", "Why it happens", "How to confirm", "How to fix"]),
    ("zh", ["检测内容", "原因", "如何确认", "如何修复"]),
];

/// The documentation of a rule, as `k8srule explain` prints it.
pub fn explain(r: &types::RuleInfo, lang: &Lang) -> String {
    let mut out = String::new();
    let names = argument_names(r);
    let t = |x: &types::Text| render_template(pick(x, lang), &names);
    let _ = writeln!(
        out,
        "{} ({}, {}, confidence {:.0}%)",
        r.id,
        r.cause,
        Severity::from(r.severity).as_str(),
        r.confidence * 100.0
    );
    let _ = writeln!(out, "\n{}", t(&r.title));
    let [detects, why, confirm, fix] = lang.lookup(&HEADINGS, |h| h.0).unwrap_or(&HEADINGS[0]).1;
    let _ = writeln!(out, "\n{detects}\n  {}", t(&r.detects));
    let _ = writeln!(out, "\n{why}\n  {}", t(&r.why));
    let _ = writeln!(out, "\n{confirm}");
    for c in &r.confirm {
        let _ = writeln!(out, "  {}", t(c));
    }
    let _ = writeln!(out, "\n{fix}");
    for f in &r.fix {
        let _ = writeln!(out, "  {}", t(f));
    }
    if !r.explains.is_empty() {
        let _ = writeln!(out, "\nExplains: {}", r.explains.join(", "));
    }
    for link in &r.references {
        let _ = writeln!(out, "See: {link}");
    }
    out
}

/// Warnings for the `explains` keys of `packs` that no rule of `packs` or of
/// `others` has as its cause, itself or refined: a typo there breaks ranking.
pub(crate) fn unexplained(packs: &[&types::PluginInfo], others: &[&types::PluginInfo]) -> Vec<String> {
    let causes: Vec<&str> = packs.iter().chain(others).flat_map(|p| p.rules.iter().map(|r| r.cause.as_str())).collect();
    let mut warnings = Vec::new();
    for rule in packs.iter().flat_map(|p| &p.rules) {
        for key in rule.explains.iter().filter(|k| !causes.iter().any(|c| k8srule_dsl::pack::cause_covers(c, k))) {
            warnings.push(format!("warning: rule {} explains `{key}`, which no loaded rule has as its cause", rule.id));
        }
    }
    warnings
}
