//! Report formats: the terminal table (plain or in ANSI colors) and its wide
//! variant, YAML, Markdown for tickets, JUnit XML for CI gates and a
//! self-contained HTML page. All are pure functions of the report. Every
//! format for people (all but YAML) renders the report's texts through
//! [`sanitize::report`], so no control character from a cluster or a pack
//! reaches a terminal or a viewer.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::report::sanitize;
use crate::report::{Finding, Report, Severity};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Grouped by pod, root causes first with their symptoms under them.
    Table,
    /// The table with packs and every confirm command.
    Wide,
    /// The stable schema of docs/report.schema.json.
    Json,
    /// The JSON's structure in YAML.
    Yaml,
    /// To paste into tickets and pull requests.
    Markdown,
    /// JUnit XML for CI gates.
    Junit,
    /// A self-contained HTML page.
    Html,
}

impl Report {
    /// The report in `format`; severities in ANSI colors when `color` (table and wide only).
    pub fn render(&self, format: Format, color: bool) -> String {
        match format {
            Format::Table => table(self, color),
            Format::Wide => wide(self, color),
            Format::Json => self.to_json(),
            Format::Yaml => yaml(self),
            Format::Markdown => markdown(self),
            Format::Junit => junit(self),
            Format::Html => html(self),
        }
    }
}

/// Findings grouped by pod, root causes first with their symptoms indented
/// under them; severities in ANSI colors when `color`.
fn table(report: &Report, color: bool) -> String {
    text(report, color, false)
}

/// The table, with each finding's pack and the confirm commands of symptoms too.
fn wide(report: &Report, color: bool) -> String {
    text(report, color, true)
}

/// The report as YAML, the same structure as the JSON.
fn yaml(report: &Report) -> String {
    serde_norway::to_string(report).unwrap_or_default()
}

/// Markdown to paste into tickets and pull requests.
fn markdown(report: &Report) -> String {
    let report = &sanitize::report(report);
    let mut out = format!("**{}**\n", md(&report.summary_line()));
    for pod in by_pod(report) {
        let _ = writeln!(out, "\n### Pod {}\n", code(pod.name));
        for (root, symptoms) in &pod.groups {
            let _ = writeln!(out, "- {}", md_finding(root));
            md_list(&mut out, "Evidence", &root.evidence, md);
            md_list(&mut out, "Confirm", &root.confirm, code);
            md_list(&mut out, "Fix", &root.fix, md);
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
            let _ = writeln!(out, "- pack {}: {}", code(&e.pack), md(&e.message));
        }
    }
    if !report.notes.is_empty() {
        out.push_str("\n### Notes\n\n");
        for n in &report.notes {
            let _ = writeln!(out, "- {}", md(n));
        }
    }
    out
}

/// JUnit XML: one failing test case per root cause, its symptoms folded into
/// the failure text, and one erroring test case per pack that failed.
fn junit(report: &Report) -> String {
    let report = &sanitize::report(report);
    let pods = by_pod(report);
    let failures = pods.iter().map(|p| p.groups.len()).sum::<usize>();
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
    for (root, symptoms) in pods.iter().flat_map(|p| &p.groups) {
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
            esc(&root.pod),
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
    for n in &report.notes {
        let _ = writeln!(system_out, "note: {n}");
    }
    let _ = writeln!(out, "  <system-out>{}</system-out>\n</testsuite>", esc(&system_out));
    out
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;max-width:72rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 2rem 1rem 0;display:inline-table;vertical-align:top}
th,td{border:1px solid #d0d7de;padding:.2rem .6rem;text-align:left}
td.n{text-align:right}
code{background:#f6f8fa;border-radius:3px;padding:0 .2rem}
.pod{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:0 1rem}
.finding{border-left:4px solid #8c959f;margin:.5rem 0;padding:.1rem .8rem}
.sev-critical{border-color:#82071e}.sev-error{border-color:#cf222e}.sev-warning{border-color:#bf8700}.sev-info{border-color:#0969da}
.sev{font-weight:bold;text-transform:uppercase}
.meta{color:#59636e}
h3,h4{margin:.5rem 0}
";

/// A self-contained HTML page (inline CSS, no scripts): counts per namespace
/// and per cause, then a card per pod.
fn html(report: &Report) -> String {
    let report = &sanitize::report(report);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>k8srule report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<h1>k8srule report</h1>\n<p class=\"summary\">{}</p>\n",
        esc(&report.summary_line())
    );
    let pods = by_pod(report);
    if !pods.is_empty() {
        // namespace -> (unhealthy pods, root causes, symptoms); cause -> (root causes, symptoms)
        let mut namespaces: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
        let mut causes: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
        for pod in &pods {
            let ns = namespaces.entry(pod.name.split_once('/').map_or("", |(ns, _)| ns)).or_default();
            ns[0] += 1;
            for (root, symptoms) in &pod.groups {
                ns[1] += 1;
                ns[2] += symptoms.len();
                causes.entry(&root.cause).or_default()[0] += 1;
                for s in symptoms {
                    causes.entry(&s.cause).or_default()[1] += 1;
                }
            }
        }
        out.push_str("<section class=\"overview\">\n<table class=\"namespaces\">\n<tr><th>Namespace</th><th>Unhealthy pods</th><th>Root causes</th><th>Symptoms</th></tr>\n");
        for (ns, [pods, roots, symptoms]) in &namespaces {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{pods}</td><td class=\"n\">{roots}</td><td class=\"n\">{symptoms}</td></tr>",
                esc(ns)
            );
        }
        out.push_str(
            "</table>\n<table class=\"causes\">\n<tr><th>Cause</th><th>Root causes</th><th>Symptoms</th></tr>\n",
        );
        for (cause, [roots, symptoms]) in &causes {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"n\">{roots}</td><td class=\"n\">{symptoms}</td></tr>",
                esc(cause)
            );
        }
        out.push_str("</table>\n</section>\n");
    }
    for pod in &pods {
        let _ = writeln!(out, "<article class=\"pod\" data-pod=\"{0}\">\n<h2>Pod <code>{0}</code></h2>", esc(pod.name));
        for (root, symptoms) in &pod.groups {
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
    if !report.errors.is_empty() {
        out.push_str("<section class=\"errors\">\n<h2>Errors</h2>\n<ul>\n");
        for e in &report.errors {
            let _ = writeln!(out, "<li>pack <code>{}</code>: {}</li>", esc(&e.pack), esc(&e.message));
        }
        out.push_str("</ul>\n</section>\n");
    }
    if !report.notes.is_empty() {
        out.push_str("<section class=\"notes\">\n<h2>Notes</h2>\n<ul>\n");
        for n in &report.notes {
            let _ = writeln!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>\n</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn text(report: &Report, color: bool, wide: bool) -> String {
    let report = &sanitize::report(report);
    let mut out = String::new();
    let mut current = "";
    for f in &report.findings {
        if f.pod != current {
            if !current.is_empty() {
                out.push('\n');
            }
            current = &f.pod;
            let _ = writeln!(out, "{}", paint(&format!("pod {}", f.pod), BOLD, color));
        }
        let symptom = f.explained_by.is_some();
        let indent = if symptom { "    " } else { "  " };
        let marker = if symptom { paint("symptom", DIM, color) + " " } else { String::new() };
        let label = f.severity.as_str().to_uppercase();
        let pad = " ".repeat(8usize.saturating_sub(label.len()));
        let container = f.container.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
        let pack = if wide { format!(", pack {}", f.pack) } else { String::new() };
        let _ = writeln!(
            out,
            "{indent}{marker}{}{pad} {}{container}: {} ({}{pack}, confidence {:.0}%)",
            paint(&label, severity_color(f.severity), color),
            f.cause,
            f.title.trim_end().replace('\n', " "),
            f.rule,
            f.confidence * 100.0
        );
        // continuation lines of a multi-line message stay under its first line
        let lines = |out: &mut String, label: &str, items: &[String]| {
            let hang = format!("\n{indent}    {}", " ".repeat(label.len()));
            for item in items {
                let _ = writeln!(out, "{indent}    {label}{}", item.trim_end().replace('\n', &hang));
            }
        };
        if !symptom {
            lines(&mut out, "evidence: ", &f.evidence);
        }
        if !symptom || wide {
            lines(&mut out, "confirm:  ", &f.confirm);
        }
        if !symptom {
            lines(&mut out, "fix:      ", &f.fix);
        }
    }
    for e in &report.errors {
        let _ = writeln!(out, "{} pack `{}`: {}", paint("error:", RED, color), e.pack, e.message);
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(out, "{}", report.summary_line());
    out
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

/// One pod's findings: each root cause with the symptoms it explains.
struct Pod<'a> {
    name: &'a str,
    groups: Vec<(&'a Finding, Vec<&'a Finding>)>,
}

/// The findings per pod in report order, each symptom under the root cause
/// before it that its `explained_by` names; a symptom without one heads a
/// group of its own.
fn by_pod(report: &Report) -> Vec<Pod<'_>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut pods: Vec<Pod> = Vec::new();
    for f in &report.findings {
        let i = *index.entry(&f.pod).or_insert_with(|| {
            pods.push(Pod { name: &f.pod, groups: Vec::new() });
            pods.len() - 1
        });
        let groups = &mut pods[i].groups;
        let root = groups.iter_mut().find(|(root, _)| {
            root.explained_by.is_none()
                && Some(&root.rule) == f.explained_by.as_ref()
                && (root.container == f.container || root.container.is_none() || f.container.is_none())
        });
        match root {
            Some((_, symptoms)) => symptoms.push(f),
            None => groups.push((f, Vec::new())),
        }
    }
    pods
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
        esc(&f.pod),
        esc(&f.cause),
        f.severity.as_str()
    );
    if let Some(c) = &f.container {
        let _ = write!(attrs, " data-container=\"{}\"", esc(c));
    }
    if let Some(r) = &f.explained_by {
        let _ = write!(attrs, " data-explained-by=\"{}\"", esc(r));
    }
    attrs
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
            let item = if as_code { format!("<code>{}</code>", esc(i)) } else { esc(i) };
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

    fn finding(pod: &str, rule: &str, cause: &str, severity: Severity, container: Option<&str>) -> Finding {
        Finding {
            rule: rule.into(),
            cause: cause.into(),
            severity,
            confidence: 0.9,
            pod: pod.into(),
            container: container.map(Into::into),
            title: format!("{cause} title"),
            evidence: vec![format!("{cause} evidence")],
            confirm: vec![format!("kubectl describe pod {pod}")],
            fix: vec![format!("{cause} fix")],
            explained_by: None,
            pack: "builtin".into(),
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
            summary: crate::report::Summary { pods: 3, unhealthy: 2 },
            findings: vec![oom, back_off, restarts, dns],
            errors: vec![ReportError {
                pack: "extra<1>.wasm".into(),
                message: "evaluate ran out of time & was \"stopped\"".into(),
            }],
            notes: vec!["skipped 2 object(s) of kind ConfigMap: no rule reads them".into()],
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
        let wide = wide(&report, false);
        insta::assert_snapshot!(wide);
        assert_eq!(strip_ansi(&super::wide(&report, true)), wide);
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
        assert!(!page.contains("<script") && !page.contains("http"));
        for f in &report.findings {
            let attrs = format!("data-rule=\"{}\" data-pod=\"{}\" data-cause=\"{}\"", f.rule, f.pod, f.cause);
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
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
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
        assert_eq!(sorted(keys(&json)), required(&schema));
        assert_eq!(sorted(keys(&schema["properties"])), required(&schema));
        assert_eq!(sorted(keys(&json["summary"])), required(&schema["properties"]["summary"]));
        for (name, def) in [("findings", "finding"), ("errors", "error")] {
            let def = &schema["$defs"][def];
            assert_eq!(sorted(keys(&json[name][0])), required(def));
            assert_eq!(sorted(keys(&def["properties"])), required(def));
        }
        let severities = [Severity::Info, Severity::Warning, Severity::Error, Severity::Critical].map(|s| s.as_str());
        assert_eq!(schema["$defs"]["finding"]["properties"]["severity"]["enum"], serde_json::json!(severities));
    }
}
