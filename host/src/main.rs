//! The `k8srule` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(k8srule_host::run_cli(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr()))
}
