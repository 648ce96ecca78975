#!/usr/bin/env bash
# Side-by-side benchmarks of video-pipeline and its anchors (the original service's
# ffmpeg command, nginx), all in one run on this machine. Prints one table per
# section with the ratios and the machine; see benches/compare.py for the sections.
#
#   benches/compare.sh                       every section
#   benches/compare.sh --only cpu --runs 5   one section
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ffmpeg /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed (apt-get install ffmpeg time)" >&2; exit 1; }
done
cargo build --release --quiet
exec python3 benches/compare.py "$@"
