#!/usr/bin/env bash
# Installs what the integration tests need when it is missing, quietly when
# everything is already there; one line per thing installed.
#
#   tansu     Kafka-compatible broker (crates.io `tansu`, feature dynostore:
#             memory:// and s3:// storage)         10-20 min cold build
#   aiokafka  Python Kafka client used by tests/tools/produce.py
#   moto      moto[server]: a local S3 for tansu's persistent storage
#   promtool  Prometheus' metrics linter (Debian package `prometheus`)
#   chromium  headless browser for the web page test (Debian package
#             `chromium`; never Playwright's own browser download)
#   playwright  Python driver of that browser (tests/tools/web_e2e.py)
#   nginx     the reverse proxy the web page test runs the page behind
#             (Debian package `nginx`; the test runs its own from a temp prefix)
#   schemathesis, openapi-spec-validator   test and validate the OpenAPI document
set -euo pipefail

TANSU_VERSION="0.6.0"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { echo "ensure-tools: $*"; }

if ! command -v tansu >/dev/null 2>&1; then
  command -v cargo >/dev/null || { echo "ensure-tools: cargo is required (rustup.rs)" >&2; exit 1; }
  # One line before, not after: the cold build takes 10-20 min on 2 cores.
  log "installing tansu $TANSU_VERSION (cargo install, 10-20 min cold)"
  install_log="${TMPDIR:-/tmp}/tansu-install.log"
  # Not in the project's CARGO_TARGET_DIR: cargo install builds in a temp
  # dir and removes it.
  if ! env -u CARGO_TARGET_DIR cargo install tansu --version "$TANSU_VERSION" --locked \
      --features dynostore >"$install_log" 2>&1; then
    tail -20 "$install_log" >&2
    echo "ensure-tools: cargo install tansu failed (log: $install_log)" >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || { echo "ensure-tools: python3 is required" >&2; exit 1; }
pip_install() {
  # Debian's python refuses a system-wide pip install without this flag;
  # pyenv/venv pythons do not know it, so try plain first.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@" >/dev/null 2>&1 ||
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
if ! "$PYTHON" -c 'import aiokafka' >/dev/null 2>&1; then
  pip_install aiokafka
  log "installed aiokafka"
fi
if ! "$PYTHON" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  pip_install 'moto[server]'
  log "installed moto[server]"
fi
SCHEMATHESIS_VERSION="4.32.5"
if ! "$PYTHON" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" >/dev/null 2>&1; then
  pip_install "schemathesis==$SCHEMATHESIS_VERSION"
  log "installed schemathesis $SCHEMATHESIS_VERSION"
fi
if ! "$PYTHON" -c 'import openapi_spec_validator' >/dev/null 2>&1; then
  pip_install 'openapi-spec-validator==0.9.0'
  log "installed openapi-spec-validator 0.9.0"
fi

if ! "$PYTHON" -c 'import playwright.sync_api' >/dev/null 2>&1; then
  pip_install playwright
  log "installed playwright (python)"
fi

# Installs Debian package $1 (apt-get; an index refresh when the first try
# fails), logging to $TMPDIR/$1-install.log.
apt_package() {
  local pkg="$1" log="${TMPDIR:-/tmp}/$1-install.log"
  command -v apt-get >/dev/null 2>&1 ||
    { echo "ensure-tools: $pkg missing and no apt-get: install Debian's $pkg" >&2; exit 1; }
  try() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >"$log" 2>&1; }
  if ! try; then
    apt-get update -q >/dev/null 2>&1 || true
    try || {
      tail -20 "$log" >&2
      echo "ensure-tools: apt-get install $pkg failed" >&2
      exit 1
    }
  fi
}

if ! command -v promtool >/dev/null 2>&1; then
  apt_package prometheus
  log "installed promtool ($(promtool --version 2>&1 | head -1))"
fi

if ! command -v chromium >/dev/null 2>&1; then
  apt_package chromium
  log "installed chromium ($(chromium --version 2>/dev/null | head -1))"
fi

# In /usr/sbin, which a non-root PATH may lack.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  apt_package nginx
  log "installed nginx ($(/usr/sbin/nginx -v 2>&1 | head -1))"
fi
