//! The `sundial` binary: parse arguments, run one subcommand, map failure to
//! an exit status (2 bad arguments, 1 anything else) and a one-line error.

use std::process::ExitCode;

/// mimalloc: the ingest loop allocates and frees many small strings and rows
/// (figures: docs/performance.md, "Measured choices in the code").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

mod bench;
use sundial::ErrorKind;
use sundial::{Cli, Command};

/// Transparent huge pages off for this process. mimalloc madvises its arenas
/// for them, so every page it touches again after returning it to the OS
/// made the kernel zero 2 MiB (figures: docs/performance.md, "Measured choices in the code").
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (its v3
/// default, 1 000 ms, is checked before it is changed, and by a test).
const MI_PURGE_DELAY: libc::c_int = 15;

extern "C" {
    fn mi_option_get(option: libc::c_int) -> libc::c_long;
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
}

/// mimalloc keeps the memory freed instead of returning it to the OS a
/// second later. For replays, rebuilds and benches, batch jobs reusing
/// the same amounts batch after batch, returning it cost a page fault per
/// 4 KiB at the next batch (figures: docs/performance.md, "Measured choices in the code"). Not for the daemon and the
/// server, which run for days and should shrink back after a burst; a
/// `MIMALLOC_PURGE_DELAY` the user set is left alone.
fn keep_freed_memory() {
    // SAFETY: plain calls into the allocator's C API with an option number
    // and a value; setting this option is allowed at any time.
    unsafe {
        if mi_option_get(MI_PURGE_DELAY) == 1000 {
            mi_option_set(MI_PURGE_DELAY, -1);
        }
    }
}

/// The async runtime for `command`. Replays (and the rebuild bench, which
/// times them) run their tasks — reading the log ahead, SlateDB's writes
/// and flushes — on one worker thread instead of one per core: their own
/// threads (preparing the next batch, applying the views in two groups)
/// already fill both cores, and fewer threads compete for them
/// (figures: docs/performance.md, "Measured choices in the code"). A `TOKIO_WORKER_THREADS` the user set is obeyed.
fn runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    let replays =
        matches!(command, Command::Replay(_)) || matches!(command, Command::Bench(a) if a.rebuild);
    if replays && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder.build()
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Replay(_) | Command::Bench(_)) {
        keep_freed_memory();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "sundial=info".into()),
        )
        .init();
    let rt = match runtime(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Project(a) => sundial::commands::project(a).await,
            Command::Replay(a) => sundial::commands::replay(a).await,
            Command::Serve(a) => sundial::commands::serve(a).await,
            Command::Simulate(a) => sundial::commands::simulate(a).await,
            Command::Demo(a) => sundial::demo::demo(a).await,
            Command::Bench(a) if a.rebuild => {
                crate::bench::rebuild::run(a.events, &a.dir, a.as_of_only).await
            }
            Command::Bench(a) => match (&a.brokers, a.history_jobs) {
                (Some(b), _) => crate::bench::kafka::run(b, a.events, &a.dir, a.latency_rate).await,
                (None, Some(jobs)) => {
                    let b = crate::bench::history::HistoryBench {
                        big_events: a.events,
                        small_events: 10_000,
                        jobs,
                        reuse: a.reuse,
                    };
                    crate::bench::history::run(b, &a.dir).await
                }
                (None, None) => crate::bench::ingest::run(a.events, &a.dir).await,
            },
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.kind() == ErrorKind::Invalid { 2 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_where_mimalloc_v3_puts_it() {
        // An upgrade moving it would make `keep_freed_memory` change
        // another option (or, with the check there, nothing).
        // SAFETY: reads an option of the allocator linked in.
        let delay = unsafe { super::mi_option_get(super::MI_PURGE_DELAY) };
        assert_eq!(delay, 1000);
    }
}
