//! `GET /metrics` of the real daemon with a camera writing frames, read by the
//! OpenMetrics parser of the Python `prometheus_client` package: every family is there,
//! with the camera's label and values that fit what the camera did.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{h264_small, place, Daemon, Reply, BASE};
use serde_json::Value;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Parses OpenMetrics text into `[{name, type, samples: [{name, labels, value}]}]`;
/// any syntax error, or a NaN or infinite value, fails it.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = [
    {"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families, allow_nan=False))
"#;

/// The Python that has `prometheus_client`: `VIDEO_PIPELINE_TEST_PYTHON` (set by
/// scripts/test.sh), else `python3` when it can import it.
fn python() -> String {
    common::test_python("prometheus_client", "prometheus_client")
}

fn parse(python: &str, text: &str) -> Vec<Value> {
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The root route is outside the API base, which `Daemon::get` adds.
fn get_root(daemon: &Daemon, path: &str) -> Reply {
    let url = format!("http://127.0.0.1:{}{path}", daemon.port);
    match ureq::get(&url).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from(r),
        Err(e) => panic!("{url}: {e}"),
    }
}

struct Scrape(Vec<Value>);

impl Scrape {
    fn family(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    /// The value of the sample `sample` of family `family` whose labels include `labels`.
    fn value(&self, family: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
        let samples = self.family(family)["samples"].as_array().unwrap();
        let found = samples
            .iter()
            .find(|s| s["name"] == sample && labels.iter().all(|(k, v)| s["labels"][*k] == *v));
        found.unwrap_or_else(|| panic!("no {sample}{labels:?} in {samples:?}"))["value"]
            .as_f64()
            .unwrap()
    }

    fn camera(&self, family: &str, sample: &str, camera: &str) -> f64 {
        self.value(family, sample, &[("camera", camera)])
    }
}

#[test]
fn metrics_have_every_series_of_a_camera_and_of_the_process() {
    let python = python();
    // A stopped camera is forgotten 3 s after its end, its series with it.
    let daemon = Daemon::start_with(&[("STOPPED_FOLDER_TTL_SECONDS", "3")]);
    let clip = place(&daemon, &h264_small(3));
    let fields = [
        ("camera_id", "metered"),
        ("url", clip.to_str().unwrap()),
        ("fps", "10"),
        ("realtime", "true"),
        ("loop", "true"),
        ("max_frames", "2"),
    ];
    daemon.post_form("/decode/", &fields).assert_ok();
    daemon.wait_status("metered", Duration::from_secs(30), |s| {
        s["frames_deleted"].as_u64().unwrap_or(0) >= 1
    });

    let reply = get_root(&daemon, "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
    let text = String::from_utf8(reply.body.clone()).unwrap();
    let scrape = Scrape(parse(&python, &text));

    let cam = |family: &str, sample: &str| scrape.camera(family, sample, "metered");
    let p = "video_pipeline_";
    let frames = format!("{p}frames_written");
    assert!(cam(&frames, &format!("{frames}_total")) >= 3.0, "{text}");
    assert_eq!(scrape.family(&frames)["type"], "counter");
    let restarts = format!("{p}camera_restarts");
    assert_eq!(cam(&restarts, &format!("{restarts}_total")), 0.0);
    let dropped = format!("{p}frames_dropped");
    let deleted = format!("{p}frames_deleted");
    assert!(cam(&deleted, &format!("{deleted}_total")) >= 1.0, "{text}");
    let paused = format!("{p}writing_paused");
    assert_eq!(cam(&paused, &paused), 0.0, "{text}");
    for reason in ["corrupt", "write_failed", "queue_full", "disk_full"] {
        let labels = [("camera", "metered"), ("reason", reason)];
        assert_eq!(
            scrape.value(&dropped, &format!("{dropped}_total"), &labels),
            0.0
        );
    }
    let up = format!("{p}camera_up");
    assert_eq!(cam(&up, &up), 1.0);
    let phase = format!("{p}camera_phase");
    for (each, value) in [
        ("connecting", 0.0),
        ("streaming", 1.0),
        ("reconnecting", 0.0),
        ("finished", 0.0),
    ] {
        let labels = [("camera", "metered"), ("phase", each)];
        assert_eq!(scrape.value(&phase, &phase, &labels), value);
    }
    let age = format!("{p}last_frame_age_seconds");
    assert!((0.0..5.0).contains(&cam(&age, &age)), "{text}");
    let fps = format!("{p}measured_fps");
    assert!(cam(&fps, &fps) > 0.0, "{text}");
    let backend = format!("{p}decoder_backend");
    let labels = [("camera", "metered"), ("backend", "none")];
    assert_eq!(scrape.value(&backend, &backend, &labels), 1.0);
    for histogram in ["decode_duration_seconds", "jpeg_encode_duration_seconds"] {
        let name = format!("{p}{histogram}");
        assert_eq!(scrape.family(&name)["type"], "histogram");
        let count = cam(&name, &format!("{name}_count"));
        assert!(count > 0.0, "{name}: {text}");
        assert!(cam(&name, &format!("{name}_sum")) > 0.0, "{name}: {text}");
        let labels = [("camera", "metered"), ("le", "+Inf")];
        assert_eq!(
            scrape.value(&name, &format!("{name}_bucket"), &labels),
            count
        );
    }
    // Every frame written was encoded; more were decoded than sampled at 10 of 25 fps.
    let decoded = cam(
        &format!("{p}decode_duration_seconds"),
        &format!("{p}decode_duration_seconds_count"),
    );
    let encoded = cam(
        &format!("{p}jpeg_encode_duration_seconds"),
        &format!("{p}jpeg_encode_duration_seconds_count"),
    );
    assert!(decoded > encoded, "{decoded} decoded, {encoded} encoded");

    let process = |name: &str, sample: &str| scrape.value(&format!("{p}{name}"), sample, &[]);
    assert!(
        process(
            "process_cpu_seconds",
            &format!("{p}process_cpu_seconds_total")
        ) > 0.0
    );
    for gauge in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
        "output_filesystem_available_bytes",
        "output_filesystem_size_bytes",
        "encoder_queue_capacity_frames",
    ] {
        let value = process(gauge, &format!("{p}{gauge}"));
        assert!(value > 0.0, "{gauge} = {value}");
    }
    let queued = process("encoder_queue_frames", &format!("{p}encoder_queue_frames"));
    assert!(queued >= 0.0);
    let available = process(
        "output_filesystem_available_bytes",
        &format!("{p}output_filesystem_available_bytes"),
    );
    let size = process(
        "output_filesystem_size_bytes",
        &format!("{p}output_filesystem_size_bytes"),
    );
    assert!(available <= size);

    // The same text under the API base, with and without the trailing slash.
    for path in ["/metrics", "/metrics/"] {
        let reply = daemon.get(&format!("{BASE}{path}"));
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(OPENMETRICS));
        assert!(String::from_utf8_lossy(&reply.body).ends_with("# EOF\n"));
    }

    // A stopped camera stays listed, down, until it is removed from the registry.
    daemon
        .post_form("/decode/stop/", &[("camera_id", "metered")])
        .assert_ok();
    daemon.wait_status("metered", Duration::from_secs(10), |s| {
        s["status"] == "stopped"
    });
    let text = String::from_utf8(get_root(&daemon, "/metrics").body).unwrap();
    let scrape = Scrape(parse(&python, &text));
    assert_eq!(scrape.camera(&up, &up, "metered"), 0.0);
    let labels = [("camera", "metered"), ("phase", "finished")];
    assert_eq!(scrape.value(&phase, &phase, &labels), 1.0);

    // Forgotten after STOPPED_FOLDER_TTL_SECONDS: no series names the camera any more.
    daemon.wait_status("metered", Duration::from_secs(15), |s| {
        s["status"] == "not_started"
    });
    let text = String::from_utf8(get_root(&daemon, "/metrics").body).unwrap();
    parse(&python, &text);
    assert!(!text.contains("metered"), "{text}");
}
