//! `mjpeg/`: a camera's frames as they are written, as one `multipart/x-mixed-replace`
//! response. Each part is the newest frame's bytes as held in memory (no decoding, no
//! re-encoding). A viewer waits on the camera's newest-frame channel, so the camera and
//! encoder threads do nothing per viewer but wake it; and a viewer that reads slowly
//! gets the newest frame when it is ready for one, never a queue of old ones: actix
//! polls the stream only once the previous part has left its write buffer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::status::FrameHeaders;
use super::{ApiError, AppState};
use crate::camera::{Camera, LatestFrame};
use crate::sampling::{Fps, FpsError};

const BOUNDARY: &str = "frame";
/// The longest wait between two parts: a rate so low (`fps=1e-300` is > 0) that its
/// interval is longer waits this long, about a century. A `Duration` cannot hold
/// every interval, nor an `Instant` every deadline.
const MAX_INTERVAL: Duration = Duration::from_secs(100 * 365 * 86_400);

type Query = web::Query<HashMap<String, String>>;

pub async fn mjpeg(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let id = super::routes::camera_id(query.get("camera_id").map(String::as_str))?;
    let fps = query.get("fps").map(|v| parse_fps(v)).transpose()?;
    let camera = state
        .supervisor
        .registry()
        .get(&id)
        .ok_or_else(|| ApiError::NotFound("No decode task found for this camera.".into()))?;
    // Subscribed before the check: an end after it still wakes the stream.
    let frames = camera.follow();
    if !camera.is_running() {
        return Err(ApiError::NotFound(
            "The camera's decode task has ended.".into(),
        ));
    }
    let viewer = Viewer {
        camera,
        frames,
        interval: fps.map(interval),
        not_before: None,
        sent: None,
        ended: false,
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store"))
        // nginx would otherwise buffer the stream and hold frames back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(parts(viewer)))
}

/// A rate like decode/'s: not a number is the wrong type (422), a number out of range
/// is refused (400).
fn parse_fps(value: &str) -> Result<Fps, ApiError> {
    let fps: f64 = value
        .trim()
        .parse()
        .map_err(|_| ApiError::Unprocessable(format!("fps must be a number, not {value:?}")))?;
    Fps::new(fps).map_err(|e: FpsError| ApiError::BadRequest(e.to_string()))
}

/// The least time between two parts at `fps`.
fn interval(fps: Fps) -> Duration {
    Duration::try_from_secs_f64(1.0 / fps.get()).map_or(MAX_INTERVAL, |i| i.min(MAX_INTERVAL))
}

/// One viewer's place in the camera's frames.
struct Viewer {
    camera: Arc<Camera>,
    frames: watch::Receiver<Option<Arc<LatestFrame>>>,
    /// The least time between two parts, when the viewer asked for a rate.
    interval: Option<Duration>,
    not_before: Option<Instant>,
    /// The last frame sent.
    sent: Option<u64>,
    ended: bool,
}

/// Parts until the session ends, then the closing boundary.
fn parts(viewer: Viewer) -> impl Stream<Item = Result<Bytes, ApiError>> {
    stream::unfold(viewer, |mut viewer| async move {
        if viewer.ended {
            return None;
        }
        let chunks = match viewer.next_frame().await {
            Some(frame) => part(&frame),
            None => {
                viewer.ended = true;
                vec![Bytes::from(format!("--{BOUNDARY}--\r\n"))]
            }
        };
        Some((chunks, viewer))
    })
    .flat_map(|chunks| stream::iter(chunks.into_iter().map(Ok)))
}

impl Viewer {
    /// The newest frame not sent yet, once the rate allows one; `None` when the session
    /// has ended (or the camera is gone) and every frame it wrote has been sent.
    async fn next_frame(&mut self) -> Option<Arc<LatestFrame>> {
        if let Some(at) = self.not_before {
            tokio::time::sleep_until(at).await;
        }
        loop {
            let newest = self.frames.borrow_and_update().clone();
            if let Some(frame) = newest.filter(|f| self.sent.is_none_or(|sent| f.seq > sent)) {
                self.sent = Some(frame.seq);
                self.not_before = self.interval.map(|i| Instant::now() + i);
                return Some(frame);
            }
            if !self.camera.is_running() {
                return None;
            }
            self.frames.changed().await.ok()?;
        }
    }
}

/// A part: its headers, the JPEG as it is in memory, the line break before the next
/// boundary.
fn part(frame: &LatestFrame) -> Vec<Bytes> {
    let headers = FrameHeaders::of(frame);
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         X-Frame-Seq: {}\r\nX-Frame-Pts: {}\r\nX-Captured-At: {}\r\n\r\n",
        frame.jpeg.len(),
        headers.seq,
        headers.pts,
        headers.captured_at
    );
    vec![
        Bytes::from(head),
        frame.jpeg.clone(),
        Bytes::from_static(b"\r\n"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_accepted_rate_has_an_interval_a_deadline_can_hold() {
        assert_eq!(interval(Fps::new(4.0).unwrap()), Duration::from_millis(250));
        assert_eq!(interval(Fps::new(0.5).unwrap()), Duration::from_secs(2));
        for tiny in ["1e-12", "1e-19", "1e-300", "5e-324"] {
            let fps = parse_fps(tiny).unwrap();
            assert_eq!(interval(fps), MAX_INTERVAL, "{tiny}");
            let _ = Instant::now() + interval(fps);
        }
    }
}
