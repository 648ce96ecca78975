//! Hardware device contexts and the libav calls that decode through them. Every
//! `unsafe` block of the crate lives here, behind a safe API: devices are created once
//! per process and shared, released in `Drop`; a decoder context that uses one holds
//! its own reference, which libav releases with the context.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock};

use ffmpeg_next::format::Pixel;
use ffmpeg_next::{codec, ffi, frame, Codec, Dictionary};

use super::HwBackend;

pub const DEFAULT_VAAPI_DEVICE: &str = "/dev/dri/renderD128";
pub const DEFAULT_CUDA_DEVICE: &str = "0";

/// Which device each backend opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNames {
    /// A DRM render node; also the device QSV sits on.
    pub vaapi: String,
    /// A CUDA device index.
    pub cuda: String,
}

impl Default for DeviceNames {
    fn default() -> Self {
        DeviceNames {
            vaapi: DEFAULT_VAAPI_DEVICE.to_owned(),
            cuda: DEFAULT_CUDA_DEVICE.to_owned(),
        }
    }
}

impl DeviceNames {
    /// The device string and creation options libav gets for `backend`.
    fn for_backend(&self, backend: HwBackend) -> (Option<&str>, Vec<(&'static str, &str)>) {
        match backend {
            HwBackend::Vaapi => (Some(&self.vaapi), Vec::new()),
            HwBackend::Cuda => (Some(&self.cuda), Vec::new()),
            // On Linux a QSV session sits on a VAAPI device: the same render node.
            HwBackend::Qsv => (None, vec![("child_device", self.vaapi.as_str())]),
            _ => (None, Vec::new()),
        }
    }
}

/// An open hardware device context, released on drop.
pub struct HwDevice {
    context: *mut ffi::AVBufferRef,
    backend: HwBackend,
}

// SAFETY: the device context is created once and never changed afterwards; libav's
// buffer references are counted atomically, and the hardware APIs behind a device
// context (CUDA, VAAPI, QSV) may be used from several threads, which is how libav's
// own frame-threaded decoders use them.
unsafe impl Send for HwDevice {}
// SAFETY: as for `Send`: shared access only takes new references to the context.
unsafe impl Sync for HwDevice {}

impl Drop for HwDevice {
    fn drop(&mut self) {
        // SAFETY: `context` came from a successful av_hwdevice_ctx_create and is
        // released exactly once; av_buffer_unref sets it to null.
        unsafe { ffi::av_buffer_unref(&mut self.context) };
    }
}

impl std::fmt::Debug for HwDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HwDevice")
            .field("backend", &self.backend)
            .finish()
    }
}

impl HwDevice {
    /// Creates a device of libav type `backend` (`cuda`, `vaapi`, ...), on `device`
    /// (a render node, a GPU index) or libav's default one, with creation `options`.
    pub fn create(
        backend: HwBackend,
        device: Option<&str>,
        options: &[(&str, &str)],
    ) -> Result<HwDevice, String> {
        crate::media::init();
        let kind = device_type(backend).ok_or_else(|| {
            format!("{backend} is not a hardware device type of this libav build")
        })?;
        let device = device
            .map(CString::new)
            .transpose()
            .map_err(|_| "device name contains a NUL byte".to_owned())?;
        let options: Dictionary = options.iter().copied().collect();
        let mut context: *mut ffi::AVBufferRef = ptr::null_mut();
        // SAFETY: `context` is a valid out-pointer, `device` outlives the call (or is
        // null, meaning libav's default), and `options` is a valid (possibly empty)
        // dictionary that libav only reads.
        let code = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut context,
                kind,
                device.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
                options.as_mut_ptr(),
                0,
            )
        };
        if code < 0 || context.is_null() {
            return Err(ffmpeg_next::Error::from(code).to_string());
        }
        Ok(HwDevice { context, backend })
    }
}

/// Devices in use, one per backend and device name, shared by every camera.
fn device_cache() -> &'static Mutex<HashMap<String, Arc<HwDevice>>> {
    static DEVICES: OnceLock<Mutex<HashMap<String, Arc<HwDevice>>>> = OnceLock::new();
    DEVICES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process's device for `backend`, created on first use. Creation happens under
/// the cache's lock, so that cameras starting together make one device, not several.
pub fn shared_device(backend: HwBackend, names: &DeviceNames) -> Result<Arc<HwDevice>, String> {
    let (device, options) = names.for_backend(backend);
    let key = format!("{backend}|{}|{options:?}", device.unwrap_or_default());
    let mut cache = device_cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(device) = cache.get(&key) {
        return Ok(Arc::clone(device));
    }
    let node = device.or_else(|| {
        options
            .iter()
            .find(|(name, _)| *name == "child_device")
            .map(|(_, value)| *value)
    });
    let created = HwDevice::create(backend, device, &options).map_err(|e| match node {
        Some(path) if path.starts_with('/') && !Path::new(path).exists() => {
            format!("{path} does not exist ({e})")
        }
        Some(path) if path.starts_with('/') => format!("{path}: {e}"),
        Some(index) => format!("device {index}: {e}"),
        None => e,
    })?;
    let created = Arc::new(created);
    cache.insert(key, Arc::clone(&created));
    Ok(created)
}

/// Drops `device` from the cache after it failed, so that the next user creates a
/// fresh one (a GPU reset leaves the old context useless). Decoders still holding it
/// keep it until they are rebuilt.
pub fn forget_device(device: &Arc<HwDevice>) {
    device_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|_, cached| !Arc::ptr_eq(cached, device));
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

fn device_type(backend: HwBackend) -> Option<ffi::AVHWDeviceType> {
    let name = CString::new(backend.as_str()).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let kind = unsafe { ffi::av_hwdevice_find_type_by_name(name.as_ptr()) };
    (kind != ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_NONE).then_some(kind)
}

/// Whether `backend` is one of libav's hardware device types.
pub fn is_device_type(backend: HwBackend) -> bool {
    device_type(backend).is_some()
}

/// The hardware configurations `codec` declares, as (device type, pixel format).
fn hw_configs(codec: &Codec) -> Vec<(ffi::AVHWDeviceType, ffi::AVPixelFormat)> {
    (0..)
        .map_while(|index| {
            // SAFETY: `codec` wraps a valid AVCodec from libav's static tables; libav
            // returns null past the last configuration.
            let config = unsafe { ffi::avcodec_get_hw_config(codec.as_ptr(), index) };
            // SAFETY: non-null configurations point to static libav data.
            (!config.is_null()).then(|| unsafe { ((*config).device_type, (*config).pix_fmt) })
        })
        .collect()
}

/// The pixel formats `codec` decodes to through devices of type `backend`; empty
/// when it cannot use such a device.
pub fn hardware_formats(codec: &Codec, backend: HwBackend) -> Vec<Pixel> {
    let Some(kind) = device_type(backend) else {
        return Vec::new();
    };
    hw_configs(codec)
        .into_iter()
        .filter(|(device, _)| *device == kind)
        .map(|(_, format)| Pixel::from(format))
        .collect()
}

/// Whether any H.264 or HEVC decoder of this libav build decodes through devices of
/// type `backend` (a Vulkan or OpenCL device alone decodes nothing in libav 5.1).
pub fn decodes_with(backend: HwBackend) -> bool {
    let native = [codec::Id::H264, codec::Id::HEVC]
        .into_iter()
        .filter_map(ffmpeg_next::decoder::find)
        .any(|codec| !hardware_formats(&codec, backend).is_empty());
    let wrapper = ["h264", "hevc"].iter().any(|name| {
        ffmpeg_next::decoder::find_by_name(&format!("{name}_{}", wrapper_suffix(backend))).is_some()
    });
    native || wrapper
}

/// The suffix of libav's decoders that wrap a vendor's decoding API for `backend`
/// (`h264_cuvid`, `h264_qsv`, `h264_v4l2m2m`, ...).
pub fn wrapper_suffix(backend: HwBackend) -> &'static str {
    match backend {
        HwBackend::Cuda => "cuvid",
        other => other.as_str(),
    }
}

/// Makes `context` (not yet opened) decode through `device`: the context gets its own
/// reference to the device and a `get_format` callback that picks the device's
/// pixel format when the stream is known, and a software format when it is not
/// offered (libav then decodes in software, which the caller sees in the frames).
pub fn attach_device(context: &mut codec::Context, device: &HwDevice) -> Result<(), String> {
    // SAFETY: `device.context` is a live device reference; av_buffer_ref returns a new
    // reference or null.
    let reference = unsafe { ffi::av_buffer_ref(device.context) };
    if reference.is_null() {
        return Err("out of memory referencing the device".to_owned());
    }
    // SAFETY: `context` wraps a valid codec context that is not open yet, so libav reads
    // neither field concurrently; the context now owns `reference` and
    // avcodec_free_context releases it (any earlier reference is released here).
    unsafe {
        let raw = context.as_mut_ptr();
        ffi::av_buffer_unref(&mut (*raw).hw_device_ctx);
        (*raw).hw_device_ctx = reference;
        (*raw).get_format = Some(pick_format);
    }
    Ok(())
}

/// libav's `get_format` callback for decoders given a device by [`attach_device`].
extern "C" fn pick_format(
    context: *mut ffi::AVCodecContext,
    offered: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    let mut formats = Vec::new();
    if !offered.is_null() {
        for index in 0.. {
            // SAFETY: libav passes a list terminated by AV_PIX_FMT_NONE; we stop there.
            let format = unsafe { *offered.add(index) };
            if format == ffi::AVPixelFormat::AV_PIX_FMT_NONE {
                break;
            }
            formats.push(format);
        }
    }
    // SAFETY: libav calls get_format with its live codec context, whose codec is set
    // and whose hw_device_ctx (when non-null) is a device reference whose data is an
    // AVHWDeviceContext.
    let wanted = unsafe {
        let device = (*context).hw_device_ctx;
        let codec = (*context).codec;
        if device.is_null() || codec.is_null() {
            Vec::new()
        } else {
            let kind = (*((*device).data as *const ffi::AVHWDeviceContext)).type_;
            hw_configs(&Codec::wrap(codec))
                .into_iter()
                .filter(|(device, _)| *device == kind)
                .map(|(_, format)| format)
                .collect()
        }
    };
    choose_format(&formats, &wanted)
}

/// The negotiation itself: the first offered format the device decodes to, else the
/// first offered software format, else none.
fn choose_format(
    offered: &[ffi::AVPixelFormat],
    wanted: &[ffi::AVPixelFormat],
) -> ffi::AVPixelFormat {
    offered
        .iter()
        .find(|format| wanted.contains(format))
        .or_else(|| offered.iter().find(|format| !is_hardware_format(**format)))
        .copied()
        .unwrap_or(ffi::AVPixelFormat::AV_PIX_FMT_NONE)
}

fn is_hardware_format(format: ffi::AVPixelFormat) -> bool {
    // SAFETY: av_pix_fmt_desc_get accepts any value and returns null or a static
    // descriptor.
    let descriptor = unsafe { ffi::av_pix_fmt_desc_get(format) };
    // SAFETY: non-null descriptors point to static libav data.
    !descriptor.is_null()
        && unsafe { (*descriptor).flags } & ffi::AV_PIX_FMT_FLAG_HWACCEL as u64 != 0
}

/// Whether `frame` lives in device memory (it belongs to a hardware frame pool).
pub fn is_hardware_frame(frame: &frame::Video) -> bool {
    // SAFETY: the wrapper holds a valid AVFrame; reading one pointer field.
    unsafe { !(*frame.as_ptr()).hw_frames_ctx.is_null() }
}

/// Copies a hardware frame into system memory (NV12 for 8-bit, P010 for 10-bit
/// streams, the pool's own software format) with its timestamps and flags, then
/// releases the hardware frame at once, also on failure, so that the device's surface
/// pool is never held by frames waiting for conversion.
pub fn transfer_frame(
    hardware: &mut frame::Video,
    out: &mut frame::Video,
) -> Result<(), ffmpeg_next::Error> {
    // libav dereferences the source's frame pool without checking it.
    if !is_hardware_frame(hardware) {
        return Err(ffmpeg_next::Error::InvalidData);
    }
    // SAFETY: both wrappers hold valid, distinct AVFrames. `out` is unreferenced
    // first, so av_hwframe_transfer_data allocates it in the pool's software format;
    // av_frame_unref leaves `hardware` blank and returns its surface to the pool.
    let code = unsafe {
        ffi::av_frame_unref(out.as_mut_ptr());
        let mut code = ffi::av_hwframe_transfer_data(out.as_mut_ptr(), hardware.as_ptr(), 0);
        if code >= 0 {
            code = ffi::av_frame_copy_props(out.as_mut_ptr(), hardware.as_ptr());
        }
        ffi::av_frame_unref(hardware.as_mut_ptr());
        code
    };
    if code < 0 {
        return Err(ffmpeg_next::Error::from(code));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffi::AVPixelFormat as F;

    #[test]
    fn lists_compiled_types() {
        let types = compiled_device_types();
        assert!(!types.is_empty());
        assert!(types.iter().all(|t| !t.is_empty()));
    }

    #[test]
    fn decoding_backends_are_told_apart() {
        assert!(!decodes_with(HwBackend::OpenCl));
        assert!(!decodes_with(HwBackend::Amf));
        assert!(decodes_with(HwBackend::Vaapi));
        assert!(decodes_with(HwBackend::Cuda));
        assert!(decodes_with(HwBackend::Qsv));
    }

    #[test]
    fn missing_device_fails_cleanly() {
        let err = HwDevice::create(HwBackend::Vaapi, Some("/dev/dri/no-such-node"), &[]).err();
        assert!(err.is_some());
        let err = HwDevice::create(HwBackend::Rkmpp, None, &[]).unwrap_err();
        assert!(err.contains("not a hardware device type"), "{err}");
    }

    #[test]
    fn failed_devices_are_not_cached() {
        let names = DeviceNames {
            vaapi: "/dev/dri/no-such-node".into(),
            ..DeviceNames::default()
        };
        let err = shared_device(HwBackend::Vaapi, &names).unwrap_err();
        assert!(
            err.starts_with("/dev/dri/no-such-node does not exist"),
            "{err}"
        );
        assert!(shared_device(HwBackend::Qsv, &names).is_err());
        assert!(shared_device(HwBackend::Vaapi, &names).is_err());
    }

    #[test]
    fn h264_declares_its_device_formats() {
        let h264 = ffmpeg_next::decoder::find(codec::Id::H264).unwrap();
        assert!(hardware_formats(&h264, HwBackend::Vaapi).contains(&Pixel::VAAPI));
        assert!(hardware_formats(&h264, HwBackend::Cuda).contains(&Pixel::CUDA));
        assert!(hardware_formats(&h264, HwBackend::OpenCl).is_empty());
        let qsv = ffmpeg_next::decoder::find_by_name("h264_qsv").unwrap();
        assert!(hardware_formats(&qsv, HwBackend::Qsv).contains(&Pixel::QSV));
    }

    #[test]
    fn negotiation_prefers_the_device_format() {
        let offered = [
            F::AV_PIX_FMT_VAAPI,
            F::AV_PIX_FMT_CUDA,
            F::AV_PIX_FMT_YUV420P,
        ];
        assert_eq!(
            choose_format(&offered, &[F::AV_PIX_FMT_CUDA]),
            F::AV_PIX_FMT_CUDA
        );
        assert_eq!(
            choose_format(&offered, &[F::AV_PIX_FMT_VAAPI]),
            F::AV_PIX_FMT_VAAPI
        );
    }

    #[test]
    fn negotiation_falls_back_to_the_first_software_format() {
        let offered = [
            F::AV_PIX_FMT_VAAPI,
            F::AV_PIX_FMT_NV12,
            F::AV_PIX_FMT_YUV420P,
        ];
        assert_eq!(
            choose_format(&offered, &[F::AV_PIX_FMT_CUDA]),
            F::AV_PIX_FMT_NV12
        );
        assert_eq!(choose_format(&offered, &[]), F::AV_PIX_FMT_NV12);
        assert_eq!(
            choose_format(&[F::AV_PIX_FMT_QSV], &[F::AV_PIX_FMT_CUDA]),
            F::AV_PIX_FMT_NONE
        );
        assert_eq!(choose_format(&[], &[]), F::AV_PIX_FMT_NONE);
    }

    #[test]
    fn software_frames_are_not_hardware_frames() {
        let frame = frame::Video::new(Pixel::NV12, 16, 16);
        assert!(!is_hardware_frame(&frame));
        let mut hardware = frame::Video::empty();
        let mut out = frame::Video::new(Pixel::NV12, 16, 16);
        assert!(transfer_frame(&mut hardware, &mut out).is_err());
    }
}
