//! Starts and stops camera workers, answers the questions that need libav (probes,
//! hardware capabilities) off the HTTP threads, and joins everything at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::clock::SystemClock;
use super::registry::{Admission, Registry};
use super::settings::CameraSettings;
use super::source::LibavOpener;
use super::state::Outcome;
use super::worker::{self, WorkerOptions};
use crate::config::Config;
use crate::media::hw::{DeviceNames, HwPolicy, HwReport, HwStatus};
use crate::media::{self, FailureKind, MediaError, OpenOptions, VideoInfo};
use crate::output::encode_pool::EncodePool;
use crate::source::{CameraId, Source};
use crate::stop::StopToken;

pub struct Supervisor {
    registry: Arc<Registry>,
    config: Arc<Config>,
    encoders: Arc<EncodePool>,
    threads: Mutex<HashMap<CameraId, JoinHandle<()>>>,
    hw: HwPolicy,
    /// The last hardware probe; held locked while probing, so it runs once at a time.
    hardware: Mutex<Option<Arc<HwReport>>>,
}

impl Supervisor {
    /// Fails only when the encoder threads cannot be started.
    pub fn new(registry: Arc<Registry>, config: Arc<Config>) -> std::io::Result<Supervisor> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let encoders = EncodePool::new(cores, config.encode_queue_frames, config.jpeg_quality)?;
        let devices = DeviceNames {
            vaapi: config.vaapi_device.clone(),
            cuda: config.cuda_device.clone(),
        };
        let hw = HwPolicy::new(config.hw_accel_options.clone(), devices, config.hw_retry);
        Ok(Supervisor {
            registry,
            config,
            encoders: Arc::new(encoders),
            threads: Mutex::new(HashMap::new()),
            hw,
            hardware: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts `id` unless it is running; at most one worker per camera, ever.
    pub fn start(&self, id: &CameraId, settings: CameraSettings) -> Admission {
        let hwaccel = self.hw.request(settings.hwaccel_requested);
        // Only a camera that asks for hardware waits for the probe.
        let reason = if hwaccel.backends.is_empty() {
            None
        } else {
            self.hw.expected_fallback(&self.hardware(), &hwaccel)
        };
        let expected = HwStatus {
            backend: None,
            reason,
        };
        let admission = self.registry.admit(id, settings, expected);
        let Admission::Started(camera) = &admission else {
            return admission;
        };
        let config = &self.config;
        let opener = LibavOpener {
            options: OpenOptions {
                open_timeout: config.open_timeout,
                read_timeout: config.read_timeout,
                threads: self.decode_threads(),
                hwaccel,
                ..OpenOptions::default()
            },
            stall_timeout: config.stall_timeout,
        };
        let options = WorkerOptions {
            clear_on_start: config.clear_on_start,
            backoff: Backoff::new(config.reconnect_initial, config.reconnect_max),
            max_restarts: config.max_restarts,
        };
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let previous = threads.remove(id);
        let worker_camera = Arc::clone(camera);
        let encoders = Arc::clone(&self.encoders);
        let spawned = thread::Builder::new()
            .name(format!("cam-{id}"))
            .spawn(move || {
                worker::run(
                    worker_camera,
                    opener,
                    SystemClock,
                    options,
                    encoders,
                    previous,
                )
            });
        match spawned {
            Ok(handle) => {
                threads.insert(id.clone(), handle);
            }
            Err(e) => camera.finished(Outcome::Failed {
                kind: FailureKind::Other,
                message: format!("could not start a thread: {e}"),
            }),
        }
        admission
    }

    /// Decoder threads for a camera starting now: the configured number, or the cores
    /// shared among the running cameras (one each once there are as many as cores,
    /// which also keeps each camera's memory low).
    fn decode_threads(&self) -> usize {
        if let Some(threads) = self.config.decode_threads {
            return threads;
        }
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let running = self
            .registry
            .all()
            .iter()
            .filter(|c| c.is_running())
            .count()
            .max(1);
        (cores / running).max(1)
    }

    /// Asks `id`'s worker to stop; returns whether one was running. Never waits.
    pub fn stop(&self, id: &CameraId) -> bool {
        match self.registry.get(id) {
            Some(camera) if camera.is_running() => {
                camera.request_stop();
                log::info!(camera:% = id; "stop requested");
                true
            }
            _ => false,
        }
    }

    /// Stops every worker and waits up to `grace` for their threads to end.
    pub fn shutdown(&self, grace: Duration) {
        for camera in self.registry.all() {
            camera.request_stop();
        }
        let deadline = Instant::now() + grace;
        let handles: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (id, handle) in handles {
            while !handle.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                log::warn!(camera:% = id; "worker did not stop within {grace:?}");
            }
        }
    }

    /// Describes a source in-process. Blocking: call it off the HTTP threads.
    pub fn probe(&self, source: &Source) -> Result<VideoInfo, MediaError> {
        media::probe(source, self.config.probe_timeout, &StopToken::new())
    }

    /// Which hardware backends work here, probed on first use.
    pub fn hardware(&self) -> Arc<HwReport> {
        let mut cached = self.hardware.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(cached.get_or_insert_with(|| Arc::new(self.hw.probe())))
    }

    /// Probes the hardware again (a driver installed, a device given to the
    /// container since the start).
    pub fn refresh_hardware(&self) -> Arc<HwReport> {
        let mut cached = self.hardware.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(cached.insert(Arc::new(self.hw.probe())))
    }
}
