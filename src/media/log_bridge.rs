//! libav's log callback, the unsafe half of `libav_log.rs`: libav calls it from any
//! thread, the camera's and its own decoder threads, with a printf format and its
//! arguments. It decides first (level, filter, rate limit) and formats only a message
//! that will be written, with libav's own `av_log_format_line2`, so no Rust variadics
//! are needed. It never unwinds into C.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ffmpeg_next::codec;
use ffmpeg_next::ffi;

use super::libav_log::{self, ContextTag};
use crate::logging::CameraLabel;

/// libav's `va_list` as the bindings spell it in signatures: a pointer on x86-64 Unix
/// (only this one is built and tested here), the `va_list` type itself on aarch64.
#[cfg(all(target_arch = "x86_64", target_family = "unix"))]
type VaList = *mut ffi::__va_list_tag;
#[cfg(not(all(target_arch = "x86_64", target_family = "unix")))]
type VaList = ffi::va_list;

/// Longer messages are cut: libav's own limit for one line is 1024 bytes as well.
const LINE_BYTES: usize = 1024;

/// Routes libav's messages to our logger from now on, at the level our logger starts
/// with.
pub fn install() {
    let level = libav_log::av_level_for(log::max_level());
    // SAFETY: both store one value; this runs once, in `media::init`, before this
    // process uses libav in any other way, so no libav thread reads them meanwhile.
    // `callback` has the signature libav calls and may run on any thread at any time.
    unsafe {
        ffi::av_log_set_level(level);
        ffi::av_log_set_callback(Some(callback));
    }
}

/// Marks a codec context (before it is opened, so libav's decoder threads copy it) as
/// the current thread's camera's. Keep the tag until the context is gone.
pub fn tag(context: &mut codec::context::Context) -> Option<ContextTag> {
    let tag = ContextTag::for_current_camera()?;
    // SAFETY: `context` owns a valid codec context that is not open yet, so libav reads
    // no field concurrently; nothing else in this program uses `opaque`, and libav only
    // copies it (to its decoder threads' contexts).
    unsafe {
        (*context.as_mut_ptr()).opaque = tag.value() as *mut c_void;
    }
    Some(tag)
}

// SAFETY: (for the signature) libav calls this with the context that logs (or null),
// the level, a format and its va_list, from any thread; everything it touches is
// thread-safe (the logger, mutex-guarded maps, a stack buffer).
unsafe extern "C" fn callback(
    context: *mut c_void,
    level: c_int,
    format: *const c_char,
    arguments: VaList,
) {
    // The cheap refusal first (a comparison, which cannot panic): libav may log for
    // every packet.
    let Some(level_wanted) = libav_log::wanted_level(level) else {
        return;
    };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libav passes null or a struct whose first field is its AVClass; the
        // name it gives lives while the context does, at least during this call.
        let (name, tagged) = unsafe { describe(context) };
        let component = (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) }.to_bytes());
        let Some(pending) = libav_log::admit(level_wanted, component, tagged) else {
            return;
        };
        let mut line = [0 as c_char; LINE_BYTES];
        let mut print_prefix: c_int = 0;
        // SAFETY: format and arguments are the ones libav gave us, used once; the
        // buffer's size is passed; libav terminates the line (cutting it if needed).
        let written = unsafe {
            ffi::av_log_format_line2(
                context,
                level,
                format,
                arguments,
                line.as_mut_ptr(),
                LINE_BYTES as c_int,
                &mut print_prefix,
            )
        };
        if written < 0 {
            return;
        }
        // SAFETY: av_log_format_line2 wrote a NUL-terminated string into `line`.
        let text = unsafe { CStr::from_ptr(line.as_ptr()) };
        pending.write(text.to_bytes());
    }));
}

/// The logging context's component name (its AVClass item name: `h264`, `rtsp`, ...;
/// null when it has none) and, for a codec context marked by [`tag`], its camera.
// SAFETY: (for callers) `context` must be null or point to a live struct that starts
// with a `*const AVClass`, as every context libav logs with does.
unsafe fn describe(context: *mut c_void) -> (*const c_char, Option<Arc<CameraLabel>>) {
    if context.is_null() {
        return (std::ptr::null(), None);
    }
    // SAFETY: per this function's contract, the first field is the class pointer,
    // which is null or points to a static AVClass.
    let class = unsafe { *(context as *const *const ffi::AVClass) };
    if class.is_null() {
        return (std::ptr::null(), None);
    }
    // SAFETY: `class` is a valid AVClass; item_name takes the context it describes and
    // returns a string that lives at least as long as the context.
    let name = unsafe {
        (*class)
            .item_name
            .map_or(std::ptr::null(), |name| name(context))
    };
    // SAFETY: a context whose class is the codec context's class is an AVCodecContext,
    // alive while libav logs with it.
    let tagged = unsafe {
        if class == ffi::avcodec_get_class() {
            let opaque = (*(context as *const ffi::AVCodecContext)).opaque;
            libav_log::camera_of_tag(opaque as usize)
        } else {
            None
        }
    };
    (name, tagged)
}
