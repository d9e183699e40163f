//! The `k8srule` binary.

use std::process::ExitCode;

/// The stack of the thread the command line runs on: the rule language
/// recurses once per level of an expression, up to `MAX_NESTING` levels of
/// ~20 KiB in a debug build; reserved, and used only as deep as a file goes.
const STACK_BYTES: usize = 1 << 30;

fn main() -> ExitCode {
    let cli = || k8srule_host::run_cli(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    match std::thread::Builder::new().name("k8srule".into()).stack_size(STACK_BYTES).spawn(cli) {
        Ok(thread) => ExitCode::from(thread.join().unwrap_or(101)),
        Err(e) => {
            eprintln!("k8srule: cannot start: {e}");
            ExitCode::from(2)
        }
    }
}
