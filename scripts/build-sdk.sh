#!/usr/bin/env bash
# Builds the browser SDK (thorbis-obs-wasm) for the npm package @thorbis/obs and for plain
# browsers, then prints its size (minified JS + wasm after wasm-opt -Oz, gzip -9).
#   bash scripts/build-sdk.sh            -> target/sdk/npm (the package), target/sdk/web (tests)
# Needs: the pinned nightly below with rust-src and the wasm32-unknown-unknown target, wasm-pack,
# wasm-bindgen-cli at the crate's pinned version (wasm-pack uses it instead of downloading one),
# wasm-opt (Debian's binaryen; the crate turns wasm-pack's own download off). scripts/test.sh
# installs them.
#
# Why a nightly: std rebuilt with panic=immediate-abort drops the panic machinery (core::fmt,
# the Debug printing of strings, unicode tables) that any string search or slice drags in.
# Measured here: the .wasm is 9.5 KB gzip that way and 16.9 KB with stable's prebuilt std. The
# toolchain is pinned by date so the SDK builds the same tomorrow; the rest of the workspace,
# the SDK's tests included, builds on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
out="${SDK_OUT:-$target/sdk}"
toolchain="$(cat thorbis-obs-wasm/sdk-toolchain)"
# The size profile applies to this build only: the agent keeps its speed-optimised release. Its
# own target directory, so stable and nightly builds do not invalidate each other.
export RUSTUP_TOOLCHAIN="$toolchain" CARGO_TARGET_DIR="$target/sdk-build" \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_STRIP=true
rm -rf "$out"
mkdir -p "$out/npm/pkg" "$out/web/pkg"
# The npm package's module: wasm-pack, bundler target (Next.js' Turbopack and webpack).
wasm-pack --quiet build thorbis-obs-wasm --release --target bundler --out-dir "$out/npm/pkg" \
  --out-name thorbis_obs_wasm --no-pack -- -Zbuild-std=std,panic_abort
# The same wasm for plain browsers (the end-to-end tests load it without a bundler).
wasm="$target/sdk-build/wasm32-unknown-unknown/release/thorbis_obs_wasm.wasm"
wasm-bindgen --target web --out-dir "$out/web/pkg" "$wasm"
for d in "$out/npm/pkg" "$out/web/pkg"; do
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types \
    -o "$d/thorbis_obs_wasm_bg.wasm" "$d/thorbis_obs_wasm_bg.wasm"
  rm -f "$d/.gitignore" "$d/package.json"
done
cp thorbis-obs-wasm/npm/package.json thorbis-obs-wasm/npm/index.js thorbis-obs-wasm/npm/index.d.ts \
  thorbis-obs-wasm/npm/react.js thorbis-obs-wasm/npm/react.d.ts thorbis-obs-wasm/npm/replay.js "$out/npm/"
cp thorbis-obs-wasm/npm/index.js thorbis-obs-wasm/npm/react.js "$out/web/"
# The size is measured as users ship it: JS minified by esbuild (the version ANCHORS.md's
# figures for web-vitals, Sentry and Datadog were measured with), everything gzip -9.
tools="$target/tools"
# Google's web-vitals is the reference the end-to-end test compares our values with.
# rrweb's recorder: the replay module's dependency.
if [ ! -x "$tools/node_modules/.bin/esbuild" ] || [ ! -f "$tools/node_modules/web-vitals/dist/web-vitals.js" ] \
  || [ ! -f "$tools/node_modules/@rrweb/record/package.json" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" esbuild@0.28.2 web-vitals@6.2.3 @rrweb/record@2.1.6 >/dev/null
fi
# The replay module for plain browsers, with rrweb's recorder bundled in (the npm package leaves
# that to the app's bundler, through its dependency). Loaded by index.js only when a session is
# sampled for replay, so it is not in the SDK's size below; its own size is printed after.
NODE_PATH="$tools/node_modules" "$tools/node_modules/.bin/esbuild" thorbis-obs-wasm/npm/replay.js --bundle \
  --format=esm --minify --log-level=error --outfile="$out/web/replay.js"
python3 -c 'import gzip,sys; d=open(sys.argv[1],"rb").read(); print(f"replay.js (lazy, with rrweb): {len(d)} bytes minified, {len(gzip.compress(d, 9))} gzip -9")' "$out/web/replay.js"
# The gate: CI fails when the SDK is over the issue's 20 KB target (it was 44.7 KB before the
# plumbing moved to JS and std was rebuilt without its panic machinery).
PATH="$tools/node_modules/.bin:$PATH" python3 scripts/sdk_size.py "$out/npm" "${SDK_MAX_GZIP:-20480}"
