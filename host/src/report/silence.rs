//! Findings people decided to live with: the annotation
//! `k8srule.dev/ignore: "<rule id or cause key>, ..."` on a pod or a workload,
//! or on one of its owners (ReplicaSet, Deployment, StatefulSet, DaemonSet,
//! Job, CronJob, as the snapshot holds them) silences those findings of it; a cause
//! key covers its refinements, and a silenced root cause its symptoms.
//! `k8srule.dev/ignore-reason` says why. The syntax is kube-score's
//! `kube-score/ignore` (a comma-separated list on the object) with one reason
//! for the list. Silenced findings move to [`Report::silenced`], each saying
//! by which object and entry; a value that names nothing is a note.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::{Finding, Report, cause_matches};
use crate::input::fields::{IGNORE, IGNORE_REASON};
use crate::input::snapshot::Snapshot;
use crate::input::tree::Doc;

/// Characters of a reason kept, and bad entries named in one note.
const REASON_CHARS: usize = 500;
const NAMED_ENTRIES: usize = 5;
/// Owners followed up from a pod (a CronJob's pod is three levels down).
const OWNER_DEPTH: usize = 8;

/// Why a finding is silenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Silence {
    /// `namespace/Kind/name` of the annotated object: the pod or one of its owners.
    pub object: String,
    /// The entry of its `k8srule.dev/ignore` that names the finding's rule or cause.
    pub entry: String,
    /// Its `k8srule.dev/ignore-reason`, if any.
    pub reason: Option<String>,
}

/// One annotated object's list.
struct Ignore {
    object: String,
    entries: Vec<String>,
    reason: Option<String>,
}

impl Ignore {
    fn silence(&self, f: &Finding) -> Option<Silence> {
        let entry = self.entries.iter().find(|e| f.rule == **e || cause_matches(&f.cause, e))?;
        Some(Silence { object: self.object.clone(), entry: entry.clone(), reason: self.reason.clone() })
    }
}

/// Moves the findings the annotations of their pods and owners silence to
/// `report.silenced`; `known` tells whether an entry names a loaded rule or
/// cause. An entry that is not a name, or names nothing loaded, is a note
/// (once per object).
pub fn apply(report: &mut Report, snapshot: &Snapshot, known: &dyn Fn(&str) -> bool) {
    if report.findings.is_empty() {
        return;
    }
    let with_findings: HashSet<&str> = report.findings.iter().map(Finding::subject).collect();
    let mut notes = BTreeSet::new();
    // by what the findings are about: a pod (`ns/name`) or a workload (`ns/Kind/name`)
    let mut lists: HashMap<String, Vec<Ignore>> = HashMap::new();
    let pods = snapshot.pods.iter().map(|&n| (snapshot.get(n), false));
    let workloads = snapshot.owners.values().map(|&n| (snapshot.get(n), true));
    for (object, workload) in pods.chain(workloads) {
        let name = object.str_at(&["metadata", "name"]).unwrap_or("");
        let name = match workload {
            false => format!("{}/{name}", namespace(object)),
            true => format!("{}/{}/{name}", namespace(object), object.str_at(&["kind"]).unwrap_or("")),
        };
        if !with_findings.contains(name.as_str()) || lists.contains_key(&name) {
            continue;
        }
        let list: Vec<Ignore> =
            objects(snapshot, object).into_iter().filter_map(|o| ignore(o, known, &mut notes)).collect();
        lists.insert(name, list);
    }
    drop(with_findings);
    // a root cause comes before its symptoms: theirs is known when they come
    let mut roots: HashMap<(String, String), Silence> = HashMap::new();
    let (mut kept, mut silenced) = (Vec::new(), Vec::new());
    for mut f in report.findings.drain(..) {
        let own = lists.get(f.subject()).and_then(|list| list.iter().find_map(|i| i.silence(&f)));
        let root = f.explained_by.as_ref().and_then(|r| roots.get(&(f.subject().to_string(), r.clone())));
        f.silenced = own.or_else(|| root.cloned());
        match &f.silenced {
            Some(s) => {
                if f.explained_by.is_none() {
                    roots.insert((f.subject().to_string(), f.rule.clone()), s.clone());
                }
                silenced.push(f);
            }
            None => kept.push(f),
        }
    }
    report.findings = kept;
    report.silenced = silenced;
    report.notes.extend(notes);
}

fn namespace<'a>(object: Doc<'a>) -> &'a str {
    object.str_at(&["metadata", "namespace"]).unwrap_or("default")
}

/// The pod (or workload), then each owner the snapshot holds, controller first.
fn objects<'a>(snapshot: &'a Snapshot, object: Doc<'a>) -> Vec<Doc<'a>> {
    let mut chain = vec![object];
    let mut current = object;
    for _ in 0..OWNER_DEPTH {
        let Some(refs) = current.path(&["metadata", "ownerReferences"]) else { break };
        let owner = refs.items().find_map(|r| snapshot.owners.get(r.str_at(&["uid"])?));
        match owner {
            Some(&node) => {
                current = snapshot.get(node);
                chain.push(current);
            }
            None => break,
        }
    }
    chain
}

/// The object's list, if it has the annotation; its bad entries as a note.
fn ignore(object: Doc<'_>, known: &dyn Fn(&str) -> bool, notes: &mut BTreeSet<String>) -> Option<Ignore> {
    let value = object.str_at(&["metadata", "annotations", IGNORE])?;
    let kind = object.str_at(&["kind"]).unwrap_or("Pod");
    let name = format!("{}/{kind}/{}", namespace(object), object.str_at(&["metadata", "name"]).unwrap_or(""));
    let (mut entries, mut bad) = (Vec::new(), Vec::new());
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let is_name = entry.len() <= 253 && entry.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if is_name && known(entry) {
            entries.push(entry.to_string());
        } else {
            bad.push(entry);
        }
    }
    if entries.is_empty() && bad.is_empty() {
        notes.insert(format!("{name}: annotation {IGNORE} is empty: expected rule ids or cause keys, comma-separated"));
    }
    if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(NAMED_ENTRIES).map(|e| format!("`{}`", cut(e, 64))).collect();
        let more = bad.len().saturating_sub(NAMED_ENTRIES);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        notes.insert(format!(
            "{name}: annotation {IGNORE}: {}{more} name(s) no loaded rule or cause; ignored",
            shown.join(", ")
        ));
    }
    let reason = object
        .str_at(&["metadata", "annotations", IGNORE_REASON])
        .map(|r| cut(r.trim(), REASON_CHARS))
        .filter(|r| !r.is_empty());
    (!entries.is_empty()).then_some(Ignore { object: name, entries, reason })
}

/// At most `n` characters of `text`, with `…` when cut.
fn cut(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
