//! The `thorbis-obs` binary: a thin wrapper around [`thorbis_obs_server::cli`].

use clap::Parser;
use std::process::ExitCode;
use thorbis_obs_server::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
