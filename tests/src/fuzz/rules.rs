//! The `rules` target: it uses the language crate alone, so that the fuzz
//! crate builds it without the host (`fuzz/fuzz_targets/rules.rs` includes
//! this file).

use k8srule_dsl::SourceFile;

/// A rule file through the whole pipeline: parse and check (every error
/// rendered), fmt (its output formats to itself and checks to the same IR;
/// a file it refuses, with errors that check reports too),
/// and, when it has no error, compile to a component.
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let files = [SourceFile::new("fuzz.k8srule", text)];
    let (ir, diags) = k8srule_dsl::check_files(&files, "fuzz", "0.1.0");
    for rendered in k8srule_dsl::render(&files, &diags) {
        assert!(rendered.starts_with("error: ") && rendered.contains(" --> fuzz.k8srule:"), "{rendered}");
    }
    let formatted = match k8srule_dsl::fmt::format(text) {
        Ok(formatted) => Some(formatted),
        Err(errors) => {
            // a file fmt leaves alone has errors, each one that check reports
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(diags.iter().any(|(_, d)| d == e), "fmt's error is not check's: {e:?}");
            }
            None
        }
    };
    if let Some(formatted) = formatted {
        let again = k8srule_dsl::fmt::format(&formatted).unwrap_or_else(|errors| {
            let rendered: Vec<String> = errors.iter().map(|d| d.render("formatted", &formatted)).collect();
            panic!("fmt's output does not parse:\n{}", rendered.join("\n"))
        });
        assert_eq!(again, formatted, "fmt's output formats differently");
        let (ir2, diags2) = k8srule_dsl::check_files(&[SourceFile::new("fuzz.k8srule", &formatted)], "fuzz", "0.1.0");
        let messages =
            |d: &[(usize, k8srule_dsl::Diagnostic)]| d.iter().map(|(_, d)| d.message.clone()).collect::<Vec<_>>();
        assert_eq!(messages(&diags2), messages(&diags), "fmt changed the errors:\n{formatted}");
        assert_eq!(ir2, ir, "fmt changed the meaning:\n{formatted}");
    }
    if diags.is_empty() {
        let wasm = k8srule_dsl::compile(&files, "fuzz", "0.1.0");
        assert!(wasm.is_ok(), "a checked pack does not compile: {wasm:?}");
    }
}
