//! `k8srule.yaml`: the setup a team commits beside its rules. The packs to
//! load (as `--rules` takes them, relative to the file), whether to load the
//! built-in rules, rules to disable, severity overrides, namespaces not to
//! diagnose and log text to redact. Flags override it: `--rules` replaces its packs, `--no-builtin`
//! wins over `builtin: true`.
//!
//! ```yaml
//! packs: [packs/image-ref-1.0.0.wasm@sha256:4f1c..., team-rules/]
//! builtin: true
//! disable: [states.waiting, signals.*]
//! severity: {crashloop.cgroup-oom: critical}
//! skipNamespaces: [kube-system]
//! redact: ['customer-[0-9]+']   # container log text to redact, beside the built-in patterns
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::report::Severity;

/// The file looked for in the current directory when `--config` is not given.
pub const FILE: &str = "k8srule.yaml";

/// A configuration file that cannot be read or does not parse.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // the fields are what the message shows
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The file is not valid YAML for a configuration.
    #[error("{path}:{line}:{column}: {message}")]
    Parse { path: String, line: usize, column: usize, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Packs to load, each as `--rules` takes it; relative to the file's directory.
    #[serde(default)]
    pub packs: Vec<String>,
    /// Whether to load the built-in rules (default: yes).
    #[serde(default)]
    pub builtin: Option<bool>,
    /// Rule ids, or prefixes ending in `*`, whose findings are not reported.
    #[serde(default)]
    pub disable: Vec<String>,
    /// A severity per rule id (or prefix ending in `*`).
    #[serde(default)]
    pub severity: BTreeMap<String, SeverityName>,
    /// Namespaces whose pods are not diagnosed.
    #[serde(default)]
    pub skip_namespaces: Vec<String>,
    /// Patterns (RE2) of container log text to redact, beside the built-in ones.
    #[serde(default)]
    pub redact: Vec<String>,
    #[serde(skip)]
    pub dir: PathBuf,
}

/// A severity as the file writes it: `info`, `warning`, `error` or `critical`.
#[derive(Debug, Clone, Copy)]
pub struct SeverityName(pub Severity);

impl<'de> Deserialize<'de> for SeverityName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map(SeverityName).map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// The file `--config` names, else `k8srule.yaml` in the current directory if there is one.
    pub fn find(explicit: Option<&Path>) -> Result<Option<Config>, ConfigError> {
        match explicit {
            Some(path) => Config::read(path).map(Some),
            None if Path::new(FILE).is_file() => Config::read(Path::new(FILE)).map(Some),
            None => Ok(None),
        }
    }

    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: shown.clone(), message: e.to_string() })?;
        let mut config: Config = serde_norway::from_str(&text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            ConfigError::Parse { path: shown, line, column, message: e.to_string() }
        })?;
        config.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }
}
