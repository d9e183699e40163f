//! Shareable rule packs. A pack directory holds a manifest (`pack.yaml`) and
//! either `.k8srule` files (with their `.test.yaml` fixtures) or a plugin
//! (`.wasm`). `build` makes one component of it with the manifest embedded as
//! a custom section, and optionally the rule sources as another; loading a
//! pack file or directory checks that the pack runs on this k8srule, and a
//! pack file may be pinned by its SHA-256 digest (`pack.wasm@sha256:...`).
//! `oci://` packs come from a registry ([`registry`], feature `oci`);
//! `k8srule.yaml` ([`config`]) says which packs and settings a run uses.

pub mod config;
#[cfg(feature = "oci")]
pub mod credentials;
pub mod manifest;
#[cfg(feature = "oci")]
pub mod registry;

use std::path::{Path, PathBuf};

use manifest::{MANIFEST_FILE, Source, digest, embed, embedded_manifest, io, parse_digest};
pub use manifest::{Manifest, PackFileError};

use crate::Error;
use crate::evaluation::contract::PluginInfo;
use crate::evaluation::sandbox::{Limits, Sandbox};
use crate::input::snapshot::{LoadError, files_under};

/// How `oci://` packs are pulled.
#[cfg(feature = "oci")]
pub use registry::Options as RegistryOptions;

/// How `oci://` packs are pulled: this build cannot pull them.
#[cfg(not(feature = "oci"))]
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {}

#[cfg(feature = "oci")]
fn pull(text: &str, registry: &RegistryOptions, cache: Option<&Path>) -> Result<Loaded, Error> {
    let reference = registry::Reference::parse(text)?;
    let pulled = registry::pull(&reference, registry, cache)?;
    let mut loaded = component(pulled.bytes, Path::new(text))?;
    loaded.note = pulled.note;
    Ok(loaded)
}

#[cfg(not(feature = "oci"))]
fn pull(text: &str, _: &RegistryOptions, _: Option<&Path>) -> Result<Loaded, Error> {
    Err(PackFileError::Io { path: text.into(), message: "this k8srule is built without the `oci` feature".into() }
        .into())
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
pub fn load(spec: &Path, registry: &RegistryOptions, cache: Option<&Path>) -> Result<Loaded, Error> {
    if let Some(text) = spec.to_str().filter(|s| s.starts_with("oci://")) {
        return pull(text, registry, cache);
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

/// Reads a `.k8srule` file, or every `.k8srule` file under a directory.
pub fn read_rule_files(path: &Path) -> Result<Vec<k8srule_dsl::SourceFile>, LoadError> {
    let io = |p: &Path, e: std::io::Error| LoadError::Io { path: p.display().to_string(), message: e.to_string() };
    let mut files = Vec::new();
    if path.is_dir() {
        let mut found = files_under(path).map_err(|e| io(path, e))?;
        found.retain(|p| p.extension().is_some_and(|e| e == "k8srule"));
        if found.is_empty() {
            return Err(LoadError::Invalid {
                path: path.display().to_string(),
                message: "no `.k8srule` files in this directory".into(),
            });
        }
        for p in found {
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            files.push(k8srule_dsl::SourceFile::new(p.display().to_string(), text));
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        files.push(k8srule_dsl::SourceFile::new(path.display().to_string(), text));
    }
    Ok(files)
}

/// Compiles rule files into one pack, on a thread whose stack holds the
/// deepest expression the parser lets through (see
/// `k8srule_dsl::parse::MAX_NESTING`), whatever thread the embedder calls from.
pub(crate) fn compile_sources(files: &[k8srule_dsl::SourceFile], name: &str, version: &str) -> Result<Vec<u8>, Error> {
    let compile = || k8srule_dsl::compile(files, name, version).map_err(|e| Error::Compile(e.to_string()));
    std::thread::scope(|scope| {
        let thread =
            std::thread::Builder::new().name("k8srule-compile".into()).stack_size(k8srule_dsl::parse::STACK_BYTES);
        match thread.spawn_scoped(scope, compile) {
            Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => Err(Error::Compile(format!("cannot start the compiler's thread: {e}"))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::manifest::*;
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
