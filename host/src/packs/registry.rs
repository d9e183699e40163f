//! Packs in OCI registries, as Kubewarden and Falco distribute theirs: a pack
//! is an OCI image manifest with one config blob (the pack's manifest as JSON,
//! [`CONFIG_MEDIA_TYPE`]) and one layer (the pack file, [`LAYER_MEDIA_TYPE`]),
//! pushed and pulled with the distribution HTTP API (monolithic blob upload:
//! POST then PUT; manifest PUT). Every pulled byte is checked against its digest.
//!
//! Authentication is the registry's: on a `401`, a `Basic` challenge gets the
//! user's credentials ([`crate::packs::credentials`]); a `Bearer` challenge gets a
//! token from its realm (the distribution token flow: `service` and a
//! `repository:NAME:pull` or `pull,push` scope, anonymous or with the
//! credentials), reused until it expires and fetched again on a `401`.
//! Credentials and tokens go only to the registry's own origin (an upload
//! `Location` or a redirect elsewhere gets none) and to the token realm the
//! registry names, and never over plain http to a host that is not loopback.
//! https verifies with the system's trust store, or with it and `--ca-file`;
//! a loopback registry that does not speak TLS is spoken to in plain http.
//!
//! Pulls go through a content-addressed cache: a tag is resolved to a digest
//! with a `HEAD`, a manifest and pack already cached (and still matching their
//! digests) are not downloaded again, and `offline` uses the digest a tag last
//! resolved to.

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::packs::credentials::{self, Credentials};
use crate::packs::manifest::{digest, parse_digest};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.k8srule.pack.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.k8srule.pack.v1.wasm";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The largest manifest and pack read from a registry.
const MAX_MANIFEST: u64 = 4 << 20;
const MAX_PACK: u64 = 256 << 20;

/// A pack that cannot be pulled or pushed.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are what the message shows
pub enum OciError {
    /// Not `oci://host[:port]/repository[:tag][@sha256:...]`.
    #[error("`{reference}` is not an OCI reference: {message}")]
    Reference { reference: String, message: String },
    /// The registry cannot be reached, or answered with an error.
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },
    /// A manifest or blob whose content is not the digest it was asked by.
    #[error("{reference}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { reference: String, expected: String, actual: String },
    /// An artifact that is not a k8srule pack (media types, layers).
    #[error("{reference}: not a k8srule pack: {message}")]
    NotAPack { reference: String, message: String },
    /// `--offline`, and the pack is not in the cache.
    #[error("{reference}: --offline: {message}")]
    Offline { reference: String, message: String },
    /// Saved credentials that cannot be read, or a helper that fails.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    /// A `--ca-file` that cannot be read or holds no certificate.
    #[error("--ca-file {path}: {message}")]
    CaFile { path: String, message: String },
}

/// `oci://host[:port]/repository[:tag][@sha256:...]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        let bad = |message: &str| OciError::Reference { reference: text.to_string(), message: message.to_string() };
        let rest = text.strip_prefix("oci://").ok_or_else(|| bad("expected oci://host[:port]/repository[:tag]"))?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| bad("no repository after the registry host"))?;
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => (p, Some(parse_digest(d).map_err(|e| bad(&e.to_string()))?)),
            None => (path, None),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_string())),
            _ => (path, None),
        };
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(bad("the registry host is empty or not a host[:port]"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad("the repository must be lowercase path components (letters, digits, `.`, `_`, `-`)"));
        }
        if let Some(t) = &tag {
            let ok = t.len() <= 128
                && t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad("the tag must be up to 128 letters, digits, `_`, `.` and `-`"));
            }
        }
        Ok(Reference { registry: registry.to_string(), repository: repository.to_string(), tag, digest })
    }

    /// The digest if there is one, else the tag (`latest` by default).
    fn manifest_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    fn loopback(&self) -> bool {
        loopback(&self.registry)
    }

    /// The host the API is at (Docker Hub's is not `docker.io`).
    fn api_host(&self) -> &str {
        if self.docker_hub() { "registry-1.docker.io" } else { &self.registry }
    }

    /// The repository as the API names it (Docker Hub's official images are `library/NAME`).
    fn api_repository(&self) -> String {
        if self.docker_hub() && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }

    fn docker_hub(&self) -> bool {
        matches!(self.registry.as_str(), "docker.io" | "index.docker.io" | "registry-1.docker.io")
    }
}

/// Whether `host[:port]` is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn loopback(host_port: &str) -> bool {
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host_port,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find(['/', '?', '#']).map_or(url.len(), |i| after + i);
    &url[..end]
}

/// `%`-encodes a query value.
fn query_value(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The parameters of a `WWW-Authenticate` challenge: its scheme (lowercase)
/// and `key="value"` pairs (values may hold commas inside quotes).
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.push((key.trim().to_ascii_lowercase(), value.to_string()));
        rest = after;
    }
    (scheme.to_ascii_lowercase(), params)
}

/// How k8srule reaches registries: the `--plain-http`, `--ca-file`,
/// `--registry-config` and `--offline` flags.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// http, not https, for every registry (loopback ones fall back to it anyway).
    pub plain_http: bool,
    /// A PEM file of CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The one file credentials are read from and `login` writes.
    pub registry_config: Option<PathBuf>,
    /// Pull nothing: a tag is the digest it last resolved to, and the pack comes from the cache.
    pub offline: bool,
}

/// What a client may do in a repository: the token scope it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

/// What a pull got.
#[derive(Debug)]
pub struct Pulled {
    pub bytes: Vec<u8>,
    /// The pack file's digest (the layer's).
    pub digest: String,
    pub manifest_digest: String,
    /// Said when the pack came from the cache for `--offline`.
    pub note: Option<String>,
}

/// Redirects followed for one GET or HEAD (blob storage).
const MAX_REDIRECTS: usize = 5;
/// The largest token answer read.
const MAX_TOKEN: u64 = 1 << 20;
/// How long a token lives when the token service does not say (the spec's default).
const DEFAULT_TOKEN_SECONDS: u64 = 60;

/// An Authorization header value for the registry's origin, and when it expires.
struct Authorization {
    header: String,
    expires: Option<Instant>,
}

type Response = ureq::http::Response<ureq::Body>;

/// A registry client for one repository.
pub struct Client {
    agent: ureq::Agent,
    reference: Reference,
    options: Options,
    scope: String,
    /// `https://host[:port]` or `http://...`, decided on the first request.
    origin: OnceCell<String>,
    credentials: OnceCell<Option<Credentials>>,
    authorization: RefCell<Option<Authorization>>,
}

impl Client {
    pub fn new(reference: Reference, access: Access, options: &Options) -> Result<Client, OciError> {
        let roots = match &options.ca_file {
            None => ureq::tls::RootCerts::PlatformVerifier,
            Some(file) => {
                let bad = |message: String| OciError::CaFile { path: file.display().to_string(), message };
                let pem = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
                let mut certs = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
                        certs.push(c);
                    }
                }
                if certs.is_empty() {
                    return Err(bad("no PEM certificate in it".into()));
                }
                // the system's roots too: --ca-file adds a CA, it does not replace them
                let system = rustls_native_certs::load_native_certs().certs;
                certs.extend(system.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()));
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .timeout_global(Some(Duration::from_secs(300)))
            .timeout_connect(Some(Duration::from_secs(15)))
            .build();
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        let scope = format!("repository:{}:{actions}", reference.api_repository());
        Ok(Client {
            agent: config.into(),
            reference,
            options: options.clone(),
            scope,
            origin: OnceCell::new(),
            credentials: OnceCell::new(),
            authorization: RefCell::new(None),
        })
    }

    /// A client that logs in with these credentials (no repository: `GET /v2/`).
    pub fn login(registry: &str, credentials: Credentials, options: &Options) -> Result<(), OciError> {
        let reference = Reference { registry: registry.into(), repository: String::new(), tag: None, digest: None };
        let mut client = Client::new(reference, Access::Pull, options)?;
        client.scope.clear();
        let _ = client.credentials.set(Some(credentials));
        let got = client.call("GET", "/v2/", &[], None)?;
        client.expect("logging in", got, &[200]).map(|_| ())
    }

    fn error(&self, message: String) -> OciError {
        OciError::Registry { reference: self.reference.to_string(), message }
    }

    /// The registry's credentials, looked up once, when it first asks.
    fn credentials(&self) -> Result<Option<&Credentials>, OciError> {
        if let Some(c) = self.credentials.get() {
            return Ok(c.as_ref());
        }
        let found = credentials::lookup(
            &self.reference.registry,
            &self.reference.repository,
            self.options.registry_config.as_deref(),
        )?;
        Ok(self.credentials.get_or_init(|| found).as_ref())
    }

    /// One request as is: no redirect followed, `authorization` if given.
    fn raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<Response, OciError> {
        if authorization.is_some()
            && url.starts_with("http://")
            && !loopback(origin_of(url).trim_start_matches("http://"))
        {
            return Err(
                self.error(format!("refusing to send credentials to {} over plain http; use https", origin_of(url)))
            );
        }
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(auth) = authorization {
            request = request.header("Authorization", auth);
        }
        let sent = match body {
            Some(b) => request.body(b).map(|r| self.agent.run(r)),
            None => request.body(()).map(|r| self.agent.run(r)),
        };
        sent.map_err(|e| self.error(format!("{method} {url}: {e}")))?
            .map_err(|e| self.error(format!("{method} {url}: {e}")))
    }

    /// https, or for a loopback registry that does not speak TLS (or with
    /// `plain_http`) http.
    fn origin(&self) -> Result<&str, OciError> {
        if let Some(o) = self.origin.get() {
            return Ok(o);
        }
        let host = self.reference.api_host();
        let origin = if self.options.plain_http {
            format!("http://{host}")
        } else {
            let https = format!("https://{host}");
            match self.raw("GET", &format!("{https}/v2/"), &[], None, None) {
                Ok(_) => https,
                Err(tls) if self.reference.loopback() => {
                    let http = format!("http://{host}");
                    match self.raw("GET", &format!("{http}/v2/"), &[], None, None) {
                        Ok(r) if matches!(r.status().as_u16(), 200 | 401) => http,
                        _ => return Err(tls),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        Ok(self.origin.get_or_init(|| origin))
    }

    /// A request to the registry (`path` from `/v2/`, or a URL it gave), with
    /// its authorization if the URL is on its origin; GET and HEAD follow
    /// redirects, sending the authorization only to the same origin. A `401`
    /// from the registry is answered once (credentials or a new token).
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, OciError> {
        let origin = self.origin()?.to_string();
        let first = if path.starts_with('/') { format!("{origin}{path}") } else { path.to_string() };
        let mut answered = false;
        loop {
            if self.authorization.borrow().as_ref().is_some_and(|a| a.expires.is_some_and(|t| Instant::now() >= t)) {
                *self.authorization.borrow_mut() = None;
            }
            let mut url = first.clone();
            let mut redirects = 0;
            let response = loop {
                let authorization = (origin_of(&url) == origin)
                    .then(|| self.authorization.borrow().as_ref().map(|a| a.header.clone()))
                    .flatten();
                let response = self.raw(method, &url, headers, body, authorization.as_deref())?;
                let redirect = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308)
                    && matches!(method, "GET" | "HEAD");
                let Some(location) =
                    response.headers().get("location").and_then(|v| v.to_str().ok()).filter(|_| redirect)
                else {
                    break response;
                };
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(self.error(format!("{method} {first}: more than {MAX_REDIRECTS} redirects")));
                }
                url =
                    if location.starts_with('/') { format!("{}{location}", origin_of(&url)) } else { location.into() };
            };
            if response.status() == 401 && !answered && origin_of(&url) == origin {
                let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
                if let Some(challenge) = challenge
                    && self.authenticate(challenge)?
                {
                    answered = true;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// Answers a challenge; false if there is nothing to answer it with.
    fn authenticate(&self, challenge: &str) -> Result<bool, OciError> {
        let (scheme, params) = parse_challenge(challenge);
        let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let authorization = match scheme.as_str() {
            "basic" => match self.credentials()? {
                Some(c) => Authorization { header: c.basic(), expires: None },
                None => return Ok(false),
            },
            "bearer" => {
                let realm = param("realm")
                    .ok_or_else(|| self.error(format!("a Bearer challenge without a realm: {challenge}")))?;
                self.token(realm, param("service"))?
            }
            _ => return Ok(false),
        };
        *self.authorization.borrow_mut() = Some(authorization);
        Ok(true)
    }

    /// A token from the realm for our scope, anonymous or with the credentials.
    fn token(&self, realm: &str, service: Option<&str>) -> Result<Authorization, OciError> {
        if !realm.starts_with("https://") && !realm.starts_with("http://") {
            return Err(self.error(format!("the token realm `{realm}` is not an http(s) URL")));
        }
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", query_value(s)));
        }
        if !self.scope.is_empty() {
            query.push(format!("scope={}", query_value(&self.scope)));
        }
        let url = if query.is_empty() {
            realm.to_string()
        } else {
            format!("{realm}{}{}", if realm.contains('?') { '&' } else { '?' }, query.join("&"))
        };
        let basic = self.credentials()?.map(Credentials::basic);
        let mut response = self.raw("GET", &url, &[], None, basic.as_deref())?;
        let status = response.status().as_u16();
        if status != 200 {
            let who = if basic.is_some() { "with the saved credentials" } else { "anonymously" };
            return Err(self.error(format!(
                "the token service {} answered HTTP {status} {who} for scope `{}`{}",
                origin_of(realm),
                self.scope,
                if basic.is_none() { " (log in with `k8srule pack login`)" } else { "" }
            )));
        }
        let body = self.read("reading a token", &mut response, MAX_TOKEN)?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| self.error(format!("the token service answered with no JSON: {e}")))?;
        let token = answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| self.error("the token service answered with no token".into()))?;
        let seconds = answer["expires_in"].as_u64().filter(|s| *s > 0).unwrap_or(DEFAULT_TOKEN_SECONDS);
        // a little early, so a token does not expire on the way
        let lifetime = Duration::from_secs(seconds.saturating_sub(seconds.min(5)).max(1));
        Ok(Authorization { header: format!("Bearer {token}"), expires: Instant::now().checked_add(lifetime) })
    }

    /// Fails unless the response has one of `ok`; the message carries the registry's error.
    fn expect(&self, what: &str, mut response: Response, ok: &[u16]) -> Result<Response, OciError> {
        let status = response.status().as_u16();
        if ok.contains(&status) {
            return Ok(response);
        }
        let body = response.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
        let detail: String = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let hint = match status {
            401 | 403 => " (log in with `k8srule pack login` or `docker login`)",
            _ => "",
        };
        Err(self.error(format!("{what}: HTTP {status} {}{hint}", detail.trim())))
    }

    fn read(&self, what: &str, response: &mut Response, limit: u64) -> Result<Vec<u8>, OciError> {
        response.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| self.error(format!("{what}: {e}")))
    }

    fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.reference.api_repository())
    }

    /// Uploads a blob unless the repository has it: POST, then a monolithic PUT.
    fn push_blob(&self, bytes: &[u8]) -> Result<String, OciError> {
        let digest = digest(bytes);
        let head = self.call("HEAD", &self.path(&format!("blobs/{digest}")), &[], None)?;
        if head.status() == 200 {
            return Ok(digest);
        }
        let start = self.call("POST", &self.path("blobs/uploads/"), &[], None)?;
        let start = self.expect("starting a blob upload", start, &[202])?;
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error("the registry started an upload without a Location".into()))?;
        let mut url = location.to_string();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let put = self.call("PUT", &url, &[("Content-Type", "application/octet-stream")], Some(bytes))?;
        self.expect(&format!("uploading blob {digest}"), put, &[201])?;
        Ok(digest)
    }

    /// Pushes a pack file; `config` is its manifest as JSON. Returns the manifest's digest.
    pub fn push(&self, pack: &[u8], config: &[u8], title: &str) -> Result<String, OciError> {
        let Some(tag) = self.reference.tag.as_deref().filter(|_| self.reference.digest.is_none()) else {
            return Err(OciError::Reference {
                reference: self.reference.to_string(),
                message: "a push needs a tag (`:1.0.0`), not a digest".into(),
            });
        };
        let config_digest = self.push_blob(config)?;
        let layer_digest = self.push_blob(pack)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
            "layers": [{
                "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": pack.len(),
                "annotations": { "org.opencontainers.image.title": title },
            }],
        });
        let body = serde_json::to_vec(&manifest).unwrap_or_default();
        let put = self.call(
            "PUT",
            &self.path(&format!("manifests/{tag}")),
            &[("Content-Type", MANIFEST_MEDIA_TYPE)],
            Some(&body),
        )?;
        self.expect("pushing the manifest", put, &[201])?;
        Ok(digest(&body))
    }

    /// The digest the reference's tag names now (a HEAD on the manifest).
    fn resolve(&self) -> Result<String, OciError> {
        let path = self.path(&format!("manifests/{}", self.reference.manifest_reference()));
        let head = self.call("HEAD", &path, &[("Accept", MANIFEST_MEDIA_TYPE)], None)?;
        let head = self.expect("resolving the tag", head, &[200])?;
        match head.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            Some(d) => parse_digest(d).map_err(|e| self.error(format!("the registry's Docker-Content-Digest: {e}"))),
            // a registry that does not say: the manifest's own digest
            None => Ok(digest(&self.manifest(None)?)),
        }
    }

    /// The manifest by digest (checked) or by the reference's tag.
    fn manifest(&self, digest_: Option<&str>) -> Result<Vec<u8>, OciError> {
        let name = digest_.unwrap_or(self.reference.manifest_reference());
        let got =
            self.call("GET", &self.path(&format!("manifests/{name}")), &[("Accept", MANIFEST_MEDIA_TYPE)], None)?;
        // the pack file's digest where the manifest's belongs: registries answer 404, 500 or the blob
        let is_pack = |d: &str| {
            self.call("HEAD", &self.path(&format!("blobs/{d}")), &[], None).is_ok_and(|head| head.status() == 200)
        };
        let layer_given = |d: &str| {
            self.error(format!(
                "{d} is the digest of the pack file, not of its OCI manifest: `oci://...@sha256:` takes the manifest's digest, the one `k8srule pack push` printed; the pack file's digest pins a file (`--rules FILE.wasm@{d}`)"
            ))
        };
        if let Some(d) = digest_
            && got.status() != 200
            && is_pack(d)
        {
            return Err(layer_given(d));
        }
        let mut got = self.expect("fetching the manifest", got, &[200])?;
        let body = self.read("fetching the manifest", &mut got, MAX_MANIFEST)?;
        if let Some(d) = digest_.filter(|_| body.starts_with(b"\0asm")) {
            return Err(layer_given(d));
        }
        match digest_ {
            Some(expected) => self.checked(expected, body),
            None => Ok(body),
        }
    }

    /// A blob, checked against its digest.
    fn blob(&self, expected: &str, limit: u64) -> Result<Vec<u8>, OciError> {
        let got = self.call("GET", &self.path(&format!("blobs/{expected}")), &[], None)?;
        let mut got = self.expect(&format!("fetching blob {expected}"), got, &[200])?;
        let bytes = self.read(&format!("fetching blob {expected}"), &mut got, limit)?;
        self.checked(expected, bytes)
    }

    /// `bytes`, if their digest is `expected`.
    fn checked(&self, expected: &str, bytes: Vec<u8>) -> Result<Vec<u8>, OciError> {
        let actual = digest(&bytes);
        if actual != expected {
            return Err(OciError::DigestMismatch {
                reference: self.reference.to_string(),
                expected: expected.into(),
                actual,
            });
        }
        Ok(bytes)
    }
}

/// The pack layer's digest, from a manifest that must be a k8srule pack's.
fn pack_layer(reference: &Reference, manifest: &[u8]) -> Result<String, OciError> {
    let not_a_pack = |message: String| OciError::NotAPack { reference: reference.to_string(), message };
    let manifest: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| not_a_pack(format!("the manifest is not JSON: {e}")))?;
    let config_type = manifest["config"]["mediaType"].as_str().unwrap_or_default();
    if config_type != CONFIG_MEDIA_TYPE {
        return Err(not_a_pack(format!("its config mediaType is `{config_type}`, not `{CONFIG_MEDIA_TYPE}`")));
    }
    let layer = manifest["layers"]
        .as_array()
        .and_then(|layers| layers.iter().find(|l| l["mediaType"] == LAYER_MEDIA_TYPE))
        .ok_or_else(|| not_a_pack(format!("no layer of mediaType `{LAYER_MEDIA_TYPE}`")))?;
    layer["digest"]
        .as_str()
        .and_then(|d| parse_digest(d).ok())
        .ok_or_else(|| not_a_pack("the pack layer has no sha256 digest".into()))
}

/// Pulls a pack: the tag resolved to a digest (or, offline, the digest it last
/// resolved to), the manifest and pack from `cache` when they are there and
/// still match their digests, else from the registry, checked, then cached.
pub fn pull(reference: &Reference, options: &Options, cache: Option<&Path>) -> Result<Pulled, OciError> {
    let cache = cache.map(|d| Cache { dir: d.join("oci"), max_bytes: MAX_CACHE_BYTES });
    let offline = |message: String| OciError::Offline { reference: reference.to_string(), message };
    let client = OnceCell::new();
    let client = || -> Result<&Client, OciError> {
        if let Some(c) = client.get() {
            return Ok(c);
        }
        let c = Client::new(reference.clone(), Access::Pull, options)?;
        Ok(client.get_or_init(|| c))
    };
    let mut note = None;
    let manifest_digest = match (&reference.digest, options.offline) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            let (digest, when) = cache
                .as_ref()
                .and_then(|c| c.tag(reference))
                .ok_or_else(|| offline("this tag was never pulled into the cache".into()))?;
            note = Some(format!("--offline: {reference} is {digest}, the digest it resolved to at {when}"));
            digest
        }
        (None, false) => client()?.resolve()?,
    };
    let cached = cache.as_ref().and_then(|c| {
        let manifest = c.blob(&manifest_digest)?;
        let layer = pack_layer(reference, &manifest).ok()?;
        Some((c.blob(&layer)?, layer))
    });
    let (bytes, layer) = match cached {
        Some(hit) => hit,
        None if options.offline => {
            return Err(offline(format!("{manifest_digest} is not in the cache")));
        }
        None => {
            let client = client()?;
            let manifest = client.manifest(Some(&manifest_digest))?;
            let layer = pack_layer(reference, &manifest)?;
            let bytes = client.blob(&layer, MAX_PACK)?;
            if let Some(c) = &cache {
                c.put_blob(&manifest_digest, &manifest);
                c.put_blob(&layer, &bytes);
            }
            (bytes, layer)
        }
    };
    if let (Some(c), None, false) = (&cache, &reference.digest, options.offline) {
        c.put_tag(reference, &manifest_digest);
    }
    Ok(Pulled { bytes, digest: layer, manifest_digest, note })
}

/// `<cache>/oci`: `blobs/sha256/<hex>` (manifests and packs, each checked
/// against its name when read) and `tags/<sha256 of the reference>.json`
/// (the digest a tag last resolved to, and when). A write that fails only
/// costs a download next time. Blobs beyond `max_bytes` are evicted, least
/// recently used first (a hit sets the blob's mtime).
struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// The pull cache's bound on its blobs.
const MAX_CACHE_BYTES: u64 = 256 << 20;

impl Cache {
    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    fn tag_path(&self, reference: &Reference) -> PathBuf {
        self.dir
            .join("tags")
            .join(format!("{}.json", digest(reference.to_string().as_bytes()).trim_start_matches("sha256:")))
    }

    /// The blob, if it is cached and still has its digest.
    fn blob(&self, expected: &str) -> Option<Vec<u8>> {
        let path = self.blob_path(expected);
        if std::fs::metadata(&path).ok()?.len() > MAX_PACK {
            return None;
        }
        let mut file = std::fs::File::open(path).ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        if digest(&bytes) != expected {
            return None;
        }
        // the mtime orders eviction; failing to set it only makes eviction less exact
        let _ = file.set_modified(std::time::SystemTime::now());
        Some(bytes)
    }

    fn put_blob(&self, digest: &str, bytes: &[u8]) {
        let path = self.blob_path(digest);
        write_atomic(&path, bytes);
        if let Some(blobs) = path.parent() {
            crate::evaluation::cache::evict_least_recently_used(blobs, self.max_bytes);
        }
    }

    fn tag(&self, reference: &Reference) -> Option<(String, String)> {
        let text = std::fs::read(self.tag_path(reference)).ok()?;
        let entry: serde_json::Value = serde_json::from_slice(&text).ok()?;
        if entry["reference"].as_str() != Some(reference.to_string().as_str()) {
            return None;
        }
        let digest = parse_digest(entry["digest"].as_str()?).ok()?;
        Some((digest, entry["resolved"].as_str().unwrap_or("an unknown time").to_string()))
    }

    fn put_tag(&self, reference: &Reference, digest: &str) {
        let entry = serde_json::json!({
            "reference": reference.to_string(),
            "digest": digest,
            "resolved": crate::input::snapshot::now_rfc3339(),
        });
        write_atomic(&self.tag_path(reference), entry.to_string().as_bytes());
    }
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r = Reference::parse("oci://127.0.0.1:5000/team/packs:1.2.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/packs", Some("1.2.0"))
        );
        assert!(r.loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/team/packs:1.2.0");
        let d = format!("sha256:{}", "0".repeat(64));
        let r = Reference::parse(&format!("oci://ghcr.io/a/b@{d}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref(), r.registry.as_str()), (None, Some(d.as_str()), "ghcr.io"));
        for bad in ["ghcr.io/a:1", "oci://ghcr.io", "oci://ghcr.io/A:1", "oci://h/a:bad tag", "oci://h/a@sha256:1"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pull_cache_evicts_the_least_recently_used_blobs_beyond_its_cap() {
        let tmp = std::env::temp_dir().join(format!("k8srule-oci-cache-{}", std::process::id()));
        let cache = Cache { dir: tmp.clone(), max_bytes: 250 };
        let blobs: Vec<(String, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let bytes = vec![i; 100];
                (digest(&bytes), bytes)
            })
            .collect();
        let age = |d: &str, secs: u64| {
            let file = std::fs::File::open(cache.blob_path(d)).unwrap();
            file.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)).unwrap();
        };
        cache.put_blob(&blobs[0].0, &blobs[0].1);
        cache.put_blob(&blobs[1].0, &blobs[1].1);
        age(&blobs[0].0, 1_000);
        age(&blobs[1].0, 2_000);
        // a hit makes blob 0 the most recently used, so blob 1 goes when 2 comes
        assert_eq!(cache.blob(&blobs[0].0).as_deref(), Some(&blobs[0].1[..]));
        cache.put_blob(&blobs[2].0, &blobs[2].1);
        let kept: Vec<bool> = blobs.iter().map(|(d, _)| cache.blob_path(d).exists()).collect();
        assert_eq!(kept, [true, false, true]);
        let _ = std::fs::remove_dir_all(tmp);
    }

    #[test]
    fn credentials_never_go_over_plain_http_beyond_loopback() {
        // refused before a connection is made: no traffic leaves this machine
        let options = Options { plain_http: true, ..Options::default() };
        let far =
            Client::new(Reference::parse("oci://192.0.2.2:5000/team/demo:1").unwrap(), Access::Pull, &options).unwrap();
        let Err(e) = far.raw("GET", "http://192.0.2.2:5000/v2/", &[], None, Some("Basic dTpw")) else {
            panic!("credentials were sent over plain http")
        };
        assert!(
            e.to_string().contains("refusing to send credentials to http://192.0.2.2:5000 over plain http; use https"),
            "{e}"
        );
    }

    #[test]
    fn challenges_origins_and_loopback() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(
            params,
            [
                ("realm".to_string(), "https://auth.example.com/token".to_string()),
                ("service".to_string(), "registry.example.com".to_string()),
                ("scope".to_string(), "repository:a/b:pull,push".to_string()),
            ]
        );
        assert_eq!(parse_challenge("Basic realm=x").1, [("realm".to_string(), "x".to_string())]);
        assert_eq!(parse_challenge("Bearer realm=\"unterminated").1[0].1, "unterminated");
        assert_eq!(origin_of("https://h:5000/v2/x?y"), "https://h:5000");
        assert_eq!(origin_of("http://h?x"), "http://h");
        for (host, yes) in [
            ("localhost:5000", true),
            ("127.0.0.2", true),
            ("[::1]:5000", true),
            ("192.0.2.2:5000", false),
            ("localhost.evil.com", false),
            ("ghcr.io", false),
        ] {
            assert_eq!(loopback(host), yes, "{host}");
        }
        assert_eq!(query_value("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
        let hub = Reference::parse("oci://docker.io/falco:1").unwrap();
        assert_eq!((hub.api_host(), hub.api_repository().as_str()), ("registry-1.docker.io", "library/falco"));
        let team = Reference::parse("oci://ghcr.io/team/falco:1").unwrap();
        assert_eq!((team.api_host(), team.api_repository().as_str()), ("ghcr.io", "team/falco"));
    }
}
