#!/usr/bin/env bash
# Installs what the project needs on a fresh machine of its kind: uv and the Python
# workspace, the Kafka broker's jars, and the Debian tools the tests use (Prometheus
# and promtool). Every step is skipped when already done, so it is cheap to re-run.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

log() { printf 'install: %s\n' "$*" >&2; }

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    return
  fi
  log "installing uv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check uv
}

ensure_debian_packages() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
  # The portal benchmark's load generator (make bench).
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root or install them)"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # The Debian package starts a system Prometheus; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

ensure_vegeta() {
  # The portal benchmark's open-loop load generator (make bench), built with Go
  # into .tools/bin; the benchmark looks there.
  if command -v vegeta >/dev/null 2>&1 || [ -x .tools/bin/vegeta ]; then
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    log "Go is missing: the portal benchmark's open-loop run needs vegeta"
    return
  fi
  log "building vegeta"
  GOBIN="$repo_root/.tools/bin" go install github.com/tsenart/vegeta/v12@v12.13.0
}

ensure_uv
log "syncing the Python workspace"
uv sync --frozen --quiet
ensure_debian_packages
ensure_vegeta
bash deploy/local/kafka.sh fetch
