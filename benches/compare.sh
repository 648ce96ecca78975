#!/usr/bin/env bash
# Side-by-side: the original service's ffmpeg command and `video-pipeline extract`
# (sample-aware, the default, and with --decode-all) on the same generated input, in
# one run. Prints CPU seconds (user + sys), wall
# time and peak RSS of each (median of RUNS runs) and the ratios.
#
# Usage: benches/compare.sh            (RUNS=3 by default; needs ffmpeg and GNU time)
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MEDIA=target/bench-media
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for tool in ffmpeg /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed (apt-get install ffmpeg time)" >&2; exit 1; }
done

cargo build --release --quiet
BIN=target/release/video-pipeline

mkdir -p "$MEDIA"
INPUT=$MEDIA/h264_1080p30_60s_gop2.mp4
if [ ! -f "$INPUT" ]; then
  echo "generating $INPUT (60 s 1080p30 H.264, GOP 2 s) ..." >&2
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 60 \
    -c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p "$INPUT.tmp.mp4"
  mv "$INPUT.tmp.mp4" "$INPUT"
fi

# measure NAME SCRIPT → appends "cpu wall rss_kib frames" to $WORK/NAME; SCRIPT runs
# under bash with $OUT set to an empty folder.
measure() {
  local name=$1 script=$2
  local out="$WORK/out-$name"
  rm -rf "$out"; mkdir -p "$out"
  OUT=$out /usr/bin/time -f "%U %S %e %M" -o "$WORK/time" bash -c "$script" >/dev/null 2>"$WORK/stderr" || {
    echo "compare.sh: $name failed:" >&2; cat "$WORK/stderr" >&2; exit 1; }
  local frames
  frames=$(find "$out" -name 'frame_*.jpg' | wc -l)
  awk -v f="$frames" '{ printf "%.3f %.3f %d %d\n", $1 + $2, $3, $4, f }' "$WORK/time" >>"$WORK/$name"
}

export INPUT BIN
BASELINE='ffmpeg -hide_banner -loglevel error -y -i "$INPUT" -vf fps=1,format=rgb24 -q:v 2 "$OUT/frame_%04d.jpg"'
PIPELINE='"$BIN" extract "$INPUT" --fps 1 --out "$OUT"'
FULL_DECODE='"$BIN" extract "$INPUT" --fps 1 --out "$OUT" --decode-all'

VARIANTS=(ffmpeg video-pipeline vp-decode-all)
for _ in $(seq "$RUNS"); do
  measure ffmpeg "$BASELINE"
  measure video-pipeline "$PIPELINE"
  measure vp-decode-all "$FULL_DECODE"
done

# median of column $2 in file $1
median() { sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "ffmpeg:  $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
echo "input:   60 s 1080p30 H.264 (x264 veryfast, GOP 2 s), fps=1, median of $RUNS runs"
echo
printf '%-16s %10s %10s %12s %8s\n' "" "CPU s" "wall s" "peak RSS MiB" "frames"
for name in "${VARIANTS[@]}"; do
  printf '%-16s %10.2f %10.2f %12.0f %8d\n' "$name" \
    "$(median "$WORK/$name" 1)" "$(median "$WORK/$name" 2)" \
    "$(echo "$(median "$WORK/$name" 3) / 1024" | bc -l)" "$(median "$WORK/$name" 4)"
done
echo
for name in "${VARIANTS[@]:1}"; do
  awk -v n="$name" -v c1="$(median "$WORK/ffmpeg" 1)" -v c2="$(median "$WORK/$name" 1)" \
      -v w1="$(median "$WORK/ffmpeg" 2)" -v w2="$(median "$WORK/$name" 2)" \
      -v r1="$(median "$WORK/ffmpeg" 3)" -v r2="$(median "$WORK/$name" 3)" \
      'BEGIN { printf "ratio %s / ffmpeg: CPU %.2fx, wall %.2fx, peak RSS %.2fx\n", n, c2 / c1, w2 / w1, r2 / r1 }'
done
