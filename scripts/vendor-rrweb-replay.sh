#!/usr/bin/env bash
# Rebuilds the agent's replay player from npm: rrweb's Replayer (@rrweb/replay, MIT) bundled by
# esbuild into one minified script (global `rrwebReplay`) and its stylesheet, written beside the
# collector's code, where the agent embeds them (served at /assets/rrweb-replay.{js,css}: no CDN,
# the pages work offline). Run it when the pinned version changes; the output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.1.6
tools="$(realpath -m "${CARGO_TARGET_DIR:-target}")/tools"
if [ ! -f "$tools/node_modules/@rrweb/replay/package.json" ] || [ ! -x "$tools/node_modules/.bin/esbuild" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" esbuild@0.28.2 "@rrweb/replay@$version" >/dev/null
fi
out=thorbis-obs-server/src/collector/assets
entry="$(mktemp --suffix=.js)"
echo 'export { Replayer } from "@rrweb/replay";' > "$entry"
{
  echo "/*! @rrweb/replay $version (MIT, https://github.com/rrweb-io/rrweb), bundled by scripts/vendor-rrweb-replay.sh */"
  NODE_PATH="$tools/node_modules" "$tools/node_modules/.bin/esbuild" "$entry" --bundle --format=iife \
    --global-name=rrwebReplay --minify --log-level=error
} > "$out/rrweb-replay.js"
cp "$tools/node_modules/@rrweb/replay/dist/style.min.css" "$out/rrweb-replay.css"
rm -f "$entry"
ls -l "$out"
