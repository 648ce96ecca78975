// The status page: a row per camera, kept current from the event stream when the
// daemon has one, and by polling `cameras/` in any case. Every value from the API is
// put in the page as text (textContent), never as markup.
//
// When the API answers 401 the page asks for a key (or token) and keeps it for this
// tab in sessionStorage. It sends it as `Authorization: Bearer` with its own calls,
// and mirrors it in a SameSite=Strict cookie limited to the API's path, for the
// requests a browser cannot add a header to (thumbnails, the event stream); the
// daemon takes that cookie only for reading, never to stop a camera.
"use strict";

const API = "api/v1/video-pipeline/";
const EVENT_TYPES = [
  "started", "connecting", "streaming", "reconnecting",
  "hwaccel_fallback", "stopped", "completed", "error",
];
const FAST_POLL_MS = 2000;   // while there is no event stream
const SLOW_POLL_MS = 10000;  // with one: catches anything an event did not say
const THUMB_MS = 1000;
const RESUBSCRIBE_MS = 30000;

const KEY_ITEM = "video-pipeline-key";
const COOKIE = "video_pipeline_auth";
// A key or a JWT as the daemon accepts them; anything else is never put in a cookie.
const COOKIE_SAFE = /^[A-Za-z0-9._~+\/=-]+$/;

const rows = new Map();      // camera id -> row
let live = false;            // whether the event stream is open
const pending = new Set();   // cameras named by events, refreshed together
let flushTimer = null;
let source = null;           // the EventSource, while there is one

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

// Keeps the key (or forgets it, for null) in the tab's session and in the cookie.
function useKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_ITEM, key);
    else sessionStorage.removeItem(KEY_ITEM);
  } catch {
    // No storage (a private window may refuse it): the key lasts until a reload.
  }
  const value = key && COOKIE_SAFE.test(key) ? key : "";
  const path = new URL(API, location.href).pathname;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const expiry = value ? "" : "; Max-Age=0";
  document.cookie = `${COOKIE}=${value}; Path=${path}; SameSite=Strict${secure}${expiry}`;
  document.getElementById("forget").hidden = !key;
}

let currentKey = storedKey();

function askForKey(reason) {
  const form = document.getElementById("login");
  document.getElementById("login-reason").textContent = reason || "";
  if (form.hidden) {
    form.hidden = false;
    document.getElementById("key").focus();
  }
}

function onLogin(submit) {
  submit.preventDefault();
  const input = document.getElementById("key");
  const key = input.value.trim();
  if (!key) return;
  input.value = "";
  currentKey = key;
  useKey(key);
  document.getElementById("login").hidden = true;
  notice("");
  refreshAll();
  if (!live) subscribe();
}

function forgetKey() {
  currentKey = null;
  useKey(null);
  if (source) {
    source.close();
    source = null;
  }
  setLive(false);
  askForKey("");
}

async function api(path, options) {
  const request = { ...options, headers: { ...(options && options.headers) } };
  if (currentKey) request.headers.Authorization = `Bearer ${currentKey}`;
  const response = await fetch(API + path, request);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : response.statusText;
    if (response.status === 401) {
      if (currentKey) {
        currentKey = null;
        useKey(null);
      }
      askForKey(detail);
    }
    const error = new Error(`${response.status} ${detail}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function notice(text) {
  const element = document.getElementById("notice");
  element.textContent = text || "";
  element.hidden = !text;
}

function cell(tr, className) {
  const td = document.createElement("td");
  td.className = className;
  tr.appendChild(td);
  return td;
}

function createRow(id) {
  const tr = document.createElement("tr");
  tr.dataset.camera = id;
  const thumb = cell(tr, "thumb");
  const img = document.createElement("img");
  img.alt = `latest frame of ${id}`;
  img.hidden = true;
  const placeholder = document.createElement("div");
  placeholder.className = "nothumb";
  placeholder.textContent = "no frame";
  thumb.append(img, placeholder);
  cell(tr, "id").textContent = id;
  const badge = document.createElement("span");
  cell(tr, "state").appendChild(badge);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "stop";
  button.textContent = "Stop";
  button.hidden = true;
  button.addEventListener("click", () => stop(row));
  const row = {
    id, tr, img, placeholder, badge, button,
    phase: cell(tr, "phase"),
    fps: cell(tr, "fps num"),
    frames: cell(tr, "frames num"),
    decoder: cell(tr, "decoder"),
    error: cell(tr, "error"),
    status: null,
    loading: false,
  };
  cell(tr, "action").appendChild(button);
  img.addEventListener("load", () => {
    row.loading = false;
    img.hidden = false;
    placeholder.hidden = true;
  });
  img.addEventListener("error", () => {
    row.loading = false;
    img.hidden = true;
    placeholder.hidden = false;
  });
  return row;
}

function number(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

function decoderText(report) {
  const used = report.hwaccel || "—";
  const asked = report.hwaccel_requested;
  return asked && asked !== used && asked !== "auto" ? `${used} (asked ${asked})` : used;
}

const STATUSES = ["running", "completed", "stopped", "error", "not_started"];

function update(row, report) {
  const changed = row.status !== report.status;
  row.status = report.status;
  row.badge.textContent = report.status;
  row.badge.className = "status";
  if (STATUSES.includes(report.status)) row.badge.classList.add(report.status);
  row.phase.textContent = report.phase || "—";
  row.fps.textContent = `${number(report.fps, 1)} / ${number(report.measured_fps, 1)}`;
  row.frames.textContent = String(report.frame_count ?? 0);
  row.decoder.textContent = decoderText(report);
  row.decoder.title = report.hwaccel_reason || "";
  row.error.textContent = report.last_error || "";
  row.error.title = report.last_error_kind || "";
  row.button.hidden = report.status !== "running";
  row.button.disabled = false;
  // A camera that is not running keeps its last frame: fetch it once more.
  if (changed) refreshThumb(row, true);
}

function refreshThumb(row, force) {
  if (row.loading || !(force || row.status === "running")) return;
  row.loading = true;
  const query = `camera_id=${encodeURIComponent(row.id)}&t=${Date.now()}`;
  row.img.src = `${API}latest-frame/?${query}`;
}

function render(reports) {
  const tbody = document.getElementById("rows");
  const seen = new Set();
  for (const report of reports) {
    const id = report.camera_id;
    seen.add(id);
    let row = rows.get(id);
    if (!row) {
      row = createRow(id);
      rows.set(id, row);
    }
    tbody.appendChild(row.tr);  // the API's order: by id
    update(row, report);
  }
  for (const [id, row] of rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
  summarize();
}

function summarize() {
  const running = [...rows.values()].filter((row) => row.status === "running").length;
  document.getElementById("summary").textContent =
    `${rows.size} camera${rows.size === 1 ? "" : "s"}, ${running} running`;
  document.getElementById("empty").hidden = rows.size > 0;
}

async function refreshAll() {
  try {
    const body = await api("cameras/");
    render(Array.isArray(body.cameras) ? body.cameras : []);
    notice("");
  } catch (e) {
    // A 401 shows as the request for a key instead.
    notice(e.status === 401 ? "" : `Cannot read cameras/: ${e.message}`);
  }
}

async function refreshOne(id) {
  const row = rows.get(id);
  if (!row) return refreshAll();  // a camera the page has not seen yet
  try {
    const report = await api(`decode/status/?camera_id=${encodeURIComponent(id)}`);
    if (report.status === "not_started") return refreshAll();  // forgotten since
    update(row, report);
    summarize();
  } catch (e) {
    if (e.status !== 401) notice(`Cannot read the status of ${id}: ${e.message}`);
  }
}

async function stop(row) {
  row.button.disabled = true;
  try {
    await api("decode/stop/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ camera_id: row.id }),
    });
  } catch (e) {
    notice(`Stopping ${row.id} failed: ${e.message}`);
  }
  await refreshOne(row.id);
}

function setLive(open) {
  live = open;
  document.getElementById("updates").textContent = open
    ? "live updates"
    : `no event stream: polling every ${FAST_POLL_MS / 1000} s`;
}

function onEvent(message) {
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  if (typeof event.camera_id !== "string") return;
  pending.add(event.camera_id);
  if (flushTimer === null) {
    flushTimer = setTimeout(() => {
      flushTimer = null;
      const ids = [...pending];
      pending.clear();
      ids.forEach(refreshOne);
    }, 100);
  }
}

function subscribe() {
  if (typeof EventSource !== "function") {
    setLive(false);
    return;
  }
  if (source) source.close();
  const stream = new EventSource(`${API}events/`);
  source = stream;
  stream.addEventListener("open", () => setLive(true));
  stream.addEventListener("error", () => {
    if (source !== stream) return;  // replaced meanwhile
    setLive(false);
    // The browser reconnects by itself after a network error, but gives up on an
    // answer that is not an event stream (a 401 among them): try again later.
    if (stream.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(() => { if (!source) subscribe(); }, RESUBSCRIBE_MS);
    }
  });
  stream.addEventListener("message", onEvent);
  for (const type of EVENT_TYPES) stream.addEventListener(type, onEvent);
}

async function poll() {
  await refreshAll();
  setTimeout(poll, live ? SLOW_POLL_MS : FAST_POLL_MS);
}

document.getElementById("login").addEventListener("submit", onLogin);
document.getElementById("forget").addEventListener("click", forgetKey);
useKey(currentKey);  // the cookie follows this tab's key, or is cleared
setLive(false);
subscribe();
poll();
setInterval(() => rows.forEach((row) => refreshThumb(row, false)), THUMB_MS);
