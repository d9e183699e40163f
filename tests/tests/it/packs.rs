//! Shareable packs: build, inspect, test, digest pins, version checks, the
//! configuration file, and the image-ref plugin end to end (registries: `oci`).

use std::path::{Path, PathBuf};
use std::process::Command;

use k8srule_host::test_support::packs::{self, Manifest};
use k8srule_tests::{k8srule, root};

pub(crate) const RULES: &str = r#"
rule demo.boom {
  cause "boom"
  severity warning
  for c in containers
  when c.state.waiting.reason == "Boom"
  title "container {c.name} is boom"
}

rule demo.bang {
  cause "bang"
  severity info
  for c in containers
  when c.state.waiting.reason == "Boom"
  title "container {c.name} went bang"
}
"#;

const FIXTURE: &str = r#"now: "2024-05-01T12:00:00Z"
objects:
- kind: Pod
  metadata: {name: web, namespace: shop, uid: u1}
  spec: {containers: [{name: app, image: "shop:1"}]}
  status: {containerStatuses: [{name: app, state: {waiting: {reason: Boom}}}]}
expect:
- {rule: demo.boom, pod: shop/web, container: app}
- {rule: demo.bang, pod: shop/web, container: app}
"#;

const PODS: &str = r#"{"kind": "List", "items": [
  {"kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
   "spec": {"containers": [{"name": "app", "image": "shop:1"}]},
   "status": {"containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "Boom"}}}]}},
  {"kind": "Pod", "metadata": {"name": "agent", "namespace": "kube-system", "uid": "u2"},
   "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
   "status": {"containerStatuses": [{"name": "agent", "state": {"waiting": {"reason": "Boom"}}}]}}
]}"#;

fn manifest(k8srule: &str, wit: &str) -> String {
    format!(
        "name: demo\nversion: 1.2.0\ndescription: Boom and bang.\nauthors: [Ada]\nk8srule: \"{k8srule}\"\nwit: {wit}\n"
    )
}

/// A pack directory `demo/` with a manifest, a rule file and its fixture, and a snapshot.
pub(crate) fn pack_dir(tmp: &Path, k8srule_req: &str) -> PathBuf {
    let dir = tmp.join("demo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pack.yaml"), manifest(k8srule_req, packs::manifest::wit_version())).unwrap();
    std::fs::write(dir.join("boom.k8srule"), RULES).unwrap();
    std::fs::write(dir.join("boom.test.yaml"), FIXTURE).unwrap();
    std::fs::write(tmp.join("pods.json"), PODS).unwrap();
    dir
}

pub(crate) fn s(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn build_inspect_and_diagnose_with_a_pinned_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = pack_dir(tmp.path(), ">=0.1.0");
    let wasm = tmp.path().join("demo-1.2.0.wasm");
    let (code, out, err) = k8srule(&["pack", "build", &s(&dir), "-o", &s(&wasm), "--with-sources"]);
    assert_eq!(code, 0, "{err}");
    let digest = packs::manifest::digest(&std::fs::read(&wasm).unwrap());
    assert!(out.contains("built demo 1.2.0 (2 rules)") && out.contains(&digest), "{out}");

    let (code, out, err) = k8srule(&["pack", "inspect", &s(&wasm)]);
    assert_eq!(code, 0, "{err}");
    for want in
        ["pack:        demo 1.2.0", "authors:     Ada", &digest, "sources:     boom.k8srule", "demo.boom", "demo.bang"]
    {
        assert!(out.contains(want), "{want} in\n{out}");
    }
    let (_, out, _) = k8srule(&["pack", "inspect", &s(&wasm), "-o", "json"]);
    let v = json(&out);
    assert_eq!((v["digest"].as_str(), v["manifest"]["k8srule"].as_str()), (Some(digest.as_str()), Some(">=0.1.0")));
    assert_eq!(v["compatible"], true);
    assert_eq!(v["rules"].as_array().map(Vec::len), Some(2));

    let pods = s(&tmp.path().join("pods.json"));
    for rules in [s(&wasm), format!("{}@{digest}", wasm.display()), s(&dir)] {
        let (code, out, err) = k8srule(&["diagnose", "-f", &pods, "--no-builtin", "--rules", &rules, "-o", "json"]);
        assert_eq!(code, 0, "{rules}: {err}");
        let findings = json(&out)["findings"].as_array().cloned().unwrap();
        assert_eq!(findings.len(), 4, "{out}");
        assert!(findings.iter().all(|f| f["pack"] == "demo"), "{out}");
    }

    let wrong = format!("sha256:{}", "0".repeat(64));
    // a pack that cannot be used is an error entry of the report (exit 3); the other packs still run
    let (code, out, err) =
        k8srule(&["diagnose", "-f", &pods, "--no-builtin", "--rules", &format!("{}@{wrong}", wasm.display())]);
    assert_eq!(code, 3, "{err}");
    assert!(out.contains("digest mismatch") && out.contains(&wrong) && out.contains(&digest), "{out}");
    let (code, out, err) =
        k8srule(&["diagnose", "-f", &pods, "--rules", &format!("{}@sha256:12", wasm.display()), "-o", "json"]);
    assert_eq!(code, 3, "{err}");
    let report = json(&out);
    assert!(report["errors"][0]["message"].as_str().unwrap().contains("is not a digest"), "{out}");
    assert_eq!(report["summary"]["pods"], 2, "the built-in rules still ran: {out}");
}

#[test]
fn packs_for_another_k8srule_or_wit_version_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pods = tmp.path().join("pods.json");
    std::fs::write(&pods, PODS).unwrap();
    for (k8srule_req, wit, message) in [
        (
            ">=99.0.0",
            packs::manifest::wit_version(),
            "pack `demo 1.2.0` requires k8srule >=99.0.0; this is k8srule 0.1.0",
        ),
        ("*", "0.0.9", "pack `demo 1.2.0` is built for the WIT world k8srule:plugin@0.0.9"),
    ] {
        let mut wasm =
            k8srule_dsl::compile(&[k8srule_dsl::SourceFile::new("boom.k8srule", RULES)], "demo", "1.2.0").unwrap();
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "name": "demo", "version": "1.2.0", "k8srule": k8srule_req, "wit": wit,
        }))
        .unwrap();
        packs::manifest::embed(&mut wasm, &m, None);
        let file = tmp.path().join("old.wasm");
        std::fs::write(&file, &wasm).unwrap();
        let (code, out, err) = k8srule(&["diagnose", "-f", &s(&pods), "--rules", &s(&file)]);
        assert_eq!(code, 3, "{err}");
        assert!(out.contains(message) && out.contains("old.wasm"), "{out}");
        // inspect still shows why
        let (code, out, _) = k8srule(&["pack", "inspect", &s(&file), "-o", "json"]);
        assert_eq!((code, json(&out)["compatible"].as_bool()), (0, Some(false)), "{out}");
    }
    let dir = pack_dir(tmp.path(), ">=99.0.0");
    let (code, _, err) = k8srule(&["pack", "build", &s(&dir), "-o", &s(&tmp.path().join("x.wasm"))]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pack.yaml: pack `demo 1.2.0` requires k8srule >=99.0.0"), "{err}");
    let (code, out, err) = k8srule(&["diagnose", "-f", &s(&pods), "--rules", &s(&dir)]);
    assert_eq!(code, 3, "{err}");
    assert!(out.contains("requires k8srule >=99.0.0"), "{out}");
}

#[test]
fn pack_test_runs_the_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = pack_dir(tmp.path(), ">=0.1.0");
    let (code, out, err) = k8srule(&["pack", "test", &s(&dir)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    std::fs::write(
        dir.join("boom.test.yaml"),
        FIXTURE.replace("- {rule: demo.bang, pod: shop/web, container: app}\n", ""),
    )
    .unwrap();
    let (code, out, _) = k8srule(&["pack", "test", &s(&dir)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("+ unexpected: demo.bang on shop/web container app"), "{out}");
    // a directory without a manifest is not a pack
    std::fs::remove_file(dir.join("pack.yaml")).unwrap();
    let (code, _, err) = k8srule(&["pack", "test", &s(&dir)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pack.yaml"), "{err}");
}

#[test]
fn a_config_file_disables_rules_overrides_severities_and_skips_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    pack_dir(tmp.path(), ">=0.1.0");
    let pods = s(&tmp.path().join("pods.json"));
    let config = tmp.path().join("k8srule.yaml");
    std::fs::write(
        &config,
        "packs: [demo]\nbuiltin: false\ndisable: [demo.bang]\nseverity: {demo.boom: critical}\nskipNamespaces: [kube-system]\n",
    )
    .unwrap();
    let (code, out, err) = k8srule(&["diagnose", "-f", &pods, "--config", &s(&config), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    only_boom_as_critical_without_kube_system(&out);
    let (_, out, _) = k8srule(&["rules", "--config", &s(&config), "-o", "json"]);
    assert!(out.contains("\"critical\""), "{out}");

    // flags override the file: --rules replaces its packs
    let other = tmp.path().join("other.k8srule");
    std::fs::write(&other, RULES.replace("demo.", "other.")).unwrap();
    let (code, _, err) = k8srule(&["diagnose", "-f", &pods, "--config", &s(&config), "--rules", &s(&other)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("disable `demo.bang`: no loaded rule matches it"), "{err}");

    // prefixes, and mistakes in the file are input errors with their place
    std::fs::write(&config, "packs: [demo]\nbuiltin: false\ndisable: [\"demo.*\"]\n").unwrap();
    let (code, out, err) = k8srule(&["diagnose", "-f", &pods, "--config", &s(&config), "-o", "json"]);
    assert_eq!((code, json(&out)["findings"].as_array().map(Vec::len)), (0, Some(0)), "{err}");
    std::fs::write(&config, "packs: [demo]\nseverity: {demo.boom: fatal}\n").unwrap();
    let (code, _, err) = k8srule(&["diagnose", "-f", &pods, "--config", &s(&config)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("k8srule.yaml:2:") && err.contains("unknown severity `fatal`"), "{err}");
    let (code, _, err) = k8srule(&["diagnose", "-f", &pods, "--config", &s(&tmp.path().join("missing.yaml"))]);
    assert_eq!(code, 2, "{err}");
}

/// The report of the demo pack with `demo.bang` disabled, `demo.boom`
/// raised to critical and kube-system skipped.
fn only_boom_as_critical_without_kube_system(out: &str) {
    let report = json(out);
    let findings: Vec<(&str, &str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["severity"].as_str().unwrap(), f["pod"].as_str().unwrap()))
        .collect();
    assert_eq!(findings, [("demo.boom", "critical", "shop/web")]);
    assert!(report["notes"].to_string().contains("skipped 1 pod(s) in namespaces kube-system"), "{out}");
}

#[test]
fn flags_disable_rules_override_severities_and_skip_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    pack_dir(tmp.path(), ">=0.1.0");
    let pods = s(&tmp.path().join("pods.json"));
    let pack = s(&tmp.path().join("demo"));
    let run = |extra: &[&str]| {
        let mut args = vec!["diagnose", "-f", &pods, "--no-builtin", "--rules", &pack, "-o", "json"];
        args.extend_from_slice(extra);
        k8srule(&args)
    };
    let (code, out, err) =
        run(&["--disable", "demo.bang", "--rule-severity", "demo.*=critical", "--skip-namespace", "kube-system"]);
    assert_eq!(code, 0, "{err}");
    only_boom_as_critical_without_kube_system(&out);

    let (code, _, err) = run(&["--rule-severity", "demo.boom=fatal"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown severity `fatal`"), "{err}");
    let (code, _, err) = run(&["--disable", "nope.*"]);
    assert_eq!(code, 2);
    assert!(err.contains("disable `nope.*`: no loaded rule matches it"), "{err}");
}

#[test]
fn the_image_ref_plugin_says_what_is_wrong_with_an_image() {
    let dir = root().join("plugins/image-ref");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--target", "wasm32-unknown-unknown"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root().join("target/guests"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the image-ref plugin builds (needs `rustup target add wasm32-unknown-unknown`)");

    let (code, out, err) = k8srule(&["pack", "test", &s(&dir)]);
    assert_eq!(code, 0, "{out}{err}");
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("image-ref-0.1.0.wasm");
    let (code, _, err) = k8srule(&["pack", "build", &s(&dir), "-o", &s(&wasm)]);
    assert_eq!(code, 0, "{err}");

    let pods = tmp.path().join("pods.yaml");
    std::fs::write(
        &pods,
        r#"kind: Pod
metadata: {name: web, namespace: shop, uid: u1}
spec:
  containers:
  - {name: upper, image: "Shop/Web:1.0"}
  - {name: tags, image: "nginx:1.25:alpine"}
  - {name: digest, image: "nginx@sha256:abc"}
  - {name: port, image: "registry.local:http/app:1"}
  - {name: fine, image: "registry.local:5000/app:1"}
status:
  containerStatuses:
  - {name: upper, state: {waiting: {reason: InvalidImageName}}}
"#,
    )
    .unwrap();
    let (code, out, err) = k8srule(&["diagnose", "-f", &s(&pods), "--no-builtin", "--rules", &s(&wasm), "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let report = json(&out);
    let mut titles: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!((f["cause"].as_str(), f["pack"].as_str()), (Some("state.InvalidImageName"), Some("image-ref")));
            (f["container"].as_str().unwrap().to_string(), f["title"].as_str().unwrap().to_string())
        })
        .collect();
    titles.sort();
    let want = [
        (
            "digest",
            "container digest has an invalid image reference `nginx@sha256:abc`: the sha256 digest has 3 hex digits; it needs 64",
        ),
        (
            "port",
            "container port has an invalid image reference `registry.local:http/app:1`: the port `http` of registry `registry.local:http` is not a number",
        ),
        (
            "tags",
            "container tags has an invalid image reference `nginx:1.25:alpine`: it has 2 tags (`1.25`, `alpine`); an image has at most one `:tag`",
        ),
        (
            "upper",
            "container upper has an invalid image reference `Shop/Web:1.0`: the repository `Shop/Web` has uppercase letters; repository names are lowercase",
        ),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect();
    assert_eq!(titles, want);
}

#[test]
fn an_unreachable_pack_is_an_error_entry_and_the_built_in_rules_still_run() {
    // a loopback port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = format!("oci://127.0.0.1:{port}/team/demo:1.0.0");
    let snapshot = root().join("examples/snapshots/crashloop.json").display().to_string();
    let (code, out, err) = k8srule(&[
        "diagnose",
        "-f",
        &snapshot,
        "--now",
        "2024-05-01T12:00:00Z",
        "--no-cache",
        "--rules",
        &unreachable,
        "-o",
        "json",
    ]);
    assert_eq!(code, 3, "{err}");
    let report = json(&out);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["pack"], unreachable);
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "crashloop.cgroup-oom"), "{out}");
    // a rule file that does not compile still stops the run, with its diagnostics
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.k8srule");
    std::fs::write(&broken, "rule x {").unwrap();
    let (code, _, err) = k8srule(&["diagnose", "-f", &snapshot, "--rules", &broken.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.k8srule:1:"), "{err}");
}

#[test]
fn pack_build_names_every_problem_of_pack_yaml_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = pack_dir(tmp.path(), ">=0.1.0");
    let yaml = format!(
        "name: Demo Pack\nverison: 1.0.0\nk8srule: \">=0.1\"\nwit: {}\nauthors: Ada\nplugin: 3\n",
        packs::manifest::wit_version()
    );
    std::fs::write(dir.join("pack.yaml"), yaml).unwrap();
    let (code, _, err) = k8srule(&["pack", "build", &s(&dir), "-o", &s(&tmp.path().join("x.wasm"))]);
    assert_eq!(code, 2);
    let expected = [
        format!("{}: 5 problems:", s(&dir.join("pack.yaml"))),
        "  unknown field `verison`: the fields are `name`, `version`, `description`, `authors`, `k8srule`, `wit`, `plugin`".into(),
        "  missing `version`: the pack's own semver version, such as `1.0.0`".into(),
        "  `authors` must be a list of names".into(),
        "  `plugin` must be a string: a plugin pack's `.wasm` file, relative to the pack directory (quote it: `plugin: \"...\"`)".into(),
        "  name `Demo Pack` must be lowercase letters, digits, `-`, `_` and `.`".into(),
    ];
    assert_eq!(err, expected.join("\n") + "\n");
    // one problem is one line
    std::fs::write(dir.join("pack.yaml"), manifest(">=0.1.0", packs::manifest::wit_version()).replace("1.2.0", "one"))
        .unwrap();
    let (code, _, err) = k8srule(&["pack", "build", &s(&dir), "-o", &s(&tmp.path().join("x.wasm"))]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{}: version `one` is not a semver version", s(&dir.join("pack.yaml")))), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
