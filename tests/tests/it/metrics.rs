//! `k8srule watch --metrics-addr` scraped by a real Prometheus (Debian's
//! `prometheus`) on loopback, the cluster the API emulator: the series are
//! read back through Prometheus' query API and compared with what
//! `diagnose` finds in the same objects.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use k8srule_tests::{KubeApi, k8srule, root, wait_for};
use serde_json::{Value, json};

/// `GET path` over HTTP/1.0: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(addr) else { return (0, String::new()) };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A child process, killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Prometheus server on loopback scraping `target` every second.
struct Prometheus {
    _child: Killed,
    addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let bin = Path::new("/usr/bin/prometheus");
        assert!(bin.exists(), "the metrics test needs {} (apt-get install prometheus)", bin.display());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: k8srule\n    \
                 scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus { _child: Killed(child), addr, dir };
        assert!(wait_for(30, || get(&prometheus.addr, "/-/ready").0 == 200), "{}", prometheus.log());
        prometheus
    }

    /// The instant vector of `query`: each series' labels and value.
    fn query(&self, query: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let (status, body) = get(&self.addr, &format!("/api/v1/query?query={}", encode(query)));
        assert_eq!(status, 200, "{query}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["status"], "success", "{answer}");
        let series = answer["data"]["result"].as_array().unwrap().iter();
        series
            .map(|s| {
                let labels = s["metric"].as_object().unwrap().iter();
                let labels = labels.map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
                (labels, s["value"][1].as_str().unwrap().parse().unwrap())
            })
            .collect()
    }

    /// The one value of `query`, once Prometheus has it.
    fn value(&self, query: &str) -> f64 {
        assert!(wait_for(20, || self.query(query).len() == 1), "{query}: {:?}\n{}", self.query(query), self.log());
        self.query(query)[0].1
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

/// `k8srule watch --metrics-addr 127.0.0.1:0` as a process: it and the address it serves on.
fn start_watch(api: &KubeApi) -> (Killed, String, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8srule-cli"))
        .args(["watch", "--kubeconfig", &api.kubeconfig(), "--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("k8srule starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("serving metrics on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the address first: {first:?}"))
        .to_string();
    // the rest of stderr is read as it comes, so the watch never blocks on it
    let rest = Arc::new(Mutex::new(String::new()));
    let shared = rest.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            shared.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    (Killed(child), addr, rest)
}

/// What `diagnose` finds in `dir`, counted as `k8srule_findings` counts it.
fn expected_series(dir: &Path) -> BTreeMap<BTreeMap<String, String>, f64> {
    let (code, out, err) = k8srule(&["diagnose", "-f", &dir.display().to_string(), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let mut expected = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        let (namespace, _) = f["pod"].as_str().unwrap().split_once('/').unwrap();
        let labels: BTreeMap<String, String> = [
            ("cause", f["cause"].as_str().unwrap()),
            ("severity", f["severity"].as_str().unwrap()),
            ("namespace", namespace),
            ("rule", f["rule"].as_str().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        *expected.entry(labels).or_default() += 1.0;
    }
    expected
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn prometheus_scrapes_the_findings_of_watch() {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/snapshots/crashloop.json"), data.path().join("crashloop.json")).unwrap();
    let expected = expected_series(data.path());
    assert!(expected.len() > 1, "{expected:?}");
    // each list takes 3 seconds: time to see the watch not ready yet
    let api = KubeApi::start(data.path(), &["--list-delay", "3"]);
    let started = now();
    let (_watch, addr, stderr) = start_watch(&api);
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/readyz"), (503, "not synced yet\n".to_string()));
    let prometheus = Prometheus::start(&addr);
    assert!(wait_for(30, || get(&addr, "/readyz").0 == 200), "{}", stderr.lock().unwrap());

    // every finding, counted by cause, severity, namespace and rule, as Prometheus stored it
    let scraped = || {
        let series = prometheus.query("k8srule_findings");
        let mut found = BTreeMap::new();
        for (mut labels, value) in series {
            assert_eq!(labels.remove("__name__").as_deref(), Some("k8srule_findings"));
            assert_eq!(labels.remove("job").as_deref(), Some("k8srule"));
            assert_eq!(labels.remove("instance"), Some(addr.clone()));
            found.insert(labels, value);
        }
        found
    };
    assert!(wait_for(20, || scraped() == expected), "{:#?}\n{expected:#?}\n{}", scraped(), prometheus.log());
    let oom = |m: &BTreeMap<BTreeMap<String, String>, f64>| m.keys().any(|l| l["rule"] == "crashloop.cgroup-oom");
    assert!(oom(&expected), "{expected:#?}");
    // the other series
    assert_eq!(prometheus.value("k8srule_pods"), 4.0);
    assert!(prometheus.value("k8srule_pods_diagnosed_total") >= 4.0);
    assert!(prometheus.value("k8srule_diagnose_duration_seconds_count") >= 1.0);
    assert_eq!(
        prometheus.value("k8srule_diagnose_duration_seconds_bucket{le=\"+Inf\"}"),
        prometheus.value("k8srule_diagnose_duration_seconds_count")
    );
    let synced = prometheus.value("k8srule_last_sync_timestamp_seconds");
    assert!(synced >= started && synced <= now() + 1.0, "{synced} {started}");
    assert!(prometheus.query("k8srule_pack_errors_total").is_empty());
    // every series has bounded labels: none names a pod or a container
    let names = prometheus.query("{job=\"k8srule\"}");
    let labels: BTreeSet<&str> = names.iter().flat_map(|(l, _)| l.keys().map(String::as_str)).collect();
    assert!(
        labels
            .iter()
            .all(|l| ["__name__", "job", "instance", "cause", "severity", "namespace", "rule", "le"].contains(l)),
        "{labels:?}"
    );

    // the crash-looping pod is deleted: its series go stale
    api.post("/_delete", &json!({"kind": "Pod", "namespace": "shop", "name": "web-7d4b9c-x2x9k"}));
    assert!(wait_for(20, || !oom(&scraped())), "{:#?}", scraped());
    assert_eq!(prometheus.value("k8srule_pods"), 3.0);
}

#[test]
fn an_address_in_use_is_a_usage_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = k8srule(&["watch", "--kubeconfig", "/nonexistent", "--metrics-addr", &addr]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--metrics-addr {addr}: cannot listen: ")), "{err}");
    let (code, _, err) = k8srule(&["watch", "--metrics-addr", "localhost"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'localhost' for '--metrics-addr <ADDR>'"), "{err}");
}
