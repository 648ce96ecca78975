#!/usr/bin/env bash
# A first look: builds the daemon, makes a sample clip with the ffmpeg CLI, streams it
# in a loop over UDP as a live camera and starts decoding it as camera "sample", one
# frame a second. Frames appear in ./data/frames/sample/. Ctrl-C stops everything.
#
# Environment: PORT (default 8002) for the API, DEMO_UDP_PORT (default 5600) for the
# sample stream, HOST (default 127.0.0.1) for the API's listen address.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

port=${PORT:-8002}
host=${HOST:-127.0.0.1}
udp_port=${DEMO_UDP_PORT:-5600}
api=http://127.0.0.1:$port/api/v1/video-pipeline
clip=data/videos/sample.mp4
stream=udp://127.0.0.1:$udp_port

bash scripts/deps.sh build tools
echo "==> building the daemon (release; the first build takes a few minutes)"
cargo build --release --locked

mkdir -p data/videos data/frames
if [ ! -s "$clip" ]; then
  echo "==> making $clip (30 s of a 1280x720 test pattern, H.264)"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=25" \
    -t 30 -c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p "$clip.part.mp4"
  mv "$clip.part.mp4" "$clip"
fi

streamer='' daemon=''
stop_all() {
  trap - EXIT INT TERM
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  if [ -n "$streamer" ] && kill -0 "$streamer" 2>/dev/null; then
    kill -TERM "$streamer" 2>/dev/null || true
    wait "$streamer" 2>/dev/null || true
  fi
  echo "==> stopped; frames stay in ./data/frames/sample/"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

echo "==> streaming $clip in a loop to $stream (MPEG-TS, real time)"
ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$clip" \
  -c copy -f mpegts "$stream?pkt_size=1316" &
streamer=$!

echo "==> starting the daemon on $host:$port"
HOST=$host PORT=$port OUTPUT_FOLDER=./data/frames UPLOAD_FOLDER=./data/videos \
  RUST_LOG=${RUST_LOG:-info} target/release/video-pipeline &
daemon=$!

for _ in $(seq 100); do
  curl -fsS "$api/health/" >/dev/null 2>&1 && break
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "demo.sh: the daemon exited (is port $port taken? try PORT=8012 bash scripts/demo.sh)" >&2
    exit 1
  fi
  sleep 0.2
done

echo "==> starting camera 'sample' from $stream at 1 fps"
curl -fsS -X POST "$api/decode/" -F camera_id=sample -F "url=$stream" -F fps=1
echo

cat <<TEXT

Frames appear in ./data/frames/sample/ (frame_0001.jpg, frame_0002.jpg, ... and latest.jpg).
Try, in another terminal:
  ls -l data/frames/sample/ | tail
  curl "$api/decode/status/?camera_id=sample"
  curl -o latest.jpg "$api/latest-frame/?camera_id=sample"
Ctrl-C stops the daemon and the sample stream.

TEXT
wait "$daemon"
