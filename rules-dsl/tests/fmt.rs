//! The built-in rules: the formatter is idempotent and keeps their meaning
//! (the formatted file compiles to the same component), and every key they
//! `explains` is the cause of one of them.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use k8srule_dsl::{SourceFile, compile, fmt::format};

fn builtin_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/builtin")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "k8srule") {
                out.push(p);
            }
        }
    }
    assert!(out.len() > 40, "found the built-in rules");
    out
}

#[test]
fn formatting_builtin_rules_is_idempotent_and_keeps_meaning() {
    for path in builtin_files() {
        let source = std::fs::read_to_string(&path).unwrap();
        let once = format(&source).unwrap();
        assert_eq!(format(&once).unwrap(), once, "{} is not stable", path.display());
        let name = path.display().to_string();
        let before = compile(&[SourceFile::new(&name, &source)], "p", "1").unwrap();
        let after = compile(&[SourceFile::new(&name, &once)], "p", "1").unwrap();
        assert!(before == after, "{} changed meaning", path.display());
        assert_eq!(
            source.matches('#').count() - source.matches("\\#").count(),
            once.matches('#').count(),
            "{}: comments",
            path.display()
        );
    }
}

#[test]
fn builtin_rules_explain_only_causes_the_builtin_rules_give() {
    let files: Vec<SourceFile> = builtin_files()
        .iter()
        .map(|p| SourceFile::new(p.display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let warnings = k8srule_dsl::explains_warnings(&files, &[]);
    assert!(warnings.is_empty(), "{}", k8srule_dsl::render(&files, &warnings).join("\n"));
}
