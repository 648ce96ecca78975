//! Where a camera's sampled frames go: numbered and dated, queued for the JPEG threads,
//! annotated with their metadata (`output::exif`), written to the frame folder and
//! published as the newest frame; or, while the disk guard pauses writing, counted as
//! dropped.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use crossbeam_channel::Sender;

use super::pump::Sample;
use super::registry::{Camera, LatestFrame};
use super::state::DropReason;
use crate::logging::{CameraLabel, CameraScope};
use crate::output::disk_guard::WriteGate;
use crate::output::encode_pool::{EncodeJob, EncodePool};
use crate::output::exif::{self, FrameMetadata};
use crate::output::jpeg::JpegError;
use crate::output::store::FrameStore;
use crate::shape::Size;

pub struct Delivery<'a> {
    pub camera: Arc<Camera>,
    pub store: Arc<FrameStore>,
    pub pool: &'a EncodePool,
    /// Each queued frame holds a clone; when all are gone, every frame is written.
    pub in_flight: Sender<()>,
    /// Closed while the disk is too full.
    pub gate: Arc<WriteGate>,
    /// The camera, for what is logged while its frames are written.
    pub label: Arc<CameraLabel>,
}

impl Delivery<'_> {
    /// Numbers a sampled frame and queues it for encoding; a full queue is a counted
    /// drop, never a wait. Says whether the source delivered: the frame was queued, or
    /// held back only because writing is paused (the camera is not failing).
    pub fn submit(&self, sample: Sample<'_>) -> bool {
        let camera = &self.camera;
        camera.hardware(&sample.hwaccel);
        camera.pacing_fell_behind(sample.lag_events);
        camera.frames_sized(Size {
            width: sample.picture.width as u32,
            height: sample.picture.height as u32,
        });
        if self.gate.is_paused() {
            camera.frames_dropped(DropReason::DiskFull, 1);
            return true;
        }
        let number = self.store.reserve();
        let written = Written {
            captured_at: capture_time(),
            camera: Arc::clone(camera),
            store: Arc::clone(&self.store),
            gate: Arc::clone(&self.gate),
            number,
            pts: sample.pts,
            progress: sample.progress,
            _in_flight: self.in_flight.clone(),
            label: Arc::clone(&self.label),
        };
        let job = EncodeJob {
            picture: sample.picture.to_owned_picture(),
            quality: camera.settings().quality,
            deliver: Box::new(move |jpeg, took| written.deliver(jpeg, took)),
        };
        if self.pool.try_submit(job).is_err() {
            self.store.release(number);
            camera.frames_dropped(DropReason::QueueFull, 1);
            log::warn!(camera:% = camera.id(); "encoder queue full: frame dropped");
            return false;
        }
        true
    }
}

/// What an encoder thread needs to write a frame and make it the newest.
pub struct Written {
    pub camera: Arc<Camera>,
    pub store: Arc<FrameStore>,
    pub gate: Arc<WriteGate>,
    pub number: u64,
    pub pts: f64,
    /// When the frame was sampled: the one capture time of its Exif data, its comment,
    /// its headers and the status.
    pub captured_at: SystemTime,
    pub progress: Option<f64>,
    /// Dropped when the frame is done: the session waits for all of these.
    pub _in_flight: Sender<()>,
    /// The camera, for what the encoder thread logs while delivering.
    pub label: Arc<CameraLabel>,
}

impl Written {
    /// Writes the frame, encoded in `took` and annotated with its metadata, and
    /// publishes it. A failed write is counted
    /// and reported, and the camera goes on: the next frame may well succeed. A write
    /// refused for lack of space pauses writing at once, for every camera, until the
    /// guard sees room.
    pub fn deliver(self, jpeg: Result<Vec<u8>, JpegError>, took: Duration) {
        let _scope = CameraScope::enter(Arc::clone(&self.label));
        let camera = &self.camera;
        if jpeg.is_ok() {
            camera.timings().encode.observe(took);
        }
        if self.gate.is_paused() {
            camera.frames_dropped(DropReason::DiskFull, 1);
            return;
        }
        let message = match jpeg {
            Err(e) => e.to_string(),
            Ok(jpeg) => {
                let jpeg = exif::with_metadata(jpeg, &self.metadata());
                match self.store.write_numbered(self.number, &jpeg) {
                    Ok(()) => {
                        let frame = LatestFrame {
                            jpeg: Bytes::from(jpeg),
                            seq: self.number,
                            pts: self.pts,
                            captured_at: self.captured_at,
                        };
                        camera.frame_written(frame, self.progress);
                        return;
                    }
                    Err(e) if out_of_space(&e) => {
                        self.gate.write_refused();
                        log::warn!(
                            camera:% = camera.id();
                            "frame {} in {}: {e}; writing paused",
                            self.number,
                            self.store.dir().display()
                        );
                        camera.frames_dropped(DropReason::DiskFull, 1);
                        return;
                    }
                    Err(e) => format!("could not write frame: {e}"),
                }
            }
        };
        log::warn!(
            camera:% = camera.id();
            "frame {} in {}: {message}",
            self.number,
            self.store.dir().display()
        );
        camera.write_failed(message);
    }

    fn metadata(&self) -> FrameMetadata<'_> {
        FrameMetadata {
            camera: self.camera.id().as_str(),
            seq: self.number,
            pts: self.pts,
            captured_at: self.captured_at,
        }
    }
}

/// Now, to the millisecond: the precision of the Exif data and of `X-Captured-At`,
/// so every reader of a frame sees exactly the same capture time.
fn capture_time() -> SystemTime {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

/// "No space left on device" or "disk quota exceeded".
fn out_of_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}
