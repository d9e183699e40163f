//! The accuracy corpus (`tests/corpus/<family>/<case>.yaml`): each case is a
//! snapshot with the findings the built-in rules must give and must not give.
//! Prints recall and must-not findings per family; fails on a recall below
//! 0.95 or any must-not finding.
//!
//! `cargo test -p k8srule-tests --test it corpus -- --nocapture`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8srule_host::test_support::cause_matches;
use k8srule_host::{Diagnoser, Finding};
use serde_json::Value;

/// A finding a case names: the pod (or, for a workload rule, the workload
/// `ns/Kind/name`), and optionally the rule, the cause (a refinement matches
/// its parent) and the container.
#[derive(Debug)]
struct Expect {
    subject: String,
    rule: Option<String>,
    cause: Option<String>,
    container: Option<String>,
}

impl Expect {
    fn parse(case: &Path, list: &str, v: &Value) -> Expect {
        let map = v.as_object().unwrap_or_else(|| panic!("{}: `{list}` entries are maps", case.display()));
        for key in map.keys() {
            assert!(
                ["pod", "workload", "rule", "cause", "container"].contains(&key.as_str()),
                "{}: unknown key `{key}` in `{list}`",
                case.display()
            );
        }
        let field = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
        Expect {
            subject: (field("pod").or_else(|| field("workload")))
                .unwrap_or_else(|| panic!("{}: a `{list}` entry has no pod or workload", case.display())),
            rule: field("rule"),
            cause: field("cause"),
            container: field("container"),
        }
    }

    fn matches(&self, f: &Finding) -> bool {
        f.subject() == self.subject
            && self.rule.as_ref().is_none_or(|r| *r == f.rule)
            && self.cause.as_ref().is_none_or(|c| cause_matches(&f.cause, c))
            && self.container.as_ref().is_none_or(|c| f.container.as_ref() == Some(c))
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.subject)?;
        for (k, v) in [("rule", &self.rule), ("cause", &self.cause), ("container", &self.container)] {
            if let Some(v) = v {
                write!(f, " {k}={v}")?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Score {
    cases: usize,
    must: usize,
    found: usize,
    must_not: usize,
    hits: usize,
}

fn cases(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for family in std::fs::read_dir(root).unwrap() {
        let family = family.unwrap().path();
        if !family.is_dir() {
            continue;
        }
        let name = family.file_name().unwrap().to_string_lossy().to_string();
        for case in std::fs::read_dir(&family).unwrap() {
            let case = case.unwrap().path();
            if case.extension().is_some_and(|e| e == "yaml") {
                out.push((name.clone(), case));
            }
        }
    }
    out.sort();
    out
}

/// The snapshot and the findings of one case (which must cite its sources),
/// diagnosed by `d`.
fn diagnose(d: &Diagnoser, case: &Path) -> (Value, Vec<Finding>) {
    let text = std::fs::read_to_string(case).unwrap();
    assert!(text.contains("# source:"), "{}: cite the messages' source in a `# source:` comment", case.display());
    let doc: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let now = doc["now"].as_str().and_then(k8srule_host::test_support::snapshot::parse_time);
    let now = now.unwrap_or_else(|| panic!("{}: `now` must be an RFC 3339 time", case.display()));
    let mut snapshot = d.snapshot(now);
    for o in doc["objects"].as_array().unwrap_or_else(|| panic!("{}: no `objects` list", case.display())) {
        snapshot.add_value(&case.display().to_string(), o).unwrap();
    }
    let report = d.diagnose(&snapshot);
    assert!(report.errors.is_empty(), "{}: pack errors {:?}", case.display(), report.errors);
    (doc, report.findings)
}

#[test]
fn corpus_recall_and_false_positives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let d = Diagnoser::builder().build().unwrap();
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut failures = Vec::new();
    let all = cases(&root);
    for (family, case) in &all {
        let (doc, findings) = diagnose(&d, case);
        let list = |key: &str| -> Vec<Expect> {
            doc[key].as_array().map_or(Vec::new(), |l| l.iter().map(|v| Expect::parse(case, key, v)).collect())
        };
        let (must, must_not) = (list("must"), list("must_not"));
        assert!(!must.is_empty() || !must_not.is_empty(), "{}: neither `must` nor `must_not`", case.display());
        let score = scores.entry(family.clone()).or_default();
        score.cases += 1;
        let name = case.strip_prefix(&root).unwrap().display().to_string();
        for e in &must {
            score.must += 1;
            if findings.iter().any(|f| e.matches(f)) {
                score.found += 1;
            } else {
                failures.push(format!("{name}: missing {e}"));
            }
        }
        for e in &must_not {
            score.must_not += 1;
            for f in findings.iter().filter(|f| e.matches(f)) {
                score.hits += 1;
                failures.push(format!("{name}: must not give {e}, got {} ({})", f.rule, f.cause));
            }
        }
    }
    println!("{:<14} {:>5} {:>6} {:>7} {:>9} {:>16}", "family", "cases", "must", "found", "recall", "must-not hits");
    let mut total = Score::default();
    for (family, s) in &scores {
        println!(
            "{family:<14} {:>5} {:>6} {:>7} {:>9.3} {:>9} of {:<4}",
            s.cases,
            s.must,
            s.found,
            recall(s),
            s.hits,
            s.must_not
        );
        total.cases += s.cases;
        total.must += s.must;
        total.found += s.found;
        total.must_not += s.must_not;
        total.hits += s.hits;
    }
    println!(
        "{:<14} {:>5} {:>6} {:>7} {:>9.3} {:>9} of {:<4}",
        "total",
        total.cases,
        total.must,
        total.found,
        recall(&total),
        total.hits,
        total.must_not
    );
    for f in &failures {
        println!("  {f}");
    }
    assert!(total.cases >= 60, "the corpus holds {} cases, fewer than 60", total.cases);
    assert!(recall(&total) >= 0.95, "recall {:.3} is below 0.95", recall(&total));
    assert_eq!(total.hits, 0, "must-not findings were given");
}

fn recall(s: &Score) -> f64 {
    if s.must == 0 { 1.0 } else { s.found as f64 / s.must as f64 }
}

/// The scorer's matching: a refined cause counts as its parent, a container
/// must be the one named.
#[test]
fn the_scorer_matches_refined_causes_and_containers() {
    let f = Finding {
        rule: "creating.image-pull-rate-limited".into(),
        cause: "image-pull-failure.rate-limited".into(),
        severity: k8srule_host::Severity::Error,
        confidence: 1.0,
        pod: Some("default/web".into()),
        workload: None,
        node: None,
        container: Some("app".into()),
        title: String::new(),
        evidence: Vec::new(),
        confirm: Vec::new(),
        fix: Vec::new(),
        explained_by: None,
        pack: "builtin".into(),
        cluster: None,
        silenced: None,
        explains: Vec::new(),
    };
    let e = |cause: &str, container: Option<&str>| Expect {
        subject: "default/web".into(),
        rule: None,
        cause: Some(cause.into()),
        container: container.map(Into::into),
    };
    assert!(e("image-pull-failure", Some("app")).matches(&f));
    assert!(e("image-pull-failure.rate-limited", None).matches(&f));
    assert!(!e("image-pull-failure.not-found", None).matches(&f));
    assert!(!e("image-pull-failure", Some("sidecar")).matches(&f));
}

/// `--disable image-pull-failure` (a cause key) disables the rules of its
/// refinements too; the symptom's rule stays.
#[test]
fn a_disabled_cause_key_disables_its_refinements() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/image-pull/rate-limited-containerd.yaml");
    let causes = |d: &Diagnoser| diagnose(d, &case).1.into_iter().map(|f| f.cause).collect::<Vec<_>>();
    let all = causes(&Diagnoser::builder().build().unwrap());
    assert!(all.contains(&"image-pull-failure.rate-limited".to_string()), "{all:?}");
    let left = causes(&Diagnoser::builder().disable_rule("image-pull-failure").build().unwrap());
    assert!(!left.iter().any(|c| cause_matches(c, "image-pull-failure")), "{left:?}");
    assert!(left.contains(&"state.ImagePullBackOff".to_string()), "{left:?}");
}
