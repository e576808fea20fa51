#!/usr/bin/env python3
"""Checks that every import between top-level modules of a crate points down its layers.

Reads every `crate::NAME` path (use lines, groups `crate::{a, b}`, inline paths) and, in a
top-level module's own file, `super::NAME`, outside comments and `#[cfg(test)]` modules. An
edge from a module to one on the same or a higher layer is an error, printed with file:line;
so is a module missing from the table (say where it belongs). A strict order of layers also
rules out cycles. Exit 1 on any error.

Usage: scripts/layers.py            (checks thorbis-obs-server and thorbis-obs-core)
No cargo tool does this: cargo-modules draws the graph and finds cycles but knows no layers.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The layers of each crate, lowest first; a module may import only modules on lower layers.
# Keep in step with the crate docs (thorbis-obs-server/src/lib.rs) and README's architecture.
LAYERS = {
    "thorbis-obs-server/src": [
        ("leaves", ["secret", "clock", "telemetry", "rules_file", "sql", "pg", "http_client"]),
        ("leaf helpers", ["api", "promtest"]),
        ("store", ["store"]),
        ("hub", ["hub"]),
        ("check pipeline", ["checks"]),
        ("components", ["channels", "sources", "uptime", "synthetic", "collector", "dashboards", "otlp", "traces", "host", "sourcemaps"]),
        ("config", ["config"]),
        ("agent", ["agent"]),
        ("cli", ["cli"]),
    ],
    "thorbis-obs-core/src": [
        ("time", ["time"]),
        ("domain", ["domain"]),
        ("data", ["metrics", "sketch"]),
        ("wire and windows", ["wire", "window", "source"]),
        ("replay chunks", ["replay"]),
        ("series and rum", ["series", "rum"]),
        ("span metrics", ["spans", "traces"]),
        ("rules", ["rules"]),
        ("engine", ["engine"]),
        ("seams", ["channel"]),
        ("delivery", ["delivery"]),
        ("test doubles", ["testing"]),
    ],
}
ROOTS = {"lib", "main"}


def top(rel):
    p = rel.split(os.sep)[0]
    return p[:-3] if p.endswith(".rs") else p


def code_lines(text):
    """(line number, code) without comments, up to a `#[cfg(test)]` module."""
    m = re.search(r"#\[cfg\(test\)\]\s*(pub(\(\w+\))?\s+)?mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    for i, line in enumerate(text.splitlines(), 1):
        code = line.split("//", 1)[0] if "//" in line and '"' not in line.split("//", 1)[0] else line
        if code.strip().startswith("//") or not code.strip():
            continue
        yield i, code


def targets(code, own_file):
    found = set(re.findall(r"\bcrate::(\w+)", code))
    for grp in re.findall(r"\bcrate::\{([^}]*)\}", code):
        found |= set(re.findall(r"(?:^|,)\s*(\w+)", grp))
    if own_file:
        found |= set(re.findall(r"(?<!::)\bsuper::(\w+)", code))
    found.discard("self")
    return found


def check(src_rel, layers):
    src = os.path.join(ROOT, src_rel)
    level = {m: i for i, (_, mods) in enumerate(layers) for m in mods}
    name = {i: n for i, (n, _) in enumerate(layers)}
    errors, edges = [], 0
    # Items the crate root re-exports (`pub use metrics::{Sample, Labels}`) count as their module.
    reexports = {}
    lib = os.path.join(src, "lib.rs")
    if os.path.exists(lib):
        for m, items in re.findall(r"pub use (\w+)::\{?([\w, ]+)\}?;", open(lib, encoding="utf-8").read()):
            for item in re.findall(r"\w+", items):
                reexports[item] = m
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            t = top(rel)
            if t in ROOTS:
                continue
            if t not in level:
                errors.append(f"{src_rel}/{rel}: module `{t}` is in no layer: add it to scripts/layers.py")
                continue
            # `super::` in src/x.rs or src/x/mod.rs names the crate root.
            own_file = rel == f"{t}.rs" or rel == os.path.join(t, "mod.rs")
            text = open(os.path.join(dirpath, f), encoding="utf-8").read()
            for i, code in code_lines(text):
                for x in targets(code, own_file):
                    x = reexports.get(x, x)
                    if x == t or x in ROOTS:
                        continue
                    if x not in level:
                        if os.path.exists(os.path.join(src, x + ".rs")) or os.path.isdir(os.path.join(src, x)):
                            errors.append(f"{src_rel}/{rel}:{i}: module `{x}` is in no layer")
                        continue
                    edges += 1
                    if level[x] >= level[t]:
                        how = "sideways" if level[x] == level[t] else "up"
                        errors.append(
                            f"{src_rel}/{rel}:{i}: `{t}` ({name[level[t]]}) imports `{x}` "
                            f"({name[level[x]]}): an import that points {how}"
                        )
    return errors, edges


def main():
    bad = 0
    for src_rel, layers in LAYERS.items():
        errors, edges = check(src_rel, layers)
        for e in errors:
            print(e)
        print(f"{src_rel}: {len(layers)} layers, {edges} imports between modules, {len(errors)} pointing the wrong way")
        bad += len(errors)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
