//! Turning pictures into JPEG files that readers can trust.

pub mod jpeg;
pub mod store;
