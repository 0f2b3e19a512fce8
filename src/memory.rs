//! How the allocator hands memory back. A flush of a million names makes a
//! few blocks of tens of MiB (the sort order, the payload) and frees them.
//! glibc raises its mmap threshold to the size of each such block it frees,
//! so the next ones come from the heap, where freed memory stays resident:
//! one flush of a million counters peaked at 99 MiB RSS that way, 71-79 MiB
//! with the thresholds fixed (bench/notes.md).

/// Blocks from this size up are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;
/// Free memory above this at the top of the heap is given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 20;

/// Fixes glibc's thresholds (no-op elsewhere). Call once, before threads.
pub fn give_back_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; these two take any
    // non-negative int, and a refusal (return 0) leaves the defaults.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
