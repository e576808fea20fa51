#!/usr/bin/env bash
# Session replay's cost (issue 20's benchmark), on the Next.js example in Debian's headless
# Chromium driven by playwright-core: a scripted session of SESSION_S seconds (typing a name and
# a card number into the payment form, creating and loading a work order, a declined card and
# its retry, scrolling) run three ways:
#   off              the SDK without replay (both sample rates 0: replay.js never loads)
#   ours             the SDK recording the whole session, private by default
#   rrweb defaults   the same recorder and transport with rrweb's own record() options (no
#                    masking, no blocking): replay.js' `...privacy` taken out
# For each: main-thread time over the session from CDP's Performance.getMetrics (TaskDuration,
# ScriptDuration), and the bytes the agent stored for the session per minute (as sent: gzip,
# the last chunk plain) and inflated; medians of RUNS. Also the replay bundle's size against
# rrweb's recorder alone. Everything stays on 127.0.0.1.
#   bash scripts/bench-replay.sh          RUNS=5 SESSION_S=60; SKIP_BUILD=1 reuses the SDK build
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
tools="$target/tools"
[ "${SKIP_BUILD:-}" = 1 ] || bash scripts/build-sdk.sh
# The agent only stores here (its own speed is measured by the other benchmarks): the tests'
# dev build does.
cargo build -q -p thorbis-obs-server --bin thorbis-obs
agent="$target/debug/thorbis-obs"
if [ ! -d "$tools/node_modules/playwright-core" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" playwright-core@1.65.1 >/dev/null
fi
# A copy of the example with the SDK just built, so the repository's checkout is not touched.
app="$tools/replay-bench-app"
rm -rf "$app"
mkdir -p "$app/vendor"
tar -C examples/nextjs --exclude=node_modules --exclude=.next --exclude=vendor -cf - . | tar -C "$app" -xf -
cp -r "$target/sdk/npm" "$app/vendor/thorbis-obs"
(cd "$app" && npm install --no-audit --no-fund --silent >/dev/null)
# The replay module's size (what a page sampled for replay fetches) beside rrweb's recorder
# alone with its defaults, bundled the same way (esbuild, minified).
echo 'import { record } from "@rrweb/record"; window.events = []; record({ emit: (e) => window.events.push(e) });' \
  > "$tools/rrweb-alone.js"
NODE_PATH="$tools/node_modules" "$tools/node_modules/.bin/esbuild" "$tools/rrweb-alone.js" --bundle --format=esm \
  --minify --log-level=error --outfile="$tools/rrweb-alone.min.js"
ours=$(gzip -9c "$target/sdk/web/replay.js" | wc -c)
alone=$(gzip -9c "$tools/rrweb-alone.min.js" | wc -c)
printf 'replay.js with rrweb: %s bytes gzip -9 (%s minified); rrweb recorder alone: %s (%s); ours adds %s\n' \
  "$ours" "$(wc -c < "$target/sdk/web/replay.js")" "$alone" "$(wc -c < "$tools/rrweb-alone.min.js")" "$((ours - alone))"
cp scripts/bench_replay.mjs "$tools/bench_replay.mjs"
node "$tools/bench_replay.mjs" "$agent" "$app"
