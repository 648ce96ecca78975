//! Starts and stops camera workers, answers the questions that need libav (probes,
//! hardware capabilities) off the HTTP threads, and joins everything at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::media::hw::{self, DeviceNames, DeviceProbe, HwBackend, HwChoice, HwRequest};
use crate::media::{self, MediaError, OpenOptions, VideoInfo};
use crate::pipeline::backoff::Backoff;
use crate::pipeline::encode_pool::EncodePool;
use crate::pipeline::worker::{self, WorkerOptions};
use crate::registry::{Admission, CameraSettings, Registry};
use crate::source::{CameraId, Source};
use crate::stop::StopToken;

/// What `hw-accel-cap/` reports: the backends that decoded the probe clip, and why
/// each other one did not.
#[derive(Debug, Clone, Serialize)]
pub struct HwReport {
    pub available: Vec<HwBackend>,
    pub compiled: Vec<String>,
    pub probes: Vec<DeviceProbe>,
}

pub struct Supervisor {
    registry: Arc<Registry>,
    config: Arc<Config>,
    encoders: Arc<EncodePool>,
    threads: Mutex<HashMap<CameraId, JoinHandle<()>>>,
    /// The last hardware probe; held locked while probing, so it runs once at a time.
    hardware: Mutex<Option<Arc<HwReport>>>,
}

impl Supervisor {
    /// Fails only when the encoder threads cannot be started.
    pub fn new(registry: Arc<Registry>, config: Arc<Config>) -> std::io::Result<Supervisor> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let encoders = EncodePool::new(cores, config.encode_queue_frames, config.jpeg_quality)?;
        Ok(Supervisor {
            registry,
            config,
            encoders: Arc::new(encoders),
            threads: Mutex::new(HashMap::new()),
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
        let admission = self.registry.admit(id, settings);
        let Admission::Started(camera) = &admission else {
            return admission;
        };
        let hwaccel = self.hw_request(&camera.settings.hwaccel_requested);
        {
            let mut state = camera.state();
            state.hwaccel = "none";
            state.hwaccel_reason = self.expected_fallback(&hwaccel);
        }
        let config = &self.config;
        let options = WorkerOptions {
            open: OpenOptions {
                open_timeout: config.open_timeout,
                read_timeout: config.read_timeout,
                threads: self.decode_threads(),
                hwaccel,
                ..OpenOptions::default()
            },
            stall_timeout: config.stall_timeout,
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
            .spawn(move || worker::run(worker_camera, options, encoders, previous));
        match spawned {
            Ok(handle) => {
                threads.insert(id.clone(), handle);
            }
            Err(e) => {
                let mut state = camera.state();
                state.status = crate::registry::Status::Error;
                state.last_error = Some(format!("could not start a thread: {e}"));
            }
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
                log::info!("[{id}] stop requested");
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
                log::warn!("[{id}] worker did not stop within {grace:?}");
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
        Arc::clone(cached.get_or_insert_with(|| Arc::new(self.probe_hardware())))
    }

    /// Probes the hardware again (a driver installed, a device given to the
    /// container since the start).
    pub fn refresh_hardware(&self) -> Arc<HwReport> {
        let mut cached = self.hardware.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(cached.insert(Arc::new(self.probe_hardware())))
    }

    fn probe_hardware(&self) -> HwReport {
        let request = self.hw_request(&HwChoice::None);
        let probes = hw::probe_backends(&HwBackend::ALL, &request);
        let available = probes
            .iter()
            .filter(|p| p.available)
            .map(|p| p.backend)
            .collect();
        HwReport {
            available,
            compiled: hw::compiled_device_types(),
            probes,
        }
    }

    /// Why a camera will decode in software, as the hardware probe foresees it: what the
    /// status says until the source is open and its decoder tells.
    fn expected_fallback(&self, request: &HwRequest) -> Option<String> {
        if request.backends.is_empty() {
            return None;
        }
        let report = self.hardware();
        let mut reasons = Vec::new();
        for backend in &request.backends {
            match report.probes.iter().find(|p| p.backend == *backend) {
                Some(probe) if probe.available => return None,
                Some(probe) => reasons.push(format!(
                    "{backend}: {}",
                    probe.reason.as_deref().unwrap_or("unavailable")
                )),
                None => reasons.push(format!("{backend}: not a backend of this machine")),
            }
        }
        Some(format!("{}; decoding in software", reasons.join("; ")))
    }

    /// What a camera that asked for `requested` tries: a named backend, the
    /// configured order up to its first `none` for `auto`, nothing for `none`.
    fn hw_request(&self, requested: &HwChoice) -> HwRequest {
        let backends = match requested {
            HwChoice::None => Vec::new(),
            HwChoice::Backend(name) => vec![*name],
            HwChoice::Auto => self
                .config
                .hw_accel_options
                .iter()
                .map_while(|choice| match choice {
                    HwChoice::Backend(name) => Some(*name),
                    _ => None,
                })
                .collect(),
        };
        HwRequest {
            backends,
            devices: DeviceNames {
                vaapi: self.config.vaapi_device.clone(),
                cuda: self.config.cuda_device.clone(),
            },
            retry_after: self.config.hw_retry,
        }
    }
}
