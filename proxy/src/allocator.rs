//! What the proxy asks of its allocator (mimalloc, the global allocator of `main.rs`) beyond
//! allocating: the one place with `unsafe` code, a call into the allocator's C API.
#![allow(unsafe_code)]

/// Hands the memory freed on this thread, and freed by other threads into its heap, back to
/// the system now. mimalloc returns a free page only when its thread next allocates (after
/// `purge_delay`); the reload threads allocate a whole table and then sleep until the next one,
/// so a replaced 10,000-route table stayed resident, and the RSS doubled after a few reloads
/// (bench/RESULTS.md). Purging on every free instead (`MIMALLOC_PURGE_DELAY=0`) cost requests
/// 7-10 % more CPU. Called after a table is installed, never on the request path.
pub fn release_freed() {
    // SAFETY: `mi_collect` takes no pointer and has no precondition; it may be called at any
    // time from any thread, and with another global allocator it tidies an unused heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
