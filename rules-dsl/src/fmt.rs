//! The formatter: one canonical layout, comments and blank lines between
//! clauses kept. Works on the parse tree, so it never changes meaning.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::diag::Diagnostic;
use crate::parse::{Grammar, Rule, syntax_error};

/// Lines longer than this have their `when` broken before `and` / `or`.
const WIDTH: usize = 100;

#[derive(Debug)]
struct Comment {
    start: usize,
    text: String,
    /// Code precedes it on its line.
    trailing: bool,
}

/// Formats a rule file. A file that does not parse is left alone: the
/// errors are its syntax errors, all of them, as `check` reports them.
pub fn format(source: &str) -> Result<String, Vec<Diagnostic>> {
    let (_, errors) = crate::parse::parse(source);
    if !errors.is_empty() {
        return Err(errors);
    }
    let file = Grammar::parse(Rule::file, source).map_err(|e| vec![syntax_error(e, source, 0)])?;
    let mut f = Formatter { source, comments: comments(source), next: 0, out: String::new() };
    let mut first = true;
    for item in file.flatten().filter(|p| matches!(p.as_rule(), Rule::rule | Rule::table)) {
        if !first {
            f.out.push('\n');
        }
        first = false;
        f.leading(item.as_span().start(), "");
        match item.as_rule() {
            Rule::table => f.table(item),
            _ => f.rule(item),
        }
    }
    f.leading(source.len(), "");
    Ok(f.out)
}

fn comments(source: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let (mut i, mut in_string, mut line_has_code) = (0, false, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => {
                in_string = !in_string;
                line_has_code = true;
            }
            b'\n' => line_has_code = false,
            b'#' if !in_string => {
                let end = source[i..].find('\n').map_or(source.len(), |n| i + n);
                out.push(Comment { start: i, text: source[i..end].trim_end().to_string(), trailing: line_has_code });
                i = end;
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => line_has_code = true,
        }
        i += 1;
    }
    out
}

struct Formatter<'s> {
    source: &'s str,
    comments: Vec<Comment>,
    /// The first comment not yet written.
    next: usize,
    out: String,
}

impl Formatter<'_> {
    /// Writes the comments before `offset` on their own lines.
    fn leading(&mut self, offset: usize, indent: &str) {
        while let Some(c) = self.comments.get(self.next).filter(|c| c.start < offset) {
            self.out.push_str(&format!("{indent}{}\n", c.text));
            self.next += 1;
        }
    }

    /// Ends a line, with the comment that follows `end` on the same source line.
    fn end_line(&mut self, end: usize) {
        let line_end = self.source[end..].find('\n').map_or(self.source.len(), |n| end + n);
        let only_space_before = |c: &&Comment| c.start >= end && self.source[end..c.start].trim().is_empty();
        if let Some(c) =
            self.comments.get(self.next).filter(|c| c.trailing && c.start < line_end).filter(only_space_before)
        {
            self.out.push_str(&format!(" {}", c.text));
            self.next += 1;
        }
        self.out.push('\n');
    }

    /// Whether a blank line separates `offset` from the code before it.
    fn blank_before(&self, offset: usize, after: usize) -> bool {
        let lines: Vec<&str> = self.source[after..offset].split('\n').collect();
        lines.len() > 2 && lines[1..lines.len() - 1].iter().any(|l| l.trim().is_empty())
    }

    fn table(&mut self, p: Pair<Rule>) {
        let end = p.as_span().end();
        let mut inner = p.into_inner();
        let name = inner.next().map(|n| n.as_str().to_string()).unwrap_or_default();
        self.out.push_str(&format!("table {name} {{"));
        let open = self.source[..end].find('{').unwrap_or(0);
        self.end_line(open + 1);
        for entry in inner {
            let span = entry.as_span();
            self.leading(span.start(), "  ");
            let mut e = entry.into_inner();
            let (k, v) = (e.next().map(|x| x.as_str()).unwrap_or(""), e.next().map(|x| x.as_str()).unwrap_or(""));
            self.out.push_str(&format!("  {k}: {v}"));
            self.end_line(span.end());
        }
        self.leading(end, "  ");
        self.out.push('}');
        self.end_line(end);
    }

    fn rule(&mut self, p: Pair<Rule>) {
        let span = p.as_span();
        let mut inner = p.into_inner();
        let id = inner.next().map(|n| n.as_str().to_string()).unwrap_or_default();
        self.out.push_str(&format!("rule {id} {{"));
        let open = span.start() + self.source[span.start()..].find('{').unwrap_or(0);
        self.end_line(open + 1);
        let mut previous_end = open + 1;
        for clause in inner {
            let (start, end) = (clause.as_span().start(), code_end(&clause));
            if self.blank_before(start, previous_end) {
                self.out.push('\n');
            }
            self.leading(start, "  ");
            // comments inside a clause (between lines of a long `when`) go before it
            self.leading(end, "  ");
            let text = clause_text(clause);
            self.out.push_str(&text);
            self.end_line(end);
            previous_end = end;
        }
        self.leading(span.end(), "  ");
        self.out.push('}');
        self.end_line(span.end());
    }
}

/// Where the last token of `p` ends, before any trailing whitespace or comment.
fn code_end(p: &Pair<Rule>) -> usize {
    match p.clone().into_inner().last() {
        Some(last) => code_end(&last),
        None => p.as_span().end(),
    }
}

fn clause_text(c: Pair<Rule>) -> String {
    let kind = c.as_rule();
    let parts: Vec<Pair<Rule>> = c.into_inner().collect();
    let s = |i: usize| parts.get(i).map(|p| p.as_str()).unwrap_or("");
    match kind {
        Rule::cause_clause => format!("  cause {}", s(0)),
        Rule::severity_clause => format!("  severity {}", s(0)),
        Rule::confidence_clause => format!("  confidence {}", s(0)),
        Rule::explains_clause => {
            format!("  explains {}", parts.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "))
        }
        Rule::for_clause => format!("  for {} in {}", s(0), parts.get(1).map(path).unwrap_or_default()),
        Rule::let_clause => {
            let head = format!("  let {} = ", s(0));
            let width = head.len();
            head + &parts.get(1).map(|e| expr_wrapped(e, width)).unwrap_or_default()
        }
        Rule::when_clause => parts.first().map(|e| format!("  when {}", expr_wrapped(e, 7))).unwrap_or_default(),
        Rule::text_clause => {
            let translations = parts[2.min(parts.len())..].iter().map(|t| {
                let t: Vec<&str> = t.clone().into_inner().map(|p| p.as_str()).collect();
                format!("\n    {}", t.join(" "))
            });
            format!("  {} {}", s(0), s(1)) + &translations.collect::<String>()
        }
        Rule::ref_clause => format!("  ref {}", s(0)),
        _ => String::new(),
    }
}

/// An expression on one line, or broken before its top-level `and`/`or`
/// when the line would be longer than [`WIDTH`].
fn expr_wrapped(e: &Pair<Rule>, indent: usize) -> String {
    let flat = expr(e);
    if indent + flat.len() <= WIDTH {
        return flat;
    }
    joined(e, true)
}

fn expr(e: &Pair<Rule>) -> String {
    joined(e, false)
}

/// The parts of an expression with single spaces; `break_logic` starts a new
/// line before each top-level `and` / `or`.
fn joined(e: &Pair<Rule>, break_logic: bool) -> String {
    let mut out = String::new();
    for part in e.clone().into_inner() {
        match part.as_rule() {
            Rule::or_op | Rule::and_op if break_logic => out.push_str(&format!("\n    {} ", part.as_str())),
            Rule::not_op => out.push_str("not "),
            Rule::neg_op => out.push('-'),
            Rule::postfix_expr => out.push_str(&postfix(&part)),
            _ => out.push_str(&format!(" {} ", part.as_str())),
        }
    }
    out
}

fn postfix(p: &Pair<Rule>) -> String {
    let mut out = String::new();
    for part in p.clone().into_inner() {
        match part.as_rule() {
            Rule::field => {
                out.push_str(&format!(".{}", part.into_inner().map(|i| i.as_str().to_string()).collect::<String>()))
            }
            Rule::index => {
                out.push_str(&format!("[{}]", part.into_inner().next().map(|i| expr(&i)).unwrap_or_default()))
            }
            _ => out.push_str(&primary(&part)),
        }
    }
    out
}

fn path(p: &Pair<Rule>) -> String {
    postfix(p)
}

fn primary(p: &Pair<Rule>) -> String {
    let inner: Vec<Pair<Rule>> = p.clone().into_inner().collect();
    let join = |items: &[Pair<Rule>]| items.iter().map(expr).collect::<Vec<_>>().join(", ");
    match p.as_rule() {
        Rule::expr => format!("({})", expr(p)),
        Rule::quantifier => match inner.as_slice() {
            [kind, var, list, cond] => format!("{}({} in {}: {})", kind.as_str(), var.as_str(), path(list), expr(cond)),
            _ => p.as_str().to_string(),
        },
        Rule::call => match inner.split_first() {
            Some((name, args)) => format!("{}({})", name.as_str(), join(args)),
            None => p.as_str().to_string(),
        },
        Rule::list => format!("[{}]", join(&inner)),
        Rule::range => match inner.as_slice() {
            [a, b] => format!("{} .. {}", a.as_str(), b.as_str()),
            _ => p.as_str().to_string(),
        },
        Rule::ident => p.as_str().to_string(),
        _ => p.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSY: &str = r#"# signals
table   signal {  9:"SIGKILL"   # kill
 15 : "SIGTERM" }
# the rule
rule a.b {   cause "x"
severity   error
  for c   in containers   # each container


  let t=c.lastState.terminated
  when t.exitCode>128 and   (t.reason=="OOMKilled" or not t.reason in ["A","B"]) and any(e in c.events:e.reason=="BackOff")
  title "container {c.name}"   zh "容器"  pt-BR  "contêiner"
  explains "a","b"
  # trailing comment in the rule
}
"#;

    #[test]
    fn formats_canonically_and_keeps_comments() {
        insta::assert_snapshot!(format(MESSY).unwrap());
    }

    #[test]
    fn is_idempotent() {
        let once = format(MESSY).unwrap();
        assert_eq!(format(&once).unwrap(), once);
    }
}
