//! Turning pictures into JPEG files that readers can trust.

pub mod disk;
pub mod encode_pool;
pub mod jpeg;
pub mod store;
