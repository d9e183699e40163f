//! `k8srule mcp` driven by the official MCP Python SDK (PyPI `mcp`) as the client.

use std::process::Command;

use k8srule_tests::root;
use serde_json::Value;

#[test]
fn an_mcp_client_diagnoses_explains_and_lists_rules() {
    let snapshot = root().join("examples/snapshots/crashloop.json").display().to_string();
    let out = Command::new("python3")
        .arg(root().join("tests/mcp/client.py"))
        .args([env!("CARGO_BIN_EXE_k8srule-cli"), &snapshot])
        .env("K8SRULE_CACHE_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .expect("python3 runs (the MCP SDK: pip install mcp)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the client failed: {stderr}");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));

    assert_eq!(got["server"], "k8srule");
    assert_eq!(got["tools"], serde_json::json!(["diagnose", "explain", "rules"]));

    // the report is the structured result, as `diagnose -o json` prints it
    let report = &got["diagnose"]["structured"];
    assert_eq!(got["diagnose"]["error"], false);
    let (code, cli_json, _) = k8srule_tests::k8srule(&[
        "diagnose",
        "-f",
        &snapshot,
        "--now",
        "2024-05-01T12:00:00Z",
        "--min-severity",
        "error",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(report, &serde_json::from_str::<Value>(&cli_json).unwrap());
    let root_cause = &report["findings"][0];
    assert_eq!(
        (&root_cause["rule"], &root_cause["pod"]),
        (&"crashloop.cgroup-oom".into(), &"shop/web-7d4b9c-x2x9k".into())
    );
    assert!(
        report["findings"].as_array().unwrap().iter().all(|f| f["severity"] != "warning" && f["severity"] != "info")
    );

    assert_eq!(got["explain"]["error"], false);
    let explained = got["explain"]["text"].as_str().unwrap();
    assert_eq!(explained, k8srule_tests::k8srule(&["explain", "crashloop.cgroup-oom", "--lang", "zh"]).1);

    let rules = got["rules"]["structured"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "crashloop.cgroup-oom" && r["cause"] == "cgroup-oom"), "{rules:?}");

    // refusals are tool errors with the command line's message
    assert_eq!(got["missing"]["error"], true);
    assert!(got["missing"]["text"].as_str().unwrap().contains("crashloop.json.missing"), "{}", got["missing"]);
    assert_eq!(got["bad_level"]["error"], true);
    assert_eq!(got["bad_level"]["text"], "min_severity `loud`: expected info, warning, error or critical");
}
