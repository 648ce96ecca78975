//! Starts and stops camera workers, answers the questions that need libav (probes,
//! hardware capabilities) off the HTTP threads, and joins everything at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::clock::SystemClock;
use super::events::Change;
use super::registry::{Admission, Registry};
use super::request::StartRequest;
use super::retention::{self, RetentionOptions};
use super::saved::StateFile;
use super::settings::CameraSettings;
use super::source::LibavOpener;
use super::state::Outcome;
use super::worker::{self, WorkerOptions};
use crate::config::Config;
use crate::media::hw::{DeviceNames, HwPolicy, HwReport, HwStatus};
use crate::media::{self, FailureKind, MediaError, OpenOptions, VideoInfo};
use crate::output::disk_guard::WriteGate;
use crate::output::encode_pool::EncodePool;
use crate::source::{CameraId, Source};
use crate::stop::StopToken;

pub struct Supervisor {
    registry: Arc<Registry>,
    config: Arc<Config>,
    encoders: Arc<EncodePool>,
    threads: Mutex<HashMap<CameraId, JoinHandle<()>>>,
    /// Closed by the disk guard on the retention thread.
    gate: Arc<WriteGate>,
    retention: Mutex<Option<JoinHandle<()>>>,
    retention_stop: StopToken,
    hw: HwPolicy,
    /// The last hardware probe; held locked while probing, so it runs once at a time.
    hardware: Mutex<Option<Arc<HwReport>>>,
    /// Where the running cameras are saved (`STATE_FILE`), if anywhere.
    saved: Option<Arc<StateFile>>,
}

impl Supervisor {
    /// Fails only when the encoder or retention threads cannot be started.
    pub fn new(registry: Arc<Registry>, config: Arc<Config>) -> std::io::Result<Supervisor> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let encoders = EncodePool::new(cores, config.encode_queue_frames, config.jpeg_quality)?;
        let gate = Arc::new(WriteGate::new());
        let retention_stop = StopToken::new();
        let retention = retention::spawn(
            Arc::clone(&registry),
            Arc::clone(&gate),
            RetentionOptions {
                output_folder: config.output_folder.clone(),
                min_free: config.min_free_disk,
                stopped_folder_ttl: config.stopped_folder_ttl,
            },
            retention_stop.clone(),
        )?;
        let devices = DeviceNames {
            vaapi: config.vaapi_device.clone(),
            cuda: config.cuda_device.clone(),
        };
        let hw = HwPolicy::new(config.hw_accel_options.clone(), devices, config.hw_retry);
        let saved = config
            .state_file
            .clone()
            .map(|path| Arc::new(StateFile::new(path)));
        if let Some(saved) = &saved {
            save_when_sessions_end(Arc::clone(&registry), Arc::clone(saved))?;
        }
        Ok(Supervisor {
            registry,
            config,
            encoders: Arc::new(encoders),
            threads: Mutex::new(HashMap::new()),
            gate,
            retention: Mutex::new(Some(retention)),
            retention_stop,
            hw,
            hardware: Mutex::new(None),
            saved,
        })
    }

    /// The cameras saved in `STATE_FILE` by the last run (none when it is off). Read
    /// before any camera starts: each start saves the running cameras over them.
    pub fn load_saved(&self) -> Vec<StartRequest> {
        self.saved
            .as_ref()
            .map_or_else(Vec::new, |saved| saved.load())
    }

    /// Starts the `saved` cameras ([`Supervisor::load_saved`]), each checked again as a
    /// new request and continuing its folder's numbering; `except` are started from the
    /// config file already. Then removes the uploads that no camera uses.
    ///
    /// Returns the saved cameras that another replica owns now (the number of replicas
    /// changed): they are not started here, and stay in the file until
    /// [`handed_off`](Self::handed_off).
    pub fn restore(
        &self,
        saved_requests: Vec<StartRequest>,
        except: &[CameraId],
    ) -> Vec<StartRequest> {
        let Some(saved) = &self.saved else {
            return Vec::new();
        };
        let mut handoffs = Vec::new();
        for request in saved_requests {
            let valid = request.validate(&self.config);
            let id = request.fields.get("camera_id").map_or("?", String::as_str);
            match valid {
                Ok(valid) if except.contains(&valid.id) => log::info!(
                    camera = id; "saved in STATE_FILE but started from the config file instead"
                ),
                Ok(valid) if !self.owns(&valid.id) => {
                    if let Some(shard) = &self.config.shard {
                        log::info!(
                            camera = id;
                            "saved here, owned by replica {} of {} now: handing it over",
                            shard.owner(id),
                            shard.count()
                        );
                    }
                    handoffs.push(request);
                }
                Ok(mut valid) => {
                    valid.settings.resume = true;
                    log::info!(camera = id; "resuming after a restart");
                    if let Admission::Full { running, limit } =
                        self.start(&valid.id, valid.settings)
                    {
                        log::error!(
                            camera = id;
                            "not resumed: {running} cameras are running, MAX_CAMERAS is {limit}; \
                             it is no longer saved in STATE_FILE"
                        );
                    }
                }
                Err(e) => log::error!(camera = id; "cannot be resumed after a restart: {e}"),
            }
        }
        saved.keep_for_handoff(handoffs.clone());
        self.save_running();
        let mut sources: Vec<_> = self
            .registry
            .all()
            .iter()
            .filter(|c| c.is_running())
            .filter_map(|c| match &c.settings().source {
                Source::File(path) => Some(path.clone()),
                Source::Url(_) => None,
            })
            .collect();
        sources.extend(handoffs.iter().filter_map(|r| r.upload.clone()));
        let removed = crate::uploads::remove_unused(&self.config.upload_folder, &sources);
        if removed > 0 {
            log::info!("removed {removed} uploads that no running camera uses");
        }
        handoffs
    }

    /// Whether this daemon runs `id`: always when alone, else when its replica owns it.
    pub fn owns(&self, id: &CameraId) -> bool {
        self.config
            .shard
            .as_ref()
            .is_none_or(|shard| shard.owns(id.as_str()))
    }

    /// A saved camera returned by [`restore`](Self::restore) was taken over by its
    /// owner (or refused by it): it leaves the state file.
    pub fn handed_off(&self, request: &StartRequest) {
        if let Some(saved) = &self.saved {
            saved.handed_off(request);
        }
        self.save_running();
    }

    fn save_running(&self) {
        if let Some(saved) = &self.saved {
            saved.save_running(&self.registry);
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The JPEG threads shared by all cameras.
    pub fn encoders(&self) -> &Arc<EncodePool> {
        &self.encoders
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
                frame_limit: config.max_frame_pixels,
                threads: self.decode_threads(),
                hwaccel,
                ..OpenOptions::default()
            },
            stall_timeout: config.stall_timeout,
        };
        let resume = camera.settings().resume;
        let options = WorkerOptions {
            clear_on_start: config.clear_on_start && !resume,
            backoff: Backoff::new(config.reconnect_initial, config.reconnect_max),
            max_restarts: config.max_restarts,
            gate: Arc::clone(&self.gate),
        };
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let previous = threads.remove(id);
        // Threads of cameras that retention forgot are done: nothing waits for them.
        threads.retain(|id, thread| !thread.is_finished() || self.registry.get(id).is_some());
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
        drop(threads);
        self.save_running();
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
                self.save_running();
                true
            }
            _ => false,
        }
    }

    /// Stops every worker and waits up to `grace` for their threads to end.
    pub fn shutdown(&self, grace: Duration) {
        if let Some(saved) = &self.saved {
            saved.freeze();
        }
        self.retention_stop.stop();
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
        // A pass is short: it ends well within the grace.
        let retention = self
            .retention
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(retention) = retention {
            let _ = retention.join();
        }
    }

    /// Describes a source in-process. Blocking: call it off the HTTP threads.
    pub fn probe(&self, source: &Source) -> Result<VideoInfo, MediaError> {
        media::probe(
            source,
            self.config.probe_timeout,
            self.config.max_frame_pixels,
            &StopToken::new(),
        )
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

/// Keeps the state file true when a session ends by itself (a file completes, a camera
/// gives up), on a thread of its own that listens to the cameras' events.
fn save_when_sessions_end(registry: Arc<Registry>, saved: Arc<StateFile>) -> std::io::Result<()> {
    let mut events = registry.events().subscribe();
    thread::Builder::new()
        .name("state-file".into())
        .spawn(move || loop {
            match events.blocking_recv() {
                Ok(event) if matches!(event.change, Change::Finished { .. }) => {
                    saved.save_running(&registry);
                }
                Ok(_) => {}
                // Missed events may have included an end: look again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    saved.save_running(&registry);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        })
        .map(drop)
}
