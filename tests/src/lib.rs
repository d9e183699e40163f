//! Helpers for the end-to-end tests in `tests/tests/it/`.

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `k8srule diagnose -o json` with `args`, at `now`: the report, after
/// asserting it ran with exit 0.
pub fn diagnose_json(now: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["diagnose", "--now", now, "-o", "json"];
    all.extend(args);
    let (code, out, err) = k8srule(&all);
    assert_eq!(code, 0, "{err}\n{out}");
    serde_json::from_str(&out).unwrap()
}

/// The findings of `pod` (`namespace/name`) in a JSON report.
pub fn findings_of<'r>(report: &'r serde_json::Value, pod: &str) -> Vec<&'r serde_json::Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["pod"] == pod).collect()
}

/// Runs the `k8srule` command line in-process: exit code, stdout, stderr.
pub fn k8srule(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("k8srule").chain(args.iter().copied());
    let code = k8srule_host::run_cli(argv, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

/// A component from WebAssembly text of a core module exporting `describe`,
/// `evaluate`, `memory` and `cabi_realloc`.
pub fn component_from_wat(wat: &str) -> Vec<u8> {
    let module = wat::parse_str(wat).expect("valid wat");
    k8srule_dsl::component::componentize(module).expect("componentizes")
}

/// A core module in WebAssembly text that implements the contract's exports
/// with `evaluate_body` as the body of `evaluate`; its `describe` declares
/// nothing (an all-zero `plugin-info`). For hostile-pack tests.
pub fn hostile_wat(evaluate_body: &str, memory_pages: u32) -> String {
    hostile_pack_wat("(i32.const 1024)", evaluate_body, memory_pages)
}

/// As [`hostile_wat`], with `describe_body` as the body of `describe` (which
/// has an i32 local `$i`): it returns the address of a `plugin-info`, whose
/// lists are (address, length) pairs at 1024 + 16 (rules), + 24
/// (collections), + 32 (inputs) and + 40 (literals).
pub fn hostile_pack_wat(describe_body: &str, evaluate_body: &str, memory_pages: u32) -> String {
    let iface = k8srule_dsl::component::INTERFACE;
    format!(
        r#"(module
  (memory (export "memory") {memory_pages})
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1))) (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (block $ok (loop $grow
      (br_if $ok (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
      (br $grow)))
    (local.get $p))
  (func (export "{iface}#describe") (result i32) (local $i i32)
    {describe_body})
  (func $recurse (param i32) (result i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "{iface}#evaluate") (param i32 i64 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    {evaluate_body})
)"#
    )
}

/// WebAssembly text storing the bytes of `text` at `address`.
pub fn wat_bytes(address: u32, text: &str) -> String {
    text.bytes()
        .enumerate()
        .map(|(i, b)| format!("(i32.store8 (i32.const {}) (i32.const {b}))", address as usize + i))
        .collect()
}

/// A `describe` body declaring `n` rules, all with id `r` and every other
/// field zero (texts empty lists), at 8192 (a `rule-info` is 100 bytes).
pub fn describe_rules(n: u32) -> String {
    format!(
        "{} (i32.store (i32.const 1040) (i32.const 8192)) (i32.store (i32.const 1044) (i32.const {n}))
        (block $done (loop $l (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
          (i32.store (i32.add (i32.const 8192) (i32.mul (local.get $i) (i32.const 100))) (i32.const 512))
          (i32.store (i32.add (i32.const 8196) (i32.mul (local.get $i) (i32.const 100))) (i32.const 1))
          (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
        (i32.const 1024)",
        wat_bytes(512, "r")
    )
}

/// An `evaluate` body returning `findings`, each (case, rule, container)
/// with no arguments, written at 65536 (a `finding` is 24 bytes).
pub fn evaluate_findings(findings: &[(u32, u32, Option<u32>)]) -> String {
    let mut body = String::new();
    for (i, (case, rule, container)) in findings.iter().enumerate() {
        let at = 65536 + 24 * i;
        body += &format!(
            "(i32.store (i32.const {at}) (i32.const {case})) (i32.store (i32.const {}) (i32.const {rule}))",
            at + 4
        );
        if let Some(c) = container {
            body += &format!(
                "(i32.store8 (i32.const {}) (i32.const 1)) (i32.store (i32.const {}) (i32.const {c}))",
                at + 8,
                at + 12
            );
        }
    }
    body + &format!(
        "(i32.store (i32.const 2048) (i32.const 65536)) (i32.store (i32.const 2052) (i32.const {})) (i32.const 2048)",
        findings.len()
    )
}
/// A component of `world` in `wit` (which may add imports or change the
/// version) from a core module in WebAssembly text.
pub fn component_with_wit(wat: &str, wit: &[&str], world: &str) -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
    let mut module = wat::parse_str(wat).expect("valid wat");
    let mut resolve = wit_parser::Resolve::default();
    let mut last = None;
    for (i, text) in wit.iter().enumerate() {
        last = Some(resolve.push_str(format!("{i}.wit"), text).expect("valid wit"));
    }
    let world = resolve.select_world(&[last.expect("some wit")], Some(world)).expect("world exists");
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).expect("embeds");
    ComponentEncoder::default().module(&module).expect("module").validate(true).encode().expect("encodes")
}

/// A Kubernetes API server emulator (`tests/kube-api/server.py`) on loopback,
/// with a kubeconfig that points at it; stopped when dropped.
pub struct KubeApi {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    dir: tempfile::TempDir,
}

impl KubeApi {
    /// Starts the emulator on `data` (a directory of JSON objects and lists)
    /// with more options, e.g. `["--forbid", "nodes"]`.
    pub fn start(data: &std::path::Path, args: &[&str]) -> KubeApi {
        use std::io::BufRead;
        let script = root().join("tests/kube-api/server.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args(["--port", "0", "--data"])
            .arg(data)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("python3 runs tests/kube-api/server.py");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("the emulator prints its address");
        let url = line.trim().strip_prefix("listening on ").expect("a `listening on` line").to_string();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: emu, cluster: {{server: \"{url}\"}}}}]\n\
             users: [{{name: emu, user: {{}}}}]\n\
             contexts: [{{name: emu, context: {{cluster: emu, user: emu, namespace: shop}}}}]\n\
             current-context: emu\n"
        );
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("writes the kubeconfig");
        KubeApi { child, url, dir }
    }

    /// The kubeconfig file, whose current context `emu` has namespace `shop`.
    pub fn kubeconfig(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }

    /// Every API request so far (`method`, `path`, `params`, `status`, ...).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let v = self.call("GET", "/_requests", None);
        v.as_array().cloned().expect("a list of requests")
    }

    /// `GET` of a control endpoint such as `/_objects` (every stored object).
    pub fn get(&self, path: &str) -> serde_json::Value {
        self.call("GET", path, None)
    }

    /// `POST` of a JSON body to a control endpoint such as `/_objects` or `/_delete`.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        self.call("POST", path, Some(body))
    }

    fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> serde_json::Value {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connects to the emulator");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("sends the request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("reads the response");
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2"), "{method} {path}: {head}\n{body}");
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        serde_json::from_str(&body).expect("a JSON answer")
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A writer that several threads can read while the command line writes to it.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the command line in-process on another thread, its output readable
/// while it runs: the thread (joining gives the exit code), stdout, stderr.
pub fn k8srule_background(args: &[&str]) -> (std::thread::JoinHandle<u8>, SharedBuf, SharedBuf) {
    let (out, err) = (SharedBuf::default(), SharedBuf::default());
    let argv: Vec<String> = std::iter::once("k8srule").chain(args.iter().copied()).map(str::to_string).collect();
    let (mut o, mut e) = (out.clone(), err.clone());
    let handle = std::thread::spawn(move || k8srule_host::run_cli(argv, &mut o, &mut e));
    (handle, out, err)
}

/// Waits until `cond` holds, up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}
pub mod fuzz;
