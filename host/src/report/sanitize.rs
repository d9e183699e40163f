//! Text from cluster objects and packs, made safe to show to people: what a
//! terminal or a Markdown/HTML viewer would act on rather than display (C0
//! and C1 controls, ESC, DEL, bidi embeddings, overrides and isolates)
//! becomes a visible escape. Newlines stay, for each renderer to lay out.
//! JSON and YAML are for programs and keep the exact data.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::report::Report;

/// Whether `c` is shown as an escape rather than itself.
fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character but the newline, and every bidi
/// control, written as an escape: `\t`, `\r`, `\x1b`, `\u0085`, `\u202e`.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if !hidden(c) => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// The report with every text in it passed through [`text`].
pub fn report(report: &Report) -> Report {
    let clean = |s: &mut String| {
        if let Cow::Owned(t) = text(s) {
            *s = t;
        }
    };
    let mut r = report.clone();
    for f in r.findings.iter_mut().chain(&mut r.silenced) {
        let single = [&mut f.rule, &mut f.cause, &mut f.title, &mut f.pack];
        let silence = f.silenced.as_mut().map(|s| [&mut s.object, &mut s.entry].into_iter().chain(s.reason.as_mut()));
        single
            .into_iter()
            .chain(f.pod.as_mut())
            .chain(silence.into_iter().flatten())
            .chain(f.cluster.as_mut())
            .chain(f.container.as_mut())
            .chain(f.workload.as_mut())
            .chain(f.node.as_mut())
            .chain(f.explained_by.as_mut())
            .chain(f.evidence.iter_mut().chain(&mut f.confirm).chain(&mut f.fix).chain(&mut f.explains))
            .for_each(clean);
    }
    for e in &mut r.errors {
        clean(&mut e.pack);
        clean(&mut e.message);
    }
    r.notes.iter_mut().for_each(clean);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_become_visible_escapes() {
        assert_eq!(text("plain\nline"), Cow::Borrowed("plain\nline"));
        assert_eq!(text("\x1b[2J\x07\t\r\x7f"), r"\x1b[2J\x07\t\r\x7f");
        assert_eq!(text("a\u{85}b\u{9b}"), r"a\u0085b\u009b");
        assert_eq!(text("\u{202a}\u{202e}x\u{2066}\u{2069}"), r"\u202a\u202ex\u2066\u2069");
        assert_eq!(text("é中"), Cow::Borrowed("é中"));
    }
}
