//! Rule tests: a `.test.yaml` beside a `.k8srule` file holds a snapshot and
//! exactly the findings its rules must give.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::packs::read_rule_files;
use crate::{Diagnoser, Error, LoadError, Snapshot};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    now: String,
    objects: Vec<serde_json::Value>,
    /// Container logs: `{pod: ns/name, container, previous, text}`.
    #[serde(default)]
    logs: Vec<FixtureLog>,
    #[serde(default)]
    expect: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureLog {
    pod: String,
    container: String,
    #[serde(default)]
    previous: bool,
    text: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
#[serde(deny_unknown_fields)]
struct Expected {
    rule: String,
    /// `namespace/name`, for a finding of a pod.
    #[serde(default)]
    pod: Option<String>,
    /// `namespace/Kind/name`, for a finding of a workload rule.
    #[serde(default)]
    workload: Option<String>,
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subject = self.pod.as_deref().or(self.workload.as_deref()).unwrap_or_default();
        write!(f, "{} on {subject}", self.rule)?;
        if let Some(c) = &self.container {
            write!(f, " container {c}")?;
        }
        if let Some(c) = &self.cause {
            write!(f, " cause {c}")?;
        }
        Ok(())
    }
}

/// The outcome of one fixture.
#[derive(Debug)]
pub struct Outcome {
    /// Expected findings that did not appear.
    pub missing: Vec<String>,
    /// Findings that were not expected.
    pub unexpected: Vec<String>,
    /// Pack errors while running it.
    pub errors: Vec<String>,
    pub findings: usize,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.errors.is_empty()
    }
}

/// Every `*.test.yaml` under `path` (or `path` itself).
pub fn find_fixtures(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |e: std::io::Error| LoadError::Io { path: path.display().to_string(), message: e.to_string() };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = crate::input::snapshot::files_under(path).map_err(io)?;
    out.retain(|p| p.to_string_lossy().ends_with(".test.yaml"));
    Ok(out)
}

/// The `.k8srule` file of the same stem as a fixture.
pub fn rule_file(fixture: &Path) -> PathBuf {
    PathBuf::from(fixture.display().to_string().trim_end_matches(".test.yaml").to_string() + ".k8srule")
}

/// Runs one fixture against the `.k8srule` file of the same stem.
pub fn run_fixture(path: &Path) -> Result<Outcome, Error> {
    let rule_file = rule_file(path);
    if !rule_file.exists() {
        return Err(LoadError::Invalid {
            path: path.display().to_string(),
            message: format!("no rule file `{}` beside it", rule_file.display()),
        }
        .into());
    }
    let files = read_rule_files(&rule_file)?;
    let diagnoser =
        Diagnoser::builder().builtin(false).rules_source(files[0].name.clone(), files[0].text.clone()).build()?;
    run_fixture_with(path, &diagnoser)
}

/// Runs one fixture against the packs of `diagnoser`.
pub fn run_fixture_with(path: &Path, diagnoser: &Diagnoser) -> Result<Outcome, Error> {
    let shown = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| LoadError::Io { path: shown.clone(), message: e.to_string() })?;
    let fixture: Fixture = serde_norway::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        LoadError::Parse { path: shown.clone(), line, column, message: e.to_string() }
    })?;
    let now = crate::input::snapshot::parse_time(&fixture.now).ok_or_else(|| LoadError::Invalid {
        path: shown.clone(),
        message: format!("`now` is not an RFC 3339 time: `{}`", fixture.now),
    })?;
    // loaded as `diagnose` loads files: only the fields the packs read
    let mut snapshot = Snapshot::new(now).keeping(diagnoser.fields()).reading_logs(diagnoser.logs());
    for o in fixture.objects {
        snapshot.add_value(&shown, &o)?;
    }
    for log in fixture.logs {
        let Some((namespace, pod)) = log.pod.split_once('/') else {
            return Err(LoadError::Invalid {
                path: shown,
                message: format!("log of pod `{}`: expected namespace/name", log.pod),
            }
            .into());
        };
        let key =
            crate::input::snapshot::LogKey { namespace: namespace.into(), pod: pod.into(), container: log.container };
        let run = if log.previous { ".previous" } else { "" };
        let source = format!("logs/{}/{}{run}.log", log.pod, key.container);
        snapshot
            .add_container_log(key, log.previous, &source, log.text.as_bytes())
            .map_err(|e| LoadError::Io { path: shown.clone(), message: e.to_string() })?;
    }
    let report = diagnoser.diagnose(&snapshot);
    let expected: BTreeSet<Expected> = fixture.expect.into_iter().collect();
    let with_cause = |f: &crate::Finding, cause: bool| Expected {
        rule: f.rule.clone(),
        pod: f.pod.clone(),
        workload: f.pod.is_none().then(|| f.workload.clone()).flatten(),
        container: f.container.clone(),
        cause: cause.then(|| f.cause.clone()),
    };
    let got: BTreeSet<Expected> = report
        .findings
        .iter()
        .map(|f| {
            let cause_given = expected.iter().any(|e| e.rule == f.rule && e.pod == f.pod && e.cause.is_some());
            with_cause(f, cause_given)
        })
        .collect();
    Ok(Outcome {
        missing: expected.difference(&got).map(ToString::to_string).collect(),
        unexpected: got.difference(&expected).map(ToString::to_string).collect(),
        errors: report.errors.iter().map(|e| format!("pack `{}`: {}", e.pack, e.message)).collect(),
        findings: report.findings.len(),
    })
}

/// Runs fixtures with `run`, writing a line per fixture (and what differs)
/// and a summary to `out`; returns the number that failed.
pub fn run_all(
    fixtures: &[PathBuf],
    mut run: impl FnMut(&Path) -> Result<Outcome, Error>,
    out: &mut dyn Write,
) -> usize {
    let (mut passed, mut failed) = (0, 0);
    for f in fixtures {
        match run(f) {
            Ok(o) if o.passed() => {
                passed += 1;
                let _ = writeln!(out, "ok    {} ({} findings)", f.display(), o.findings);
            }
            Ok(o) => {
                failed += 1;
                let _ = writeln!(out, "FAIL  {}", f.display());
                for m in &o.missing {
                    let _ = writeln!(out, "      - missing:    {m}");
                }
                for u in &o.unexpected {
                    let _ = writeln!(out, "      + unexpected: {u}");
                }
                for e in &o.errors {
                    let _ = writeln!(out, "      ! error:      {e}");
                }
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "FAIL  {}\n      {}", f.display(), e.to_string().replace('\n', "\n      "));
            }
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    failed
}
