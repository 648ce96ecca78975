//! Turning pictures into JPEG files that readers can trust, and keeping their folders
//! from filling the disk.

pub mod disk;
pub mod disk_guard;
pub mod encode_pool;
pub mod exif;
pub mod jpeg;
pub mod retention;
pub mod store;
