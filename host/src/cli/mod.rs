//! The `k8srule` command line: a thin layer over the library. [`run`] takes
//! the arguments and the output streams, so tests drive it in-process.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::sanitize::text as shown;
mod clusters;
pub mod fixture;
mod lsp;
mod mcp;
mod pack;
mod rules;
mod selector;

use crate::{Diagnoser, Error, Format, Lang, Layout, Limits, LoadError, Report, Severity, Snapshot, Sort};

/// Tells why a Kubernetes pod is unhealthy: the root cause, its evidence, and the fix.
#[derive(Parser)]
#[command(name = "k8srule", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour: `auto` when standard output is a terminal and NO_COLOR is not set.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

impl ColorArg {
    /// The last `--color` of the raw arguments, so that `--help` and usage
    /// errors follow it too.
    fn from_args(args: &[std::ffi::OsString]) -> ColorArg {
        let mut choice = ColorArg::Auto;
        let mut args = args.iter().map(|a| a.to_string_lossy());
        while let Some(a) = args.next() {
            if a == "--" {
                break;
            }
            let value = match a.strip_prefix("--color=") {
                Some(v) => Some(v.to_string()),
                None if a == "--color" => args.next().map(|v| v.to_string()),
                None => None,
            };
            choice = match value.as_deref() {
                Some("always") => ColorArg::Always,
                Some("never") => ColorArg::Never,
                Some(_) => ColorArg::Auto,
                None => choice,
            };
        }
        choice
    }

    fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose the pods of a snapshot, or of the cluster of the current kubeconfig context
    ///
    /// Examples: k8srule diagnose -f examples/snapshots/crashloop.json
    ///           k8srule diagnose -n shop
    #[command(verbatim_doc_comment)]
    Diagnose(DiagnoseArgs),
    /// Watch a cluster and print new and resolved findings as they happen.
    ///
    /// Example: k8srule watch -A -o json
    Watch(WatchArgs),
    /// Save what a live diagnosis reads as a bundle that `diagnose -f DIR` loads.
    ///
    /// Example: k8srule snapshot -n shop -o shop-dump/
    Snapshot(SnapshotArgs),
    /// Format rule files in place, keeping comments.
    ///
    /// Example: k8srule fmt --check plugins/builtin
    Fmt {
        /// Rule files or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only report files that are not formatted; exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script.
    ///
    /// Example: k8srule completions bash > /etc/bash_completion.d/k8srule
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Check rule files and print every error.
    ///
    /// Example: k8srule check my.k8srule
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compile rule files into one component that `--rules` loads.
    ///
    /// Example: k8srule compile my.k8srule -o my.wasm
    Compile {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
        /// Name of the pack (default: the output file's stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// Run the `.test.yaml` fixtures beside rule files.
    ///
    /// Example: k8srule test plugins/builtin
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List the loaded rules.
    ///
    /// Example: k8srule rules -o json
    Rules {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
        #[command(flatten)]
        packs: PackArgs,
    },
    /// Explain a rule: what it detects, why it happens, how to confirm and fix it.
    ///
    /// Example: k8srule explain crashloop.cgroup-oom --lang zh
    Explain {
        rule: String,
        /// The language of the texts: a BCP 47 tag (en, zh, ja, pt-BR...); English where a rule has none in it.
        #[arg(long, value_name = "TAG", default_value_t = Lang::EN)]
        lang: Lang,
        #[command(flatten)]
        packs: PackArgs,
    },
    /// Build, inspect and test shareable rule packs; push them to and pull them from OCI registries.
    ///
    /// A pack is a directory with a pack.yaml (its fields: docs/packs.md) and its rules.
    /// Example: k8srule pack build my-pack/ -o my-pack-1.0.0.wasm
    #[command(verbatim_doc_comment)]
    Pack(pack::PackArgs),
    /// Serve `diagnose`, `explain` and `rules` to AI agents: a Model Context Protocol server on stdin/stdout.
    ///
    /// Example: k8srule mcp --rules team-pack.wasm
    Mcp {
        /// Added to every call the agent makes.
        #[command(flatten)]
        packs: PackArgs,
    },
    /// Serve editors: a Language Server for `.k8srule` files on stdin/stdout (diagnostics, hover, completion, go to definition, formatting)
    ///
    /// `explains` completes the cause keys of the loaded packs.
    /// Example: k8srule lsp (docs/language.md sets up VS Code and Neovim)
    #[command(verbatim_doc_comment)]
    Lsp {
        #[command(flatten)]
        packs: PackArgs,
    },
}

#[derive(clap::Args)]
struct PackArgs {
    /// A `.k8srule` file, a directory of them, a pack directory (pack.yaml), a `.wasm` pack,
    /// optionally pinned as `PACK.wasm@sha256:DIGEST`, or a pack in a registry (`oci://HOST/REPO:TAG`);
    /// repeatable. Replaces the configuration's packs.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// The configuration (packs, disabled rules, severities, namespaces to skip) [default: ./k8srule.yaml if there is one].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Do not load the built-in rules.
    #[arg(long)]
    no_builtin: bool,
    /// Where compiled packs are cached [default: $K8SRULE_CACHE_DIR, $XDG_CACHE_HOME/k8srule or ~/.cache/k8srule].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every pack, without the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Memory of one pack instance, in MiB (1 to 4096).
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pack_memory: u64,
    /// Time one pack may run on a batch of pods, in seconds (more than 0, at most 3600).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = pack_timeout)]
    pack_timeout: f64,
    /// Findings one pack may return for a batch of pods (at least 1).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_findings: u64,
    /// A rule not to run: its id, a cause key (`image-pull-failure` names its refinements too), or a prefix ending in `*` (`states.*`); repeatable, adds to the configuration's.
    #[arg(long, value_name = "RULE")]
    disable: Vec<String>,
    /// The severity a rule's findings get (`crashloop.*=critical`); repeatable, wins over the configuration.
    #[arg(long, value_name = "RULE=LEVEL", value_parser = rule_severity)]
    rule_severity: Vec<(String, Severity)>,
    /// A namespace whose pods are not diagnosed; repeatable, adds to the configuration's.
    #[arg(long, value_name = "NAMESPACE")]
    skip_namespace: Vec<String>,
    /// Pull no `oci://` pack: a tag is the digest it last resolved to, the pack comes from the cache.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    registry: pack::RegistryArgs,
}

fn pack_timeout(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds > 0.0 && seconds <= 3600.0 { Ok(seconds) } else { Err(format!("{text} is not in (0, 3600] seconds")) }
}

fn rule_severity(text: &str) -> Result<(String, Severity), String> {
    let (rule, level) = text.rsplit_once('=').ok_or("expected RULE=LEVEL, such as crashloop.*=critical")?;
    Ok((rule.to_string(), level.parse()?))
}

impl PackArgs {
    fn cache(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        self.cache_dir
            .clone()
            .or_else(|| env("K8SRULE_CACHE_DIR"))
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("k8srule")))
            .or_else(|| env("HOME").map(|d| d.join(".cache/k8srule")))
    }

    /// The flags' parsers bound each value, so none overflows here.
    fn limits(&self) -> Limits {
        Limits {
            memory_bytes: (self.pack_memory << 20) as usize,
            timeout: std::time::Duration::from_secs_f64(self.pack_timeout),
            max_findings: self.max_findings as usize,
            ..Limits::default()
        }
    }
}

/// Which cluster and pods a live read covers (as kubectl's flags).
#[derive(clap::Args)]
struct TargetArgs {
    /// The kubeconfig file [default: $KUBECONFIG or ~/.kube/config, else the in-cluster service account].
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context [default: the current context]. Repeatable for `diagnose` and
    /// `snapshot`: the clusters are read 4 at a time, into one report whose findings name their `cluster`.
    #[arg(long, value_name = "NAME")]
    context: Vec<String>,
    /// Every context of the kubeconfig, as if each were given with `--context` (`diagnose`, `snapshot`).
    #[arg(long, conflicts_with = "context")]
    all_contexts: bool,
    /// The namespace [default: the context's].
    #[arg(short, long, value_name = "NAME")]
    namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// A label selector for the pods, e.g. `app=web,tier!=cache`.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
}

impl TargetArgs {
    /// The flag that chooses a cluster, if one was given (`-n`, `-A` and `-l` apply to files too).
    fn given_cluster(&self) -> Option<&'static str> {
        [
            (self.kubeconfig.is_some(), "--kubeconfig"),
            (!self.context.is_empty(), "--context"),
            (self.all_contexts, "--all-contexts"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// The contexts to read: those given, each once, or every one of the
    /// kubeconfig; `[None]` for the current one.
    fn contexts(&self) -> Result<Vec<Option<String>>, Error> {
        if self.all_contexts {
            let all = crate::input::live::contexts(self.kubeconfig.as_deref())?;
            return Ok(all.into_iter().map(Some).collect());
        }
        let mut given: Vec<Option<String>> = Vec::new();
        for c in &self.context {
            if !given.iter().flatten().any(|g| g == c) {
                given.push(Some(c.clone()));
            }
        }
        Ok(if given.is_empty() { vec![None] } else { given })
    }

    /// The target of one cluster: `context`, or the current one.
    fn target(&self, context: Option<String>) -> crate::input::live::Target {
        crate::input::live::Target {
            kubeconfig: self.kubeconfig.clone(),
            context,
            namespace: self.namespace.clone(),
            all_namespaces: self.all_namespaces,
            selector: self.selector.clone(),
            pod: None,
        }
    }
}

#[derive(clap::Args)]
struct DiagnoseArgs {
    /// Only this pod: `NAME` or `pod/NAME`.
    #[arg(value_name = "POD")]
    pod: Option<String>,
    /// A snapshot file or directory (JSON or YAML, `-` for stdin); repeatable. Without it, the cluster is read.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    packs: PackArgs,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// The order of table, wide, markdown and html: worst first (by the highest severity, then by how many pods share the root cause), or by pod name.
    #[arg(long, value_enum, default_value_t = Sort::Severity)]
    sort: Sort,
    /// List every pod of a group (pods of one workload or node failing for one root cause), not one example.
    #[arg(long)]
    expand: bool,
    /// The moment ages are measured against (RFC 3339; default: now).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// The language of rule texts: a BCP 47 tag (en, zh, ja, pt-BR...); English where a rule has none in it [default: from LC_ALL, LC_MESSAGES or LANG].
    #[arg(long, value_name = "TAG")]
    lang: Option<Lang>,
    /// Leave out findings below this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    min_severity: Option<Severity>,
    /// Exit with 1 when a finding at or above this severity remains (for CI gates).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<Severity>,
    /// Reading a cluster, at most this many last lines of each container log (when a rule reads logs).
    #[arg(long, value_name = "N", default_value_t = crate::input::live::LogBounds::default().tail_lines)]
    log_tail_lines: i64,
    /// Reading a cluster, at most this many last bytes of each container log (when a rule reads logs).
    #[arg(long, value_name = "BYTES", default_value_t = crate::input::live::LogBounds::default().limit_bytes)]
    log_limit_bytes: i64,
}

/// The language of the locale (`zh_CN.UTF-8` is `zh-CN`), else English.
fn default_lang() -> Lang {
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let tag = |l: &str| l.split(['.', '@']).next().unwrap_or_default().replace('_', "-").parse().ok();
    locale.and_then(|l| tag(&l)).unwrap_or_default()
}

#[derive(clap::Args)]
struct WatchArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    packs: PackArgs,
    /// `table`: a line per change; `json`: a JSON object per line.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    output: ListFormat,
    /// The language of rule texts: a BCP 47 tag (en, zh, ja, pt-BR...); English where a rule has none in it.
    #[arg(long, value_name = "TAG", default_value_t = Lang::EN)]
    lang: Lang,
    /// Write a Kubernetes Event on the pod (or the workload) for each cause
    /// found on it, once while it stays (needs `create` and `patch` on
    /// events.k8s.io events).
    #[arg(long)]
    emit_events: bool,
    /// With --emit-events: write at most this many Events a minute (as many
    /// at once); the others are dropped, noted and counted in the metrics.
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    events_per_minute: u32,
    /// Diagnose every pod again this often, for findings that depend on age (at least 1).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    resync: u64,
    /// Stop after this long [default: run until interrupted].
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
    /// Serve Prometheus metrics on this address: `/metrics` (findings by
    /// cause, severity, namespace and rule; diagnoses; errors), `/healthz`,
    /// and `/readyz` (ready after the first sync). `0.0.0.0:9464` in a pod.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(clap::Args)]
struct SnapshotArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The directory to write (created; it must be empty if it exists).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

/// The output of `rules`, `explain` and `watch`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

const EXIT_USAGE: u8 = 2;
const EXIT_PACK_FAILED: u8 = 3;
const EXIT_FAIL_ON: u8 = 1;

/// Exit codes: 0 the run completed, 1 `--fail-on` or a failed rule test,
/// 2 a usage or input error, 3 a pack failed (the report lists the rest).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // installed as `kubectl-diagnose`, `kubectl diagnose ARGS` runs `kubectl-diagnose ARGS`
    let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let invoked_as = args.first().and_then(|a| PathBuf::from(a).file_stem().map(|s| s.to_string_lossy().into_owned()));
    let mut definition = <Cli as clap::CommandFactory>::command();
    if invoked_as.as_deref() == Some("kubectl-diagnose") {
        args.insert(1, "diagnose".into());
        definition = definition.bin_name("kubectl"); // usage: `kubectl diagnose [OPTIONS]`
    }
    let color = ColorArg::from_args(&args).enabled();
    let parsed =
        definition.try_get_matches_from(&args).and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let shown = if color { e.render().ansi().to_string() } else { e.render().to_string() };
            return if e.use_stderr() {
                let _ = write!(err, "{shown}");
                EXIT_USAGE
            } else {
                let _ = write!(out, "{shown}");
                0
            };
        }
    };
    let mut io = Io { out, err, color };
    match command(cli, &args, &mut io) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io.err, "{}", shown(e.to_string().trim_end()));
            EXIT_USAGE
        }
    }
}

struct Io<'w> {
    out: &'w mut dyn Write,
    err: &'w mut dyn Write,
    /// Whether reports for people are coloured (`--color`).
    color: bool,
}

fn diagnoser(packs: &PackArgs, lang: Lang) -> Result<Diagnoser, Error> {
    let config = crate::packs::config::Config::find(packs.config.as_deref())?.unwrap_or_default();
    let mut b = Diagnoser::builder()
        .lang(lang)
        .cache_dir(packs.cache())
        .limits(packs.limits())
        .registry(packs.registry.options(packs.offline));
    b = b.configured(&config, &packs.rules, packs.no_builtin);
    for pattern in &packs.disable {
        b = b.disable_rule(pattern);
    }
    for (pattern, severity) in &packs.rule_severity {
        b = b.severity(pattern, *severity);
    }
    for ns in &packs.skip_namespace {
        b = b.skip_namespace(ns);
    }
    b.build()
}

fn command(cli: Cli, args: &[std::ffi::OsString], io: &mut Io) -> Result<u8, Error> {
    match cli.command {
        Command::Diagnose(args) => diagnose(args, io),
        Command::Watch(args) => watch(args, io),
        Command::Snapshot(args) => snapshot(args, io),
        Command::Fmt { files, check } => fmt(&files, check, io),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "k8srule", io.out);
            Ok(0)
        }
        Command::Check { files } => {
            let mut sources = Vec::new();
            for f in &files {
                sources.extend(crate::packs::read_rule_files(f)?);
            }
            let (_, mut diags) = k8srule_dsl::check_files(&sources, "check", "0.0.0");
            let errors = diags.len();
            // `explains` keys name the causes of these files' rules or of the built-in ones
            let builtin = Diagnoser::builder().build()?;
            let causes: Vec<String> =
                builtin.packs().flat_map(|(_, info)| info.rules.iter().map(|r| r.cause.clone())).collect();
            diags.extend(k8srule_dsl::explains_warnings(&sources, &causes));
            diags.sort_by_key(|(i, d)| (*i, d.span.start));
            for r in k8srule_dsl::render(&sources, &diags) {
                let _ = writeln!(io.err, "{r}");
            }
            let warnings = diags.len() - errors;
            if warnings > 0 {
                let _ = writeln!(io.err, "{warnings} warning(s)");
            }
            if errors == 0 {
                let _ = writeln!(io.out, "{} file(s) checked, no errors", sources.len());
                return Ok(0);
            }
            let _ = writeln!(io.err, "{errors} error(s)");
            Ok(EXIT_USAGE)
        }
        Command::Compile { files, output, name } => {
            let mut sources = Vec::new();
            for f in &files {
                sources.extend(crate::packs::read_rule_files(f)?);
            }
            let name = name
                .unwrap_or_else(|| output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
            let wasm = k8srule_dsl::compile(&sources, &name, "0.0.0").map_err(|e| Error::Compile(e.to_string()))?;
            std::fs::write(&output, &wasm)
                .map_err(|e| crate::LoadError::Io { path: output.display().to_string(), message: e.to_string() })?;
            let _ = writeln!(io.out, "wrote {} ({} bytes)", output.display(), wasm.len());
            Ok(0)
        }
        Command::Test { paths } => test(&paths, io),
        Command::Pack(args) => pack::run(args, io.out, io.err),
        Command::Mcp { packs } => {
            diagnoser(&packs, Lang::EN)?; // the packs load before the first call
            // every call runs the command line again, with these same options
            let options = args.iter().skip(2).map(|a| a.to_string_lossy().into_owned()).collect();
            mcp::serve(|args, out, err| run(std::iter::once("k8srule".to_string()).chain(args), out, err), options)
                .map_err(|message| LoadError::Invalid { path: "mcp".into(), message })?;
            Ok(0)
        }
        Command::Lsp { packs } => {
            let d = diagnoser(&packs, Lang::EN)?;
            refused_packs(&d, io);
            lsp::serve(lsp::packs(&d)).map_err(|message| LoadError::Invalid { path: "lsp".into(), message })?;
            Ok(0)
        }
        Command::Rules { output, packs } => {
            let d = diagnoser(&packs, Lang::EN)?;
            let failed = refused_packs(&d, io);
            let loaded: Vec<_> = d.packs().map(|(_, info)| info).collect();
            for w in rules::unexplained(&loaded, &[]) {
                let _ = writeln!(io.err, "{}", shown(&w));
            }
            let rules: Vec<serde_json::Value> = d
                .packs()
                .flat_map(|(pack, info)| {
                    info.rules.iter().map(move |r| {
                        let mut listed = rules::rule_summary(r);
                        listed["source"] = pack.into();
                        listed
                    })
                })
                .collect();
            if output == ListFormat::Json {
                let _ = writeln!(
                    io.out,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "rules": rules })).unwrap_or_default()
                );
            } else {
                let _ = writeln!(io.out, "{:<40} {:<32} {:<9} TITLE", "RULE", "CAUSE", "SEVERITY");
                for r in &rules {
                    let line = format!(
                        "{:<40} {:<32} {:<9} {}",
                        r["id"].as_str().unwrap_or(""),
                        r["cause"].as_str().unwrap_or(""),
                        r["severity"].as_str().unwrap_or(""),
                        r["title"].as_str().unwrap_or("")
                    );
                    let _ = writeln!(io.out, "{}", shown(&line));
                }
            }
            Ok(if failed { EXIT_PACK_FAILED } else { 0 })
        }
        Command::Explain { rule, lang, packs } => {
            let d = diagnoser(&packs, lang.clone())?;
            refused_packs(&d, io);
            let found = d.packs().find_map(|(_, info)| info.rules.iter().find(|r| r.id == rule));
            let Some(r) = found else {
                return Err(crate::LoadError::Invalid {
                    path: rule,
                    message: "no such rule (see `k8srule rules`)".into(),
                }
                .into());
            };
            let _ = write!(io.out, "{}", shown(&rules::explain(r, &lang)));
            Ok(0)
        }
    }
}

/// Says on stderr which packs could not be loaded; whether there were any.
fn refused_packs(d: &Diagnoser, io: &mut Io) -> bool {
    for e in d.refused() {
        let _ = writeln!(io.err, "pack {} failed: {}", shown(&e.pack), shown(e.message.trim_end()));
    }
    !d.refused().is_empty()
}

fn fmt(paths: &[PathBuf], check: bool, io: &mut Io) -> Result<u8, Error> {
    let mut unformatted = 0;
    for path in paths {
        for file in crate::packs::read_rule_files(path)? {
            let formatted = k8srule_dsl::fmt::format(&file.text).map_err(|errors| {
                Error::Compile(errors.iter().map(|d| d.render(&file.name, &file.text)).collect::<Vec<_>>().join("\n"))
            })?;
            if formatted == file.text {
                continue;
            }
            unformatted += 1;
            if check {
                let _ = writeln!(io.out, "{}: not formatted", file.name);
            } else {
                std::fs::write(&file.name, formatted)
                    .map_err(|e| LoadError::Io { path: file.name.clone(), message: e.to_string() })?;
                let _ = writeln!(io.out, "formatted {}", file.name);
            }
        }
    }
    Ok(if check && unformatted > 0 { 1 } else { 0 })
}

/// The command-line reference (docs/cli.md), rendered from the definition.
#[cfg(any(test, feature = "test-support"))]
pub fn reference() -> String {
    let mut cli = <Cli as clap::CommandFactory>::command().term_width(100);
    let mut out = String::from(
        "# k8srule command line\n\nGenerated from the CLI definition; `cargo test` checks it is current.\n",
    );
    let top = cli.render_long_help().to_string();
    out.push_str(&format!("\n```text\n{}\n```\n", top.trim_end()));
    for sub in cli.get_subcommands_mut() {
        let name = sub.get_name().to_string();
        if name == "help" {
            continue;
        }
        let help = sub.clone().bin_name(format!("k8srule {name}")).term_width(100).render_long_help().to_string();
        out.push_str(&format!("\n## k8srule {name}\n\n```text\n{}\n```\n", help.trim_end()));
    }
    out
}

fn diagnose(args: DiagnoseArgs, io: &mut Io) -> Result<u8, Error> {
    let now = match &args.now {
        Some(t) => crate::input::snapshot::parse_time(t).ok_or_else(|| crate::LoadError::Invalid {
            path: "--now".into(),
            message: format!("`{t}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z"),
        })?,
        None => jiff::Timestamp::now().as_second(),
    };
    let diagnoser = diagnoser(&args.packs, args.lang.clone().unwrap_or_else(default_lang))?;
    let pod = args.pod.as_deref().map(|p| p.strip_prefix("pod/").or_else(|| p.strip_prefix("pods/")).unwrap_or(p));
    // each cluster's report, with how many pods its snapshot held
    let diagnose = |_: &str, snapshot: Snapshot| Ok((snapshot.pods.len(), diagnoser.diagnose(&snapshot)));
    let (reports, unread): Clusters<(usize, Report)> = if args.files.is_empty() {
        let needs = diagnoser.needs();
        let bounds = crate::input::live::LogBounds {
            tail_lines: args.log_tail_lines,
            limit_bytes: args.log_limit_bytes,
            ..crate::input::live::LogBounds::default()
        };
        let logs = diagnoser.logs().map(|r| (r, bounds));
        let targets: Vec<(Option<String>, crate::input::live::Target)> = args
            .target
            .contexts()?
            .into_iter()
            .map(|context| {
                let mut target = args.target.target(context.clone());
                target.pod = pod.map(str::to_string);
                (context, target)
            })
            .collect();
        read_clusters(targets, needs, diagnoser.fields(), now, logs, io, diagnose)?
    } else {
        if let Some(flag) = args.target.given_cluster() {
            return Err(LoadError::Invalid {
                path: flag.into(),
                message: "chooses a live cluster; it cannot be used with -f".into(),
            }
            .into());
        }
        let selector = args.target.selector.as_deref().map(selector::parse).transpose()?;
        let mut fields = diagnoser.fields();
        if selector.is_some() {
            fields.keep(&["metadata", "labels"]);
        }
        // -n, -l and POD as a live read applies them; without -n, every namespace
        let namespace = args.target.namespace.as_deref().filter(|_| !args.target.all_namespaces);
        let load = |paths: &[PathBuf]| -> Result<Snapshot, Error> {
            let mut snapshot = Snapshot::new(now).keeping(fields.clone()).reading_logs(diagnoser.logs());
            for f in paths {
                snapshot.add_path(f)?;
            }
            let store = &snapshot.store;
            snapshot.pods.retain(|p| {
                let meta = store.get(*p);
                namespace.is_none_or(|ns| meta.str_at(&["metadata", "namespace"]).unwrap_or("default") == ns)
                    && pod.is_none_or(|name| meta.str_at(&["metadata", "name"]) == Some(name))
                    && selector.as_ref().is_none_or(|s| s.matches(meta.path(&["metadata", "labels"])))
            });
            Ok(snapshot)
        };
        match clusters::read(&args.files)? {
            Some(saved) => {
                let mut reports = Vec::new();
                for (context, dir) in saved.read {
                    reports.push((Some(context.clone()), diagnose(&context, load(&[dir])?)?));
                }
                (reports, saved.unread)
            }
            None => (vec![(None, diagnose("", load(&args.files)?)?)], Vec::new()),
        }
    };
    if let Some(pod) = pod
        && reports.iter().all(|(_, (pods, _))| *pods == 0)
    {
        let scope = args.target.namespace.as_deref().map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
        return Err(LoadError::NotFound(format!("pods \"{pod}\" not found{scope}")).into());
    }
    let several = reports.iter().any(|(context, _)| context.is_some());
    let names: Vec<String> =
        reports.iter().filter_map(|(c, _)| c.clone()).chain(unread.iter().map(|(c, _)| c.clone())).collect();
    let mut report = match several {
        false => reports.into_iter().next().map(|(_, (_, r))| r).unwrap_or_default(),
        true => Report::merge(reports.into_iter().map(|(c, (_, r))| (c.unwrap_or_default(), r)).collect()),
    };
    for (context, why) in &unread {
        report.notes.push(format!("cluster {context}: not read: {why}"));
    }
    if let Some(min) = args.min_severity {
        report.retain_severity(min);
    }
    let source = match args.files.is_empty() {
        true if several => format!("the clusters of contexts {}", names.join(", ")),
        true => match args.target.context.first() {
            Some(context) => format!("the cluster of context {context}"),
            None => "the cluster of the current kubeconfig context".into(),
        },
        false => args.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
    };
    let layout = Layout {
        color: io.color,
        width: terminal_width(),
        sort: args.sort,
        expand: args.expand,
        taken: jiff::Timestamp::from_second(now).ok().map(crate::input::snapshot::rfc3339),
        source: Some(source),
    };
    let text = report.render_with(args.output, &layout);
    let _ = io.out.write_all(text.as_bytes());
    let failed = args.fail_on.is_some_and(|s| report.findings.iter().any(|f| f.severity >= s));
    Ok(if !report.errors.is_empty() {
        EXIT_PACK_FAILED
    } else if failed {
        EXIT_FAIL_ON
    } else {
        0
    })
}

/// The width of the terminal standard output is, from COLUMNS or the
/// terminal itself; `None` when it is not a terminal (piped: no wrapping).
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0);
    columns.or_else(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
}

/// Reads the cluster once, with a progress line on stderr when it is a terminal.
fn read_cluster(
    target: &crate::input::live::Target,
    needs: crate::input::Needs,
    fields: crate::input::fields::Fields,
    now: i64,
    logs: Option<(crate::input::redact::Redactor, crate::input::live::LogBounds)>,
    io: &mut Io,
) -> Result<Snapshot, Error> {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let err = &mut *io.err;
    let mut progress = |kind: &str, n: usize| {
        if tty {
            let _ = write!(err, "\r\x1b[2Klisting {kind}: {n}");
            let _ = err.flush();
        }
    };
    let read = crate::input::live::block_on(read_live(target, needs, fields, now, logs, &mut progress))?;
    if tty {
        let _ = write!(io.err, "\r\x1b[2K");
    }
    Ok(read?)
}

/// A cluster's pods and what `needs` names, then the logs the rules read.
async fn read_live(
    target: &crate::input::live::Target,
    needs: crate::input::Needs,
    fields: crate::input::fields::Fields,
    now: i64,
    logs: Option<(crate::input::redact::Redactor, crate::input::live::LogBounds)>,
    progress: &mut dyn FnMut(&str, usize),
) -> Result<Snapshot, crate::input::live::LiveError> {
    let cluster = crate::input::live::Cluster::connect(target).await?;
    let mut snapshot = cluster.snapshot(needs, now, fields, progress).await?;
    if let Some((redactor, bounds)) = logs {
        progress("container logs", 0);
        cluster.read_logs(&mut snapshot, redactor, bounds).await;
    }
    Ok(snapshot)
}

/// What was made of each cluster read (named by its context when there are
/// several), and each cluster not read, with why.
type Clusters<T> = (Vec<(Option<String>, T)>, Vec<(String, String)>);

/// Clusters read at once by `--context` given more than once or `--all-contexts`.
const CLUSTERS_AT_ONCE: usize = 4;

/// The clusters of `targets`, each snapshot made into what `each` makes of
/// it (a report, a bundle) as soon as it is read, so that no more than
/// [`CLUSTERS_AT_ONCE`] and one are held. One cluster is read with progress
/// on stderr, and an error is the run's; several are read
/// [`CLUSTERS_AT_ONCE`] at a time, and one that cannot be read is named with
/// why, unless none can.
fn read_clusters<T>(
    targets: Vec<(Option<String>, crate::input::live::Target)>,
    needs: crate::input::Needs,
    fields: crate::input::fields::Fields,
    now: i64,
    logs: Option<(crate::input::redact::Redactor, crate::input::live::LogBounds)>,
    io: &mut Io,
    mut each: impl FnMut(&str, Snapshot) -> Result<T, Error>,
) -> Result<Clusters<T>, Error> {
    use futures::StreamExt;
    if let [(_, target)] = targets.as_slice() {
        let snapshot = read_cluster(target, needs, fields, now, logs, io)?;
        return Ok((vec![(None, each("", snapshot)?)], Vec::new()));
    }
    let reads = futures::stream::iter(targets).map(|(context, target)| {
        let (fields, logs) = (fields.clone(), logs.clone());
        async move { (context.unwrap_or_default(), read_live(&target, needs, fields, now, logs, &mut |_, _| {}).await) }
    });
    let (read, unread) = crate::input::live::block_on(async {
        let mut reads = std::pin::pin!(reads.buffered(CLUSTERS_AT_ONCE));
        let (mut read, mut unread) = (Vec::new(), Vec::new());
        while let Some((context, result)) = reads.next().await {
            match result {
                // the reads in flight wait meanwhile
                Ok(snapshot) => read.push((Some(context.clone()), each(&context, snapshot)?)),
                Err(e) => unread.push((context, e.to_string())),
            }
        }
        Ok::<_, Error>((read, unread))
    })??;
    if read.is_empty() {
        let why: Vec<String> = unread.iter().map(|(c, e)| format!("context {c}: {e}")).collect();
        return Err(
            crate::input::live::LiveError::Config(format!("no cluster could be read: {}", why.join("; "))).into()
        );
    }
    Ok((read, unread))
}

fn snapshot(args: SnapshotArgs, io: &mut Io) -> Result<u8, Error> {
    let dir = &args.output;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(
            LoadError::Invalid { path: dir.display().to_string(), message: "exists and is not empty".into() }.into()
        );
    }
    let now = jiff::Timestamp::now();
    let logs = crate::input::redact::Redactor::new(&[]).map_err(Error::Redact)?;
    let logs = Some((logs, crate::input::live::LogBounds::default()));
    let (needs, fields) = (crate::input::Needs::ALL, crate::input::fields::Fields::All);
    let targets: Vec<_> = args.target.contexts()?.into_iter().map(|c| (c.clone(), args.target.target(c))).collect();
    // several clusters: a bundle per context, in a subdirectory named after it
    let several = targets.len() > 1;
    let mut taken = Vec::new();
    let (written, unread) = read_clusters(targets, needs, fields, now.as_second(), logs, io, |context, snapshot| {
        let sub = several.then(|| clusters::subdirectory(context, &mut taken));
        snapshot.write_bundle(&sub.as_ref().map_or_else(|| dir.clone(), |s| dir.join(s)))?;
        let of = if several { format!(" (context {context})") } else { String::new() };
        let line = format!(
            "wrote {}{of}: {} pods, {} events, {} nodes, {} owners",
            dir.display(),
            snapshot.pods.len(),
            snapshot.events.len(),
            snapshot.nodes.len(),
            snapshot.owners.len()
        );
        Ok((sub, line, snapshot.notes.clone()))
    })?;
    if several {
        let read: Vec<(String, String)> =
            written.iter().filter_map(|(c, (sub, _, _))| Some((c.clone()?, sub.clone()?))).collect();
        clusters::write_index(dir, &read, &unread)?;
    }
    for (_, (_, line, notes)) in &written {
        let _ = writeln!(io.out, "{line}");
        for n in notes {
            let _ = writeln!(io.err, "note: {}", shown(n));
        }
    }
    for (context, why) in &unread {
        let _ = writeln!(io.err, "note: context {}: not read: {}", shown(context), shown(why));
    }
    let _ = writeln!(
        io.out,
        "diagnose it at the time it was taken: k8srule diagnose -f {} --now {}",
        dir.display(),
        crate::input::snapshot::rfc3339(now)
    );
    Ok(0)
}

/// A line of `watch -o json`.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum JsonLine<'a> {
    Synced { time: &'a str, pods: usize, scope: &'a str },
    New { time: &'a str, finding: &'a crate::Finding },
    Resolved { time: &'a str, pod_deleted: bool, finding: &'a crate::Finding },
    Note { time: &'a str, message: &'a str },
}

fn watch(args: WatchArgs, io: &mut Io) -> Result<u8, Error> {
    use crate::watch::Change;
    if args.target.all_contexts || args.target.context.len() > 1 {
        return Err(LoadError::Invalid { path: "--context".into(), message: "watch reads one cluster".into() }.into());
    }
    let diagnoser = diagnoser(&args.packs, args.lang.clone())?;
    let listener = match args.metrics_addr {
        Some(addr) => {
            let cannot = |e: std::io::Error| {
                crate::input::live::LiveError::Config(format!("--metrics-addr {addr}: cannot listen: {e}"))
            };
            let listener = std::net::TcpListener::bind(addr).map_err(cannot)?;
            listener.set_nonblocking(true).map_err(cannot)?;
            let local = listener.local_addr().map_err(cannot)?;
            let _ = writeln!(io.err, "serving metrics on http://{local}/metrics");
            Some(listener)
        }
        None => None,
    };
    let options = crate::watch::Options {
        emit_events: args.emit_events,
        events_per_minute: args.events_per_minute,
        resync: std::time::Duration::from_secs(args.resync),
        duration: args.duration.map(std::time::Duration::from_secs),
        metrics: listener.as_ref().map(|_| std::sync::Arc::new(crate::watch::metrics::Metrics::default())),
        ..crate::watch::Options::default()
    };
    let json = args.output == ListFormat::Json;
    let mut sink = |change: Change| {
        let time = crate::input::snapshot::now_rfc3339();
        if json {
            // serialized as the report is, so a confidence reads `0.9` here too
            let line = match &change {
                Change::Synced { pods, scope } => JsonLine::Synced { time: &time, pods: *pods, scope },
                Change::New(finding) => JsonLine::New { time: &time, finding },
                Change::Resolved { finding, pod_deleted } => {
                    JsonLine::Resolved { time: &time, pod_deleted: *pod_deleted, finding }
                }
                Change::Note(message) => JsonLine::Note { time: &time, message },
            };
            let line = serde_json::to_string(&line).unwrap_or_default();
            let _ = writeln!(io.out, "{line}");
            let _ = io.out.flush();
            return;
        }
        let line = |what: &str, f: &crate::Finding, extra: &str| {
            let container = f.container.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default();
            let symptom = f.explained_by.as_ref().map(|r| format!(", symptom of {r}")).unwrap_or_default();
            format!(
                "{time}  {what:<8}  {:<8} {}{container}: {} ({}{symptom}){extra}",
                f.severity.as_str().to_uppercase(),
                f.subject(),
                f.title.trim_end().replace('\n', " "),
                f.rule
            )
        };
        match &change {
            Change::Synced { pods, scope } => {
                let _ = writeln!(io.err, "watching {pods} pods in {}", shown(scope));
            }
            Change::New(f) => {
                let _ = writeln!(io.out, "{}", shown(&line("NEW", f, "")));
            }
            Change::Resolved { finding, pod_deleted } => {
                let extra = match (*pod_deleted, &finding.pod) {
                    (false, _) => "",
                    (true, Some(_)) => " (pod deleted)",
                    (true, None) => " (workload deleted)",
                };
                let _ = writeln!(io.out, "{}", shown(&line("RESOLVED", finding, extra)));
            }
            Change::Note(m) => {
                let _ = writeln!(io.err, "note: {}", shown(m));
            }
        }
        let _ = io.out.flush();
    };
    // the metrics are served on a thread of their own, so they answer while a diagnosis runs
    let workers = usize::from(listener.is_some());
    crate::input::live::block_on_with(workers, async {
        if let (Some(listener), Some(metrics)) = (listener, &options.metrics) {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| crate::input::live::LiveError::Config(format!("--metrics-addr: {e}")))?;
            tokio::spawn(crate::watch::metrics::serve(listener, metrics.clone()));
        }
        let cluster =
            crate::input::live::Cluster::connect(&args.target.target(args.target.context.first().cloned())).await?;
        crate::watch::watch(&cluster, &diagnoser, &options, &mut sink).await
    })??;
    Ok(0)
}

fn test(paths: &[PathBuf], io: &mut Io) -> Result<u8, Error> {
    let mut fixtures = Vec::new();
    for p in paths {
        fixtures.extend(fixture::find_fixtures(p)?);
    }
    let failed = fixture::run_all(&fixtures, fixture::run_fixture, io.out);
    Ok(if failed == 0 { 0 } else { 1 })
}
