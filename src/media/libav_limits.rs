//! The limits libav is held to where ffmpeg-next has no safe call for them, the unsafe
//! half of `frame_limit.rs`: options for the decoders that libav opens while it reads
//! an input's stream information, the frame size a stream's parameters state, and the
//! largest single allocation libav may make.

use std::ffi::CString;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ffmpeg_next::util::error::{EINVAL, ENOMEM};
use ffmpeg_next::util::interrupt;
use ffmpeg_next::{codec, ffi, format, Dictionary, Error};

/// The cap set by [`cap_allocations`], for messages; 0 until set.
static ALLOCATION_CAP: AtomicUsize = AtomicUsize::new(0);

/// Opens `location` with `options` for the demuxer and protocols, then reads its
/// stream information, `decoder_options` given to the decoder libav opens for each
/// stream found by then. As `format::input_with_interrupt_and_dictionary`, except for
/// those options (it gives none, and libav decodes frames to learn a stream's
/// parameters), and a location holding a NUL byte is an error, not a panic.
pub fn open_input<F>(
    location: &str,
    interrupt: F,
    options: Dictionary,
    decoder_options: &Dictionary,
) -> Result<format::context::Input, Error>
where
    F: FnMut() -> bool + Send + 'static,
{
    let location = CString::new(location).map_err(|_| Error::Other { errno: EINVAL })?;
    let interrupt = interrupt::new(Box::new(interrupt));
    // SAFETY: the context is allocated here and handed to libav's open, which frees it
    // on failure; on success it is closed here on failure, or owned by the returned
    // `Input` together with the interrupt's guard, which keeps the callback's closure
    // alive as long as the context. The dictionaries are libav's to read and change
    // during the calls and freed right after them; the per-stream array has one entry
    // for each stream the context has when `avformat_find_stream_info` is called.
    unsafe {
        let mut context = ffi::avformat_alloc_context();
        if context.is_null() {
            return Err(Error::Other { errno: ENOMEM });
        }
        (*context).interrupt_callback = interrupt.interrupt;
        let mut format_options = options.disown();
        let opened = ffi::avformat_open_input(
            &mut context,
            location.as_ptr(),
            ptr::null(),
            &mut format_options,
        );
        drop(Dictionary::own(format_options));
        if opened < 0 {
            return Err(Error::from(opened));
        }
        let streams = (*context).nb_streams as usize;
        let mut per_stream: Vec<*mut ffi::AVDictionary> = (0..streams)
            .map(|_| decoder_options.clone().disown())
            .collect();
        let array = if per_stream.is_empty() {
            ptr::null_mut()
        } else {
            per_stream.as_mut_ptr()
        };
        let read = ffi::avformat_find_stream_info(context, array);
        for dictionary in &mut per_stream {
            ffi::av_dict_free(dictionary);
        }
        if read < 0 {
            ffi::avformat_close_input(&mut context);
            return Err(Error::from(read));
        }
        Ok(format::context::Input::wrap_with_interrupt(
            context,
            interrupt.guard,
        ))
    }
}

/// The frame size that `parameters` state (0 where unknown).
pub fn stated_size(parameters: &codec::Parameters) -> (u32, u32) {
    // SAFETY: `parameters` owns or borrows valid codec parameters for this call; two
    // plain integer fields are read.
    let (width, height) = unsafe {
        let raw = parameters.as_ptr();
        ((*raw).width, (*raw).height)
    };
    (
        u32::try_from(width).unwrap_or(0),
        u32::try_from(height).unwrap_or(0),
    )
}

/// No single libav allocation may exceed `bytes` from now on (libav's own default is
/// `INT_MAX`). Call it before the process uses libav otherwise.
pub fn cap_allocations(bytes: usize) {
    // SAFETY: it stores one value that libav's allocator reads; it is called once, from
    // `media::init`, before any other libav call of this process.
    unsafe { ffi::av_max_alloc(bytes) };
    ALLOCATION_CAP.store(bytes, Ordering::Relaxed);
}

/// The cap set by [`cap_allocations`], if any.
pub fn allocation_cap() -> Option<usize> {
    Some(ALLOCATION_CAP.load(Ordering::Relaxed)).filter(|b| *b > 0)
}
