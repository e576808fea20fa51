#!/usr/bin/env bash
# Browser SDK figures: shipped size, time to observers registered and track() cost against
# Datadog's browser RUM SDK (@datadog/browser-rum 7.16.2, bundled with esbuild), in Debian's
# headless Chromium driven by playwright-core (no browser download: /usr/bin/chromium).
#   bash scripts/bench-sdk.sh            RUNS=7 WARMUP=1500 CALLS=1000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
[ "${SKIP_BUILD:-}" = 1 ] || bash scripts/build-sdk.sh
tools="$target/tools"
if [ ! -d "$tools/node_modules/@datadog/browser-rum" ] || [ ! -d "$tools/node_modules/playwright-core" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" @datadog/browser-rum@7.16.2 playwright-core@1.65.1 >/dev/null
fi
echo 'import { datadogRum } from "@datadog/browser-rum"; window.DD_RUM = datadogRum;' > "$tools/dd-entry.js"
"$tools/node_modules/.bin/esbuild" "$tools/dd-entry.js" --bundle --minify --format=iife --log-level=error \
  --outfile="$tools/dd.js"
printf 'Datadog browser-rum bundle: %s bytes gzip -9\n' "$(gzip -9c "$tools/dd.js" | wc -c)"
# Run from the tools directory so its node_modules resolve.
cp scripts/bench_sdk.mjs "$tools/bench_sdk.mjs"
node "$tools/bench_sdk.mjs" "$target/sdk/web" "$tools/dd.js"
