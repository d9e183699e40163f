//! Packs in OCI registries, against the real `docker-registry` (distribution)
//! on loopback: anonymous, htpasswd Basic and token auth (a token issuer in
//! the test signing JWTs with a test key), credentials from files and helpers
//! and only to their registry's origin, the pull cache and `--offline`, a
//! private CA, and `skopeo` reading and copying what k8srule pushed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8srule_host::test_support::packs;
use k8srule_tests::{k8srule, wait_for};

use crate::packs::{RULES, json, pack_dir, s};

const USER: &str = "ada";
const PASSWORD: &str = "s3cret";
/// bcrypt of PASSWORD (cost 4), as `htpasswd -B` writes it.
const HTPASSWD: &str = "ada:$2b$04$ywJjWS.aTg3OVE3YE4Qz7.rzQYKPD.KOioj4bQrnyGFrNts1V6tqK\n";
const SERVICE: &str = "k8srule-test-registry";
const ISSUER: &str = "k8srule-test-issuer";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A request a [`Server`] got.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
}

type Handler = dyn Fn(&Request, u16) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// A small HTTP/1.1 server on a thread that records every request and
/// answers with `handler(request, own port)`.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(bind: &str, handler: Box<Handler>) -> Server {
        let listener = TcpListener::bind((bind, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &*handler, &seen, port);
            }
        });
        Server { port, requests, stop }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>, port: u16) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request = Request { method, target, headers };
    seen.lock().unwrap().push(request.clone());
    let (status, headers, body) = handler(&request, port);
    let mut out = stream;
    write!(out, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len())?;
    for (k, v) in headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    out.write_all(b"\r\n")?;
    out.write_all(&body)?;
    out.flush()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// How a [`Registry`] authenticates.
enum Auth {
    Anonymous,
    Htpasswd,
    /// `auth: token` with this realm and the issuer's certificate.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

/// A `docker-registry` on loopback, stopped when dropped; its access log is kept.
struct Registry {
    child: Child,
    port: u16,
    storage: tempfile::TempDir,
}

impl Registry {
    fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, "")
    }

    /// `http` is more YAML under `http:` (tls, host).
    fn start_with(auth: Auth, http: &str) -> Registry {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(bin.exists(), "the OCI tests need {} (apt-get install docker-registry)", bin.display());
        let storage = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let auth = match auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd => {
                let file = storage.path().join("htpasswd");
                std::fs::write(&file, HTPASSWD).unwrap();
                format!("auth:\n  htpasswd:\n    realm: k8srule-test\n    path: {}\n", file.display())
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n{auth}http:\n  addr: 127.0.0.1:{port}\n{http}",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let log = storage.path().join("registry.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry { child, port, storage };
        assert!(
            wait_for(20, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "docker-registry listens on 127.0.0.1:{port}: {}",
            registry.log()
        );
        registry
    }

    fn reference(&self, repo: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo}", self.port)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The stored data of a blob.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.storage.path().join("registry.log")).unwrap_or_default()
    }

    /// The access log's requests that match `method path-prefix`.
    fn requests(&self, method: &str, prefix: &str) -> usize {
        self.log().lines().filter(|l| l.contains(&format!("\"{method} {prefix}"))).count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A built demo pack in `tmp`: its file, bytes and digest, and the pods file.
fn demo_pack(tmp: &Path) -> (PathBuf, String, String) {
    let dir = pack_dir(tmp, ">=0.1.0");
    let wasm = tmp.join("demo-1.2.0.wasm");
    let (code, _, err) = k8srule(&["pack", "build", &s(&dir), "-o", &s(&wasm)]);
    assert_eq!(code, 0, "{err}");
    let digest = packs::manifest::digest(&std::fs::read(&wasm).unwrap());
    (wasm, digest, s(&tmp.join("pods.json")))
}

/// The manifest digest `pack push` printed.
fn pushed_digest(out: &str) -> String {
    out.split('@').nth(1).and_then(|r| r.split_whitespace().next()).unwrap().to_string()
}

/// Pushes, pulls by tag and by digest (same bytes), and diagnoses with
/// `--rules oci://` by tag and digest; `extra` are the registry flags.
fn round_trip(registry: &Registry, tmp: &Path, extra: &[&str]) -> String {
    let (wasm, digest, pods) = demo_pack(tmp);
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(extra);
        k8srule(&all)
    };
    let tagged = registry.reference("team/demo:1.2.0");
    let (code, out, err) = with(&["pack", "push", &s(&wasm), &tagged]);
    assert_eq!(code, 0, "{err}\n{}", registry.log());
    let manifest_digest = pushed_digest(&out);
    // one digest: the manifest's, which an oci:// reference takes (the file's is another)
    assert!(manifest_digest.starts_with("sha256:") && !out.contains(&digest), "{out}");
    let pinned = registry.reference(&format!("team/demo@{manifest_digest}"));
    assert!(out.ends_with(&format!("\npin it: --rules {pinned}\n")), "{out}");
    let by_digest = registry.reference(&format!("team/demo@{manifest_digest}"));
    for (i, reference) in [&tagged, &by_digest].into_iter().enumerate() {
        let pulled = tmp.join(format!("pulled-{i}.wasm"));
        let (code, out, err) = with(&["pack", "pull", reference, "-o", &s(&pulled)]);
        assert_eq!(code, 0, "{reference}: {err}");
        assert_eq!(packs::manifest::digest(&std::fs::read(&pulled).unwrap()), digest);
        assert!(out.contains(&format!("--rules {}@{digest}", pulled.display())), "{out}");
        let cache = s(&tmp.join(format!("cache-{i}")));
        let (code, out, err) =
            with(&["diagnose", "-f", &pods, "--no-builtin", "--cache-dir", &cache, "--rules", reference]);
        assert_eq!(code, 0, "{reference}: {err}");
        assert!(out.contains("container app is boom"), "{out}");
    }
    manifest_digest
}

#[test]
fn an_anonymous_registry_round_trips_a_pack_pulled_once_and_offline() {
    let registry = Registry::start(Auth::Anonymous);
    let tmp = tempfile::tempdir().unwrap();
    let manifest_digest = round_trip(&registry, tmp.path(), &[]);
    let (wasm, digest, pods) = demo_pack(tmp.path());
    let tagged = registry.reference("team/demo:1.2.0");

    // pulled once: a second run resolves the tag (HEAD) and downloads nothing
    let cache = s(&tmp.path().join("cache"));
    let diagnose = |extra: &[&str]| {
        let mut args = vec!["diagnose", "-f", &pods, "--no-builtin", "--cache-dir", &cache, "--rules", &tagged];
        args.extend_from_slice(extra);
        k8srule(&args)
    };
    let blob_gets = || registry.requests("GET", "/v2/team/demo/blobs/");
    let manifest_gets = || registry.requests("GET", "/v2/team/demo/manifests/");
    let (code, _, err) = diagnose(&[]);
    assert_eq!(code, 0, "{err}");
    let (blobs, manifests, heads) =
        (blob_gets(), manifest_gets(), registry.requests("HEAD", "/v2/team/demo/manifests/"));
    let (code, out, err) = diagnose(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("container app is boom"), "{out}");
    assert_eq!(
        (blob_gets(), manifest_gets()),
        (blobs, manifests),
        "no download on the second run:\n{}",
        registry.log()
    );
    assert_eq!(registry.requests("HEAD", "/v2/team/demo/manifests/"), heads + 1, "the tag is resolved each run");

    // a cached pack that was tampered with is downloaded again, not used
    let cached = tmp.path().join("cache/oci/blobs/sha256").join(digest.trim_start_matches("sha256:"));
    std::fs::write(&cached, b"not the pack").unwrap();
    let (code, _, err) = diagnose(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(blob_gets(), blobs + 1);
    assert_eq!(packs::manifest::digest(&std::fs::read(&cached).unwrap()), digest);

    // --offline with the registry stopped: the digest the tag last resolved to, said so
    drop(registry);
    let (code, out, err) = diagnose(&["--offline", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let notes = json(&out)["notes"].to_string();
    assert!(
        notes.contains(&format!("--offline: {tagged} is {manifest_digest}, the digest it resolved to at ")),
        "{notes}"
    );
    assert_eq!(json(&out)["findings"].as_array().map(Vec::len), Some(4), "{out}");
    // a tag never pulled, and without --offline an unreachable registry, are errors
    let other = tagged.replace(":1.2.0", ":2.0.0");
    let (code, out, err) = k8srule(&["diagnose", "-f", &pods, "--cache-dir", &cache, "--rules", &other, "--offline"]);
    assert_eq!(code, 3, "{err}");
    assert!(out.contains(&format!("{other}: --offline: this tag was never pulled into the cache")), "{out}");
    let (code, out, err) = diagnose(&[]);
    assert_eq!(code, 3, "{err}");
    assert!(out.contains(&format!("pack `{tagged}`")), "{out}");
    assert!(wasm.exists());
}

#[test]
fn a_pack_whose_blob_was_tampered_with_or_that_is_not_a_pack_is_refused() {
    let registry = Registry::start(Auth::Anonymous);
    let tmp = tempfile::tempdir().unwrap();
    let (wasm, digest, _) = demo_pack(tmp.path());
    let tagged = registry.reference("team/demo:1.2.0");
    assert_eq!(k8srule(&["pack", "push", &s(&wasm), &tagged]).0, 0);
    let out = tmp.path().join("out.wasm");
    let unknown = registry.reference(&format!("team/demo@sha256:{}", "a".repeat(64)));
    let (code, _, err) = k8srule(&["pack", "pull", &unknown, "-o", &s(&out)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("404"), "{err}");
    // the pack file's digest where the manifest's belongs: named as such
    let layer = registry.reference(&format!("team/demo@{digest}"));
    let (code, _, err) = k8srule(&["pack", "pull", &layer, "-o", &s(&out)]);
    assert_eq!(code, 2, "{err}");
    let said = format!("{digest} is the digest of the pack file, not of its OCI manifest: `oci://...@sha256:` takes");
    assert!(err.contains(&said), "{err}");
    let blob = registry.blob(&digest);
    let mut stored = std::fs::read(&blob).unwrap();
    let last = stored.len() - 1;
    stored[last] ^= 1;
    std::fs::write(&blob, &stored).unwrap();
    let (code, _, err) = k8srule(&["pack", "pull", &tagged, "-o", &s(&out)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("digest mismatch") && err.contains(&format!("expected {digest}")), "{err}");
    assert!(!out.exists());

    let bare = tmp.path().join("bare.wasm");
    std::fs::write(
        &bare,
        k8srule_dsl::compile(&[k8srule_dsl::SourceFile::new("b.k8srule", RULES)], "b", "0.1.0").unwrap(),
    )
    .unwrap();
    let (code, _, err) = k8srule(&["pack", "push", &s(&bare), &registry.reference("team/bare:1")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no pack manifest"), "{err}");
    let (code, _, err) = k8srule(&["pack", "push", &s(&wasm), &registry.reference("Team/demo:1")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not an OCI reference"), "{err}");

    // a tag pointing at a pack for another k8srule (pushed by another client) is refused, versions named
    let mut future =
        k8srule_dsl::compile(&[k8srule_dsl::SourceFile::new("b.k8srule", RULES)], "demo", "9.0.0").unwrap();
    let manifest: packs::Manifest = serde_json::from_value(serde_json::json!({
        "name": "demo", "version": "9.0.0", "k8srule": ">=99.0.0", "wit": packs::manifest::wit_version(),
    }))
    .unwrap();
    packs::manifest::embed(&mut future, &manifest, None);
    let reference =
        k8srule_host::test_support::registry::Reference::parse(&registry.reference("team/demo:9.0.0")).unwrap();
    let client = k8srule_host::test_support::registry::Client::new(
        reference,
        k8srule_host::test_support::registry::Access::Push,
        &Default::default(),
    )
    .unwrap();
    client.push(&future, &serde_json::to_vec(&manifest).unwrap(), "demo-9.0.0.wasm").unwrap();
    let pods = s(&tmp.path().join("pods.json"));
    let (code, out, err) =
        k8srule(&["diagnose", "-f", &pods, "--no-cache", "--rules", &registry.reference("team/demo:9.0.0")]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("pack `demo 9.0.0` requires k8srule >=99.0.0; this is k8srule 0.1.0"), "{out}");
}

#[test]
fn an_htpasswd_registry_takes_the_credentials_pack_login_saved() {
    let registry = Registry::start(Auth::Htpasswd);
    let tmp = tempfile::tempdir().unwrap();
    let (wasm, _, _) = demo_pack(tmp.path());
    let config = tmp.path().join("docker/config.json");
    let flags = ["--registry-config", &s(&config)];
    let tagged = registry.reference("team/demo:1.2.0");
    let (code, _, err) = k8srule(&[&["pack", "push", &s(&wasm), &tagged][..], &flags].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 401") && err.contains("k8srule pack login"), "{err}");

    let host = registry.host();
    let login = |password: &str| k8srule(&[&["pack", "login", &host, "-u", USER, "-p", password][..], &flags].concat());
    let (code, _, err) = login("wrong");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!config.exists(), "nothing saved for a refused login");
    let (code, out, err) = login(PASSWORD);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("logged in to {host}; credentials saved in {}", config.display())), "{out}");
    let saved = json(&std::fs::read_to_string(&config).unwrap());
    assert_eq!(saved["auths"][&host]["auth"], STANDARD.encode(format!("{USER}:{PASSWORD}")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    }

    round_trip(&registry, tmp.path(), &flags);

    let (code, out, err) = k8srule(&[&["pack", "logout", &host][..], &flags].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed the credentials"), "{out}");
    let (code, _, err) =
        k8srule(&[&["pack", "pull", &tagged, "-o", &s(&tmp.path().join("x.wasm"))][..], &flags].concat());
    assert_eq!(code, 2, "{err}");
}

/// The token issuer: signs RS256 JWTs with a key made here, whose
/// certificate the registry trusts. Anonymous callers get `pull` only; the
/// first token it issues is for the wrong audience when `first_bad`.
struct Issuer {
    server: Server,
    cert: PathBuf,
}

impl Issuer {
    fn start(dir: &Path, first_bad: bool) -> Issuer {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "1",
                "-subj",
                "/CN=k8srule-test-token",
            ],
        );
        openssl(dir, &["x509", "-in", "token.pem", "-outform", "DER", "-out", "token.der"]);
        let der = STANDARD.encode(std::fs::read(dir.join("token.der")).unwrap());
        let key = dir.join("token.key");
        let issued = AtomicUsize::new(0);
        let dir2 = dir.to_path_buf();
        let handler = move |r: &Request, _: u16| {
            let query: HashMap<String, String> = r
                .target
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), percent_decode(v)))
                .collect();
            let authenticated = match r.headers.get("authorization") {
                None => false,
                Some(a) if *a == format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}"))) => true,
                Some(_) => return (401, vec![], b"{\"details\":\"bad credentials\"}".to_vec()),
            };
            let access: Vec<serde_json::Value> = query
                .get("scope")
                .and_then(|scope| {
                    let mut parts = scope.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    let granted: Vec<&str> = actions.split(',').filter(|a| authenticated || *a == "pull").collect();
                    Some(vec![serde_json::json!({"type": kind, "name": name, "actions": granted})])
                })
                .unwrap_or_default();
            let n = issued.fetch_add(1, Ordering::SeqCst);
            let audience = if first_bad && n == 0 { "someone-else" } else { SERVICE };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [der]});
            let claims = serde_json::json!({
                "iss": ISSUER, "sub": if authenticated { USER } else { "" }, "aud": audience,
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("t{n}"), "access": access,
            });
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let file = dir2.join(format!("input-{n}"));
            std::fs::write(&file, &input).unwrap();
            let signed =
                Command::new("openssl").args(["dgst", "-sha256", "-sign"]).arg(&key).arg(&file).output().unwrap();
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signed.stdout));
            let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
            (200, vec![("Content-Type".into(), "application/json".into())], body.into_bytes())
        };
        Issuer { server: Server::start("127.0.0.1", Box::new(handler)), cert: dir.join("token.pem") }
    }

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port)
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_token_auth_registry_gets_scoped_tokens_anonymous_or_with_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let issuer = Issuer::start(tmp.path(), true);
    let registry = Registry::start(Auth::Token { realm: issuer.realm(), cert: issuer.cert.clone() });
    let (wasm, _, _) = demo_pack(tmp.path());
    let tagged = registry.reference("team/demo:1.2.0");
    let config = tmp.path().join("auth.json");
    let flags = ["--registry-config", &s(&config)];

    // a podman auth.json: Basic credentials to the token service; the first
    // token is refused by the registry, so the 401 is answered with a new one,
    // which serves the rest of the push
    std::fs::write(
        &config,
        serde_json::json!({"auths": {registry.host(): {"auth": STANDARD.encode(format!("{USER}:{PASSWORD}"))}}})
            .to_string(),
    )
    .unwrap();
    let (code, _, err) = k8srule(&[&["pack", "push", &s(&wasm), &tagged][..], &flags].concat());
    assert_eq!(code, 0, "{err}\n{}", registry.log());
    let tokens = issuer.server.requests();
    assert_eq!(tokens.len(), 2, "one refused token, then one for the whole push: {tokens:?}");
    assert!(
        tokens.iter().all(|r| r.headers.get("authorization").is_some_and(|a| a.starts_with("Basic "))
            && r.target.contains(&format!("service={SERVICE}"))
            && r.target.contains("scope=repository%3Ateam%2Fdemo%3Apull%2Cpush")),
        "{tokens:?}"
    );
    round_trip(&registry, tmp.path(), &flags);

    // anonymous: a token with pull only, so a push is refused
    let anonymous = ["--registry-config", &s(&tmp.path().join("none.json"))];
    let before = issuer.server.requests().len();
    let (code, _, err) = k8srule(&[&["pack", "push", &s(&wasm), &tagged][..], &anonymous].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    let tokens = &issuer.server.requests()[before..];
    assert!(!tokens.is_empty() && tokens.iter().all(|r| !r.headers.contains_key("authorization")), "{tokens:?}");

    // anonymous pulls work: the issuer grants pull to anyone
    let (code, _, err) =
        k8srule(&[&["pack", "pull", &tagged, "-o", &s(&tmp.path().join("anon.wasm"))][..], &anonymous].concat());
    assert_eq!(code, 0, "{err}");
}

/// A `docker-credential-test` on a directory to put on PATH: answers `get`
/// for `host` (unless `$EMPTY` is set) and logs every call (action and stdin)
/// to `calls.log`.
fn credential_helper(dir: &Path, host: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("docker-credential-test");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nin=$(cat)\necho \"$1 $in\" >> {log}\nif [ \"$1\" = get ] && [ -z \"$EMPTY\" ] && [ \"$in\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$in\"\n  exit 0\nfi\nif [ \"$1\" = get ]; then echo 'credentials not found in native keychain'; exit 1; fi\nexit 0\n",
            log = dir.join("calls.log").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// The command line as a process with its own environment.
fn k8srule_with_env(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_k8srule-cli"));
    cmd.args(args).stdin(Stdio::null()).env_remove("DOCKER_CONFIG").env_remove("REGISTRY_AUTH_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn credentials_come_from_cred_helpers_creds_store_and_the_files_docker_and_podman_write() {
    let registry = Registry::start(Auth::Htpasswd);
    let tmp = tempfile::tempdir().unwrap();
    let (wasm, digest, _) = demo_pack(tmp.path());
    let host = registry.host();
    let bin = credential_helper(tmp.path(), &host);
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let path = PathBuf::from(path);
    let home = tmp.path().join("home");
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let tagged = registry.reference("team/demo:1.2.0");
    let calls = tmp.path().join("calls.log");
    let base: [(&str, &Path); 2] = [("PATH", &path), ("HOME", &home)];

    // credHelpers for this registry, in $DOCKER_CONFIG/config.json
    std::fs::write(docker.join("config.json"), serde_json::json!({"credHelpers": {&host: "test"}}).to_string())
        .unwrap();
    let (code, out, err) =
        k8srule_with_env(&["pack", "push", &s(&wasm), &tagged], &[base[0], base[1], ("DOCKER_CONFIG", &docker)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pin it: --rules oci://"), "{out}");
    assert!(std::fs::read_to_string(&calls).unwrap().contains(&format!("get {host}")));

    // credsStore for every registry; an unknown registry is "not found", which is no credentials
    std::fs::write(docker.join("config.json"), r#"{"credsStore": "test", "auths": {}}"#).unwrap();
    std::fs::remove_file(&calls).unwrap();
    let pulled = tmp.path().join("pulled.wasm");
    let (code, _, err) = k8srule_with_env(
        &["pack", "pull", &tagged, "-o", &s(&pulled)],
        &[base[0], base[1], ("DOCKER_CONFIG", &docker)],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(packs::manifest::digest(&std::fs::read(&pulled).unwrap()), digest);
    assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().collect::<Vec<_>>(), [format!("get {host}")]);

    // login with a credsStore stores through the helper, as `docker login` does
    let (code, out, err) = k8srule_with_env(
        &["pack", "login", &host, "-u", USER, "-p", PASSWORD],
        &[base[0], base[1], ("DOCKER_CONFIG", &docker)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("credentials saved in docker-credential-test"), "{out}");
    let stored = std::fs::read_to_string(&calls).unwrap();
    assert!(stored.contains("store {") && stored.contains(&format!("\"ServerURL\":\"{host}\"")), "{stored}");

    // podman's auth.json: $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json
    let auth =
        serde_json::json!({"auths": {&host: {"auth": STANDARD.encode(format!("{USER}:{PASSWORD}"))}}}).to_string();
    let file = tmp.path().join("auth.json");
    std::fs::write(&file, &auth).unwrap();
    // after a Docker config whose credsStore has nothing for this registry
    std::fs::write(docker.join("config.json"), r#"{"credsStore": "test"}"#).unwrap();
    std::fs::write(&calls, "").unwrap();
    let (code, _, err) = k8srule_with_env(
        &["pack", "pull", &tagged, "-o", &s(&pulled)],
        &[base[0], base[1], ("REGISTRY_AUTH_FILE", &file), ("DOCKER_CONFIG", &docker), ("EMPTY", Path::new("1"))],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().collect::<Vec<_>>(), [format!("get {host}")]);
    let runtime = tmp.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).unwrap();
    std::fs::write(runtime.join("containers/auth.json"), &auth).unwrap();
    let (code, _, err) = k8srule_with_env(
        &["pack", "pull", &tagged, "-o", &s(&pulled)],
        &[base[0], base[1], ("XDG_RUNTIME_DIR", &runtime)],
    );
    assert_eq!(code, 0, "{err}");
    // and nowhere: refused
    let (code, _, err) = k8srule_with_env(&["pack", "pull", &tagged, "-o", &s(&pulled)], &base);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    // a helper that fails is an error naming it
    std::fs::write(docker.join("config.json"), r#"{"credsStore": "missing"}"#).unwrap();
    let (code, _, err) = k8srule_with_env(
        &["pack", "pull", &tagged, "-o", &s(&pulled)],
        &[base[0], base[1], ("DOCKER_CONFIG", &docker)],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("docker-credential-missing: cannot run it"), "{err}");
}

#[test]
fn credentials_go_only_to_the_registrys_own_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let (wasm, _, _) = demo_pack(tmp.path());
    let config = tmp.path().join("config.json");
    let basic = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let elsewhere = Server::start("127.0.0.1", Box::new(|_, _| (201, vec![], Vec::new())));

    // an upload Location on another host: the PUT there has no Authorization
    let registry = Registry::start_with(Auth::Htpasswd, &format!("  host: http://127.0.0.1:{}\n", elsewhere.port));
    let host = registry.host();
    std::fs::write(
        &config,
        serde_json::json!({"auths": {&host: {"auth": STANDARD.encode(format!("{USER}:{PASSWORD}"))}}}).to_string(),
    )
    .unwrap();
    let flags = ["--registry-config", &s(&config)];
    let (code, _, _) =
        k8srule(&[&["pack", "push", &s(&wasm), &registry.reference("team/demo:1")][..], &flags].concat());
    assert_eq!(code, 2, "the blobs went elsewhere, so the manifest is refused");
    let puts: Vec<Request> = elsewhere.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert!(!puts.is_empty(), "the upload went to the Location the registry gave");
    assert!(puts.iter().all(|r| !r.headers.contains_key("authorization")), "{puts:?}");
    assert!(registry.requests("POST", "/v2/team/demo/blobs/uploads/") > 0);

    // a blob redirected to storage elsewhere: the GET there has no Authorization
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.k8srule.pack.config.v1+json", "digest": format!("sha256:{}", "0".repeat(64)), "size": 2},
        "layers": [{"mediaType": "application/vnd.k8srule.pack.v1.wasm", "digest": format!("sha256:{}", "1".repeat(64)), "size": 4}],
    })
    .to_string();
    let storage_port = elsewhere.port;
    let want = basic.clone();
    let fake = Server::start(
        "127.0.0.1",
        Box::new(move |r, _| {
            if r.headers.get("authorization") != Some(&want) {
                return (401, vec![("WWW-Authenticate".into(), "Basic realm=\"x\"".into())], Vec::new());
            }
            if r.target.contains("/blobs/") {
                let to = format!("http://127.0.0.1:{storage_port}/storage/blob?sig=1");
                return (307, vec![("Location".into(), to)], Vec::new());
            }
            (
                200,
                vec![("Content-Type".into(), "application/vnd.oci.image.manifest.v1+json".into())],
                manifest.clone().into_bytes(),
            )
        }),
    );
    let fake_host = format!("127.0.0.1:{}", fake.port);
    std::fs::write(
        &config,
        serde_json::json!({"auths": {&fake_host: {"auth": STANDARD.encode(format!("{USER}:{PASSWORD}"))}}}).to_string(),
    )
    .unwrap();
    let reference = format!("oci://{fake_host}/team/demo:1");
    let (code, _, err) = k8srule(
        &[&["pack", "pull", &reference, "-o", &s(&tmp.path().join("x.wasm")), "--plain-http"][..], &flags].concat(),
    );
    assert_eq!(code, 2, "{err}");
    let storage: Vec<Request> =
        elsewhere.requests().into_iter().filter(|r| r.target.starts_with("/storage/")).collect();
    assert_eq!(storage.len(), 1, "{:?}", elsewhere.requests());
    assert!(!storage[0].headers.contains_key("authorization"), "{storage:?}");
    assert!(fake.requests().iter().any(|r| r.headers.get("authorization") == Some(&basic)));
    // plain http with credentials to a host that is not loopback is refused before
    // anything is sent: oci::tests::credentials_never_go_over_plain_http_beyond_loopback
}

#[test]
fn a_registry_behind_a_private_ca_needs_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=k8srule test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    let registry = Registry::start_with(
        Auth::Anonymous,
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
    );
    let (wasm, digest, pods) = demo_pack(dir);
    let tagged = registry.reference("team/demo:1.2.0");
    let (code, _, err) = k8srule(&["pack", "push", &s(&wasm), &tagged]);
    assert_eq!(code, 2, "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let ca = ["--ca-file", &s(&dir.join("ca.pem"))];
    let (code, _, err) = k8srule(&[&["pack", "push", &s(&wasm), &tagged][..], &ca].concat());
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        k8srule(&[&["diagnose", "-f", &pods, "--no-builtin", "--no-cache", "--rules", &tagged][..], &ca].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("container app is boom"), "{out}");
    let (code, out, err) = k8srule(&["diagnose", "-f", &pods, "--no-cache", "--rules", &tagged]);
    assert_eq!(code, 3, "{err}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    let (code, _, err) = k8srule(
        &[&["pack", "pull", &tagged, "-o", &s(&dir.join("p.wasm"))][..], &["--ca-file", &s(&dir.join("san.ext"))]]
            .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("san.ext: no PEM certificate in it"), "{err}");
    assert_eq!(packs::manifest::digest(&std::fs::read(&wasm).unwrap()), digest);
}

#[test]
fn skopeo_reads_and_copies_a_pack_that_k8srule_pulls_back_by_digest() {
    let registry = Registry::start(Auth::Anonymous);
    let tmp = tempfile::tempdir().unwrap();
    let (wasm, digest, _) = demo_pack(tmp.path());
    let tagged = registry.reference("team/demo:1.2.0");
    let (code, out, err) = k8srule(&["pack", "push", &s(&wasm), &tagged]);
    assert_eq!(code, 0, "{err}");
    let manifest_digest = pushed_digest(&out);
    let skopeo = |args: &[&str]| {
        let out = Command::new("skopeo").args(args).output().expect("skopeo runs (apt-get install skopeo)");
        assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let source = format!("docker://{}/team/demo:1.2.0", registry.host());
    let raw = json(&skopeo(&["inspect", "--tls-verify=false", "--raw", &source]));
    assert_eq!(raw["config"]["mediaType"], "application/vnd.k8srule.pack.config.v1+json");
    assert_eq!(raw["layers"][0]["mediaType"], "application/vnd.k8srule.pack.v1.wasm");
    assert_eq!(raw["layers"][0]["digest"], digest.as_str());
    let copy = format!("docker://{}/mirror/demo:1.2.0", registry.host());
    skopeo(&["copy", "--src-tls-verify=false", "--dest-tls-verify=false", &source, &copy]);
    let by_digest = registry.reference(&format!("mirror/demo@{manifest_digest}"));
    let pulled = tmp.path().join("copy.wasm");
    let (code, out, err) = k8srule(&["pack", "pull", &by_digest, "-o", &s(&pulled)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&digest), "{out}");
    assert_eq!(std::fs::read(&pulled).unwrap(), std::fs::read(&wasm).unwrap());
}
