#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ one after the other, each for a set time, and prints
# what each did: executions, coverage, corpus, crashes. Not part of CI (minutes per
# target); see docs/security.md, "Fuzzing".
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]
#
# SECONDS: per target, default 600. TARGET: default all (cargo fuzz list).
# Environment: SANITIZER (default none: the fuzzed code is safe Rust and a panic is
# what is looked for; address for ASan), FUZZ_TARGET_DIR (the fuzz build's folder,
# default fuzz/target), FUZZ_ARGS (more libFuzzer options, such as -max_len=65536).
#
# On a fresh Debian 12 machine as root it installs what is missing: the build packages
# (scripts/deps.sh build), and cargo-fuzz. cargo-fuzz passes unstable (-Z) flags to
# rustc and cargo; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
#
# Each target's corpus is fuzz/corpus/TARGET (kept between runs, git-ignored), started
# from the committed fuzz/seeds/TARGET where there is one. A crash is written to
# fuzz/artifacts/TARGET/ and the script ends with status 1 after the other targets,
# printing how to reproduce it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-600}
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac
sanitizer=${SANITIZER:-none}
target_dir=$(realpath -m "${FUZZ_TARGET_DIR:-fuzz/target}")
read -r -a extra_args <<<"${FUZZ_ARGS:-}"
export RUSTC_BOOTSTRAP=1

bash scripts/deps.sh build
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "==> building ${targets[*]} (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer" --target-dir "$target_dir"

# What libFuzzer leaves for a failing input: a panic or abort, a hang past -timeout,
# memory past -rss_limit_mb, a leak (with ASan).
found() {
  find "$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l
}

logs=$target_dir/logs
mkdir -p "$logs"
summary=()
failed=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  artifacts=fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  inputs=("$corpus")
  [ -d "fuzz/seeds/$target" ] && inputs+=("fuzz/seeds/$target")
  before=$(found "$artifacts")
  log=$logs/$target.log
  # The targets keep a scratch folder of files under TMPDIR, one per run.
  scratch=$(mktemp -d)
  echo "==> $target for $seconds s (log: $log)"
  status=0
  TMPDIR=$scratch cargo fuzz run -s "$sanitizer" --target-dir "$target_dir" "$target" \
    "${inputs[@]}" -- -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 "${extra_args[@]}" \
    >"$log" 2>&1 || status=$?
  rm -rf "$scratch"

  # libFuzzer's last status line (#N ... cov: C ft: F corp: E/S ... exec/s: R) and its
  # final stats.
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  field() { sed -nE "s/.* $1: ([^ ]+).*/\\1/p" <<<"$last"; }
  stat() { sed -nE "s/^stat::$1: *([0-9]+).*/\\1/p" "$log" | tail -n 1; }
  runs=$(stat number_of_executed_units)
  rate=$(stat average_exec_per_sec)
  rss=$(stat peak_rss_mb)
  crashes=$(($(found "$artifacts") - before))
  # The corpus as libFuzzer counts it (entries/size, seeds included).
  line=$(printf '%-14s %5ss  execs %-11s exec/s %-7s cov %-6s ft %-7s corpus %-12s rss %s MB  crashes %s' \
    "$target" "$seconds" "${runs:-?}" "${rate:-?}" "$(field cov)" "$(field ft)" "$(field corp)" \
    "${rss:-?}" "$crashes")
  echo "    $line"
  summary+=("$line")
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed+=("$target")
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 5 | sed 's/^/    /'
    echo "    reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer $target $artifacts/<file>"
  fi
done

echo "==> summary"
printf '    %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes or errors in ${failed[*]}" >&2
  exit 1
fi
