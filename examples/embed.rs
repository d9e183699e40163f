//! Embedding k8srule: load a custom rule pack next to the built-in rules,
//! build a snapshot in memory, diagnose it from several threads, and print
//! the report as the `k8srule` table does.
//!
//! Run: `cargo run -p k8srule-host --example embed`; with
//! `--no-default-features` it builds without the CLI, the live cluster
//! reader and the registry client.

use k8srule_host::{Diagnoser, Format};
use serde_json::json;

const RULE: &str = r#"
rule team.restarts {
  cause "frequent-restarts"
  severity warning
  for c in containers
  when c.restartCount >= 5
  title "container {c.name} restarted {c.restartCount} times"
  fix "Look at `kubectl logs --previous` for {c.name}."
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let diagnoser = Diagnoser::builder().rules_source("team.k8srule", RULE).build()?;

    // keeps only what the loaded rules read
    let mut snapshot = diagnoser.snapshot(1_714_564_800); // 2024-05-01T12:00:00Z
    snapshot.add_value(
        "in memory",
        &json!({
            "kind": "Pod",
            "metadata": {"name": "api-0", "namespace": "shop", "uid": "u-1"},
            "spec": {"containers": [{"name": "api", "image": "shop/api:2.0.0", "resources": {"limits": {"memory": "128Mi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "api", "ready": false, "restartCount": 6,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
            }]}
        }),
    )?;

    // a Diagnoser is Send + Sync: share it between threads
    let reports: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2).map(|_| s.spawn(|| diagnoser.diagnose(&snapshot))).collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    print!("{}", reports[0].render(Format::Table, false));
    assert_eq!(reports[0].to_json(), reports[1].to_json());
    Ok(())
}
