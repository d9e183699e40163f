//! The report for people on a fleet: three nodes (one with a full disk, one
//! lost), several workloads with pods failing alike, every severity. Worst
//! first, pods of a workload or a node failing for one cause as one entry,
//! the table fitted to a width.

use k8srule_host::{Diagnoser, Format, GroupKind, Layout, Report, Severity, Snapshot, Sort};
use k8srule_tests::{k8srule, root};

const NOW: &str = "2024-05-01T12:00:00Z";

fn fleet() -> String {
    root().join("tests/fixtures/report/fleet.json").display().to_string()
}

fn report() -> Report {
    let diagnoser = Diagnoser::builder().build().unwrap();
    let mut snapshot = diagnoser.snapshot(chrono_now());
    snapshot.add_path(std::path::Path::new(&fleet())).unwrap();
    diagnoser.diagnose(&snapshot)
}

fn chrono_now() -> i64 {
    // 2024-05-01T12:00:00Z
    1_714_564_800
}

#[test]
fn every_format_shows_the_fleet_worst_first_and_grouped() {
    // relative to the test's directory, so the HTML page names the same source everywhere
    let fleet = "fixtures/report/fleet.json";
    assert!(std::path::Path::new(fleet).is_file(), "tests run in the tests/ directory");
    for format in ["table", "wide", "json", "yaml", "markdown", "junit", "html"] {
        let (code, out, err) = k8srule(&["diagnose", "-f", fleet, "--now", NOW, "-o", format]);
        assert_eq!(code, 0, "{format}: {err}");
        insta::assert_snapshot!(format!("fleet_{format}"), out);
    }
    let (_, by_name, _) = k8srule(&["diagnose", "-f", fleet, "--now", NOW, "--sort", "name"]);
    insta::assert_snapshot!("fleet_table_by_name", by_name);
    let (_, expanded, _) = k8srule(&["diagnose", "-f", fleet, "--now", NOW, "--expand", "-o", "markdown"]);
    insta::assert_snapshot!("fleet_markdown_expanded", expanded);
}

/// The headings of the table's entries, in order.
fn headings(table: &str) -> Vec<&str> {
    let group = |l: &str| l.split(' ').nth(1) == Some("pods") && !l.contains(" diagnosed");
    table.lines().filter(|l| l.starts_with("pod ") || group(l)).collect()
}

#[test]
fn the_table_puts_the_worst_first_and_name_order_on_request() {
    let report = report();
    let table = report.render(Format::Table, false);
    let heads = headings(&table);
    // critical node causes first, the four OOMKilled pods of one Deployment next
    assert_eq!(heads[0], "3 pods on node worker-2: disk-full", "{table}");
    assert_eq!(heads[1], "2 pods on node worker-3: state.NodeLost", "{table}");
    assert_eq!(heads[2], "4 pods of shop/Deployment/web: cgroup-oom", "{table}");
    let severities: Vec<Severity> = report.groups().iter().map(|g| g.severity).collect();
    assert!(severities.is_sorted_by(|a, b| a >= b), "{severities:?}");
    // the last entries are the warnings
    let pods = heads.iter().filter(|h| h.starts_with("pod ")).copied().collect::<Vec<_>>();
    assert_eq!(
        pods[pods.len() - 2..],
        ["pod shop/analytics-worker-58d9c6b7f4-wq9jc", "pod shop/legacy-reports-7d6f5c8b9-h6mfs"],
        "{table}"
    );
    // by name: entries in the order of their first pod
    let by_name = report.render_with(Format::Table, &Layout { sort: Sort::Name, ..Layout::default() });
    let firsts: Vec<String> = headings(&by_name)
        .iter()
        .map(|h| match h.strip_prefix("pod ") {
            Some(pod) => pod.to_string(),
            None => {
                let at = by_name.find(h).unwrap();
                let example = by_name[at..].lines().nth(1).unwrap();
                example.trim().strip_prefix("example pod ").unwrap().split(';').next().unwrap().to_string()
            }
        })
        .collect();
    let mut sorted = firsts.clone();
    sorted.sort();
    assert_eq!(firsts, sorted);
}

#[test]
fn groups_name_the_workload_or_node_and_every_pod() {
    let report = report();
    let groups = report.groups();
    let summary: Vec<(GroupKind, &str, &str, usize)> =
        groups.iter().map(|g| (g.by, g.name.as_str(), g.cause.as_str(), g.pods.len())).collect();
    assert_eq!(
        summary,
        [
            (GroupKind::Node, "worker-2", "disk-full", 3),
            (GroupKind::Node, "worker-3", "state.NodeLost", 2),
            (GroupKind::Workload, "shop/Deployment/web", "cgroup-oom", 4),
            (GroupKind::Workload, "shop/Deployment/checkout", "app-exit", 2),
        ]
    );
    // the pods of the node group are in three workloads and two namespaces
    assert_eq!(groups[0].pods, ["monitoring/metrics-agent-b7x9q", "shop/loyalty-6d9f7b8c5-j3k7p", "shop/search-0"]);
    // every finding is still in the JSON, with its workload and node
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), report.findings.len());
    let web = findings.iter().filter(|f| f["workload"] == "shop/Deployment/web" && f["node"] == "worker-1").count();
    assert!(web >= 4, "{web}");
    assert_eq!(json["groups"].as_array().unwrap().len(), 4);
    assert_eq!(json["groups"][2]["by"], "workload");
    // the table shows one example and the count; --expand lists them all
    let table = report.render(Format::Table, false);
    assert!(table.contains("  example pod shop/web-6d4f8b7c9-4xk2p; 3 more (--expand lists them)\n"), "{table}");
    assert_eq!(table.matches("web-6d4f8b7c9-9qz7m").count(), 0, "{table}");
    let expanded = report.render_with(Format::Table, &Layout { expand: true, ..Layout::default() });
    assert!(expanded.contains("all 4: shop/web-6d4f8b7c9-4xk2p, shop/web-6d4f8b7c9-9qz7m,"), "{expanded}");
}

#[test]
fn the_table_fits_80_and_120_columns() {
    let report = report();
    let piped = report.render(Format::Table, false);
    let longest = piped.lines().map(textwrap::core::display_width).max().unwrap();
    assert!(longest > 200, "the fleet has long lines to wrap: {longest}");
    for width in [80, 120] {
        for (format, color) in [(Format::Table, false), (Format::Table, true), (Format::Wide, false)] {
            let layout = Layout { width: Some(width), color, ..Layout::default() };
            let text = report.render_with(format, &layout);
            for line in text.lines() {
                assert!(textwrap::core::display_width(line) <= width, "{width}: {line:?}");
            }
            if !color && format == Format::Table {
                // only whitespace changed, and words are whole unless wider than a line
                let letters = |t: &str| -> String { t.split_whitespace().collect() };
                assert_eq!(letters(&text), letters(&piped), "{width}");
                let fitting: Vec<&str> = piped.split_whitespace().filter(|w| w.len() < width - 16).collect();
                let wrapped: Vec<&str> = text.split_whitespace().collect();
                assert!(fitting.iter().all(|w| wrapped.contains(w)), "{width}: a word was split");
                // a continuation line is indented under its first line
                assert!(text.lines().any(|l| l.starts_with("      ") && !l.trim_start().starts_with("evidence")));
            }
        }
    }
}

#[test]
fn long_evidence_is_cut_in_the_table_and_whole_in_wide() {
    let report = report();
    let long = report.findings.iter().flat_map(|f| &f.evidence).find(|e| e.chars().count() > 300).unwrap();
    let table = report.render(Format::Table, false);
    let wide = report.render(Format::Wide, false);
    let start: String = long.chars().take(60).collect();
    let cut = table.lines().find(|l| l.contains(&start)).unwrap();
    assert!(cut.ends_with(" …") && cut.len() < long.len(), "{cut}");
    assert!(table.contains("… marks evidence cut short: -o wide shows it whole"));
    assert!(wide.contains(long.as_str()));
    assert!(!wide.contains(" …\n"));
}

#[test]
fn an_empty_snapshot_has_no_entries() {
    let diagnoser = Diagnoser::builder().build().unwrap();
    let report = diagnoser.diagnose(&Snapshot::new(0));
    assert!(report.groups().is_empty());
    assert_eq!(report.render(Format::Table, false), "0 pods diagnosed, 0 unhealthy\n");
}
