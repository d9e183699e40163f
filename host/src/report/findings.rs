//! A pack's answer made findings: the one place the report reads the
//! contract's types. An answer is checked against the batch it answers and
//! the limits before anything of it is shown.

use std::collections::HashSet;

use super::{Finding, Lang, Severity};
use crate::evaluation::case::{Case, CaseKind};
use crate::evaluation::contract::{self, Value};
use crate::evaluation::projection::{Projection, batch_string};
use crate::evaluation::sandbox::{Limits, Pack, PackError};
use crate::evaluation::template::{placeholders, render_template};
use crate::input::tree::{Doc, View};

impl From<contract::Severity> for Severity {
    fn from(s: contract::Severity) -> Self {
        match s {
            contract::Severity::Info => Severity::Info,
            contract::Severity::Warning => Severity::Warning,
            contract::Severity::Error => Severity::Error,
            contract::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<Severity> for contract::Severity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => contract::Severity::Info,
            Severity::Warning => contract::Severity::Warning,
            Severity::Error => contract::Severity::Error,
            Severity::Critical => contract::Severity::Critical,
        }
    }
}

/// Renders a finding's argument (the host reads `Value::Input`s before).
fn render_value(v: Value, batch: &contract::Batch) -> String {
    match v {
        Value::Null | Value::Input(_) => "<none>".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Interned(id) => batch_string(batch, id).unwrap_or("<none>").to_string(),
        Value::Text(s) => s,
    }
}

/// `namespace/Kind/name` of the pod's controller: the owner reference marked
/// `controller`, else the first; a ReplicaSet named `NAME-HASH`, where HASH
/// is the pod's `pod-template-hash` label, is its Deployment `NAME`.
fn workload(pod: Doc<'_>, namespace: &str) -> Option<String> {
    let refs = pod.path(&["metadata", "ownerReferences"])?;
    let controller = |r: &Doc<'_>| matches!(r.get("controller").map(|c| c.view()), Some(View::Bool(true)));
    let owner = refs.items().find(controller).or_else(|| refs.items().next())?;
    let (kind, name) = (owner.str_at(&["kind"])?, owner.str_at(&["name"])?);
    let hash = pod.str_at(&["metadata", "labels", "pod-template-hash"]).filter(|h| !h.is_empty());
    let deployment = hash.and_then(|h| name.strip_suffix(h)?.strip_suffix('-')).filter(|d| !d.is_empty());
    Some(match deployment {
        Some(d) if kind == "ReplicaSet" => format!("{namespace}/Deployment/{d}"),
        _ => format!("{namespace}/{kind}/{name}"),
    })
}

/// A text in `lang`, or in English when the pack has none in it.
pub fn pick<'a>(text: &'a contract::Text, lang: &Lang) -> &'a str {
    let all = &text.translations;
    lang.lookup(all, |t| &t.lang).filter(|t| !t.text.is_empty()).or(all.first()).map_or("", |t| &t.text)
}

/// What one `evaluate` call of `pack` answered for `cases`, as findings in
/// `lang`; the rules `disabled` names are left out. An answer that names a
/// case, rule or container the batch does not have, repeats a finding, or
/// passes a limit is the pack's error.
pub fn build(
    pack: &Pack,
    raw: Vec<contract::Finding>,
    cases: &[Case<'_>],
    projection: &Projection<'_, '_, '_>,
    limits: &Limits,
    lang: &Lang,
    disabled: impl Fn(usize) -> bool,
) -> Result<Vec<Finding>, PackError> {
    let info = &pack.info;
    let batch = projection.batch();
    let err = |message: String| PackError { pack: pack.name.clone(), message };
    let mut out = Vec::with_capacity(raw.len());
    let mut per_case = vec![0usize; cases.len()];
    let mut distinct = HashSet::with_capacity(raw.len());
    // the texts of a call's findings, as rendered, within the pack's memory
    let mut rendered = 0;
    for f in raw {
        let case = cases
            .get(f.case as usize)
            .ok_or_else(|| err(format!("returned a finding for case {} of a batch of {}", f.case, cases.len())))?;
        let rule = info
            .rules
            .get(f.rule as usize)
            .ok_or_else(|| err(format!("returned a finding for rule {}; it declares {}", f.rule, info.rules.len())))?;
        // a batch of pods answers for pod and container rules, one of workloads for workload rules
        if (rule.scope == contract::Scope::Workload) != (case.kind == CaseKind::Workload) {
            continue;
        }
        let name = case.name();
        let (pod, workload, node) = match case.kind {
            CaseKind::Pod => {
                let namespace = name.split_once('/').map_or("", |(ns, _)| ns);
                let node = case.object.str_at(&["spec", "nodeName"]).map(str::to_string);
                (Some(name.clone()), workload(case.object, namespace), node)
            }
            CaseKind::Workload => (None, Some(name.clone()), None),
        };
        let container = match f.container {
            Some(c) => {
                let named = case.container(c as usize).map_err(|n| {
                    err(format!("rule `{}` named container {c} of {} with {n}", rule.id, case.describe()))
                })?;
                Some(named.name.to_string())
            }
            None => None,
        };
        if !distinct.insert((f.case, f.rule, f.container)) {
            let of = container.as_ref().map(|c| format!(" container {c}")).unwrap_or_default();
            return Err(err(format!(
                "returned rule `{}` twice for {}{of}; a finding is one per {}, rule and container",
                rule.id,
                case.describe(),
                case.noun()
            )));
        }
        per_case[f.case as usize] += 1;
        if per_case[f.case as usize] > limits.max_findings_per_case {
            return Err(err(format!(
                "returned more than {max} findings for {}; the limit is {max} per {}",
                case.describe(),
                case.noun(),
                max = limits.max_findings_per_case
            )));
        }
        if disabled(f.rule as usize) {
            continue;
        }
        // the arguments as shown, the values the host reads included, within max_text_bytes
        let (mut args, mut nulls, mut bytes) = (Vec::with_capacity(f.args.len()), Vec::new(), 0);
        for v in f.args {
            let v = match v {
                Value::Input(at) => {
                    projection.shown(at.input, at.row).map_err(|e| err(format!("rule `{}` {e}", rule.id)))?
                }
                v => v,
            };
            nulls.push(matches!(v, Value::Null));
            let shown = render_value(v, batch);
            bytes += shown.len();
            if bytes > limits.max_text_bytes {
                return Err(err(format!(
                    "rule `{}` returned a finding with more than {max} bytes of arguments; the limit is {max}",
                    rule.id,
                    max = limits.max_text_bytes
                )));
            }
            args.push(shown);
        }
        // an evidence line whose every placeholder is null shows nothing: leave it out
        let all_null = |t: &&contract::Text| {
            let mut refs = placeholders(pick(t, &Lang::EN)).peekable();
            refs.peek().is_some() && refs.all(|i| nulls.get(i).is_none_or(|null| *null))
        };
        let evidence: Vec<&contract::Text> = rule.evidence.iter().filter(|t| !all_null(t)).collect();
        let texts = |list: &mut dyn Iterator<Item = &contract::Text>| {
            list.map(|t| render_template(pick(t, lang), &args)).collect()
        };
        let finding = Finding {
            rule: rule.id.clone(),
            cause: render_template(&rule.cause, &args),
            severity: rule.severity.into(),
            confidence: rule.confidence,
            pod,
            workload,
            node,
            container,
            title: render_template(pick(&rule.title, lang), &args),
            evidence: texts(&mut evidence.into_iter()),
            confirm: texts(&mut rule.confirm.iter()),
            fix: texts(&mut rule.fix.iter()),
            explained_by: None,
            pack: pack.name.clone(),
            cluster: None,
            silenced: None,
            explains: rule.explains.clone(),
        };
        rendered += [&finding.cause, &finding.title]
            .into_iter()
            .chain(&finding.evidence)
            .chain(&finding.confirm)
            .chain(&finding.fix)
            .map(String::len)
            .sum::<usize>();
        if rendered > limits.memory_bytes {
            return Err(err(format!(
                "returned findings whose texts are more than {max} bytes; the limit is {max} per call (the memory limit)",
                max = limits.memory_bytes
            )));
        }
        out.push(finding);
    }
    Ok(out)
}
