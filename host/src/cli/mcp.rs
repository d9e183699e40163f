//! `k8srule mcp`: a Model Context Protocol server over stdio, for AI agents.
//!
//! Three tools: `diagnose` (a snapshot's files, or a live cluster), `explain`
//! (a rule) and `rules` (every loaded rule). Each call runs the command line
//! in-process, exactly as `k8srule diagnose -o json` (or `explain`, `rules -o
//! json`) would with the same flags, plus the pack options `k8srule mcp` was
//! started with; the JSON report is the result's structured content. A call
//! the command line refuses (exit 2) is a tool error with its message.

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

/// The arguments of the `diagnose` tool.
#[derive(Deserialize, schemars::JsonSchema)]
struct DiagnoseParams {
    /// Snapshot files or directories (JSON, YAML, a `k8srule snapshot` bundle, a
    /// `kubectl cluster-info dump` tree). Without files, the live cluster is read.
    #[serde(default)]
    files: Vec<String>,
    /// The kubeconfig context of the live cluster [default: the current context].
    context: Option<String>,
    /// The namespace [default: the context's]; `*` for every namespace.
    namespace: Option<String>,
    /// A label selector, as `kubectl -l`.
    selector: Option<String>,
    /// The moment ages are measured against (RFC 3339) [default: now].
    now: Option<String>,
    /// Leave out findings below this severity: info, warning, error or critical.
    min_severity: Option<String>,
}

/// The arguments of the `explain` tool.
#[derive(Deserialize, schemars::JsonSchema)]
struct ExplainParams {
    /// A rule id, as `rules` lists them (`crashloop.cgroup-oom`).
    rule: String,
    /// A BCP 47 language tag (`en`, `zh`, `ja`, `pt-BR`...); English where the rule has none in it [default: en].
    lang: Option<String>,
}

/// The command line, as `k8srule ARGS` with its output and error streams: what each tool call runs.
pub(crate) type Cli = fn(Vec<String>, &mut dyn std::io::Write, &mut dyn std::io::Write) -> u8;

/// The server: the command line each call runs, and the pack options it adds to it.
#[derive(Clone)]
struct Server {
    cli: Cli,
    pack_options: Vec<String>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Server {
    #[tool(
        description = "Diagnose the unhealthy pods of a Kubernetes snapshot (files) or of a live cluster: per pod, the root cause, its evidence, how to confirm and fix it. Returns the JSON report (findings ranked root cause first, notes, pack errors)."
    )]
    async fn diagnose(&self, Parameters(p): Parameters<DiagnoseParams>) -> Result<CallToolResult, ErrorData> {
        let mut args = vec!["diagnose".to_string(), "--output=json".into()];
        args.extend(p.files.iter().map(|f| format!("--filename={f}")));
        match p.namespace.as_deref() {
            Some("*") => args.push("--all-namespaces".into()),
            Some(ns) => args.push(format!("--namespace={ns}")),
            None => {}
        }
        args.extend(p.context.map(|c| format!("--context={c}")));
        args.extend(p.selector.map(|s| format!("--selector={s}")));
        args.extend(p.now.map(|t| format!("--now={t}")));
        if let Some(level) = p.min_severity {
            if !["info", "warning", "error", "critical"].contains(&level.as_str()) {
                return Ok(refused(format!("min_severity `{level}`: expected info, warning, error or critical")));
            }
            args.push(format!("--min-severity={level}"));
        }
        Ok(self.run_json(args).await)
    }

    #[tool(description = "Explain a rule: what it detects, why it happens, how to confirm and how to fix it.")]
    async fn explain(&self, Parameters(p): Parameters<ExplainParams>) -> Result<CallToolResult, ErrorData> {
        let lang = match p.lang.as_deref().unwrap_or("en").parse::<crate::Lang>() {
            Ok(lang) => lang,
            Err(e) => return Ok(refused(format!("lang: {e}"))),
        };
        let args = vec!["explain".to_string(), format!("--lang={lang}")];
        let (code, out, err) = self.run(args, Some(p.rule)).await;
        Ok(if code == 0 { CallToolResult::success(vec![ContentBlock::text(out)]) } else { refused(err) })
    }

    #[tool(description = "List the loaded rules: id, cause key, severity and title of each.")]
    async fn rules(&self) -> Result<CallToolResult, ErrorData> {
        Ok(self.run_json(vec!["rules".to_string(), "--output=json".into()]).await)
    }
}

impl Server {
    /// Runs `k8srule ARGS PACK-OPTIONS [-- POSITIONAL]` in-process on a blocking
    /// thread (a live read starts its own runtime).
    async fn run(&self, mut args: Vec<String>, positional: Option<String>) -> (u8, String, String) {
        args.extend(self.pack_options.iter().cloned());
        if let Some(p) = positional {
            args.extend(["--".to_string(), p]);
        }
        let cli = self.cli;
        let joined = tokio::task::spawn_blocking(move || {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = cli(args, &mut out, &mut err);
            (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
        })
        .await;
        joined.unwrap_or_else(|e| (2, String::new(), format!("the call failed: {e}")))
    }

    /// A call whose standard output is JSON: its structured result, or the
    /// command line's message when it refused (exit 2).
    async fn run_json(&self, args: Vec<String>) -> CallToolResult {
        let (code, out, err) = self.run(args, None).await;
        if code == 2 {
            return refused(err);
        }
        match serde_json::from_str(&out) {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => refused(format!("unexpected output: {e}")),
        }
    }
}

fn refused(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.trim_end().to_string())])
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("k8srule", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "k8srule tells why Kubernetes pods are unhealthy. Call `diagnose` with snapshot files \
                 (or none, for the live cluster of the current kubeconfig context), then `explain` a \
                 finding's rule for how to confirm and fix it."
                    .to_string(),
            )
    }
}

/// Serves MCP on standard input and output until the client closes them.
/// `pack_options` are `k8srule mcp`'s own options, added to every call.
pub(crate) fn serve(cli: Cli, pack_options: Vec<String>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let server = Server { cli, pack_options, tool_router: Server::tool_router() };
        let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| e.to_string())?;
        running.waiting().await.map_err(|e| e.to_string())?;
        Ok(())
    })
}
