//! Several replicas sharing the cameras (docs/scaling.md), as real daemons on loopback:
//! thirty cameras started through one replica of three, and six from one config file
//! given to all, run once each, on their owners; every replica answers about every
//! camera with its owner's answer; a killed replica's cameras come back with it; and
//! after a rescale to four replicas every camera still runs exactly once, on its new
//! owner, the moved ones handed over from the state files of their old owners; and so
//! after the first step of a scale-down back to three, the fourth replica leaving.
//! With authentication on, the hand-over carries the replicas' own key.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{free_port, h264_small, Daemon, Reply};
use serde_json::Value;
use video_pipeline::shard::owner;

const CAMERAS: usize = 30;
const FROM_FILE: usize = 6;
const SETTLE: Duration = Duration::from_secs(40);
const FORWARDED_BY: &str = "X-Video-Pipeline-Forwarded-By";

/// The environment of replica `index` of `count`, all on loopback.
fn replica_env(index: usize, count: usize, ports: &[u16], shared: &Path) -> Vec<(String, String)> {
    let peers: Vec<String> = ports[..count]
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    vec![
        ("SHARD_COUNT".into(), count.to_string()),
        ("SHARD_INDEX".into(), index.to_string()),
        ("PEER_URLS".into(), peers.join(",")),
        ("ALLOWED_INPUT_DIRS".into(), shared.display().to_string()),
        (
            "CONFIG_FILE".into(),
            shared.join("cameras.toml").display().to_string(),
        ),
    ]
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Distinct free ports.
fn ports(n: usize) -> Vec<u16> {
    let mut ports = BTreeSet::new();
    while ports.len() < n {
        ports.insert(free_port());
    }
    ports.into_iter().collect()
}

/// A looped clip at 1 fps, keyframes only: cheap enough for dozens at once.
fn camera_fields<'a>(id: &'a str, clip: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("camera_id", id),
        ("url", clip),
        ("fps", "1"),
        ("loop", "true"),
        ("realtime", "true"),
        ("sampling", "keyframes"),
        ("force_format", "none"),
    ]
}

/// Camera id → (replica, status) of every replica whose own `cameras/` lists it.
fn placement(daemons: &[Daemon]) -> BTreeMap<String, Vec<(usize, Value)>> {
    let mut found: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
    for (index, daemon) in daemons.iter().enumerate() {
        let list = daemon.get("/cameras/");
        list.assert_ok();
        for camera in list.json()["cameras"].as_array().unwrap() {
            let id = camera["camera_id"].as_str().unwrap().to_owned();
            found.entry(id).or_default().push((index, camera.clone()));
        }
    }
    found
}

/// Waits until each of `running` runs, with a frame written, on its owner of `count`
/// replicas and is listed by no other replica, and none of `stopped` runs anywhere.
fn wait_each_runs_once_on_its_owner(
    daemons: &[Daemon],
    count: usize,
    running: &BTreeSet<String>,
    stopped: &BTreeSet<String>,
) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let found = placement(daemons);
        let mut wrong = Vec::new();
        for id in running {
            let on = found.get(id).map(Vec::as_slice).unwrap_or_default();
            let fine = matches!(on, [(replica, status)]
                if *replica == owner(id, count)
                    && status["status"] == "running"
                    && status["frame_count"].as_u64() >= Some(1));
            if !fine {
                let listed: Vec<String> = on
                    .iter()
                    .map(|(r, s)| format!("replica {r}: {}", s["status"]))
                    .collect();
                wrong.push(format!("{id} (owner {}): {listed:?}", owner(id, count)));
            }
        }
        for id in stopped {
            let on = found.get(id).map(Vec::as_slice).unwrap_or_default();
            if on.iter().any(|(_, s)| s["status"] == "running") {
                wrong.push(format!("{id} runs although it was stopped"));
            }
        }
        let unknown: Vec<&String> = found
            .keys()
            .filter(|id| !running.contains(*id) && !stopped.contains(*id))
            .collect();
        if wrong.is_empty() && unknown.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = daemons.iter().map(Daemon::log_text).collect();
            panic!(
                "not every camera runs once on its owner of {count}:\n{}\nunknown: {unknown:?}\n{}",
                wrong.join("\n"),
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the camera's session on `daemon` has ended and its status no longer
/// changes.
fn settled_status(daemon: &Daemon, id: &str) -> Reply {
    let path = format!("/decode/status/?camera_id={id}");
    let deadline = Instant::now() + SETTLE;
    let mut last = daemon.get(&path);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = daemon.get(&path);
        if now.body == last.body && now.json()["phase"] == "finished" {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never settled: {}",
            now.json()
        );
        last = now;
    }
}

fn without_date(reply: &Reply) -> BTreeMap<String, String> {
    reply
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn assert_same_answer(owner: &Reply, other: &Reply, what: &str) {
    assert_eq!(owner.status, other.status, "{what}");
    assert_eq!(owner.body, other.body, "{what}");
    assert_eq!(without_date(owner), without_date(other), "{what}");
}

/// The saved camera ids in a replica's state file.
fn saved_ids(state_file: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(state_file) else {
        return BTreeSet::new();
    };
    let saved: Value = serde_json::from_str(&text).unwrap();
    saved["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fields"]["camera_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until each replica's state file holds exactly the cameras it owns of `count`
/// (those not from the config file, which are never saved).
fn wait_saved_on_owners(
    daemons: &[Daemon],
    count: usize,
    running: &BTreeSet<String>,
    boot: &[String],
) {
    let deadline = Instant::now() + SETTLE;
    for (index, daemon) in daemons.iter().enumerate() {
        let expected: BTreeSet<String> = running
            .iter()
            .filter(|id| !boot.contains(*id) && owner(id, count) == index)
            .cloned()
            .collect();
        while saved_ids(&daemon.state_file) != expected {
            assert!(
                Instant::now() < deadline,
                "replica {index} of {count} saves {:?}, not {expected:?}",
                saved_ids(&daemon.state_file)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The first id `prefix-N` for which `wanted` holds.
fn id_where(prefix: &str, wanted: impl Fn(&str) -> bool) -> String {
    (0..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| wanted(id))
        .unwrap()
}

#[test]
fn replicas_share_the_cameras_answer_for_each_other_and_survive_a_kill_and_a_rescale() {
    let started = Instant::now();
    let shared = tempfile::tempdir().unwrap();
    let clip: PathBuf = shared.path().join("clip.mp4");
    std::fs::copy(h264_small(2), &clip).unwrap();
    let clip_text = clip.display().to_string();
    let boot: Vec<String> = (0..FROM_FILE).map(|n| format!("boot-{n}")).collect();
    let config: String = boot
        .iter()
        .map(|id| {
            format!(
                "[[camera]]\nid = \"{id}\"\nurl = \"{clip_text}\"\nfps = 1\nloop = true\n\
                 realtime = true\nsampling = \"keyframes\"\nforce_format = \"none\"\n\n"
            )
        })
        .collect();
    std::fs::write(shared.path().join("cameras.toml"), config).unwrap();
    let ports = ports(4);
    let mut daemons: Vec<Daemon> = (0..3)
        .map(|i| {
            Daemon::start_on(
                ports[i],
                &borrowed(&replica_env(i, 3, &ports, shared.path())),
            )
        })
        .collect();

    // Thirty cameras, all started through replica 0: each answer is its owner's.
    let ids: Vec<String> = (0..CAMERAS).map(|n| format!("cam-{n:02}")).collect();
    for id in &ids {
        let reply = daemons[0].post_form("/decode/", &camera_fields(id, &clip_text));
        reply.assert_ok();
        let answer = reply.json();
        assert_eq!(answer["status"], "started", "{answer}");
        let folder = daemons[owner(id, 3)].output.join(id);
        assert_eq!(answer["output_folder"], folder.display().to_string());
    }
    // An upload through a replica that does not own the camera, to one that gives the
    // camera up to the fourth replica later on: the file travels both times.
    let uploaded = id_where("upload", |id| owner(id, 3) != 0 && owner(id, 4) == 3);
    let clip_bytes = std::fs::read(&clip).unwrap();
    let mut upload_fields = camera_fields(&uploaded, "");
    upload_fields.retain(|(name, _)| *name != "url");
    let reply = daemons[0].post_multipart(
        "/decode/",
        &upload_fields,
        &[("file", "clip.mp4", clip_bytes.as_slice())],
    );
    reply.assert_ok();
    let mut running: BTreeSet<String> = ids.iter().chain(&boot).cloned().collect();
    running.insert(uploaded.clone());
    let mut stopped = BTreeSet::new();
    wait_each_runs_once_on_its_owner(&daemons, 3, &running, &stopped);
    for (index, daemon) in daemons.iter().enumerate() {
        let owned = ids.iter().filter(|id| owner(id, 3) == index).count();
        assert!(owned >= 3, "replica {index} owns {owned} of {CAMERAS}");
        for id in &ids {
            assert_eq!(
                daemon.camera_dir(id).exists(),
                owner(id, 3) == index,
                "{id}"
            );
        }
    }
    let upload_owner = &daemons[owner(&uploaded, 3)];
    let source = upload_owner.status(&uploaded)["source"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        source.starts_with(&upload_owner.uploads.display().to_string()),
        "{source}"
    );

    // Stop, status and latest-frame through any replica: the owner's answers, byte for
    // byte. One camera of each replica, stopped through the next one.
    for owned_by in 0..3 {
        let id = ids.iter().find(|id| owner(id, 3) == owned_by).unwrap();
        let (next, third) = ((owned_by + 1) % 3, (owned_by + 2) % 3);
        let reply = daemons[next].post_form("/decode/stop/", &[("camera_id", id)]);
        reply.assert_ok();
        assert_eq!(reply.json()["message"], "Decoding stopped");
        running.remove(id);
        stopped.insert(id.clone());
        let own = settled_status(&daemons[owned_by], id);
        for other in [next, third] {
            let path = format!("/decode/status/?camera_id={id}");
            assert_same_answer(&own, &daemons[other].get(&path), "status");
        }
        let frame_path = format!("/latest-frame/?camera_id={id}");
        let frame = daemons[owned_by].get(&frame_path);
        frame.assert_ok();
        assert_eq!(&frame.body[..2], [0xFF, 0xD8]);
        let etag = frame.header("etag").unwrap().to_owned();
        let not_modified = daemons[owned_by].get_with(&frame_path, &[("If-None-Match", &etag)]);
        assert_eq!(not_modified.status, 304);
        for other in [next, third] {
            assert_same_answer(&frame, &daemons[other].get(&frame_path), "latest-frame");
            let forwarded = daemons[other].get_with(&frame_path, &[("If-None-Match", &etag)]);
            assert_same_answer(&not_modified, &forwarded, "latest-frame 304");
        }
        let stop_again =
            |d: &Daemon| d.post_json("/decode/stop/", serde_json::json!({ "camera_id": id }));
        assert_same_answer(
            &stop_again(&daemons[owned_by]),
            &stop_again(&daemons[third]),
            "stop",
        );
    }

    // mjpeg/ through a replica that does not own the camera: the owner's stream.
    let streamed = ids
        .iter()
        .find(|id| owner(id, 3) == 2 && running.contains(*id))
        .unwrap();
    let stream = ureq::get(&daemons[0].url(&format!("/mjpeg/?camera_id={streamed}")))
        .call()
        .unwrap();
    assert_eq!(
        stream.header("content-type"),
        Some("multipart/x-mixed-replace; boundary=frame")
    );
    let mut first_part = vec![0; 200];
    stream.into_reader().read_exact(&mut first_part).unwrap();
    let head = String::from_utf8_lossy(&first_part);
    assert!(head.contains("Content-Type: image/jpeg"), "{head}");

    // A forwarded request that reaches a replica not owning the camera is a loop.
    let of_zero = ids.iter().find(|id| owner(id, 3) == 0).unwrap();
    let looped = daemons[1].get_with(
        &format!("/decode/status/?camera_id={of_zero}"),
        &[(FORWARDED_BY, "2")],
    );
    assert_eq!(looped.status, 508, "{}", looped.detail());
    assert!(
        looped.detail().contains("SHARD_COUNT"),
        "{}",
        looped.detail()
    );

    // cameras/ shows a replica's own; ?all=true every replica's.
    let all = daemons[2].get("/cameras/?all=true").json();
    let listed: BTreeSet<&str> = all["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap())
        .collect();
    assert_eq!(all["count"], running.len() + stopped.len());
    assert_eq!(listed.len(), running.len() + stopped.len());
    let stopped_list = daemons[1].get("/cameras/?all=true&status=stopped").json();
    assert_eq!(stopped_list["count"], stopped.len(), "{stopped_list}");

    // A replica killed: its cameras are a quick 503 elsewhere, then come back with it.
    daemons[2].kill();
    let of_two = running.iter().find(|id| owner(id, 3) == 2).unwrap();
    let asked = Instant::now();
    let gone = daemons[0].get(&format!("/decode/status/?camera_id={of_two}"));
    assert_eq!(gone.status, 503, "{}", gone.detail());
    assert!(gone.detail().contains("replica 2"), "{}", gone.detail());
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(daemons[0].get("/cameras/?all=true").status, 503);
    daemons[2].restart_with(&borrowed(&replica_env(2, 3, &ports, shared.path())));
    wait_each_runs_once_on_its_owner(&daemons, 3, &running, &stopped);
    let after_kill = started.elapsed();

    // Rescale: the three restarted as replicas of four, and a fourth.
    for (index, daemon) in daemons.iter_mut().enumerate() {
        daemon.restart_with(&borrowed(&replica_env(index, 4, &ports, shared.path())));
    }
    daemons.push(Daemon::start_on(
        ports[3],
        &borrowed(&replica_env(3, 4, &ports, shared.path())),
    ));
    wait_each_runs_once_on_its_owner(&daemons, 4, &running, &BTreeSet::new());
    let moved = running
        .iter()
        .filter(|id| owner(id, 3) != owner(id, 4))
        .count();
    assert!(moved >= 3, "only {moved} cameras moved");
    // The moved cameras left their old owners' state files once handed over.
    wait_saved_on_owners(&daemons, 4, &running, &boot);

    // Scaling down, first step: all restarted with a count of three; the fourth owns
    // nothing now and hands everything over.
    for (index, daemon) in daemons.iter_mut().enumerate() {
        daemon.restart_with(&borrowed(&replica_env(index, 3, &ports, shared.path())));
    }
    wait_each_runs_once_on_its_owner(&daemons, 3, &running, &BTreeSet::new());
    wait_saved_on_owners(&daemons, 3, &running, &boot);
    eprintln!(
        "sharding: three replicas up to the kill and restart in {after_kill:?}, the rescale \
         to four and back done at {:?}",
        started.elapsed()
    );
}

#[test]
fn with_authentication_a_rescale_hands_cameras_over_with_the_peer_key() {
    const KEY: &str = "replicas-control-key-0123456789";
    let shared = tempfile::tempdir().unwrap();
    let clip: PathBuf = shared.path().join("clip.mp4");
    std::fs::copy(h264_small(2), &clip).unwrap();
    std::fs::write(shared.path().join("cameras.toml"), "").unwrap();
    let ports = ports(3);
    let env = |index: usize, count: usize| {
        let mut env = replica_env(index, count, &ports, shared.path());
        env.push(("API_KEYS".into(), format!("{KEY}:control")));
        env.push(("PEER_API_KEY".into(), KEY.into()));
        env
    };
    let authorized = [("Authorization", &*format!("Bearer {KEY}"))];
    let mut daemons: Vec<Daemon> = (0..2)
        .map(|i| Daemon::start_on(ports[i], &borrowed(&env(i, 2))))
        .collect();
    // One camera of each old replica that the third one takes over.
    let moving: Vec<String> = (0..2)
        .map(|from| id_where("moving", |id| owner(id, 2) == from && owner(id, 3) == 2))
        .collect();
    let clip_text = clip.display().to_string();
    for id in &moving {
        let fields = camera_fields(id, &clip_text);
        let reply = daemons[0].post_form_with("/decode/", &fields, &authorized);
        assert_eq!(reply.status, 200, "{}", reply.detail());
    }
    for (from, id) in moving.iter().enumerate() {
        while saved_ids(&daemons[from].state_file).len() != 1 {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(saved_ids(&daemons[from].state_file).contains(id));
    }

    for (index, daemon) in daemons.iter_mut().enumerate() {
        daemon.restart_with(&borrowed(&env(index, 3)));
    }
    daemons.push(Daemon::start_on(ports[2], &borrowed(&env(2, 3))));
    let deadline = Instant::now() + SETTLE;
    for id in &moving {
        let path = format!("/decode/status/?camera_id={id}");
        loop {
            let status = daemons[2].get_with(&path, &authorized).json();
            if status["status"] == "running" && status["frame_count"].as_u64() >= Some(1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} was not handed over: {status}\n{}",
                daemons
                    .iter()
                    .map(Daemon::log_text)
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for (from, daemon) in daemons.iter().enumerate().take(2) {
        let deadline = Instant::now() + SETTLE;
        while !saved_ids(&daemon.state_file).is_empty() {
            assert!(Instant::now() < deadline, "replica {from} kept its camera");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
