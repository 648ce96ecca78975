//! Giving freed heap memory back to the system.
//!
//! glibc keeps memory that was freed inside its per-thread arenas for reuse. A
//! daemon whose cameras reconnect for months frees decoders, frame pools and
//! packet buffers of every size on many threads, and the resident size then
//! creeps up although nothing leaks. Trimming now and then releases those pages.

use std::thread;
use std::time::Duration;

/// How often the background trim runs.
const TRIM_INTERVAL: Duration = Duration::from_secs(30);

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
