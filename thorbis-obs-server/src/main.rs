//! The `thorbis-obs` binary: a thin wrapper around [`thorbis_obs_server::cli`].

use clap::Parser;
use std::process::ExitCode;
use thorbis_obs_server::cli::{Cli, run};

/// jemalloc returns freed pages to the OS within seconds after a flood ends; glibc's malloc
/// keeps them in per-thread arenas (feature `jemalloc`, in the default build).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // jemalloc's background thread purges freed pages on time even while the agent idles.
    #[cfg(feature = "jemalloc")]
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    let cli = Cli::parse();
    run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
