//! The HTML report, opened in headless Chromium: the page loads and shows the
//! findings it must show, its filters and search hide what they should once
//! its script ran, and it lays out at a desktop's and a phone's width.

use std::path::Path;
use std::process::Command;

use k8srule_tests::{k8srule, root};

const NOW: &str = "2024-05-01T12:00:00Z";

/// Chromium, headless, on `url`, with `extra` arguments; its standard output.
fn chromium(profile: &Path, url: &str, extra: &[&str]) -> String {
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
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page of `snapshot` in a temporary directory.
fn page(snapshot: &str) -> (tempfile::TempDir, String) {
    let (code, html, err) = k8srule(&["diagnose", "-f", snapshot, "--now", NOW, "-o", "html"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    (dir, url)
}

/// `(id, hidden)` of each entry of a dumped DOM, in page order.
fn entries(dom: &str) -> Vec<(String, bool)> {
    dom.split("<article ")
        .skip(1)
        .map(|a| {
            let tag = &a[..a.find('>').unwrap()];
            let id = tag.split("id=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
            (id, tag.contains(" hidden"))
        })
        .collect()
}

#[test]
fn html_report_shows_its_findings_in_chromium() {
    let mixed = root().join("examples/snapshots/mixed.json").display().to_string();
    let (dir, url) = page(&mixed);
    let (_, json, _) = k8srule(&["diagnose", "-f", &mixed, "--now", NOW, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let dom = chromium(&dir.path().join("profile"), &url, &["--dump-dom"]);

    // every root cause of the JSON report is shown, or its pod is listed in a group
    for f in report["findings"].as_array().unwrap().iter().filter(|f| f["explained_by"].is_null()) {
        let (rule, pod) = (f["rule"].as_str().unwrap(), f["pod"].as_str().unwrap());
        let marker = format!("data-rule=\"{rule}\" data-pod=\"{pod}\"");
        let listed = format!("<li><code>{pod}</code></li>");
        assert!(dom.contains(&marker) || dom.contains(&listed), "the page lacks {marker}");
    }
    assert!(dom.contains("<h2>2 pods on node <code>k8s-worker-02</code>: <code>disk-full</code></h2>"));
    assert!(dom.contains("20 pods diagnosed, 16 unhealthy"), "summary shown");
    assert!(dom.contains(&format!("Snapshot of <code>{mixed}</code> at <time datetime=\"{NOW}\">")));
}

#[test]
fn filters_and_search_hide_entries_once_the_script_ran() {
    let fleet = root().join("tests/fixtures/report/fleet.json").display().to_string();
    let (dir, url) = page(&fleet);
    let profile = dir.path().join("profile");

    // no filter: the script shows the bar and every entry, the worst first
    let dom = chromium(&profile, &url, &["--dump-dom"]);
    assert!(dom.contains("<form id=\"filters\">"), "the script shows the filter bar");
    let all = entries(&dom);
    assert!(all.iter().all(|(_, hidden)| !hidden), "{all:?}");
    assert_eq!(all[0].0, "node:worker-2:disk-full");
    assert!(dom.contains(&format!("showing {} of {}", all.len(), all.len())), "the count is shown");
    // the cause and namespace tables link to the entries
    assert!(dom.contains("<a href=\"#node:worker-2:disk-full\">3 pods on node worker-2: disk-full</a>"));
    assert!(dom.contains("<a href=\"#pod:shop/orders-db-0\">") || dom.contains("href=\"#pod:shop/db-backup"));

    let shown = |query: &str| -> Vec<String> {
        let dom = chromium(&profile, &format!("{url}?{query}"), &["--dump-dom"]);
        entries(&dom).into_iter().filter(|(_, hidden)| !hidden).map(|(id, _)| id).collect()
    };
    // severity: critical leaves the two node groups
    assert_eq!(shown("severity=critical"), ["node:worker-2:disk-full", "node:worker-3:state.NodeLost"]);
    // namespace: monitoring has pods in both node groups and nowhere else
    assert_eq!(shown("namespace=monitoring"), ["node:worker-2:disk-full", "node:worker-3:state.NodeLost"]);
    // search, case-insensitive, over each entry's text
    assert_eq!(shown("q=command%20NOT%20found"), ["pod:shop/db-backup-28577520-x5w7q"]);
    // together
    let errors_in_shop = shown("severity=error&namespace=shop&q=oomkilled");
    assert_eq!(errors_in_shop, ["workload:shop/Deployment/web:cgroup-oom"]);
    assert!(shown("q=no-such-text-anywhere").is_empty());
}

#[test]
fn without_scripts_every_entry_shows_and_the_bar_stays_hidden() {
    // what a browser without scripts shows is the page as written: only the script hides anything
    let fleet = root().join("tests/fixtures/report/fleet.json").display().to_string();
    let (_, html, _) = k8srule(&["diagnose", "-f", &fleet, "--now", NOW, "-o", "html"]);
    assert!(html.contains("<form id=\"filters\" hidden>"), "the bar needs the script");
    let all = entries(&html);
    assert!(all.len() > 5 && all.iter().all(|(_, hidden)| !hidden), "{all:?}");
    let script = &html[html.find("<script>").unwrap()..];
    assert_eq!(html.matches(" hidden").count(), 1, "the bar is all that starts hidden");
    assert!(script.contains("form.hidden=false") && script.contains("e.hidden=!show"));
}

#[test]
fn the_page_is_laid_out_at_a_desktop_and_a_phone_width() {
    let fleet = root().join("tests/fixtures/report/fleet.json").display().to_string();
    let (dir, _) = page(&fleet);
    let profile = dir.path().join("profile");
    for width in [1280, 390] {
        // the page in a frame of that width, which measures it (a headless window is at least 500 px wide)
        let frame = dir.path().join(format!("frame-{width}.html"));
        let probe = format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"f\" src=\"report.html\" style=\"width:{width}px;height:2400px;border:0\"></iframe><script>f.onload=function(){{document.body.dataset.inner=f.contentWindow.innerWidth;document.body.dataset.scroll=f.contentDocument.documentElement.scrollWidth;}}</script></body></html>"
        );
        std::fs::write(&frame, probe).unwrap();
        let url = format!("file://{}", frame.display());
        let dom =
            chromium(&profile, &url, &["--allow-file-access-from-files", "--window-size=1400,2400", "--dump-dom"]);
        let attr = |name: &str| -> u32 {
            let at = dom.find(&format!("data-{name}=\"")).unwrap_or_else(|| panic!("{name}: {dom}"));
            dom[at + name.len() + 7..].split('"').next().unwrap().parse().unwrap()
        };
        assert_eq!(attr("inner"), width);
        // nothing wider than the frame: the page does not scroll sideways
        assert!(attr("scroll") <= width, "the page is {} px wide in a {width} px frame", attr("scroll"));

        let shot = dir.path().join(format!("report-{width}.png"));
        let size = format!("--window-size={width},2400");
        let target = format!("--screenshot={}", shot.display());
        chromium(&profile, &url, &["--allow-file-access-from-files", &size, &target]);
        let png = std::fs::read(&shot).unwrap();
        // the PNG's IHDR: its width, big-endian, at byte 16
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), width);
        if let Ok(keep) = std::env::var("K8SRULE_KEEP_SCREENSHOTS") {
            std::fs::copy(&shot, Path::new(&keep).join(format!("report-{width}.png"))).unwrap();
        }
    }
}
