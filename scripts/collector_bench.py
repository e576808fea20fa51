#!/usr/bin/env python3
"""Drives oha against the agent's collector and the bare axum peer (see bench-collector.sh).

For each server: a saturation run (CONNECTIONS connections for SECONDS_EACH seconds: batches/s and
events/s), then a fixed-rate run at RATE_EVENTS events/s (p50/p99 latency, CPU of the server
process per batch from /proc). Loopback only, bounded in time."""
import json
import os
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, measure_both, wait_up

agent_bin, bare_bin = sys.argv[1], sys.argv[2]
SECONDS_EACH = int(os.environ.get("SECONDS_EACH", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
RATE_EVENTS = int(os.environ.get("RATE_EVENTS", "10000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
EVENTS = 50



def batch():
    t = int(time.time() * 1000)
    events = []
    for i in range(EVENTS):
        k = i % 5
        if k == 0:
            events.append({"type": "vital", "at": t, "name": ["LCP", "INP", "CLS", "FCP", "TTFB"][i // 5 % 5],
                           "value": 0.1 if i // 5 % 5 == 2 else 1200 + i, "rating": "good", "id": f"m{i}",
                           "target": "img#hero", "navigationType": "navigate"})
        elif k == 1:
            events.append({"type": "action", "at": t, "name": "Create work order", "actionType": "click",
                           "target": "button#create"})
        elif k == 2:
            events.append({"type": "business", "at": t, "name": "work_order_created",
                           "props": {"workOrderId": f"wo_{i}", "industry": "home-services", "estimatedValue": 450}})
        elif k == 3:
            events.append({"type": "resource", "at": t, "url": "https://app.example/_next/static/chunks/main.js",
                           "kind": "script", "transferBytes": 18204, "durationMs": 40.5})
        else:
            events.append({"type": "error", "at": t, "kind": "error", "message": "TypeError: x is undefined",
                           "stack": "TypeError: x is undefined\n    at pay (https://app.example/pay.js:1:2042)",
                           "tags": {"businessProcess": "payments"}, "count": 1})
    return {"v": 1, "service": "bench", "env": "bench",
            "session": {"id": "s-bench", "sampled": True, "startedAt": t, "sampleRate": 100},
            "view": {"id": "v-bench", "url": "https://app.example/hs/work-orders/42", "route": "/hs/work-orders/42"},
            "sentAt": t, "events": events}



def main():
    tmp = tempfile.mkdtemp(prefix="thorbis-collector-bench.")
    body_path = os.path.join(tmp, "batch.json")
    with open(body_path, "w") as f:
        json.dump(batch(), f)
    size = os.path.getsize(body_path)
    port, bare_port = free_port(), free_port()
    cfg = os.path.join(tmp, "agent.toml")
    with open(cfg, "w") as f:
        f.write(f"""[agent]
data_dir = "{tmp}/data"
evaluation_interval = "15s"
log_format = "text"
[http]
listen = "127.0.0.1:{port}"
[rules]
packs = ["rum"]
[channels.console]
type = "console"
[channel_aliases]
slack = "console"
email = "console"
[collector]
per_ip_per_minute = 0
per_token_per_minute = 0
""")
    agent = subprocess.Popen([agent_bin, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([bare_bin, f"127.0.0.1:{bare_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz")
        wait_up(f"http://127.0.0.1:{bare_port}/v1/rum")
        print(f"batch: {EVENTS} events, {size} bytes; {ROUNDS} alternating rounds of {SECONDS_EACH} s at saturation "
              f"({CONNECTIONS} connections) and {SECONDS_EACH} s at {RATE_EVENTS} events/s; medians; 2-core machine, "
              f"oha on the same cores")
        res = measure_both([("ours", f"http://127.0.0.1:{port}/v1/rum", agent.pid),
                            ("bare", f"http://127.0.0.1:{bare_port}/v1/rum", bare.pid)], body_path,
                           content_type="text/plain;charset=UTF-8", seconds=SECONDS_EACH, connections=CONNECTIONS,
                           rate=max(1, RATE_EVENTS // EVENTS), rounds=ROUNDS)
        ours, peer = res["ours"], res["bare"]
        for name, r in (("thorbis-obs collector", ours), ("bare axum + serde_json", peer)):
            print(f"{name:<24} saturation {r['rps']:>8.0f} batches/s = {r['rps'] * EVENTS:>9.0f} events/s; "
                  f"at {RATE_EVENTS} events/s: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
                  f"CPU {r['cpu']:.0f} us/batch; answers {r['codes']}")
            a = r["all"]
            print(f"{'':<24} runs: batches/s {[round(x) for x in a['rps']]}, p99 ms {[round(x, 2) for x in a['p99']]}, "
                  f"CPU us/batch {[round(x) for x in a['cpu']]}")
        print(f"cost ratio (CPU per batch at the fixed rate, medians) ours/bare: {ours['cpu'] / peer['cpu']:.2f} "
              f"(target <= 1.5); throughput ratio ours/bare: {ours['rps'] / peer['rps']:.2f}")
        print(f"targets: >= 50,000 events/s: {'met' if ours['rps'] * EVENTS >= 50000 else 'NOT met'}; "
              f"p99 <= 5 ms at 10,000 events/s: {'met' if ours['p99'] <= 5 else 'NOT met'}")
    finally:
        for p in (agent, bare):
            p.terminate()
            p.wait(timeout=15)


main()
