//! Hardware decoding in one place: the devices (the crate's only `unsafe`), the decoder
//! that uses them and falls back to software, the capability probe, the `auto` policy,
//! and the words a caller may choose from.

mod choice;
mod decoder;
mod device;
mod policy;
mod probe;

pub use choice::{HwBackend, HwChoice, KNOWN_BACKENDS};
pub use decoder::HwStatus;
pub(super) use decoder::{Decoder, HwFailure, HwState};
pub use device::{DeviceNames, DEFAULT_CUDA_DEVICE, DEFAULT_VAAPI_DEVICE};
pub use policy::{HwPolicy, HwRequest, DEFAULT_HW_ACCEL_OPTIONS, DEFAULT_HW_RETRY};
#[cfg(test)]
pub(super) use probe::write_h264_clip;
pub use probe::{DeviceProbe, HwReport};
