//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps freed heap memory for reuse, and a burst of short-lived
//! allocations (loading 100,000 products at start-up, a storm of gzip'd pushes) leaves the
//! process's RSS at its high-water mark long after the data is gone. `malloc_trim(0)`
//! returns every whole free page, in every arena, to the kernel. Cheap enough to call after
//! such a burst; not on any per-request path.

/// Returns free heap pages to the OS (glibc only; elsewhere a no-op).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no
    // preconditions and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`release_free_memory`] every `every` until `cancel` fires, so the RSS a burst
/// left behind goes back to the OS once the burst is over.
pub async fn trim_every(every: std::time::Duration, cancel: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        // Off the async threads: trimming walks the allocator's arenas.
        let _ = tokio::task::spawn_blocking(release_free_memory).await;
    }
}

/// How often the services trim: often enough that memory returns soon after a storm,
/// rare enough to cost nothing (one trim of a quiet heap is microseconds).
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
