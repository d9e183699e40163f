//! The report: findings, their ranking (root causes above the symptoms they
//! explain), and its renderers. Only [`findings`] reads the
//! contract's types.

pub mod findings;
pub mod group;
pub mod render;
pub mod sanitize;
pub mod silence;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

/// How bad a finding is, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// May break, or is degraded.
    Warning,
    /// Broken: the pod does not do its job.
    Error,
    /// Broken, and more than this pod is at stake.
    Critical,
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
    /// The name as reports and flags write it: `info`, `warning`, `error`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// The language texts are rendered in: a BCP 47 tag (`en`, `zh`, `ja`,
/// `pt-BR`), parsed with `str::parse`. A text is shown in the pack's
/// translation that best matches the tag (RFC 4647 lookup: `zh-Hans-CN`, then
/// `zh-Hans`, then `zh`), else in English, which every text has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lang(Cow<'static, str>);

impl Lang {
    /// English, the default.
    pub const EN: Lang = Lang(Cow::Borrowed("en"));
    /// Chinese.
    pub const ZH: Lang = Lang(Cow::Borrowed("zh"));

    /// The tag, in canonical case (`pt-BR`).
    pub fn tag(&self) -> &str {
        &self.0
    }

    /// The item whose tag best matches this language (RFC 4647 lookup), if any.
    pub(crate) fn lookup<'a, T>(&self, items: &'a [T], tag: impl Fn(&T) -> &str) -> Option<&'a T> {
        let mut range = self.tag();
        loop {
            if let Some(item) = items.iter().find(|i| tag(i).eq_ignore_ascii_case(range)) {
                return Some(item);
            }
            range = range.rsplit_once('-')?.0;
            // a one-letter subtag introduces the one after it: drop both
            if let Some((shorter, last)) = range.rsplit_once('-')
                && last.len() == 1
            {
                range = shorter;
            }
        }
    }
}

impl Default for Lang {
    fn default() -> Self {
        Lang::EN
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    /// A valid BCP 47 tag, in any case.
    fn from_str(tag: &str) -> Result<Self, String> {
        k8srule_dsl::pack::lang_tag(tag).map(|tag| Lang(Cow::Owned(tag))).map_err(|why| {
            format!("`{tag}` is not a language tag ({why}): expected a BCP 47 tag such as en, zh or pt-BR")
        })
    }
}

/// One diagnosis of one pod (or one of its containers).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The id of the rule that found it (`crashloop.cgroup-oom`).
    pub rule: String,
    /// The cause key (`cgroup-oom`; a refinement after a dot: `app-exit.crash`).
    pub cause: String,
    /// How bad it is.
    pub severity: Severity,
    /// How sure the rule is, from 0 to 1.
    pub confidence: f32,
    /// `namespace/name` of the pod; `None` for a finding of a workload rule.
    pub pod: Option<String>,
    /// `namespace/Kind/name` of the workload a workload rule found, or of
    /// the pod's controller (its `ownerReferences`): a ReplicaSet named
    /// `NAME-HASH` for the pod's `pod-template-hash` label is its Deployment
    /// `namespace/Deployment/NAME`; `None` for a pod without one.
    pub workload: Option<String>,
    /// The node the pod is bound to (`spec.nodeName`).
    pub node: Option<String>,
    /// The container, for a finding about one.
    pub container: Option<String>,
    /// One line: what is wrong.
    pub title: String,
    /// The values that made the rule fire.
    pub evidence: Vec<String>,
    /// Commands that confirm the diagnosis.
    pub confirm: Vec<String>,
    /// Steps that fix it.
    pub fix: Vec<String>,
    /// The rule id of the root cause this finding is a symptom of.
    pub explained_by: Option<String>,
    /// The pack the rule is in.
    pub pack: String,
    /// The kubeconfig context of the cluster the pod is in, when a report
    /// covers several clusters (`--context` twice, `--all-contexts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The `k8srule.dev/ignore` annotation that silenced it: set on the
    /// findings of [`Report::silenced`] only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced: Option<silence::Silence>,
    /// The cause keys this finding is the root cause of (what ranking reads).
    #[serde(skip)]
    pub explains: Vec<String>,
}

impl Finding {
    /// What the finding is about: the pod, else the workload.
    pub fn subject(&self) -> &str {
        self.pod.as_deref().or(self.workload.as_deref()).unwrap_or_default()
    }
}

/// A pack that could not be loaded or failed while it ran: it reports nothing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportError {
    /// The pack's name (or the path or reference it was given by).
    pub pack: String,
    /// What went wrong.
    pub message: String,
}

/// How many pods were diagnosed, and how many have a finding.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Pods diagnosed.
    pub pods: usize,
    /// Pods with at least one finding.
    pub unhealthy: usize,
    /// Workloads with at least one finding of a workload rule.
    pub failing_workloads: usize,
}

/// What a diagnosis found: the schema of docs/report.schema.json, whose
/// `groups` are [`Report::groups`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The counts.
    pub summary: Summary,
    /// By pod; each root cause followed by the symptoms it explains.
    pub findings: Vec<Finding>,
    /// Packs that could not be loaded or failed.
    pub errors: Vec<ReportError>,
    /// What was read but not diagnosed, e.g. objects of kinds no rule reads.
    pub notes: Vec<String>,
    /// Findings a `k8srule.dev/ignore` annotation silenced, in the order of
    /// `findings`: not counted, shown only by `-o wide`, JSON and YAML.
    pub silenced: Vec<Finding>,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            summary: &'a Summary,
            findings: &'a [Finding],
            groups: Vec<group::Group>,
            errors: &'a [ReportError],
            notes: &'a [String],
            #[serde(skip_serializing_if = "<[Finding]>::is_empty")]
            silenced: &'a [Finding],
        }
        let json = Json {
            summary: &self.summary,
            findings: &self.findings,
            groups: self.groups(),
            errors: &self.errors,
            notes: &self.notes,
            silenced: &self.silenced,
        };
        json.serialize(serializer)
    }
}

/// Whether cause `key` is selected by `selector`: the same key, or a
/// refinement of it (`app-exit.crash` is an `app-exit` too).
pub fn cause_matches(key: &str, selector: &str) -> bool {
    key.strip_prefix(selector).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Marks symptoms with the root cause that explains them and orders the
/// findings: by pod, each root cause followed by its symptoms. O(n log n) in
/// the findings (the sort) plus linear work in their `explains` lists.
pub fn rank(findings: &mut Vec<Finding>) {
    let mut sorted: Vec<usize> = (0..findings.len()).collect();
    sorted.sort_by(|&a, &b| {
        let (a, b) = (&findings[a], &findings[b]);
        a.subject()
            .cmp(b.subject())
            .then(b.severity.cmp(&a.severity))
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.rule.cmp(&b.rule))
            .then(a.container.cmp(&b.container))
    });
    let mut order = Vec::with_capacity(findings.len());
    for list in sorted.chunk_by(|&a, &b| findings[a].subject() == findings[b].subject()) {
        if let [only] = list {
            order.push((*only, None));
            continue;
        }
        let pod: Vec<&Finding> = list.iter().map(|&i| &findings[i]).collect();
        let roots = roots(&direct_causes(&pod));
        let mut symptoms: Vec<Vec<usize>> = vec![Vec::new(); list.len()];
        for (i, &root) in roots.iter().enumerate() {
            if root != i {
                symptoms[root].push(i);
            }
        }
        for (i, symptoms) in symptoms.iter().enumerate() {
            if roots[i] == i {
                order.push((list[i], None));
                order.extend(symptoms.iter().map(|&s| (list[s], Some(list[i]))));
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

/// For each finding of one pod, in rank order, the first finding that
/// explains it: one whose `explains` has its cause, whose cause it does not
/// explain back, of the same container or of the whole pod.
///
/// The candidates for a cause are listed per container (and for the pod),
/// keeping the first finding per cause of the candidate: a finding skips at
/// most one candidate per cause it explains itself, so the work is linear in
/// the findings and their `explains` lists.
fn direct_causes(pod: &[&Finding]) -> Vec<Option<usize>> {
    // (explained cause, container: `None` for any, `Some(None)` for the pod's)
    type Key<'a> = (&'a str, Option<Option<&'a str>>);
    let mut candidates: HashMap<Key<'_>, Vec<usize>> = HashMap::new();
    let mut listed: HashSet<(Key<'_>, &str)> = HashSet::new();
    for (j, root) in pod.iter().enumerate() {
        for explained in &root.explains {
            for key in [(explained.as_str(), Some(root.container.as_deref())), (explained.as_str(), None)] {
                if listed.insert((key, root.cause.as_str())) {
                    candidates.entry(key).or_default().push(j);
                }
            }
        }
    }
    pod.iter()
        .enumerate()
        .map(|(i, f)| {
            // a root that explains a cause explains its refinements too
            let causes =
                || std::iter::successors(Some(f.cause.as_str()), |c| c.rsplit_once('.').map(|(parent, _)| parent));
            let explained_by_f = |j: usize| f.explains.iter().any(|e| cause_matches(&pod[j].cause, e));
            let first = |keys: &mut dyn Iterator<Item = Key<'_>>| {
                keys.filter_map(|key| candidates.get(&key)?.iter().copied().find(|&j| j != i && !explained_by_f(j)))
                    .min()
            };
            match f.container.as_deref() {
                // a root of the same container or of the pod; else one of another container of the pod
                // (an init container's failure, a sidecar's), when none of those explains it
                Some(c) => first(&mut causes().flat_map(|cause| [(cause, Some(Some(c))), (cause, Some(None))]))
                    .or_else(|| first(&mut causes().map(|cause| (cause, None)))),
                None => first(&mut causes().map(|cause| (cause, None))),
            }
        })
        .collect()
}

/// The root of each finding: following its causes to one that has none; a
/// finding whose chain runs into a cycle is a root itself. Each finding is
/// visited once.
fn roots(direct: &[Option<usize>]) -> Vec<usize> {
    #[derive(Clone, Copy)]
    enum State {
        Unvisited,
        OnPath,
        Ends(usize),
        Cycles,
    }
    let mut state = vec![State::Unvisited; direct.len()];
    let mut path = Vec::new();
    for start in 0..direct.len() {
        let mut at = start;
        let end = loop {
            match state[at] {
                State::Ends(root) => break Some(root),
                State::OnPath | State::Cycles => break None,
                State::Unvisited => {
                    state[at] = State::OnPath;
                    path.push(at);
                    match direct[at] {
                        Some(next) => at = next,
                        None => break Some(at),
                    }
                }
            }
        };
        for i in path.drain(..) {
            state[i] = end.map_or(State::Cycles, State::Ends);
        }
    }
    state
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            State::Ends(root) => *root,
            _ => i,
        })
        .collect()
}

impl Report {
    /// Leaves out findings below `min`; a symptom whose root cause is left
    /// out becomes a root itself. The summary counts what remains.
    pub fn retain_severity(&mut self, min: Severity) {
        self.findings.retain(|f| f.severity >= min);
        let subject = |f: &Finding| (f.cluster.clone(), f.subject().to_string());
        let kept: HashSet<_> = self.findings.iter().map(|f| (subject(f), f.rule.as_str())).collect();
        let orphans: Vec<usize> = (0..self.findings.len())
            .filter(|&i| {
                let f = &self.findings[i];
                f.explained_by.as_deref().is_some_and(|root| !kept.contains(&(subject(f), root)))
            })
            .collect();
        for i in orphans {
            self.findings[i].explained_by = None;
        }
        self.count();
    }

    /// Counts the unhealthy pods and the failing workloads of the findings,
    /// which are ordered by what they are about.
    pub(crate) fn count(&mut self) {
        let mut pods: Vec<_> = self.findings.iter().filter(|f| f.pod.is_some()).map(|f| (&f.cluster, &f.pod)).collect();
        pods.dedup();
        let mut workloads: Vec<_> =
            self.findings.iter().filter(|f| f.pod.is_none()).map(|f| (&f.cluster, &f.workload)).collect();
        workloads.dedup();
        self.summary.unhealthy = pods.len();
        self.summary.failing_workloads = workloads.len();
    }

    /// One report of the reports of several clusters, each named by its
    /// kubeconfig context, in that order: each finding gets its `cluster`,
    /// the counts add up, and an error or a note is listed once when every
    /// cluster has it, else once per cluster that has it, after `cluster NAME: `.
    pub fn merge(reports: Vec<(String, Report)>) -> Report {
        let n = reports.len();
        let mut merged = Report::default();
        let (mut errors, mut notes) = (Vec::new(), Vec::new());
        for (cluster, report) in reports {
            merged.summary.pods += report.summary.pods;
            merged.summary.unhealthy += report.summary.unhealthy;
            merged.summary.failing_workloads += report.summary.failing_workloads;
            for mut f in report.findings.into_iter().chain(report.silenced) {
                f.cluster = Some(cluster.clone());
                match f.silenced {
                    Some(_) => merged.silenced.push(f),
                    None => merged.findings.push(f),
                }
            }
            errors.extend(report.errors.into_iter().map(|e| (cluster.clone(), e)));
            notes.extend(report.notes.into_iter().map(|note| (cluster.clone(), note)));
        }
        merged.errors = once_or_each(errors, n, |c, e| ReportError {
            pack: e.pack.clone(),
            message: format!("cluster {c}: {}", e.message),
        });
        merged.notes = once_or_each(notes, n, |c, note| format!("cluster {c}: {note}"));
        merged
    }
}

/// `items` of `clusters` clusters: one that every cluster has, once;
/// the others each as `label` makes it.
fn once_or_each<T: Clone + PartialEq>(
    items: Vec<(String, T)>,
    clusters: usize,
    label: impl Fn(&str, &T) -> T,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for (cluster, item) in &items {
        let mut having: Vec<&str> = items.iter().filter(|(_, other)| other == item).map(|(c, _)| c.as_str()).collect();
        having.dedup();
        if having.len() >= clusters && clusters > 1 {
            if !out.contains(item) {
                out.push(item.clone());
            }
        } else {
            out.push(label(cluster, item));
        }
    }
    out
}

impl Report {
    /// The report as pretty-printed JSON (docs/report.schema.json), with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// `N pods diagnosed, M unhealthy: ` and the root causes counted, a
    /// refinement under its parent: `app-exit 3 (crash 1, tls 1)`.
    pub fn summary_line(&self) -> String {
        let mut causes: BTreeMap<&str, (usize, BTreeMap<&str, usize>)> = BTreeMap::new();
        for f in self.findings.iter().filter(|f| f.explained_by.is_none()) {
            let (parent, refined) = f.cause.split_once('.').map_or((f.cause.as_str(), None), |(p, r)| (p, Some(r)));
            let entry = causes.entry(parent).or_default();
            entry.0 += 1;
            if let Some(r) = refined {
                *entry.1.entry(r).or_default() += 1;
            }
        }
        let by_cause: Vec<String> = causes
            .iter()
            .map(|(c, (n, refined))| match refined.is_empty() {
                true => format!("{c} {n}"),
                false => {
                    let refined: Vec<String> = refined.iter().map(|(r, n)| format!("{r} {n}")).collect();
                    format!("{c} {n} ({})", refined.join(", "))
                }
            })
            .collect();
        let mut line = format!("{} pods diagnosed, {} unhealthy", self.summary.pods, self.summary.unhealthy);
        if self.summary.failing_workloads > 0 {
            line += &format!(", {} workload(s) failing", self.summary.failing_workloads);
        }
        if !by_cause.is_empty() {
            line.push_str(&format!(": {}", by_cause.join(", ")));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_parsed_canonically_and_looked_up_from_the_most_specific() {
        let lang: Lang = "zh-hant-tw".parse().unwrap();
        assert_eq!(lang.tag(), "zh-Hant-TW");
        let tags = ["en", "zh", "zh-Hant"];
        assert_eq!(lang.lookup(&tags, |t| t), Some(&"zh-Hant"));
        assert_eq!("zh-CN".parse::<Lang>().unwrap().lookup(&tags, |t| t), Some(&"zh"));
        // a one-letter subtag goes with the one after it
        assert_eq!("zh-Hant-u-nu-hanidec".parse::<Lang>().unwrap().lookup(&tags, |t| t), Some(&"zh-Hant"));
        assert_eq!("ja".parse::<Lang>().unwrap().lookup(&tags, |t| t), None);
        assert!("english".parse::<Lang>().unwrap_err().contains("`english` is not a language tag"));
        assert_eq!(Lang::default(), Lang::EN);
    }

    fn finding(rule: &str, severity: Severity, container: Option<&str>, explains: &[&str]) -> Finding {
        Finding {
            rule: rule.into(),
            cause: rule.into(),
            severity,
            confidence: 1.0,
            pod: Some("ns/p".into()),
            workload: None,
            node: None,
            container: container.map(Into::into),
            title: String::new(),
            evidence: Vec::new(),
            confirm: Vec::new(),
            fix: Vec::new(),
            explained_by: None,
            pack: String::new(),
            cluster: None,
            silenced: None,
            explains: explains.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn ranked(mut findings: Vec<Finding>) -> Vec<(String, Option<String>)> {
        rank(&mut findings);
        findings.into_iter().map(|f| (f.rule, f.explained_by)).collect()
    }

    fn by(rule: &str, root: Option<&str>) -> (String, Option<String>) {
        (rule.into(), root.map(Into::into))
    }

    #[test]
    fn symptoms_follow_chains_to_their_root_and_a_cycle_starts_at_each_member() {
        use Severity::*;
        // node -> oom -> crash: both symptoms under `node`, each in rank order
        let chain = vec![
            finding("crash", Error, Some("app"), &[]),
            finding("oom", Warning, Some("app"), &["crash"]),
            finding("node", Info, None, &["oom"]),
        ];
        assert_eq!(ranked(chain), [by("node", None), by("crash", Some("node")), by("oom", Some("node"))]);
        // a root of another container of the pod (an init container's, a
        // sidecar's) explains a symptom no root of its own container explains
        let across =
            vec![finding("crash", Error, Some("app"), &[]), finding("migrate", Warning, Some("init"), &["crash"])];
        assert_eq!(ranked(across), [by("migrate", None), by("crash", Some("migrate"))]);
        // but the symptom's own container's root comes first; mutual explanations are no link
        let own = vec![
            finding("crash", Error, Some("app"), &[]),
            finding("exit", Error, Some("app"), &["crash"]),
            finding("oom", Warning, Some("side"), &["crash"]),
            finding("a", Info, None, &["b"]),
            finding("b", Info, None, &["a"]),
        ];
        assert_eq!(
            ranked(own),
            [by("exit", None), by("crash", Some("exit")), by("oom", None), by("a", None), by("b", None)]
        );
        // a -> b -> c -> a, and d explained by a: each cycle member is its own root
        let cycle = vec![
            finding("a", Error, None, &["c"]),
            finding("b", Error, None, &["a"]),
            finding("c", Error, None, &["b"]),
            finding("d", Error, None, &[]),
            finding("e", Warning, None, &["d"]),
        ];
        assert_eq!(ranked(cycle), [by("a", None), by("b", None), by("c", None), by("e", None), by("d", Some("e"))]);
    }

    #[test]
    fn severity_filtering_frees_symptoms_whose_root_is_left_out() {
        use Severity::*;
        let mut report = Report {
            findings: vec![
                finding("low", Info, None, &["high"]),
                finding("high", Error, None, &[]),
                finding("root", Critical, None, &["mid"]),
                finding("mid", Warning, None, &[]),
            ],
            ..Report::default()
        };
        rank(&mut report.findings);
        report.retain_severity(Warning);
        let kept: Vec<_> = report.findings.into_iter().map(|f| (f.rule, f.explained_by)).collect();
        assert_eq!(kept, [by("root", None), by("mid", Some("root")), by("high", None)]);
        assert_eq!(report.summary.unhealthy, 1);
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
