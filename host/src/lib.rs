//! k8srule-host: diagnoses unhealthy Kubernetes pods by running rule packs
//! (WebAssembly components of the `k8srule:plugin` world) in a wasmtime sandbox.
//!
//! ```
//! use k8srule_host::{Diagnoser, Snapshot};
//!
//! let rule = r#"
//! rule demo.oom {
//!   cause "cgroup-oom"
//!   severity error
//!   for c in containers
//!   when c.lastState.terminated.reason == "OOMKilled"
//!   title "container {c.name} was OOMKilled"
//! }"#;
//! let diagnoser = Diagnoser::builder().builtin(false).rules_source("demo.k8srule", rule).build()?;
//!
//! let mut snapshot = Snapshot::new(0);
//! snapshot.add_text("pod.yaml", r#"
//! kind: Pod
//! metadata: {name: web, namespace: shop, uid: u1}
//! spec: {containers: [{name: app, image: shop:1}]}
//! status:
//!   containerStatuses:
//!   - name: app
//!     lastState: {terminated: {reason: OOMKilled, exitCode: 137}}
//! "#)?;
//!
//! let report = diagnoser.diagnose(&snapshot);
//! assert_eq!(report.findings[0].title, "container app was OOMKilled");
//! assert_eq!(report.findings[0].pod, "shop/web");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod case;
pub mod cli;
mod cli_pack;
pub mod config;
pub mod credentials;
pub mod doc;
pub mod engine;
pub mod fields;
pub mod fixture;
pub mod live;
mod mcp;
pub mod oci;
pub mod packs;
pub mod project;
pub mod redact;
pub mod render;
pub mod report;
pub mod sanitize;
pub mod snapshot;
pub mod watch;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use engine::{Limits, PackError};
pub use report::{Finding, Lang, Report, Severity};
pub use snapshot::{LoadError, Snapshot};

use engine::{Pack, Sandbox};
use report::{ReportError, pick, rank, render_template, render_value};

/// The built-in rules, compiled at build time.
pub const BUILTIN_PACK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin.wasm"));

/// Cases evaluated per call into a pack.
const BATCH_CASES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Rule files that do not compile; each diagnostic is rendered.
    #[error("{0}")]
    Compile(String),
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A kubeconfig that does not load, a cluster that cannot be reached or read.
    #[error(transparent)]
    Live(#[from] live::LiveError),
    /// A pack file or directory that cannot be used, or a pinned digest that does not match.
    #[error(transparent)]
    PackFile(#[from] packs::PackFileError),
    #[error(transparent)]
    Registry(#[from] oci::OciError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A rule to disable or re-rank that no loaded pack has.
    #[error("{setting} `{pattern}`: no loaded rule matches it (see `k8srule rules`)")]
    UnknownRule { setting: &'static str, pattern: String },
    /// A `redact` pattern that does not compile.
    #[error("{0}")]
    Redact(String),
}

enum Source {
    Path(PathBuf),
    Text(String, String),
    Bytes(String, Vec<u8>),
}

/// Configures a [`Diagnoser`]: limits, the built-in rules, and more packs.
pub struct DiagnoserBuilder {
    limits: Limits,
    cache: Option<PathBuf>,
    registry: oci::Options,
    builtin: bool,
    sources: Vec<Source>,
    lang: Lang,
    disable: Vec<String>,
    severities: Vec<(String, Severity)>,
    skip_namespaces: Vec<String>,
    threads: usize,
    redact: Vec<String>,
}

impl DiagnoserBuilder {
    /// Threads that evaluate the pods of one snapshot (default: one per CPU).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// A directory where compiled packs are kept between runs (default: none).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache = dir;
        self
    }

    /// How `oci://` packs are pulled (TLS, credentials, `--offline`); they
    /// are cached in the cache directory, when there is one.
    pub fn registry(mut self, options: oci::Options) -> Self {
        self.registry = options;
        self
    }

    /// Whether to load the built-in rules (default: yes).
    pub fn builtin(mut self, yes: bool) -> Self {
        self.builtin = yes;
        self
    }

    pub fn lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }

    /// Rules not to run: an id, or a prefix ending in `*` (`crashloop.*`).
    pub fn disable_rule(mut self, pattern: impl Into<String>) -> Self {
        self.disable.push(pattern.into());
        self
    }

    /// The severity findings of a rule (an id, or a prefix ending in `*`) get.
    pub fn severity(mut self, pattern: impl Into<String>, severity: Severity) -> Self {
        self.severities.push((pattern.into(), severity));
        self
    }

    /// Pods of this namespace are not diagnosed.
    pub fn skip_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.skip_namespaces.push(namespace.into());
        self
    }

    /// Container log text matching `pattern` (RE2 syntax) is redacted, beside
    /// the built-in patterns of [`redact`].
    pub fn redact(mut self, pattern: impl Into<String>) -> Self {
        self.redact.push(pattern.into());
        self
    }

    /// A `.k8srule` file, a directory of them (one pack), a pack directory
    /// (with `pack.yaml`), or a `.wasm` pack, optionally pinned by its
    /// digest (`pack.wasm@sha256:...`); see [`packs::load`].
    pub fn rules_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.push(Source::Path(path.into()));
        self
    }

    /// Rule source text, compiled as one pack named after `name`.
    pub fn rules_source(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.sources.push(Source::Text(name.into(), text.into()));
        self
    }

    /// A compiled component.
    pub fn pack_bytes(mut self, name: impl Into<String>, bytes: Vec<u8>) -> Self {
        self.sources.push(Source::Bytes(name.into(), bytes));
        self
    }

    /// Compiles and loads every pack. Rule files that do not compile are an
    /// error; a component the sandbox refuses is an error entry of each report.
    pub fn build(self) -> Result<Diagnoser, Error> {
        let redactor = redact::Redactor::new(&self.redact).map_err(Error::Redact)?;
        let sandbox = Sandbox::new(self.limits, self.cache.clone())?;
        let mut notes = Vec::new();
        let mut packs = Vec::new();
        let mut refused = Vec::new();
        let mut unavailable = Vec::new();
        let mut add = |name: String, bytes: &[u8]| match sandbox.load(&name, bytes) {
            Ok(p) => packs.push(p),
            Err(e) => refused.push(ReportError { pack: e.pack, message: e.message }),
        };
        if self.builtin {
            add("builtin".into(), BUILTIN_PACK);
        }
        for source in self.sources {
            match source {
                Source::Bytes(name, bytes) => add(name, &bytes),
                Source::Text(name, text) => {
                    let bytes = compile_sources(&[k8srule_dsl::SourceFile::new(name.clone(), text)], &name, "0.0.0")?;
                    add(name, &bytes);
                }
                // a pack that cannot be had (unreachable, corrupt, incompatible, another digest) is an
                // error entry and the others still run; rule files that do not compile stop the run
                Source::Path(path) => match packs::load(&path, &self.registry, self.cache.as_deref()) {
                    Ok(loaded) => {
                        notes.extend(loaded.note);
                        add(loaded.name, &loaded.bytes);
                    }
                    Err(e @ Error::Compile(_)) => return Err(e),
                    Err(e) => {
                        unavailable.push(ReportError { pack: path.display().to_string(), message: e.to_string() })
                    }
                },
            }
        }
        refused.extend(unavailable);
        let mut disabled = HashSet::new();
        for pattern in &self.disable {
            for (p, r) in matching_rules(&packs, "disable", pattern)? {
                disabled.insert((p, r));
            }
        }
        for (pattern, severity) in &self.severities {
            for (p, r) in matching_rules(&packs, "severity", pattern)? {
                if let Some(rule) = packs.get_mut(p).and_then(|pack| pack.info.rules.get_mut(r)) {
                    rule.severity = wit_severity(*severity);
                }
            }
        }
        Ok(Diagnoser {
            sandbox,
            packs,
            refused,
            lang: self.lang,
            disabled,
            skip_namespaces: self.skip_namespaces,
            threads: self.threads,
            redactor,
            notes,
        })
    }
}

/// Reads a `.k8srule` file, or every `.k8srule` file under a directory.
pub fn read_rule_files(path: &Path) -> Result<Vec<k8srule_dsl::SourceFile>, LoadError> {
    let io = |p: &Path, e: std::io::Error| LoadError::Io { path: p.display().to_string(), message: e.to_string() };
    let mut files = Vec::new();
    if path.is_dir() {
        let mut found = snapshot::files_under(path).map_err(|e| io(path, e))?;
        found.retain(|p| p.extension().is_some_and(|e| e == "k8srule"));
        if found.is_empty() {
            return Err(LoadError::Invalid {
                path: path.display().to_string(),
                message: "no `.k8srule` files in this directory".into(),
            });
        }
        for p in found {
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            files.push(k8srule_dsl::SourceFile::new(p.display().to_string(), text));
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        files.push(k8srule_dsl::SourceFile::new(path.display().to_string(), text));
    }
    Ok(files)
}

/// (pack, rule) indexes of the rules `pattern` (an id, a cause key, which
/// names its refinements too, or an id prefix ending in `*`) names.
fn matching_rules(packs: &[Pack], setting: &'static str, pattern: &str) -> Result<Vec<(usize, usize)>, Error> {
    let hits: Vec<(usize, usize)> = packs
        .iter()
        .enumerate()
        .flat_map(|(p, pack)| pack.info.rules.iter().enumerate().map(move |(r, rule)| (p, r, rule)))
        .filter(|(_, _, rule)| match pattern.strip_suffix('*') {
            Some(prefix) => rule.id.starts_with(prefix),
            None => rule.id == pattern || report::cause_matches(&rule.cause, pattern),
        })
        .map(|(p, r, _)| (p, r))
        .collect();
    if hits.is_empty() {
        return Err(Error::UnknownRule { setting, pattern: pattern.to_string() });
    }
    Ok(hits)
}

fn wit_severity(s: Severity) -> engine::types::Severity {
    use engine::types::Severity as Wit;
    match s {
        Severity::Info => Wit::Info,
        Severity::Warning => Wit::Warning,
        Severity::Error => Wit::Error,
        Severity::Critical => Wit::Critical,
    }
}

pub(crate) fn compile_sources(files: &[k8srule_dsl::SourceFile], name: &str, version: &str) -> Result<Vec<u8>, Error> {
    k8srule_dsl::compile(files, name, version).map_err(|e| Error::Compile(e.to_string()))
}

/// Loaded packs in a sandbox, ready to diagnose snapshots.
pub struct Diagnoser {
    sandbox: Sandbox,
    packs: Vec<Pack>,
    refused: Vec<ReportError>,
    lang: Lang,
    /// (pack, rule) indexes of the disabled rules.
    disabled: HashSet<(usize, usize)>,
    skip_namespaces: Vec<String>,
    threads: usize,
    redactor: redact::Redactor,
    /// Said about loading the packs (an `--offline` pack's digest).
    notes: Vec<String>,
}

impl Diagnoser {
    pub fn builder() -> DiagnoserBuilder {
        DiagnoserBuilder {
            limits: Limits::default(),
            cache: None,
            registry: oci::Options::default(),
            builtin: true,
            sources: Vec::new(),
            lang: Lang::En,
            disable: Vec::new(),
            severities: Vec::new(),
            skip_namespaces: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            redact: Vec::new(),
        }
    }

    /// The packs that could not be loaded, each with why: a report lists them as errors.
    pub fn refused(&self) -> &[ReportError] {
        &self.refused
    }

    /// The loaded packs' names and what they declare.
    pub fn packs(&self) -> impl Iterator<Item = (&str, &engine::types::PluginInfo)> {
        self.packs.iter().map(|p| (p.name.as_str(), &p.info))
    }

    /// What the loaded packs read besides the pods, so a live read lists only that.
    pub fn needs(&self) -> live::Needs {
        let mut needs = live::Needs::default();
        let mut root = |first: Option<&String>| match first.map(String::as_str) {
            Some("events") => needs.events = true,
            Some("node") => needs.nodes = true,
            Some("owners") => needs.owners = true,
            Some("controlPlane") => needs.control_plane = true,
            _ => {}
        };
        for pack in &self.packs {
            for c in &pack.collections {
                // `events` of each container are the pod's events too
                if c.parent.is_none() || c.segments.first().is_some_and(|s| s == "events") {
                    root(c.segments.first());
                }
                needs.logs |= c.parent.is_some() && c.segments.first().is_some_and(|s| s == "logs");
            }
            for i in pack.inputs.iter().filter(|i| i.collection.is_none()) {
                root(i.segments.first());
            }
        }
        needs
    }

    /// How to redact container logs, when a loaded pack reads them (else
    /// none): what [`Snapshot::reading_logs`] takes.
    pub fn logs(&self) -> Option<redact::Redactor> {
        self.needs().logs.then(|| self.redactor.clone())
    }

    /// The fields of objects that the host and the loaded packs read: a
    /// snapshot loaded [`Snapshot::keeping`] only them gives the same report
    /// in less time and memory.
    pub fn fields(&self) -> fields::Fields {
        let mut fields = fields::Fields::host();
        for pack in &self.packs {
            project::fields_read(&pack.collections, &pack.inputs, &mut fields);
        }
        if self.needs().logs {
            // what a live read decides whose logs to ask for by
            for list in ["initContainerStatuses", "containerStatuses"] {
                for key in ["state", "lastState", "restartCount", "ready"] {
                    fields.keep(&["status", list, key]);
                }
            }
        }
        fields
    }

    /// Runs every pack over every pod of the snapshot. A pack that fails
    /// becomes an entry of `errors`; the others' findings are kept.
    pub fn diagnose(&self, snapshot: &Snapshot) -> Report {
        let index = case::Index::new(snapshot);
        let mut pods = snapshot.pods.clone();
        let mut report = Report { errors: self.refused.clone(), notes: self.notes.clone(), ..Report::default() };
        pods.retain(|pod| !self.skip_namespaces.iter().any(|ns| ns == index.namespace(snapshot.get(*pod))));
        if pods.len() < snapshot.pods.len() {
            report.notes.push(format!(
                "skipped {} pod(s) in namespaces {}: configured not to be diagnosed",
                snapshot.pods.len() - pods.len(),
                self.skip_namespaces.join(", ")
            ));
        }
        // the pods in one part per thread; each part's findings in pod order
        let threads = self.threads.clamp(1, pods.len().div_ceil(BATCH_CASES).max(1));
        let parts: Vec<&[doc::Node]> = pods.chunks(pods.len().div_ceil(threads).max(1)).collect();
        let index = &index;
        let mut results: Vec<Vec<Result<Vec<Finding>, PackError>>> = std::thread::scope(|scope| {
            let others: Vec<_> =
                parts.iter().skip(1).map(|part| scope.spawn(move || self.evaluate_part(index, part))).collect();
            let first = parts.first().map(|part| self.evaluate_part(index, part));
            first
                .into_iter()
                .chain(others.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))))
                .collect()
        });
        for p in 0..self.packs.len() {
            let mut found = Vec::new();
            let mut taken = results.iter_mut().map(|part| std::mem::replace(&mut part[p], Ok(Vec::new())));
            // a pack that failed part-way reports nothing, so no half answer is shown
            match taken.try_for_each(|r| r.map(|f| found.extend(f))) {
                Ok(()) => report.findings.extend(found),
                Err(e) => report.errors.push(ReportError { pack: e.pack, message: e.message }),
            }
        }
        rank(&mut report.findings);
        report.summary.pods = pods.len();
        let mut unhealthy: Vec<&str> = report.findings.iter().map(|f| f.pod.as_str()).collect();
        unhealthy.dedup();
        report.summary.unhealthy = unhealthy.len();
        report.notes.extend(snapshot.notes.iter().cloned());
        for (kind, n) in &snapshot.skipped {
            report.notes.push(format!("skipped {n} object(s) of kind {kind}: no rule reads them"));
        }
        if snapshot.skipped_logs > 0 {
            report.notes.push(format!("skipped {} container log file(s): no rule reads logs", snapshot.skipped_logs));
        }
        let orphans = index.pods_of_orphan_logs();
        if !orphans.is_empty() {
            let more = if orphans.len() > 5 { format!(" and {} more", orphans.len() - 5) } else { String::new() };
            report.notes.push(format!(
                "ignored the logs of {} pod(s) not in the snapshot: {}{more}",
                orphans.len(),
                orphans[..orphans.len().min(5)].join(", ")
            ));
        }
        for (pattern, n) in &snapshot.skipped_files {
            report
                .notes
                .push(format!("skipped {n} file(s) {pattern}: not JSON, YAML or node-logs/<node>/<source>.log"));
        }
        report
    }

    /// Runs every pack over `pods`, batch after batch: per pack, its findings or its error.
    fn evaluate_part<'a>(
        &'a self,
        index: &'a case::Index<'a>,
        pods: &[doc::Node],
    ) -> Vec<Result<Vec<Finding>, PackError>> {
        let store = &index.snapshot().store;
        let mut projectors: Vec<_> = self
            .packs
            .iter()
            .map(|pack| project::Projector::new(store, &pack.collections, &pack.inputs, &pack.info.literals))
            .collect();
        let mut out: Vec<Result<Vec<Finding>, PackError>> = self.packs.iter().map(|_| Ok(Vec::new())).collect();
        for chunk in pods.chunks(BATCH_CASES) {
            let cases = index.cases(chunk);
            for ((p, pack), projector) in self.packs.iter().enumerate().zip(&mut projectors) {
                if let Ok(found) = &mut out[p] {
                    match self.run(p, pack, projector, index.snapshot().now, &cases) {
                        Ok(f) => found.extend(f),
                        Err(e) => out[p] = Err(e),
                    }
                }
            }
        }
        out
    }

    fn run<'a>(
        &self,
        p: usize,
        pack: &'a Pack,
        projector: &mut project::Projector<'a>,
        now: i64,
        cases: &[case::Case<'a>],
    ) -> Result<Vec<Finding>, PackError> {
        let info = &pack.info;
        let projection = projector.project(cases, now);
        let batch = projection.batch();
        let raw = self.sandbox.evaluate(pack, batch)?;
        let err = |message: String| PackError { pack: pack.name.clone(), message };
        let limits = self.sandbox.limits();
        let mut out = Vec::with_capacity(raw.len());
        let mut per_case = vec![0usize; cases.len()];
        let mut distinct = HashSet::with_capacity(raw.len());
        // the texts of a call's findings, as rendered, within the pack's memory
        let mut rendered = 0;
        for f in raw {
            let case = cases
                .get(f.case as usize)
                .ok_or_else(|| err(format!("returned a finding for case {} of a batch of {}", f.case, cases.len())))?;
            let rule = info.rules.get(f.rule as usize).ok_or_else(|| {
                err(format!("returned a finding for rule {}; it declares {}", f.rule, info.rules.len()))
            })?;
            let container = match f.container {
                Some(c) => {
                    let named = case
                        .container(c as usize)
                        .map_err(|n| err(format!("rule `{}` named container {c} of a pod with {n}", rule.id)))?;
                    Some(named.name.to_string())
                }
                None => None,
            };
            if !distinct.insert((f.case, f.rule, f.container)) {
                let of = container.as_ref().map(|c| format!(" container {c}")).unwrap_or_default();
                return Err(err(format!(
                    "returned rule `{}` twice for pod {}{of}; a finding is one per pod, rule and container",
                    rule.id,
                    case.pod_name()
                )));
            }
            per_case[f.case as usize] += 1;
            if per_case[f.case as usize] > limits.max_findings_per_case {
                return Err(err(format!(
                    "returned more than {max} findings for pod {}; the limit is {max} per pod",
                    case.pod_name(),
                    max = limits.max_findings_per_case
                )));
            }
            if !self.disabled.is_empty() && self.disabled.contains(&(p, f.rule as usize)) {
                continue;
            }
            // the arguments as shown, the values the host reads included, within max_text_bytes
            let (mut args, mut nulls, mut bytes) = (Vec::with_capacity(f.args.len()), Vec::new(), 0);
            for v in f.args {
                let v = match v {
                    engine::types::Value::Input(at) => {
                        projection.shown(at.input, at.row).map_err(|e| err(format!("rule `{}` {e}", rule.id)))?
                    }
                    v => v,
                };
                nulls.push(matches!(v, engine::types::Value::Null));
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
            let all_null = |t: &&engine::types::Text| {
                let mut refs = report::placeholders(&t.en).peekable();
                refs.peek().is_some() && refs.all(|i| nulls.get(i).is_none_or(|null| *null))
            };
            let evidence: Vec<&engine::types::Text> = rule.evidence.iter().filter(|t| !all_null(t)).collect();
            let texts = |list: &mut dyn Iterator<Item = &engine::types::Text>| {
                list.map(|t| render_template(pick(t, self.lang), &args)).collect()
            };
            let finding = Finding {
                rule: rule.id.clone(),
                cause: render_template(&rule.cause, &args),
                severity: rule.severity.into(),
                confidence: rule.confidence,
                pod: case.pod_name(),
                container,
                title: render_template(pick(&rule.title, self.lang), &args),
                evidence: texts(&mut evidence.into_iter()),
                confirm: texts(&mut rule.confirm.iter()),
                fix: texts(&mut rule.fix.iter()),
                explained_by: None,
                pack: pack.name.clone(),
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
}
