//! Authentication and scopes on the real daemon: static API keys and JWTs (RS256,
//! ES256, HS256; the key pairs made at run time by the `openssl` CLI, from
//! scripts/deps.sh's test group), on every kind of route: plain JSON, control, the live
//! streams (SSE, WebSocket, MJPEG), frames, the status page and its cookie. One daemon
//! per configuration, many checks each.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{h264_small, place, Daemon, Reply, BASE};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;

const READ_KEY: &str = "read-key-0123456789abcdef";
const CONTROL_KEY: &str = "control-key-0123456789abcdef";
const COOKIE: &str = "video_pipeline_auth";
const AUDIENCE: &str = "cameras";
const ISSUER: &str = "https://idp.test";

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .redirects(0)
        .build()
}

/// The URL of `path`: under the API base (as `Daemon::url` makes it), or as it is
/// when it is already a URL (see [`outside`]).
fn url(daemon: &Daemon, path: &str) -> String {
    if path.starts_with("http://") {
        path.to_owned()
    } else {
        daemon.url(path)
    }
}

/// The URL of a path outside the API base (`/metrics`, `/ui/...`).
fn outside(daemon: &Daemon, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", daemon.port)
}

/// A whole answer of `method path` (see [`url`]) with `headers` and, for a POST, a
/// JSON body.
fn call(daemon: &Daemon, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent()
        .request(method, &url(daemon, path))
        .timeout(Duration::from_secs(10));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = if method == "POST" {
        request.send_json(json!({"camera_id": "nobody"}))
    } else {
        request.call()
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from(r),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn get(daemon: &Daemon, path: &str, headers: &[(&str, &str)]) -> Reply {
    call(daemon, "GET", path, headers)
}

/// The status and content type of a GET whose body may never end (an event stream,
/// MJPEG): the body is not read.
fn open(daemon: &Daemon, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = agent().get(&url(daemon, path));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => (
            r.status(),
            r.header("content-type").unwrap_or("").to_owned(),
        ),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// The status of a WebSocket handshake on `ws/` with `headers` (101 when it opened).
fn websocket(daemon: &Daemon, headers: &[(&str, &str)]) -> u16 {
    let url = format!("ws://127.0.0.1:{}{BASE}/ws/", daemon.port);
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tungstenite::connect(request) {
        Ok((mut socket, response)) => {
            let _ = socket.close(None);
            response.status().as_u16()
        }
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("ws/: {e}"),
    }
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn token(algorithm: Algorithm, key: &EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).unwrap()
}

/// Claims valid for five minutes with `scope`, plus `extra` (which may replace them).
fn claims(scope: &str, extra: Value) -> Value {
    let mut claims = json!({
        "sub": "dashboard", "aud": AUDIENCE, "iss": ISSUER,
        "exp": now() + 300, "iat": now(), "scope": scope,
    });
    for (name, value) in extra.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            _ => claims
                .as_object_mut()
                .unwrap()
                .insert(name.clone(), value.clone()),
        };
    }
    claims
}

/// An unsigned token with `"alg": "none"`.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A key pair made with `openssl genpkey` (`args` pick the type): the private key's
/// PEM and the path of the public key's PEM file.
fn key_pair(dir: &Path, name: &str, args: &[&str]) -> (Vec<u8>, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let mut genpkey = vec!["genpkey"];
    genpkey.extend(args);
    genpkey.extend(["-out", private.to_str().unwrap()]);
    openssl(&genpkey);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (std::fs::read(&private).unwrap(), public)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl: {e} (install it with scripts/deps.sh test)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rsa_pair(dir: &Path, name: &str) -> (Vec<u8>, PathBuf) {
    key_pair(
        dir,
        name,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )
}

/// A 401 with its challenge; `invalid`: the challenge says a credential was refused.
fn assert_unauthorized(reply: &Reply, invalid: bool, what: &str) {
    assert_eq!(
        reply.status,
        401,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"video-pipeline\""),
        "{what}: {challenge}"
    );
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        invalid,
        "{what}: {challenge}"
    );
    assert!(!reply.detail().is_empty(), "{what}");
}

fn assert_forbidden(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        403,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.detail(),
        "Forbidden: this route needs the control scope",
        "{what}"
    );
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\", scope=\"control\""),
        "{what}: {challenge}"
    );
}

/// Polls `decode/status/` with a credential until `done` holds.
fn wait_status(daemon: &Daemon, camera: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let path = format!("/decode/status/?camera_id={camera}");
        let status = get(daemon, &path, &[("X-API-Key", key)]).json();
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{camera}: {status}\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn api_keys_and_rs256_tokens_on_every_kind_of_route() {
    let keys = tempfile::tempdir().unwrap();
    let (rsa_private, rsa_public) = rsa_pair(keys.path(), "idp");
    let (other_private, _) = rsa_pair(keys.path(), "stranger");
    let daemon = Daemon::start_with(&[
        (
            "API_KEYS",
            &format!("{READ_KEY}:read,{CONTROL_KEY}:control"),
        ),
        ("JWT_PUBLIC_KEY_FILE", rsa_public.to_str().unwrap()),
        ("JWT_AUDIENCE", AUDIENCE),
        ("JWT_ISSUER", ISSUER),
    ]);
    let log = daemon.log_text();
    assert!(
        log.contains("authentication on: 2 API keys, JWT (RS256/RS384/RS512/PS256/PS384/PS512, RSA public key; exp, nbf, aud, iss checked, 30 s leeway)"),
        "{log}"
    );
    assert!(
        !log.contains(READ_KEY) && !log.contains(CONTROL_KEY),
        "{log}"
    );

    // Health stays open, in both spellings; everything else needs a credential.
    for path in ["/health/", "/health"] {
        get(&daemon, path, &[]).assert_ok();
    }
    let missing = get(&daemon, "/cameras/", &[]);
    assert_unauthorized(&missing, false, "no credential");
    assert!(
        missing.detail().starts_with("Not authenticated"),
        "{}",
        missing.detail()
    );
    assert_unauthorized(
        &get(
            &daemon,
            "/cameras/",
            &[("Authorization", &bearer("wrong-key-0123456789abcdef"))],
        ),
        true,
        "a wrong key",
    );
    assert_unauthorized(
        &get(
            &daemon,
            "/cameras/",
            &[("X-API-Key", "wrong-key-0123456789abcdef")],
        ),
        true,
        "a wrong X-API-Key",
    );
    assert_unauthorized(
        &get(
            &daemon,
            "/cameras/",
            &[("Authorization", &format!("Basic {READ_KEY}"))],
        ),
        false,
        "Basic",
    );
    assert_unauthorized(
        &call(&daemon, "POST", "/decode/stop/", &[]),
        false,
        "control, no credential",
    );

    // A read key reads, by either header, and may not control.
    let read = [("X-API-Key", READ_KEY)];
    let read_bearer = bearer(READ_KEY);
    get(&daemon, "/cameras/", &read).assert_ok();
    get(&daemon, "/cameras", &[("Authorization", &read_bearer)]).assert_ok();
    assert_forbidden(
        &call(&daemon, "POST", "/decode/stop/", &read),
        "read key on decode/stop/",
    );
    assert_forbidden(
        &call(&daemon, "POST", "/decode", &read),
        "read key on decode",
    );
    // The gate sees the path the router matches: `%64` is `d`.
    assert_forbidden(
        &call(&daemon, "POST", "/%64ecode/stop/", &read),
        "read key, encoded path",
    );

    // A control key controls and reads: start a camera to watch.
    let control_bearer = bearer(CONTROL_KEY);
    let control = [("Authorization", control_bearer.as_str())];
    let clip = place(&daemon, &h264_small(2));
    let start = agent()
        .post(&daemon.url("/decode/"))
        .set("Authorization", &bearer(CONTROL_KEY))
        .send_form(&[
            ("camera_id", "door"),
            ("url", clip.to_str().unwrap()),
            ("fps", "5"),
            ("realtime", "true"),
            ("loop", "true"),
        ]);
    assert_eq!(
        start
            .map(|r| r.status())
            .unwrap_or_else(|e| panic!("decode/: {e}")),
        200
    );
    get(&daemon, "/cameras/", &control).assert_ok();
    wait_status(&daemon, "door", CONTROL_KEY, |s| {
        s["frame_count"].as_u64().unwrap_or(0) >= 1
    });

    // Unknown routes and methods: 401 without a credential, 404 and 405 with one.
    assert_unauthorized(&get(&daemon, "/nowhere/", &[]), false, "unknown route");
    assert_eq!(get(&daemon, "/nowhere/", &read).status, 404);
    assert_unauthorized(
        &call(&daemon, "POST", "/cameras/", &[]),
        false,
        "wrong method",
    );
    assert_eq!(call(&daemon, "POST", "/cameras/", &read).status, 405);

    // Every read route, with and without.
    let root_metrics = outside(&daemon, "/metrics");
    for path in [
        "/",
        BASE,
        "/metrics",
        &root_metrics,
        "/openapi.json",
        "/docs/",
        "/hw-accel-cap/",
        "/decode/status/?camera_id=door",
        "/latest-frame/?camera_id=door",
    ] {
        assert_unauthorized(&get(&daemon, path, &[]), false, path);
        get(&daemon, path, &read).assert_ok();
    }
    assert_unauthorized(
        &call(&daemon, "POST", "/video-info-url/", &[]),
        false,
        "video-info-url/",
    );
    assert_unauthorized(
        &call(&daemon, "POST", "/video-info/", &[]),
        false,
        "video-info/",
    );
    assert_ne!(call(&daemon, "POST", "/video-info-url/", &read).status, 401);

    // The live streams: SSE, MJPEG and the WebSocket.
    for (path, content_type) in [
        ("/events/", "text/event-stream"),
        ("/mjpeg/?camera_id=door", "multipart/x-mixed-replace"),
    ] {
        assert_eq!(open(&daemon, path, &[]).0, 401, "{path}");
        let (status, served) = open(&daemon, path, &read);
        assert_eq!(status, 200, "{path}");
        assert!(served.starts_with(content_type), "{path}: {served}");
    }
    assert_eq!(websocket(&daemon, &[]), 401);
    assert_eq!(
        websocket(&daemon, &[("X-API-Key", "wrong-key-0123456789abcdef")]),
        401
    );
    assert_eq!(websocket(&daemon, &[("Authorization", &read_bearer)]), 101);

    // The status page: its shell and files load without a key, so that it can ask for one.
    let browser = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let page = get(&daemon, "/", &browser);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("id=\"login\""));
    for path in ["/ui/page.js", "/ui/page.css"] {
        get(&daemon, &outside(&daemon, path), &[]).assert_ok();
    }

    // The page's cookie: good for reading with GET from this origin, never for control.
    let cookie = |key: &str| format!("theme=dark; {COOKIE}={key}");
    let read_cookie = cookie(READ_KEY);
    let control_cookie = cookie(CONTROL_KEY);
    let origin = format!("http://127.0.0.1:{}", daemon.port);
    for path in [
        "/cameras/",
        "/latest-frame/?camera_id=door",
        "/decode/status/?camera_id=door",
    ] {
        get(&daemon, path, &[("Cookie", &read_cookie)]).assert_ok();
        get(
            &daemon,
            path,
            &[("Cookie", &read_cookie), ("Origin", &origin)],
        )
        .assert_ok();
    }
    assert_eq!(
        open(&daemon, "/events/", &[("Cookie", &read_cookie)]).0,
        200
    );
    assert_eq!(
        open(
            &daemon,
            "/mjpeg/?camera_id=door",
            &[("Cookie", &read_cookie)]
        )
        .0,
        200
    );
    assert_eq!(
        websocket(&daemon, &[("Cookie", &read_cookie), ("Origin", &origin)]),
        101
    );
    assert_eq!(
        websocket(
            &daemon,
            &[("Cookie", &read_cookie), ("Origin", "http://127.0.0.1:9")]
        ),
        401
    );
    assert_unauthorized(
        &get(
            &daemon,
            "/cameras/",
            &[("Cookie", &cookie("wrong-key-0123456789abcdef"))],
        ),
        true,
        "a wrong cookie",
    );
    assert_unauthorized(
        &call(
            &daemon,
            "POST",
            "/decode/stop/",
            &[("Cookie", &control_cookie)],
        ),
        false,
        "control by cookie",
    );
    assert_unauthorized(
        &call(
            &daemon,
            "POST",
            "/video-info-url/",
            &[("Cookie", &read_cookie)],
        ),
        false,
        "POST by cookie",
    );

    // RS256 tokens.
    let idp = EncodingKey::from_rsa_pem(&rsa_private).unwrap();
    let stranger = EncodingKey::from_rsa_pem(&other_private).unwrap();
    let read_token = token(Algorithm::RS256, &idp, claims("openid read", json!({})));
    get(
        &daemon,
        "/cameras/",
        &[("Authorization", &bearer(&read_token))],
    )
    .assert_ok();
    get(&daemon, "/cameras/", &[("Cookie", &cookie(&read_token))]).assert_ok();
    assert_eq!(
        websocket(&daemon, &[("Authorization", &bearer(&read_token))]),
        101
    );
    assert_forbidden(
        &call(
            &daemon,
            "POST",
            "/decode/stop/",
            &[("Authorization", &bearer(&read_token))],
        ),
        "read token on decode/stop/",
    );
    let no_scope = token(Algorithm::RS256, &idp, claims("openid profile", json!({})));
    assert_eq!(
        get(
            &daemon,
            "/cameras/",
            &[("Authorization", &bearer(&no_scope))]
        )
        .status,
        403
    );
    let public_pem = std::fs::read(&rsa_public).unwrap();
    let refused = [
        (
            "expired",
            token(
                Algorithm::RS256,
                &idp,
                claims("read", json!({"exp": now() - 120})),
            ),
            "expired",
        ),
        (
            "not yet valid",
            token(
                Algorithm::RS256,
                &idp,
                claims("read", json!({"nbf": now() + 120})),
            ),
            "not valid yet",
        ),
        (
            "no exp",
            token(Algorithm::RS256, &idp, claims("read", json!({"exp": null}))),
            "required claim",
        ),
        (
            "wrong audience",
            token(
                Algorithm::RS256,
                &idp,
                claims("read", json!({"aud": "billing"})),
            ),
            "audience",
        ),
        (
            "no audience",
            token(Algorithm::RS256, &idp, claims("read", json!({"aud": null}))),
            "required claim",
        ),
        (
            "wrong issuer",
            token(
                Algorithm::RS256,
                &idp,
                claims("read", json!({"iss": "https://evil.test"})),
            ),
            "issuer",
        ),
        (
            "another key",
            token(Algorithm::RS256, &stranger, claims("read", json!({}))),
            "signature",
        ),
        (
            "alg none",
            unsigned(&claims("control", json!({}))),
            "cannot be read",
        ),
        (
            "HS256 with the public key as secret",
            token(
                Algorithm::HS256,
                &EncodingKey::from_secret(&public_pem),
                claims("control", json!({})),
            ),
            "algorithm",
        ),
    ];
    for (what, token, reason) in &refused {
        let reply = get(&daemon, "/cameras/", &[("Authorization", &bearer(token))]);
        assert_unauthorized(&reply, true, what);
        assert!(
            reply.detail().contains(reason),
            "{what}: {}",
            reply.detail()
        );
        assert_eq!(
            websocket(&daemon, &[("Authorization", &bearer(token))]),
            401,
            "{what}"
        );
    }
    // A token is not an API key.
    assert_unauthorized(
        &get(&daemon, "/cameras/", &[("X-API-Key", &read_token)]),
        true,
        "a token as X-API-Key",
    );

    let control_token = token(
        Algorithm::RS256,
        &idp,
        claims("", json!({"scope": null, "scopes": ["control"]})),
    );
    let stop = agent()
        .post(&daemon.url("/decode/stop/"))
        .set("Authorization", &bearer(&control_token))
        .send_json(json!({"camera_id": "door"}))
        .unwrap();
    assert_eq!(stop.status(), 200);
    wait_status(&daemon, "door", READ_KEY, |s| s["status"] == "stopped");
}

#[test]
fn es256_tokens_and_a_key_file() {
    let keys = tempfile::tempdir().unwrap();
    let (ec_private, ec_public) = key_pair(
        keys.path(),
        "idp",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let key_file = keys.path().join("keys");
    std::fs::write(
        &key_file,
        format!("# operators\n{CONTROL_KEY}:control\n\n# dashboards\n{READ_KEY}:read\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let daemon = Daemon::start_with(&[
        ("API_KEYS_FILE", key_file.to_str().unwrap()),
        ("JWT_PUBLIC_KEY_FILE", ec_public.to_str().unwrap()),
    ]);
    let log = daemon.log_text();
    assert!(
        log.contains("can be read by every user of this machine"),
        "{log}"
    );
    assert!(
        log.contains(
            "authentication on: 2 API keys, JWT (ES256/ES384, EC public key; exp, nbf checked"
        ),
        "{log}"
    );

    let control = [("X-API-Key", CONTROL_KEY)];
    assert_eq!(call(&daemon, "POST", "/decode/stop/", &control).status, 200);
    assert_forbidden(
        &call(&daemon, "POST", "/decode/stop/", &[("X-API-Key", READ_KEY)]),
        "read key from the file",
    );

    let idp = EncodingKey::from_ec_pem(&ec_private).unwrap();
    let claims = json!({"exp": now() + 300, "scope": "control"});
    let good = token(Algorithm::ES256, &idp, claims.clone());
    assert_eq!(
        call(
            &daemon,
            "POST",
            "/decode/stop/",
            &[("Authorization", &bearer(&good))]
        )
        .status,
        200
    );
    let public_pem = std::fs::read(&ec_public).unwrap();
    let confused = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        claims.clone(),
    );
    for (what, token) in [
        ("HS256 with the public key as secret", confused),
        ("alg none", unsigned(&claims)),
    ] {
        assert_unauthorized(
            &call(
                &daemon,
                "POST",
                "/decode/stop/",
                &[("Authorization", &bearer(&token))],
            ),
            true,
            what,
        );
    }
    // With no JWT_AUDIENCE, a token meant for an audience is not meant for this daemon.
    let elsewhere = token(
        Algorithm::ES256,
        &idp,
        json!({"exp": now() + 300, "scope": "read", "aud": "billing"}),
    );
    assert_unauthorized(
        &get(
            &daemon,
            "/cameras/",
            &[("Authorization", &bearer(&elsewhere))],
        ),
        true,
        "an audience",
    );
}

#[test]
fn hs256_tokens_with_a_shared_secret() {
    let secret = "a shared secret of at least thirty-two bytes";
    let daemon = Daemon::start_with(&[("JWT_SECRET", secret)]);
    assert!(daemon
        .log_text()
        .contains("authentication on: JWT (HS256/HS384/HS512, shared secret"));
    let key = EncodingKey::from_secret(secret.as_bytes());
    let read = token(
        Algorithm::HS256,
        &key,
        json!({"exp": now() + 60, "scopes": ["read"]}),
    );
    let control = token(
        Algorithm::HS512,
        &key,
        json!({"exp": now() + 60, "scope": "control"}),
    );
    get(&daemon, "/cameras/", &[("Authorization", &bearer(&read))]).assert_ok();
    assert_forbidden(
        &call(
            &daemon,
            "POST",
            "/decode/stop/",
            &[("Authorization", &bearer(&read))],
        ),
        "read token",
    );
    assert_eq!(
        call(
            &daemon,
            "POST",
            "/decode/stop/",
            &[("Authorization", &bearer(&control))]
        )
        .status,
        200
    );
    let other = EncodingKey::from_secret(b"another secret, thirty-two bytes or more");
    let forged = token(
        Algorithm::HS256,
        &other,
        json!({"exp": now() + 60, "scope": "control"}),
    );
    let expired = token(
        Algorithm::HS256,
        &key,
        json!({"exp": now() - 60, "scope": "control"}),
    );
    for (what, token) in [
        ("another secret", forged),
        ("expired", expired),
        ("a key", CONTROL_KEY.to_owned()),
    ] {
        assert_unauthorized(
            &call(
                &daemon,
                "POST",
                "/decode/stop/",
                &[("Authorization", &bearer(&token))],
            ),
            true,
            what,
        );
    }
}

#[test]
fn without_auth_settings_every_route_stays_open_with_a_warning() {
    let daemon = Daemon::start_with(&[("HOST", "0.0.0.0")]);
    let log = daemon.log_text();
    assert!(
        log.contains("WARN") && log.contains("the API is open to anyone who can reach 0.0.0.0:"),
        "{log}"
    );
    let stop = call(&daemon, "POST", "/decode/stop/", &[]);
    assert_eq!(stop.status, 200, "{}", String::from_utf8_lossy(&stop.body));
    get(&daemon, "/cameras/", &[]).assert_ok();
    get(&daemon, "/", &[]).assert_ok();
    assert_eq!(open(&daemon, "/events/", &[]).0, 200);
    assert_eq!(websocket(&daemon, &[]), 101);
    // A credential that no setting asked for is simply ignored.
    get(
        &daemon,
        "/cameras/",
        &[("Authorization", "Bearer anything")],
    )
    .assert_ok();
    assert_eq!(get(&daemon, "/nowhere/", &[]).status, 404);
}
