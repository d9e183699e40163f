//! The command line as a process, for tests that need their own environment
//! (PATH with a stub credential helper, DOCKER_CONFIG, REGISTRY_AUTH_FILE).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(k8srule_host::cli::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr()))
}
