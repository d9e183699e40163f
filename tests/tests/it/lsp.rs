//! `k8srule lsp` driven by a real editor: Neovim's built-in LSP client,
//! headless (Debian's `neovim`), runs tests/lsp/nvim.lua and writes what it got.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8srule_tests::{k8srule, root};
use serde_json::{Value, json};

/// `k8srule check`'s errors and warnings as (line, column, message and
/// help, whether a warning), 0-based as the protocol counts.
fn check_errors(path: &str) -> Vec<Value> {
    let (code, _, err) = k8srule(&["check", path]);
    assert_eq!(code, 2, "{err}");
    let mut found = Vec::new();
    let mut lines = err.lines();
    while let Some(line) = lines.next() {
        let warning = line.starts_with("warning: ");
        let Some(message) = line.strip_prefix("error: ").or(line.strip_prefix("warning: ")) else { continue };
        let at = lines.next().unwrap().trim().strip_prefix("--> ").unwrap();
        let mut parts = at.rsplitn(3, ':');
        let col: u64 = parts.next().unwrap().parse().unwrap();
        let line: u64 = parts.next().unwrap().parse().unwrap();
        let help = lines.by_ref().take_while(|l| !l.is_empty()).find_map(|l| l.trim().strip_prefix("= help: "));
        let message = match help {
            Some(h) => format!("{message}\nhelp: {h}"),
            None => message.to_string(),
        };
        found.push(json!({"line": line - 1, "col": col - 1, "message": message, "warning": warning}));
    }
    found
}

fn run_neovim(dir: &std::path::Path) -> Value {
    let out = dir.join("got.json");
    let mut nvim = Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n", "-c"])
        .arg(format!("luafile {}", root().join("tests/lsp/nvim.lua").display()))
        .env("K8SRULE_BIN", env!("CARGO_BIN_EXE_k8srule-cli"))
        .env("K8SRULE_DIR", dir)
        .env("K8SRULE_OUT", &out)
        .env("K8SRULE_CACHE_DIR", dir.join("cache"))
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nvim runs (Debian's neovim: tests/run installs it)");
    let started = Instant::now();
    while nvim.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(300) {
            nvim.kill().unwrap();
            panic!("nvim did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("nvim wrote no {}: {e}", out.display()));
    let got: Value = serde_json::from_str(&text).unwrap();
    assert!(got.get("error").is_none(), "the Lua script failed: {} (steps done: {})", got["error"], got["steps"]);
    got
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

#[test]
fn neovim_gets_diagnostics_hover_completion_definitions_and_formatting() {
    let demo = root().join("tests/lsp/demo.k8srule");
    let canonical = std::fs::read_to_string(&demo).unwrap();
    let (code, out, _) = k8srule(&["fmt", "--check", demo.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, ""), "tests/lsp/demo.k8srule is formatted");

    let dir = tempfile::tempdir().unwrap();
    let broken = canonical
        .replace("c.lastState.terminated", "c.lastStat.terminated")
        .replace("\"state.CrashLoopBackOff\"", "\"state.CrashLoopBakOff\"");
    std::fs::write(dir.path().join("demo.k8srule"), &broken).unwrap();
    let depth = 3000;
    let deep = format!(
        "rule deep {{\n  cause \"deep\"\n  severity info\n  when {}pod.x{}\n  title \"t\"\n}}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    std::fs::write(dir.path().join("deep.k8srule"), deep).unwrap();
    let rule = |when: &str| format!("rule a {{\n  cause \"a\"\n  severity info\n  when {when}\n}}\n");
    let chain = format!("true{}", " and true".repeat(19_990));
    std::fs::write(dir.path().join("chain.k8srule"), rule(&chain)).unwrap();
    std::fs::write(dir.path().join("nested.k8srule"), rule(&format!("{}1 > 0", "-".repeat(30_000)))).unwrap();
    std::fs::write(dir.path().join("huge.k8srule"), "# padding\n".repeat(120_000)).unwrap();

    let got = run_neovim(dir.path());

    // the diagnostics are `k8srule check`'s: same places, same messages and help, same warnings
    let expected = check_errors(dir.path().join("demo.k8srule").to_str().unwrap());
    assert_eq!(got["opened"], json!(expected));
    let messages: Vec<(&str, bool)> =
        expected.iter().map(|d| (d["message"].as_str().unwrap(), d["warning"].as_bool().unwrap())).collect();
    let typo = ("`lastStat` is not a field of type `Container`\nhelp: did you mean `lastState`?", false);
    let explains = (
        "no loaded rule has the cause `state.CrashLoopBakOff`, so this explains nothing\nhelp: did you mean `state.CrashLoopBackOff`?",
        true,
    );
    assert_eq!(messages, [explains, typo]);
    assert_eq!(got["fixed"], json!([]), "fixing the file as one types clears them");

    // hover: the schema's type and the Kubernetes documentation of a field, what a name stands for
    assert_eq!(
        got["hover_field"],
        "`containers[].lastState.terminated`: `StateTerminated` (`ContainerState.terminated`)\n\nDetails about a terminated container"
    );
    assert_eq!(
        got["hover_let"],
        "`t` = `containers[].lastState.terminated`: `StateTerminated` (`ContainerState.terminated`)\n\nDetails about a terminated container"
    );
    assert_eq!(got["hover_for"], "`c` = `containers[]`: `Container`");
    let placeholder = got["hover_placeholder"].as_str().unwrap();
    assert!(
        placeholder.starts_with("`containers[].name`: `str` (`Container.name`)\n\nName of the container"),
        "{placeholder}"
    );
    assert_eq!(
        got["hover_function"],
        "`coalesce(a, b, ...)`\n\nThe first of its arguments that is not null; null when all are."
    );
    let cause = got["hover_cause"].as_str().unwrap();
    assert!(cause.starts_with("cause `state.CrashLoopBackOff`: the cause of `"), "{cause}");

    // definitions: of a `let` name, a table, a `for` name
    let line_of = |needle: &str| canonical.lines().position(|l| l.contains(needle)).unwrap();
    let uri = &got["uri"];
    assert_eq!(got["definition_let"], json!({"line": line_of("let t ="), "character": 6, "uri": uri}));
    assert_eq!(got["definition_table"], json!({"line": line_of("table signal"), "character": 6, "uri": uri}));
    assert_eq!(got["definition_for"], json!({"line": line_of("for c in"), "character": 6, "uri": uri}));

    // completion: the fields of what is left of the `.`, in expressions and texts' placeholders
    assert_eq!(strings(&got["complete_fields"]), ["waiting", "running", "terminated"]);
    let event_fields = strings(&got["complete_quantified"]);
    assert!(event_fields.contains(&"reason") && event_fields.contains(&"involvedObject"), "{event_fields:?}");
    let container_fields = strings(&got["complete_placeholder"]);
    assert!(container_fields.contains(&"restartCount") && container_fields.contains(&"logs"), "{container_fields:?}");
    // names: those bound above (not `t`, which this `let` defines), the case's, functions, quantifiers
    let names = strings(&got["complete_names"]);
    for name in ["c", "containers", "controlPlane", "coalesce", "count", "has", "now", "signal"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert!(!names.contains(&"t"), "{names:?}");
    // cause keys in `explains`: the built-in pack's, those it explains, the file's own
    let causes = strings(&got["complete_causes"]);
    for key in ["cgroup-oom", "state.CrashLoopBackOff", "signal.SIGKILL", "demo.oom-killed"] {
        assert!(causes.contains(&key), "{key} in {causes:?}");
    }
    assert!(!causes.iter().any(|c| c.contains('{')), "{causes:?}");
    let typed = "  explains \"state.CrashLoopBackOff\", \"cgroup";
    let line = &got["cause_line"];
    assert_eq!(
        got["cause_edit"],
        json!({"newText": "cgroup-oom", "range": {"start": {"line": line, "character": typed.len() - 6}, "end": {"line": line, "character": typed.len()}}})
    );

    // formatting is `k8srule fmt`
    assert_ne!(got["messy"], canonical.trim_end());
    assert_eq!(got["formatted"], canonical.trim_end());

    // files nested thousands deep are checked, those past the bounds are refused, the server goes on
    let deep = strings(&got["deep"]);
    assert_eq!(deep.len(), 1, "{deep:?}");
    assert!(deep[0].starts_with("`x` is not a field of type `Pod`\n"), "{deep:?}");
    assert_eq!(
        strings(&got["chain"]),
        ["rule `a` has no `title`\nhelp: add the finding's one-line message: `title \"...\"`"]
    );
    let refused = "this file has more than 20000 operators, brackets and dots: run `k8srule check` on it";
    assert_eq!(strings(&got["nested"]), [refused]);
    assert_eq!(strings(&got["huge"]), ["this file is larger than 1024 KiB: run `k8srule check` on it"]);
    assert!(got["hover_after"].as_str().unwrap().contains("StateTerminated"), "{}", got["hover_after"]);
}
