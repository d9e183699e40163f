//! k8srule-host: diagnoses unhealthy Kubernetes pods by running rule packs
//! (WebAssembly components of the `k8srule:plugin` world) in a wasmtime sandbox.
//!
//! ```
//! use k8srule_host::{Diagnoser, Snapshot};
//!
//! let rule = r#"
//! rule demo.oom {
//!   cause "cgroup-oom"
//!   severity error
//!   for c in containers
//!   when c.lastState.terminated.reason == "OOMKilled"
//!   title "container {c.name} was OOMKilled"
//! }"#;
//! let diagnoser = Diagnoser::builder().builtin(false).rules_source("demo.k8srule", rule).build()?;
//!
//! let mut snapshot = Snapshot::new(0);
//! snapshot.add_text("pod.yaml", r#"
//! kind: Pod
//! metadata: {name: web, namespace: shop, uid: u1}
//! spec: {containers: [{name: app, image: shop:1}]}
//! status:
//!   containerStatuses:
//!   - name: app
//!     lastState: {terminated: {reason: OOMKilled, exitCode: 137}}
//! "#)?;
//!
//! let report = diagnoser.diagnose(&snapshot);
//! assert_eq!(report.findings[0].title, "container app was OOMKilled");
//! assert_eq!(report.findings[0].pod.as_deref(), Some("shop/web"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

//!
//! The crate is one flow, a folder per stage: `input` (files, bundles, a live
//! cluster → a snapshot), `evaluation` (cases, projection, the sandbox),
//! `report` (findings, ranking, renderers) and `packs` (manifests, the
//! registry, configuration); the [`Diagnoser`] drives them. See
//! ARCHITECTURE.md.
//!
//! Features, all on by default: `live` reads a cluster (kube, tokio), `oci`
//! pulls packs from registries, `cli` builds the `k8srule` binary. With
//! `default-features = false` the crate reads files and writes reports and
//! depends on none of them.

// Built without the CLI, the helpers only it calls (renderers of rules,
// pack building, the configuration file) are unused; the default build, which
// clippy checks with `-D warnings`, still reports dead code.
#![cfg_attr(not(feature = "cli"), allow(dead_code))]
// every public item is documented (internals reached through `test_support` are not public)
#![cfg_attr(not(feature = "test-support"), warn(missing_docs))]

#[cfg(feature = "cli")]
mod cli;
mod diagnoser;
mod evaluation;
mod input;
mod packs;
mod report;
#[cfg(feature = "live")]
mod watch;

pub use diagnoser::{Diagnoser, DiagnoserBuilder};
pub use evaluation::sandbox::{Limits, PackError};
#[cfg(feature = "live")]
pub use input::live::LiveError;
pub use input::snapshot::{LoadError, LogKey, Snapshot};
pub use packs::PackFileError;
pub use packs::config::ConfigError;
#[cfg(feature = "oci")]
pub use packs::credentials::CredentialsError;
#[cfg(feature = "oci")]
pub use packs::registry::{OciError, Options as RegistryOptions};
pub use report::group::{Group, GroupKind, NODE_CAUSES, Sort};
pub use report::render::{Format, Layout};
pub use report::{Finding, Lang, Report, ReportError, Severity, Summary};

/// The built-in rules, compiled at build time.
pub const BUILTIN_PACK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin.wasm"));

/// Why a [`Diagnoser`] could not be built, or a snapshot not read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that cannot be read or parsed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Rule files that do not compile; each diagnostic is rendered.
    #[error("{0}")]
    Compile(String),
    /// A pack the sandbox cannot be set up for.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A kubeconfig that does not load, a cluster that cannot be reached or read.
    #[cfg(feature = "live")]
    #[error(transparent)]
    Live(#[from] LiveError),
    /// A pack file or directory that cannot be used, or a pinned digest that does not match.
    #[error(transparent)]
    PackFile(#[from] PackFileError),
    /// A registry that cannot be reached, refuses, or answers something else than a pack.
    #[cfg(feature = "oci")]
    #[error(transparent)]
    Registry(#[from] OciError),
    /// A configuration file that cannot be read or does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A rule to disable or re-rank that no loaded rule matches.
    #[error("{setting} `{pattern}`: no loaded rule matches it (see `k8srule rules`)")]
    #[allow(missing_docs)]
    UnknownRule { setting: &'static str, pattern: String },
    /// A `redact` pattern that does not compile.
    #[error("{0}")]
    Redact(String),
}

/// Runs the `k8srule` command line: what `main` calls (not an API).
#[cfg(feature = "cli")]
#[doc(hidden)]
pub use cli::run as run_cli;

/// Internals the project's own tests, benchmark and fuzz targets reach; not
/// part of the API and not stable.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod test_support {
    #[cfg(feature = "cli")]
    pub use crate::cli::{fixture, reference};
    pub use crate::evaluation::sandbox;
    #[cfg(feature = "live")]
    pub use crate::input::live;
    pub use crate::input::{fields, snapshot, tree};
    pub mod packs {
        pub use crate::packs::*;
    }
    #[cfg(feature = "oci")]
    pub use crate::packs::registry;
    pub use crate::report::cause_matches;

    /// The pods of a snapshot, as stored.
    pub fn pods(snapshot: &crate::Snapshot) -> impl Iterator<Item = crate::input::tree::Doc<'_>> {
        snapshot.pods.iter().map(|n| snapshot.get(*n))
    }

    /// Each container log run a snapshot holds: `namespace/pod/container`,
    /// whether it is the previous run, and its lines as stored.
    pub fn container_logs(snapshot: &crate::Snapshot) -> Vec<(String, bool, Vec<String>)> {
        let line = |n: &crate::input::tree::Node| snapshot.get(*n).str_at(&["line"]).unwrap_or_default().to_string();
        let runs = snapshot.container_logs.iter();
        runs.map(|l| {
            (format!("{}/{}/{}", l.namespace, l.pod, l.container), l.previous, l.lines.iter().map(line).collect())
        })
        .collect()
    }

    #[cfg(feature = "live")]
    pub mod watch {
        pub use crate::watch::*;
    }
}
