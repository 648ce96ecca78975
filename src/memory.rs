//! Giving freed heap memory back to the system.
//!
//! glibc keeps memory that was freed inside its per-thread arenas for reuse. A
//! daemon whose cameras reconnect for months frees decoders, frame pools and
//! packet buffers of every size on many threads, and the resident size then
//! creeps up although nothing leaks. Fewer arenas fragment less, and trimming now
//! and then releases the free pages.

use std::thread;
use std::time::Duration;

/// How often the background trim runs.
const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// Caps the allocator at one arena per core (glibc's default is eight per core),
/// unless `MALLOC_ARENA_MAX` is set. Call before starting threads.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc allocator parameter, under its locks.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = cores;
}

/// Returns the free pages of every allocator arena to the system. Cheap: it
/// walks the free lists and advises the kernel, it moves no live memory.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reads and updates glibc's own allocator state,
    // under its locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts a thread that calls [`release_free_memory`] every [`TRIM_INTERVAL`]
/// for as long as the process lives.
pub fn spawn_periodic_trim() -> std::io::Result<()> {
    thread::Builder::new()
        .name("memory-trim".into())
        .spawn(|| loop {
            thread::sleep(TRIM_INTERVAL);
            release_free_memory();
        })
        .map(drop)
}
