//! The operators' status page of the real daemon, in a real browser: headless Chromium
//! (`chromium`, from scripts/deps.sh's test group; `VIDEO_PIPELINE_TEST_CHROMIUM` names
//! another) renders it with two cameras writing frames, driven through the DevTools
//! protocol by a Python client (`websocket-client`, Pillow). Its screenshot must show
//! both thumbnails, its DOM both cameras and their states (and a third camera's error,
//! full of markup, as text), and a click on a camera's Stop button must stop that
//! camera, on the page and in the daemon.

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{h264_small, place, Daemon, Reply};
use serde_json::{json, Value};

const WINDOW: &str = "1280,720";

/// The DevTools side of a page session, shared by the scenarios below: the Chromium
/// whose profile is argv[1], its page's target, `call` (a protocol method),
/// `evaluate` (an expression's value) and `ROWS` (each camera row as the page shows it).
const DEVTOOLS: &str = r#"
import base64, json, sys, time, urllib.request
import websocket

profile = sys.argv[1]

def until(what, seconds, probe):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.05)

def port():
    try:
        return open(f"{profile}/DevToolsActivePort").read().split()[0]
    except (OSError, IndexError):
        return None

def page_target(port):
    try:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    except OSError:
        return None
    return next((t for t in targets if t["type"] == "page"), None)

debug_port = until("the DevTools port", 10, port)
target = until("the page", 10, lambda: page_target(debug_port))
ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
calls = 0

def call(method, params):
    global calls
    calls += 1
    ws.send(json.dumps({"id": calls, "method": method, "params": params}))
    while True:
        message = json.loads(ws.recv())
        if message.get("id") == calls:
            if "error" in message:
                sys.exit(f"{method}: {message['error']}")
            return message["result"]

def evaluate(expression):
    result = call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    if "exceptionDetails" in result:
        sys.exit(f"{expression}: {result['exceptionDetails']}")
    return result["result"].get("value")

ROWS = """(() => {
  const rows = {};
  for (const tr of document.querySelectorAll("tr[data-camera]")) {
    const img = tr.querySelector("td.thumb img");
    rows[tr.dataset.camera] = {
      status: tr.querySelector("td.state .status").textContent,
      stop_shown: !tr.querySelector("button.stop").hidden,
      thumb_width: img.complete ? img.naturalWidth : 0,
      thumb_shown: !img.hidden,
    };
  }
  return rows;
})()"""

def click_stop(camera):
    row = f"[...document.querySelectorAll('tr[data-camera]')].find(tr => tr.dataset.camera === {json.dumps(camera)})"
    evaluate(f"{row}.querySelector('button.stop').click()")
"#;

/// Waits until the cameras argv[3] and argv[4] show as running with a thumbnail,
/// takes a screenshot (to argv[2]) and the DOM, clicks argv[3]'s Stop button and waits
/// until its row says stopped. Prints the rows before and after, the DOM, how long the
/// page took to show the stop, and the screenshot's bands of colour: the page itself
/// is grey, the test pattern is not, so for each run of screen rows with at least 40
/// colourful pixels, its height and leftmost and rightmost column.
const PAGE_SESSION: &str = r#"
from PIL import Image

screenshot, stop_id, keep_id = sys.argv[2:5]

def colour_bands(path):
    image = Image.open(path).convert("RGB")
    width, height = image.size
    pixels = image.load()
    bands, current = [], None
    for y in range(height):
        xs = [x for x in range(width) if max(pixels[x, y]) - min(pixels[x, y]) > 100]
        if len(xs) >= 40:
            if current is None:
                current = {"top": y, "height": 0, "left": width, "right": 0}
                bands.append(current)
            current["height"] += 1
            current["left"] = min(current["left"], xs[0])
            current["right"] = max(current["right"], xs[-1])
        else:
            current = None
    return bands

def ready():
    rows = evaluate(ROWS) or {}
    shown = all(rows.get(c, {}).get("status") == "running" and rows[c]["thumb_shown"]
                for c in (stop_id, keep_id))
    return rows if shown else None

before = until("both cameras running with a thumbnail", 10, ready)
shot = call("Page.captureScreenshot", {"format": "png"})
with open(screenshot, "wb") as f:
    f.write(base64.b64decode(shot["data"]))
dom = evaluate("document.documentElement.outerHTML")
click_stop(stop_id)
clicked = time.monotonic()
until("the page to show the camera stopped", 5,
      lambda: evaluate(ROWS)[stop_id]["status"] == "stopped")
took = time.monotonic() - clicked
print(json.dumps({"before": before, "after": evaluate(ROWS), "seconds": took,
                  "dom": dom, "bands": colour_bands(screenshot)}))
"#;

/// With authentication on: waits until the page asks for a key, gives it the read key
/// argv[2], waits until camera argv[4] shows as running with its thumbnail and the
/// event stream is open (both sent by the browser with the page's cookie), clicks its
/// Stop button (refused: a read key), forgets the key, gives the control key argv[3]
/// and clicks Stop again. Prints what it saw at each step, with the cookies of the API.
const AUTH_SESSION: &str = r#"
read_key, control_key, camera = sys.argv[2:5]

def shown(element):
    return evaluate(f"(e => !!e && !e.hidden)(document.getElementById({json.dumps(element)}))")

def text(element):
    return evaluate(f"(e => e ? e.textContent : '')(document.getElementById({json.dumps(element)}))")

def login(key):
    evaluate(f"document.getElementById('key').value = {json.dumps(key)};"
             "document.getElementById('login').requestSubmit()")

def kept():
    api = evaluate("new URL('api/v1/video-pipeline/', location.href).href")
    cookies = call("Network.getCookies", {"urls": [api]})["cookies"]
    return {"session": evaluate("sessionStorage.getItem('video-pipeline-key')"),
            "cookies": [{k: c[k] for k in ("name", "value", "path", "sameSite", "session")}
                        for c in cookies]}

def watching():
    row = (evaluate(ROWS) or {}).get(camera)
    live = text("updates") == "live updates"
    return row if row and row["status"] == "running" and row["thumb_shown"] and live else None

until("the page to ask for a key", 10, lambda: shown("login"))
asked = {"reason": text("login-reason"), "rows": evaluate(ROWS)}
login(read_key)
reading = until("the camera with its thumbnail and live updates", 10, watching)
with_read_key = kept()
click_stop(camera)
refused = until("the refused stop", 5, lambda: shown("notice") and text("notice"))
evaluate("document.getElementById('forget').click()")
forgotten = dict(kept(), login=shown("login"))
login(control_key)
until("the Stop button", 5, lambda: (evaluate(ROWS) or {}).get(camera, {}).get("stop_shown"))
click_stop(camera)
until("the camera stopped", 5, lambda: evaluate(ROWS)[camera]["status"] == "stopped")
print(json.dumps({"asked": asked, "reading": reading, "with_read_key": with_read_key,
                  "refused": refused, "forgotten": forgotten, "after": evaluate(ROWS)}))
"#;

/// The Python with `websocket-client` and Pillow: `VIDEO_PIPELINE_TEST_PYTHON` (set by
/// scripts/test.sh), else `python3` when it can import both.
fn python() -> String {
    common::test_python("websocket, PIL", "websocket-client and Pillow")
}

/// Runs a Python script; its standard output as JSON, or what it said on failure.
fn run_python(python: &str, script: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(python)
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// A headless Chromium with its own throw-away profile (its log in there), killed
/// with all its processes on drop.
struct Browser {
    child: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start(args: &[&str], url: &str) -> Browser {
        let chromium =
            std::env::var("VIDEO_PIPELINE_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = tempfile::tempdir().unwrap();
        let log = File::create(profile.path().join("chromium.log")).unwrap();
        let child = Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--window-size={WINDOW}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {chromium}: {e} (install it with scripts/deps.sh test)")
            });
        Browser { child, profile }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The renderer and helper processes share the browser's process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// GET a path outside the API base, which `Daemon::get_with` adds.
fn get(daemon: &Daemon, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = ureq::get(&format!("http://127.0.0.1:{}{path}", daemon.port));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from(r),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// The HTML of the row of `camera` in a DOM dump.
fn row_of<'a>(dom: &'a str, camera: &str) -> &'a str {
    let start = dom
        .find(&format!("<tr data-camera=\"{camera}\">"))
        .unwrap_or_else(|| panic!("no row for {camera} in the page:\n{dom}"));
    let end = dom[start..].find("</tr>").unwrap() + start;
    &dom[start..end]
}

#[test]
fn root_gives_browsers_the_page_and_api_clients_the_json() {
    let daemon = Daemon::start();
    let greeting = json!({"message": "FFMPEG Video Pipeline API is running!"});
    for accept in [None, Some("*/*"), Some("application/json")] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let reply = get(&daemon, "/", &headers);
        assert_eq!(reply.status, 200, "{accept:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("vary"), Some("Accept"));
        assert_eq!(reply.json(), greeting, "{accept:?}");
    }

    let chromium_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let page = get(&daemon, "/", &[("Accept", chromium_accept)]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("vary"), Some("Accept"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(html.contains("src=\"ui/page.js\"") && html.contains("href=\"ui/page.css\""));

    for (path, content_type) in [
        ("/ui/page.js", "text/javascript; charset=utf-8"),
        ("/ui/page.css", "text/css; charset=utf-8"),
    ] {
        let asset = get(&daemon, path, &[]);
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("content-type"), Some(content_type), "{path}");
        assert_eq!(asset.header("cache-control"), Some("no-cache"), "{path}");
        assert!(!asset.body.is_empty(), "{path}");
        let etag = asset.header("etag").expect("an ETag").to_owned();
        let again = get(&daemon, path, &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty(), "{path}");
    }
    assert_eq!(get(&daemon, "/ui/missing.js", &[]).status, 404);
}

#[test]
fn the_status_page_shows_the_cameras_and_stops_one_from_its_button() {
    let python = python();
    let daemon = Daemon::start();
    let clip = place(&daemon, &h264_small(2));
    for camera in ["lobby", "yard"] {
        let fields = [
            ("camera_id", camera),
            ("url", clip.to_str().unwrap()),
            ("fps", "5"),
            ("realtime", "true"),
            ("loop", "true"),
        ];
        daemon.post_form("/decode/", &fields).assert_ok();
    }
    // A camera whose error message carries markup, which the page must show as text.
    let trap = daemon
        .media
        .join("<img src=x onerror=document.title=1>.mp4");
    std::fs::write(&trap, b"not a video").unwrap();
    let fields = [("camera_id", "broken"), ("url", trap.to_str().unwrap())];
    daemon.post_form("/decode/", &fields).assert_ok();
    for camera in ["lobby", "yard"] {
        daemon.wait_status(camera, Duration::from_secs(10), |s| {
            s["status"] == "running" && s["frame_count"].as_u64().unwrap_or(0) >= 1
        });
    }
    daemon.wait_status("broken", Duration::from_secs(10), |s| {
        s["status"] == "error"
    });
    // The page is driven through the DevTools protocol rather than taken with
    // `--screenshot`/`--dump-dom`: their `--virtual-time-budget` never runs out while
    // a request is open, and the page holds the event stream open.
    let browser = Browser::start(&["--remote-debugging-port=0"], &daemon.url("/"));
    let profile = browser.profile.path();
    let screenshot = profile.join("page.png");
    let args = [
        profile.to_str().unwrap(),
        screenshot.to_str().unwrap(),
        "lobby",
        "yard",
    ];
    let seen =
        run_python(&python, &format!("{DEVTOOLS}{PAGE_SESSION}"), &args).unwrap_or_else(|e| {
            panic!(
                "the page session failed: {e}\nchromium: {}",
                browser.log_text()
            )
        });
    drop(browser);

    let dom = seen["dom"].as_str().unwrap();
    for camera in ["lobby", "yard"] {
        let row = row_of(dom, camera);
        assert!(row.contains(">running</span>"), "{camera}: {row}");
        assert!(row.contains(">streaming</td>"), "{camera}: {row}");
        assert!(
            row.contains(&format!(
                "src=\"api/v1/video-pipeline/latest-frame/?camera_id={camera}&amp;t="
            )),
            "{camera}: {row}"
        );
        assert!(
            row.contains("class=\"stop\">Stop</button>"),
            "{camera}: {row}"
        );
    }
    let broken = row_of(dom, "broken");
    assert!(broken.contains(">error</span>"), "{broken}");
    assert!(broken.contains("class=\"stop\" hidden=\"\">"), "{broken}");
    assert!(
        broken.contains("&lt;img src=x onerror=document.title=1&gt;.mp4: could not open"),
        "{broken}"
    );
    assert_eq!(
        broken.matches("<img").count(),
        1,
        "only the thumbnail: {broken}"
    );

    // Two thumbnails, one above the other in the first column: two bands of colour
    // nearly as tall as a thumbnail (120 px), left of the camera names.
    let bands = seen["bands"].as_array().unwrap();
    let thumbnails: Vec<&Value> = bands
        .iter()
        .filter(|b| b["height"].as_u64().unwrap() >= 80)
        .collect();
    assert_eq!(thumbnails.len(), 2, "colour bands: {bands:?}");
    for band in &thumbnails {
        assert!(band["right"].as_u64().unwrap() < 220, "{band}");
    }

    // The click on lobby's Stop button.
    assert_eq!(seen["before"]["lobby"]["stop_shown"], true, "{seen}");
    assert_eq!(seen["before"]["yard"]["thumb_width"], 320, "{seen}");
    assert_eq!(seen["after"]["lobby"]["stop_shown"], false, "{seen}");
    assert_eq!(seen["after"]["yard"]["status"], "running", "{seen}");
    assert_eq!(daemon.status("lobby")["status"], "stopped");
    assert_eq!(daemon.status("yard")["status"], "running");
}

#[test]
fn the_status_page_asks_for_a_key_and_reads_with_it_but_stops_only_with_control() {
    const READ_KEY: &str = "page-read-key-0123456789";
    const CONTROL_KEY: &str = "page-control-key-0123456789";
    let python = python();
    let keys = format!("{READ_KEY}:read,{CONTROL_KEY}:control");
    let daemon = Daemon::start_with(&[("API_KEYS", &keys)]);
    let clip = place(&daemon, &h264_small(2));
    let fields = [
        ("camera_id", "gate"),
        ("url", clip.to_str().unwrap()),
        ("fps", "5"),
        ("realtime", "true"),
        ("loop", "true"),
    ];
    let started = ureq::post(&daemon.url("/decode/"))
        .set("X-API-Key", CONTROL_KEY)
        .send_form(&fields)
        .expect("decode/ with the control key");
    assert_eq!(started.status(), 200);
    let status = || -> Value {
        ureq::get(&daemon.url("/decode/status/?camera_id=gate"))
            .set("X-API-Key", READ_KEY)
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status()["frame_count"].as_u64().unwrap_or(0) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "no frame: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let browser = Browser::start(&["--remote-debugging-port=0"], &daemon.url("/"));
    let profile = browser.profile.path().to_str().unwrap().to_owned();
    let args = [profile.as_str(), READ_KEY, CONTROL_KEY, "gate"];
    let seen =
        run_python(&python, &format!("{DEVTOOLS}{AUTH_SESSION}"), &args).unwrap_or_else(|e| {
            panic!(
                "the page session failed: {e}\nchromium: {}",
                browser.log_text()
            )
        });
    drop(browser);

    // Asked, before showing anything.
    assert!(
        seen["asked"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Not authenticated"),
        "{seen}"
    );
    assert_eq!(seen["asked"]["rows"], json!({}), "{seen}");
    // The thumbnail and the event stream came with the cookie, which mirrors the key.
    assert_eq!(seen["reading"]["thumb_width"], 320, "{seen}");
    let kept = &seen["with_read_key"];
    assert_eq!(kept["session"], READ_KEY, "{seen}");
    assert_eq!(
        kept["cookies"],
        json!([{"name": "video_pipeline_auth", "value": READ_KEY,
                "path": "/api/v1/video-pipeline/", "sameSite": "Strict", "session": true}]),
        "{seen}"
    );
    // The read key may not stop; forgetting it clears the tab's copy and the cookie.
    let refused = seen["refused"].as_str().unwrap();
    assert!(
        refused.contains("403 Forbidden: this route needs the control scope"),
        "{refused}"
    );
    assert_eq!(seen["forgotten"]["login"], true, "{seen}");
    assert_eq!(seen["forgotten"]["session"], Value::Null, "{seen}");
    assert_eq!(seen["forgotten"]["cookies"], json!([]), "{seen}");
    // The control key stopped it.
    assert_eq!(seen["after"]["gate"]["stop_shown"], false, "{seen}");
    assert_eq!(status()["status"], "stopped");
}
