#!/usr/bin/env bash
# A first look: builds the daemon, makes a sample clip with the ffmpeg CLI and starts
# camera "sample" on it, played at its own speed in a loop (a stand-in for a live
# camera), one frame a second. Frames appear in ./data/frames/sample/. Ctrl-C stops.
#
# Environment: PORT (default 8002) and HOST (default 127.0.0.1) for the API.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

port=${PORT:-8002}
host=${HOST:-127.0.0.1}
api=http://127.0.0.1:$port/api/v1/video-pipeline
clip=data/videos/sample.mp4

bash scripts/deps.sh build tools
echo "==> building the daemon (release; the first build takes several minutes)"
cargo build --release --locked

mkdir -p data/videos data/frames
if [ ! -s "$clip" ]; then
  echo "==> making $clip (30 s of a 1280x720 25 fps test pattern, H.264)"
  ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=25" -t 30 \
    -c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p "$clip.part.mp4"
  mv "$clip.part.mp4" "$clip"
fi

daemon=''
stop_daemon() {
  trap - EXIT INT TERM
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  echo "==> stopped; the frames stay in ./data/frames/sample/"
}
trap stop_daemon EXIT
trap 'exit 130' INT TERM

echo "==> starting the daemon on $host:$port"
HOST=$host PORT=$port OUTPUT_FOLDER=./data/frames UPLOAD_FOLDER=./data/videos \
  RUST_LOG=${RUST_LOG:-info} target/release/video-pipeline &
daemon=$!

for attempt in $(seq 150); do
  curl -fsS "$api/health/" >/dev/null 2>&1 && break
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "demo.sh: the daemon exited; is port $port taken? Try: PORT=8012 bash scripts/demo.sh" >&2
    exit 1
  fi
  if [ "$attempt" -eq 150 ]; then
    echo "demo.sh: the daemon did not answer on $api within 30 s" >&2
    exit 1
  fi
  sleep 0.2
done

echo "==> starting camera 'sample' on $clip (realtime, looped, 1 frame a second)"
curl -fsS -X POST "$api/decode/" -F camera_id=sample -F "url=$clip" -F fps=1 \
  -F realtime=true -F loop=true
echo

cat <<TEXT

Frames appear in ./data/frames/sample/ (frame_0001.jpg, frame_0002.jpg, ... and latest.jpg).
In another terminal:
  ls data/frames/sample/ | tail
  curl "$api/decode/status/?camera_id=sample"
  curl -o latest.jpg "$api/latest-frame/?camera_id=sample"
Ctrl-C stops the daemon.

TEXT
wait "$daemon"
