//! Source text to syntax tree, with pest.

use pest::Parser as _;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::diag::{Diagnostic, Span};

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct Grammar;

/// Parses a rule file. A syntax error stops parsing; it is returned alone.
pub fn parse(source: &str) -> Result<File, Diagnostic> {
    let mut pairs = Grammar::parse(Rule::file, source).map_err(syntax_error)?;
    let mut file = File::default();
    let Some(top) = pairs.next() else {
        return Ok(file);
    };
    for item in top.into_inner() {
        match item.as_rule() {
            Rule::table => file.tables.push(table(item)?),
            Rule::rule => file.rules.push(rule(item)?),
            _ => {}
        }
    }
    Ok(file)
}

pub(crate) fn syntax_error(e: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            match names.as_slice() {
                [] => "syntax error".to_string(),
                [one] => format!("expected {one}"),
                [init @ .., last] => format!("expected {} or {last}", init.join(", ")),
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    Diagnostic::new(Span::new(pos, pos + 1), message)
}

fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::EOI => "end of file",
        Rule::table | Rule::rule | Rule::item => "`rule` or `table`",
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
        | Rule::clause => "a clause (`cause`, `severity`, `when`, `title`, ...)",
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

fn ident(p: Pair<Rule>) -> Ident {
    Ident { name: p.as_str().to_string(), span: p.as_span().into() }
}

fn string(p: Pair<Rule>) -> Result<Str, Diagnostic> {
    let span: Span = p.as_span().into();
    let inner_start = span.start + 1;
    let raw = &p.as_str()[1..p.as_str().len() - 1];
    let mut value = String::new();
    let mut offsets = Vec::new();
    let mut chars = raw.char_indices();
    while let Some((i, ch)) = chars.next() {
        let (decoded, at) = if ch == '\\' {
            let Some((_, esc)) = chars.next() else { break };
            let decoded = match esc {
                'n' => '\n',
                't' => '\t',
                '\\' => '\\',
                '"' => '"',
                other => {
                    let at = inner_start + i;
                    return Err(Diagnostic::new(Span::new(at, at + 2), format!("unknown escape `\\{other}`"))
                        .with_help("the escapes are \\n, \\t, \\\\ and \\\""));
                }
            };
            (decoded, inner_start + i)
        } else {
            (ch, inner_start + i)
        };
        for _ in 0..decoded.len_utf8() {
            offsets.push(at);
        }
        value.push(decoded);
    }
    offsets.push(span.end - 1);
    Ok(Str { value, span, offsets })
}

fn table(p: Pair<Rule>) -> Result<Table, Diagnostic> {
    let mut inner = p.into_inner();
    let name = inner.next().map(ident).unwrap_or(Ident { name: String::new(), span: Span::default() });
    let mut entries = Vec::new();
    for entry in inner {
        let mut e = entry.into_inner();
        let (Some(k), Some(v)) = (e.next(), e.next()) else {
            continue;
        };
        entries.push((int_value(&k)?, string(v)?));
    }
    Ok(Table { name, entries })
}

fn int_value(p: &Pair<Rule>) -> Result<i64, Diagnostic> {
    p.as_str().parse().map_err(|_| Diagnostic::new(p.as_span().into(), "integer out of range"))
}

fn rule(p: Pair<Rule>) -> Result<Rule_, Diagnostic> {
    let span: Span = p.as_span().into();
    let mut inner = p.into_inner();
    let id = inner.next().map(ident).unwrap_or(Ident { name: String::new(), span });
    let mut r = Rule_ {
        id,
        span,
        cause: None,
        severity: None,
        confidence: None,
        explains: Vec::new(),
        each: None,
        lets: Vec::new(),
        when: None,
        texts: Vec::new(),
        refs: Vec::new(),
        repeated: Vec::new(),
    };
    for clause in inner {
        let cspan: Span = clause.as_span().into();
        let kind = clause.as_rule();
        let mut c = clause.into_inner();
        let once = |name: &str, taken: bool, r: &mut Rule_| {
            if taken {
                r.repeated.push((name.to_string(), cspan));
            }
        };
        match kind {
            Rule::cause_clause => {
                once("cause", r.cause.is_some(), &mut r);
                if let Some(s) = c.next() {
                    r.cause = Some(string(s)?);
                }
            }
            Rule::severity_clause => {
                once("severity", r.severity.is_some(), &mut r);
                if let Some(s) = c.next() {
                    let sev = match s.as_str() {
                        "info" => Severity::Info,
                        "warning" => Severity::Warning,
                        "error" => Severity::Error,
                        _ => Severity::Critical,
                    };
                    r.severity = Some((sev, s.as_span().into()));
                }
            }
            Rule::confidence_clause => {
                once("confidence", r.confidence.is_some(), &mut r);
                if let Some(s) = c.next() {
                    let v: f32 = s.as_str().parse().unwrap_or(f32::NAN);
                    r.confidence = Some((v, s.as_span().into()));
                }
            }
            Rule::explains_clause => {
                for s in c {
                    r.explains.push(string(s)?);
                }
            }
            Rule::for_clause => {
                once("for", r.each.is_some(), &mut r);
                if let (Some(v), Some(path)) = (c.next(), c.next()) {
                    r.each = Some((ident(v), path_expr(path)));
                }
            }
            Rule::let_clause => {
                if let (Some(v), Some(e)) = (c.next(), c.next()) {
                    r.lets.push((ident(v), expr(e)?));
                }
            }
            Rule::when_clause => {
                once("when", r.when.is_some(), &mut r);
                if let Some(e) = c.next() {
                    r.when = Some(expr(e)?);
                }
            }
            Rule::text_clause => {
                let (Some(key), Some(en)) = (c.next(), c.next()) else {
                    continue;
                };
                let text_key = match key.as_str() {
                    "title" => TextKey::Title,
                    "detects" => TextKey::Detects,
                    "why" => TextKey::Why,
                    "confirm" => TextKey::Confirm,
                    "fix" => TextKey::Fix,
                    _ => TextKey::Evidence,
                };
                let zh = c.next().map(string).transpose()?;
                r.texts.push(TextClause { key: text_key, key_span: key.as_span().into(), en: string(en)?, zh });
            }
            Rule::ref_clause => {
                if let Some(s) = c.next() {
                    r.refs.push(string(s)?);
                }
            }
            _ => {}
        }
    }
    Ok(r)
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

/// Parses one expression from `source` (used for `{placeholders}`), with
/// spans shifted by `offset`.
pub fn parse_expr(source: &str, offset: usize) -> Result<Expr, Diagnostic> {
    let mut pairs = Grammar::parse(Rule::placeholder, source).map_err(|e| {
        let mut d = syntax_error(e);
        d.span = Span::new(d.span.start + offset, d.span.end + offset);
        d
    })?;
    let Some(e) = pairs.next().and_then(|p| p.into_inner().next()) else {
        return Err(Diagnostic::new(Span::new(offset, offset + source.len()), "expected an expression"));
    };
    let mut e = expr(e)?;
    shift(&mut e, offset);
    Ok(e)
}

fn shift(e: &mut Expr, by: usize) {
    e.span = Span::new(e.span.start + by, e.span.end + by);
    let shift_ident = |i: &mut Ident| i.span = Span::new(i.span.start + by, i.span.end + by);
    match &mut e.kind {
        ExprKind::Field(a, f) => {
            shift(a, by);
            shift_ident(f);
        }
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            shift(a, by);
            shift(b, by);
        }
        ExprKind::Not(a) | ExprKind::Neg(a) => shift(a, by),
        ExprKind::Call(name, args) => {
            shift_ident(name);
            args.iter_mut().for_each(|a| shift(a, by));
        }
        ExprKind::Quantifier(_, v, list, cond) => {
            shift_ident(v);
            shift(list, by);
            shift(cond, by);
        }
        ExprKind::List(items) => items.iter_mut().for_each(|a| shift(a, by)),
        _ => {}
    }
}

fn expr(p: Pair<Rule>) -> Result<Expr, Diagnostic> {
    pratt()
        .map_primary(postfix_expr)
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            let span = Span::new(op.as_span().start(), rhs.span.end);
            let kind = match op.as_rule() {
                Rule::not_op => ExprKind::Not(Box::new(rhs)),
                _ => ExprKind::Neg(Box::new(rhs)),
            };
            Ok(Expr { kind, span })
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
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
            Ok(Expr { kind: ExprKind::Binary(bin, Box::new(lhs), Box::new(rhs)), span })
        })
        .parse(p.into_inner())
}

fn postfix_expr(p: Pair<Rule>) -> Result<Expr, Diagnostic> {
    let mut inner = p.into_inner();
    let Some(first) = inner.next() else {
        return Err(Diagnostic::new(Span::default(), "expected an expression"));
    };
    let mut e = primary(first)?;
    for post in inner {
        e = apply_postfix(e, post)?;
    }
    Ok(e)
}

fn apply_postfix(base: Expr, post: Pair<Rule>) -> Result<Expr, Diagnostic> {
    let end = post.as_span().end();
    let span = Span::new(base.span.start, end);
    let kind = match post.as_rule() {
        Rule::field => {
            let Some(name) = post.into_inner().next() else {
                return Err(Diagnostic::new(span, "expected a field name"));
            };
            ExprKind::Field(Box::new(base), ident(name))
        }
        _ => {
            let Some(idx) = post.into_inner().next() else {
                return Err(Diagnostic::new(span, "expected an index"));
            };
            ExprKind::Index(Box::new(base), Box::new(expr(idx)?))
        }
    };
    Ok(Expr { kind, span })
}

fn path_expr(p: Pair<Rule>) -> Expr {
    let mut inner = p.into_inner();
    let Some(first) = inner.next() else {
        return Expr { kind: ExprKind::Null, span: Span::default() };
    };
    let id = ident(first);
    let mut e = Expr { span: id.span, kind: ExprKind::Ident(id.name) };
    for post in inner {
        match apply_postfix(e.clone(), post) {
            Ok(next) => e = next,
            Err(_) => break,
        }
    }
    e
}

fn version(p: &Pair<Rule>) -> Result<Version, Diagnostic> {
    let mut parts = [0u32; 3];
    let mut len = 0;
    for (i, s) in p.as_str().split('.').enumerate().take(3) {
        parts[i] = s.parse().map_err(|_| Diagnostic::new(p.as_span().into(), "version part out of range"))?;
        len = i + 1;
    }
    Ok(Version { parts, len })
}

/// Digits with an optional fraction, such as `1.5`.
fn decimal(text: &str, span: Span) -> Result<Decimal, Diagnostic> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = format!("{whole}{fraction}");
    // 30 digits keep every computation on it within i128
    let mantissa = (digits.len() <= 30).then(|| digits.parse().ok()).flatten();
    let Some(mantissa) = mantissa else {
        return Err(Diagnostic::new(span, "number out of range"));
    };
    Ok(Decimal { mantissa, scale: fraction.len() as u32 })
}

fn primary(p: Pair<Rule>) -> Result<Expr, Diagnostic> {
    let span: Span = p.as_span().into();
    let kind = match p.as_rule() {
        Rule::expr => return expr(p),
        Rule::null => ExprKind::Null,
        Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
        Rule::int => ExprKind::Int(int_value(&p)?),
        Rule::unit_lit => {
            let s = p.as_str();
            let end = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
            ExprKind::Unit(decimal(&s[..end], span)?, s[end..].to_string())
        }
        Rule::decimal => ExprKind::Decimal(decimal(p.as_str(), span)?),
        Rule::version => ExprKind::Version(version(&p)?),
        Rule::string => ExprKind::Str(string(p)?.value),
        Rule::ident => ExprKind::Ident(p.as_str().to_string()),
        Rule::range => {
            let mut inner = p.into_inner();
            let (Some(a), Some(b)) = (inner.next(), inner.next()) else {
                return Err(Diagnostic::new(span, "expected `A .. B`"));
            };
            ExprKind::Range(version(&a)?, version(&b)?)
        }
        Rule::list => ExprKind::List(p.into_inner().map(expr).collect::<Result<_, _>>()?),
        Rule::call => {
            let mut inner = p.into_inner();
            let Some(name) = inner.next() else {
                return Err(Diagnostic::new(span, "expected a function name"));
            };
            ExprKind::Call(ident(name), inner.map(expr).collect::<Result<_, _>>()?)
        }
        Rule::quantifier => {
            let mut inner = p.into_inner();
            let (Some(kind), Some(var), Some(list), Some(cond)) =
                (inner.next(), inner.next(), inner.next(), inner.next())
            else {
                return Err(Diagnostic::new(span, "expected `any(x in list: condition)`"));
            };
            let q = match kind.as_str() {
                "any" => Quant::Any,
                "all" => Quant::All,
                "count" => Quant::Count,
                _ => Quant::First,
            };
            ExprKind::Quantifier(q, ident(var), Box::new(path_expr(list)), Box::new(expr(cond)?))
        }
        _ => return Err(Diagnostic::new(span, "expected an expression")),
    };
    Ok(Expr { kind, span })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rule_with_precedence() {
        let src = r#"rule a.b { when not x.y == 1 and z > 2 or q in ["A"] }"#;
        let f = parse(src).map_err(|d| d.render("t", src));
        let rule = &f.as_ref().map(|f| f.rules.len()).ok();
        assert_eq!(*rule, Some(1));
        let Ok(f) = f else { return };
        let Some(ExprKind::Binary(BinOp::Or, lhs, _)) = f.rules[0].when.as_ref().map(|e| &e.kind) else {
            unreachable!("top is or: {:?}", f.rules[0].when)
        };
        let ExprKind::Binary(BinOp::And, not, _) = &lhs.kind else { unreachable!("and under or") };
        assert!(matches!(not.kind, ExprKind::Not(_)));
    }

    #[test]
    fn syntax_error_names_what_was_expected() {
        let src = "rule a {\n  severity bad\n}";
        let Err(d) = parse(src) else { unreachable!() };
        assert_eq!(d.message, "expected `info`, `warning`, `error` or `critical`");
        assert_eq!(d.line_col(src), (2, 12));
    }
}
