//! `openapi.json` of the real daemon: it validates as OpenAPI 3 (Python's
//! `openapi-spec-validator`), it lists exactly the server's route table, every path and
//! method in it answers (with both trailing-slash spellings) with a documented status,
//! and every JSON answer seen, valid request or not, fits its documented schema.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{h264_small, multipart, place, Daemon, BASE};
use serde_json::{json, Value};
use video_pipeline::http::ROUTES;

/// Validates the document (argv[1]) and then each `{where, schema, body}` sample read
/// from stdin against its schema, the document's components alongside for `$ref`s.
const VALIDATE: &str = r#"
import json, sys
from openapi_spec_validator import validate
from openapi_schema_validator import OAS31Validator
document = json.load(open(sys.argv[1]))
validate(document)
problems = []
for sample in json.load(sys.stdin):
    schema = dict(sample["schema"], components=document["components"])
    for error in OAS31Validator(schema).iter_errors(sample["body"]):
        problems.append(f'{sample["where"]}: {error.message} at {list(error.absolute_path)}')
if problems:
    sys.exit("\n".join(problems))
"#;

/// The Python that has `openapi_spec_validator`: `VIDEO_PIPELINE_TEST_PYTHON` (set by
/// scripts/test.sh), else `python3` when it can import it.
fn python() -> String {
    common::test_python("openapi_spec_validator", "openapi_spec_validator")
}

/// An answer, its body read only when it is JSON (a stream route never ends).
struct Answer {
    status: u16,
    content_type: String,
    headers: HashMap<String, String>,
    json: Option<Value>,
}

enum Body<'a> {
    None,
    Json(Value),
    Form(&'a [(&'a str, &'a str)]),
    Multipart(&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str, &'a [u8])]),
}

fn send(daemon: &Daemon, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Answer {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .redirects(0)
        .build();
    let url = format!("http://127.0.0.1:{}{path}", daemon.port);
    let mut request = agent.request(method, &url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Body::None => request.call(),
        Body::Json(value) => request.send_json(value),
        Body::Form(fields) => request.send_form(fields),
        Body::Multipart(fields, files) => {
            let (content_type, bytes) = multipart(fields, files);
            request
                .set("Content-Type", &content_type)
                .send_bytes(&bytes)
        }
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let content_type = response.header("content-type").unwrap_or("").to_owned();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            Some((
                name.to_ascii_lowercase(),
                response.header(&name)?.to_owned(),
            ))
        })
        .collect();
    let status = response.status();
    let json = (essence(&content_type) == "application/json").then(|| {
        let mut text = String::new();
        response.into_reader().read_to_string(&mut text).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    });
    Answer {
        status,
        content_type,
        headers,
        json,
    }
}

fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Checks `answer` against the document's `path`/`method` operation: a documented
/// status, a documented content type and headers; a JSON body is kept for the schema
/// check.
struct Checker {
    document: Value,
    samples: Vec<Value>,
}

impl Checker {
    fn check(&mut self, method: &str, path: &str, sent_to: &str, answer: &Answer) {
        let where_ = format!("{method} {sent_to} -> {}", answer.status);
        assert_ne!(answer.status, 405, "{where_}");
        if answer.status == 404 {
            let detail = answer.json.as_ref().map(|j| j["detail"].clone());
            assert_ne!(detail, Some(json!("Not Found")), "{where_}: not routed");
        }
        let operation = &self.document["paths"][path][method.to_lowercase()];
        let response = &operation["responses"][answer.status.to_string()];
        assert!(
            response.is_object(),
            "{where_}: status not documented in {operation}"
        );
        if let Some(headers) = response["headers"].as_object() {
            for name in headers.keys() {
                assert!(
                    answer.headers.contains_key(&name.to_ascii_lowercase()),
                    "{where_}: documented header {name} missing"
                );
            }
        }
        let Some(content) = response["content"].as_object() else {
            return;
        };
        let (_, documented) = content
            .iter()
            .find(|(kind, _)| essence(kind) == essence(&answer.content_type))
            .unwrap_or_else(|| {
                panic!(
                    "{where_}: content type {} not documented",
                    answer.content_type
                )
            });
        if let Some(body) = &answer.json {
            self.samples.push(json!({
                "where": where_,
                "schema": documented["schema"],
                "body": body,
            }));
        }
    }
}

#[test]
fn openapi_json_lists_every_route_and_every_documented_route_answers_as_documented() {
    let python = python();
    let daemon = Daemon::start();
    let document = send(
        &daemon,
        "GET",
        &format!("{BASE}/openapi.json"),
        &[],
        Body::None,
    );
    assert_eq!(document.status, 200);
    let document = document.json.expect("openapi.json is JSON");
    let other = send(
        &daemon,
        "GET",
        &format!("{BASE}/openapi.json/"),
        &[],
        Body::None,
    );
    assert_eq!(other.json.as_ref(), Some(&document));

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|method| (path.clone(), method.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.path.to_owned(), r.verb.as_str().to_owned()))
        .collect();
    assert_eq!(
        documented, served,
        "openapi.json and the route table differ"
    );

    let mut checker = Checker {
        document: document.clone(),
        samples: Vec::new(),
    };
    // Every documented path and method, in both spellings, with the least request (no
    // query, an empty JSON object as the body): a documented status, a routed answer.
    for route in ROUTES {
        let method = route.verb.as_str();
        let spellings = std::iter::once(route.path.to_owned()).chain(route.other_form());
        for spelling in spellings {
            let body = match route.verb {
                video_pipeline::http::Verb::Get => Body::None,
                video_pipeline::http::Verb::Post => Body::Json(json!({})),
            };
            let answer = send(&daemon, method, &spelling, &[], body);
            checker.check(method, route.path, &spelling, &answer);
            let wrong = send(&daemon, "DELETE", &spelling, &[], Body::None);
            assert_eq!(wrong.status, 405, "DELETE {spelling}");
        }
    }

    // Valid requests, and invalid ones with their documented 4xx.
    let clip = std::fs::read(h264_small(1)).unwrap();
    let placed = place(&daemon, &h264_small(1));
    let placed = placed.to_str().unwrap();
    let path = |p: &str| format!("{BASE}/{p}");
    let mut call =
        |method: &str, doc_path: &str, query: &str, headers: &[(&str, &str)], body: Body| {
            let sent_to = format!("{}{query}", path(doc_path));
            let answer = send(&daemon, method, &sent_to, headers, body);
            checker.check(method, &path(doc_path), &sent_to, &answer);
            answer
        };
    let started = call(
        "POST",
        "decode/",
        "",
        &[],
        Body::Multipart(
            &[
                ("camera_id", "documented"),
                ("fps", "5"),
                ("realtime", "true"),
                ("loop", "true"),
            ],
            &[("file", "clip.mp4", &clip[..])],
        ),
    );
    assert_eq!(started.status, 200);
    daemon.wait_status("documented", Duration::from_secs(20), |s| {
        s["frame_count"].as_u64().unwrap_or(0) >= 1
    });
    let again = call(
        "POST",
        "decode/",
        "",
        &[],
        Body::Form(&[("camera_id", "documented"), ("url", placed)]),
    );
    assert_eq!(again.json.unwrap()["status"], "already_running");
    let expectations: [(&str, &str, &str, Body, u16); 10] = [
        (
            "GET",
            "decode/status/",
            "?camera_id=documented",
            Body::None,
            200,
        ),
        ("GET", "decode/status/", "?camera_id=never", Body::None, 200),
        (
            "GET",
            "decode/status/",
            "?camera_id=..%2Fx",
            Body::None,
            400,
        ),
        ("GET", "cameras/", "?status=running", Body::None, 200),
        ("GET", "cameras/", "?status=sleeping", Body::None, 400),
        ("GET", "latest-frame/", "?camera_id=never", Body::None, 404),
        (
            "GET",
            "latest-frame/",
            "?camera_id=documented&max_age_ms=x",
            Body::None,
            422,
        ),
        (
            "POST",
            "video-info-url/",
            "",
            Body::Json(json!({ "url": placed })),
            200,
        ),
        (
            "POST",
            "video-info-url/",
            "",
            Body::Form(&[("url", "concat:a|b")]),
            400,
        ),
        (
            "POST",
            "decode/",
            "",
            Body::Json(json!({ "camera_id": "x", "fps": 0 })),
            400,
        ),
    ];
    for (method, doc_path, query, body, expected) in expectations {
        let answer = call(method, doc_path, query, &[], body);
        assert_eq!(answer.status, expected, "{method} {doc_path}{query}");
    }
    let info = call(
        "POST",
        "video-info/",
        "",
        &[],
        Body::Multipart(&[], &[("video", "clip.mp4", &clip[..])]),
    );
    assert_eq!(info.status, 200);
    let frame = call(
        "GET",
        "latest-frame/",
        "?camera_id=documented",
        &[],
        Body::None,
    );
    assert_eq!(
        (frame.status, essence(&frame.content_type)),
        (200, "image/jpeg")
    );
    let unchanged = call(
        "GET",
        "latest-frame/",
        "?camera_id=documented",
        &[("If-None-Match", "*")],
        Body::None,
    );
    assert_eq!(unchanged.status, 304);
    let stopped = call(
        "POST",
        "decode/stop/",
        "",
        &[],
        Body::Form(&[("camera_id", "documented")]),
    );
    assert_eq!(stopped.status, 200);
    let listed = call("GET", "cameras/", "", &[], Body::None);
    assert_eq!(listed.json.unwrap()["count"], 1);

    let file = daemon.dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
    let mut child = Command::new(&python)
        .args(["-c", VALIDATE])
        .arg(&file)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let samples = serde_json::to_vec(&checker.samples).unwrap();
    child.stdin.take().unwrap().write_all(&samples).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openapi.json is not valid, or an answer does not fit it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(checker.samples.len() > 30, "{}", checker.samples.len());
}
