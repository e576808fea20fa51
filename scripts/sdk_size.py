#!/usr/bin/env python3
"""Prints the SDK's shipped size: the .wasm, the wasm-bindgen glue and snippets and the loader, each
gzip -9 (JS minified first with esbuild when it is installed, else as written), and the sum.
With a second argument (bytes), exits 1 when the sum is above it."""
import gzip
import os
import shutil
import subprocess
import sys

pkg = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
# The .wasm, every JS file wasm-pack wrote (glue and inline-JS snippets) and the loader.
files = [os.path.join(pkg, "pkg", "thorbis_obs_wasm_bg.wasm")]
for root, _, names in sorted(os.walk(os.path.join(pkg, "pkg"))):
    files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".js")]
files.append(os.path.join(pkg, "index.js"))
esbuild = shutil.which("esbuild")
total = 0
rows = []
for f in files:
    data = open(f, "rb").read()
    how = "raw"
    if f.endswith(".js") and esbuild:
        data = subprocess.run([esbuild, "--minify", "--format=esm", "--log-level=error"], input=data,
                              capture_output=True, check=True).stdout
        how = "esbuild --minify"
    gz = len(gzip.compress(data, 9))
    total += gz
    rows.append((os.path.relpath(f, pkg), len(data), gz, how))
for name, raw, gz, how in rows:
    print(f"  {name:<34} {raw:>8} bytes ({how}), {gz:>6} gzip -9")
print(f"@thorbis/obs total: {total} bytes gzip -9 ({total / 1024:.1f} KB); target <= 20 KB"
      + (f", CI limit {limit / 1024:.0f} KB" if limit else ""))
if limit and total > limit:
    print(f"FAIL: the SDK is {total - limit} bytes over the limit", file=sys.stderr)
    sys.exit(1)
