//! Findings, their ranking (root causes above the symptoms they explain), and
//! the report renderers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::types::{self, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl From<types::Severity> for Severity {
    fn from(s: types::Severity) -> Self {
        match s {
            types::Severity::Info => Severity::Info,
            types::Severity::Warning => Severity::Warning,
            types::Severity::Error => Severity::Error,
            types::Severity::Critical => Severity::Critical,
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [Severity::Info, Severity::Warning, Severity::Error, Severity::Critical]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown severity `{text}`: expected info, warning, error or critical"))
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// The language texts are rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

/// One diagnosis of one pod (or one of its containers).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: String,
    pub cause: String,
    pub severity: Severity,
    pub confidence: f32,
    pub pod: String,
    pub container: Option<String>,
    pub title: String,
    pub evidence: Vec<String>,
    pub confirm: Vec<String>,
    pub fix: Vec<String>,
    /// The rule id of the root cause this finding is a symptom of.
    pub explained_by: Option<String>,
    pub pack: String,
    #[serde(skip)]
    pub explains: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportError {
    pub pack: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub pods: usize,
    pub unhealthy: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub errors: Vec<ReportError>,
    /// What was read but not diagnosed, e.g. objects of kinds no rule reads.
    pub notes: Vec<String>,
}

/// A piece of a text template: literal text, or argument N for `{N}` (none
/// when N is not a number). `{{` and `}}` are literal braces.
enum Piece<'t> {
    Text(&'t str),
    Arg(Option<usize>),
}

fn pieces(template: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = template;
    std::iter::from_fn(move || {
        let at = rest.find(['{', '}']);
        let piece = match at {
            _ if rest.is_empty() => return None,
            None => Piece::Text(std::mem::take(&mut rest)),
            Some(0) if rest.starts_with("{{") || rest.starts_with("}}") => {
                let brace = &rest[..1];
                rest = &rest[2..];
                Piece::Text(brace)
            }
            Some(0) if rest.starts_with('}') => {
                rest = &rest[1..];
                Piece::Text("}")
            }
            Some(0) => {
                let inner = &rest[1..];
                let (n, after) = inner.split_once('}').unwrap_or((inner, ""));
                rest = after;
                Piece::Arg(n.parse().ok())
            }
            Some(at) => {
                let (text, after) = rest.split_at(at);
                rest = after;
                Piece::Text(text)
            }
        };
        Some(piece)
    })
}

/// Renders a text template: `{N}` is argument N, `{{`/`}}` literal braces.
pub fn render_template(template: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    for piece in pieces(template) {
        out.push_str(match piece {
            Piece::Text(t) => t,
            Piece::Arg(n) => n.and_then(|i| args.get(i)).map_or("<none>", String::as_str),
        });
    }
    out
}

/// The argument indexes a template refers to.
pub fn placeholders(template: &str) -> impl Iterator<Item = usize> {
    pieces(template).filter_map(|p| match p {
        Piece::Arg(n) => n,
        Piece::Text(_) => None,
    })
}

/// Renders a finding's argument (the host reads `Value::Input`s before).
pub fn render_value(v: Value, batch: &types::Batch) -> String {
    match v {
        Value::Null | Value::Input(_) => "<none>".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Interned(id) => crate::project::batch_string(batch, id).unwrap_or("<none>").to_string(),
        Value::Text(s) => s,
    }
}

pub fn pick(text: &types::Text, lang: Lang) -> &str {
    match (lang, &text.zh) {
        (Lang::Zh, Some(zh)) if !zh.is_empty() => zh,
        _ => &text.en,
    }
}

/// Whether cause `key` is `selector` or one of its refinements:
/// `image-pull-failure.rate-limited` is an `image-pull-failure` too.
pub fn cause_matches(key: &str, selector: &str) -> bool {
    key.strip_prefix(selector).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Marks symptoms with the root cause that explains them and orders the
/// findings: by pod, each root cause followed by its symptoms.
pub fn rank(findings: &mut Vec<Finding>) {
    let mut sorted: Vec<usize> = (0..findings.len()).collect();
    sorted.sort_by(|&a, &b| {
        let (a, b) = (&findings[a], &findings[b]);
        a.pod
            .cmp(&b.pod)
            .then(b.severity.cmp(&a.severity))
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.rule.cmp(&b.rule))
            .then(a.container.cmp(&b.container))
    });
    let mut order = Vec::with_capacity(findings.len());
    for list in sorted.chunk_by(|&a, &b| findings[a].pod == findings[b].pod) {
        if let [only] = list {
            order.push((*only, None));
            continue;
        }
        let f = |i: usize| &findings[list[i]];
        let direct: Vec<Option<usize>> = (0..list.len())
            .map(|i| {
                (0..list.len()).position(|j| {
                    let (root, f) = (f(j), f(i));
                    j != i
                        && root.explains.contains(&f.cause)
                        && !f.explains.contains(&root.cause)
                        && (root.container == f.container || root.container.is_none() || f.container.is_none())
                })
            })
            .collect();
        // follow symptom -> cause links to the root; a cycle makes its start a root
        let root_of = |i: usize| {
            let mut at = i;
            for _ in 0..list.len() {
                match direct[at] {
                    Some(next) => at = next,
                    None => return at,
                }
            }
            i
        };
        let roots: Vec<usize> = (0..list.len()).map(root_of).collect();
        for (i, root) in roots.iter().enumerate() {
            if *root == i {
                order.push((list[i], None));
                order.extend((0..list.len()).filter(|&s| s != i && roots[s] == i).map(|s| (list[s], Some(list[i]))));
            }
        }
    }
    let explained_by: Vec<Option<String>> =
        order.iter().map(|(_, root)| root.map(|r| findings[r].rule.clone())).collect();
    let mut slots: Vec<Option<Finding>> = findings.drain(..).map(Some).collect();
    for ((i, _), by) in order.into_iter().zip(explained_by) {
        if let Some(mut f) = slots[i].take() {
            f.explained_by = by;
            findings.push(f);
        }
    }
}

impl Report {
    /// Leaves out findings below `min`; a symptom whose root cause is left
    /// out becomes a root itself. The summary counts what remains.
    pub fn retain_severity(&mut self, min: Severity) {
        self.findings.retain(|f| f.severity >= min);
        let kept: Vec<(String, String)> = self.findings.iter().map(|f| (f.pod.clone(), f.rule.clone())).collect();
        for f in &mut self.findings {
            if f.explained_by.as_ref().is_some_and(|r| !kept.contains(&(f.pod.clone(), r.clone()))) {
                f.explained_by = None;
            }
        }
        let mut unhealthy: Vec<&str> = self.findings.iter().map(|f| f.pod.as_str()).collect();
        unhealthy.dedup();
        self.summary.unhealthy = unhealthy.len();
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn summary_line(&self) -> String {
        let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
        for f in self.findings.iter().filter(|f| f.explained_by.is_none()) {
            *causes.entry(&f.cause).or_default() += 1;
        }
        let by_cause: Vec<String> = causes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let mut line = format!("{} pods diagnosed, {} unhealthy", self.summary.pods, self.summary.unhealthy);
        if !by_cause.is_empty() {
            line.push_str(&format!(": {}", by_cause.join(", ")));
        }
        line
    }
}

/// A rule as `k8srule rules -o json` and `k8srule pack inspect` list it.
pub fn rule_summary(r: &types::RuleInfo) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "cause": r.cause, "severity": Severity::from(r.severity), "confidence": r.confidence, "title": r.title.en,
    })
}

/// The documentation of a rule, as `k8srule explain` prints it.
pub fn explain(r: &types::RuleInfo, lang: Lang) -> String {
    let mut out = String::new();
    // placeholders show what they stand for: `<c.name>`
    let names: Vec<String> = r.arguments.iter().map(|a| format!("<{a}>")).collect();
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
    let (detects, why, confirm, fix) = match lang {
        Lang::En => ("What it detects", "Why it happens", "How to confirm", "How to fix"),
        Lang::Zh => ("检测内容", "原因", "如何确认", "如何修复"),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_arguments_and_keep_escaped_braces() {
        let args = vec!["app".to_string(), "137".to_string()];
        assert_eq!(render_template("{0} exited {1} {{x}} {5}", &args), "app exited 137 {x} <none>");
        assert_eq!(render_template("a } {x}", &args), "a } <none>");
        assert_eq!(placeholders("{1} {{2}} {x} {0}").collect::<Vec<_>>(), [1, 0]);
    }

    #[test]
    fn a_refined_cause_matches_its_parent_only() {
        assert!(cause_matches("image-pull-failure.rate-limited", "image-pull-failure"));
        assert!(cause_matches("image-pull-failure.rate-limited", "image-pull-failure.rate-limited"));
        assert!(cause_matches("image-pull-failure", "image-pull-failure"));
        assert!(!cause_matches("image-pull-failure", "image-pull-failure.rate-limited"));
        assert!(!cause_matches("image-pull-failures", "image-pull-failure"));
        assert!(!cause_matches("disk-full", "disk"));
    }
}
