//! The pipeline an embedder drives: a [`DiagnoserBuilder`] loads packs (the
//! built-in rules, rule files, pack files and directories, `oci://` packs)
//! into one sandbox; [`Diagnoser::diagnose`] runs them over a snapshot's pods,
//! in one share per thread, and returns the ranked [`Report`].

use std::collections::HashSet;
use std::path::PathBuf;

use crate::evaluation::case::{Case, CaseKind, Index};
use crate::evaluation::contract::{PluginInfo, Scope};
use crate::evaluation::projection::{Projector, fields_read};
use crate::evaluation::sandbox::{Limits, Pack, PackError, Sandbox};
use crate::input::Needs;
use crate::input::fields::Fields;
use crate::input::redact::Redactor;
use crate::input::snapshot::Snapshot;
use crate::input::tree::Node;
use crate::packs::config::Config;
use crate::packs::{self, RegistryOptions, compile_sources};
use crate::report::{Finding, Lang, Report, ReportError, Severity, cause_matches, findings, rank, silence};
use crate::{BUILTIN_PACK, Error};

/// Cases evaluated per call into a pack.
const BATCH_CASES: usize = 1024;

enum Source {
    Path(PathBuf),
    Text(String, String),
    Bytes(String, Vec<u8>),
}

/// Configures a [`Diagnoser`]: limits, the built-in rules, and more packs.
pub struct DiagnoserBuilder {
    limits: Limits,
    cache: Option<PathBuf>,
    registry: RegistryOptions,
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

    /// The limits every pack runs under (default: [`Limits::default`]).
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
    pub fn registry(mut self, options: RegistryOptions) -> Self {
        self.registry = options;
        self
    }

    /// Whether to load the built-in rules (default: yes).
    pub fn builtin(mut self, yes: bool) -> Self {
        self.builtin = yes;
        self
    }

    /// The language of the findings' texts (default: English).
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
    /// the built-in patterns: bearer tokens, `password=`-style values, AWS
    /// key ids, credentials in URLs, JWTs and private-key blocks.
    pub fn redact(mut self, pattern: impl Into<String>) -> Self {
        self.redact.push(pattern.into());
        self
    }

    /// A `.k8srule` file, a directory of them (one pack), a pack directory
    /// (with `pack.yaml`), or a `.wasm` pack, optionally pinned by its
    /// digest (`pack.wasm@sha256:...`); as `--rules` takes them.
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

    /// Configured by `k8srule.yaml`; `flag_rules` (`--rules`), when given, replace the
    /// file's packs, and `no_builtin` (`--no-builtin`) wins over `builtin`.
    pub(crate) fn configured(self, config: &Config, flag_rules: &[PathBuf], no_builtin: bool) -> Self {
        let mut builder = self.builtin(!no_builtin && config.builtin.unwrap_or(true));
        if flag_rules.is_empty() {
            for p in &config.packs {
                // a path relative to the file's directory, or an oci:// reference
                let path = if p.starts_with("oci://") { PathBuf::from(p) } else { config.dir.join(p) };
                builder = builder.rules_path(path);
            }
        } else {
            for p in flag_rules {
                builder = builder.rules_path(p);
            }
        }
        for pattern in &config.disable {
            builder = builder.disable_rule(pattern);
        }
        for (pattern, severity) in &config.severity {
            builder = builder.severity(pattern, severity.0);
        }
        for ns in &config.skip_namespaces {
            builder = builder.skip_namespace(ns);
        }
        for pattern in &config.redact {
            builder = builder.redact(pattern);
        }
        builder
    }

    /// Compiles and loads every pack. Rule files that do not compile are an
    /// error; a component the sandbox refuses is an error entry of each report.
    pub fn build(self) -> Result<Diagnoser, Error> {
        let redactor = Redactor::new(&self.redact).map_err(Error::Redact)?;
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
                    rule.severity = (*severity).into();
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

/// Whether a pack has rules with the workload scope (it gets batches of workloads too).
fn has_workload_rules(pack: &Pack) -> bool {
    pack.info.rules.iter().any(|r| r.scope == Scope::Workload)
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
            None => rule.id == pattern || cause_matches(&rule.cause, pattern),
        })
        .map(|(p, r, _)| (p, r))
        .collect();
    if hits.is_empty() {
        return Err(Error::UnknownRule { setting, pattern: pattern.to_string() });
    }
    Ok(hits)
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
    redactor: Redactor,
    /// Said about loading the packs (an `--offline` pack's digest).
    notes: Vec<String>,
}

impl Diagnoser {
    /// A builder with the defaults: the built-in rules, English, one thread per CPU.
    pub fn builder() -> DiagnoserBuilder {
        DiagnoserBuilder {
            limits: Limits::default(),
            cache: None,
            registry: RegistryOptions::default(),
            builtin: true,
            sources: Vec::new(),
            lang: Lang::EN,
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
    pub(crate) fn packs(&self) -> impl Iterator<Item = (&str, &PluginInfo)> {
        self.packs.iter().map(|p| (p.name.as_str(), &p.info))
    }

    /// What the loaded packs read besides the pods, so a live read lists only that.
    pub(crate) fn needs(&self) -> Needs {
        // the owners' `k8srule.dev/ignore` annotations silence findings
        let mut needs = Needs { owners: true, ..Needs::default() };
        let mut root = |segments: &[String]| match segments.first().map(String::as_str) {
            Some("events") => needs.events = true,
            Some("node") => needs.nodes = true,
            Some("owners") => needs.owners = true,
            Some("controlPlane") => needs.control_plane = true,
            Some("workload") => {
                needs.workloads = true;
                needs.owners = true;
                needs.events |= segments.get(1).is_some_and(|s| s == "events");
            }
            _ => {}
        };
        for pack in &self.packs {
            for c in &pack.collections {
                // `events` of each container are the pod's events too
                if c.parent.is_none() || c.segments.first().is_some_and(|s| s == "events") {
                    root(&c.segments);
                }
                needs.logs |= c.parent.is_some() && c.segments.first().is_some_and(|s| s == "logs");
            }
            for i in pack.inputs.iter().filter(|i| i.collection.is_none()) {
                root(&i.segments);
            }
        }
        needs
    }

    /// How to redact container logs, when a loaded pack reads them (else
    /// none): what [`Snapshot::reading_logs`] takes.
    pub(crate) fn logs(&self) -> Option<Redactor> {
        self.needs().logs.then(|| self.redactor.clone())
    }

    /// The fields of objects that the host and the loaded packs read: a
    /// snapshot loaded [`Snapshot::keeping`] only them gives the same report
    /// in less time and memory.
    pub(crate) fn fields(&self) -> Fields {
        let mut fields = Fields::host();
        for pack in &self.packs {
            fields_read(&pack.collections, &pack.inputs, &mut fields);
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

    /// An empty snapshot at time `now` (Unix seconds) that keeps only the
    /// fields of objects the host and the loaded packs read, and container
    /// logs (redacted) only when a pack reads them: the same report as a full
    /// snapshot, in less time and memory.
    pub fn snapshot(&self, now: i64) -> Snapshot {
        Snapshot::new(now).keeping(self.fields()).reading_logs(self.logs())
    }

    /// Runs every pack over every pod of the snapshot. A pack that fails
    /// becomes an entry of `errors`; the others' findings are kept.
    pub fn diagnose(&self, snapshot: &Snapshot) -> Report {
        let index = Index::new(snapshot);
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
        // the pods in one share per thread; each share's findings in pod order
        let threads = self.threads.clamp(1, pods.len().div_ceil(BATCH_CASES).max(1));
        let shares: Vec<&[Node]> = pods.chunks(pods.len().div_ceil(threads).max(1)).collect();
        let index = &index;
        let mut results: Vec<Vec<Result<Vec<Finding>, PackError>>> = std::thread::scope(|scope| {
            let others: Vec<_> = (shares.iter().skip(1))
                .map(|share| scope.spawn(move || self.evaluate(index, share, CaseKind::Pod)))
                .collect();
            let first = shares.first().map(|share| self.evaluate(index, share, CaseKind::Pod));
            first
                .into_iter()
                .chain(others.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))))
                .collect()
        });
        if self.packs.iter().any(has_workload_rules) {
            let mut workloads = index.workloads();
            workloads.retain(|w| !self.skip_namespaces.iter().any(|ns| ns == index.namespace(snapshot.get(*w))));
            results.push(self.evaluate(index, &workloads, CaseKind::Workload));
        }
        for p in 0..self.packs.len() {
            let mut found = Vec::new();
            let mut taken = results.iter_mut().map(|share| std::mem::replace(&mut share[p], Ok(Vec::new())));
            // a pack that failed part-way reports nothing, so no half answer is shown
            match taken.try_for_each(|r| r.map(|f| found.extend(f))) {
                Ok(()) => report.findings.extend(found),
                Err(e) => report.errors.push(ReportError { pack: e.pack, message: e.message }),
            }
        }
        rank(&mut report.findings);
        let known = |entry: &str| {
            self.packs.iter().flat_map(|p| &p.info.rules).any(|r| {
                // a cause such as `state.{0}` names the causes under its fixed part
                let fixed = r.cause.split_once('{').map_or(r.cause.as_str(), |(fixed, _)| fixed);
                r.id == entry
                    || cause_matches(&r.cause, entry)
                    || (fixed.len() < r.cause.len() && entry.starts_with(fixed))
            })
        };
        silence::apply(&mut report, snapshot, &known);
        report.summary.pods = pods.len();
        report.count();
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
        for (what, n) in &snapshot.skipped_files {
            report.notes.push(format!("skipped {n} file(s) {what}"));
        }
        report
    }

    /// Runs every pack over `objects`, pods or workloads, batch after batch
    /// (workloads only through packs with workload rules): per pack, its
    /// findings or its error.
    fn evaluate<'a>(
        &'a self,
        index: &'a Index<'a>,
        objects: &[Node],
        kind: CaseKind,
    ) -> Vec<Result<Vec<Finding>, PackError>> {
        let store = &index.snapshot().store;
        let mut projectors: Vec<_> = self
            .packs
            .iter()
            .map(|pack| Projector::new(store, &pack.collections, &pack.inputs, &pack.info.literals))
            .collect();
        let mut out: Vec<Result<Vec<Finding>, PackError>> = self.packs.iter().map(|_| Ok(Vec::new())).collect();
        for chunk in objects.chunks(BATCH_CASES) {
            let cases = index.cases(chunk, kind);
            for ((p, pack), projector) in self.packs.iter().enumerate().zip(&mut projectors) {
                if kind == CaseKind::Workload && !has_workload_rules(pack) {
                    continue;
                }
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
        projector: &mut Projector<'a>,
        now: i64,
        cases: &[Case<'a>],
    ) -> Result<Vec<Finding>, PackError> {
        let projection = projector.project(cases, now);
        let raw = self.sandbox.evaluate(pack, projection.batch())?;
        let disabled = |rule: usize| !self.disabled.is_empty() && self.disabled.contains(&(p, rule));
        findings::build(pack, raw, cases, &projection, self.sandbox.limits(), &self.lang, disabled)
    }
}
