//! `LOG_FORMAT=json` on the real binary: a camera on a stream libav cannot decode,
//! where libav itself complains, and every line of the run must be one JSON object,
//! the camera's lines (ours and libav's) naming the camera, libav's within the rate
//! limit.

mod common;

use std::time::{Duration, Instant};

use common::rtsp::start_camera;
use common::servers::GarbageTsServer;
use common::Daemon;
use serde_json::Value;

const CAMERA: &str = "noisy-cam";
/// libav's burst of lines per camera, plus one a second after it (src/media/libav_log.rs).
const BURST_LINES: usize = 20;

fn parse_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}\n{log}"))
        })
        .collect()
}

#[test]
fn json_lines_parse_and_carry_the_camera_id_also_for_libav() {
    let garbage = GarbageTsServer::start();
    // Two decoder threads: libav's own threads log too, and must be attributed.
    let mut daemon = Daemon::start_with(&[
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
        ("DECODE_THREADS", "2"),
    ]);
    let url = format!("http://127.0.0.1:{}/live", garbage.port);
    let started = Instant::now();
    start_camera(&daemon, CAMERA, &url);
    // libav's decoder complains about every undecodable packet, hundreds a second:
    // once the burst is used up, a second more shows the limit holding.
    let deadline = Instant::now() + Duration::from_secs(15);
    while daemon.log_text().matches("\"target\":\"libav").count() < BURST_LINES {
        assert!(
            Instant::now() < deadline,
            "libav said too little:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let reply = daemon.post_form("/decode/stop/", &[("camera_id", CAMERA)]);
    assert_eq!(reply.status, 200);
    let ran = started.elapsed();
    let (code, _) = daemon.terminate();
    assert_eq!(code, Some(0), "{}", daemon.log_text());

    let log = daemon.log_text();
    let lines = parse_lines(&log);
    for line in &lines {
        for field in ["time", "level", "target", "message"] {
            assert!(line[field].is_string(), "no {field}: {line}");
        }
        assert!(line.as_object().unwrap().contains_key("camera"), "{line}");
        let time = line["time"].as_str().unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
            "not RFC 3339 UTC with milliseconds: {time}"
        );
    }
    // Only this camera ran: every line of libav's and of the camera's own is its.
    let about_camera = |line: &&Value| {
        let target = line["target"].as_str().unwrap();
        let message = line["message"].as_str().unwrap();
        target.starts_with("libav")
            || target.starts_with("video_pipeline::camera::worker")
            || target.starts_with("video_pipeline::media")
            || message.contains(CAMERA)
            || message.contains("stop requested")
    };
    let camera_lines: Vec<&Value> = lines.iter().filter(about_camera).collect();
    for line in &camera_lines {
        assert_eq!(line["camera"], CAMERA, "{line}");
    }
    let messages: Vec<&str> = camera_lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    for ours in ["starting: http://", "stop requested", "stopped after"] {
        assert!(
            messages.iter().any(|m| m.starts_with(ours)),
            "no {ours:?} line, or the id is still in the text:\n{log}"
        );
    }
    let libav = camera_lines
        .iter()
        .filter(|l| l["target"].as_str().unwrap().starts_with("libav"))
        .count();
    assert!(libav >= 1, "no libav line:\n{log}");
    // The flood went on past the burst: what was held back is counted at the end.
    let suppressed = camera_lines
        .iter()
        .filter_map(|l| l["message"].as_str()?.strip_prefix("suppressed "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum::<u64>();
    assert!(suppressed > 0, "nothing suppressed in a flood:\n{log}");
    let allowed = BURST_LINES + ran.as_secs() as usize + 2;
    assert!(
        libav <= allowed,
        "{libav} libav lines in {ran:?}, the rate limit allows {allowed}:\n{log}"
    );
    eprintln!(
        "{} lines, {libav} from libav in {ran:?}, {suppressed} suppressed; {} TS packets sent",
        lines.len(),
        garbage.packets()
    );
}
