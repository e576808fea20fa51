//! The `thorbis-obs` binary: a thin wrapper around [`thorbis_obs_server::cli`].

use clap::Parser;
use std::process::ExitCode;
use thorbis_obs_server::cli::{Cli, run};

/// jemalloc returns freed pages to the OS within seconds after a flood ends; glibc's malloc
/// keeps them in per-thread arenas (feature `jemalloc`, in the default build).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long jemalloc keeps a freed page before it goes back to the OS (its default is 10 s).
/// At 10 s, pages freed by one burst were still resident while the next one allocated in
/// other arenas: the attack suite's OTLP flood peaked at 132-159 MB after the summary floods,
/// 114 MB at 1 s (`python3 scripts/attack.py`, one run each on this machine).
#[cfg(feature = "jemalloc")]
const DIRTY_DECAY_MS: isize = 1000;

/// The allocator's settings: purging on time (a background thread, so an idle agent purges
/// too) and the shorter decay, for arenas made later and the ones made already.
#[cfg(feature = "jemalloc")]
fn tune_allocator() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    let _ = b"arenas.dirty_decay_ms\0".name().write(DIRTY_DECAY_MS);
    let arenas = tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0);
    for i in 0..arenas {
        // An arena not made yet refuses; it takes the default above when it is made.
        let _ = format!("arena.{i}.dirty_decay_ms\0").as_bytes().name().write(DIRTY_DECAY_MS);
    }
}

fn main() -> ExitCode {
    #[cfg(feature = "jemalloc")]
    tune_allocator();
    let cli = Cli::parse();
    run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}

#[cfg(all(test, feature = "jemalloc"))]
mod tests {
    use tikv_jemalloc_ctl::{Access, AsName};

    #[test]
    fn the_arenas_decay_in_a_second() {
        super::tune_allocator();
        let made: isize = b"arena.0.dirty_decay_ms\0".name().read().expect("arena 0 exists");
        let later: isize = b"arenas.dirty_decay_ms\0".name().read().expect("readable");
        assert_eq!((made, later), (super::DIRTY_DECAY_MS, super::DIRTY_DECAY_MS));
        assert!(tikv_jemalloc_ctl::background_thread::read().expect("readable"));
    }
}
