//! The fuzz targets' saved corpus (`fuzz/corpus/<target>/`: the seeds, what
//! fuzzing kept, and every crash it found) replayed through the same target
//! functions on stable, and the crashes found as named regression tests.

use k8srule_tests::{fuzz, k8srule, root};

#[test]
fn the_saved_corpus_replays_without_a_panic() {
    for (target, run) in fuzz::TARGETS {
        let dir = root().join("fuzz/corpus").join(target);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "fuzz target `{target}` panics on {}", path.display());
            inputs += 1;
        }
        assert!(inputs > 0, "no corpus for `{target}` in {}", dir.display());
    }
}

#[test]
fn check_reports_a_smart_quote_with_a_caret_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("quote.k8srule");
    std::fs::write(&rule, "rule a {\n  cause \u{201c}x\u{201d}\n}\n").unwrap();
    let (code, _, err) = k8srule(&["check", &rule.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    let err = err.replace(&dir.path().display().to_string(), "DIR");
    // the rule's other mistakes are reported with it
    insta::assert_snapshot!(err, @r#"
    error: rule `a` has no `when` clause
     --> DIR/quote.k8srule:1:6
      |
    1 | rule a {
      |      ^
      |
      = help: add the condition under which it fires: `when ...`

    error: rule `a` has no `title`
     --> DIR/quote.k8srule:1:6
      |
    1 | rule a {
      |      ^
      |
      = help: add the finding's one-line message: `title "..."`

    error: rule `a` has no `severity` clause
     --> DIR/quote.k8srule:1:6
      |
    1 | rule a {
      |      ^
      |
      = help: add `severity info`, `warning`, `error` or `critical`

    error: expected a string
     --> DIR/quote.k8srule:2:9
      |
    2 |   cause “x”
      |         ^
      |
      = help: a string is written in straight double quotes, on one line: `"..."`

    4 error(s)
    "#);
}
