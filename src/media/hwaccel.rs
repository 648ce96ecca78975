//! Hardware device contexts. Every `unsafe` block that touches libav's hardware API
//! lives here, behind a safe API; devices are released in `Drop`.

use std::ffi::{CStr, CString};
use std::ptr;

use ffmpeg_next::ffi;
use serde::Serialize;

/// The outcome of trying to create one kind of hardware device on this machine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceProbe {
    pub backend: String,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An open hardware device context, released on drop.
pub struct HwDevice {
    context: *mut ffi::AVBufferRef,
}

impl Drop for HwDevice {
    fn drop(&mut self) {
        // SAFETY: `context` came from a successful av_hwdevice_ctx_create and is
        // released exactly once; av_buffer_unref sets it to null.
        unsafe { ffi::av_buffer_unref(&mut self.context) };
    }
}

impl HwDevice {
    /// Creates a device of libav type `backend` (`cuda`, `vaapi`, ...), on `device`
    /// (a render node, a GPU index) or libav's default one.
    pub fn create(backend: &str, device: Option<&str>) -> Result<HwDevice, String> {
        super::init();
        let kind = device_type(backend).ok_or_else(|| {
            format!("{backend} is not a hardware device type of this libav build")
        })?;
        let device = device
            .map(CString::new)
            .transpose()
            .map_err(|_| "device name contains a NUL byte".to_owned())?;
        let mut context: *mut ffi::AVBufferRef = ptr::null_mut();
        // SAFETY: `context` is a valid out-pointer, `device` outlives the call (or is
        // null, meaning libav's default), and no options or flags are passed.
        let code = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut context,
                kind,
                device.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
                ptr::null_mut(),
                0,
            )
        };
        if code < 0 || context.is_null() {
            return Err(ffmpeg_next::Error::from(code).to_string());
        }
        Ok(HwDevice { context })
    }
}

/// The device types this libav build knows, by libav's names.
pub fn compiled_device_types() -> Vec<String> {
    let mut names = Vec::new();
    let mut kind = ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_NONE;
    loop {
        // SAFETY: av_hwdevice_iterate_types accepts any previous value, NONE to start,
        // and returns NONE after the last one.
        kind = unsafe { ffi::av_hwdevice_iterate_types(kind) };
        if kind == ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_NONE {
            return names;
        }
        // SAFETY: for a type returned by the iterator libav returns a static C string.
        let name = unsafe { ffi::av_hwdevice_get_type_name(kind) };
        if !name.is_null() {
            // SAFETY: non-null, NUL-terminated and static, checked above.
            names.push(
                unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

fn device_type(backend: &str) -> Option<ffi::AVHWDeviceType> {
    let name = CString::new(backend).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let kind = unsafe { ffi::av_hwdevice_find_type_by_name(name.as_ptr()) };
    (kind != ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_NONE).then_some(kind)
}

/// Whether any H.264 or HEVC decoder of this libav build decodes through devices of
/// type `backend` (a Vulkan or OpenCL device alone decodes nothing in libav 5.1).
pub fn decodes_with(backend: &str) -> bool {
    let Some(kind) = device_type(backend) else {
        return false;
    };
    [ffmpeg_next::codec::Id::H264, ffmpeg_next::codec::Id::HEVC]
        .into_iter()
        .filter_map(ffmpeg_next::decoder::find)
        .any(|codec| {
            (0..)
                .map_while(|index| {
                    // SAFETY: `codec` is a valid decoder from avcodec_find_decoder; libav
                    // returns null past the last configuration.
                    let config = unsafe { ffi::avcodec_get_hw_config(codec.as_ptr(), index) };
                    // SAFETY: non-null configurations point to static libav data.
                    (!config.is_null()).then(|| unsafe { (*config).device_type })
                })
                .any(|device| device == kind)
        })
        || ffmpeg_next::decoder::find_by_name(&format!("h264_{backend}")).is_some()
}

/// Tries each of `backends` (with the device that `device_for` names) and says which
/// can decode here and why the others cannot.
pub fn probe_devices(
    backends: &[&str],
    device_for: impl Fn(&str) -> Option<String>,
) -> Vec<DeviceProbe> {
    let compiled = compiled_device_types();
    backends
        .iter()
        .map(|&backend| {
            let result = if !compiled.iter().any(|c| c == backend) {
                Err("not compiled into this libav build".to_owned())
            } else if !decodes_with(backend) {
                Err("no H.264 or HEVC decoder of this libav build uses it".to_owned())
            } else {
                HwDevice::create(backend, device_for(backend).as_deref())
                    .map(drop)
                    .map_err(|e| format!("device context could not be created: {e}"))
            };
            DeviceProbe {
                backend: backend.to_owned(),
                available: result.is_ok(),
                reason: result.err(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_compiled_types() {
        let types = compiled_device_types();
        assert!(!types.is_empty());
        assert!(types.iter().all(|t| !t.is_empty()));
    }

    #[test]
    fn unknown_backend_is_explained() {
        let probes = probe_devices(&["rkmpp"], |_| None);
        assert!(!probes[0].available);
        assert!(probes[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not compiled"));
    }

    #[test]
    fn decoding_backends_are_told_apart() {
        assert!(!decodes_with("opencl"));
        assert!(!decodes_with("no-such-type"));
    }

    #[test]
    fn missing_device_fails_cleanly() {
        let err = HwDevice::create("vaapi", Some("/dev/dri/no-such-node")).err();
        assert!(err.is_some());
    }
}
