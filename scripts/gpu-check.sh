#!/usr/bin/env bash
# Hardware decoding check for a machine with an NVIDIA GPU, in one command:
#
#   bash scripts/gpu-check.sh [--seconds N] [--software-only]
#
# Builds the release binary, makes a 1080p30 H.264 sample with the ffmpeg CLI, decodes
# every frame of it once with CUDA and once in software (`extract --decode-all`, one
# JPEG per second of video), checks that CUDA really decoded it, that each JPEG pair
# matches (PSNR >= 35 dB with ffmpeg's psnr filter) and prints the decode throughput of
# both. Without an NVIDIA GPU it says so and exits 1; --software-only runs every other
# step (the software side twice) to check the script itself on any machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MIN_PSNR_DB=35
seconds=20
software_only=false
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --software-only) software_only=true; shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $seconds in
  '' | *[!0-9]* | 0) echo "gpu-check: --seconds must be a whole number > 0" >&2; exit 2 ;;
esac

say() { echo "gpu-check: $*"; }
fail() { echo "gpu-check: FAILED: $*" >&2; exit 1; }

for tool in cargo ffmpeg awk; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

hardware=cuda
if $software_only; then
  hardware=none
  say "--software-only: comparing software with software, no GPU used"
elif ! command -v nvidia-smi >/dev/null; then
  fail "no NVIDIA GPU: nvidia-smi is not installed (run with --software-only to check the rest)"
elif ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  fail "no NVIDIA GPU: nvidia-smi lists none (run with --software-only to check the rest)"
else
  say "GPU: $(nvidia-smi -L | head -n 1)"
fi

say "building the release binary"
cargo build --release --locked --quiet
binary=${CARGO_TARGET_DIR:-target}/release/video-pipeline

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sample=$work/sample_1080p30.mp4
say "making a ${seconds} s 1080p30 H.264 sample"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
  -t "$seconds" -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p "$sample"
total_frames=$((seconds * 30))

# Decodes the sample with backend $1 into folder $2; prints the wall time in seconds.
decode() {
  local backend=$1 out=$2 started ended
  started=$(date +%s.%N)
  "$binary" extract --hwaccel "$backend" --decode-all --fps 1 --out "$out" "$sample" \
    2>"$out.log" || { cat "$out.log" >&2; fail "extract --hwaccel $backend failed"; }
  ended=$(date +%s.%N)
  awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.3f", b - a }'
}

say "decoding with --hwaccel $hardware"
hardware_time=$(decode "$hardware" "$work/hardware")
if [ "$hardware" = cuda ] && ! grep -q 'decoded with cuda' "$work/hardware.log"; then
  cat "$work/hardware.log" >&2
  fail "the decode fell back to software: CUDA decoding does not work here"
fi
say "decoding in software"
software_time=$(decode none "$work/software")

hardware_frames=$(find "$work/hardware" -name 'frame_*.jpg' | wc -l)
software_frames=$(find "$work/software" -name 'frame_*.jpg' | wc -l)
[ "$software_frames" -gt 0 ] || fail "software decoding wrote no frames"
[ "$hardware_frames" -eq "$software_frames" ] ||
  fail "$hardware wrote $hardware_frames frames, software $software_frames"

worst=inf
for frame in "$work"/software/frame_*.jpg; do
  name=$(basename "$frame")
  psnr=$(ffmpeg -hide_banner -nostats -i "$work/hardware/$name" -i "$frame" \
    -lavfi psnr -f null - 2>&1 | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -n 1)
  [ -n "$psnr" ] || fail "ffmpeg could not compare $name"
  if [ "$psnr" != inf ] && awk -v p="$psnr" -v m="$MIN_PSNR_DB" 'BEGIN { exit !(p < m) }'; then
    fail "$name: PSNR $psnr dB < $MIN_PSNR_DB dB between $hardware and software"
  fi
  if [ "$worst" = inf ] || { [ "$psnr" != inf ] &&
    awk -v p="$psnr" -v w="$worst" 'BEGIN { exit !(p < w) }'; }; then
    worst=$psnr
  fi
done

rate() { awk -v n="$total_frames" -v t="$1" 'BEGIN { printf "%.1f", n / t }'; }
say "frames compared: $software_frames (lowest PSNR: $worst dB, at least $MIN_PSNR_DB needed)"
say "decode throughput, $total_frames frames of 1080p30 H.264:"
printf 'gpu-check:   %-8s %8s s  %8s frames/s\n' "$hardware" "$hardware_time" "$(rate "$hardware_time")"
printf 'gpu-check:   %-8s %8s s  %8s frames/s\n' software "$software_time" "$(rate "$software_time")"
say "PASSED"
