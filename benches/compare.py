#!/usr/bin/env python3
"""Side-by-side measurements of video-pipeline and its anchors, in one run.

Sections (all by default; pick with --only):
  cpu       `video-pipeline extract` (exact, keyframes, every frame) against the
            original service's command `ffmpeg -i IN -vf fps=N,format=rgb24 -q:v 2 ...`
            on the same 60 s 1080p30 H.264 file (GOP 2 s): CPU (user + sys), wall, RSS.
  memory    peak RSS of the daemon with 1 and with 9 looped realtime 1080p cameras.
  capacity  looped realtime 1080p30 cameras at fps=1 in exact mode: how many keep
            their rate with no dropped frames and no pacing lag; and how many
            `ffmpeg -re -stream_loop -1` processes running the original's command keep
            a frame a second on the same input.
  http      latest-frame/ under `wrk -t2 -c16 -d10s` against nginx serving the same
            JPEG from disk.
  shape     frames at a model's size: `video-pipeline extract --fps 1 --width 640`
            against the same at full size and against ffmpeg doing the same job,
            `ffmpeg -i IN -vf fps=1,scale=640:-2 -q:v 2 ...`, on the cpu section's file:
            CPU, wall and bytes per frame.

Run through benches/compare.sh, which builds the release binary first.
Needs: ffmpeg, GNU time (/usr/bin/time), and for `http`: wrk and nginx.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "video-pipeline"
MEDIA = ROOT / "target" / "bench-media"
API = "/api/v1/video-pipeline"


def log(message):
    print(message, file=sys.stderr, flush=True)


def generate_input():
    """The 60 s 1080p30 H.264 clip with a 2 s GOP (x264 veryfast, B-frames on)."""
    MEDIA.mkdir(parents=True, exist_ok=True)
    path = MEDIA / "h264_1080p30_60s_gop2.mp4"
    if not path.exists():
        log(f"generating {path} ...")
        temp = path.with_suffix(".tmp.mp4")
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
             "-i", "testsrc2=size=1920x1080:rate=30", "-t", "60",
             "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60",
             "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(temp)],
            check=True)
        temp.rename(path)
    return path


def timed(command, out):
    """Runs `command` under GNU time; returns (cpu s, wall s, peak RSS MiB, frames)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run(["/usr/bin/time", "-f", "%U %S %e %M", "-o", report.name] + command,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        user, system, wall, rss = report.read().split()[-4:]
    frames = len(list(out.glob("frame_*.jpg")))
    return float(user) + float(system), float(wall), int(rss) / 1024, frames


def section_cpu(runs, work):
    source = generate_input()
    baseline = lambda fps, out: ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                                 "-i", str(source), "-vf", f"fps={fps},format=rgb24",
                                 "-q:v", "2", str(out / "frame_%04d.jpg")]
    ours = lambda fps, sampling, out: [str(BIN), "extract", str(source), "--fps", str(fps),
                                       "--sampling", sampling, "--out", str(out)]
    cases = [
        ("ffmpeg fps=1", lambda o: baseline(1, o)),
        ("exact fps=1", lambda o: ours(1, "exact", o)),
        ("keyframes fps=1", lambda o: ours(1, "keyframes", o)),
        ("all fps=1", lambda o: ours(1, "all", o)),
        ("ffmpeg fps=30", lambda o: baseline(30, o)),
        ("exact fps=30", lambda o: ours(30, "exact", o)),
    ]
    results = {name: [] for name, _ in cases}
    for run in range(runs):
        for name, command in cases:
            log(f"cpu: run {run + 1}/{runs}: {name}")
            results[name].append(timed(command(work / "out"), work / "out"))
    med = {name: tuple(statistics.median(r[i] for r in rows) for i in range(4))
           for name, rows in results.items()}
    print(f"\n## CPU, one 60 s 1080p30 H.264 file (median of {runs} runs)\n")
    print("| case | CPU s | wall s | peak RSS MiB | frames | CPU vs ffmpeg | target |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    targets = {"exact fps=1": 0.45, "keyframes fps=1": 0.06, "exact fps=30": 0.6}
    for name, (cpu, wall, rss, frames) in med.items():
        anchor = "ffmpeg fps=30" if "fps=30" in name else "ffmpeg fps=1"
        ratio = cpu / med[anchor][0]
        target = targets.get(name)
        verdict = f"<= {target} {'ok' if ratio <= target else 'MISSED'}" if target else ""
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {rss:.0f} | {frames:.0f} | "
              f"{ratio:.3f}x | {verdict} |")


def section_shape(runs, work):
    source = generate_input()
    out = work / "out"
    ffmpeg = lambda: ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
                      "-vf", "fps=1,scale=640:-2", "-q:v", "2", str(out / "frame_%04d.jpg")]
    ours = lambda *shape: [str(BIN), "extract", str(source), "--fps", "1", "--out", str(out),
                           *shape]
    cases = [
        ("ffmpeg -vf fps=1,scale=640:-2", ffmpeg),
        ("video-pipeline fps=1, full size", lambda: ours()),
        ("video-pipeline fps=1, --width 640", lambda: ours("--width", "640")),
    ]
    results = {name: [] for name, _ in cases}
    for run in range(runs):
        for name, command in cases:
            log(f"shape: run {run + 1}/{runs}: {name}")
            cpu, wall, _, frames = timed(command(), out)
            frame_files = list(out.glob("frame_*.jpg"))
            size = sum(f.stat().st_size for f in frame_files) / max(len(frame_files), 1)
            width, height = jpeg_size(frame_files[0]) if frame_files else (0, 0)
            results[name].append((cpu, wall, frames, size, f"{width}x{height}"))
    med = {name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
                  rows[0][2], statistics.median(r[3] for r in rows), rows[0][4])
           for name, rows in results.items()}
    anchor = med["ffmpeg -vf fps=1,scale=640:-2"][0]
    print(f"\n## Frames at a model's size, one 60 s 1080p30 H.264 file (median of {runs} runs)\n")
    print("| case | frame size | CPU s | wall s | frames | KiB per frame | CPU vs ffmpeg |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (cpu, wall, frames, size, dims) in med.items():
        print(f"| {name} | {dims} | {cpu:.2f} | {wall:.2f} | {frames} | {size / 1024:.1f} |"
              f" {cpu / anchor:.3f}x |")
    scaled = med["video-pipeline fps=1, --width 640"][0]
    full = med["video-pipeline fps=1, full size"][0]
    cheaper = "ok" if scaled < full else "MISSED"
    ratio = scaled / anchor
    print(f"\n640 wide against full size: {scaled / full:.3f}x CPU (target < 1: {cheaper}); "
          f"against ffmpeg: {ratio:.3f}x (target <= 0.35: {'ok' if ratio <= 0.35 else 'MISSED'})")


def jpeg_size(path):
    """(width, height) from a baseline JPEG's SOF0 segment."""
    data = path.read_bytes()
    at = 2
    while at + 4 <= len(data):
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return (int.from_bytes(data[at + 7:at + 9], "big"),
                    int.from_bytes(data[at + 5:at + 7], "big"))
        at += 2 + length
    return (0, 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """The release daemon on a free port with its own folders."""

    def __init__(self, work, env=None):
        self.port = free_port()
        self.work = work
        media = work / "media"
        media.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port),
                           OUTPUT_FOLDER=str(work / "frames"),
                           UPLOAD_FOLDER=str(work / "videos"),
                           ALLOWED_INPUT_DIRS=str(media), RUST_LOG="warn", **(env or {}))
        self.log = open(work / "daemon.log", "w")
        self.process = subprocess.Popen([str(BIN)], env=environment, stdout=self.log,
                                        stderr=self.log)
        self.media = media
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daemon did not start")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{API}{path}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as reply:
            return json.loads(reply.read())

    def start_camera(self, camera_id, source, **fields):
        body = json.dumps({"camera_id": camera_id, "url": str(source), **fields}).encode()
        request = urllib.request.Request(self.url("/decode/"), data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = json.loads(reply.read())
        assert answer["status"] == "started", answer

    def status(self, camera_id):
        return self.get(f"/decode/status/?camera_id={camera_id}")

    def proc(self, field):
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+)", text, re.M).group(1))

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def live_cameras(daemon, source, count, sampling="exact"):
    clip = daemon.media / source.name
    if not clip.exists():
        os.link(source, clip) if source.stat().st_dev == daemon.media.stat().st_dev \
            else shutil.copy(source, clip)
    for n in range(count):
        daemon.start_camera(f"cam{n}", clip, fps=1, realtime=True, loop=True,
                            sampling=sampling)


def section_memory(work):
    source = generate_input()
    peaks = {}
    for count in (1, 9):
        daemon = Daemon(work / f"memory-{count}")
        try:
            live_cameras(daemon, source, count)
            time.sleep(40)
            peaks[count] = daemon.proc("VmHWM") / 1024
        finally:
            daemon.close()
    per_camera = (peaks[9] - peaks[1]) / 8
    print("\n## Memory, looped realtime 1080p30 cameras at fps=1 (daemon peak RSS)\n")
    print("| cameras | peak RSS MiB |")
    print("|---:|---:|")
    for count, peak in peaks.items():
        print(f"| {count} | {peak:.0f} |")
    verdict = "ok" if per_camera <= 40 else "MISSED"
    print(f"\neach additional camera: {per_camera:.1f} MiB (target <= 40: {verdict})")


def capacity_trial(work, source, count, window):
    daemon = Daemon(work / f"capacity-{count}")
    try:
        live_cameras(daemon, source, count)
        time.sleep(15)
        before = {n: daemon.status(f"cam{n}") for n in range(count)}
        cpu_before = daemon.cpu_seconds()
        time.sleep(window)
        cpu = daemon.cpu_seconds() - cpu_before
        after = {n: daemon.status(f"cam{n}") for n in range(count)}
    finally:
        daemon.close()
    # Counted over the window only: the 15 s before it include every camera's start.
    during = lambda key: sum((after[n].get(key) or 0) - (before[n].get(key) or 0)
                             for n in range(count))
    frames = [after[n]["frame_count"] - before[n]["frame_count"] for n in range(count)]
    lag = during("pacing_lag_events")
    dropped = during("frames_dropped")
    restarts = during("restart_count")
    kept_up = min(frames) >= window - 2 and lag == 0 and dropped == 0 and restarts == 0
    return kept_up, min(frames), max(frames), lag, dropped, cpu / window


def process_cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline_capacity_trial(work, source, count, window):
    """The original service's way: one `ffmpeg -re -stream_loop -1` process per camera
    running its command. Kept up when every process wrote a frame a second."""
    folders = [work / f"baseline-capacity-{count}" / f"cam{n}" for n in range(count)]
    processes = []
    try:
        for folder in folders:
            folder.mkdir(parents=True)
            processes.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                 "-i", str(source), "-vf", "fps=1,format=rgb24", "-q:v", "2",
                 str(folder / "frame_%04d.jpg")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(15)
        before = [len(list(folder.iterdir())) for folder in folders]
        cpu_before = sum(process_cpu_seconds(p.pid) for p in processes)
        time.sleep(window)
        cpu = sum(process_cpu_seconds(p.pid) for p in processes) - cpu_before
        frames = [len(list(folder.iterdir())) - b for folder, b in zip(folders, before)]
    finally:
        for process in processes:
            process.kill()
            process.wait()
        shutil.rmtree(work / f"baseline-capacity-{count}", ignore_errors=True)
    return min(frames) >= window - 2, min(frames), max(frames), cpu / window


def section_capacity(work, counts, baseline_counts, window):
    source = generate_input()
    print(f"\n## Capacity, looped realtime 1080p30 cameras at fps=1, exact ({window} s window)\n")
    print("| cameras | kept up | frames min..max (expected ~window) | pacing lag events |"
          " dropped | daemon CPU cores | core per camera |")
    print("|---:|---|---|---:|---:|---:|---:|")
    best = 0
    for count in counts:
        log(f"capacity: {count} cameras")
        kept_up, low, high, lag, dropped, cores = capacity_trial(work, source, count, window)
        print(f"| {count} | {'yes' if kept_up else 'no'} | {low}..{high} | {lag} | {dropped} |"
              f" {cores:.2f} | {cores / count:.3f} |", flush=True)
        if kept_up:
            best = max(best, count)
    print(f"\nsustained: {best} cameras (target >= 40: {'ok' if best >= 40 else 'MISSED'});"
          f" 40 cameras on {os.cpu_count()} cores leave {os.cpu_count() / 40:.3f} core each")
    if not baseline_counts:
        return
    print(f"\n### The original's command on the same input ({window} s window)\n")
    print("| ffmpeg processes | kept up | frames min..max | CPU cores | core per camera |")
    print("|---:|---|---|---:|---:|")
    baseline_best = 0
    for count in baseline_counts:
        log(f"capacity: {count} ffmpeg processes")
        kept_up, low, high, cores = baseline_capacity_trial(work, source, count, window)
        print(f"| {count} | {'yes' if kept_up else 'no'} | {low}..{high} | {cores:.2f} |"
              f" {cores / count:.3f} |", flush=True)
        if kept_up:
            baseline_best = max(baseline_best, count)
    ratio = f"{best / baseline_best:.1f}x" if baseline_best else "n/a"
    print(f"\nsustained: video-pipeline {best}, the original's command {baseline_best}"
          f" ({ratio})")


def wrk(url, expected):
    """Requests/s and p99 ms of `url`, after checking that it answers `expected`."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        if reply.read() != expected:
            raise RuntimeError(f"{url} does not answer the frame under test")
    output = subprocess.run(["wrk", "-t2", "-c16", "-d10s", "--latency", url],
                            check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests on {url}:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


def section_http(work):
    source = generate_input()
    daemon = Daemon(work / "http")
    nginx = None
    try:
        clip = daemon.media / "one.mp4"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                        str(source), "-t", "1", "-c", "copy", str(clip)], check=True)
        daemon.start_camera("http", clip, fps=1)
        deadline = time.time() + 30
        while daemon.status("http")["status"] != "completed" and time.time() < deadline:
            time.sleep(0.2)
        jpeg = work / "http" / "frames" / "http" / "latest.jpg"
        root = work / "nginx"
        (root / "html").mkdir(parents=True, exist_ok=True)
        # nginx's workers run as an unprivileged user: every folder on the way
        # to the file must be readable by it, or it answers 403 very fast.
        for folder in (work, root, root / "html"):
            folder.chmod(0o755)
        shutil.copy(jpeg, root / "html" / "frame.jpg")
        port = free_port()
        (root / "nginx.conf").write_text(
            "worker_processes 2; daemon off; pid nginx.pid; error_log stderr error;\n"
            "events { worker_connections 1024; }\n"
            "http { access_log off; sendfile on; types { image/jpeg jpg; }\n"
            f"  server {{ listen 127.0.0.1:{port}; root {root / 'html'}; }} }}\n")
        nginx = subprocess.Popen(["nginx", "-p", str(root), "-c", "nginx.conf"],
                                 stderr=subprocess.DEVNULL)
        time.sleep(1)
        size = jpeg.stat().st_size
        expected = jpeg.read_bytes()
        ours = wrk(daemon.url("/latest-frame/?camera_id=http"), expected)
        theirs = wrk(f"http://127.0.0.1:{port}/frame.jpg", expected)
    finally:
        daemon.close()
        if nginx:
            nginx.terminate()
            nginx.wait()
    ratio = ours[0] / theirs[0]
    print(f"\n## latest-frame/ under wrk -t2 -c16 -d10s ({size / 1024:.0f} KiB 1080p JPEG)\n")
    print("| server | requests/s | p99 ms |")
    print("|---|---:|---:|")
    print(f"| video-pipeline latest-frame/ | {ours[0]:.0f} | {ours[1]:.2f} |")
    print(f"| nginx, same file from disk | {theirs[0]:.0f} | {theirs[1]:.2f} |")
    verdict = "ok" if ratio >= 0.5 and ours[1] < 10 else "MISSED"
    print(f"\nratio {ratio:.2f}x of nginx, p99 {ours[1]:.2f} ms (target >= 0.5x, p99 < 10 ms: {verdict})")


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True,
                            text=True).stdout.splitlines()[0]
    return (f"{model}, {os.cpu_count()} cores, {memory / 1024 / 1024:.0f} GiB, "
            f"{platform.system()} {platform.release()}; {' '.join(ffmpeg.split()[:3])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*",
                        default=["cpu", "memory", "capacity", "http", "shape"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--capacity", type=int, nargs="*", default=[24, 32, 40])
    parser.add_argument("--baseline-capacity", type=int, nargs="*", default=[6, 8, 10, 12],
                        help="ffmpeg process counts to try (none: skip the baseline)")
    parser.add_argument("--window", type=int, default=45)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        if "cpu" in args.only:
            section_cpu(args.runs, work)
        if "memory" in args.only:
            section_memory(work)
        if "capacity" in args.only:
            section_capacity(work, args.capacity, args.baseline_capacity, args.window)
        if "http" in args.only:
            section_http(work)
        if "shape" in args.only:
            section_shape(args.runs, work)


if __name__ == "__main__":
    main()
