//! Report formats: the terminal table (plain or in ANSI colors, wrapped at
//! a width) and its wide variant, YAML, Markdown for tickets, JUnit XML for
//! CI gates and a self-contained HTML page. All are pure functions of the
//! report and a [`Layout`]. Table, Markdown and HTML show
//! [`group::entries`]: worst first, pods of one workload or node failing for
//! one cause as one entry. Every format for people (all but YAML) renders the
//! report's texts through [`sanitize::report`], so no control character from
//! a cluster or a pack reaches a terminal or a viewer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::input::fields::IGNORE;
use crate::report::group::{self, Entry, Sort, Unit, in_cluster};
use crate::report::sanitize;
use crate::report::{Finding, Report, Severity};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Worst first, a pod or a group of pods per entry, root causes with their symptoms under them.
    Table,
    /// The table with packs, every confirm command and evidence whole.
    Wide,
    /// The stable schema of docs/report.schema.json.
    Json,
    /// The JSON's structure in YAML.
    Yaml,
    /// To paste into tickets and pull requests.
    Markdown,
    /// JUnit XML for CI gates.
    Junit,
    /// A self-contained HTML page with filters and a search.
    Html,
}

/// How the formats for people lay a report out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Severities and headings in ANSI colors (table and wide).
    pub color: bool,
    /// The width the table and wide formats wrap at, at word boundaries;
    /// `None`: each line as long as its text.
    pub width: Option<usize>,
    /// Worst first (the default) or by name.
    pub sort: Sort,
    /// Every pod of a group listed, not one example and a count.
    pub expand: bool,
    /// When the snapshot was taken (RFC 3339), shown at the top of the HTML page.
    pub taken: Option<String>,
    /// What was diagnosed (files, a cluster context), shown at the top of the HTML page.
    pub source: Option<String>,
}

impl Report {
    /// The report in `format`; severities in ANSI colors when `color` (table
    /// and wide only); the default [`Layout`] otherwise.
    pub fn render(&self, format: Format, color: bool) -> String {
        self.render_with(format, &Layout { color, ..Layout::default() })
    }

    /// The report in `format`, laid out as `layout` says.
    pub fn render_with(&self, format: Format, layout: &Layout) -> String {
        match format {
            Format::Table => text(self, layout, false),
            Format::Wide => text(self, layout, true),
            Format::Json => self.to_json(),
            Format::Yaml => yaml(self),
            Format::Markdown => markdown(self, layout),
            Format::Junit => junit(self),
            Format::Html => html(self, layout),
        }
    }
}

/// The report as YAML, the same structure as the JSON.
fn yaml(report: &Report) -> String {
    serde_norway::to_string(report).unwrap_or_default()
}

/// What a group entry says about its pods: the example and a count, or every pod.
fn group_pods(group: &group::Group, expand: bool) -> String {
    let (first, n) = (group.pods.first().map_or("", String::as_str), group.pods.len());
    if expand {
        format!("example pod {first}; all {n}: {}", group.pods.join(", "))
    } else {
        format!("example pod {first}; {} more (--expand lists them)", n - 1)
    }
}

/// Evidence longer than this many characters is cut in the table (`-o wide` shows it whole).
const EVIDENCE_CHARS: usize = 240;

/// Lines laid out at a width: each wrapped at word boundaries, its
/// continuation lines indented by a hang.
struct Lines {
    out: String,
    width: Option<usize>,
}

impl Lines {
    /// `text` after `prefix`; its own lines and wrapped continuations start `hang` columns in.
    fn push(&mut self, prefix: &str, hang: usize, text: &str) {
        let hang = " ".repeat(hang);
        match self.width {
            Some(width) => {
                // at spaces only: a pod name or a time stays whole unless it is wider than the line
                let options = textwrap::Options::new(width)
                    .initial_indent(prefix)
                    .subsequent_indent(&hang)
                    .word_splitter(textwrap::WordSplitter::NoHyphenation);
                for line in textwrap::wrap(text.trim_end(), options) {
                    self.out.push_str(&line);
                    self.out.push('\n');
                }
            }
            None => {
                let _ = writeln!(self.out, "{prefix}{}", text.trim_end().replace('\n', &format!("\n{hang}")));
            }
        }
    }
}

/// The table: an entry per pod or group, worst first, each root cause with
/// its evidence, confirm commands and fixes, its symptoms under it. `wide`
/// adds packs and the confirm commands of symptoms, and shows evidence whole.
fn text(report: &Report, layout: &Layout, wide: bool) -> String {
    let report = &sanitize::report(report);
    let color = layout.color;
    let mut lines = Lines { out: String::new(), width: layout.width };
    let mut cut = false;
    for (i, entry) in group::entries(report, layout.sort).iter().enumerate() {
        if i > 0 {
            lines.out.push('\n');
        }
        match entry {
            Entry::Pod { name, .. } => {
                let heading = format!("{} {name}{}", subject_kind(name), in_cluster(entry.cluster()));
                lines.push("", 4, &paint(&heading, BOLD, color))
            }
            Entry::Group { group, .. } => {
                lines.push("", 4, &paint(&group.headline(), BOLD, color));
                lines.push("  ", 4, &group_pods(group, layout.expand));
            }
        }
        for unit in entry.units() {
            for f in std::iter::once(unit.root).chain(unit.symptoms.iter().copied()) {
                let symptom = f.explained_by.is_some();
                let indent = if symptom { "    " } else { "  " };
                let marker = if symptom { paint("symptom", DIM, color) + " " } else { String::new() };
                let label = f.severity.as_str().to_uppercase();
                let pad = " ".repeat(8usize.saturating_sub(label.len()));
                let container = f.container.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
                let pack = if wide { format!(", pack {}", f.pack) } else { String::new() };
                let headline = format!(
                    "{marker}{}{pad} {}{container}: {} ({}{pack}, confidence {:.0}%)",
                    paint(&label, severity_color(f.severity), color),
                    f.cause,
                    f.title.trim_end().replace('\n', " "),
                    f.rule,
                    f.confidence * 100.0
                );
                lines.push(indent, indent.len() + 4, &headline);
                let mut list = |label: &str, items: &[String], whole: bool| {
                    for item in items {
                        let item = if whole { item.into() } else { shorten(item, &mut cut) };
                        lines.push(&format!("{indent}    {label}"), indent.len() + 4 + label.len(), &item);
                    }
                };
                if !symptom {
                    list("evidence: ", &f.evidence, wide);
                }
                if !symptom || wide {
                    list("confirm:  ", &f.confirm, true);
                }
                if !symptom {
                    list("fix:      ", &f.fix, true);
                }
            }
        }
    }
    for e in &report.errors {
        lines.push(&format!("{} ", paint("error:", RED, color)), 4, &format!("pack `{}`: {}", e.pack, e.message));
    }
    for n in &report.notes {
        lines.push("note: ", 4, n);
    }
    if wide && !report.silenced.is_empty() {
        lines.push("", 4, &format!("silenced by {IGNORE}:"));
        for f in &report.silenced {
            let container = f.container.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
            let line = format!(
                "{} {}{}{container}: {} ({})",
                f.severity.as_str().to_uppercase(),
                f.subject(),
                in_cluster(f.cluster.as_deref()),
                f.cause,
                f.rule
            );
            let by = f.silenced.as_ref().map(|s| {
                let reason = s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                format!(", by {} `{}`{reason}", s.object, s.entry)
            });
            lines.push("  ", 4, &(line + &by.unwrap_or_default()));
        }
    } else if let Some(line) = silenced_line(report) {
        lines.push("note: ", 4, &format!("{line} (-o wide lists them)"));
    }
    if cut {
        lines.push("", 4, "… marks evidence cut short: -o wide shows it whole");
    }
    lines.push("", 4, &report.summary_line());
    lines.out
}

/// How many findings of how many pods (or workloads) annotations silenced, if any.
fn silenced_line(report: &Report) -> Option<String> {
    let mut subjects: Vec<(Option<&str>, &str)> =
        report.silenced.iter().map(|f| (f.cluster.as_deref(), f.subject())).collect();
    subjects.dedup();
    (!subjects.is_empty()).then(|| {
        let (n, of) = (report.silenced.len(), subjects.len());
        format!("{n} finding(s) of {of} pod(s) or workload(s) silenced by {IGNORE} annotations")
    })
}

/// `item` cut after [`EVIDENCE_CHARS`] characters, at a word boundary when
/// there is one near, with `…`; `cut` is set when it is.
fn shorten<'a>(item: &'a str, cut: &mut bool) -> std::borrow::Cow<'a, str> {
    let item = item.trim_end();
    let Some((end, _)) = item.char_indices().nth(EVIDENCE_CHARS) else {
        return item.into();
    };
    *cut = true;
    let head = &item[..end];
    let at_word = head.rfind(char::is_whitespace).filter(|&w| w + 40 >= end).unwrap_or(end);
    format!("{} …", head[..at_word].trim_end()).into()
}

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "31";

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::Error => RED,
        Severity::Warning => "33",
        Severity::Info => "36",
    }
}

fn paint(text: &str, sgr: &str, color: bool) -> String {
    if color { format!("\x1b[{sgr}m{text}\x1b[0m") } else { text.to_string() }
}

/// Markdown to paste into tickets and pull requests: an entry per pod or
/// group, worst first.
fn markdown(report: &Report, layout: &Layout) -> String {
    let report = &sanitize::report(report);
    let mut out = format!("**{}**\n", md(&report.summary_line()));
    for entry in group::entries(report, layout.sort) {
        match &entry {
            Entry::Pod { name, .. } => {
                let kind = capitalized(subject_kind(name));
                let _ = writeln!(out, "\n### {kind} {}{}\n", code(name), md_cluster(entry.cluster()));
            }
            Entry::Group { group, .. } => {
                let what = group.by.preposition();
                let _ = writeln!(
                    out,
                    "\n### {} pods {what} {}{}: {}\n",
                    group.pods.len(),
                    code(&group.name),
                    md_cluster(entry.cluster()),
                    code(&group.cause)
                );
                let first = group.pods.first().map_or("", String::as_str);
                if layout.expand {
                    let all: Vec<String> = group.pods.iter().map(|p| code(p)).collect();
                    let _ =
                        writeln!(out, "Example pod {}; all {}: {}.\n", code(first), group.pods.len(), all.join(", "));
                } else {
                    let more = group.pods.len() - 1;
                    let _ = writeln!(out, "Example pod {}; {more} more (`--expand` lists them).\n", code(first));
                }
            }
        }
        for Unit { root, symptoms } in entry.units() {
            let _ = writeln!(out, "- {}", md_finding(root));
            md_list(&mut out, "Evidence", &root.evidence, md_lines);
            md_list(&mut out, "Confirm", &root.confirm, code);
            md_list(&mut out, "Fix", &root.fix, md_lines);
            if !symptoms.is_empty() {
                out.push_str("  - Symptoms:\n");
                for s in symptoms {
                    let _ = writeln!(out, "    - {}", md_finding(s));
                }
            }
        }
    }
    if !report.errors.is_empty() {
        out.push_str("\n### Errors\n\n");
        for e in &report.errors {
            let _ = writeln!(out, "- pack {}: {}", code(&e.pack), md_lines(&e.message));
        }
    }
    let silenced = silenced_line(report);
    if !report.notes.is_empty() || silenced.is_some() {
        out.push_str("\n### Notes\n\n");
        for n in report.notes.iter().chain(&silenced) {
            let _ = writeln!(out, "- {}", md(n));
        }
    }
    out
}

/// JUnit XML: one failing test case per root cause, its symptoms folded into
/// the failure text, and one erroring test case per pack that failed; every
/// root cause of every pod, in report order.
fn junit(report: &Report) -> String {
    let report = &sanitize::report(report);
    let pods = group::units_by_pod(report);
    let failures = pods.iter().map(|(_, units)| units.len()).sum::<usize>();
    let errors = report.errors.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"k8srule\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\">",
        failures + errors
    );
    let _ = writeln!(
        out,
        "  <properties>\n    <property name=\"pods\" value=\"{}\"/>\n    <property name=\"unhealthy\" value=\"{}\"/>\n  </properties>",
        report.summary.pods, report.summary.unhealthy
    );
    for Unit { root, symptoms } in pods.iter().flat_map(|(_, units)| units) {
        let name = match &root.container {
            Some(c) => format!("{} [{c}]", root.rule),
            None => root.rule.clone(),
        };
        let mut body = format!(
            "cause: {}\nrule: {} (pack {}, confidence {:.0}%)\n",
            root.cause,
            root.rule,
            root.pack,
            root.confidence * 100.0
        );
        for (label, lines) in [("evidence", &root.evidence), ("confirm", &root.confirm), ("fix", &root.fix)] {
            for l in lines {
                let _ = writeln!(body, "{label}: {l}");
            }
        }
        for s in symptoms {
            let container = s.container.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
            let severity = s.severity.as_str().to_uppercase();
            let _ = writeln!(body, "symptom: {severity} {}{container}: {} ({})", s.cause, s.title, s.rule);
        }
        let _ = writeln!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\">\n    <failure type=\"{}\" message=\"{}\">{}</failure>\n  </testcase>",
            esc(&root
                .cluster
                .as_ref()
                .map_or_else(|| root.subject().to_string(), |c| format!("{c}/{}", root.subject()))),
            esc(&name),
            root.severity.as_str(),
            esc(&root.title),
            esc(&body)
        );
    }
    for e in &report.errors {
        let _ = writeln!(
            out,
            "  <testcase classname=\"k8srule.pack\" name=\"{}\">\n    <error type=\"pack\" message=\"{}\"/>\n  </testcase>",
            esc(&e.pack),
            esc(&e.message)
        );
    }
    let mut system_out = report.summary_line() + "\n";
    for n in report.notes.iter().chain(&silenced_line(report)) {
        let _ = writeln!(system_out, "note: {n}");
    }
    let _ = writeln!(out, "  <system-out>{}</system-out>\n</testsuite>", esc(&system_out));
    out
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;max-width:72rem;margin:1rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 2rem 1rem 0;display:inline-table;vertical-align:top}
th,td{border:1px solid #d0d7de;padding:.2rem .6rem;text-align:left;vertical-align:top}
td.n{text-align:right}
code{background:#f6f8fa;border-radius:3px;padding:0 .2rem;overflow-wrap:anywhere}
.entry{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:0 1rem}
.finding{border-left:4px solid #8c959f;margin:.5rem 0;padding:.1rem .8rem}
.finding li{white-space:pre-wrap;overflow-wrap:anywhere}
.sev-critical{border-color:#82071e}.sev-error{border-color:#cf222e}.sev-warning{border-color:#bf8700}.sev-info{border-color:#0969da}
.sev{font-weight:bold;text-transform:uppercase}
.meta,.snapshot{color:#59636e}
h2{font-size:1.2rem;overflow-wrap:anywhere}
h3,h4{margin:.5rem 0}
#filters{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #d0d7de;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
#filters input{min-width:12rem}
@media (max-width:40rem){table{display:block;overflow-x:auto;margin-right:0}td code{white-space:nowrap;overflow-wrap:normal}td:last-child{min-width:16rem}.finding{padding:.1rem .4rem}.entry{padding:0 .5rem}}
";

/// The filters and search: they start from the page's query
/// (`?severity=error&namespace=shop&q=oom`), so a filtered view can be shared.
const SCRIPT: &str = "(function(){
var form=document.getElementById('filters');form.hidden=false;
var order={info:0,warning:1,error:2,critical:3};
var entries=[].slice.call(document.querySelectorAll('article.entry'));
var params=new URLSearchParams(location.search);
['severity','namespace','q'].forEach(function(k){var v=params.get(k);if(v!==null)form.elements[k].value=v;});
function apply(){
var min=order[form.elements.severity.value]||0,ns=form.elements.namespace.value,q=form.elements.q.value.trim().toLowerCase(),n=0;
entries.forEach(function(e){
var show=order[e.dataset.severity]>=min&&(!ns||e.dataset.namespaces.split(' ').indexOf(ns)>=0)&&(!q||e.textContent.toLowerCase().indexOf(q)>=0);
e.hidden=!show;if(show)n++;});
document.getElementById('shown').textContent='showing '+n+' of '+entries.length;
}
form.addEventListener('input',apply);form.addEventListener('submit',function(ev){ev.preventDefault();});apply();
})();
";

/// The `id` of an entry of the page.
fn entry_id(entry: &Entry) -> String {
    let cluster = entry.cluster().map(|c| format!("{c}:")).unwrap_or_default();
    match entry {
        Entry::Pod { name, .. } => format!("{cluster}pod:{name}"),
        Entry::Group { group, .. } => format!("{cluster}{}:{}:{}", group.by.as_str(), group.name, group.cause),
    }
}

/// `pod` for a `namespace/name`, `workload` for a `namespace/Kind/name`.
fn subject_kind(subject: &str) -> &'static str {
    if subject.matches('/').count() > 1 { "workload" } else { "pod" }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The namespace of a `namespace/name` (or `namespace/Kind/name`).
fn namespace(pod: &str) -> &str {
    pod.split_once('/').map_or("", |(ns, _)| ns)
}

/// A self-contained HTML page (inline CSS and script, no other asset): the
/// snapshot's time and source, filters by severity and namespace and a
/// search (hidden without scripts, which leave every entry shown), counts
/// per namespace and per cause linking to the entries, then an entry per
/// pod or group, worst first.
fn html(report: &Report, layout: &Layout) -> String {
    let report = &sanitize::report(report);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>k8srule report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<header>\n<h1>k8srule report</h1>\n"
    );
    if layout.taken.is_some() || layout.source.is_some() {
        out.push_str("<p class=\"snapshot\">Snapshot");
        if let Some(source) = &layout.source {
            let _ = write!(out, " of <code>{}</code>", esc(&sanitize::text(source)));
        }
        if let Some(taken) = &layout.taken {
            let taken = esc(&sanitize::text(taken));
            let _ = write!(out, " at <time datetime=\"{taken}\">{taken}</time>");
        }
        out.push_str("</p>\n");
    }
    let _ = writeln!(out, "<p class=\"summary\">{}</p>\n</header>", esc(&report.summary_line()));
    let entries = group::entries(report, layout.sort);
    // namespace -> (unhealthy pods, root causes, symptoms, entries); cause -> (root causes, symptoms, entries)
    let mut namespaces: BTreeMap<&str, ([usize; 3], BTreeSet<usize>)> = BTreeMap::new();
    let mut causes: BTreeMap<&str, ([usize; 2], BTreeSet<usize>)> = BTreeMap::new();
    let mut pods = BTreeSet::new();
    let mut entry_of: BTreeMap<(Option<&str>, &str), usize> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let shown: Vec<&str> = match entry {
            Entry::Pod { name, .. } => vec![name],
            Entry::Group { group, .. } => group.pods.iter().map(String::as_str).collect(),
        };
        for pod in shown {
            namespaces.entry(namespace(pod)).or_default().1.insert(i);
            entry_of.entry((entry.cluster(), pod)).or_insert(i);
        }
        if let Entry::Group { group, .. } = entry {
            causes.entry(&group.cause).or_default().1.insert(i);
        }
        for u in entry.units() {
            for f in std::iter::once(u.root).chain(u.symptoms.iter().copied()) {
                causes.entry(&f.cause).or_default().1.insert(i);
            }
        }
    }
    for f in &report.findings {
        let ns = &mut namespaces.entry(namespace(f.subject())).or_default().0;
        let pod = (f.cluster.as_deref(), f.subject());
        if pods.insert(pod) {
            ns[0] += 1;
        }
        let symptom = f.explained_by.is_some();
        ns[1 + usize::from(symptom)] += 1;
        let cause = causes.entry(&f.cause).or_default();
        cause.0[usize::from(symptom)] += 1;
        if let Some(&i) = entry_of.get(&pod) {
            cause.1.insert(i);
        }
    }
    let links = |at: &BTreeSet<usize>| -> String {
        let list: Vec<String> = at
            .iter()
            .filter_map(|&i| entries.get(i))
            .map(|e| {
                let label = match e {
                    Entry::Pod { name, .. } => format!("{name}{}", in_cluster(e.cluster())),
                    Entry::Group { group, .. } => group.headline(),
                };
                format!("<a href=\"#{}\">{}</a>", esc(&entry_id(e)), esc(&label))
            })
            .collect();
        list.join(", ")
    };
    if !entries.is_empty() {
        out.push_str("<form id=\"filters\" hidden>\n<label>Severity <select name=\"severity\"><option value=\"info\">all</option><option value=\"warning\">warning and worse</option><option value=\"error\">error and worse</option><option value=\"critical\">critical</option></select></label>\n<label>Namespace <select name=\"namespace\"><option value=\"\">all</option>");
        for ns in namespaces.keys() {
            let _ = write!(out, "<option>{}</option>", esc(ns));
        }
        out.push_str("</select></label>\n<label>Search <input type=\"search\" name=\"q\" placeholder=\"pod, cause or any text\"></label>\n<output id=\"shown\"></output>\n</form>\n");
        out.push_str("<section class=\"overview\">\n<table class=\"namespaces\">\n<tr><th>Namespace</th><th>Unhealthy pods</th><th>Root causes</th><th>Symptoms</th><th>Entries</th></tr>\n");
        for (ns, ([pods, roots, symptoms], at)) in &namespaces {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{pods}</td><td class=\"n\">{roots}</td><td class=\"n\">{symptoms}</td><td>{}</td></tr>",
                esc(ns),
                links(at)
            );
        }
        out.push_str("</table>\n<table class=\"causes\">\n<tr><th>Cause</th><th>Root causes</th><th>Symptoms</th><th>Entries</th></tr>\n");
        for (cause, ([roots, symptoms], at)) in &causes {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"n\">{roots}</td><td class=\"n\">{symptoms}</td><td>{}</td></tr>",
                esc(cause),
                links(at)
            );
        }
        out.push_str("</table>\n</section>\n<main>\n");
    }
    for entry in &entries {
        let mut spaces: Vec<&str> = match entry {
            Entry::Pod { name, .. } => vec![namespace(name)],
            Entry::Group { group, .. } => group.pods.iter().map(|p| namespace(p)).collect(),
        };
        spaces.sort_unstable();
        spaces.dedup();
        let _ = writeln!(
            out,
            "<article class=\"entry\" id=\"{}\" data-severity=\"{}\" data-namespaces=\"{}\">",
            esc(&entry_id(entry)),
            entry.severity().as_str(),
            esc(&spaces.join(" "))
        );
        match entry {
            Entry::Pod { name, .. } => {
                let kind = capitalized(subject_kind(name));
                let _ = writeln!(out, "<h2>{kind} <code>{}</code>{}</h2>", esc(name), html_cluster(entry.cluster()));
            }
            Entry::Group { group, .. } => {
                let what = group.by.preposition();
                let _ = writeln!(
                    out,
                    "<h2>{} pods {what} <code>{}</code>{}: <code>{}</code></h2>",
                    group.pods.len(),
                    esc(&group.name),
                    html_cluster(entry.cluster()),
                    esc(&group.cause)
                );
                let first = group.pods.first().map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    "<p>Example pod <code>{}</code>.</p>\n<details class=\"pods\"><summary>All {} pods</summary>\n<ul>",
                    esc(first),
                    group.pods.len()
                );
                for p in &group.pods {
                    let _ = writeln!(out, "<li><code>{}</code></li>", esc(p));
                }
                out.push_str("</ul>\n</details>\n");
            }
        }
        for Unit { root, symptoms } in entry.units() {
            let _ = writeln!(out, "<div {}>\n<h3>{}</h3>", html_attrs(root, "root"), html_headline(root));
            html_details(&mut out, root);
            if !symptoms.is_empty() {
                out.push_str("<h4>Symptoms</h4>\n");
            }
            for s in symptoms {
                let _ =
                    writeln!(out, "<details {}>\n<summary>{}</summary>", html_attrs(s, "symptom"), html_headline(s));
                html_details(&mut out, s);
                out.push_str("</details>\n");
            }
            out.push_str("</div>\n");
        }
        out.push_str("</article>\n");
    }
    if !entries.is_empty() {
        out.push_str("</main>\n");
    }
    if !report.errors.is_empty() {
        out.push_str("<section class=\"errors\">\n<h2>Errors</h2>\n<ul>\n");
        for e in &report.errors {
            let _ = writeln!(out, "<li>pack <code>{}</code>: {}</li>", esc(&e.pack), esc(&e.message));
        }
        out.push_str("</ul>\n</section>\n");
    }
    let silenced = silenced_line(report);
    if !report.notes.is_empty() || silenced.is_some() {
        out.push_str("<section class=\"notes\">\n<h2>Notes</h2>\n<ul>\n");
        for n in report.notes.iter().chain(&silenced) {
            let _ = writeln!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>\n</section>\n");
    }
    if !entries.is_empty() {
        let _ = writeln!(out, "<script>\n{SCRIPT}</script>");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// ` in cluster `NAME`` for an entry of a report that covers several clusters.
fn md_cluster(cluster: Option<&str>) -> String {
    cluster.map(|c| format!(" in cluster {}", code(c))).unwrap_or_default()
}

fn md_finding(f: &Finding) -> String {
    let container = f.container.as_deref().map(|c| format!(" in {}", code(c))).unwrap_or_default();
    format!(
        "**{}** {}{container}: {} ({}, confidence {:.0}%)",
        f.severity.as_str().to_uppercase(),
        code(&f.cause),
        md(&f.title),
        code(&f.rule),
        f.confidence * 100.0
    )
}

fn md_list(out: &mut String, label: &str, items: &[String], render: fn(&str) -> String) {
    if !items.is_empty() {
        let _ = writeln!(out, "  - {label}:");
        for i in items {
            let _ = writeln!(out, "    - {}", render(i));
        }
    }
}

/// Markdown text that renders as `s` on one line: inline syntax, and what
/// would start a block at the beginning of a list item, backslash-escaped.
fn md(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if "\\`*_[]<>&|~$".contains(c) || (i == 0 && "#+-".contains(c)) || (i == digits && ".)".contains(c)) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Markdown text of an item of a nested list that keeps the lines of `s`:
/// each line escaped as [`md`] does, joined by hard line breaks and indented
/// under the item.
fn md_lines(s: &str) -> String {
    let lines: Vec<String> = s.lines().map(str::trim_end).filter(|l| !l.is_empty()).map(md).collect();
    lines.join("\\\n      ")
}

/// A Markdown code span of `s` on one line, fenced by more backticks than
/// it contains in a row.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with(['`', ' ']) || s.ends_with(['`', ' ']) { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn html_attrs(f: &Finding, kind: &str) -> String {
    let mut attrs = format!(
        "class=\"finding {kind} sev-{}\" data-rule=\"{}\" data-pod=\"{}\" data-cause=\"{}\" data-severity=\"{}\"",
        f.severity.as_str(),
        esc(&f.rule),
        esc(f.subject()),
        esc(&f.cause),
        f.severity.as_str()
    );
    if let Some(c) = &f.container {
        let _ = write!(attrs, " data-container=\"{}\"", esc(c));
    }
    if let Some(c) = &f.cluster {
        let _ = write!(attrs, " data-cluster=\"{}\"", esc(c));
    }
    if let Some(r) = &f.explained_by {
        let _ = write!(attrs, " data-explained-by=\"{}\"", esc(r));
    }
    attrs
}

/// ` in cluster <code>NAME</code>` for an entry of a report that covers several clusters.
fn html_cluster(cluster: Option<&str>) -> String {
    cluster.map(|c| format!(" in cluster <code>{}</code>", esc(c))).unwrap_or_default()
}

fn html_headline(f: &Finding) -> String {
    let container = f.container.as_deref().map(|c| format!(" in <code>{}</code>", esc(c))).unwrap_or_default();
    format!(
        "<span class=\"sev\">{}</span> <code>{}</code>{container}: {}",
        f.severity.as_str(),
        esc(&f.cause),
        esc(&f.title)
    )
}

fn html_details(out: &mut String, f: &Finding) {
    let _ = writeln!(
        out,
        "<p class=\"meta\">rule <code>{}</code>, pack <code>{}</code>, confidence {:.0}%</p>",
        esc(&f.rule),
        esc(&f.pack),
        f.confidence * 100.0
    );
    for (label, items, as_code) in
        [("Evidence", &f.evidence, false), ("Confirm", &f.confirm, true), ("Fix", &f.fix, false)]
    {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<h4>{label}</h4>\n<ul>");
        for i in items {
            let item = if as_code { format!("<code>{}</code>", esc(i)) } else { esc(i.trim_end()) };
            let _ = writeln!(out, "<li>{item}</li>");
        }
        out.push_str("</ul>\n");
    }
}

/// Escapes text for HTML and XML, text or attribute value; characters XML
/// cannot carry become U+FFFD.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportError;

    fn table(report: &Report, color: bool) -> String {
        text(report, &Layout { color, ..Layout::default() }, false)
    }

    fn wide(report: &Report, color: bool) -> String {
        text(report, &Layout { color, ..Layout::default() }, true)
    }

    fn markdown(report: &Report) -> String {
        super::markdown(report, &Layout::default())
    }

    fn html(report: &Report) -> String {
        super::html(report, &Layout::default())
    }

    fn finding(pod: &str, rule: &str, cause: &str, severity: Severity, container: Option<&str>) -> Finding {
        Finding {
            rule: rule.into(),
            cause: cause.into(),
            severity,
            confidence: 0.9,
            pod: Some(pod.into()),
            workload: None,
            node: None,
            container: container.map(Into::into),
            title: format!("{cause} title"),
            evidence: vec![format!("{cause} evidence")],
            confirm: vec![format!("kubectl describe pod {pod}")],
            fix: vec![format!("{cause} fix")],
            explained_by: None,
            pack: "builtin".into(),
            cluster: None,
            silenced: None,
            explains: Vec::new(),
        }
    }

    /// A root cause with two symptoms on one pod, a second pod with one
    /// finding, one error and one note; texts carry `<&|`"` characters.
    fn sample() -> Report {
        let mut oom = finding("shop/web", "crashloop.cgroup-oom", "cgroup-oom", Severity::Error, Some("app"));
        oom.confidence = 0.95;
        oom.title = "container app exceeded its limit <256Mi> & was \"OOMKilled\"".into();
        oom.evidence = vec!["lastState.terminated: reason=OOMKilled exitCode=137".into(), "1. `limits` | 256Mi".into()];
        oom.confirm = vec![
            "dmesg -T | grep -i 'memory cgroup out of memory'".into(),
            "kubectl get pod web -o jsonpath='{.status}' | grep `x`".into(),
        ];
        let mut back_off =
            finding("shop/web", "states.crashloopbackoff", "state.CrashLoopBackOff", Severity::Error, Some("app"));
        back_off.confidence = 1.0;
        back_off.explained_by = Some(oom.rule.clone());
        let mut restarts = finding("shop/web", "restarts.many", "restarts", Severity::Warning, None);
        restarts.explained_by = Some(oom.rule.clone());
        let mut dns = finding("kube-system/dns", "node.not-ready", "node-not-ready", Severity::Critical, None);
        dns.fix = vec!["Check the kubelet: `systemctl status kubelet` <node-1>".into()];
        Report {
            summary: crate::report::Summary { pods: 3, unhealthy: 2, failing_workloads: 0 },
            findings: vec![oom, back_off, restarts, dns],
            errors: vec![ReportError {
                pack: "extra<1>.wasm".into(),
                message: "evaluate ran out of time & was \"stopped\"".into(),
            }],
            notes: vec!["skipped 2 object(s) of kind ConfigMap: no rule reads them".into()],
            silenced: Vec::new(),
        }
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('\x1b') {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            rest = &rest[rest.find('m').map_or(rest.len(), |m| m + 1)..];
        }
        out + rest
    }

    #[test]
    fn table_is_plain_without_color_and_the_same_text_in_color() {
        let report = sample();
        let plain = table(&report, false);
        assert!(!plain.contains('\x1b'));
        insta::assert_snapshot!(plain);
        let colored = table(&report, true);
        assert_ne!(colored, plain);
        assert!(colored.contains("\x1b[31mERROR\x1b[0m    state.CrashLoopBackOff"));
        assert!(colored.contains("\x1b[1;31mCRITICAL\x1b[0m node-not-ready"));
        assert!(colored.contains("\x1b[1mpod shop/web\x1b[0m"));
        assert_eq!(strip_ansi(&colored), plain);
    }

    #[test]
    fn wide_adds_packs_and_the_confirm_commands_of_symptoms() {
        let report = sample();
        let plain = wide(&report, false);
        insta::assert_snapshot!(plain);
        assert_eq!(strip_ansi(&wide(&report, true)), plain);
    }

    #[test]
    fn yaml_has_the_structure_of_the_json() {
        let report = sample();
        let yaml = yaml(&report);
        insta::assert_snapshot!(yaml);
        let from_yaml: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        let from_json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(from_yaml, from_json);
    }

    #[test]
    fn markdown_nests_symptoms_and_escapes() {
        insta::assert_snapshot!(markdown(&sample()));
    }

    #[test]
    fn markdown_escaping() {
        assert_eq!(md("a|b`c<d>&e_f*g"), r"a\|b\`c\<d\>\&e\_f\*g");
        assert_eq!(md("# x"), r"\# x");
        assert_eq!(md("12. x\ny"), r"12\. x y");
        assert_eq!(code("a | b"), "`a | b`");
        assert_eq!(code("a`b``c"), "```a`b``c```");
        assert_eq!(code("`x"), "`` `x ``");
    }

    #[test]
    fn junit_has_a_failure_per_root_cause_and_an_error_per_pack() {
        let xml = junit(&sample());
        insta::assert_snapshot!(xml);
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(xml.matches("<failure ").count(), 2);
        assert_eq!(xml.matches("<error ").count(), 1);
    }

    #[test]
    fn html_is_self_contained_and_tags_every_finding() {
        let report = sample();
        let page = html(&report);
        insta::assert_snapshot!(page);
        // the one script is inline, and nothing is loaded from elsewhere
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(!page.contains(" src=") && !page.contains(" href=\"http") && !page.contains("url("));
        for f in &report.findings {
            let attrs = format!("data-rule=\"{}\" data-pod=\"{}\" data-cause=\"{}\"", f.rule, f.subject(), f.cause);
            assert_eq!(page.matches(&attrs).count(), 1, "{attrs}");
        }
    }

    #[test]
    fn markup_escaping() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>|`\u{7}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;|`\u{FFFD}"
        );
        let xml = junit(&sample());
        assert!(
            xml.contains("message=\"container app exceeded its limit &lt;256Mi&gt; &amp; was &quot;OOMKilled&quot;\"")
        );
        assert!(html(&sample()).contains(
            "<li>pack <code>extra&lt;1&gt;.wasm</code>: evaluate ran out of time &amp; was &quot;stopped&quot;</li>"
        ));
    }

    #[test]
    fn schema_names_every_field_the_json_has() {
        let schema: serde_json::Value = serde_json::from_str(include_str!("../../../docs/report.schema.json")).unwrap();
        // two pods of one workload failing for one cause: a group
        let mut report = sample();
        let mut twin = report.findings[0].clone();
        twin.pod = Some("shop/web-2".into());
        report.findings.insert(3, twin);
        for f in report.findings.iter_mut().filter(|f| f.subject().starts_with("shop/")) {
            f.workload = Some("shop/Deployment/web".into());
        }
        assert_eq!(report.groups().len(), 1);
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        let required = |v: &serde_json::Value| {
            let mut r: Vec<String> =
                v["required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
            r.sort();
            r
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        // what only some reports have: silenced findings, clusters
        let optional = |v: &serde_json::Value, names: &[&str]| {
            sorted([required(v), names.iter().map(|n| n.to_string()).collect()].concat())
        };
        report.silenced.push(report.findings[1].clone());
        report.silenced[0].silenced = Some(crate::report::silence::Silence {
            object: "shop/Deployment/web".into(),
            entry: "state".into(),
            reason: None,
        });
        report.silenced[0].cluster = Some("east".into());
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(sorted(keys(&json)), optional(&schema, &["silenced"]));
        assert_eq!(sorted(keys(&schema["properties"])), optional(&schema, &["silenced"]));
        let finding = &schema["$defs"]["finding"];
        assert_eq!(sorted(keys(&json["silenced"][0])), optional(finding, &["cluster", "silenced"]));
        assert_eq!(sorted(keys(&finding["properties"])), optional(finding, &["cluster", "silenced"]));
        let silence = &finding["properties"]["silenced"];
        assert_eq!(sorted(keys(&json["silenced"][0]["silenced"])), required(silence));
        assert_eq!(sorted(keys(&silence["properties"])), required(silence));
        assert_eq!(sorted(keys(&json["summary"])), required(&schema["properties"]["summary"]));
        for (name, def) in [("findings", "finding"), ("groups", "group"), ("errors", "error")] {
            let def = &schema["$defs"][def];
            assert_eq!(sorted(keys(&json[name][0])), required(def));
        }
        let group = &schema["$defs"]["group"];
        assert_eq!(sorted(keys(&group["properties"])), optional(group, &["cluster"]));
        let error = &schema["$defs"]["error"];
        assert_eq!(sorted(keys(&error["properties"])), required(error));
        // a report of several clusters: each group names its cluster
        let clusters = Report::merge(vec![("east".into(), report.clone()), ("west".into(), report)]);
        let json: serde_json::Value = serde_json::from_str(&clusters.to_json()).unwrap();
        assert_eq!(sorted(keys(&json["groups"][0])), optional(group, &["cluster"]));
        assert_eq!(json["groups"].as_array().unwrap().len(), 2);
        let severities = [Severity::Info, Severity::Warning, Severity::Error, Severity::Critical].map(|s| s.as_str());
        assert_eq!(schema["$defs"]["finding"]["properties"]["severity"]["enum"], serde_json::json!(severities));
        assert_eq!(schema["$defs"]["group"]["properties"]["severity"]["enum"], serde_json::json!(severities));
    }
}
