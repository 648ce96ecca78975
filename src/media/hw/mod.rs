//! Hardware decoding in one place: the devices (the crate's only `unsafe`), the decoder
//! that uses them and falls back to software, the capability probe, and the words a
//! caller may choose from.

mod choice;
mod decoder;
mod device;
mod probe;

pub use choice::{HwBackend, HwChoice, KNOWN_BACKENDS};
pub(super) use decoder::{Decoder, HwFailure, HwState};
pub use decoder::{HwRequest, DEFAULT_HW_RETRY};
pub use device::{compiled_device_types, DeviceNames, DEFAULT_CUDA_DEVICE, DEFAULT_VAAPI_DEVICE};
#[cfg(test)]
pub(super) use probe::write_h264_clip;
pub use probe::{probe_backends, DeviceProbe};
