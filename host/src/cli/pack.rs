//! `k8srule pack`: build, inspect and test shareable packs, and push them to
//! and pull them from OCI registries.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::fixture;
use crate::evaluation::sandbox::Sandbox;
use crate::packs::credentials::{self, Credentials};
use crate::packs::registry::{self, Access, Client, Reference};
use crate::packs::{self, Manifest, PackFileError};
use crate::{Diagnoser, Error, Limits};

#[derive(clap::Args)]
pub(crate) struct PackArgs {
    #[command(subcommand)]
    command: PackCommand,
}

/// How registries are reached: flags of `pack push|pull|login|logout` and of the commands that take `--rules`.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct RegistryArgs {
    /// Talk http, not https, to registries (a loopback registry without TLS gets http anyway).
    #[arg(long)]
    plain_http: bool,
    /// A PEM file of CA certificates to trust for registries, besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// The Docker-format file registry credentials are read from and `pack login` writes
    /// [default: $DOCKER_CONFIG/config.json or ~/.docker/config.json, then
    /// $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json].
    #[arg(long, value_name = "FILE")]
    registry_config: Option<PathBuf>,
}

impl RegistryArgs {
    pub(crate) fn options(&self, offline: bool) -> registry::Options {
        registry::Options {
            plain_http: self.plain_http,
            ca_file: self.ca_file.clone(),
            registry_config: self.registry_config.clone(),
            offline,
        }
    }
}

#[derive(Subcommand)]
enum PackCommand {
    /// Build a pack directory (pack.yaml with `.k8srule` files or a plugin) into one `.wasm` file.
    ///
    /// Example: k8srule pack build my-pack/ -o my-pack-1.0.0.wasm
    Build {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Embed the `.k8srule` sources too.
        #[arg(long)]
        with_sources: bool,
    },
    /// Show a pack file's manifest, rules and SHA-256 digest.
    ///
    /// Example: k8srule pack inspect my-pack-1.0.0.wasm
    Inspect {
        file: PathBuf,
        #[arg(short, long, value_parser = ["table", "json"], default_value = "table")]
        output: String,
    },
    /// Run the `.test.yaml` fixtures of a pack directory.
    ///
    /// Example: k8srule pack test my-pack/
    Test { dir: PathBuf },
    /// Push a pack file to an OCI registry.
    ///
    /// Example: k8srule pack push my-pack-1.0.0.wasm oci://registry.example.com/team/my-pack:1.0.0
    Push {
        file: PathBuf,
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Pull a pack file from an OCI registry, checking its digest.
    ///
    /// Example: k8srule pack pull oci://registry.example.com/team/my-pack:1.0.0 -o my-pack.wasm
    Pull {
        reference: String,
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Log in to a registry: check the credentials with it, then save them as `docker login` does.
    ///
    /// Example: echo "$TOKEN" | k8srule pack login ghcr.io -u me --password-stdin
    Login {
        /// The registry host (`host[:port]`).
        registry: String,
        #[arg(short, long)]
        username: String,
        /// The password or token (visible to other users in the process list; prefer --password-stdin).
        #[arg(short, long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password or token from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        registry_args: RegistryArgs,
    },
    /// Remove a registry's saved credentials.
    ///
    /// Example: k8srule pack logout ghcr.io
    Logout {
        registry: String,
        #[command(flatten)]
        registry_args: RegistryArgs,
    },
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PackFileError> {
    std::fs::write(path, bytes)
        .map_err(|e| PackFileError::Io { path: path.display().to_string(), message: e.to_string() })
}

fn read_file(path: &Path) -> Result<Vec<u8>, PackFileError> {
    std::fs::read(path).map_err(|e| PackFileError::Io { path: path.display().to_string(), message: e.to_string() })
}

pub(crate) fn run(args: PackArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, Error> {
    match args.command {
        PackCommand::Build { dir, output, with_sources } => {
            let built = packs::build(&dir, with_sources)?;
            write_file(&output, &built.bytes)?;
            // `explains` keys name causes of this pack or of the built-in rules
            let builtin = Diagnoser::builder().build()?;
            let others: Vec<_> = builtin.packs().map(|(_, info)| info).collect();
            for w in super::rules::unexplained(&[&built.info], &others) {
                let _ = writeln!(err, "{}", crate::report::sanitize::text(&w));
            }
            let _ = writeln!(
                out,
                "built {} {} ({} rules) -> {} ({} bytes, {})",
                built.manifest.name,
                built.manifest.version,
                built.info.rules.len(),
                output.display(),
                built.bytes.len(),
                packs::manifest::digest(&built.bytes)
            );
            Ok(0)
        }
        PackCommand::Inspect { file, output } => inspect(&file, output == "json", out),
        PackCommand::Test { dir } => {
            Manifest::read(&dir)?;
            let fixtures = fixture::find_fixtures(&dir)?;
            if fixtures.is_empty() {
                let _ = writeln!(err, "warning: {}: no `.test.yaml` fixtures", dir.display());
            }
            // fixtures beside a rule file test that file; the others (a plugin's) the whole pack
            let mut whole = None;
            let failed = fixture::run_all(
                &fixtures,
                |f| {
                    if fixture::rule_file(f).exists() {
                        return fixture::run_fixture(f);
                    }
                    let d = match whole.take() {
                        Some(d) => d,
                        None => Diagnoser::builder().builtin(false).rules_path(&dir).build()?,
                    };
                    let outcome = fixture::run_fixture_with(f, &d);
                    whole = Some(d);
                    outcome
                },
                out,
            );
            Ok(if failed == 0 { 0 } else { 1 })
        }
        PackCommand::Push { file, reference, registry } => {
            let reference = Reference::parse(&reference)?;
            let bytes = read_file(&file)?;
            let manifest =
                packs::manifest::embedded_manifest(&bytes, &file)?.ok_or_else(|| PackFileError::Manifest {
                    path: file.display().to_string(),
                    message: "has no pack manifest; build it with `k8srule pack build`".into(),
                })?;
            manifest.check(&file)?;
            let config = serde_json::to_vec(&manifest).unwrap_or_default();
            let title = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let manifest_digest = Client::new(reference.clone(), Access::Push, &registry.options(false))?
                .push(&bytes, &config, &title)?;
            // the manifest's digest is the one an `oci://` reference pins (the file's is another)
            let pinned = Reference { tag: None, digest: Some(manifest_digest), ..reference.clone() };
            let _ =
                writeln!(out, "pushed {} {} to {reference}\npin it: --rules {pinned}", manifest.name, manifest.version);
            Ok(0)
        }
        PackCommand::Pull { reference, output, registry } => {
            let reference = Reference::parse(&reference)?;
            let pulled = registry::pull(&reference, &registry.options(false), None)?;
            write_file(&output, &pulled.bytes)?;
            let _ = writeln!(
                out,
                "pulled {reference} (manifest {}) -> {} ({} bytes, {})\nload it pinned: --rules {}@{}",
                pulled.manifest_digest,
                output.display(),
                pulled.bytes.len(),
                pulled.digest,
                output.display(),
                pulled.digest
            );
            Ok(0)
        }
        PackCommand::Login { registry, username, password, password_stdin, registry_args } => {
            let secret = match password {
                Some(p) => p,
                None if password_stdin => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::Read::take(std::io::stdin(), 1 << 20), &mut text)
                        .map_err(|e| PackFileError::Io { path: "standard input".into(), message: e.to_string() })?;
                    text.trim_end_matches(['\n', '\r']).to_string()
                }
                None => {
                    return Err(PackFileError::Io {
                        path: "pack login".into(),
                        message: "give the password with --password-stdin (or --password)".into(),
                    }
                    .into());
                }
            };
            let credentials = Credentials { username, secret };
            let options = registry_args.options(false);
            Client::login(&registry, credentials.clone(), &options)?;
            let file = login_file(&registry_args)?;
            let saved = credentials::store(&file, &registry, &credentials).map_err(registry::OciError::from)?;
            let _ = writeln!(out, "logged in to {registry}; credentials saved in {saved}");
            Ok(0)
        }
        PackCommand::Logout { registry, registry_args } => {
            let file = login_file(&registry_args)?;
            if credentials::erase(&file, &registry).map_err(registry::OciError::from)? {
                let _ = writeln!(out, "removed the credentials for {registry} from {}", file.display());
            } else {
                let _ = writeln!(err, "warning: no credentials for {registry} in {}", file.display());
            }
            Ok(0)
        }
    }
}

fn login_file(args: &RegistryArgs) -> Result<PathBuf, PackFileError> {
    credentials::login_file(args.registry_config.as_deref()).ok_or_else(|| PackFileError::Io {
        path: "pack login".into(),
        message: "no file to keep credentials in: set HOME, DOCKER_CONFIG or --registry-config".into(),
    })
}

/// The manifest, whether this k8srule runs the pack, its digest, embedded
/// sources and the rules its `describe` declares.
fn inspect(file: &Path, json: bool, out: &mut dyn Write) -> Result<u8, Error> {
    let bytes = read_file(file)?;
    let manifest = packs::manifest::embedded_manifest(&bytes, file)?;
    let compatible = manifest.as_ref().map(|m| m.check(file).map_err(|e| e.to_string()));
    let sources = packs::manifest::embedded_sources(&bytes, file)?;
    let name = manifest.as_ref().map_or_else(|| file.display().to_string(), |m| m.name.clone());
    let info = Sandbox::new(Limits::default(), None)?.load(&name, &bytes)?.info;
    let digest = packs::manifest::digest(&bytes);
    let rules: Vec<serde_json::Value> = info.rules.iter().map(super::rules::rule_summary).collect();
    if json {
        let shown = serde_json::json!({
            "file": file.display().to_string(),
            "digest": digest,
            "size": bytes.len(),
            "manifest": manifest,
            "compatible": compatible.as_ref().map(|c| c.is_ok()),
            "incompatibility": compatible.as_ref().and_then(|c| c.as_ref().err()),
            "sources": sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "rules": rules,
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
        return Ok(0);
    }
    // the manifest and the rules' texts are the pack author's: shown escaped
    let mut text = String::new();
    let _ = writeln!(text, "file:        {} ({} bytes)", file.display(), bytes.len());
    let _ = writeln!(text, "digest:      {digest}");
    match &manifest {
        Some(m) => {
            let _ = writeln!(text, "pack:        {} {}", m.name, m.version);
            if !m.description.is_empty() {
                let _ = writeln!(text, "description: {}", m.description);
            }
            if !m.authors.is_empty() {
                let _ = writeln!(text, "authors:     {}", m.authors.join(", "));
            }
            let _ = writeln!(text, "requires:    k8srule {}, WIT k8srule:plugin@{}", m.k8srule, m.wit);
        }
        None => {
            let _ = writeln!(text, "pack:        no manifest (a bare component, not built by `k8srule pack build`)");
        }
    }
    if let Some(Err(why)) = &compatible {
        let _ = writeln!(text, "compatible:  no: {why}");
    }
    if !sources.is_empty() {
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let _ = writeln!(text, "sources:     {}", names.join(", "));
    }
    let _ = writeln!(text, "rules:       {}", rules.len());
    for r in &rules {
        let _ = writeln!(
            text,
            "  {:<36} {:<28} {:<9} {}",
            r["id"].as_str().unwrap_or(""),
            r["cause"].as_str().unwrap_or(""),
            r["severity"].as_str().unwrap_or(""),
            r["title"].as_str().unwrap_or("")
        );
    }
    let _ = write!(out, "{}", crate::report::sanitize::text(&text));
    Ok(0)
}
