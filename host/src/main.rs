//! The `k8srule` binary.

use std::process::ExitCode;

/// The command line runs on a thread whose stack holds the deepest rule
/// file the parser lets through.
fn main() -> ExitCode {
    let cli = || k8srule_host::run_cli(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    match std::thread::Builder::new().name("k8srule".into()).stack_size(k8srule_dsl::parse::STACK_BYTES).spawn(cli) {
        Ok(thread) => ExitCode::from(thread.join().unwrap_or(101)),
        Err(e) => {
            eprintln!("k8srule: cannot start: {e}");
            ExitCode::from(2)
        }
    }
}
