//! A file with many mistakes of every kind: `check` reports each one once,
//! with its place, line, caret and help, and `fmt` leaves the file alone
//! with its syntax errors.

use k8srule_dsl::{SourceFile, check_files, fmt, render};

/// Ten mistakes, one a line, marked with what they are.
const BROKEN: &str = r#"table signal {
  9: "SIGKILL"
  x: "SIGTERM"
}

rule demo.one {
  cause "cgroup-oom"
  severty error
  for c in containers
  let t = c.lastStat.terminated
  when t.exitCode == 137 and c.restartCount > 5m
  title "container {c.name} was killed
}

rule demo.two {
  cause "crash"
  severity warning
  for c in containers
  when lenn(c.name) > 3 or c.restartCount > "3" or c.image matches "("
  title "container {c.nam} of {pod.metadata.name}"
}

rule demo.three {
  cause "x"
  severity error
  when pod.status.phase == "Failed" and
  title "pod failed"
}
"#;

#[test]
fn ten_mistakes_give_ten_messages() {
    let files = [SourceFile::new("broken.k8srule", BROKEN)];
    let (_, diags) = check_files(&files, "p", "1");
    let lines: Vec<usize> = diags.iter().map(|(_, d)| d.line_col(BROKEN).0).collect();
    assert_eq!(lines, [3, 8, 10, 11, 12, 19, 19, 19, 20, 26], "{diags:#?}");
    assert!(diags.iter().all(|(_, d)| d.help.is_some()), "each has a help line: {diags:#?}");
    insta::assert_snapshot!(render(&files, &diags).join("\n"));
}

#[test]
fn fmt_leaves_a_broken_file_alone_with_the_syntax_errors_check_reports() {
    let files = [SourceFile::new("broken.k8srule", BROKEN)];
    let (_, diags) = check_files(&files, "p", "1");
    let Err(errors) = fmt::format(BROKEN) else { unreachable!("a broken file was formatted") };
    let syntax = [3, 8, 12, 26];
    assert_eq!(errors.iter().map(|d| d.line_col(BROKEN).0).collect::<Vec<_>>(), syntax);
    for e in &errors {
        assert!(diags.iter().any(|(_, d)| d == e), "{e:?} is not one of check's");
    }
}

#[test]
fn each_part_of_a_file_is_read_whatever_breaks_before_it() {
    // a rule after a broken one is still checked, a good rule still compiles
    let src = "rule a {\n  cause \"x\"\n  severity info\n  when (\n  title \"t\"\n}\n\
               rule b {\n  cause \"x\"\n  severity info\n  when pod.status.phse == \"x\"\n  title \"t\"\n}\n";
    let (pack, diags) = check_files(&[SourceFile::new("f", src)], "p", "1");
    let messages: Vec<&str> = diags.iter().map(|(_, d)| d.message.as_str()).collect();
    assert_eq!(messages, ["expected an expression", "`phse` is not a field of type `PodStatus`"]);
    assert_eq!(pack.info.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn every_cut_and_every_deleted_character_is_checked_without_a_panic() {
    let builtin = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/builtin/");
    let mut sources = vec![BROKEN.to_string()];
    sources.push(std::fs::read_to_string(format!("{builtin}crashloop/cgroup-oom.k8srule")).unwrap_or_default());
    let mut checked = 0;
    for source in &sources {
        for (i, c) in source.char_indices().step_by(7) {
            let deleted = format!("{}{}", &source[..i], &source[i + c.len_utf8()..]);
            for text in [&source[..i], deleted.as_str()] {
                let files = [SourceFile::new("cut.k8srule", text)];
                let (_, diags) = check_files(&files, "p", "1");
                render(&files, &diags);
                if let Err(errors) = fmt::format(text) {
                    assert!(!errors.is_empty());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 900, "{checked}");
}
