//! The host's modules follow the flow ARCHITECTURE.md draws: a module imports
//! only from its own stage or an earlier one, and no modules import each
//! other in a cycle. Read from the sources, so a new import that breaks the
//! structure fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// The stages in the order the data moves; a module may use its own and earlier ones.
const STAGES: [&str; 7] = ["input", "evaluation", "report", "packs", "diagnoser", "watch", "cli"];

/// Every module of the host but the crate root: its path (`input::snapshot`) and its code, comments left out.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src()).unwrap().with_extension("");
                let name = rel.to_str().unwrap().replace('/', "::");
                let name = name.strip_suffix("::mod").unwrap_or(&name).to_string();
                if name != "lib" && name != "main" {
                    let code = std::fs::read_to_string(&path).unwrap();
                    let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
                    out.insert(name, code.join("\n"));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &mut out);
    out
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src")
}

fn stage(module: &str) -> usize {
    let top = module.split("::").next().unwrap();
    STAGES.iter().position(|s| *s == top).unwrap_or_else(|| panic!("module `{module}` is in no stage"))
}

/// The modules `module` uses: `crate::` paths (names the crate root
/// re-exports resolved to where they are defined), `super::` and `self::`
/// paths, and paths through its child modules.
fn uses(
    module: &str,
    code: &str,
    all: &BTreeMap<String, String>,
    reexports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let longest = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|p| all.contains_key(p))
    };
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let path = Regex::new(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let group = Regex::new(r"\bcrate::\{([^}]*)\}").unwrap();
    let bare = Regex::new(r"(?:^|[^:\w])([a-z_][a-z0-9_]*)::").unwrap();
    let mut out = BTreeSet::new();
    for c in path.captures_iter(code) {
        let rest = &c[2][2..];
        let full = match &c[1] {
            "crate" => match reexports.get(rest.split("::").next().unwrap()) {
                Some(defined) => defined.clone(),
                None => rest.to_string(),
            },
            "super" if parent.is_empty() => rest.to_string(),
            "super" => format!("{parent}::{rest}"),
            _ => format!("{module}::{rest}"),
        };
        out.extend(longest(&full));
    }
    for c in group.captures_iter(code) {
        for name in c[1].split(',').map(str::trim).filter(|n| !n.is_empty()) {
            out.extend(reexports.get(name).cloned().or_else(|| longest(name)));
        }
    }
    for c in bare.captures_iter(code) {
        out.extend(longest(&format!("{module}::{}", &c[1])).filter(|m| m != module));
    }
    out.remove(module);
    out
}

/// The names the crate root re-exports, and the module each is defined in.
fn reexports(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let item = Regex::new(r"(?m)^pub use ([a-z_:]+?)::(?:\{([^}]*)\}|(\w+)(?: as \w+)?);").unwrap();
    let mut out = BTreeMap::new();
    for c in item.captures_iter(&lib) {
        let names = c.get(2).or(c.get(3)).unwrap().as_str();
        for name in names.split(',').map(|n| n.trim().split(" as ").next().unwrap()).filter(|n| !n.is_empty()) {
            let module = c[1].to_string();
            let module =
                if all.contains_key(&format!("{module}::{name}")) { format!("{module}::{name}") } else { module };
            out.insert(name.to_string(), module);
        }
    }
    assert!(out.contains_key("Diagnoser") && out.contains_key("Snapshot"), "{out:?}");
    out
}

#[test]
fn modules_import_only_from_their_stage_or_earlier_ones_and_never_in_a_cycle() {
    let all = modules();
    let reexports = reexports(&all);
    let graph: BTreeMap<&str, BTreeSet<String>> =
        all.iter().map(|(m, code)| (m.as_str(), uses(m, code, &all, &reexports))).collect();
    // the parser sees what it must: a few imports known to exist
    assert!(graph["diagnoser"].contains("packs"), "{graph:#?}");
    assert!(graph["evaluation::sandbox"].contains("evaluation::cache"), "{graph:#?}");
    assert!(graph["report::findings"].contains("evaluation::contract"), "{graph:#?}");

    let backwards: Vec<String> = graph
        .iter()
        .flat_map(|(m, used)| used.iter().filter(|u| stage(u) > stage(m)).map(move |u| format!("{m} -> {u}")))
        .collect();
    assert!(backwards.is_empty(), "imports against the flow: {backwards:#?}");

    // a cycle is a module that reaches itself
    let in_cycles: Vec<&str> = graph
        .keys()
        .copied()
        .filter(|start| {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&str> = graph[start].iter().map(String::as_str).collect();
            while let Some(m) = todo.pop() {
                if m == *start {
                    return true;
                }
                if seen.insert(m) {
                    todo.extend(graph.get(m).into_iter().flatten().map(String::as_str));
                }
            }
            false
        })
        .collect();
    assert!(in_cycles.is_empty(), "modules that reach themselves through their imports: {in_cycles:?} in {graph:#?}");
}
