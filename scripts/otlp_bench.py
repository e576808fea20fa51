#!/usr/bin/env python3
"""Drives oha against the agent's OTLP intake and the bare prost peer (see bench-otlp.sh).

For each server, alternating ROUNDS times: a saturation run (CONNECTIONS connections for
SECONDS_EACH seconds: requests/s and spans/s), then a run at RATE_SPANS spans/s (p50/p99
latency, CPU of the server process per span from /proc). Then the agent alone at RATE_SPANS for
SUSTAIN seconds: its RSS at the end. Loopback only, bounded in time."""
import os
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, measure_both, oha, rss_mb, wait_up

agent_bin, bare_bin = sys.argv[1], sys.argv[2]
SECONDS_EACH = int(os.environ.get("SECONDS_EACH", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "16"))
RATE_SPANS = int(os.environ.get("RATE_SPANS", "20000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SUSTAIN = int(os.environ.get("SUSTAIN", "600"))
# TRACES=false measures the intake alone (the trace store off); default: the agent as shipped.
TRACES = os.environ.get("TRACES", "true")
SPANS = 512
CT = "application/x-protobuf"


def main():
    tmp = tempfile.mkdtemp(prefix="thorbis-otlp-bench.")
    body = os.path.join(tmp, "spans.bin")
    subprocess.run([bare_bin, "--write-body", body, str(SPANS)], check=True)
    port, bare_port = free_port(), free_port()
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w") as f:
        f.write(f"""[agent]
data_dir = "{tmp}/data"
log_format = "text"
[http]
listen = "127.0.0.1:{port}"
[rules]
packs = ["spec"]
[channels.console]
type = "console"
[channel_aliases]
slack = "console"
email = "console"
sms = "console"
pagerduty = "console"
[traces]
enabled = {TRACES}
""")
    agent = subprocess.Popen([agent_bin, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([bare_bin, f"127.0.0.1:{bare_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz")
        wait_up(f"http://127.0.0.1:{bare_port}/v1/traces")
        rss0 = rss_mb(agent.pid)
        rate = max(1, RATE_SPANS // SPANS)
        print(f"request: {SPANS} spans, {os.path.getsize(body)} bytes of protobuf; {ROUNDS} alternating rounds of "
              f"{SECONDS_EACH} s at saturation ({CONNECTIONS} connections) and {SECONDS_EACH} s at {rate * SPANS} "
              f"spans/s; medians; 2-core machine, oha on the same cores; trace store {'on' if TRACES == 'true' else 'off'}")
        res = measure_both([("ours", f"http://127.0.0.1:{port}/v1/traces", agent.pid),
                            ("bare", f"http://127.0.0.1:{bare_port}/v1/traces", bare.pid)], body,
                           content_type=CT, seconds=SECONDS_EACH, connections=CONNECTIONS, rate=rate, rounds=ROUNDS)
        ours, peer = res["ours"], res["bare"]
        for name, r in (("thorbis-obs /v1/traces", ours), ("bare axum + prost", peer)):
            print(f"{name:<24} saturation {r['rps']:>7.0f} requests/s = {r['rps'] * SPANS:>9.0f} spans/s; "
                  f"at {rate * SPANS} spans/s: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
                  f"CPU {r['cpu'] / SPANS:.2f} us/span; answers {r['codes']}")
            a = r["all"]
            print(f"{'':<24} runs: requests/s {[round(x) for x in a['rps']]}, p99 ms {[round(x, 2) for x in a['p99']]}, "
                  f"CPU us/request {[round(x) for x in a['cpu']]}")
        print(f"cost ratio (CPU per span at the fixed rate, medians) ours/bare: {ours['cpu'] / peer['cpu']:.2f} "
              f"(target <= 1.5); throughput ratio ours/bare: {ours['rps'] / peer['rps']:.2f}")
        print(f"targets: >= 200,000 spans/s: {'met' if ours['rps'] * SPANS >= 200000 else 'NOT met'}")
        if SUSTAIN > 0:
            r = oha(f"http://127.0.0.1:{port}/v1/traces", body, CT, ["-z", f"{SUSTAIN}s", "-q", str(rate), "-c", "16"])
            codes = r.get("statusCodeDistribution", {})
            print(f"sustained: {SUSTAIN} s at {rate * SPANS} spans/s over 500 routes: agent RSS {rss0:.1f} MB at start, "
                  f"{rss_mb(agent.pid):.1f} MB at the end; answers {codes}")
    finally:
        for p in (agent, bare):
            p.terminate()
            p.wait(timeout=15)


main()
