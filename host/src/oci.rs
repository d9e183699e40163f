//! Packs in OCI registries, as Kubewarden and Falco distribute theirs: a pack
//! is an OCI image manifest with one config blob (the pack's manifest as JSON,
//! [`CONFIG_MEDIA_TYPE`]) and one layer (the pack file, [`LAYER_MEDIA_TYPE`]),
//! pushed and pulled with the distribution HTTP API (monolithic blob upload:
//! POST then PUT; manifest PUT). Every pulled byte is checked against its digest.
//! Plain http for loopback registries or with `plain_http`; basic credentials
//! from `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`) when a registry
//! asks for them.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use crate::packs::{digest, parse_digest};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.k8srule.pack.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.k8srule.pack.v1.wasm";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The largest manifest and pack read from a registry.
const MAX_MANIFEST: u64 = 4 << 20;
const MAX_PACK: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("`{reference}` is not an OCI reference: {message}")]
    Reference { reference: String, message: String },
    /// The registry cannot be reached, or answered with an error.
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },
    #[error("{reference}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { reference: String, expected: String, actual: String },
    #[error("{reference}: not a k8srule pack: {message}")]
    NotAPack { reference: String, message: String },
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
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }
}

/// What a pull got.
pub struct Pulled {
    pub bytes: Vec<u8>,
    /// The pack file's digest (the layer's).
    pub digest: String,
    pub manifest_digest: String,
}

/// A registry client for one reference.
pub struct Client {
    agent: ureq::Agent,
    reference: Reference,
    base: String,
    basic: Option<String>,
    authorization: RefCell<Option<String>>,
}

impl Client {
    /// `plain_http`: talk http, not https (always so for localhost and 127.0.0.1).
    pub fn new(reference: Reference, plain_http: bool) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .timeout_connect(Some(Duration::from_secs(15)))
            .build();
        let scheme = if plain_http || reference.loopback() { "http" } else { "https" };
        let base = format!("{scheme}://{}/v2/{}", reference.registry, reference.repository);
        let basic = docker_credentials(&reference.registry);
        Client { agent: config.into(), reference, base, basic, authorization: RefCell::new(None) }
    }

    fn error(&self, message: String) -> OciError {
        OciError::Registry { reference: self.reference.to_string(), message }
    }

    /// One request; on a 401 with a `Basic` challenge and credentials for
    /// the registry, once more with them.
    fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
        loop {
            let mut request = ureq::http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            if let Some(auth) = self.authorization.borrow().as_deref() {
                request = request.header("Authorization", auth);
            }
            let sent = match body {
                Some(b) => request.body(b).map(|r| self.agent.run(r)),
                None => request.body(()).map(|r| self.agent.run(r)),
            };
            let response = sent
                .map_err(|e| self.error(format!("{method} {url}: {e}")))?
                .map_err(|e| self.error(format!("{method} {url}: {e}")))?;
            let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
            if response.status() == 401
                && self.authorization.borrow().is_none()
                && challenge.is_some_and(|c| c.to_ascii_lowercase().starts_with("basic"))
                && let Some(basic) = &self.basic
            {
                *self.authorization.borrow_mut() = Some(format!("Basic {basic}"));
                continue;
            }
            return Ok(response);
        }
    }

    /// Fails unless the response has one of `ok`; the message carries the registry's error.
    fn expect(
        &self,
        what: &str,
        mut response: ureq::http::Response<ureq::Body>,
        ok: &[u16],
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
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
            401 | 403 => " (log in with `docker login`; credentials are read from ~/.docker/config.json)",
            _ => "",
        };
        Err(self.error(format!("{what}: HTTP {status} {}{hint}", detail.trim())))
    }

    fn read(
        &self,
        what: &str,
        mut response: ureq::http::Response<ureq::Body>,
        limit: u64,
    ) -> Result<Vec<u8>, OciError> {
        response.body_mut().with_config().limit(limit).read_to_vec().map_err(|e| self.error(format!("{what}: {e}")))
    }

    /// Uploads a blob unless the repository has it: POST, then a monolithic PUT.
    fn push_blob(&self, bytes: &[u8]) -> Result<String, OciError> {
        let digest = digest(bytes);
        let head = self.call("HEAD", &format!("{}/blobs/{digest}", self.base), &[], None)?;
        if head.status() == 200 {
            return Ok(digest);
        }
        let start = self.call("POST", &format!("{}/blobs/uploads/", self.base), &[], None)?;
        let start = self.expect("starting a blob upload", start, &[202])?;
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error("the registry started an upload without a Location".into()))?;
        let mut url = if location.starts_with('/') {
            let origin = self.base.split("/v2/").next().unwrap_or_default();
            format!("{origin}{location}")
        } else {
            location.to_string()
        };
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
            &format!("{}/manifests/{tag}", self.base),
            &[("Content-Type", MANIFEST_MEDIA_TYPE)],
            Some(&body),
        )?;
        self.expect("pushing the manifest", put, &[201])?;
        Ok(digest(&body))
    }

    /// Pulls a pack: the manifest (checked against the reference's digest if
    /// it has one), then its one pack layer, checked against the layer's digest.
    pub fn pull(&self) -> Result<Pulled, OciError> {
        let reference = self.reference.to_string();
        let url = format!("{}/manifests/{}", self.base, self.reference.manifest_reference());
        let got = self.call("GET", &url, &[("Accept", MANIFEST_MEDIA_TYPE)], None)?;
        let got = self.expect("fetching the manifest", got, &[200])?;
        let body = self.read("fetching the manifest", got, MAX_MANIFEST)?;
        let manifest_digest = digest(&body);
        if let Some(expected) = &self.reference.digest
            && *expected != manifest_digest
        {
            return Err(OciError::DigestMismatch { reference, expected: expected.clone(), actual: manifest_digest });
        }
        let not_a_pack = |message: String| OciError::NotAPack { reference: reference.clone(), message };
        let manifest: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| not_a_pack(format!("the manifest is not JSON: {e}")))?;
        let config_type = manifest["config"]["mediaType"].as_str().unwrap_or_default();
        if config_type != CONFIG_MEDIA_TYPE {
            return Err(not_a_pack(format!("its config mediaType is `{config_type}`, not `{CONFIG_MEDIA_TYPE}`")));
        }
        let layer = manifest["layers"]
            .as_array()
            .and_then(|layers| layers.iter().find(|l| l["mediaType"] == LAYER_MEDIA_TYPE))
            .ok_or_else(|| not_a_pack(format!("no layer of mediaType `{LAYER_MEDIA_TYPE}`")))?;
        let expected = layer["digest"]
            .as_str()
            .and_then(|d| parse_digest(d).ok())
            .ok_or_else(|| not_a_pack("the pack layer has no sha256 digest".into()))?;
        let got = self.call("GET", &format!("{}/blobs/{expected}", self.base), &[], None)?;
        let got = self.expect(&format!("fetching blob {expected}"), got, &[200])?;
        let bytes = self.read(&format!("fetching blob {expected}"), got, MAX_PACK)?;
        let actual = digest(&bytes);
        if actual != expected {
            return Err(OciError::DigestMismatch { reference, expected, actual });
        }
        Ok(Pulled { bytes, digest: actual, manifest_digest })
    }
}

/// The base64 `user:password` that `docker login` saved for a registry.
fn docker_credentials(registry: &str) -> Option<String> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let auths = config["auths"].as_object()?;
    auths
        .iter()
        .find(|(host, _)| {
            let host = host.trim_start_matches("https://").trim_start_matches("http://");
            host.split('/').next() == Some(registry)
        })
        .and_then(|(_, entry)| entry["auth"].as_str().map(str::to_string))
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
}
