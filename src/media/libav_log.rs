//! libav's own messages in our log, the safe half: which log level and target a libav
//! message gets, which camera it belongs to, the per-camera rate limit, and credential
//! redaction. `log_bridge.rs` receives the messages from libav and asks this module at
//! each step, so that a message that will not be written is never formatted.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter};

use crate::logging::{current_camera, CameraLabel, CAMERA_KEY};
use crate::source::{redact_in, redact_words};

/// Lines a camera's libav messages may use at once: a failing open or one damaged
/// keyframe says what went wrong in a few to a few dozen lines, and the first ones are
/// the informative ones.
pub const BURST_LINES: f64 = 20.0;
/// After a burst, one more line per interval: a corrupt stream makes the decoder
/// complain about every packet, hundreds of times a second, and one line a second
/// shows it goes on without filling the disk.
pub const REFILL_INTERVAL: Duration = Duration::from_secs(1);
/// How often at most a source's "suppressed N libav messages" line is written while
/// its messages are being dropped: often enough to see the flood, rarely enough to
/// stay small.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);
/// Sources (cameras, plus "no camera") whose rate limit is remembered; beyond this,
/// the ones quiet for a whole summary interval are forgotten, as if never seen.
const TRACKED_SOURCES: usize = 256;
/// The target of libav's messages; each is `libav::<component>`.
pub const TARGET: &str = "libav";

// libav's levels (libavutil/log.h).
const AV_LOG_QUIET: i32 = -8;
const AV_LOG_ERROR: i32 = 16;
const AV_LOG_WARNING: i32 = 24;
const AV_LOG_INFO: i32 = 32;
const AV_LOG_DEBUG: i32 = 48;
const AV_LOG_TRACE: i32 = 56;

/// The log level of a libav level: panic, fatal and error → error; warning → warn;
/// info → info; verbose and debug → debug; trace → trace. Negative levels (quiet)
/// are never written.
pub fn log_level(av_level: i32) -> Option<Level> {
    if av_level < 0 {
        return None;
    }
    // The bits above the level carry a colour for libav's own terminal output.
    Some(match av_level & 0xff {
        l if l <= AV_LOG_ERROR => Level::Error,
        l if l <= AV_LOG_WARNING => Level::Warn,
        l if l <= AV_LOG_INFO => Level::Info,
        l if l <= AV_LOG_DEBUG => Level::Debug,
        _ => Level::Trace,
    })
}

/// libav's own level for our most verbose enabled level: libav skips some costly work
/// (its debug output) below it.
pub fn av_level_for(filter: LevelFilter) -> i32 {
    match filter {
        LevelFilter::Off => AV_LOG_QUIET,
        LevelFilter::Error => AV_LOG_ERROR,
        LevelFilter::Warn => AV_LOG_WARNING,
        LevelFilter::Info => AV_LOG_INFO,
        LevelFilter::Debug => AV_LOG_DEBUG,
        LevelFilter::Trace => AV_LOG_TRACE,
    }
}

/// The level of a libav message if our logger could write it at all: the check on
/// libav's hot path, one comparison with the global maximum.
pub fn wanted_level(av_level: i32) -> Option<Level> {
    log_level(av_level).filter(|level| *level <= log::max_level())
}

/// `libav::<component>` for libav's name of the context that logged (`h264`, `rtsp`,
/// `tcp`), cut to a name `RUST_LOG` can select: a demuxer's list of names
/// (`mov,mp4,m4a`) gives its first, odd characters become `_`.
pub fn target_for(component: Option<&[u8]>) -> String {
    let first = component
        .unwrap_or_default()
        .split(|b| *b == b',')
        .next()
        .unwrap_or_default();
    if first.is_empty() {
        return TARGET.to_owned();
    }
    let name: String = first
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect();
    format!("{TARGET}::{name}")
}

/// What the rate limit says about one message.
#[derive(Debug, PartialEq)]
pub struct Admission {
    /// Write the message.
    pub pass: bool,
    /// First write that this many messages were suppressed, at this level (the most
    /// severe of them).
    pub summary: Option<(u64, Level)>,
}

/// A token bucket per source: [`BURST_LINES`] at once, refilled by one per
/// [`REFILL_INTERVAL`]; the suppressed messages are counted and summed up at most once
/// per [`SUMMARY_INTERVAL`]. Time comes from the caller, so it is tested without sleeping.
#[derive(Debug)]
pub struct RateLimiter {
    tokens: f64,
    refilled_at: Instant,
    suppressed: u64,
    worst_suppressed: Level,
    summarised_at: Instant,
}

impl RateLimiter {
    pub fn new(now: Instant) -> RateLimiter {
        RateLimiter {
            tokens: BURST_LINES,
            refilled_at: now,
            suppressed: 0,
            worst_suppressed: Level::Trace,
            summarised_at: now,
        }
    }

    pub fn admit(&mut self, level: Level, now: Instant) -> Admission {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / REFILL_INTERVAL.as_secs_f64()).min(BURST_LINES);
        self.refilled_at = now;
        let summary = (self.suppressed > 0
            && now.saturating_duration_since(self.summarised_at) >= SUMMARY_INTERVAL)
            .then(|| {
                self.summarised_at = now;
                let summary = (self.suppressed, self.worst_suppressed);
                self.suppressed = 0;
                self.worst_suppressed = Level::Trace;
                summary
            });
        let pass = self.tokens >= 1.0;
        if pass {
            self.tokens -= 1.0;
        } else {
            self.suppressed += 1;
            self.worst_suppressed = self.worst_suppressed.min(level);
        }
        Admission { pass, summary }
    }

    /// What is left to report when the source is done.
    pub fn finish(self) -> Option<(u64, Level)> {
        (self.suppressed > 0).then_some((self.suppressed, self.worst_suppressed))
    }

    /// Nothing suppressed is waiting to be reported and the bucket is full again.
    fn is_idle(&self, now: Instant) -> bool {
        self.suppressed == 0 && now.saturating_duration_since(self.refilled_at) >= SUMMARY_INTERVAL
    }
}

thread_local! {
    static DEBUG_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// While alive, libav's messages on this thread are at most debug: for work whose
/// failures are expected and reported otherwise (the hardware probe tries backends
/// this machine may not have, and its clip encoder talks at info level).
#[must_use = "the scope ends when dropped"]
pub struct DebugOnly {
    previous: bool,
}

impl DebugOnly {
    pub fn enter() -> DebugOnly {
        DebugOnly {
            previous: DEBUG_ONLY.try_with(|d| d.replace(true)).unwrap_or(false),
        }
    }
}

impl Drop for DebugOnly {
    fn drop(&mut self) {
        let _ = DEBUG_ONLY.try_with(|d| d.set(self.previous));
    }
}

/// One rate limiter per camera id, and one (under "") for messages of no camera.
static LIMITERS: Mutex<BTreeMap<String, RateLimiter>> = Mutex::new(BTreeMap::new());

/// A libav message that our logger and the rate limit let through, waiting for its
/// text.
pub struct Pending {
    level: Level,
    target: String,
    camera: Option<Arc<CameraLabel>>,
}

/// Decides whether a message of `level` from libav's `component` is written, before
/// its text exists; writes the suppression summary when one is due. `tagged` is the
/// camera libav's context was made for, when known; else the calling thread's.
pub fn admit(
    level: Level,
    component: Option<&[u8]>,
    tagged: Option<Arc<CameraLabel>>,
) -> Option<Pending> {
    let level = if DEBUG_ONLY.try_with(Cell::get).unwrap_or(false) {
        level.max(Level::Debug)
    } else {
        level
    };
    let target = target_for(component);
    let metadata = log::Metadata::builder()
        .level(level)
        .target(&target)
        .build();
    if !log::logger().enabled(&metadata) {
        return None;
    }
    let camera = tagged.or_else(current_camera);
    let id = camera.as_ref().map(|c| c.id.as_str());
    let now = Instant::now();
    let admission = {
        let mut limiters = LIMITERS.lock().unwrap_or_else(|e| e.into_inner());
        if limiters.len() >= TRACKED_SOURCES {
            limiters.retain(|_, limiter| !limiter.is_idle(now));
        }
        limiters
            .entry(id.unwrap_or_default().to_owned())
            .or_insert_with(|| RateLimiter::new(now))
            .admit(level, now)
    };
    if let Some((count, worst)) = admission.summary {
        write_summary(count, worst, id);
    }
    admission.pass.then_some(Pending {
        level,
        target,
        camera,
    })
}

/// A camera's session is over, its decoders gone: what its rate limit held back is
/// reported now, and the limit forgotten.
pub fn camera_finished(id: &str) {
    let limiter = LIMITERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
    if let Some((count, worst)) = limiter.and_then(RateLimiter::finish) {
        write_summary(count, worst, Some(id));
    }
}

fn write_summary(count: u64, worst: Level, camera: Option<&str>) {
    let message = format!(
        "suppressed {count} libav messages (more than {BURST_LINES} at once, then one per \
         {REFILL_INTERVAL:?})"
    );
    write(worst, TARGET, camera, &message);
}

impl Pending {
    /// Writes the message libav formatted (bytes in no promised encoding), without
    /// the camera's credentials.
    pub fn write(self, text: &[u8]) {
        if let Some(message) = message_text(text, self.camera.as_deref()) {
            write(
                self.level,
                &self.target,
                self.camera.as_ref().map(|c| c.id.as_str()),
                &message,
            );
        }
    }
}

/// The message in libav's bytes: UTF-8 (anything else becomes U+FFFD), without its
/// final newline and credentials; `None` when nothing is left.
pub fn message_text(bytes: &[u8], camera: Option<&CameraLabel>) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    (!text.is_empty()).then(|| redact(text, camera))
}

/// Removes the camera's own credentials from a libav message, and any others that
/// look like a URL's or a query string's.
pub fn redact(message: &str, camera: Option<&CameraLabel>) -> String {
    match camera {
        Some(camera) => redact_in(message, &camera.location),
        None => redact_words(message),
    }
}

fn write(level: Level, target: &str, camera: Option<&str>, message: &str) {
    let pair = camera.map(|id| [(CAMERA_KEY, id)]);
    let key_values: &[(&str, &str)] = pair.as_ref().map_or(&[], |p| p.as_slice());
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(target)
            .args(format_args!("{message}"))
            .key_values(&key_values)
            .build(),
    );
}

static NEXT_TAG: AtomicUsize = AtomicUsize::new(1);
/// Cameras by the tag their codec contexts carry (in `opaque`), so that libav's
/// decoder threads, which are not the camera's, are attributed too.
static TAGGED: Mutex<BTreeMap<usize, Arc<CameraLabel>>> = Mutex::new(BTreeMap::new());

/// A codec context's tag for the current thread's camera; the tag is forgotten when
/// this is dropped, after the context.
#[derive(Debug)]
pub struct ContextTag(usize);

impl ContextTag {
    /// A tag for the current thread's camera; `None` when it works for no camera.
    pub fn for_current_camera() -> Option<ContextTag> {
        let camera = current_camera()?;
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        TAGGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tag, camera);
        Some(ContextTag(tag))
    }

    pub fn value(&self) -> usize {
        self.0
    }
}

impl Drop for ContextTag {
    fn drop(&mut self) {
        TAGGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// The camera whose codec context carries `tag` (0: none).
pub fn camera_of_tag(tag: usize) -> Option<Arc<CameraLabel>> {
    if tag == 0 {
        return None;
    }
    TAGGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&tag)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::CameraScope;

    #[test]
    fn libav_levels_map_to_log_levels() {
        let cases = [
            (0, Some(Level::Error)),  // panic
            (8, Some(Level::Error)),  // fatal
            (16, Some(Level::Error)), // error
            (24, Some(Level::Warn)),  // warning
            (32, Some(Level::Info)),  // info
            (40, Some(Level::Debug)), // verbose
            (48, Some(Level::Debug)), // debug
            (56, Some(Level::Trace)), // trace
            (-8, None),               // quiet
            (24 | (3 << 8), Some(Level::Warn)),
        ];
        for (av_level, expected) in cases {
            assert_eq!(log_level(av_level), expected, "libav level {av_level}");
        }
        assert_eq!(av_level_for(LevelFilter::Warn), 24);
        assert_eq!(av_level_for(LevelFilter::Off), -8);
        for filter in LevelFilter::iter().skip(1) {
            let level = filter.to_level().unwrap();
            assert_eq!(log_level(av_level_for(filter)), Some(level));
        }
    }

    #[test]
    fn targets_name_the_component_as_rust_log_can_select_it() {
        assert_eq!(target_for(Some(b"h264")), "libav::h264");
        assert_eq!(target_for(Some(b"mov,mp4,m4a,3gp")), "libav::mov");
        assert_eq!(target_for(Some(b"SW Scaler")), "libav::SW_Scaler");
        assert_eq!(target_for(Some(b"")), "libav");
        assert_eq!(target_for(None), "libav");
    }

    fn passes(limiter: &mut RateLimiter, now: Instant, messages: usize) -> usize {
        (0..messages)
            .filter(|_| limiter.admit(Level::Warn, now).pass)
            .count()
    }

    #[test]
    fn a_burst_then_one_line_per_interval() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(start);
        assert_eq!(passes(&mut limiter, start, 100), BURST_LINES as usize);
        let later = start + REFILL_INTERVAL;
        assert_eq!(passes(&mut limiter, later, 100), 1);
        let half = later + REFILL_INTERVAL / 2;
        assert_eq!(passes(&mut limiter, half, 100), 0);
        let quiet = half + REFILL_INTERVAL * 60;
        assert_eq!(
            passes(&mut limiter, quiet, 100),
            BURST_LINES as usize,
            "a quiet minute refills the burst"
        );
    }

    #[test]
    fn suppressed_messages_are_summed_up_at_most_once_per_interval() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(start);
        passes(&mut limiter, start, BURST_LINES as usize);
        limiter.admit(Level::Error, start);
        limiter.admit(Level::Warn, start);
        let before = start + SUMMARY_INTERVAL / 2;
        assert_eq!(limiter.admit(Level::Warn, before).summary, None);
        let due = start + SUMMARY_INTERVAL;
        let admission = limiter.admit(Level::Warn, due);
        assert_eq!(admission.summary, Some((2, Level::Error)));
        assert!(admission.pass, "ten seconds refilled the bucket");
        let next = due + Duration::from_millis(1);
        assert_eq!(limiter.admit(Level::Warn, next).summary, None);
        // Seven lines are left in the bucket; the rest waits for the session's end.
        assert_eq!(passes(&mut limiter, next, 50), 7);
        assert_eq!(limiter.finish(), Some((43, Level::Warn)));
    }

    #[test]
    fn any_bytes_become_one_json_line() {
        let bytes = b"bad \xff\xfe bytes, \"quoted\"\nand a second line\n";
        let message = message_text(bytes, None).unwrap();
        assert_eq!(
            message,
            "bad \u{fffd}\u{fffd} bytes, \"quoted\"\nand a second line"
        );
        let line = crate::logging::json_line("t", Level::Warn, "libav::h264", None, &message);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["message"], message);
        assert_eq!(message_text(b"\n", None), None);
    }

    #[test]
    fn credentials_are_removed_known_or_not() {
        let camera = CameraLabel::new("cam", "rtsp://admin:hunter2@10.0.0.5/live");
        let message = "Could not open 'rtsp://admin:hunter2@10.0.0.5/live': refused";
        let redacted = redact(message, Some(&camera));
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("admin:***@10.0.0.5"), "{redacted}");
        let other = redact("GET http://u:secret@host/x?token=abc failed", None);
        assert!(
            !other.contains("secret") && !other.contains("abc"),
            "{other}"
        );
        assert_eq!(redact("plain words", None), "plain words");
        // libav's debug and trace lines: a request line, an authorization header.
        let camera = CameraLabel::new("cam", "rtsp://user:S3cretPass@h/x?token=S3cretTok");
        for line in [
            "request: GET /x?token=S3cretTok HTTP/1.1",
            "Sending:\nDESCRIBE rtsp://h/x RTSP/1.0\nAuthorization: Basic dXNlcjpTM2NyZXRQYXNz\n--",
            "password S3cretPass rejected",
        ] {
            let redacted = redact(line, Some(&camera));
            assert!(
                !redacted.contains("S3cret") && !redacted.contains("dXNlcjpTM2NyZXRQYXNz"),
                "{redacted}"
            );
        }
        let unknown = redact("request: GET /seg1.ts?sig=abcdef&n=1 HTTP/1.1", None);
        assert_eq!(unknown, "request: GET /seg1.ts?sig=***&n=1 HTTP/1.1");
    }

    #[test]
    fn tags_find_their_camera_until_dropped() {
        assert!(ContextTag::for_current_camera().is_none());
        let _scope = CameraScope::enter(CameraLabel::new("tagged", "x"));
        let tag = ContextTag::for_current_camera().unwrap();
        let value = tag.value();
        assert_eq!(camera_of_tag(value).unwrap().id, "tagged");
        drop(tag);
        assert!(camera_of_tag(value).is_none());
        assert!(camera_of_tag(0).is_none());
    }
}
