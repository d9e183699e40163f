//! What a pack is: its manifest (`pack.yaml`), the custom sections a built
//! pack carries it (and its sources) in, and its SHA-256 digest.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name in a pack directory.
pub const MANIFEST_FILE: &str = "pack.yaml";
/// The custom section that holds the manifest (JSON) in a built pack.
pub const MANIFEST_SECTION: &str = "k8srule-pack";
/// The custom section that holds the rule sources (JSON) in a pack built `--with-sources`.
pub const SOURCES_SECTION: &str = "k8srule-pack-sources";

/// A problem with a pack file, a pack directory or a digest.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are what the message shows
pub enum PackFileError {
    /// A file or directory that cannot be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A manifest that does not parse or says something impossible.
    #[error("{path}: {message}")]
    Manifest { path: String, message: String },
    /// A pack built for another k8srule or another version of the WIT world.
    #[error("{path}: pack `{pack}` {message}")]
    Incompatible { path: String, pack: String, message: String },
    /// A pack file whose SHA-256 is not the pinned one.
    #[error("{path}: digest mismatch: pinned {expected}, but the file is {actual}")]
    DigestMismatch { path: String, expected: String, actual: String },
    /// A pin that is not `sha256:` and 64 hex digits.
    #[error("`{text}` is not a digest: expected `sha256:` and 64 lowercase hex digits")]
    BadDigest { text: String },
    /// A pin on a directory.
    #[error("{path}: a digest pins a pack file; this is a directory")]
    PinnedDirectory { path: String },
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> PackFileError + '_ {
    move |e| PackFileError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// What a pack is, as `pack.yaml` says and the built pack carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lowercase letters, digits, `-`, `_` and `.`; the name findings carry.
    pub name: String,
    /// The pack's own version (semver).
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub authors: Vec<String>,
    /// The k8srule versions the pack runs on: a semver requirement such as `>=0.1, <0.2`.
    pub k8srule: String,
    /// The version of the WIT world `k8srule:plugin` the pack implements, e.g. `0.1.0`.
    pub wit: String,
    /// A plugin pack: its `.wasm` file, relative to the pack directory (none: `.k8srule` files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

/// The version of the WIT world this k8srule runs packs for.
pub fn wit_version() -> &'static str {
    let iface = k8srule_dsl::component::INTERFACE;
    iface.split_once('@').map_or(iface, |(_, v)| v)
}

/// The fields of `pack.yaml`: name, whether it is required, what it holds.
const FIELDS: [(&str, bool, &str); 7] = [
    ("name", true, "the pack's name: lowercase letters, digits, `-`, `_` and `.`"),
    ("version", true, "the pack's own semver version, such as `1.0.0`"),
    ("description", false, "one line about the pack"),
    ("authors", false, "a list of names"),
    ("k8srule", true, "the k8srule versions it runs on, a semver requirement such as `>=0.1, <0.2`"),
    ("wit", true, "the version of the WIT world k8srule:plugin it implements"),
    ("plugin", false, "a plugin pack's `.wasm` file, relative to the pack directory"),
];

impl Manifest {
    /// What is wrong with the fields' values, each with its field: every problem, not the first.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !name_ok {
            problems
                .push(("name", format!("name `{}` must be lowercase letters, digits, `-`, `_` and `.`", self.name)));
        }
        if let Err(e) = semver::Version::parse(&self.version) {
            problems.push(("version", format!("version `{}` is not a semver version: {e}", self.version)));
        }
        if let Err(e) = semver::VersionReq::parse(&self.k8srule) {
            problems.push(("k8srule", format!("k8srule `{}` is not a semver requirement: {e}", self.k8srule)));
        }
        problems
    }

    /// Checks the fields, and that the pack runs on this k8srule and WIT world.
    pub fn check(&self, path: &Path) -> Result<(), PackFileError> {
        let problems: Vec<String> = self.problems().into_iter().map(|(_, p)| p).collect();
        if !problems.is_empty() {
            return Err(PackFileError::Manifest { path: path.display().to_string(), message: listed(problems) });
        }
        let incompatible = |message: String| PackFileError::Incompatible {
            path: path.display().to_string(),
            pack: format!("{} {}", self.name, self.version),
            message,
        };
        let ours = env!("CARGO_PKG_VERSION");
        let req = semver::VersionReq::parse(&self.k8srule).unwrap_or(semver::VersionReq::STAR);
        if !semver::Version::parse(ours).is_ok_and(|v| req.matches(&v)) {
            return Err(incompatible(format!("requires k8srule {req}; this is k8srule {ours}")));
        }
        if self.wit != wit_version() {
            return Err(incompatible(format!(
                "is built for the WIT world k8srule:plugin@{}; this k8srule runs packs for k8srule:plugin@{}",
                self.wit,
                wit_version()
            )));
        }
        Ok(())
    }

    /// Reads and checks `pack.yaml` of a pack directory; every missing,
    /// unknown or wrong field is named in the one error.
    pub fn read(dir: &Path) -> Result<Manifest, PackFileError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let invalid = |message: String| PackFileError::Manifest { path: path.display().to_string(), message };
        let value: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| {
            let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            PackFileError::Manifest { path: format!("{}{at}", path.display()), message: e.to_string() }
        })?;
        let Some(map) = value.as_mapping() else {
            return Err(invalid(format!("expected the fields {}", FIELDS.map(|f| f.0).join(", "))));
        };
        let mut problems = Vec::new();
        for key in map.keys() {
            let known = key.as_str().is_some_and(|k| FIELDS.iter().any(|f| f.0 == k));
            if !known {
                let key = serde_norway::to_string(key).unwrap_or_default();
                let fields = FIELDS.map(|f| format!("`{}`", f.0)).join(", ");
                problems.push(format!("unknown field `{}`: the fields are {fields}", key.trim_end()));
            }
        }
        for (field, required, holds) in FIELDS {
            let is_list = field == "authors";
            match map.get(field) {
                None if required => problems.push(format!("missing `{field}`: {holds}")),
                None => {}
                Some(v) if is_list && !v.as_sequence().is_some_and(|l| l.iter().all(|a| a.is_string())) => {
                    problems.push(format!("`{field}` must be {holds}"))
                }
                Some(v) if !is_list && !v.is_string() => {
                    problems.push(format!("`{field}` must be a string: {holds} (quote it: `{field}: \"...\"`)"))
                }
                Some(_) => {}
            }
        }
        let manifest = match problems.is_empty() {
            true => Some(serde_norway::from_value::<Manifest>(value.clone()).map_err(|e| invalid(e.to_string()))?),
            false => None,
        };
        // the values of the fields that are there as strings
        let field = |k: &str| map.get(k).and_then(serde_norway::Value::as_str).unwrap_or_default().to_string();
        let values = Manifest {
            name: field("name"),
            version: field("version"),
            k8srule: field("k8srule"),
            wit: field("wit"),
            description: String::new(),
            authors: Vec::new(),
            plugin: None,
        };
        for (name, p) in values.problems() {
            if map.get(name).is_some_and(serde_norway::Value::is_string) {
                problems.push(p);
            }
        }
        match manifest {
            Some(m) if problems.is_empty() => {
                m.check(&path)?;
                Ok(m)
            }
            _ => Err(invalid(listed(problems))),
        }
    }
}

/// One problem as it is; several counted, one a line.
fn listed(problems: Vec<String>) -> String {
    match problems.as_slice() {
        [one] => one.clone(),
        _ => format!("{} problems:\n  {}", problems.len(), problems.join("\n  ")),
    }
}

/// A rule source embedded in a pack built `--with-sources`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// Relative to the pack directory.
    pub name: String,
    pub text: String,
}

/// `sha256:<hex>` of some bytes: a pack file's digest, as pins and OCI registries write it.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Checks that `text` is a `sha256:` digest.
pub fn parse_digest(text: &str) -> Result<String, PackFileError> {
    let hex = text.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(text.to_string())
    } else {
        Err(PackFileError::BadDigest { text: text.to_string() })
    }
}

/// Appends the manifest (and the sources) to a component as custom sections.
pub fn embed(component: &mut Vec<u8>, manifest: &Manifest, sources: Option<&[Source]>) {
    use wasm_encoder::Encode;
    let mut section = |name: &str, data: Vec<u8>| {
        component.push(0);
        wasm_encoder::CustomSection { name: name.into(), data: data.into() }.encode(component);
    };
    section(MANIFEST_SECTION, serde_json::to_vec(manifest).unwrap_or_default());
    if let Some(sources) = sources {
        section(SOURCES_SECTION, serde_json::to_vec(&serde_json::json!({ "files": sources })).unwrap_or_default());
    }
}

/// The data of a top-level custom section (not one of a nested module's).
/// A file that does not parse has none: the sandbox says what is wrong with it.
fn custom_section<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(s) if depth == 1 && s.name() == name => return Some(s.data()),
            _ => {}
        }
    }
    None
}

fn section_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    name: &str,
    path: &Path,
) -> Result<Option<T>, PackFileError> {
    let Some(data) = custom_section(bytes, name) else {
        return Ok(None);
    };
    serde_json::from_slice(data).map(Some).map_err(|e| PackFileError::Manifest {
        path: path.display().to_string(),
        message: format!("custom section `{name}` is not valid: {e}"),
    })
}

/// The manifest a built pack carries, if any (not checked for compatibility).
pub fn embedded_manifest(bytes: &[u8], path: &Path) -> Result<Option<Manifest>, PackFileError> {
    section_json(bytes, MANIFEST_SECTION, path)
}

/// The rule sources a pack built `--with-sources` carries.
pub fn embedded_sources(bytes: &[u8], path: &Path) -> Result<Vec<Source>, PackFileError> {
    #[derive(Deserialize)]
    struct Files {
        files: Vec<Source>,
    }
    Ok(section_json::<Files>(bytes, SOURCES_SECTION, path)?.map(|f| f.files).unwrap_or_default())
}
