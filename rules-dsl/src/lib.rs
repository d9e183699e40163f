//! The k8srule rule language: `.k8srule` source to a WebAssembly component.
//!
//! Phases: [`parse`] (pest, to a syntax tree with spans) -> [`check`] (names,
//! paths against the Kubernetes schema, types, texts; to IR) -> [`codegen`]
//! (IR to a core Wasm module) -> [`component`] (to a component of the
//! `k8srule:plugin` world).
//!
//! ```
//! let source = r#"
//! rule demo.oom {
//!   cause "cgroup-oom"
//!   severity error
//!   for c in containers
//!   when c.lastState.terminated.reason == "OOMKilled"
//!   title "container {c.name} was OOMKilled"
//! }"#;
//! let wasm = k8srule_dsl::compile(&[k8srule_dsl::SourceFile::new("demo.k8srule", source)], "demo", "0.1.0")
//!     .expect("compiles");
//! assert!(wasm.starts_with(b"\0asm"));
//! ```

pub mod ast;
pub mod check;
pub mod codegen;
pub mod component;
pub mod diag;
pub mod fmt;
pub mod ir;
pub mod pack;
pub mod parse;
mod schema;

pub use diag::{Diagnostic, Span};
/// The schema of what rules read, for editors: fields, their types and documentation.
pub use schema::{Field, field_at, fields_at, type_at};

/// One rule file: its name (for messages) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile { name: name.into(), text: text.into() }
    }
}

/// Errors of a compilation, each rendered with its file, line, caret and help.
#[derive(Debug, thiserror::Error)]
#[error("{}", rendered.join("\n"))]
pub struct CompileError {
    pub rendered: Vec<String>,
    /// `(file index, diagnostic)` pairs.
    pub diagnostics: Vec<(usize, Diagnostic)>,
}

/// Parses and checks files as one pack; returns the IR and every error found.
pub fn check_files(files: &[SourceFile], name: &str, version: &str) -> (ir::Pack, Vec<(usize, Diagnostic)>) {
    let mut parsed = Vec::new();
    let mut diags = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (ast, errors) = parse::parse(&f.text);
        parsed.push(ast);
        diags.extend(errors.into_iter().map(|d| (i, d)));
    }
    let (pack, more) = check::check(name, version, &parsed);
    diags.extend(more);
    diags.sort_by_key(|(i, d)| (*i, d.span.start));
    (pack, diags)
}

/// Warnings for `explains` keys that no loaded rule's cause gives, itself or
/// refined: a typo there silently breaks ranking. `causes` are the cause
/// keys of the other loaded packs (the built-in rules, `--rules` packs);
/// those of `files` count too.
pub fn explains_warnings(files: &[SourceFile], causes: &[String]) -> Vec<(usize, Diagnostic)> {
    let parsed: Vec<ast::File> = files.iter().map(|f| parse::parse(&f.text).0).collect();
    let rules = || parsed.iter().enumerate().flat_map(|(i, f)| f.rules.iter().map(move |r| (i, r)));
    let mut all: Vec<&str> = causes.iter().map(String::as_str).collect();
    all.extend(rules().filter_map(|(_, r)| r.cause.as_ref()).map(|c| c.value.as_str()));
    let mut warnings = Vec::new();
    for (i, rule) in rules() {
        for key in rule.explains.iter().filter(|k| !all.iter().any(|c| pack::cause_covers(c, &k.value))) {
            let literal = all.iter().copied().filter(|c| !c.contains('{'));
            let help = match diag::did_you_mean(&key.value, literal) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "a key names the `cause` of a rule, such as `state.CrashLoopBackOff`".to_string(),
            };
            let message = format!("no loaded rule has the cause `{}`, so this explains nothing", key.value);
            warnings.push((i, Diagnostic::warning(key.span, message).with_help(help)));
        }
    }
    warnings
}

/// Renders diagnostics against their files.
pub fn render(files: &[SourceFile], diags: &[(usize, Diagnostic)]) -> Vec<String> {
    diags.iter().map(|(i, d)| d.render(&files[*i].name, &files[*i].text)).collect()
}

/// Compiles rule files into one component implementing `k8srule:plugin/rule-pack`.
pub fn compile(files: &[SourceFile], name: &str, version: &str) -> Result<Vec<u8>, CompileError> {
    let (pack, diagnostics) = check_files(files, name, version);
    if !diagnostics.is_empty() {
        return Err(CompileError { rendered: render(files, &diagnostics), diagnostics });
    }
    let module = codegen::module(&pack);
    component::componentize(module)
        .map_err(|e| CompileError { rendered: vec![format!("error: {e}")], diagnostics: Vec::new() })
}
