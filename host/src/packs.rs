//! Shareable rule packs. A pack directory holds a manifest (`pack.yaml`) and
//! either `.k8srule` files (with their `.test.yaml` fixtures) or a plugin
//! (`.wasm`). `build` makes one component of it with the manifest embedded as
//! a custom section, and optionally the rule sources as another; loading a
//! pack file or directory checks that the pack runs on this k8srule, and a
//! pack file may be pinned by its SHA-256 digest (`pack.wasm@sha256:...`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Sandbox, types::PluginInfo};
use crate::{Error, Limits, compile_sources, read_rule_files};

/// The manifest's file name in a pack directory.
pub const MANIFEST_FILE: &str = "pack.yaml";
/// The custom section that holds the manifest (JSON) in a built pack.
pub const MANIFEST_SECTION: &str = "k8srule-pack";
/// The custom section that holds the rule sources (JSON) in a pack built `--with-sources`.
pub const SOURCES_SECTION: &str = "k8srule-pack-sources";

/// A problem with a pack file, a pack directory or a digest.
#[derive(Debug, thiserror::Error)]
pub enum PackFileError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A manifest that does not parse or says something impossible.
    #[error("{path}: {message}")]
    Manifest { path: String, message: String },
    /// A pack built for another k8srule or another version of the WIT world.
    #[error("{path}: pack `{pack}` {message}")]
    Incompatible { path: String, pack: String, message: String },
    #[error("{path}: digest mismatch: pinned {expected}, but the file is {actual}")]
    DigestMismatch { path: String, expected: String, actual: String },
    #[error("`{text}` is not a digest: expected `sha256:` and 64 lowercase hex digits")]
    BadDigest { text: String },
    #[error("{path}: a digest pins a pack file; this is a directory")]
    PinnedDirectory { path: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PackFileError + '_ {
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

impl Manifest {
    /// Checks the fields, and that the pack runs on this k8srule and WIT world.
    pub fn check(&self, path: &Path) -> Result<(), PackFileError> {
        let invalid = |message: String| PackFileError::Manifest { path: path.display().to_string(), message };
        let name_ok = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !name_ok {
            return Err(invalid(format!("name `{}` must be lowercase letters, digits, `-`, `_` and `.`", self.name)));
        }
        semver::Version::parse(&self.version)
            .map_err(|e| invalid(format!("version `{}` is not a semver version: {e}", self.version)))?;
        let req = semver::VersionReq::parse(&self.k8srule)
            .map_err(|e| invalid(format!("k8srule `{}` is not a semver requirement: {e}", self.k8srule)))?;
        let incompatible = |message: String| PackFileError::Incompatible {
            path: path.display().to_string(),
            pack: format!("{} {}", self.name, self.version),
            message,
        };
        let ours = env!("CARGO_PKG_VERSION");
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

    /// Reads and checks `pack.yaml` of a pack directory.
    pub fn read(dir: &Path) -> Result<Manifest, PackFileError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let manifest: Manifest = serde_yaml::from_str(&text).map_err(|e| {
            let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            PackFileError::Manifest { path: format!("{}{at}", path.display()), message: e.to_string() }
        })?;
        manifest.check(&path)?;
        Ok(manifest)
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

/// Splits `path@sha256:...` into the path and the pinned digest.
fn split_pin(path: &Path) -> Result<(PathBuf, Option<String>), PackFileError> {
    let text = path.to_string_lossy();
    match text.rsplit_once('@') {
        Some((file, pin)) if pin.starts_with("sha256:") => Ok((PathBuf::from(file), Some(parse_digest(pin)?))),
        _ => Ok((path.to_path_buf(), None)),
    }
}

/// A pack ready for the sandbox: its name and a component or core module.
pub struct Loaded {
    pub name: String,
    pub bytes: Vec<u8>,
    /// What the report should say about where the pack came from (`--offline`).
    pub note: Option<String>,
}

/// Reads what `--rules` names: a pack file (`.wasm`, optionally `@sha256:...`),
/// a pack in an OCI registry (`oci://host/repository:tag` or `@sha256:...`),
/// a pack directory (with `pack.yaml`), a `.k8srule` file or a directory of them.
/// `.k8srule` files are compiled. A pack whose manifest this k8srule cannot
/// run is refused, as is a file whose digest is not the pinned one.
/// An `oci://` pack is pulled with `registry`, through `cache` if there is one.
pub fn load(spec: &Path, registry: &crate::oci::Options, cache: Option<&Path>) -> Result<Loaded, Error> {
    if let Some(text) = spec.to_str().filter(|s| s.starts_with("oci://")) {
        let reference = crate::oci::Reference::parse(text)?;
        let pulled = crate::oci::pull(&reference, registry, cache)?;
        let mut loaded = component(pulled.bytes, Path::new(text))?;
        loaded.note = pulled.note;
        return Ok(loaded);
    }
    let (path, pin) = split_pin(spec)?;
    let shown = path.display().to_string();
    if path.is_dir() {
        if pin.is_some() {
            return Err(PackFileError::PinnedDirectory { path: shown }.into());
        }
        if !path.join(MANIFEST_FILE).is_file() {
            let bytes = compile_sources(&read_rule_files(&path)?, &shown, "0.0.0")?;
            return Ok(Loaded { name: shown, bytes, note: None });
        }
        let manifest = Manifest::read(&path)?;
        let bytes = pack_code(&path, &manifest)?;
        return Ok(Loaded { name: manifest.name, bytes, note: None });
    }
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    if let Some(expected) = pin {
        let actual = digest(&bytes);
        if actual != expected {
            return Err(PackFileError::DigestMismatch { path: shown, expected, actual }.into());
        }
    }
    if !bytes.starts_with(b"\0asm") && path.extension().is_none_or(|e| e != "wasm") {
        let bytes = compile_sources(&read_rule_files(&path)?, &shown, "0.0.0")?;
        return Ok(Loaded { name: shown, bytes, note: None });
    }
    component(bytes, &path)
}

/// A pack file's component, under its manifest's name when it has one.
fn component(bytes: Vec<u8>, path: &Path) -> Result<Loaded, Error> {
    match embedded_manifest(&bytes, path)? {
        Some(manifest) => {
            manifest.check(path)?;
            Ok(Loaded { name: manifest.name, bytes, note: None })
        }
        None => Ok(Loaded { name: path.display().to_string(), bytes, note: None }),
    }
}

/// The component of a pack directory: its plugin, or its rules compiled.
fn pack_code(dir: &Path, manifest: &Manifest) -> Result<Vec<u8>, Error> {
    match &manifest.plugin {
        Some(file) => {
            let path = dir.join(file);
            Ok(std::fs::read(&path).map_err(io(&path))?)
        }
        None => compile_sources(&read_rule_files(dir)?, &manifest.name, &manifest.version),
    }
}

/// A built pack.
pub struct Built {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
    pub info: PluginInfo,
}

/// Builds a pack directory into one component with its manifest embedded
/// and, with `with_sources`, its `.k8srule` files. The result is loaded once
/// in the sandbox, so a pack that would be refused is not written.
pub fn build(dir: &Path, with_sources: bool) -> Result<Built, Error> {
    let mut manifest = Manifest::read(dir)?;
    let code = pack_code(dir, &manifest)?;
    let mut bytes = if wasmparser::Parser::is_core_wasm(&code) {
        k8srule_dsl::component::wrap_module(&code).map_err(|message| PackFileError::Manifest {
            path: dir.join(manifest.plugin.as_deref().unwrap_or_default()).display().to_string(),
            message: format!("cannot make a component of this core module: {message}"),
        })?
    } else {
        code
    };
    let sources = if with_sources {
        if manifest.plugin.is_some() {
            return Err(PackFileError::Manifest {
                path: dir.join(MANIFEST_FILE).display().to_string(),
                message: "--with-sources: a plugin pack has no `.k8srule` sources".into(),
            }
            .into());
        }
        let files = read_rule_files(dir)?;
        let relative =
            |name: &str| Path::new(name).strip_prefix(dir).map_or(name.to_string(), |p| p.display().to_string());
        Some(files.iter().map(|f| Source { name: relative(&f.name), text: f.text.clone() }).collect::<Vec<_>>())
    } else {
        None
    };
    // the plugin's path means nothing once it is inside the pack
    manifest.plugin = None;
    embed(&mut bytes, &manifest, sources.as_deref());
    let info = Sandbox::new(Limits::default(), None)?.load(&manifest.name, &bytes)?.info;
    Ok(Built { manifest, bytes, info })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(k8srule: &str, wit: &str) -> Manifest {
        Manifest {
            name: "demo".into(),
            version: "1.2.0".into(),
            description: String::new(),
            authors: vec![],
            k8srule: k8srule.into(),
            wit: wit.into(),
            plugin: None,
        }
    }

    #[test]
    fn versions_are_checked() {
        let p = Path::new("pack.yaml");
        assert!(manifest(">=0.1, <1", wit_version()).check(p).is_ok());
        let e = manifest(">=99", wit_version()).check(p).unwrap_err().to_string();
        assert!(e.contains("requires k8srule >=99"), "{e}");
        let e = manifest("*", "0.0.9").check(p).unwrap_err().to_string();
        assert!(e.contains("k8srule:plugin@0.0.9"), "{e}");
        let e = manifest("not a req", wit_version()).check(p).unwrap_err().to_string();
        assert!(e.contains("not a semver requirement"), "{e}");
    }

    #[test]
    fn pins_split_off_the_path() {
        let hex = "ab".repeat(32);
        let (p, d) = split_pin(Path::new(&format!("a@b/x.wasm@sha256:{hex}"))).unwrap();
        assert_eq!((p, d), (PathBuf::from("a@b/x.wasm"), Some(format!("sha256:{hex}"))));
        assert!(split_pin(Path::new("x.wasm@sha256:12")).is_err());
        assert_eq!(split_pin(Path::new("a@b")).unwrap().1, None);
    }

    #[test]
    fn sections_round_trip_at_top_level_only() {
        let mut wasm = k8srule_dsl::compile(
            &[k8srule_dsl::SourceFile::new(
                "a.k8srule",
                "rule a.b {\n cause \"x\"\n severity info\n when true\n title \"t\"\n}\n",
            )],
            "a",
            "0.1.0",
        )
        .unwrap();
        let p = Path::new("a.wasm");
        assert_eq!(embedded_manifest(&wasm, p).unwrap(), None);
        let m = manifest("*", "0.1.0");
        embed(&mut wasm, &m, Some(&[Source { name: "a.k8srule".into(), text: "x".into() }]));
        assert!(wasmparser::Validator::new().validate_all(&wasm).is_ok());
        assert_eq!(embedded_manifest(&wasm, p).unwrap(), Some(m));
        assert_eq!(embedded_sources(&wasm, p).unwrap()[0].name, "a.k8srule");
    }
}
