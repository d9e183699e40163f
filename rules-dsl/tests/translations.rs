//! Texts in any language: a BCP 47 tag before each translation, checked;
//! the pack carries English first, then the translations in canonical case.

use k8srule_dsl::{SourceFile, check_files};

fn rule(texts: &str) -> String {
    format!("rule demo.t {{\n  cause \"x\"\n  severity info\n  when pod.status.phase == \"Failed\"\n{texts}}}\n")
}

#[test]
fn a_text_has_english_first_then_each_translation() {
    let src = rule(
        "  title \"pod {pod.metadata.name} failed\" zh \"容器 {pod.metadata.name}\" pt-br \"falhou\"\n    ja \"失敗\"\n  \
         fix \"restart it\"\n    zh-Hant \"重啟\"\n",
    );
    let (pack, diags) = check_files(&[SourceFile::new("t.k8srule", &src)], "p", "1");
    assert!(diags.is_empty(), "{diags:?}");
    let rule = &pack.info.rules[0];
    let pairs = |t: &k8srule_dsl::pack::Text| {
        t.translations.iter().map(|t| (t.lang.clone(), t.text.clone())).collect::<Vec<_>>()
    };
    let own = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        pairs(&rule.title),
        own(&[("en", "pod {0} failed"), ("zh", "容器 {0}"), ("pt-BR", "falhou"), ("ja", "失敗")])
    );
    assert_eq!(pairs(&rule.fix[0]), own(&[("en", "restart it"), ("zh-Hant", "重啟")]));
    // a text without translations, and one not given, are English only
    assert_eq!(pairs(&rule.why), own(&[("en", "")]));
}

#[test]
fn language_tags_are_checked() {
    let cases: [(&str, &str, &str); 5] = [
        ("  title \"t\" xx \"x\"\n", "`xx` is not a language tag", "BCP 47 language tag"),
        ("  title \"t\"\n  tile \"x\"\n", "`tile` is not a language tag", "a clause starts with `title`"),
        ("  title \"t\" zh-Qqqq-1 \"x\"\n", "`zh-Qqqq-1` is not a language tag", "BCP 47"),
        ("  title \"t\" en \"x\"\n", "the text before the translations is the English one", "keep one"),
        ("  title \"t\" zh \"a\" ZH \"b\"\n", "this language is given twice", "keep one"),
    ];
    for (texts, message, help) in cases {
        let src = rule(texts);
        let (_, diags) = check_files(&[SourceFile::new("t.k8srule", &src)], "p", "1");
        assert_eq!(diags.len(), 1, "{texts}: {diags:?}");
        let d = &diags[0].1;
        assert!(d.message.starts_with(message), "{texts}: {}", d.message);
        assert!(d.help.as_deref().is_some_and(|h| h.contains(help)), "{texts}: {:?}", d.help);
        // the error is at the tag
        let at = &src[d.span.start..d.span.end];
        assert!(texts.contains(at) && !at.contains('"'), "{texts}: at `{at}`");
    }
}

#[test]
fn a_translation_on_its_own_line_survives_a_broken_clause_elsewhere() {
    let src = rule("  title \"t\"\n    ja \"タイトル\"\n  why (\n");
    let (pack, diags) = check_files(&[SourceFile::new("t.k8srule", &src)], "p", "1");
    assert_eq!(diags.len(), 1, "{diags:?}");
    let title = &pack.info.rules[0].title.translations;
    assert_eq!(title.iter().map(|t| t.lang.as_str()).collect::<Vec<_>>(), ["en", "ja"]);
}
