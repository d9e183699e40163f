//! The `k8srule` command line: a thin layer over the library. [`run`] takes
//! the arguments and the output streams, so tests drive it in-process.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{Diagnoser, Error, Lang, Limits, LoadError, Report, Snapshot, fixture};

/// Tells why a Kubernetes pod is unhealthy: the root cause, its evidence, and the fix.
#[derive(Parser)]
#[command(name = "k8srule", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose the pods of a snapshot.
    ///
    /// Example: k8srule diagnose -f examples/snapshots/crashloop.json
    Diagnose(DiagnoseArgs),
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
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        packs: PackArgs,
    },
    /// Explain a rule: what it detects, why it happens, how to confirm and fix it.
    ///
    /// Example: k8srule explain crashloop.cgroup-oom --lang zh
    Explain {
        rule: String,
        #[arg(long, value_enum, default_value_t = LangArg::En)]
        lang: LangArg,
        #[command(flatten)]
        packs: PackArgs,
    },
}

#[derive(clap::Args)]
struct PackArgs {
    /// A `.k8srule` file, a directory of them, or a compiled `.wasm` pack; repeatable.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Do not load the built-in rules.
    #[arg(long)]
    no_builtin: bool,
    /// Where compiled packs are cached [default: $K8SRULE_CACHE_DIR, $XDG_CACHE_HOME/k8srule or ~/.cache/k8srule].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every pack, without the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Memory of one pack instance, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pack_memory: usize,
    /// Time one pack may run on a batch of pods, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pack_timeout: f64,
    /// Findings one pack may return for a batch of pods.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_findings: usize,
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

    fn limits(&self) -> Result<Limits, Error> {
        let timeout = std::time::Duration::try_from_secs_f64(self.pack_timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| LoadError::Invalid {
                path: "--pack-timeout".into(),
                message: "expected a positive number of seconds".into(),
            })?;
        Ok(Limits {
            memory_bytes: self.pack_memory << 20,
            timeout,
            max_findings: self.max_findings,
            ..Limits::default()
        })
    }
}

#[derive(clap::Args)]
struct DiagnoseArgs {
    /// A snapshot file or directory (JSON or YAML, `-` for stdin); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    packs: PackArgs,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// The moment ages are measured against (RFC 3339; default: now).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    #[arg(long, value_enum, default_value_t = LangArg::En)]
    lang: LangArg,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    En,
    Zh,
}

impl From<LangArg> for Lang {
    fn from(l: LangArg) -> Lang {
        match l {
            LangArg::En => Lang::En,
            LangArg::Zh => Lang::Zh,
        }
    }
}

const EXIT_USAGE: u8 = 2;
const EXIT_PACK_FAILED: u8 = 3;

/// Exit codes: 0 the run completed, 1 `--fail-on` or a failed rule test,
/// 2 a usage or input error, 3 a pack failed (the report lists the rest).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let shown = e.render().ansi().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{shown}");
                EXIT_USAGE
            } else {
                let _ = write!(out, "{shown}");
                0
            };
        }
    };
    let mut io = Io { out, err };
    match command(cli, &mut io) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io.err, "{}", e.to_string().trim_end());
            EXIT_USAGE
        }
    }
}

struct Io<'w> {
    out: &'w mut dyn Write,
    err: &'w mut dyn Write,
}

fn diagnoser(packs: &PackArgs, lang: Lang) -> Result<Diagnoser, Error> {
    let mut b =
        Diagnoser::builder().builtin(!packs.no_builtin).lang(lang).cache_dir(packs.cache()).limits(packs.limits()?);
    for r in &packs.rules {
        b = b.rules_path(r);
    }
    b.build()
}

fn command(cli: Cli, io: &mut Io) -> Result<u8, Error> {
    match cli.command {
        Command::Diagnose(args) => diagnose(args, io),
        Command::Check { files } => {
            let mut sources = Vec::new();
            for f in &files {
                sources.extend(crate::read_rule_files(f)?);
            }
            let (_, diags) = k8srule_dsl::check_files(&sources, "check", "0.0.0");
            if diags.is_empty() {
                let _ = writeln!(io.out, "{} file(s) checked, no errors", sources.len());
                return Ok(0);
            }
            for r in k8srule_dsl::render(&sources, &diags) {
                let _ = writeln!(io.err, "{r}");
            }
            let _ = writeln!(io.err, "{} error(s)", diags.len());
            Ok(EXIT_USAGE)
        }
        Command::Compile { files, output, name } => {
            let mut sources = Vec::new();
            for f in &files {
                sources.extend(crate::read_rule_files(f)?);
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
        Command::Rules { output, packs } => {
            let d = diagnoser(&packs, Lang::En)?;
            let rules: Vec<serde_json::Value> = d
                .packs()
                .flat_map(|(pack, info)| {
                    info.rules.iter().map(move |r| {
                        serde_json::json!({
                            "id": r.id, "cause": r.cause, "severity": crate::Severity::from(r.severity),
                            "confidence": r.confidence, "title": r.title.en, "source": pack,
                        })
                    })
                })
                .collect();
            if output == Format::Json {
                let _ = writeln!(
                    io.out,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "rules": rules })).unwrap_or_default()
                );
            } else {
                let _ = writeln!(io.out, "{:<40} {:<32} {:<9} TITLE", "RULE", "CAUSE", "SEVERITY");
                for r in &rules {
                    let _ = writeln!(
                        io.out,
                        "{:<40} {:<32} {:<9} {}",
                        r["id"].as_str().unwrap_or(""),
                        r["cause"].as_str().unwrap_or(""),
                        r["severity"].as_str().unwrap_or(""),
                        r["title"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(0)
        }
        Command::Explain { rule, lang, packs } => {
            let d = diagnoser(&packs, lang.into())?;
            let found = d.packs().find_map(|(_, info)| info.rules.iter().find(|r| r.id == rule));
            let Some(r) = found else {
                return Err(crate::LoadError::Invalid {
                    path: rule,
                    message: "no such rule (see `k8srule rules`)".into(),
                }
                .into());
            };
            let _ = write!(io.out, "{}", crate::report::explain(r, lang.into()));
            Ok(0)
        }
    }
}

fn diagnose(args: DiagnoseArgs, io: &mut Io) -> Result<u8, Error> {
    let now = match &args.now {
        Some(t) => crate::snapshot::parse_time(t).ok_or_else(|| crate::LoadError::Invalid {
            path: "--now".into(),
            message: format!("`{t}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z"),
        })?,
        None => chrono::Utc::now().timestamp(),
    };
    let mut snapshot = Snapshot::new(now);
    for f in &args.files {
        snapshot.add_path(f)?;
    }
    let report: Report = diagnoser(&args.packs, args.lang.into())?.diagnose(&snapshot);
    let text = match args.output {
        Format::Json => report.to_json(),
        Format::Table => report.to_table(),
    };
    let _ = io.out.write_all(text.as_bytes());
    Ok(if report.errors.is_empty() { 0 } else { EXIT_PACK_FAILED })
}

fn test(paths: &[PathBuf], io: &mut Io) -> Result<u8, Error> {
    let mut fixtures = Vec::new();
    for p in paths {
        fixtures.extend(fixture::find_fixtures(p)?);
    }
    let (mut passed, mut failed) = (0, 0);
    for f in &fixtures {
        match fixture::run_fixture(f) {
            Ok(o) if o.passed() => {
                passed += 1;
                let _ = writeln!(io.out, "ok    {} ({} findings)", f.display(), o.findings);
            }
            Ok(o) => {
                failed += 1;
                let _ = writeln!(io.out, "FAIL  {}", f.display());
                for m in &o.missing {
                    let _ = writeln!(io.out, "      - missing:    {m}");
                }
                for u in &o.unexpected {
                    let _ = writeln!(io.out, "      + unexpected: {u}");
                }
                for e in &o.errors {
                    let _ = writeln!(io.out, "      ! error:      {e}");
                }
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(io.out, "FAIL  {}\n      {}", f.display(), e.to_string().replace('\n', "\n      "));
            }
        }
    }
    let _ = writeln!(io.out, "{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}
