//! What Gatehouse's programs ask of their allocator (mimalloc, the global allocator of the proxy
//! and the operator) beyond allocating: the one place with `unsafe` code, a call into the
//! allocator's C API.
#![allow(unsafe_code)]

/// The environment variable of mimalloc's `arena_eager_commit` option, which mimalloc reads
/// when the process starts, before `main`.
pub const ARENA_EAGER_COMMIT_ENV: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// Makes the program start again under `MIMALLOC_ARENA_EAGER_COMMIT=0`, unless that is set
/// already (to anything: the user's choice stands). mimalloc's arenas (1 GiB reservations) are
/// then committed as they are used rather than at once, and a page the allocator purges is
/// decommitted, which the kernel takes off the RSS at once; a purged page of an eagerly
/// committed arena stays resident until memory runs short. Requests cost the same; a proxy
/// serving a small table holds half the memory, a 10,000-route one (and the operator compiling
/// it) less across reloads (bench/RESULTS.md). The option is read before `main` runs, so setting
/// it means starting again: call this first in `main`. It replaces the process with the same
/// program and arguments (same pid), and returns only when that fails — saying so on stderr,
/// as `program` — and the program then goes on as it is.
pub fn restart_with_lazy_arenas(program: &str) {
    if let Some(mut again) = with_lazy_arenas() {
        let error = std::os::unix::process::CommandExt::exec(&mut again);
        eprintln!("{program}: could not restart with lazily committed arenas: {error}");
    }
}

/// The program again, with its arguments, under `MIMALLOC_ARENA_EAGER_COMMIT=0`; `None` when
/// that is set already.
fn with_lazy_arenas() -> Option<std::process::Command> {
    if std::env::var_os(ARENA_EAGER_COMMIT_ENV).is_some() {
        return None;
    }
    let mut args = std::env::args_os();
    let program = args.next()?;
    let mut command = std::process::Command::new(std::env::current_exe().ok()?);
    std::os::unix::process::CommandExt::arg0(&mut command, program);
    command.args(args).env(ARENA_EAGER_COMMIT_ENV, "0");
    Some(command)
}

/// Hands the memory freed on this thread, and freed by other threads into its heap, back to
/// the system now. mimalloc returns a free page only when its thread next allocates (after
/// `purge_delay`); the reload threads allocate a whole table and then sleep until the next one,
/// so a replaced 10,000-route table stayed resident, and the RSS doubled after a few reloads
/// (bench/RESULTS.md). Purging on every free instead (`MIMALLOC_PURGE_DELAY=0`) cost requests
/// 7-10 % more CPU. The proxy calls it after a table is installed, never on the request path.
pub fn release_freed() {
    // SAFETY: `mi_collect` takes no pointer and has no precondition; it may be called at any
    // time from any thread, and with another global allocator it tidies an unused heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
