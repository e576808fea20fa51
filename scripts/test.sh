#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine of this kind (Debian, rustup, root).
# Installs what is missing (wasm32 target, PostgreSQL server binaries, Debian's chromium and
# chromium-driver for the synthetic workflow tests, Debian's prometheus and
# prometheus-node-exporter, the OpenTelemetry Python SDK from PyPI for the
# OTLP intake tests), starts what the tests need (a throwaway
# PostgreSQL cluster; the tests start their own HTTP, SMTP and TLS receivers on 127.0.0.1),
# and stops it again.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Each `log` line starts a step; the steps' wall times are printed at the end, pass or fail.
step_names=()
step_secs=()
step_name="tools the tests need (installed when missing)"
step_start=$SECONDS
end_step() {
  step_names+=("$step_name")
  step_secs+=($((SECONDS - step_start)))
  step_start=$SECONDS
}
log() {
  end_step
  step_name="$*"
  printf '\n== %s\n' "$*"
}
print_timings() {
  end_step
  printf '\n== time per step (s)\n'
  local i
  for i in "${!step_names[@]}"; do
    [ "${step_secs[$i]}" -gt 0 ] && printf '%6d  %s\n' "${step_secs[$i]}" "${step_names[$i]}"
  done
  printf '%6d  total\n' "$SECONDS"
}
trap print_timings EXIT

# --- what the tests need --------------------------------------------------------------
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
# The browser SDK's size build: a nightly pinned by date, with rust-src for -Zbuild-std
# (scripts/build-sdk.sh says why).
sdk_toolchain="$(cat thorbis-obs-wasm/sdk-toolchain)"
if ! rustup run "$sdk_toolchain" rustc --print sysroot >/dev/null 2>&1 ||
  [ ! -d "$(rustup run "$sdk_toolchain" rustc --print sysroot)/lib/rustlib/src/rust/library" ] ||
  [ ! -d "$(rustup run "$sdk_toolchain" rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]; then
  log "installing $sdk_toolchain with rust-src and wasm32 (the SDK's size build)"
  rustup toolchain install "$sdk_toolchain" --profile minimal --component rust-src --target wasm32-unknown-unknown
fi

# Headless Chromium and its WebDriver for the synthetic workflow tests (Debian packages).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing Debian's chromium and chromium-driver"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "chromium and chromium-driver are missing and this is not root: install them with apt-get" >&2
    exit 1
  fi
fi

# Debian's prometheus (promtool: the quantile scenarios' verdicts are compared with it) and
# prometheus-node-exporter (the scrape source's real endpoint). The packages' services are not
# used: the tests start their own exporter on a free loopback port.
if ! command -v promtool >/dev/null || [ ! -x /usr/bin/prometheus-node-exporter ]; then
  log "installing Debian's prometheus and prometheus-node-exporter"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-node-exporter >/dev/null
    (pkill -x prometheus; pkill -f /usr/bin/prometheus-node-exporter) >/dev/null 2>&1 || true
  else
    echo "promtool or prometheus-node-exporter is missing and this is not root: install prometheus and prometheus-node-exporter with apt-get" >&2
    exit 1
  fi
fi

# The browser SDK's toolchain: wasm-bindgen-cli at the version the crate pins, wasm-pack, and
# wasm-opt from Debian's binaryen.
wbg_version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  log "installing wasm-bindgen-cli $wbg_version"
  cargo install -q wasm-bindgen-cli --version "$wbg_version" --locked
fi
if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "0.15.1" ]; then
  log "installing wasm-pack 0.15.1"
  cargo install -q wasm-pack --version 0.15.1 --locked
fi
if ! command -v wasm-opt >/dev/null; then
  log "installing Debian's binaryen (wasm-opt)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binaryen >/dev/null
  else
    echo "wasm-opt is missing and this is not root: install binaryen with apt-get" >&2
    exit 1
  fi
fi

# The OpenTelemetry Python SDK and its OTLP/HTTP exporter (PyPI), a client no one here wrote,
# for the OTLP intake tests, in a virtualenv beside the build.
otel_venv="$(realpath -m "${CARGO_TARGET_DIR:-target}")/tools/otel-venv"
if ! "$otel_venv/bin/python" -c 'import opentelemetry.exporter.otlp.proto.http.trace_exporter' 2>/dev/null; then
  log "installing the OpenTelemetry Python SDK (PyPI) into $otel_venv"
  python3 -m venv "$otel_venv"
  "$otel_venv/bin/pip" install -q opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
fi
export THORBIS_TEST_OTEL_PYTHON="$otel_venv/bin/python"

# A throwaway PostgreSQL cluster for the store and HA tests, stopped on exit.
# shellcheck source=scripts/pg-cluster.sh
source scripts/pg-cluster.sh
trap 'stop_postgres; print_timings' EXIT
start_postgres

# --- tests ------------------------------------------------------------------------------
log "core builds for wasm32-unknown-unknown (engine and browser-only feature sets)"
cargo build -p thorbis-obs-core --target wasm32-unknown-unknown
cargo build -p thorbis-obs-core --target wasm32-unknown-unknown --no-default-features
cargo build -p thorbis-obs-wasm --target wasm32-unknown-unknown

log "browser SDK: wasm build, npm package and plain-browser build, size"
bash scripts/build-sdk.sh
export THORBIS_SDK_WEB_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")/sdk/web"
export THORBIS_WEB_VITALS_JS="$(realpath -m "${CARGO_TARGET_DIR:-target}")/tools/node_modules/web-vitals/dist/web-vitals.js"

log "browser SDK units in headless Chromium (wasm-bindgen-test, Debian's chromedriver)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
  cargo test -p thorbis-obs-wasm --target wasm32-unknown-unknown

log "Next.js example: the local SDK package and the example's npm dependencies"
rm -rf examples/nextjs/vendor
mkdir -p examples/nextjs/vendor
cp -r "$(realpath -m "${CARGO_TARGET_DIR:-target}")/sdk/npm" examples/nextjs/vendor/thorbis-obs
(cd examples/nextjs && npm install --no-audit --no-fund --silent)
export THORBIS_NEXTJS_DIR="$PWD/examples/nextjs"

log "each feature alone (no feature may lean on another)"
cargo check -q -p thorbis-obs-core --no-default-features --all-targets
cargo check -q -p thorbis-obs-core --no-default-features --features engine
cargo check -q -p thorbis-obs-core --no-default-features --features testing
cargo check -q -p thorbis-obs --no-default-features
cargo check -q -p thorbis-obs --features server
cargo check -q -p thorbis-obs-server --no-default-features --all-targets
# Library, binaries, examples and benches per feature; the test targets are checked with no
# feature above and built with all of them below (a per-feature test check cost ~50 s more).
for f in webhook slack email sms pagerduty postgres http synthetic collector otlp host client scrape host-metrics; do
  cargo check -q -p thorbis-obs-server --no-default-features --features "$f" --lib --bins --examples --benches
done

log "core without default features (what the browser SDK links)"
cargo test -p thorbis-obs-core --no-default-features --lib

log "workspace tests (unit, property, promtool-format scenarios, CLI, doctests)"
cargo test --workspace --all-features

log "the channels' tests without the rest of the server (each channel also checked alone above)"
cargo test -q -p thorbis-obs-server --no-default-features --features webhook,slack,email,sms,pagerduty --test notifiers

log "attack suite against the release binary (loopback, bounded; scripts/attack.py)"
cargo build -q --release -p thorbis-obs-server --bin thorbis-obs
python3 scripts/attack.py "$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/thorbis-obs"

log "examples run"
# Built with the workspace tests' features, so nothing is compiled again.
cargo build -q --workspace --all-features --example quickstart --example embed_in_host_app
"$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/examples/quickstart" >/dev/null
"$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/examples/embed_in_host_app" >/dev/null
