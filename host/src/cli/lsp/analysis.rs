//! What a position in a rule file means: the paths, names and functions of
//! its expressions (placeholders of texts included), the definitions they
//! refer to, and what may be written at a position.

use k8srule_dsl::Span;
use k8srule_dsl::ast::{self, Expr, ExprKind};
use k8srule_dsl::check::{CASE_LISTS, CASE_OBJECTS};
use k8srule_dsl::pack::join_path;

/// Where a path starts (a collection, such as `containers[].events`, or the
/// case) and the fields after it, as the schema walks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    pub base: Option<String>,
    pub segments: Vec<String>,
}

impl Place {
    fn child(&self, segment: &str) -> Place {
        let mut segments = self.segments.clone();
        segments.push(segment.to_string());
        Place { base: self.base.clone(), segments }
    }

    /// An element of the list at this place.
    fn element(&self) -> Place {
        let path = join_path(&self.segments);
        let base = match &self.base {
            None => path,
            Some(b) if path.is_empty() => b.clone(),
            Some(b) => format!("{b}[].{path}"),
        };
        Place { base: Some(base), segments: Vec::new() }
    }

    /// The place without its last field: what a field is read from.
    pub fn parent(&self) -> Option<Place> {
        let (_, parent) = self.segments.split_last()?;
        Some(Place { base: self.base.clone(), segments: parent.to_vec() })
    }

    /// As a person reads it: `containers[].lastState`, `containers[]` for an element.
    pub fn show(&self) -> String {
        let path = join_path(&self.segments);
        match &self.base {
            None => path,
            Some(b) if path.is_empty() => format!("{b}[]"),
            Some(b) => format!("{b}[].{path}"),
        }
    }
}

/// A name bound by `for`, `let` or a quantifier.
#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub name: String,
    pub def: Span,
    /// What the name stands for when it is a path or a list element; none for a computed value.
    pub place: Option<Place>,
}

#[derive(Debug, Clone)]
pub(super) enum Meaning {
    /// A field of a path, or a name of the case such as `pod`.
    Field(Place),
    /// A bound name, where it is used or defined.
    Name(Binding),
    Function(String),
    Table {
        name: String,
        def: Span,
        entries: usize,
    },
}

/// A span of the file and what it means.
#[derive(Debug, Clone)]
pub(super) struct Ref {
    pub span: Span,
    pub meaning: Meaning,
}

/// The meanings of every name, path and function of a file.
pub(super) struct Analysis {
    pub refs: Vec<Ref>,
    /// The names visible where a name starts at the probed offset.
    pub scope_at_probe: Option<Vec<Binding>>,
}

impl Analysis {
    /// The innermost meaning at `offset` (a position just after a name counts).
    pub fn at(&self, offset: usize) -> Option<&Ref> {
        self.refs
            .iter()
            .filter(|r| r.span.start <= offset && offset <= r.span.end)
            .min_by_key(|r| (r.span.end - r.span.start, usize::from(r.span.end == offset)))
    }
}

/// Walks a file's rules: `probe`, an offset where a name starts, asks for the names visible there.
pub(super) fn analyze(file: &ast::File, probe: Option<usize>) -> Analysis {
    let mut w = Walker { tables: &file.tables, refs: Vec::new(), scope: Vec::new(), probe, scope_at_probe: None };
    for rule in &file.rules {
        w.rule(rule);
    }
    Analysis { refs: w.refs, scope_at_probe: w.scope_at_probe }
}

struct Walker<'f> {
    tables: &'f [ast::Table],
    refs: Vec<Ref>,
    scope: Vec<Binding>,
    probe: Option<usize>,
    scope_at_probe: Option<Vec<Binding>>,
}

impl Walker<'_> {
    fn rule(&mut self, rule: &ast::Rule) {
        self.scope.clear();
        if let Some((var, list)) = &rule.each {
            let element = match &list.kind {
                // as the checker reads it: the variable is the case's workload
                ExprKind::Ident(name) if name == "workloads" => {
                    Some(Place { base: None, segments: vec!["workload".to_string()] })
                }
                _ => self.expr(list).map(|p| p.element()),
            };
            self.bind(var, element);
        }
        for (name, e) in &rule.lets {
            let place = match &e.kind {
                ExprKind::Quantifier(ast::Quant::First, var, list, cond) => self.quantifier(var, list, cond),
                _ => self.expr(e),
            };
            self.bind(name, place);
        }
        if let Some(when) = &rule.when {
            self.expr(when);
        }
        let texts = rule.texts.iter().flat_map(|t| std::iter::once(&t.en).chain(t.translations.iter().map(|(_, s)| s)));
        for s in rule.cause.iter().chain(texts) {
            self.placeholders(s);
        }
    }

    fn bind(&mut self, id: &ast::Ident, place: Option<Place>) {
        let binding = Binding { name: id.name.clone(), def: id.span, place };
        self.refs.push(Ref { span: id.span, meaning: Meaning::Name(binding.clone()) });
        self.scope.push(binding);
    }

    fn quantifier(&mut self, var: &ast::Ident, list: &Expr, cond: &Expr) -> Option<Place> {
        let element = self.expr(list).map(|p| p.element());
        let depth = self.scope.len();
        self.bind(var, element.clone());
        self.expr(cond);
        self.scope.truncate(depth);
        element
    }

    /// Records the meanings inside `e`; the place it denotes when it is a path.
    fn expr(&mut self, e: &Expr) -> Option<Place> {
        match &e.kind {
            ExprKind::Ident(name) => {
                if self.probe == Some(e.span.start) {
                    self.scope_at_probe = Some(self.scope.clone());
                }
                if let Some(b) = self.scope.iter().rev().find(|b| b.name == *name) {
                    let b = b.clone();
                    self.refs.push(Ref { span: e.span, meaning: Meaning::Name(b.clone()) });
                    return b.place;
                }
                if !CASE_OBJECTS.contains(&name.as_str()) && !CASE_LISTS.contains(&name.as_str()) {
                    return None;
                }
                let place = Place { base: None, segments: vec![name.clone()] };
                self.refs.push(Ref { span: e.span, meaning: Meaning::Field(place.clone()) });
                Some(place)
            }
            ExprKind::Field(base, field) => {
                let place = self.expr(base)?.child(&field.name);
                self.refs.push(Ref { span: field.span, meaning: Meaning::Field(place.clone()) });
                Some(place)
            }
            ExprKind::Index(base, index) => {
                if let ExprKind::Ident(name) = &base.kind
                    && !self.scope.iter().any(|b| b.name == *name)
                    && let Some(t) = self.tables.iter().find(|t| t.name.name == *name)
                {
                    let meaning = Meaning::Table { name: name.clone(), def: t.name.span, entries: t.entries.len() };
                    self.refs.push(Ref { span: base.span, meaning });
                    self.expr(index);
                    return None;
                }
                let place = self.expr(base);
                self.expr(index);
                match &index.kind {
                    ExprKind::Str(key) => place.map(|p| p.child(key)),
                    _ => None,
                }
            }
            ExprKind::Call(name, args) => {
                self.refs.push(Ref { span: name.span, meaning: Meaning::Function(name.name.clone()) });
                for a in args {
                    self.expr(a);
                }
                None
            }
            ExprKind::Quantifier(_, var, list, cond) => {
                self.quantifier(var, list, cond);
                None
            }
            ExprKind::Not(inner) | ExprKind::Neg(inner) => {
                self.expr(inner);
                None
            }
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
                None
            }
            ExprKind::List(items) => {
                for item in items {
                    self.expr(item);
                }
                None
            }
            _ => None,
        }
    }

    /// The `{expr}` placeholders of a text, as the checker finds them.
    fn placeholders(&mut self, s: &ast::Str) {
        let text = s.value.as_str();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match (bytes[i], bytes.get(i + 1)) {
                (b'{', Some(b'{')) | (b'}', Some(b'}')) => i += 2,
                (b'{', _) => {
                    let Some(len) = text[i + 1..].find('}') else {
                        return;
                    };
                    if let Some(&start) = s.offsets.get(i + 1)
                        && let Ok(e) = k8srule_dsl::parse::parse_expr(&text[i + 1..i + 1 + len], start)
                    {
                        self.expr(&e);
                    }
                    i += len + 2;
                }
                _ => i += 1,
            }
        }
    }
}

/// What may be written at a position.
pub(super) enum Context {
    /// A field of the object at this place, after a `.`.
    Field(Place),
    /// A name in an expression: these bound names, the case's names, functions, quantifiers and tables.
    Name { bindings: Vec<Binding>, tables: Vec<String> },
    /// A clause keyword at the start of a line.
    Clause,
    /// A cause key in the string of `explains` whose text starts at `start`.
    Cause { start: usize },
}

/// A name completion stands in for the word being typed while the file is
/// parsed again: the same trick as rust-analyzer's.
const PROBE: &str = "k8sruleCompletionProbe";

/// What may be written at `offset`; `parse` parses a file (what of it parses).
pub(super) fn context(text: &str, offset: usize, parse: impl Fn(&str) -> ast::File) -> Option<Context> {
    let offset = text.floor_char_boundary(offset.min(text.len()));
    let before = &text[..offset];
    let lexical = lexical(before);
    match lexical {
        Lexical::Comment => return None,
        Lexical::String(quote) => {
            if explains_before(&text[..quote]) {
                return Some(Context::Cause { start: quote + 1 });
            }
            // inside a text, only in an open `{placeholder}`
            let inside = &before[quote + 1..];
            let open = inside.rfind('{')?;
            if inside[open..].contains('}') || inside[..open].ends_with('{') {
                return None;
            }
        }
        Lexical::Code => {}
    }
    let word = before.len() - before.bytes().rev().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    let probed = format!("{}{PROBE}{}", &text[..word], &text[offset..]);
    let file = parse(&probed);
    let analysis = analyze(&file, Some(word));
    if before[..word].ends_with('.') {
        let found = analysis.refs.iter().find(|r| r.span.start == word && matches!(r.meaning, Meaning::Field(_)));
        return match found.map(|r| &r.meaning) {
            Some(Meaning::Field(p)) => p.parent().map(Context::Field),
            _ => None,
        };
    }
    if let Some(bindings) = analysis.scope_at_probe {
        let tables = file.tables.iter().map(|t| t.name.name.clone()).collect();
        return Some(Context::Name { bindings, tables });
    }
    let line = &before[before[..word].rfind('\n').map_or(0, |n| n + 1)..word];
    (matches!(lexical, Lexical::Code) && line.trim().is_empty()).then_some(Context::Clause)
}

enum Lexical {
    Code,
    Comment,
    /// In a string whose opening quote is at this offset.
    String(usize),
}

/// Whether the end of `before` is in code, a comment or a string.
fn lexical(before: &str) -> Lexical {
    let mut state = Lexical::Code;
    let mut bytes = before.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        state = match (state, b) {
            (Lexical::Code, b'#') => Lexical::Comment,
            (Lexical::Code, b'"') => Lexical::String(i),
            (Lexical::Comment, b'\n') | (Lexical::String(_), b'"') => Lexical::Code,
            (Lexical::String(start), b'\\') => {
                bytes.next();
                Lexical::String(start)
            }
            (s, _) => s,
        };
    }
    state
}

/// Whether `before` (the text before a string) ends with `explains` and the
/// strings already given to it: `explains "a", `.
fn explains_before(before: &str) -> bool {
    let mut rest = before.trim_end();
    while let Some(r) = rest.strip_suffix(',') {
        // the previous string: back to its opening quote
        let Some(r) = r.trim_end().strip_suffix('"') else {
            return false;
        };
        let mut end = r.len();
        loop {
            let Some(q) = r[..end].rfind('"') else {
                return false;
            };
            let escapes = r[..q].bytes().rev().take_while(|b| *b == b'\\').count();
            if escapes % 2 == 0 {
                rest = r[..q].trim_end();
                break;
            }
            end = q;
        }
    }
    rest.strip_suffix("explains").is_some_and(|r| r.is_empty() || r.ends_with(|c: char| c.is_whitespace()))
}
