//! Source text to syntax tree, with pest. Parsing never fails: a file that
//! does not parse as a whole is read again item by item and, inside an item
//! that does not parse, clause by clause (`recover`), so every syntax error is
//! reported, each once, and everything else still reaches the checker.

use std::cell::RefCell;

use pest::Parser as _;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::diag::{Diagnostic, Span, did_you_mean};

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct Grammar;

/// The words that start a clause.
pub const CLAUSES: [&str; 14] = [
    "cause",
    "severity",
    "confidence",
    "explains",
    "for",
    "let",
    "when",
    "title",
    "detects",
    "why",
    "confirm",
    "fix",
    "evidence",
    "ref",
];

/// The parser, the checker and the formatter recurse once per level of an
/// expression, and every level takes an operator, a bracket or a dot: a file
/// with at most this many cannot nest deeper, and is parsed (the largest
/// built-in rule has 222, all of them together about 10,400). Deeper needs
/// about 20 KiB of stack a level in a debug build: the `k8srule` binary runs
/// on a 1 GiB stack (reserved, used only as deep as a file goes).
pub const MAX_NESTING: usize = 20_000;

/// The stack a thread that parses, checks, compiles or formats rule files
/// needs for [`MAX_NESTING`] levels (~20 KiB each in a debug build): reserved,
/// and used only as deep as a file goes.
pub const STACK_BYTES: usize = 1 << 30;

/// The operators, brackets and dots of a file, texts included (their
/// placeholders are expressions): a bound on how deep it can nest.
pub fn nesting(source: &str) -> usize {
    const WORDS: [&str; 8] = ["not", "and", "or", "in", "contains", "startsWith", "endsWith", "matches"];
    let marks = source.bytes().filter(|b| b"([.-+*/%<>=!".contains(b)).count();
    marks + source.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|w| WORDS.contains(w)).count()
}

/// Parses a rule file: the syntax tree of what could be read, and an error
/// for every part that could not.
pub fn parse(source: &str) -> (File, Vec<Diagnostic>) {
    let mut file = File::default();
    if nesting(source) > MAX_NESTING {
        let refused = Diagnostic::new(Span::new(0, 0), format!("this file has more than {MAX_NESTING} operators, brackets and dots"))
            .with_help("split it into several files: the parser, the checker and the formatter recurse once per level of an expression");
        return (file, vec![refused]);
    }
    match Grammar::parse(Rule::file, source) {
        Ok(pairs) => {
            let errors = RefCell::new(Vec::new());
            let b = Builder { source, base: 0, errors: &errors };
            for item in pairs.flatten().filter(|p| matches!(p.as_rule(), Rule::rule | Rule::table)) {
                b.item(item, &mut file);
            }
            (file, errors.into_inner())
        }
        Err(e) => {
            let mut errors = recover(source, &mut file);
            if errors.is_empty() {
                // the parts parse where the whole does not: say what pest says
                errors.push(syntax_error(e, source, 0));
            }
            errors.sort_by_key(|d| d.span.start);
            (file, errors)
        }
    }
}

/// A pest error as a diagnostic, its span moved by `base`; `source` is the
/// text that was parsed, for the word at the error.
pub(crate) fn syntax_error(e: pest::error::Error<Rule>, source: &str, base: usize) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let word: String =
        source.get(pos..).unwrap_or("").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    let (message, names) = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            let message = match names.as_slice() {
                [] => "syntax error".to_string(),
                [one] => format!("expected {one}"),
                [init @ .., last] => format!("expected {} or {last}", init.join(", ")),
            };
            (message, names)
        }
        pest::error::ErrorVariant::CustomError { message } => (message.clone(), Vec::new()),
    };
    // at the end of a line, the caret goes after its last character
    let width =
        source.get(pos..).and_then(|s| s.chars().next()).filter(|c| *c != '\n' && *c != '\r').map_or(0, char::len_utf8);
    let d = Diagnostic::new(Span::new(base + pos, base + pos + width), message);
    match syntax_help(&names, &word) {
        Some(help) => d.with_help(help),
        None => d,
    }
}

const CLAUSE_NAMES: &str = "a clause (`cause`, `severity`, `when`, `title`, ...)";
const ITEM_NAMES: &str = "`rule` or `table`";

/// The help for a syntax error: the word that was probably meant, or what may come there.
fn syntax_help(expected: &[&str], word: &str) -> Option<String> {
    let suggest = |candidates: &[&'static str]| {
        (!word.is_empty()).then(|| did_you_mean(word, candidates.iter().copied())).flatten()
    };
    if expected.contains(&CLAUSE_NAMES) {
        return Some(match suggest(&CLAUSES) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the clauses are {}", CLAUSES.join(", ")),
        });
    }
    if expected.contains(&ITEM_NAMES) {
        return Some(match suggest(&["rule", "table"]) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "a file holds `rule ID { ... }` and `table NAME { ... }`".to_string(),
        });
    }
    if expected.contains(&"an expression") {
        return Some("an expression is a value such as `c.restartCount`, `\"OOMKilled\"`, `5m` or `(a and b)`".into());
    }
    if expected.contains(&"a table entry `N: \"text\"`") || expected == ["an integer"] {
        return Some("a table maps integers to strings, one entry a line: `9: \"SIGKILL\"`".into());
    }
    if expected.contains(&"an operator") {
        return Some("two values are joined by an operator such as `and`, `==`, `>` or `+`".into());
    }
    let help = match expected {
        ["a string"] => "a string is written in straight double quotes, on one line: `\"...\"`",
        ["a name"] => "a name starts with a letter or `_`, such as `c`",
        ["a rule id"] => "a rule id is letters, digits, `-`, `_` and `.`, such as `crashloop.oom`",
        ["a number such as `0.8`"] => "confidence is between 0.0 and 1.0, written with a fraction",
        ["end of file"] => "the text here belongs to no clause: remove it, or start a clause",
        _ => return None,
    };
    Some(help.to_string())
}

fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::EOI => "end of file",
        Rule::table | Rule::rule | Rule::item | Rule::rule_head | Rule::table_head => ITEM_NAMES,
        Rule::table_entry => "a table entry `N: \"text\"`",
        Rule::rule_id => "a rule id",
        Rule::cause_clause
        | Rule::severity_clause
        | Rule::confidence_clause
        | Rule::explains_clause
        | Rule::for_clause
        | Rule::let_clause
        | Rule::when_clause
        | Rule::text_clause
        | Rule::text_key
        | Rule::ref_clause
        | Rule::clause => CLAUSE_NAMES,
        Rule::severity => "`info`, `warning`, `error` or `critical`",
        Rule::float => "a number such as `0.8`",
        Rule::int => "an integer",
        Rule::string | Rule::str_inner => "a string",
        Rule::ident => "a name",
        Rule::path => "a path such as `containers`",
        Rule::expr
        | Rule::postfix_expr
        | Rule::primary
        | Rule::literal
        | Rule::not_op
        | Rule::neg_op
        | Rule::quantifier
        | Rule::quant_kind
        | Rule::call
        | Rule::list
        | Rule::range
        | Rule::null
        | Rule::boolean
        | Rule::unit_lit
        | Rule::version
        | Rule::decimal => "an expression",
        Rule::or_op
        | Rule::and_op
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::in_op
        | Rule::contains_op
        | Rule::starts_op
        | Rule::ends_op
        | Rule::matches_op
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem
        | Rule::infix => "an operator",
        Rule::field => "`.field`",
        Rule::index | Rule::postfix => "`[...]`",
        _ => "more input",
    }
}

// ---- recovery -------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// Letters, digits and `_`.
    Word,
    Str {
        closed: bool,
    },
    /// Any other character.
    Punct(char),
}

#[derive(Debug, Clone, Copy)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
    /// The first token on its line.
    first: bool,
}

/// The tokens recovery needs: words, strings (a string ends on its line) and
/// single characters; comments and whitespace dropped.
fn tokens(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i < bytes.len() {
        let start = i;
        let tok = match bytes[i] {
            b'\n' => {
                first = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None | Some(b'\n') => break Tok::Str { closed: false },
                        Some(b'"') => {
                            i += 1;
                            break Tok::Str { closed: true };
                        }
                        Some(b'\\') if bytes.get(i + 1).is_some_and(|b| *b != b'\n') => i += 2,
                        Some(_) => i += 1,
                    }
                }
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                while bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    i += 1;
                }
                Tok::Word
            }
            _ => {
                let c = source[i..].chars().next().unwrap_or(' ');
                i += c.len_utf8();
                Tok::Punct(c)
            }
        };
        // a string or a word may stop inside a character only at the end of input
        i = source.ceil_char_boundary(i);
        out.push(Token { tok, start, end: i, first });
        first = false;
    }
    out
}

/// Reads a file that does not parse: each `rule`/`table` item on its own,
/// and an item that does not parse clause by clause (a table entry by entry).
fn recover(source: &str, file: &mut File) -> Vec<Diagnostic> {
    let toks = tokens(source);
    let errors = RefCell::new(Vec::new());
    for t in &toks {
        if t.tok == (Tok::Str { closed: false }) {
            errors.borrow_mut().push(
                Diagnostic::new(Span::new(t.start, t.start + 1), "unclosed string")
                    .with_help("end the string with `\"` on the same line; write `\\n` for a line break"),
            );
        }
    }
    let word = |t: &Token| if t.tok == Tok::Word { &source[t.start..t.end] } else { "" };
    // an item starts at `rule` or `table` at the start of a line
    let starts_item = |t: &Token| t.first && matches!(word(t), "rule" | "table");
    let mut i = 0;
    while i < toks.len() {
        if !matches!(word(&toks[i]), "rule" | "table") {
            // text outside any item, up to the next item
            let mut d = Diagnostic::new(Span::new(toks[i].start, toks[i].end), "expected `rule` or `table`");
            d = d.with_help(match did_you_mean(word(&toks[i]), ["rule", "table"]) {
                Some(s) if !word(&toks[i]).is_empty() => format!("did you mean `{s}`?"),
                _ => "a file holds `rule ID { ... }` and `table NAME { ... }`".to_string(),
            });
            errors.borrow_mut().push(d);
            i += 1;
            while i < toks.len() && !starts_item(&toks[i]) {
                i += 1;
            }
            continue;
        }
        // the item: to its `}`, or up to the next item when that is missing
        let first = i;
        let mut depth = 0usize;
        let mut open = None;
        let mut close = None;
        i += 1;
        while i < toks.len() && !starts_item(&toks[i]) {
            match toks[i].tok {
                Tok::Punct('{') => {
                    depth += 1;
                    open.get_or_insert(i);
                }
                Tok::Punct('}') if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let last = close.unwrap_or(i - 1);
        let span = Span::new(toks[first].start, toks[last].end);
        if let (Some(open), None) = (open, close) {
            errors.borrow_mut().push(
                Diagnostic::new(Span::new(toks[open].start, toks[open].end), "unclosed `{`")
                    .with_help("end the item with `}` before the next `rule` or `table`"),
            );
        }
        let b = Builder { source: &source[span.start..span.end], base: span.start, errors: &errors };
        match Grammar::parse(Rule::item_only, b.source) {
            Ok(pairs) => {
                for item in pairs.filter(|p| matches!(p.as_rule(), Rule::rule | Rule::table)) {
                    b.item(item, file);
                }
            }
            Err(_) => b.item_by_parts(&toks[first..=last], open.map(|o| o - first), close.is_some(), file),
        }
    }
    errors.into_inner()
}

/// Builds syntax tree nodes from pest pairs whose positions start at byte
/// `base` of the file, collecting the errors found on the way. `source` is
/// the text of the item being read, from `base`.
#[derive(Clone, Copy)]
struct Builder<'s, 'e> {
    source: &'s str,
    base: usize,
    errors: &'e RefCell<Vec<Diagnostic>>,
}

impl Builder<'_, '_> {
    /// The builder for pairs parsed out of the text at byte `at` of `source`.
    fn at(self, at: usize) -> Self {
        Builder { base: self.base + at, ..self }
    }

    fn error(&self, d: Diagnostic) {
        self.errors.borrow_mut().push(d);
    }

    fn span(&self, s: pest::Span<'_>) -> Span {
        Span::new(self.base + s.start(), self.base + s.end())
    }

    /// Parses `text`, a part of this builder's source at byte `at`, as `rule`.
    fn part<'t>(&self, start: Rule, text: &'t str, at: usize) -> Option<pest::iterators::Pairs<'t, Rule>> {
        match Grammar::parse(start, text) {
            Ok(pairs) => Some(pairs),
            Err(e) => {
                self.error(syntax_error(e, text, self.base + at));
                None
            }
        }
    }

    fn item(&self, p: Pair<Rule>, file: &mut File) {
        match p.as_rule() {
            Rule::table => file.tables.push(self.table(p)),
            _ => file.rules.push(self.rule(p)),
        }
    }

    /// An item that does not parse: its head, then each clause or table entry
    /// on its own. `toks` are its tokens, the `{` at `open`, the last one its
    /// `}` when `closed`. Errors inside an unclosed string are that string's.
    fn item_by_parts(&self, toks: &[Token], open: Option<usize>, closed: bool, file: &mut File) {
        let at = |t: &Token| t.start - self.base;
        let is_table = self.source.starts_with("table");
        let head = self.part(if is_table { Rule::table_head } else { Rule::rule_head }, self.source, 0);
        let Some(open) = open else { return };
        let body = &toks[open + 1..if closed { toks.len() - 1 } else { toks.len() }];
        let unclosed = |part: &[Token]| part.iter().any(|t| t.tok == (Tok::Str { closed: false }));
        let text = |part: &[Token]| match (part.first(), part.last()) {
            (Some(a), Some(z)) => (&self.source[at(a)..z.end - self.base], at(a)),
            _ => ("", 0),
        };
        let word = |t: &Token| &self.source[at(t)..t.end - self.base];
        if is_table {
            let mut entries = Vec::new();
            for line in split(body, |t, _, _| t.first) {
                let (entry, start) = text(line);
                if unclosed(line) {
                    continue;
                }
                let Some(mut pairs) = self.part(Rule::entry_only, entry, start) else { continue };
                if let Some(e) = pairs.next().and_then(|p| self.at(start).entry(p)) {
                    entries.push(e);
                }
            }
            if let Some(name) = head.and_then(|mut h| h.next()).and_then(|h| h.into_inner().next()) {
                file.tables.push(Table { name: self.ident(name), entries });
            }
            return;
        }
        let id = head.and_then(|mut h| h.next()).and_then(|h| h.into_inner().next()).map(|id| self.ident(id));
        let mut rule = id.map(|id| Rule_::new(id, Span::new(self.base, self.base + self.source.len())));
        // a clause starts at a clause word that does not follow `.`: outside
        // `(...)` and `[...]`, or first on its line (a `(` left open ends
        // there); or at the first word of a line after a complete value (a
        // misspelled clause word), unless it is the language tag of a
        // translation: after a string, before a string or a `-`
        let operators = ["and", "or", "not", "in", "contains", "matches", "startsWith", "endsWith"];
        let mut depth = 0i32;
        let clauses = split(body, |t, before, after| {
            let translation = before.is_some_and(|b| matches!(b.tok, Tok::Str { .. }))
                && after.is_some_and(|a| matches!(a.tok, Tok::Str { .. } | Tok::Punct('-')));
            let ends_value = |b: &Token| match b.tok {
                Tok::Word => !operators.contains(&word(b)),
                Tok::Str { .. } | Tok::Punct(')' | ']') => true,
                Tok::Punct(_) => false,
            };
            let first_on_line = t.first;
            let starts = t.tok == Tok::Word
                && match before {
                    None => true,
                    Some(b) if CLAUSES.contains(&word(t)) => b.tok != Tok::Punct('.') && (depth == 0 || first_on_line),
                    Some(b) => {
                        depth == 0 && first_on_line && !operators.contains(&word(t)) && ends_value(b) && !translation
                    }
                };
            if starts {
                depth = 0;
            }
            match t.tok {
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth -= 1,
                _ => {}
            }
            starts
        });
        for clause in clauses {
            let (text, start) = text(clause);
            let parsed = if unclosed(clause) { None } else { self.part(Rule::clause_only, text, start) };
            match (parsed.and_then(|mut p| p.next()), &mut rule) {
                (Some(c), Some(rule)) => self.at(start).clause(c, rule),
                (None, Some(rule)) => {
                    // what the clause would have given, so that the checker
                    // reports neither it missing nor the names it defines unknown
                    let word = |k: usize| clause.get(k).map_or("", word);
                    let meant = did_you_mean(word(0), CLAUSES).unwrap_or(word(0));
                    rule.broken.push(meant.to_string());
                    if matches!(meant, "let" | "for") {
                        rule.broken.push(word(1).to_string());
                    }
                }
                _ => {}
            }
        }
        if let Some(rule) = rule {
            file.rules.push(rule);
        }
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident { name: p.as_str().to_string(), span: self.span(p.as_span()) }
    }

    fn string(&self, p: Pair<Rule>) -> Str {
        let span = self.span(p.as_span());
        let inner_start = span.start + 1;
        let raw = &p.as_str()[1..p.as_str().len() - 1];
        let mut value = String::new();
        let mut offsets = Vec::new();
        let mut chars = raw.char_indices();
        while let Some((i, ch)) = chars.next() {
            let decoded = if ch == '\\' {
                let Some((_, esc)) = chars.next() else { break };
                match esc {
                    'n' => '\n',
                    't' => '\t',
                    '\\' => '\\',
                    '"' => '"',
                    other => {
                        let at = inner_start + i;
                        self.error(
                            Diagnostic::new(
                                Span::new(at, at + 1 + other.len_utf8()),
                                format!("unknown escape `\\{other}`"),
                            )
                            .with_help("the escapes are \\n, \\t, \\\\ and \\\""),
                        );
                        other
                    }
                }
            } else {
                ch
            };
            for _ in 0..decoded.len_utf8() {
                offsets.push(inner_start + i);
            }
            value.push(decoded);
        }
        offsets.push(span.end - 1);
        Str { value, span, offsets }
    }

    fn table(&self, p: Pair<Rule>) -> Table {
        let mut inner = p.into_inner();
        let name = inner.next().map(|n| self.ident(n)).unwrap_or(Ident { name: String::new(), span: Span::default() });
        let entries = inner.filter_map(|e| self.entry(e)).collect();
        Table { name, entries }
    }

    fn entry(&self, p: Pair<Rule>) -> Option<(i64, Str)> {
        let mut e = p.into_inner();
        let (k, v) = (e.next()?, e.next()?);
        let key = self.int(&k)?;
        Some((key, self.string(v)))
    }

    fn int(&self, p: &Pair<Rule>) -> Option<i64> {
        p.as_str().parse().ok().or_else(|| {
            let span = self.span(p.as_span());
            self.error(
                Diagnostic::new(span, "integer out of range").with_help("an integer is at most 9223372036854775807"),
            );
            None
        })
    }

    fn rule(&self, p: Pair<Rule>) -> Rule_ {
        let span = self.span(p.as_span());
        let mut inner = p.into_inner();
        let id = inner.next().map(|id| self.ident(id)).unwrap_or(Ident { name: String::new(), span });
        let mut rule = Rule_::new(id, span);
        for clause in inner {
            self.clause(clause, &mut rule);
        }
        rule
    }

    fn clause(&self, clause: Pair<Rule>, r: &mut Rule_) {
        let cspan = self.span(clause.as_span());
        let kind = clause.as_rule();
        let mut c = clause.into_inner();
        let once = |name: &str, taken: bool, r: &mut Rule_| {
            if taken {
                r.repeated.push((name.to_string(), cspan));
            }
        };
        match kind {
            Rule::cause_clause => {
                once("cause", r.cause.is_some(), r);
                r.cause = c.next().map(|s| self.string(s));
            }
            Rule::severity_clause => {
                once("severity", r.severity.is_some(), r);
                if let Some(s) = c.next() {
                    let sev = match s.as_str() {
                        "info" => Severity::Info,
                        "warning" => Severity::Warning,
                        "error" => Severity::Error,
                        _ => Severity::Critical,
                    };
                    r.severity = Some((sev, self.span(s.as_span())));
                }
            }
            Rule::confidence_clause => {
                once("confidence", r.confidence.is_some(), r);
                if let Some(s) = c.next() {
                    let v: f32 = s.as_str().parse().unwrap_or(f32::NAN);
                    r.confidence = Some((v, self.span(s.as_span())));
                }
            }
            Rule::explains_clause => r.explains.extend(c.map(|s| self.string(s))),
            Rule::for_clause => {
                once("for", r.each.is_some(), r);
                if let (Some(v), Some(path)) = (c.next(), c.next()) {
                    r.each = Some((self.ident(v), self.path_expr(path)));
                }
            }
            Rule::let_clause => {
                if let (Some(v), Some(e)) = (c.next(), c.next()) {
                    r.lets.push((self.ident(v), self.expr(e)));
                }
            }
            Rule::when_clause => {
                once("when", r.when.is_some(), r);
                r.when = c.next().map(|e| self.expr(e));
            }
            Rule::text_clause => {
                let (Some(key), Some(en)) = (c.next(), c.next()) else { return };
                let text_key = match key.as_str() {
                    "title" => TextKey::Title,
                    "detects" => TextKey::Detects,
                    "why" => TextKey::Why,
                    "confirm" => TextKey::Confirm,
                    "fix" => TextKey::Fix,
                    _ => TextKey::Evidence,
                };
                let translations = c
                    .filter_map(|t| {
                        let mut t = t.into_inner();
                        Some((self.ident(t.next()?), self.string(t.next()?)))
                    })
                    .collect();
                r.texts.push(TextClause {
                    key: text_key,
                    key_span: self.span(key.as_span()),
                    en: self.string(en),
                    translations,
                });
            }
            Rule::ref_clause => r.refs.extend(c.next().map(|s| self.string(s))),
            _ => {}
        }
    }

    fn expr(&self, p: Pair<Rule>) -> Expr {
        pratt()
            .map_primary(|p| self.postfix_expr(p))
            .map_prefix(|op, rhs| {
                let span = Span::new(self.span(op.as_span()).start, rhs.span.end);
                let kind = match op.as_rule() {
                    Rule::not_op => ExprKind::Not(Box::new(rhs)),
                    _ => ExprKind::Neg(Box::new(rhs)),
                };
                Expr { kind, span }
            })
            .map_infix(|lhs, op, rhs| {
                let bin = match op.as_rule() {
                    Rule::or_op => BinOp::Or,
                    Rule::and_op => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::in_op => BinOp::In,
                    Rule::contains_op => BinOp::Contains,
                    Rule::starts_op => BinOp::StartsWith,
                    Rule::ends_op => BinOp::EndsWith,
                    Rule::matches_op => BinOp::Matches,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    _ => BinOp::Rem,
                };
                let span = Span::new(lhs.span.start, rhs.span.end);
                Expr { kind: ExprKind::Binary(bin, Box::new(lhs), Box::new(rhs)), span }
            })
            .parse(p.into_inner())
    }

    fn postfix_expr(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(p.as_span());
        let mut inner = p.into_inner();
        let mut e = match inner.next() {
            Some(first) => self.primary(first),
            None => Expr { kind: ExprKind::Error, span },
        };
        for post in inner {
            e = self.apply_postfix(e, post);
        }
        e
    }

    fn apply_postfix(&self, base: Expr, post: Pair<Rule>) -> Expr {
        let span = Span::new(base.span.start, self.span(post.as_span()).end);
        let kind = match (post.as_rule(), post.into_inner().next()) {
            (Rule::field, Some(name)) => ExprKind::Field(Box::new(base), self.ident(name)),
            (_, Some(index)) => ExprKind::Index(Box::new(base), Box::new(self.expr(index))),
            (_, None) => ExprKind::Error,
        };
        Expr { kind, span }
    }

    fn path_expr(&self, p: Pair<Rule>) -> Expr {
        let mut inner = p.into_inner();
        let Some(first) = inner.next() else {
            return Expr { kind: ExprKind::Error, span: Span::default() };
        };
        let id = self.ident(first);
        let e = Expr { span: id.span, kind: ExprKind::Ident(id.name) };
        inner.fold(e, |e, post| self.apply_postfix(e, post))
    }

    fn version(&self, p: &Pair<Rule>) -> Option<Version> {
        let mut parts = [0u32; 3];
        let mut len = 0;
        for (i, s) in p.as_str().split('.').enumerate().take(3) {
            let Ok(part) = s.parse() else {
                self.error(
                    Diagnostic::new(self.span(p.as_span()), "version part out of range")
                        .with_help("a version part is at most 4294967295"),
                );
                return None;
            };
            parts[i] = part;
            len = i + 1;
        }
        Some(Version { parts, len })
    }

    /// Digits with an optional fraction, such as `1.5`.
    fn decimal(&self, text: &str, span: Span) -> Option<Decimal> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = format!("{whole}{fraction}");
        // 30 digits keep every computation on it within i128
        let mantissa = (digits.len() <= 30).then(|| digits.parse().ok()).flatten();
        if mantissa.is_none() {
            self.error(Diagnostic::new(span, "number out of range").with_help("a number has at most 30 digits"));
        }
        Some(Decimal { mantissa: mantissa?, scale: fraction.len() as u32 })
    }

    fn primary(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(p.as_span());
        let kind = match p.as_rule() {
            Rule::expr => return self.expr(p),
            Rule::null => Some(ExprKind::Null),
            Rule::boolean => Some(ExprKind::Bool(p.as_str() == "true")),
            Rule::int => self.int(&p).map(ExprKind::Int),
            Rule::unit_lit => {
                let s = p.as_str();
                let end = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
                self.decimal(&s[..end], span).map(|d| ExprKind::Unit(d, s[end..].to_string()))
            }
            Rule::decimal => self.decimal(p.as_str(), span).map(ExprKind::Decimal),
            Rule::version => self.version(&p).map(ExprKind::Version),
            Rule::string => Some(ExprKind::Str(self.string(p).value)),
            Rule::ident => Some(ExprKind::Ident(p.as_str().to_string())),
            Rule::range => {
                let mut inner = p.into_inner();
                match (inner.next(), inner.next()) {
                    (Some(a), Some(b)) => match (self.version(&a), self.version(&b)) {
                        (Some(a), Some(b)) => Some(ExprKind::Range(a, b)),
                        _ => None,
                    },
                    _ => None,
                }
            }
            Rule::list => Some(ExprKind::List(p.into_inner().map(|e| self.expr(e)).collect())),
            Rule::call => {
                let mut inner = p.into_inner();
                inner.next().map(|name| ExprKind::Call(self.ident(name), inner.map(|e| self.expr(e)).collect()))
            }
            Rule::quantifier => {
                let mut inner = p.into_inner();
                match (inner.next(), inner.next(), inner.next(), inner.next()) {
                    (Some(kind), Some(var), Some(list), Some(cond)) => {
                        let q = match kind.as_str() {
                            "any" => Quant::Any,
                            "all" => Quant::All,
                            "count" => Quant::Count,
                            _ => Quant::First,
                        };
                        let (list, cond) = (self.path_expr(list), self.expr(cond));
                        Some(ExprKind::Quantifier(q, self.ident(var), Box::new(list), Box::new(cond)))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        // an error was reported for the part that is missing
        Expr { kind: kind.unwrap_or(ExprKind::Error), span }
    }
}

/// Splits `toks` before each token for which `starts(token, the one before)` holds.
fn split(toks: &[Token], mut starts: impl FnMut(&Token, Option<&Token>, Option<&Token>) -> bool) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut from = 0;
    for i in 0..toks.len() {
        if starts(&toks[i], i.checked_sub(1).map(|j| &toks[j]), toks.get(i + 1)) && i > from {
            parts.push(&toks[from..i]);
            from = i;
        }
    }
    if from < toks.len() {
        parts.push(&toks[from..]);
    }
    parts
}

type Rule_ = crate::ast::Rule;

fn pratt() -> PrattParser<Rule> {
    PrattParser::new()
        .op(Op::infix(Rule::or_op, Assoc::Left))
        .op(Op::infix(Rule::and_op, Assoc::Left))
        .op(Op::prefix(Rule::not_op))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left)
            | Op::infix(Rule::in_op, Assoc::Left)
            | Op::infix(Rule::contains_op, Assoc::Left)
            | Op::infix(Rule::starts_op, Assoc::Left)
            | Op::infix(Rule::ends_op, Assoc::Left)
            | Op::infix(Rule::matches_op, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left) | Op::infix(Rule::rem, Assoc::Left))
        .op(Op::prefix(Rule::neg_op))
}

/// Parses one expression from `source` (used for `{placeholders}`), at byte
/// `offset` of its file: the expression, or its errors.
pub fn parse_expr(source: &str, offset: usize) -> Result<Expr, Vec<Diagnostic>> {
    let errors = RefCell::new(Vec::new());
    let b = Builder { source, base: offset, errors: &errors };
    let e = match Grammar::parse(Rule::placeholder, source) {
        Ok(mut pairs) => pairs.next().and_then(|p| p.into_inner().next()).map(|e| b.expr(e)),
        Err(e) => {
            b.error(syntax_error(e, source, offset));
            None
        }
    };
    let errors = errors.into_inner();
    match e {
        Some(e) if errors.is_empty() => Ok(e),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rule_with_precedence() {
        let src = r#"rule a.b { when not x.y == 1 and z > 2 or q in ["A"] }"#;
        let (f, errors) = parse(src);
        assert!(errors.is_empty(), "{errors:?}");
        let Some(ExprKind::Binary(BinOp::Or, lhs, _)) = f.rules[0].when.as_ref().map(|e| &e.kind) else {
            unreachable!("top is or: {:?}", f.rules[0].when)
        };
        let ExprKind::Binary(BinOp::And, not, _) = &lhs.kind else { unreachable!("and under or") };
        assert!(matches!(not.kind, ExprKind::Not(_)));
    }

    #[test]
    fn syntax_error_names_what_was_expected() {
        let src = "rule a {\n  severity bad\n}";
        let (_, errors) = parse(src);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "expected `info`, `warning`, `error` or `critical`");
        assert_eq!(errors[0].line_col(src), (2, 12));
    }
}
