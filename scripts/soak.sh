#!/usr/bin/env bash
# Soak test (not part of CI): a release daemon with many live RTSP cameras for a long
# time, while their servers are killed and restarted at random. Every SAMPLE_SECONDS it
# records the daemon's resident memory, open file descriptors and threads in a CSV; at
# the end it compares the first 10 % of the samples after the warm-up with the last
# 10 % and prints PASS when none grew by GROWTH_LIMIT_PERCENT or more.
#
#   DURATION=600 bash scripts/soak.sh
#
# Environment (defaults in brackets):
#   DURATION [1800]        seconds to run, warm-up included
#   SERVERS [4], MOUNTS [4] RTSP server processes and streams per process: cameras =
#                          SERVERS x MOUNTS, each a 320x240 25 fps H.264 test pattern
#   FPS [2]                frames per second asked of each camera
#   SAMPLE_SECONDS [10], WARMUP_SECONDS [60], GROWTH_LIMIT_PERCENT [5]
#   KILL_MIN_SECONDS [20], KILL_MAX_SECONDS [60]   time between two server kills
#   DOWN_MIN_SECONDS [2], DOWN_MAX_SECONDS [15]    how long a killed server stays down
#   SOAK_DIR [target/soak/<date>]  CSV (samples.csv), daemon and server logs, frames
#   SEED                   seeds $RANDOM, to repeat a run's kills
#   RECONNECT_MAX_SECONDS [5]  the daemon's cap, so cameras come back soon after a kill
#
# Every figure is compared over the samples taken while every camera was streaming
# (falling back to all samples of the window when there are none), because a camera
# whose server is down holds no socket, no decoder threads and no decoder memory. RSS
# is also split into its anonymous part (heap, stacks) and its file-backed part
# (library code paged in as new code paths run), for information.
# Needs what the RTSP tests need (bash scripts/deps.sh build tools test) and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=${DURATION:-1800}
servers=${SERVERS:-4}
mounts=${MOUNTS:-4}
fps=${FPS:-2}
sample_seconds=${SAMPLE_SECONDS:-10}
warmup_seconds=${WARMUP_SECONDS:-60}
growth_limit=${GROWTH_LIMIT_PERCENT:-5}
kill_min=${KILL_MIN_SECONDS:-20}
kill_max=${KILL_MAX_SECONDS:-60}
down_min=${DOWN_MIN_SECONDS:-2}
down_max=${DOWN_MAX_SECONDS:-15}
dir=${SOAK_DIR:-target/soak/$(date +%Y%m%d-%H%M%S)}
[ -n "${SEED:-}" ] && RANDOM=$SEED
cameras=$((servers * mounts))

log() { echo "[soak $(date +%H:%M:%S)] $*"; }
fail() {
  echo "soak.sh: $*" >&2
  exit 1
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# A whole number in [low, high].
random_between() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }

log "building the daemon (release)"
cargo build --release --locked --bin video-pipeline
binary=target/release/video-pipeline

mkdir -p "$dir/frames" "$dir/videos"
dir=$(cd "$dir" && pwd)
csv=$dir/samples.csv
daemon=''
server_pids=()
server_ports=()

cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${server_pids[@]}"; do
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -KILL "$daemon" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts server $1 on its port and waits for READY; a port just freed may refuse to be
# bound for a moment, which is retried.
start_server() {
  local index=$1 port=${server_ports[$1]} out=$dir/server$1.out deadline=$((SECONDS + 30))
  while true; do
    : >"$out"
    python3 tests/support/rtsp_server.py --port "$port" --mounts "$mounts" \
      >"$out" 2>>"$dir/server$index.log" </dev/null &
    server_pids[index]=$!
    while [ $SECONDS -lt $deadline ]; do
      grep -qx READY "$out" && return 0
      kill -0 "${server_pids[index]}" 2>/dev/null || break
      sleep 0.2
    done
    wait "${server_pids[index]}" 2>/dev/null || true
    server_pids[index]=''
    [ $SECONDS -lt $deadline ] || fail "RTSP server $index did not start on port $port: $(tail -3 "$dir/server$index.log")"
    sleep 0.5
  done
}

kill_server() {
  kill -KILL "${server_pids[$1]}" 2>/dev/null || true
  wait "${server_pids[$1]}" 2>/dev/null || true
  server_pids[$1]=''
}

port=$(free_port)
api=http://127.0.0.1:$port/api/v1/video-pipeline
log "daemon on port $port; $cameras cameras on $servers servers; ${duration} s; output in $dir"
HOST=127.0.0.1 PORT=$port OUTPUT_FOLDER=$dir/frames UPLOAD_FOLDER=$dir/videos \
  RECONNECT_MAX_SECONDS=${RECONNECT_MAX_SECONDS:-5} RUST_LOG=${RUST_LOG:-info} \
  "$binary" 2>"$dir/daemon.log" </dev/null &
daemon=$!
for attempt in $(seq 100); do
  curl -fsS "$api/health/" >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || fail "the daemon exited: $(tail -3 "$dir/daemon.log")"
  [ "$attempt" -lt 100 ] || fail "the daemon did not answer within 20 s"
  sleep 0.2
done

for ((i = 0; i < servers; i++)); do
  server_ports[i]=$(free_port)
  start_server "$i"
done
camera_ids=()
for ((i = 0; i < servers; i++)); do
  for ((j = 1; j <= mounts; j++)); do
    id=soak-$i-$j
    url=rtsp://127.0.0.1:${server_ports[i]}/stream$j
    [ "$mounts" -eq 1 ] && url=rtsp://127.0.0.1:${server_ports[i]}/stream
    curl -fsS -X POST "$api/decode/" -F "camera_id=$id" -F "url=$url" -F "fps=$fps" >/dev/null ||
      fail "could not start camera $id"
    camera_ids+=("$id")
  done
done

pid_status() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$daemon/status"; }

# Prints "streaming frames restarts" summed over the cameras.
camera_totals() {
  local id body streaming=0 frames=0 restarts=0 value
  for id in "${camera_ids[@]}"; do
    body=$(curl -fsS --max-time 5 "$api/decode/status/?camera_id=$id") || continue
    case $body in *'"phase":"streaming"'*) streaming=$((streaming + 1)) ;; esac
    value=$(grep -o '"frame_count":[0-9]*' <<<"$body" | cut -d: -f2)
    frames=$((frames + ${value:-0}))
    value=$(grep -o '"restart_count":[0-9]*' <<<"$body" | cut -d: -f2)
    restarts=$((restarts + ${value:-0}))
  done
  echo "$streaming $frames $restarts"
}

echo "elapsed_s,rss_kb,fds,threads,streaming,frames,restarts,servers_up,rss_anon_kb,rss_file_kb" >"$csv"
started=$SECONDS
next_sample=$started
next_kill=$((started + warmup_seconds / 2 + $(random_between "$kill_min" "$kill_max")))
down=-1
restart_at=0
kills=0
while [ $((SECONDS - started)) -lt "$duration" ]; do
  kill -0 "$daemon" 2>/dev/null || fail "the daemon died: $(tail -5 "$dir/daemon.log")"
  now=$SECONDS
  if [ "$down" -ge 0 ] && [ "$now" -ge "$restart_at" ]; then
    log "restarting server $down"
    start_server "$down"
    down=-1
  fi
  if [ "$down" -lt 0 ] && [ "$now" -ge "$next_kill" ] &&
    [ $((now - started)) -lt $((duration - 30)) ]; then
    down=$((RANDOM % servers))
    kill_server "$down"
    kills=$((kills + 1))
    restart_at=$((now + $(random_between "$down_min" "$down_max")))
    next_kill=$((now + $(random_between "$kill_min" "$kill_max")))
    log "killed server $down (kill $kills), back in $((restart_at - now)) s"
  fi
  if [ "$now" -ge "$next_sample" ]; then
    read -r streaming frames restarts < <(camera_totals)
    up=$servers
    [ "$down" -ge 0 ] && up=$((servers - 1))
    fds=$(find "/proc/$daemon/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    row="$((now - started)),$(pid_status VmRSS),$fds,$(pid_status Threads),$streaming,$frames,$restarts,$up"
    row="$row,$(pid_status RssAnon),$(pid_status RssFile)"
    echo "$row" >>"$csv"
    log "sample $row"
    # Keep the disk bounded, as operations.md recommends for production.
    find "$dir/frames" -name 'frame_*.jpg' -mmin +1 -delete 2>/dev/null || true
    next_sample=$((next_sample + sample_seconds))
  fi
  sleep 1
done

# Every camera must come back once its server is up.
[ "$down" -ge 0 ] && start_server "$down"
deadline=$((SECONDS + 60))
until read -r streaming _ _ < <(camera_totals) && [ "$streaming" -eq "$cameras" ]; do
  [ $SECONDS -lt $deadline ] || fail "only $streaming of $cameras cameras streaming 60 s after the last restart"
  sleep 2
done
log "all $cameras cameras streaming at the end"

kill -TERM "$daemon"
stop_started=$SECONDS
wait "$daemon" && daemon_exit=0 || daemon_exit=$?
daemon=''
log "daemon exited with $daemon_exit in $((SECONDS - stop_started)) s after SIGTERM"

awk -F, -v warmup="$warmup_seconds" -v cameras="$cameras" -v limit="$growth_limit" \
  -v kills="$kills" -v cpus="$(nproc)" '
  NR > 1 && $1 >= warmup { n++; t[n] = $1; rss[n] = $2; fds[n] = $3; thr[n] = $4; st[n] = $5; fr[n] = $6; rs[n] = $7; anon[n] = $9; file[n] = $10 }
  # Mean of column c over samples [a, b]; with healthy = 1 only those with every camera
  # streaming, unless there are none.
  function mean(c, a, b, healthy,   i, sum, count) {
    for (i = a; i <= b; i++) if (!healthy || st[i] == cameras) { sum += value(c, i); count++ }
    if (count == 0 && healthy) return mean(c, a, b, 0)
    return sum / count
  }
  function value(c, i) {
    return c == "rss" ? rss[i] : c == "fds" ? fds[i] : c == "anon" ? anon[i] : c == "file" ? file[i] : thr[i]
  }
  function report(name, c, healthy, informative,   first, last, growth) {
    first = mean(c, 1, k, healthy); last = mean(c, n - k + 1, n, healthy)
    growth = first > 0 ? (last - first) / first * 100 : 0
    printf "%-8s first 10%%: %10.1f  last 10%%: %10.1f  growth: %+6.2f %%\n", name, first, last, growth
    if (growth >= limit && !informative) failed = 1
  }
  END {
    if (n < 2) { print "soak.sh: too few samples after the warm-up"; exit 1 }
    k = int(n / 10); if (k < 1) k = 1
    printf "cameras: %d, CPUs: %d, samples after warm-up: %d (%d per window), kills: %d\n", cameras, cpus, n, k, kills
    printf "from %d s to %d s: frames %d -> %d, restarts %d -> %d\n", t[1], t[n], fr[1], fr[n], rs[1], rs[n]
    printf "start: RSS %d kB, fds %d, threads %d; end: RSS %d kB, fds %d, threads %d\n", rss[1], fds[1], thr[1], rss[n], fds[n], thr[n]
    report("RSS kB", "rss", 1); report("fds", "fds", 1); report("threads", "thr", 1)
    if (anon[n] != "") { report("anon kB", "anon", 1, 1); report("file kB", "file", 1, 1) }
    print (failed ? "FAIL" : "PASS") ": growth limit " limit " %"
    exit failed
  }' "$csv" >"$dir/summary.txt" && verdict=0 || verdict=$?
cat "$dir/summary.txt"
[ "$daemon_exit" -eq 0 ] || fail "the daemon exited with $daemon_exit on SIGTERM"
exit "$verdict"
