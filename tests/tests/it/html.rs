//! The HTML report, opened in headless Chromium: the page loads and shows the
//! findings it must show.

use std::process::Command;

use k8srule_tests::{k8srule, root};

#[test]
fn html_report_shows_its_findings_in_chromium() {
    let mixed = root().join("examples/snapshots/mixed.json").display().to_string();
    let (code, html, err) = k8srule(&["diagnose", "-f", &mixed, "--now", "2024-05-01T12:00:00Z", "-o", "html"]);
    assert_eq!(code, 0, "{err}");
    let (_, json, _) = k8srule(&["diagnose", "-f", &mixed, "--now", "2024-05-01T12:00:00Z", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", dir.path().join("profile").display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);

    // every finding of the JSON report is an element of the rendered page
    for f in report["findings"].as_array().unwrap() {
        let (rule, pod) = (f["rule"].as_str().unwrap(), f["pod"].as_str().unwrap());
        let marker = format!("data-rule=\"{rule}\" data-pod=\"{pod}\"");
        assert!(dom.contains(&marker), "the page lacks {marker}");
    }
    assert!(dom.contains("20 pods diagnosed, 16 unhealthy"), "summary shown");
}
