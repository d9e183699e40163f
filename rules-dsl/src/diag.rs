//! Diagnostics: an error with the span it is about, rendered with the source
//! line and a caret under the offending text (annotate-snippets, rustc's
//! renderer: carets placed by display width, tabs expanded, wide characters
//! counted twice, control characters in the source shown as symbols).

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The span inside `source` and on character boundaries: the start moved
    /// back and the end moved forward to the nearest boundary, `end >= start`.
    pub fn clamped(self, source: &str) -> Span {
        let start = source.floor_char_boundary(self.start);
        Span { start, end: source.ceil_char_boundary(self.end.max(start)) }
    }
}

impl From<pest::Span<'_>> for Span {
    fn from(s: pest::Span<'_>) -> Self {
        Span::new(s.start(), s.end())
    }
}

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
    pub help: Option<String>,
    /// A warning does not stop a compilation.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), span, help: None, warning: false }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { warning: true, ..Diagnostic::new(span, message) }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// 1-based line and column (in characters) of the start of the span.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let before = &source[..self.span.clamped(source).start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
    }

    /// `error: message` (or `warning: `), `file:line:col`, the source line, a
    /// caret line and the help.
    /// Any span renders, whether or not it lies inside `source`.
    pub fn render(&self, file: &str, source: &str) -> String {
        let span = self.span.clamped(source);
        let snippet = Snippet::source(source).path(file).annotation(AnnotationKind::Primary.span(span.start..span.end));
        let level = if self.warning { Level::WARNING } else { Level::ERROR };
        let title = level.primary_title(self.message.as_str()).element(snippet);
        let title = match &self.help {
            Some(help) => title.element(Level::HELP.message(help.as_str())),
            None => title,
        };
        let mut out = Renderer::plain().render(&[title]);
        out.push('\n');
        out
    }
}

/// The closest candidate to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_span() {
        let src = "rule a {\n  when c.lastStat == 1\n}\n";
        let start = src.find("lastStat").unwrap_or(0);
        let d = Diagnostic::new(Span::new(start, start + 8), "unknown field `lastStat`")
            .with_help("did you mean `lastState`?");
        insta::assert_snapshot!(d.render("my.k8srule", src), @r"
        error: unknown field `lastStat`
         --> my.k8srule:2:10
          |
        2 |   when c.lastStat == 1
          |          ^^^^^^^^
          |
          = help: did you mean `lastState`?
        ");
    }

    /// A rendering of a diagnostic at `span` in `src`.
    fn caret(src: &str, span: Span) -> String {
        Diagnostic::new(span, "m").render("f", src)
    }

    #[test]
    fn a_smart_quote_renders_one_caret_under_it() {
        // pest reports the error at the quote's first byte; the span's end falls inside it
        let src = "rule a {\n  cause \u{201c}x\u{201d}\n}\n";
        let (_, errors) = crate::parse::parse(src);
        let d = errors.first().cloned().unwrap_or_else(|| Diagnostic::new(Span::default(), "parsed"));
        insta::assert_snapshot!(d.render("q.k8srule", src), @r#"
        error: expected a string
         --> q.k8srule:2:9
          |
        2 |   cause “x”
          |         ^
          |
          = help: a string is written in straight double quotes, on one line: `"..."`
        "#);
    }

    #[test]
    fn carets_follow_tabs_and_wide_characters() {
        let src = "rule a {\n\tcause \"\u{955c}\u{50cf}\" when x\n}\n";
        let at = src.find("when").unwrap_or(0);
        insta::assert_snapshot!(caret(src, Span::new(at, at + 4)), @r#"
        error: m
         --> f:2:13
          |
        2 |     cause "镜像" when x
          |                  ^^^^
        "#);
    }

    #[test]
    fn spans_at_or_past_the_end_and_inside_characters_render() {
        let src = "rule a {\n  title \"\u{201c}\"";
        insta::assert_snapshot!(caret(src, Span::new(src.len(), src.len() + 1)), @r#"
        error: m
         --> f:2:12
          |
        2 |   title "“"
          |            ^
        "#);
        insta::assert_snapshot!(caret(src, Span::new(src.len() + 10, 3)), @r#"
        error: m
         --> f:2:12
          |
        2 |   title "“"
          |            ^
        "#);
        let inside = src.find('\u{201c}').unwrap_or(0) + 1;
        insta::assert_snapshot!(caret(src, Span::new(inside, inside + 1)), @r#"
        error: m
         --> f:2:10
          |
        2 |   title "“"
          |          ^
        "#);
        insta::assert_snapshot!(caret("", Span::new(0, 1)), @r"
        error: m
         --> f:1:1
          |
        1 |
          | ^
        ");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("lastStat", ["lastState", "state", "name"]), Some("lastState"));
        assert_eq!(did_you_mean("zzz", ["lastState", "state"]), None);
    }
}
