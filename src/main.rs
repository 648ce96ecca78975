//! The `video-pipeline` binary: arguments and environment → validated config, logging,
//! then the daemon (`serve`, the default), `probe` or `extract`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::web;
use clap::{Args, Parser, Subcommand};

use video_pipeline::camera::{extract, Admission, Registry, Supervisor, ValidStart};
use video_pipeline::config::{self, Config, ConfigFile, RawValues};
use video_pipeline::logging::LogFormat;
use video_pipeline::media::hw::HwChoice;
use video_pipeline::metrics::Metrics;
use video_pipeline::sampling::{Fps, Sampling};
use video_pipeline::shape::{self, Crop, FrameShape};
use video_pipeline::source::Source;
use video_pipeline::stop::StopToken;
use video_pipeline::{http, logging, media, VERSION};

/// Exit code for a configuration value that cannot be used.
const EXIT_CONFIG: u8 = 2;
/// How long workers get to finish at shutdown (the whole exit stays under 5 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Parser)]
#[command(name = "video-pipeline", version = VERSION, about = "Camera streams and video files to JPEG frames")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Serve(ServeArgs),
    /// Print a source's video information as JSON.
    Probe {
        /// A file path or URL.
        input: String,
        /// Seconds to wait for a network source.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Extract frames once into a folder, then exit.
    Extract {
        /// A file path or URL.
        input: String,
        /// Frames per second to extract (> 0, <= 60).
        #[arg(long, default_value_t = Fps::DEFAULT)]
        fps: Fps,
        /// Output folder (cleared of old frames first).
        #[arg(long)]
        out: PathBuf,
        /// JPEG quality 1..100.
        #[arg(long, default_value_t = config::DEFAULT_JPEG_QUALITY)]
        quality: u8,
        /// exact: the frames full decoding chooses, decoding only what they need;
        /// keyframes: keyframes only, at most --fps per second; all: decode every frame.
        #[arg(long, default_value = "exact", value_parser = parse_sampling)]
        sampling: Sampling,
        /// Same as --sampling all.
        #[arg(long)]
        decode_all: bool,
        /// Take each sampled frame out of the decoder as soon as it can, as for a
        /// live source, at the cost of decoding a few frames more.
        #[arg(long)]
        low_latency: bool,
        /// Decoder threads (0: libav's choice, one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Hardware decoding: none, auto, cuda, qsv, vaapi, ...; software when it fails.
        #[arg(long, default_value = "none", value_parser = parse_hwaccel)]
        hwaccel: HwChoice,
        /// Frame width (even, 16..8192); alone, the height follows the aspect ratio.
        #[arg(long, value_parser = |v: &str| parse_side("width", v))]
        width: Option<u32>,
        /// Frame height (even, 16..8192); alone, the width follows the aspect ratio.
        #[arg(long, value_parser = |v: &str| parse_side("height", v))]
        height: Option<u32>,
        /// Shrink the longest side to this (even, 16..8192), never enlarging.
        #[arg(long, value_parser = |v: &str| parse_side("max_side", v))]
        max_side: Option<u32>,
        /// Region of interest x,y,w,h in source pixels (even), taken before scaling.
        #[arg(long, value_parser = parse_crop)]
        crop: Option<Crop>,
    },
}

/// The `serve` flags: one per setting of [`config::SETTINGS`], each overriding the
/// variable of the same name, made from the table so that `--help` lists them all.
#[derive(Default)]
struct ServeArgs {
    values: Vec<(&'static str, String)>,
}

impl ServeArgs {
    fn apply(self, raw: &mut RawValues) {
        for (name, value) in self.values {
            if !value.trim().is_empty() {
                raw.insert(name, value);
            }
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, v)| *n == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for setting in config::SETTINGS.iter().filter(|s| s.flag.is_some()) {
            if let Some(value) = matches.get_one::<String>(setting.name) {
                self.values.push((setting.name, value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let command = command.after_help(environment_only_help());
        config::SETTINGS.iter().fold(command, |command, setting| {
            let Some(flag) = setting.flag else {
                return command;
            };
            let default = if setting.default.is_empty() {
                String::new()
            } else {
                format!(" [default: {}]", setting.default)
            };
            command.arg(
                clap::Arg::new(setting.name)
                    .long(flag)
                    .value_name("VALUE")
                    .help(format!(
                        "{} [env: {}]{default}",
                        setting.meaning, setting.name
                    )),
            )
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        ServeArgs::augment_args(command)
    }
}

/// The settings that have no flag, for the end of `--help`.
fn environment_only_help() -> String {
    let mut help = String::from("Read from the environment only:\n");
    for setting in config::SETTINGS.iter().filter(|s| s.flag.is_none()) {
        let default = if setting.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", setting.default)
        };
        help.push_str(&format!(
            "  {}  {}{default}\n",
            setting.name, setting.meaning
        ));
    }
    help.push_str("Precedence: flags, then the environment, then CONFIG_FILE, then the defaults.");
    help
}

fn main() -> ExitCode {
    let log_format = config::raw_from_env().remove("LOG_FORMAT");
    let log_format = match config::parse_log_format(log_format.as_deref()) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("video-pipeline: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    logging::init(log_format);
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve, log_format),
        Some(Command::Serve(args)) => serve(args, log_format),
        Some(Command::Probe { input, timeout }) => probe(&input, timeout),
        Some(Command::Extract {
            input,
            fps,
            out,
            quality,
            sampling,
            decode_all,
            low_latency,
            threads,
            hwaccel,
            width,
            height,
            max_side,
            crop,
        }) => {
            let shape = match FrameShape::new(width, height, max_side, crop) {
                Ok(shape) => shape,
                Err(e) => {
                    eprintln!("video-pipeline: {}", e.message);
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let job = extract::Job {
                shape,
                fps,
                jpeg_quality: quality,
                threads,
                hwaccel,
                sampling: if decode_all { Sampling::All } else { sampling },
                low_latency,
            };
            extract_frames(&input, job, &out)
        }
    }
}

fn serve(args: ServeArgs, log_format: LogFormat) -> ExitCode {
    video_pipeline::memory::limit_arenas();
    let env = config::raw_from_env();
    let file_path = args
        .value("CONFIG_FILE")
        .or(env.get("CONFIG_FILE").map(String::as_str))
        .map(PathBuf::from);
    let file = match file_path.as_deref().map(ConfigFile::read).transpose() {
        Ok(file) => file.unwrap_or_default(),
        Err(e) => {
            cannot_serve(log_format, &e.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut raw = file.values.clone();
    raw.extend(env);
    args.apply(&mut raw);
    let config = match Config::load(&raw) {
        Ok(config) => Arc::new(config),
        Err(e) => {
            cannot_serve(log_format, &located(&e, &file, &raw));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let prepared = match http::server::prepare(&config) {
        Ok(prepared) => prepared,
        Err(message) => {
            cannot_serve(log_format, &message);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let boot_cameras = match validate_file_cameras(&file, &config) {
        Ok(cameras) => cameras,
        Err(message) => {
            cannot_serve(log_format, &message);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for name in ["FFMPEG_PATH", "FFPROBE_PATH"] {
        if raw.contains_key(name) {
            log::info!("{name} is ignored: decoding runs in-process with libav");
        }
    }
    media::init_with(config.max_frame_pixels);
    let registry = Arc::new(Registry::with_max_running(config.max_cameras));
    // Before any camera starts, so that the live event streams miss none of its events.
    let camera_events = registry.events().subscribe();
    let supervisor = match Supervisor::new(registry, Arc::clone(&config)) {
        Ok(supervisor) => Arc::new(supervisor),
        Err(e) => {
            cannot_serve(
                config.log_format,
                &format!("cannot start the JPEG encoder threads: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    // Read before the config file's cameras start: each start saves over the file.
    let saved = supervisor.load_saved();
    let from_file: Vec<_> = boot_cameras.iter().map(|c| c.id.clone()).collect();
    match &config.shard {
        Some(shard) if shard.is_leaving() => log::warn!(
            "replica {} is beyond SHARD_COUNT={}: it owns no camera, hands its saved ones over \
             and forwards every request (the first step of a scale-down)",
            shard.index(),
            shard.count()
        ),
        Some(shard) => log::info!(
            "replica {} of {}: runs the cameras whose ids hash to it",
            shard.index(),
            shard.count()
        ),
        None => {}
    }
    for ValidStart { id, mut settings } in boot_cameras {
        if !supervisor.owns(&id) {
            log::debug!(camera:% = id; "in the config file, owned by another replica");
            continue;
        }
        log::info!(camera:% = id; "starting from the config file");
        settings.from_config_file = true;
        // A boot is not a new session of the camera: its numbering goes on.
        settings.resume = true;
        if let Admission::Full { running, limit } = supervisor.start(&id, settings) {
            log::error!(
                camera:% = id;
                "not started from the config file: {running} cameras are running, MAX_CAMERAS is {limit}"
            );
        }
    }
    let handoffs = supervisor.restore(saved, &from_file);
    if let Err(e) = http::handoff::spawn(Arc::clone(&supervisor), handoffs) {
        log::error!("cannot start the hand-over thread: {e}");
    }
    if let Err(e) = video_pipeline::memory::spawn_periodic_trim() {
        log::warn!("cannot start the memory trim thread: {e}");
    }
    let warm = Arc::clone(&supervisor);
    std::thread::spawn(move || {
        let report = warm.hardware();
        let names: Vec<_> = report.available.iter().map(|b| b.as_str()).collect();
        log::info!("hardware decoders usable here: {names:?}");
    });

    let metrics = Metrics::new(
        Arc::clone(supervisor.registry()),
        Arc::clone(supervisor.encoders()),
        config.output_folder.clone(),
    );
    let events = match http::EventFeed::start(camera_events, Arc::clone(metrics.event_clients())) {
        Ok(events) => events,
        Err(e) => {
            cannot_serve(
                config.log_format,
                &format!("cannot start the live events thread: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    let state = web::Data::new(http::AppState {
        supervisor: Arc::clone(&supervisor),
        started: Instant::now(),
        metrics: Arc::new(metrics),
        events,
    });
    log::info!(
        "video-pipeline {VERSION} listening on {}://{}:{}, frames in {}",
        if config.tls.is_some() {
            "https"
        } else {
            "http"
        },
        config.host,
        config.port,
        config.output_folder.display()
    );
    log_access(&config);
    let served = http::server::run(state, &config, prepared);
    log::info!("shutting down: stopping cameras");
    supervisor.shutdown(SHUTDOWN_GRACE);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cannot_serve(
                config.log_format,
                &format!("cannot serve on {}:{}: {e}", config.host, config.port),
            );
            ExitCode::FAILURE
        }
    }
}

/// Says who may call the API: the methods when authentication is on (never a key),
/// a warning when it is off on an address that other machines may reach.
fn log_access(config: &Config) {
    if config.auth.is_on() {
        log::info!(
            "authentication on: {}; health/ and the status page's files stay open",
            config.auth.describe()
        );
    } else if !config.host.is_loopback() {
        log::warn!(
            "no authentication configured (API_KEYS, API_KEYS_FILE, JWT_SECRET or JWT_PUBLIC_KEY_FILE): \
             the API is open to anyone who can reach {}:{}",
            config.host,
            config.port
        );
    }
}

/// A configuration error, with the file and line when the value came from the file.
fn located(error: &config::ConfigError, file: &ConfigFile, raw: &RawValues) -> String {
    let name = error.variable();
    let from_file = file
        .values
        .get(name)
        .is_some_and(|v| raw.get(name) == Some(v));
    match file.lines.get(name) {
        Some(line) if from_file => format!("{}:{line}: {error}", file.path.display()),
        _ => error.to_string(),
    }
}

/// The file's cameras, each checked as `decode/` would check it.
fn validate_file_cameras(file: &ConfigFile, config: &Config) -> Result<Vec<ValidStart>, String> {
    file.cameras
        .iter()
        .map(|camera| {
            camera.request.validate(config).map_err(|e| {
                let id = camera
                    .request
                    .fields
                    .get("camera_id")
                    .map_or("", String::as_str);
                format!(
                    "{}:{}: camera {id:?}: {e}",
                    file.path.display(),
                    camera.line_of(e.field())
                )
            })
        })
        .collect()
}

/// Why the daemon cannot run, as one line on stderr whatever `RUST_LOG` says: plain
/// text, or in JSON one line like every other of a JSON log.
fn cannot_serve(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("video-pipeline: {message}"),
        LogFormat::Json => {
            let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            let line = logging::json_line(&now, log::Level::Error, "video_pipeline", None, message);
            eprint!("{line}");
        }
    }
}

fn parse_hwaccel(value: &str) -> Result<HwChoice, String> {
    HwChoice::parse(value)
        .ok_or_else(|| format!("{value:?} is not one of {}", HwChoice::allowed_values()))
}

fn parse_sampling(value: &str) -> Result<Sampling, String> {
    Sampling::parse(value).ok_or_else(|| format!("{value:?} is not one of exact, keyframes, all"))
}

/// On the command line the user may read any file they can open.
fn parse_side(field: &'static str, value: &str) -> Result<u32, String> {
    shape::parse_side(field, value).map_err(|e| e.message)
}

fn parse_crop(value: &str) -> Result<Crop, String> {
    Crop::parse(value).map_err(|e| e.message)
}

fn cli_source(input: &str) -> Result<Source, String> {
    let everywhere = [PathBuf::from("/")];
    Source::parse(input, &everywhere).map_err(|e| e.to_string())
}

fn probe(input: &str, timeout: f64) -> ExitCode {
    let Some(timeout) = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
    else {
        eprintln!("video-pipeline: invalid --timeout {timeout} (expected seconds > 0)");
        return ExitCode::from(EXIT_CONFIG);
    };
    let result = cli_source(input).and_then(|source| {
        media::probe(
            &source,
            timeout,
            media::DEFAULT_FRAME_LIMIT,
            &StopToken::new(),
        )
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(info) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&info).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("video-pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn extract_frames(input: &str, job: extract::Job, out: &std::path::Path) -> ExitCode {
    if !(1..=100).contains(&job.jpeg_quality) {
        eprintln!(
            "video-pipeline: invalid --quality {} (expected 1..100)",
            job.jpeg_quality
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let source = match cli_source(input) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("video-pipeline: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = StopToken::new();
    stop_on_signals(&stop);
    let bar = progress_bar();
    let result = extract::extract(&source, job, out, &stop, |frames, progress| {
        if let Some(bar) = &bar {
            bar.set_position(progress.map_or(0, |p| (p * 1000.0) as u64));
            bar.set_message(format!("{frames} frames"));
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(summary) => {
            eprintln!(
                "video-pipeline: {} frames written to {} ({} packets not needed, not decoded)",
                summary.frames,
                out.display(),
                summary.packets_skipped
            );
            match (summary.hwaccel.backend, summary.hwaccel.reason) {
                (None, Some(reason)) => eprintln!("video-pipeline: {reason}"),
                (None, None) => {}
                (Some(backend), _) => eprintln!("video-pipeline: decoded with {backend}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("video-pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1000);
    let style = indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({elapsed})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn stop_on_signals(stop: &StopToken) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = stop.clone();
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                stop.stop();
            }
        });
    }
}
