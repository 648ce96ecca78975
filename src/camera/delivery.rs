//! Where a camera's sampled frames go: numbered, queued for the JPEG threads, written
//! to the frame folder and published as the newest frame.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use crossbeam_channel::Sender;

use super::pump::Sample;
use super::registry::{Camera, LatestFrame};
use super::state::DropReason;
use crate::logging::{CameraLabel, CameraScope};
use crate::output::encode_pool::{EncodeJob, EncodePool};
use crate::output::jpeg::JpegError;
use crate::output::store::FrameStore;

pub struct Delivery<'a> {
    pub camera: Arc<Camera>,
    pub store: Arc<FrameStore>,
    pub pool: &'a EncodePool,
    /// Each queued frame holds a clone; when all are gone, every frame is written.
    pub in_flight: Sender<()>,
    /// The camera, for what is logged while its frames are written.
    pub label: Arc<CameraLabel>,
}

impl Delivery<'_> {
    /// Numbers a sampled frame and queues it for encoding; a full queue is a counted
    /// drop, never a wait. Says whether the frame was queued.
    pub fn submit(&self, sample: Sample<'_>) -> bool {
        let camera = &self.camera;
        camera.hardware(&sample.hwaccel);
        camera.pacing_fell_behind(sample.lag_events);
        let number = self.store.reserve();
        let written = Written {
            camera: Arc::clone(camera),
            store: Arc::clone(&self.store),
            number,
            pts: sample.pts,
            progress: sample.progress,
            _in_flight: self.in_flight.clone(),
            label: Arc::clone(&self.label),
        };
        let job = EncodeJob {
            picture: sample.picture.to_owned_picture(),
            deliver: Box::new(move |jpeg| written.deliver(jpeg)),
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
    pub number: u64,
    pub pts: f64,
    pub progress: Option<f64>,
    /// Dropped when the frame is done: the session waits for all of these.
    pub _in_flight: Sender<()>,
    /// The camera, for what the encoder thread logs while delivering.
    pub label: Arc<CameraLabel>,
}

impl Written {
    /// Writes the frame and publishes it. A failed write (a full disk) is counted and
    /// reported, and the camera goes on: the next frame may well succeed.
    pub fn deliver(self, jpeg: Result<Vec<u8>, JpegError>) {
        let _scope = CameraScope::enter(Arc::clone(&self.label));
        let camera = &self.camera;
        let written = jpeg.map_err(|e| e.to_string()).and_then(|jpeg| {
            self.store
                .write_numbered(self.number, &jpeg)
                .map(|()| jpeg)
                .map_err(|e| format!("could not write frame: {e}"))
        });
        match written {
            Ok(jpeg) => {
                let frame = LatestFrame {
                    jpeg: Bytes::from(jpeg),
                    seq: self.number,
                    pts: self.pts,
                    captured_at: SystemTime::now(),
                };
                camera.frame_written(frame, self.progress);
            }
            Err(message) => {
                log::warn!(
                    camera:% = camera.id();
                    "frame {} in {}: {message}",
                    self.number,
                    self.store.dir().display()
                );
                camera.write_failed(message);
            }
        }
    }
}
