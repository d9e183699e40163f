//! `k8srule lsp`: a Language Server for `.k8srule` files on stdin/stdout
//! (rust-analyzer's `lsp-server`, synchronous: one thread answers in order).
//!
//! Diagnostics are `k8srule check`'s, published when a file is opened or
//! changed (changes queued meanwhile are checked once). Hover shows the
//! schema's type and Kubernetes documentation of a field, what a name is
//! bound to, a function's signature, a table's size; completion offers the
//! fields after a `.`, names, functions and quantifiers in expressions, clause
//! keywords at the start of a line and cause keys in `explains` (the loaded
//! packs' and the file's own); definition goes from a name to its `let`, `for`
//! or quantifier and from a lookup to its table; formatting is `k8srule fmt`.
//!
//! Bounds: a file over [`MAX_FILE_BYTES`], or whose syntax tree could nest
//! deeper than [`MAX_NESTING`], gets one diagnostic and nothing else; the
//! server runs on a thread whose stack holds that deep a tree; at most
//! [`MAX_DIAGNOSTICS`] problems of a file are published; a request that
//! fails unexpectedly is answered with an error and the server goes on.

use k8srule_dsl::parse::CLAUSES;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use k8srule_dsl::{SourceFile, Span, ast};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{Completion, Formatting, GotoDefinition, HoverRequest, Request as _};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionTextEdit, Diagnostic,
    DiagnosticSeverity, DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DocumentFormattingParams, Documentation, GotoDefinitionParams, GotoDefinitionResponse, Hover, HoverContents,
    HoverParams, HoverProviderCapability, Location, MarkupContent, MarkupKind, OneOf, Position,
    PublishDiagnosticsParams, Range, ServerCapabilities, TextDocumentContentChangeEvent, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Uri,
};
use serde_json::Value;

mod analysis;

use analysis::{Context, Meaning, Place};

/// Files larger than this are not analysed (the largest built-in rule file is ~5 KiB).
pub(crate) const MAX_FILE_BYTES: usize = 1 << 20;

/// A file is analysed only when its syntax tree cannot nest deeper than the parser's bound.
pub(crate) use k8srule_dsl::parse::MAX_NESTING;

/// The stack of the server's thread: room for [`MAX_NESTING`] levels.
use k8srule_dsl::parse::STACK_BYTES;

/// A file with more problems shows this many (and how many there are).
pub(crate) const MAX_DIAGNOSTICS: usize = 1000;

/// The functions of the language: name, signature, what it gives.
const FUNCTIONS: [(&str, &str, &str); 9] = [
    ("has", "has(path)", "True when the path is present (not null)."),
    ("age", "age(t)", "The seconds between the timestamp `t` and `now`: a duration (`age(t) > 5m`)."),
    ("time", "time(t)", "The timestamp `t` in seconds since the epoch (`time(a) - time(b)` is a duration)."),
    ("version", "version(s)", "The version in the text `s` (`v1.28.3`, `containerd://1.7.2`): compares with `1.28`."),
    ("quantity", "quantity(s)", "The Kubernetes quantity in the text `s` (`512Mi`, `100m`): compares with `1Gi`."),
    ("len", "len(x)", "The number of elements of a list, of bytes of a string."),
    ("coalesce", "coalesce(a, b, ...)", "The first of its arguments that is not null; null when all are."),
    (
        "join",
        "join(list, \", \")",
        "The strings and integers of a list in one text, with the separator between them (in texts).",
    ),
    (
        "capture",
        "capture(s, \"re\")",
        "The first group of the regular expression's first match in the text `s` (the whole match without a group); null when it does not match: `capture(s.message, \"0/([0-9]+) nodes\")`.",
    ),
];

const QUANTIFIERS: [(&str, &str, &str); 4] = [
    ("any", "any(x in list: condition)", "True when the condition holds for an element of the list."),
    ("all", "all(x in list: condition)", "True when the condition holds for every element (an empty list too)."),
    ("count", "count(x in list: condition)", "The number of elements for which the condition holds."),
    ("first", "let x = first(x in list: condition)", "The first element for which the condition holds, or null."),
];

/// A cause key `explains` may name, and where it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub key: String,
    pub about: String,
}

/// What the server knows of the loaded packs.
pub(crate) struct Packs {
    /// The causes of their rules, computed ones (`signal.{0}`) included:
    /// an `explains` key none of them covers is warned about, as `check` does.
    causes: Vec<String>,
    /// The keys `explains` completes.
    keys: Vec<Cause>,
}

pub(crate) fn packs(d: &crate::Diagnoser) -> Packs {
    let causes = d.packs().flat_map(|(_, info)| info.rules.iter().map(|r| r.cause.clone())).collect();
    Packs { causes, keys: keys(d) }
}

/// The cause keys of the loaded packs: the causes of their rules (not those
/// computed, such as `signal.{0}`) and the keys their rules explain.
fn keys(d: &crate::Diagnoser) -> Vec<Cause> {
    let rules = || d.packs().flat_map(|(pack, info)| info.rules.iter().map(move |r| (pack, r)));
    let own = rules().filter(|(_, r)| !r.cause.contains('{')).map(|(pack, r)| {
        let names: Vec<String> = r.arguments.iter().map(|a| format!("<{a}>")).collect();
        let title = crate::evaluation::template::render_template(
            crate::report::findings::pick(&r.title, &crate::Lang::EN),
            &names,
        );
        Cause { key: r.cause.clone(), about: format!("the cause of `{}` ({pack}): {title}", r.id) }
    });
    let explained = rules().flat_map(|(pack, r)| {
        r.explains.iter().map(move |key| Cause { key: key.clone(), about: format!("explained by `{}` ({pack})", r.id) })
    });
    // a key is shown as a rule's cause if it is one, else as the first rule's that explains it
    let mut out: Vec<Cause> = own.chain(explained).collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// Serves the Language Server Protocol on stdin and stdout until the client exits.
pub(crate) fn serve(packs: Packs) -> Result<(), String> {
    let server = std::thread::Builder::new()
        .name("k8srule-lsp".into())
        .stack_size(STACK_BYTES)
        .spawn(move || run(packs))
        .map_err(|e| format!("cannot start the server: {e}"))?;
    server.join().map_err(|_| "the server stopped unexpectedly".to_string())?
}

fn run(packs: Packs) -> Result<(), String> {
    let (connection, io) = Connection::stdio();
    let capabilities = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    connection.initialize(capabilities).map_err(|e| e.to_string())?;
    let mut server = Server { files: HashMap::new(), packs };
    'serve: while let Ok(first) = connection.receiver.recv() {
        let mut changed = BTreeMap::new();
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Request(req) => {
                    if connection.handle_shutdown(&req).map_err(|e| e.to_string())? {
                        break 'serve;
                    }
                    let _ = connection.sender.send(server.answer(req).into());
                }
                Message::Notification(n) => server.notified(n, &mut changed),
                Message::Response(_) => {}
            }
            // what came in meanwhile, before checking the changed files once
            next = connection.receiver.try_recv().ok();
        }
        for uri in changed.into_values() {
            let params = server.diagnostics(&uri);
            let _ = connection.sender.send(Notification::new(PublishDiagnostics::METHOD.into(), params).into());
        }
    }
    drop(connection);
    io.join().map_err(|e| e.to_string())
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "\"".into()]),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

struct File {
    text: String,
    version: i32,
}

/// The files changed since diagnostics were last published, by their URI's text (a `Uri` caches parts of itself: not a key).
type Changed = BTreeMap<String, Uri>;

struct Server {
    files: HashMap<String, File>,
    packs: Packs,
}

type Answer = Result<Value, (ErrorCode, String)>;

fn params<P: serde::de::DeserializeOwned>(req: Request) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(req.params).map_err(|e| (ErrorCode::InvalidParams, format!("{}: {e}", req.method)))
}

fn json(v: impl serde::Serialize) -> Answer {
    serde_json::to_value(v).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

impl Server {
    fn answer(&self, req: Request) -> Response {
        let id = req.id.clone();
        let method = req.method.clone();
        let answer = catch_unwind(AssertUnwindSafe(|| match method.as_str() {
            HoverRequest::METHOD => json(self.hover(params(req)?)),
            GotoDefinition::METHOD => json(self.definition(params(req)?)),
            Completion::METHOD => json(self.complete(params(req)?)),
            Formatting::METHOD => json(self.format(params(req)?)),
            _ => Err((ErrorCode::MethodNotFound, format!("k8srule lsp does not answer {method}"))),
        }));
        match answer {
            Ok(Ok(v)) => Response::new_ok(id, v),
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(_) => Response::new_err(id, ErrorCode::InternalError as i32, format!("{method} failed on this file")),
        }
    }

    fn notified(&mut self, n: Notification, changed: &mut Changed) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = n.extract::<DidOpenTextDocumentParams>(DidOpenTextDocument::METHOD) {
                    let doc = p.text_document;
                    self.files.insert(doc.uri.to_string(), File { text: doc.text, version: doc.version });
                    changed.insert(doc.uri.to_string(), doc.uri);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = n.extract::<DidChangeTextDocumentParams>(DidChangeTextDocument::METHOD)
                    && let Some(file) = self.files.get_mut(p.text_document.uri.as_str())
                {
                    for change in p.content_changes {
                        apply(&mut file.text, change);
                    }
                    file.version = p.text_document.version;
                    changed.insert(p.text_document.uri.to_string(), p.text_document.uri);
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = n.extract::<DidCloseTextDocumentParams>(DidCloseTextDocument::METHOD) {
                    // published once more, without diagnostics
                    self.files.remove(p.text_document.uri.as_str());
                    changed.insert(p.text_document.uri.to_string(), p.text_document.uri);
                }
            }
            _ => {}
        }
    }

    /// The text of an open file, unless it is refused.
    fn text(&self, uri: &Uri) -> Option<&str> {
        self.files.get(uri.as_str()).map(|f| f.text.as_str()).filter(|t| refused(t).is_none())
    }

    fn diagnostics(&self, uri: &Uri) -> PublishDiagnosticsParams {
        let (text, version) = self.files.get(uri.as_str()).map_or(("", None), |f| (f.text.as_str(), Some(f.version)));
        let name = uri.as_str();
        let found = catch_unwind(|| check(name, text, &self.packs.causes)).unwrap_or_else(|_| {
            vec![(Span::default(), "k8srule failed to check this file: please report it".to_string(), false)]
        });
        let lines = Lines::new(text);
        let diagnostics = found
            .into_iter()
            .map(|(span, message, warning)| Diagnostic {
                range: lines.range(span),
                severity: Some(if warning { DiagnosticSeverity::WARNING } else { DiagnosticSeverity::ERROR }),
                source: Some("k8srule".into()),
                message,
                ..Diagnostic::default()
            })
            .collect();
        PublishDiagnosticsParams { uri: uri.clone(), diagnostics, version }
    }

    fn hover(&self, p: HoverParams) -> Option<Hover> {
        let at = p.text_document_position_params;
        let text = self.text(&at.text_document.uri)?;
        let lines = Lines::new(text);
        let offset = lines.offset(at.position);
        let file = parse(text);
        if let Some(s) = explained_at(&file, offset) {
            let known = self.keys(&file).into_iter().find(|c| c.key == s.value);
            let about = known.map_or_else(|| "no loaded rule has this cause".to_string(), |c| c.about);
            return Some(markdown(format!("cause `{}`: {about}", s.value), lines.range(s.span)));
        }
        let analysis = analysis::analyze(&file, None);
        let found = analysis.at(offset)?;
        let shown = match &found.meaning {
            Meaning::Field(place) => field_doc(place)?,
            Meaning::Name(b) => match &b.place {
                Some(place) => {
                    let about = field_doc(place).unwrap_or_else(|| {
                        let ty = k8srule_dsl::type_at(&place.segments, place.base.as_deref());
                        format!("`{}`{}", place.show(), ty.map(|t| format!(": `{t}`")).unwrap_or_default())
                    });
                    format!("`{}` = {about}", b.name)
                }
                None => format!("`{}`: a value computed by `let`", b.name),
            },
            Meaning::Function(name) => {
                let (_, signature, doc) = FUNCTIONS.iter().find(|(n, ..)| n == name)?;
                format!("`{signature}`\n\n{doc}")
            }
            Meaning::Table { name, entries, .. } => format!("table `{name}`: {entries} entries, numbers to texts"),
        };
        Some(markdown(shown, lines.range(found.span)))
    }

    fn definition(&self, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let at = p.text_document_position_params;
        let text = self.text(&at.text_document.uri)?;
        let lines = Lines::new(text);
        let analysis = analysis::analyze(&parse(text), None);
        let def = match &analysis.at(lines.offset(at.position))?.meaning {
            Meaning::Name(b) => b.def,
            Meaning::Table { def, .. } => *def,
            Meaning::Field(_) | Meaning::Function(_) => return None,
        };
        Some(GotoDefinitionResponse::Scalar(Location { uri: at.text_document.uri, range: lines.range(def) }))
    }

    fn complete(&self, p: CompletionParams) -> Option<Vec<CompletionItem>> {
        let at = p.text_document_position;
        let text = self.text(&at.text_document.uri)?;
        let lines = Lines::new(text);
        let offset = lines.offset(at.position);
        let item = |label: &str, kind, detail: String, doc: &str| CompletionItem {
            label: label.to_string(),
            kind: Some(kind),
            detail: Some(detail),
            documentation: (!doc.is_empty()).then(|| {
                Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value: doc.to_string() })
            }),
            ..CompletionItem::default()
        };
        Some(match analysis::context(text, offset, parse)? {
            Context::Field(place) => k8srule_dsl::fields_at(&place.segments, place.base.as_deref())
                .iter()
                .map(|f| item(&f.name, CompletionItemKind::FIELD, f.ty.clone(), f.doc))
                .collect(),
            Context::Name { bindings, tables } => {
                let mut items: Vec<CompletionItem> = Vec::new();
                for b in bindings.iter().rev() {
                    if !items.iter().any(|i| i.label == b.name) {
                        let detail = b.place.as_ref().map_or_else(|| "let".to_string(), Place::show);
                        items.push(item(&b.name, CompletionItemKind::VARIABLE, detail, ""));
                    }
                }
                for f in k8srule_dsl::fields_at(&[], None) {
                    items.push(item(&f.name, CompletionItemKind::VARIABLE, f.ty.clone(), f.doc));
                }
                items.push(item("now", CompletionItemKind::VARIABLE, "time".into(), "The snapshot's time."));
                for (name, signature, doc) in FUNCTIONS {
                    items.push(item(name, CompletionItemKind::FUNCTION, signature.into(), doc));
                }
                for (name, signature, doc) in QUANTIFIERS {
                    items.push(item(name, CompletionItemKind::KEYWORD, signature.into(), doc));
                }
                for t in tables {
                    items.push(item(&t, CompletionItemKind::STRUCT, "table".into(), ""));
                }
                items
            }
            Context::Clause => {
                CLAUSES.iter().map(|c| item(c, CompletionItemKind::KEYWORD, "clause".into(), "")).collect()
            }
            Context::Cause { start } => {
                let range = Range { start: lines.position(start), end: lines.position(offset) };
                // the file with the string being typed closed empty
                let line_end = text[offset..].find('\n').map_or(text.len(), |n| offset + n);
                let closed = format!("{}\"{}", &text[..start], &text[line_end..]);
                self.keys(&parse(&closed))
                    .into_iter()
                    .map(|c| CompletionItem {
                        filter_text: Some(c.key.clone()),
                        text_edit: Some(CompletionTextEdit::Edit(TextEdit { range, new_text: c.key.clone() })),
                        ..item(&c.key, CompletionItemKind::VALUE, c.about, "")
                    })
                    .collect()
            }
        })
    }

    /// The cause keys `explains` may name: the loaded packs' and those of the rules of `file`.
    fn keys(&self, file: &ast::File) -> Vec<Cause> {
        let own = file.rules.iter().filter_map(|r| {
            let key = r.cause.as_ref()?.value.clone();
            (!key.contains('{')).then(|| Cause { key, about: format!("the cause of `{}` (this file)", r.id.name) })
        });
        let mut keys: Vec<Cause> = self.packs.keys.iter().cloned().chain(own).collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        keys.dedup_by(|a, b| a.key == b.key);
        keys
    }

    fn format(&self, p: DocumentFormattingParams) -> Option<Vec<TextEdit>> {
        let text = self.text(&p.text_document.uri)?;
        let formatted = k8srule_dsl::fmt::format(text).ok()?;
        let lines = Lines::new(text);
        Some(if formatted == text {
            Vec::new()
        } else {
            vec![TextEdit { range: lines.range(Span::new(0, text.len())), new_text: formatted }]
        })
    }
}

/// Why a file is not analysed: too large, or it could nest too deep.
fn refused(text: &str) -> Option<String> {
    if text.len() > MAX_FILE_BYTES {
        return Some(format!("this file is larger than {} KiB: run `k8srule check` on it", MAX_FILE_BYTES >> 10));
    }
    (k8srule_dsl::parse::nesting(text) > MAX_NESTING).then(|| {
        format!("this file has more than {MAX_NESTING} operators, brackets and dots: run `k8srule check` on it")
    })
}

/// `k8srule check`'s errors and warnings for one file, `explains` checked
/// against `causes`: where, the message with its help, whether a warning.
fn check(name: &str, text: &str, causes: &[String]) -> Vec<(Span, String, bool)> {
    if let Some(message) = refused(text) {
        return vec![(Span::default(), message, false)];
    }
    let files = [SourceFile::new(name, text)];
    let (_, mut found) = k8srule_dsl::check_files(&files, "lsp", "0.0.0");
    found.extend(k8srule_dsl::explains_warnings(&files, causes));
    let total = found.len();
    let mut shown: Vec<(Span, String, bool)> = found
        .into_iter()
        .take(MAX_DIAGNOSTICS)
        .map(|(_, d)| {
            let message = match &d.help {
                Some(help) => format!("{}\nhelp: {help}", d.message),
                None => d.message.clone(),
            };
            (d.span, message, d.warning)
        })
        .collect();
    if total > MAX_DIAGNOSTICS {
        let message = format!(
            "k8srule lsp shows the first {MAX_DIAGNOSTICS} of {total} problems of this file: `k8srule check` lists them all"
        );
        shown.push((Span::default(), message, false));
    }
    shown
}

/// The file as the recovering parser reads it: what parsed, even around errors.
fn parse(text: &str) -> ast::File {
    k8srule_dsl::parse::parse(text).0
}

/// The string of an `explains` clause at `offset`.
fn explained_at(file: &ast::File, offset: usize) -> Option<&ast::Str> {
    let mut explained = file.rules.iter().flat_map(|r| &r.explains);
    explained.find(|s| s.span.start <= offset && offset < s.span.end)
}

/// A field's type, where it is declared and its documentation.
fn field_doc(place: &Place) -> Option<String> {
    let f = k8srule_dsl::field_at(&place.segments, place.base.as_deref())?;
    Some(format!("`{}`: `{}` (`{}.{}`)\n\n{}", place.show(), f.ty, f.owner, f.name, f.doc))
}

fn markdown(value: String, range: Range) -> Hover {
    Hover { contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }), range: Some(range) }
}

/// A change of an open file: the whole text, or a range of it replaced.
fn apply(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        None => *text = change.text,
        Some(range) => {
            let lines = Lines::new(text);
            let (start, end) = (lines.offset(range.start), lines.offset(range.end));
            text.replace_range(start..end.max(start), &change.text);
        }
    }
}

/// Byte offsets to and from the protocol's positions: a line, and a column in UTF-16 code units.
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Lines { text, starts }
    }

    fn position(&self, offset: usize) -> Position {
        let offset = self.text.floor_char_boundary(offset.min(self.text.len()));
        let line = self.starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or_default();
        let character = self.text[start..offset].encode_utf16().count();
        Position { line: line as u32, character: character as u32 }
    }

    /// The offset of a position; past the end of its line, the line's end.
    fn offset(&self, p: Position) -> usize {
        let Some(&start) = self.starts.get(p.line as usize) else {
            return self.text.len();
        };
        let end = self.starts.get(p.line as usize + 1).map_or(self.text.len(), |next| next - 1);
        let mut units = 0;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= p.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }

    fn range(&self, span: Span) -> Range {
        let span = span.clamped(self.text);
        Range { start: self.position(span.start), end: self.position(span.end) }
    }
}

#[cfg(test)]
mod tests;
