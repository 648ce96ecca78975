#!/usr/bin/env bash
# Installs the Debian 12 packages that a task needs, and checks the Rust toolchain.
#
#   bash scripts/deps.sh build tools test lint
#
# build: compile the daemon (libav headers, clang for bindgen, cmake and nasm for
#        libjpeg-turbo); tools: the ffmpeg CLI and curl; test: the RTSP test server
#        (GStreamer, python3-gi), python3-venv, Chromium (the status page's test
#        opens the page in it, headless) and openssl (the HTTPS test makes its
#        certificate with it, the auth tests their key pairs); lint: clippy and rustfmt.
# Packages already installed are not asked for again, so it is quick the second time
# and works without root once everything is there.
set -euo pipefail

build=(
  build-essential pkg-config clang libclang-dev cmake nasm
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
)
tools=(ffmpeg curl ca-certificates)
test=(
  python3 python3-gi python3-venv gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  chromium openssl
)

wanted=()
lint=false
for group in "$@"; do
  case "$group" in
    build) wanted+=("${build[@]}") ;;
    tools) wanted+=("${tools[@]}") ;;
    test) wanted+=("${test[@]}") ;;
    lint) lint=true ;;
    *) echo "deps.sh: unknown group '$group' (expected build, tools, test, lint)" >&2; exit 2 ;;
  esac
done

missing=()
for package in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "deps.sh: run as root, or install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${wanted[@]}"
else
  echo "deps.sh: all ${#wanted[@]} system packages present"
fi

if ! command -v cargo >/dev/null; then
  echo "deps.sh: cargo not found: install Rust 1.88 or newer with rustup (https://rustup.rs)" >&2
  exit 1
fi
if $lint; then
  for pair in clippy:clippy rustfmt:fmt; do
    component=${pair%%:*} tool=${pair#*:}
    if ! cargo "$tool" --version >/dev/null 2>&1; then
      if command -v rustup >/dev/null; then
        rustup component add "$component"
      else
        echo "deps.sh: cargo $tool is missing and there is no rustup to add it" >&2
        exit 1
      fi
    fi
  done
fi
