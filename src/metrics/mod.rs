//! The Prometheus metrics: read at scrape time from the cameras' snapshots and
//! timings, the encoder queue, the output filesystem and `/proc/self`, never kept as a
//! second copy of the state. A camera that leaves the registry leaves the metrics.

mod event_clients;
mod process;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry as Families, Unit};

use crate::camera::timings::{CameraTimings, DurationHistogram};
use crate::camera::{Camera, CameraSnapshot, DropReason, Phase, Registry, Status};
use crate::output::disk;
use crate::output::encode_pool::EncodePool;

pub use event_clients::EventClients;

/// What the text encoder writes: OpenMetrics text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prefix of every metric's name.
const PREFIX: &str = "video_pipeline";

type Labels<'a> = [(&'static str, &'a str)];

/// Per-camera counters read from the snapshot: name (`_total` is added), help, value.
/// A new counter of the snapshot is one more line here.
type Counter = fn(&CameraSnapshot) -> u64;
const CAMERA_COUNTERS: &[(&str, &str, Counter)] = &[
    (
        "frames_written",
        "Frames written to the camera's folder.",
        |s| s.frame_count,
    ),
    (
        "camera_restarts",
        "Reconnections after the source failed or ended.",
        |s| s.restart_count,
    ),
    (
        "frames_deleted",
        "Old frames deleted from the camera's folder by retention and the disk guard.",
        |s| s.frames_deleted,
    ),
];

/// Per-camera gauges read from the snapshot at `now`; a camera without a value (no
/// frame yet) has no series.
type Gauge = fn(&CameraSnapshot, SystemTime) -> Option<f64>;
const CAMERA_GAUGES: &[(&str, &str, Option<Unit>, Gauge)] = &[
    (
        "last_frame_age",
        "Seconds since the camera last wrote a frame; absent before its first frame.",
        Some(Unit::Seconds),
        |s, now| {
            let at = s.last_frame_at?;
            Some(now.duration_since(at).unwrap_or_default().as_secs_f64())
        },
    ),
    (
        "measured_fps",
        "Frames written per second, smoothed; absent before two frames.",
        None,
        |s, _| s.measured_fps,
    ),
    (
        "writing_paused",
        "1 while the camera's frames are not written for lack of disk space.",
        None,
        |s, _| Some(if s.writing_paused { 1.0 } else { 0.0 }),
    ),
];

/// Per-camera timing histograms: name (`_seconds` is added), help, which one.
type Timing = fn(&CameraTimings) -> &DurationHistogram;
const CAMERA_HISTOGRAMS: &[(&str, &str, Timing)] = &[
    (
        "decode_duration",
        "Time in libav's decoder per decoded frame, without reading the input.",
        |t| &t.decode,
    ),
    (
        "jpeg_encode_duration",
        "Time in the JPEG encoder per written frame.",
        |t| &t.encode,
    ),
];

/// Every metric family of the daemon.
#[derive(Debug)]
pub struct Metrics {
    families: Families,
    event_clients: Arc<EventClients>,
}

impl Metrics {
    /// `output_folder` is where the free space is measured.
    pub fn new(
        cameras: Arc<Registry>,
        encoders: Arc<EncodePool>,
        output_folder: PathBuf,
    ) -> Metrics {
        let mut families = Families::with_prefix(PREFIX);
        families.register_collector(Box::new(Cameras(cameras)));
        families.register_collector(Box::new(Process {
            encoders,
            output_folder,
        }));
        let event_clients = Arc::new(EventClients::default());
        families.register_collector(Box::new(EventStreams(Arc::clone(&event_clients))));
        Metrics {
            families,
            event_clients,
        }
    }

    /// What the live event streams count.
    pub fn event_clients(&self) -> &Arc<EventClients> {
        &self.event_clients
    }

    /// The OpenMetrics text of every metric now. Writing to a string cannot fail; an
    /// error would be a value the encoder refuses.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.families)?;
        Ok(text)
    }
}

/// The live event streams' clients.
#[derive(Debug)]
struct EventStreams(Arc<EventClients>);

impl Collector for EventStreams {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encoder
            .encode_descriptor(
                "event_clients",
                "Clients connected to the live event streams (events/ and ws/).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.0.connected_now())?;
        encoder
            .encode_descriptor(
                "event_clients_dropped",
                "Event stream clients disconnected because they did not read their events.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&self.0.dropped_total(), None)?;
        Ok(())
    }
}

/// The cameras in the registry, as their snapshots say now.
#[derive(Debug)]
struct Cameras(Arc<Registry>);

impl Collector for Cameras {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut cameras: Vec<(Arc<Camera>, CameraSnapshot)> = self
            .0
            .all()
            .into_iter()
            .map(|camera| {
                let snapshot = camera.snapshot();
                (camera, snapshot)
            })
            .collect();
        cameras.sort_by(|(a, _), (b, _)| a.id().as_str().cmp(b.id().as_str()));
        let now = SystemTime::now();
        let cameras: Vec<(&str, &Camera, &CameraSnapshot)> = cameras
            .iter()
            .map(|(camera, snapshot)| (camera.id().as_str(), &**camera, snapshot))
            .collect();

        for (name, help, value) in CAMERA_COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (id, _, snapshot) in &cameras {
                family
                    .encode_family(&[("camera", *id)])?
                    .encode_counter::<NoLabelSet, _, u64>(&value(snapshot), None)?;
            }
        }

        let mut dropped = encoder.encode_descriptor(
            "frames_dropped",
            "Frames decoded but not written, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (id, _, snapshot) in &cameras {
            for reason in DropReason::ALL {
                let labels: &Labels = &[("camera", *id), ("reason", reason.as_str())];
                dropped
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&snapshot.drops.of(reason), None)?;
            }
        }

        for (name, help, unit, value) in CAMERA_GAUGES {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (id, _, snapshot) in &cameras {
                if let Some(value) = value(snapshot, now) {
                    family
                        .encode_family(&[("camera", *id)])?
                        .encode_gauge(&value)?;
                }
            }
        }

        let mut up = encoder.encode_descriptor(
            "camera_up",
            "1 while the camera runs and streams, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for (id, _, snapshot) in &cameras {
            let streaming =
                snapshot.status == Status::Running && snapshot.phase == Phase::Streaming;
            up.encode_family(&[("camera", *id)])?
                .encode_gauge(&u32::from(streaming))?;
        }

        let mut phase = encoder.encode_descriptor(
            "camera_phase",
            "1 for the camera's current phase, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for (id, _, snapshot) in &cameras {
            for each in Phase::ALL {
                let labels: &Labels = &[("camera", *id), ("phase", each.as_str())];
                let current = u32::from(snapshot.phase == each);
                phase.encode_family(&labels)?.encode_gauge(&current)?;
            }
        }

        let mut backend = encoder.encode_descriptor(
            "decoder_backend",
            "1, labelled with the hardware backend decoding the camera (none: software).",
            None,
            MetricType::Gauge,
        )?;
        for (id, _, snapshot) in &cameras {
            let labels: &Labels = &[("camera", *id), ("backend", snapshot.hwaccel.name())];
            backend.encode_family(&labels)?.encode_gauge(&1u32)?;
        }

        for (name, help, histogram) in CAMERA_HISTOGRAMS {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (id, camera, _) in &cameras {
                let values = histogram(camera.timings()).snapshot();
                family
                    .encode_family(&[("camera", *id)])?
                    .encode_histogram::<NoLabelSet>(
                        values.sum,
                        values.count,
                        &values.buckets,
                        None,
                    )?;
            }
        }
        Ok(())
    }
}

/// The process as a whole.
#[derive(Debug)]
struct Process {
    encoders: Arc<EncodePool>,
    output_folder: PathBuf,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match process::read() {
            Ok(stats) => {
                encoder
                    .encode_descriptor(
                        "process_cpu",
                        "User and system CPU time of the process.",
                        Some(&Unit::Seconds),
                        MetricType::Counter,
                    )?
                    .encode_counter::<NoLabelSet, _, f64>(&stats.cpu_seconds, None)?;
                let gauges = [
                    (
                        "process_resident_memory",
                        "Resident memory of the process.",
                        Some(&Unit::Bytes),
                        stats.resident_bytes,
                    ),
                    (
                        "process_open_fds",
                        "Open file descriptors.",
                        None,
                        stats.open_fds,
                    ),
                    (
                        "process_threads",
                        "Threads of the process.",
                        None,
                        stats.threads,
                    ),
                ];
                for (name, help, unit, value) in gauges {
                    encoder
                        .encode_descriptor(name, help, unit, MetricType::Gauge)?
                        .encode_gauge(&value)?;
                }
            }
            Err(e) => log::warn!("process metrics unavailable: {e}"),
        }

        match disk::space(&self.output_folder) {
            Ok(space) => {
                let gauges = [
                    (
                        "output_filesystem_available",
                        "Bytes the daemon may still write on the output folder's filesystem.",
                        space.available,
                    ),
                    (
                        "output_filesystem_size",
                        "Size of the output folder's filesystem.",
                        space.total,
                    ),
                ];
                for (name, help, value) in gauges {
                    encoder
                        .encode_descriptor(name, help, Some(&Unit::Bytes), MetricType::Gauge)?
                        .encode_gauge(&value)?;
                }
            }
            Err(e) => log::warn!(
                "free space of {} unavailable: {e}",
                self.output_folder.display()
            ),
        }

        let queue = [
            (
                "encoder_queue_frames",
                "Frames waiting for a JPEG encoder thread.",
                self.encoders.queued(),
            ),
            (
                "encoder_queue_capacity_frames",
                "Frames that may wait before new ones are dropped (queue_full).",
                self.encoders.capacity(),
            ),
        ];
        for (name, help, value) in queue {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{CameraSettings, HwStatus};
    use crate::sampling::Fps;
    use crate::source::{CameraId, Source};

    fn metrics(cameras: &Arc<Registry>) -> Metrics {
        let pool = Arc::new(EncodePool::new(1, 4, 80).unwrap());
        Metrics::new(Arc::clone(cameras), pool, std::env::temp_dir())
    }

    fn admit(cameras: &Registry, id: &str) -> CameraId {
        let id = CameraId::parse(id).unwrap();
        let settings = CameraSettings::new(
            Source::Url("rtsp://h/s".into()),
            Fps::DEFAULT,
            std::env::temp_dir().join(id.as_str()),
        );
        cameras.admit(&id, settings, HwStatus::default());
        id
    }

    /// Sample lines (not comments) that carry `label`.
    fn series_with<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|line| !line.starts_with('#') && line.contains(label))
            .collect()
    }

    #[test]
    fn every_camera_family_has_a_series_per_camera() {
        let cameras = Arc::new(Registry::new());
        admit(&cameras, "front");
        let text = metrics(&cameras).render().unwrap();
        let front = series_with(&text, "camera=\"front\"");
        for expected in [
            "video_pipeline_frames_written_total{camera=\"front\"} 0",
            "video_pipeline_camera_restarts_total{camera=\"front\"} 0",
            "video_pipeline_camera_up{camera=\"front\"} 0",
            "video_pipeline_camera_phase{camera=\"front\",phase=\"connecting\"} 1",
            "video_pipeline_camera_phase{camera=\"front\",phase=\"streaming\"} 0",
            "video_pipeline_decoder_backend{camera=\"front\",backend=\"none\"} 1",
            "video_pipeline_decode_duration_seconds_count{camera=\"front\"} 0",
            "video_pipeline_jpeg_encode_duration_seconds_bucket{le=\"+Inf\",camera=\"front\"} 0",
        ] {
            assert!(front.contains(&expected), "{expected} not in\n{text}");
        }
        for reason in DropReason::ALL {
            let line = format!(
                "video_pipeline_frames_dropped_total{{camera=\"front\",reason=\"{}\"}} 0",
                reason.as_str()
            );
            assert!(front.contains(&line.as_str()), "{line} not in\n{text}");
        }
        // No frame yet: no age, no rate.
        assert!(!text.contains("last_frame_age_seconds{"), "{text}");
        assert!(!text.contains("measured_fps{"), "{text}");
        assert!(text.contains("\nvideo_pipeline_encoder_queue_capacity_frames 4\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_removed_camera_leaves_no_series() {
        let cameras = Arc::new(Registry::new());
        let gone = admit(&cameras, "gone");
        admit(&cameras, "kept");
        let metrics = metrics(&cameras);
        assert!(!series_with(&metrics.render().unwrap(), "camera=\"gone\"").is_empty());
        cameras.get(&gone).unwrap().request_stop();
        assert!(cameras.remove(&gone).is_some());
        let text = metrics.render().unwrap();
        assert_eq!(series_with(&text, "camera=\"gone\""), Vec::<&str>::new());
        // Every per-camera series of the other camera is still there.
        assert!(series_with(&text, "camera=\"kept\"").len() > 20, "{text}");
    }
}
