//! Evaluation speed and memory, as ratios against baselines measured in the
//! same run (machines here are shared and noisy):
//!
//! 1. one rule (a container whose last exit code is 137 and whose reason is
//!    not OOMKilled) over 10,000 generated pods: k8srule (on its default
//!    threads, one per CPU, and on one thread) against hand-written Rust over
//!    the same parsed snapshot, in interleaved rounds from cold caches and hot;
//!    regorus (Rego) and the `cel` crate, hot;
//! 2. all built-in rules over 150,000 pods with 3 events each: time against
//!    sonic-rs (the fastest parser here) and serde_json parsing the file into
//!    a value, and reading it; peak memory against the file's size;
//!    then the same pods in a bundle with a 101-line log for every tenth pod;
//! 3. cold start of `k8srule diagnose` on 10 pods with a warm cache;
//! 4. compiling all built-in rules, against parsing them;
//! 5. the pods and events of part 2 served by the API emulator
//!    (`tests/kube-api/server.py`): `k8srule diagnose` of the live cluster
//!    against a plain HTTP client fetching the same pages (the server's
//!    share) and against the same pages read from files; the peak memory of
//!    `k8srule watch` to its first sync against the size of those pages.
//!
//! Run: `cargo build --release && cargo bench -p k8srule-tests --bench eval`
//! (`-- --quick` for fewer repetitions and smaller parts 2 and 5;
//! `-- --live PODS` for part 5 alone).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8srule_host::test_support::tree::Doc;
use k8srule_host::{Diagnoser, Snapshot};
use serde_json::{Value, json};

const RULE: &str = r#"
rule bench.kill-not-oom {
  cause "system-oom"
  severity error
  for c in containers
  when c.lastState.terminated.exitCode == 137 and c.lastState.terminated.reason != "OOMKilled"
  title "container {c.name} of {pod.metadata.name} was killed (exit code 137) without OOMKilled"
}
"#;

const REGO: &str = r#"
package bench
import rego.v1
findings contains [pod.metadata.name, s.name] if {
  some pod in input.items
  some s in pod.status.containerStatuses
  s.lastState.terminated.exitCode == 137
  s.lastState.terminated.reason != "OOMKilled"
}
"#;

const CEL: &str = "items.map(p, has(p.status.containerStatuses) ? p.status.containerStatuses.filter(s, \
    has(s.lastState.terminated) && s.lastState.terminated.exitCode == 137 && \
    (!has(s.lastState.terminated.reason) || s.lastState.terminated.reason != 'OOMKilled')).map(s, [p.metadata.name, s.name]) : [])";

fn pod(i: usize) -> Value {
    let name = format!("web-{i:06}");
    let last = match i % 20 {
        0 => {
            json!({"terminated": {"exitCode": 137, "reason": "Error", "startedAt": "2024-05-01T11:00:00Z", "finishedAt": "2024-05-01T11:10:00Z"}})
        }
        1 => {
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "2024-05-01T11:00:00Z", "finishedAt": "2024-05-01T11:10:00Z"}})
        }
        2 => {
            json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2024-05-01T11:00:00Z", "finishedAt": "2024-05-01T11:10:00Z"}})
        }
        _ => json!({}),
    };
    let waiting = i % 20 < 3;
    let state = if waiting {
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 5m0s restarting failed container=app pod={name}")}})
    } else {
        json!({"running": {"startedAt": "2024-05-01T10:00:00Z"}})
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": format!("team-{}", i % 50), "uid": format!("uid-{i}"),
            "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {"app": "web", "pod-template-hash": "7d4b9c"}},
        "spec": {"nodeName": format!("node-{}", i % 100), "restartPolicy": "Always",
            "containers": [
                {"name": "app", "image": "registry.example.com/shop/web:1.4.2",
                 "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"memory": "128Mi", "cpu": "100m"}},
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}},
                {"name": "sidecar", "image": "registry.example.com/proxy:2.1", "resources": {"limits": {"memory": "64Mi"}}}
            ]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "startTime": "2024-05-01T10:00:00Z",
            "conditions": [{"type": "Ready", "status": if waiting { "False" } else { "True" }}],
            "containerStatuses": [
                {"name": "app", "ready": !waiting, "restartCount": if waiting { 7 } else { 0 }, "image": "registry.example.com/shop/web:1.4.2",
                 "state": state, "lastState": last},
                {"name": "sidecar", "ready": true, "restartCount": 0, "image": "registry.example.com/proxy:2.1",
                 "state": {"running": {"startedAt": "2024-05-01T10:00:00Z"}}, "lastState": {}}
            ]}
    })
}

fn event(i: usize, k: usize) -> Value {
    let (reason, message) = match k {
        0 => ("Scheduled", format!("Successfully assigned team-{}/web-{i:06} to node-{}", i % 50, i % 100)),
        1 => {
            ("Pulled", "Container image \"registry.example.com/shop/web:1.4.2\" already present on machine".to_string())
        }
        _ => ("BackOff", "Back-off restarting failed container app".to_string()),
    };
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("web-{i:06}.{k}"), "namespace": format!("team-{}", i % 50)},
        "involvedObject": {"kind": "Pod", "name": format!("web-{i:06}"), "namespace": format!("team-{}", i % 50), "uid": format!("uid-{i}")},
        "reason": reason, "message": message, "type": if k == 2 { "Warning" } else { "Normal" }, "count": 1,
        "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": "2024-05-01T11:00:00Z", "source": {"component": "kubelet"}})
}

/// The median of `runs` timed calls, after one warm-up call.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = f();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        out = f();
        times.push(start.elapsed());
    }
    times.sort();
    (times[runs / 2], out)
}

fn hand_written(snapshot: &Snapshot) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in k8srule_host::test_support::pods(snapshot) {
        let Some(statuses) = p.path(&["status", "containerStatuses"]) else { continue };
        for s in statuses.items() {
            let t = s.path(&["lastState", "terminated"]);
            let code = t.and_then(|t| t.get("exitCode")).and_then(Doc::as_i64);
            if code == Some(137) && t.and_then(|t| t.str_at(&["reason"])).is_some_and(|r| r != "OOMKilled") {
                let (pod, c) = (p.str_at(&["metadata", "name"]).unwrap_or(""), s.str_at(&["name"]).unwrap_or(""));
                let ns = p.str_at(&["metadata", "namespace"]).unwrap_or("");
                out.push((
                    format!("{ns}/{pod}"),
                    c.to_string(),
                    format!("container {c} of {pod} was killed (exit code 137) without OOMKilled"),
                ));
            }
        }
    }
    out
}

/// The same condition over `serde_json::Value`s (counting only), for
/// reference: what a tool that keeps the parsed JSON does.
fn hand_written_json(items: &[Value]) -> usize {
    let killed = |s: &Value| {
        let t = &s["lastState"]["terminated"];
        t["exitCode"].as_i64() == Some(137) && t["reason"].as_str().is_some_and(|r| r != "OOMKilled")
    };
    items
        .iter()
        .flat_map(|p| p["status"]["containerStatuses"].as_array().into_iter().flatten())
        .filter(|s| killed(s))
        .count()
}

/// The threads a `Diagnoser` uses by default.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Evicts the CPU caches by writing a buffer larger than the last-level cache.
struct Evictor(Vec<u8>);

impl Evictor {
    fn new() -> Self {
        Evictor(vec![0; 128 << 20])
    }

    fn evict(&mut self) {
        for i in (0..self.0.len()).step_by(64) {
            self.0[i] = self.0[i].wrapping_add(1);
        }
        std::hint::black_box(&self.0);
    }
}

/// Times of one contender over the rounds of a comparison.
#[derive(Default)]
struct Times {
    cold: Vec<Duration>,
    hot: Vec<Duration>,
}

impl Times {
    /// Runs `f` from cold caches, then three times more, and records the
    /// first run and the last (its data as cached as it gets).
    fn round<T>(&mut self, evictor: &mut Evictor, mut f: impl FnMut() -> T) -> T {
        evictor.evict();
        let start = Instant::now();
        std::hint::black_box(f());
        self.cold.push(start.elapsed());
        for _ in 0..2 {
            std::hint::black_box(f());
        }
        let start = Instant::now();
        let out = f();
        self.hot.push(start.elapsed());
        out
    }
}

/// The median of `a[i] / b[i]`, and of `a`, in milliseconds.
fn ratio(a: &[Duration], b: &[Duration]) -> (f64, f64) {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.as_secs_f64() / b.as_secs_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    let mut a = a.to_vec();
    a.sort();
    (ratios[ratios.len() / 2], ms(a[a.len() / 2]))
}

fn one_rule(runs: usize) {
    let items: Vec<Value> = (0..10_000).map(pod).collect();
    let mut snapshot = Snapshot::new(0);
    for p in &items {
        snapshot.add_value("generated", p).unwrap();
    }
    let diagnoser = |threads| {
        Diagnoser::builder().builtin(false).threads(threads).rules_source("bench.k8srule", RULE).build().unwrap()
    };
    let (one_thread, diagnoser) = (diagnoser(1), diagnoser(cpus()));

    // rounds, each running every contender from cold caches and then hot,
    // so that the machine's noise and the caches' state hit all of them alike
    let mut evictor = Evictor::new();
    let (mut t_rust, mut t_ours, mut t_one) = (Times::default(), Times::default(), Times::default());
    let (mut rust, mut report) = (Vec::new(), k8srule_host::Report::default());
    for _ in 0..runs {
        rust = t_rust.round(&mut evictor, || hand_written(&snapshot));
        report = t_ours.round(&mut evictor, || diagnoser.diagnose(&snapshot));
        t_one.round(&mut evictor, || one_thread.diagnose(&snapshot));
    }
    assert_eq!(report.findings.len(), rust.len(), "same findings");
    let mut ours: Vec<&str> = report.findings.iter().map(|f| f.title.as_str()).collect();
    let mut theirs: Vec<&str> = rust.iter().map(|r| r.2.as_str()).collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs, "same findings");
    let (t_json, found) = time(runs, || hand_written_json(&items));
    assert_eq!(found, rust.len());

    let mut rego = regorus::Engine::new();
    rego.add_policy("bench.rego".into(), REGO.into()).unwrap();
    rego.set_input(regorus::Value::from_json_str(&json!({"items": items}).to_string()).unwrap());
    let (t_rego, found) = time(runs.min(5), || rego.eval_rule("data.bench.findings".into()).unwrap());
    assert_eq!(found.as_set().map(|s| s.len()).unwrap_or(0), rust.len());

    let program = cel::Program::compile(CEL).unwrap();
    let mut context = cel::Context::default();
    context.add_variable("items", &items).unwrap();
    let (t_cel, found) = time(runs.min(5), || program.execute(&context).unwrap());
    let cel_count = match found {
        cel::Value::List(pods) => pods.iter().map(|l| if let cel::Value::List(x) = l { x.len() } else { 0 }).sum(),
        _ => 0,
    };
    assert_eq!(cel_count, rust.len());

    let line = |name: &str, t: &Times| {
        let (cold, t_cold) = ratio(&t.cold, &t_rust.cold);
        let (hot, t_hot) = ratio(&t.hot, &t_rust.hot);
        println!("   {name:<19} {t_cold:>9.2} ms  {cold:>5.2}x   {t_hot:>9.2} ms  {hot:>5.2}x");
    };
    println!("1. one rule over 10,000 pods ({} findings), median of {runs} rounds", rust.len());
    println!("   each round runs every contender from cold caches (as a one-shot `diagnose` reads a");
    println!("   snapshot), then hot (its fourth run in a row); ratios are medians of the rounds' ratios");
    println!("                         cold       ratio        hot       ratio");
    line("hand-written Rust", &t_rust);
    line(&format!("k8srule, {} threads", cpus()), &t_ours);
    line("k8srule, 1 thread", &t_one);
    println!("   target: k8srule (default threads) <= 1.5x the hand-written Rust over the same parsed snapshot");
    println!("   hand-written over serde_json::Value, for reference: {:.2} ms hot", ms(t_json));
    // regorus and cel are timed hot, call after call
    let (_, t_ours_hot) = ratio(&t_ours.hot, &t_rust.hot);
    println!(
        "   regorus             {:>9.2} ms   k8srule (hot) is {:.1}x faster   target >= 2.5x",
        ms(t_rego),
        ms(t_rego) / t_ours_hot
    );
    println!(
        "   cel                 {:>9.2} ms   k8srule (hot) is {:.1}x faster   target >= 2.5x",
        ms(t_cel),
        ms(t_cel) / t_ours_hot
    );
}

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Child process mode: runs one phase over the file and prints `millis peak-bytes`.
fn phase(which: &str, file: &str) {
    let start = Instant::now();
    match which {
        "read" => {
            let text = std::fs::read(file).unwrap();
            assert!(text.starts_with(b"{"));
        }
        "sonic" => {
            let text = std::fs::read_to_string(file).unwrap();
            let v: sonic_rs::Value = sonic_rs::from_str(&text).unwrap();
            drop(text);
            assert!(sonic_rs::JsonValueTrait::get(&v, "items").is_some());
        }
        "parse" => {
            let text = std::fs::read_to_string(file).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            drop(text);
            assert!(v["items"].is_array());
        }
        "live" | "watch" => {
            // `k8srule diagnose` and `k8srule watch` against the cluster of this kubeconfig
            let args: &[&str] = if which == "live" {
                &["diagnose", "-A", "-o", "json", "--now", "2024-05-01T12:00:00Z"]
            } else {
                &["watch", "-A", "-o", "json", "--duration", "1"]
            };
            let mut out = Vec::new();
            let code = k8srule_host::run_cli(
                ["k8srule"].iter().chain(args).chain(&["--kubeconfig", file]),
                &mut out,
                &mut std::io::sink(),
            );
            assert!(code <= 1 && out.len() > 1000, "exit code {code}: {}", String::from_utf8_lossy(&out));
        }
        _ => {
            // as `k8srule diagnose -f` does
            let diagnoser = Diagnoser::builder().build().unwrap();
            let mut snapshot = diagnoser.snapshot(1_714_564_800);
            snapshot.add_path(std::path::Path::new(file)).unwrap();
            let report = diagnoser.diagnose(&snapshot);
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            assert!(!report.findings.is_empty());
        }
    }
    println!("{} {} {}", start.elapsed().as_millis(), peak_rss(), cpu_ms());
}

/// CPU time (user and system) of this process so far, in milliseconds.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command's `(name)`: utime and stime are the 12th and 13th, in 1/100 s
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) * 10
}

fn run_phase(which: &str, file: &std::path::Path) -> (f64, u64) {
    let (ms, peak, _) = run_phase_cpu(which, file);
    (ms, peak)
}

/// Runs a phase in a child process: its time in ms, peak memory and CPU time in ms.
fn run_phase_cpu(which: &str, file: &std::path::Path) -> (f64, u64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--phase", which, &file.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let mut next = || parts.next().unwrap().parse::<f64>().unwrap();
    (next(), next() as u64, next())
}

fn all_rules(pods: usize) {
    let dir = std::env::temp_dir().join(format!("k8srule-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cluster.json");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        write!(w, "{{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[").unwrap();
        for i in 0..pods {
            if i > 0 {
                write!(w, ",").unwrap();
            }
            serde_json::to_writer(&mut w, &pod(i)).unwrap();
            for k in 0..3 {
                write!(w, ",").unwrap();
                serde_json::to_writer(&mut w, &event(i, k)).unwrap();
            }
        }
        write!(w, "]}}").unwrap();
    }
    let size = std::fs::metadata(&file).unwrap().len();
    let (t_read, _) = run_phase("read", &file);
    let (t_sonic, _) = run_phase("sonic", &file);
    let (t_parse, _) = run_phase("parse", &file);
    let (t_all, peak) = run_phase("diagnose", &file);
    println!("2. all built-in rules over {pods} pods with 3 events each ({:.0} MB of JSON)", size as f64 / 1e6);
    println!("   read the file       {:>9.0} ms", t_read);
    println!("   sonic-rs parse      {:>9.0} ms   (baseline: the fastest parser here)", t_sonic);
    println!("   serde_json parse    {:>9.0} ms   {:.2}x sonic-rs", t_parse, t_parse / t_sonic);
    println!(
        "   k8srule diagnose    {:>9.0} ms   {:.2}x sonic-rs (target <= 1.5x), {:.2}x serde_json",
        t_all,
        t_all / t_sonic,
        t_all / t_parse
    );
    println!(
        "   peak memory         {:>9.0} MB   {:.2}x the file size   target <= 1x",
        peak as f64 / 1e6,
        peak as f64 / size as f64
    );
    // the same pods in a bundle with the previous run's log (101 lines) of every tenth pod
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::rename(&file, bundle.join("cluster.json")).unwrap();
    let mut log = String::new();
    for k in 0..100 {
        log.push_str(&format!("2024/05/01 11:00:{:02} GET /api/items/{k} 200 3ms\n", k % 60));
    }
    log.push_str("panic: runtime error: invalid memory address or nil pointer dereference\n");
    for i in (0..pods).step_by(10) {
        let d = bundle.join(format!("logs/team-{}/web-{i:06}", i % 50));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("app.previous.log"), &log).unwrap();
    }
    let (t_logs, peak_logs) = run_phase("diagnose", &bundle);
    println!(
        "   with logs (10% pods) {:>8.0} ms   {:.2}x without logs; peak memory {:.0} MB",
        t_logs,
        t_logs / t_all,
        peak_logs as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `items` as one `List` file.
fn write_list(file: &std::path::Path, items: impl Iterator<Item = Value>) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    write!(w, "{{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[").unwrap();
    for (i, item) in items.enumerate() {
        if i > 0 {
            write!(w, ",").unwrap();
        }
        serde_json::to_writer(&mut w, &item).unwrap();
    }
    write!(w, "]}}").unwrap();
}

/// The API emulator (`tests/kube-api/server.py`) serving the JSON files of `data`.
struct Emulator {
    child: std::process::Child,
    url: String,
}

impl Emulator {
    fn start(data: &std::path::Path) -> Self {
        use std::io::BufRead;
        let server = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kube-api/server.py");
        let mut child = Command::new("python3")
            .args([server.to_str().unwrap(), "--port", "0", "--data", data.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap().to_string();
        Emulator { child, url }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's share of a live read: the pages k8srule asks for (pods,
/// their events, nodes; 500 a page), fetched by a plain HTTP client that
/// only finds the continue token. Each page is saved in `pages` when given.
/// Returns the time and the bytes received.
fn fetch_pages(url: &str, pages: Option<&std::path::Path>) -> (Duration, u64) {
    let agent = ureq::Agent::new_with_defaults();
    let start = Instant::now();
    let mut bytes = 0;
    let mut n = 0;
    for (path, selector) in [("/api/v1/pods", ""), ("/api/v1/events", "involvedObject.kind=Pod"), ("/api/v1/nodes", "")]
    {
        let mut token = String::new();
        loop {
            let mut request = agent.get(format!("{url}{path}")).query("limit", "500");
            if !selector.is_empty() {
                request = request.query("fieldSelector", selector);
            }
            if !token.is_empty() {
                request = request.query("continue", &token);
            }
            let text = request.call().unwrap().body_mut().with_config().limit(1 << 30).read_to_string().unwrap();
            bytes += text.len() as u64;
            if let Some(dir) = pages {
                std::fs::write(dir.join(format!("{n:05}.json")), &text).unwrap();
                n += 1;
            }
            // `"continue": "TOKEN"` in the list's metadata, which comes before its items
            let head = &text[..text.find("\"items\"").unwrap_or(text.len())];
            token = match head.find("\"continue\"") {
                Some(at) => head[at + 10..].split('"').nth(1).unwrap_or("").to_string(),
                None => String::new(),
            };
            if token.is_empty() {
                break;
            }
        }
    }
    (start.elapsed(), bytes)
}

/// Part 5: a live read and a watch of `pods` pods (3 events each) served by
/// the API emulator, against the same pages read from files.
fn live(pods: usize) {
    let dir = std::env::temp_dir().join(format!("k8srule-bench-live-{}", std::process::id()));
    let (data, pages) = (dir.join("data"), dir.join("pages"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&pages).unwrap();
    write_list(&data.join("pods.json"), (0..pods).map(pod));
    write_list(&data.join("events.json"), (0..pods).flat_map(|i| (0..3).map(move |k| event(i, k))));
    let started = Instant::now();
    let emulator = Emulator::start(&data);
    let t_load = started.elapsed();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: emu, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: emu, user: {{}}}}]\ncontexts: [{{name: emu, context: {{cluster: emu, user: emu}}}}]\n\
             current-context: emu\n",
            emulator.url
        ),
    )
    .unwrap();
    // the server's share before and after k8srule's read, the faster of the two
    let (t_server1, bytes) = fetch_pages(&emulator.url, Some(&pages));
    let (t_live, peak_live, cpu_live) = run_phase_cpu("live", &kubeconfig);
    let (t_server2, _) = fetch_pages(&emulator.url, None);
    let t_server = ms(t_server1.min(t_server2));
    let (t_file, peak_file, cpu_file) = run_phase_cpu("diagnose", &pages);
    let (t_watch, peak_watch, _) = run_phase_cpu("watch", &kubeconfig);
    drop(emulator);
    let per_pod = |t: f64| t * 1e3 / pods as f64;
    let share = t_live - t_server;
    println!(
        "5. a live cluster of {pods} pods with 3 events each from the API emulator \
         ({:.0} MB of JSON in pages of 500; the emulator loaded it in {:.0} s)",
        bytes as f64 / 1e6,
        t_load.as_secs_f64()
    );
    println!(
        "   plain HTTP client   {:>9.0} ms   (baseline: the server's share; {:.0} and {:.0} ms)",
        t_server,
        ms(t_server1),
        ms(t_server2)
    );
    println!(
        "   k8srule diagnose    {:>9.0} ms   live, CPU {:.0} ms, peak memory {:.0} MB",
        t_live,
        cpu_live,
        peak_live as f64 / 1e6
    );
    println!(
        "   k8srule's share     {:>9.0} ms   {:.1} us a pod; the same pages from files: {:.0} ms, {:.1} us a pod \
         (CPU {:.0} ms, peak memory {:.0} MB): live/file {:.2}x   target <= 1x",
        share,
        per_pod(share),
        t_file,
        per_pod(t_file),
        cpu_file,
        peak_file as f64 / 1e6,
        share / t_file
    );
    println!(
        "   k8srule watch       {:>9.0} ms   to the first sync and 1 s more; peak memory {:.0} MB, \
         {:.2}x the JSON   target <= 1x",
        t_watch,
        peak_watch as f64 / 1e6,
        peak_watch as f64 / bytes as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn cold_start(runs: usize) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/release/k8srule");
    if !bin.exists() {
        println!("3. cold start: skipped, build the binary first: cargo build --release");
        return;
    }
    let dir = std::env::temp_dir().join(format!("k8srule-bench-cold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pods.json");
    let items: Vec<Value> = (0..10).map(pod).collect();
    std::fs::write(&file, json!({"kind": "List", "items": items}).to_string()).unwrap();
    let cache = dir.join("cache");
    let run = |args: &[&str]| {
        let out = Command::new(&bin).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let diagnose = [
        "diagnose",
        "-f",
        file.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--now",
        "2024-05-01T12:00:00Z",
    ];
    let (t_version, _) = time(runs, || run(&["--version"]));
    let (t_diag, _) = time(runs, || run(&diagnose));
    println!("3. cold start of `k8srule diagnose` on 10 pods, warm cache, median of {runs} runs");
    println!("   k8srule --version   {:>9.1} ms   (baseline: process start)", ms(t_version));
    println!(
        "   k8srule diagnose    {:>9.1} ms   {:.1}x the baseline   target < 100 ms",
        ms(t_diag),
        ms(t_diag) / ms(t_version)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn compile_builtin(runs: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/builtin");
    let files = k8srule_host::test_support::packs::read_rule_files(&dir).unwrap();
    let (t_parse, _) = time(runs, || files.iter().filter(|f| k8srule_dsl::parse::parse(&f.text).1.is_empty()).count());
    let (t_compile, wasm) = time(runs, || k8srule_dsl::compile(&files, "builtin", "1").unwrap());
    println!(
        "4. compiling the {} built-in rule files ({} KB of Wasm), median of {runs} runs",
        files.len(),
        wasm.len() / 1024
    );
    println!("   parse only          {:>9.2} ms   (baseline)", ms(t_parse));
    println!(
        "   compile             {:>9.2} ms   {:.1}x the baseline   target < 100 ms",
        ms(t_compile),
        ms(t_compile) / ms(t_parse)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--phase") {
        return phase(&args[i + 1], &args[i + 2]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(i) = args.iter().position(|a| a == "--live") {
        return live(args[i + 1].parse().unwrap());
    }
    one_rule(if quick { 5 } else { 21 });
    all_rules(if quick { 20_000 } else { 150_000 });
    cold_start(if quick { 5 } else { 21 });
    compile_builtin(if quick { 5 } else { 21 });
    live(if quick { 20_000 } else { 150_000 });
}
