//! The `ftuscope` command line: segment images now; train, predict on slides and export later.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

/// The CLI is native only; the wasm build's entry points are in `ftuscope::web`.
#[cfg(target_arch = "wasm32")]
fn main() {}
