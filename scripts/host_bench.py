"""What host::RequestMetrics adds to a request served over loopback, side by side with
axum-prometheus (metrics-exporter-prometheus underneath) doing the same job: the same axum
hello-world on one core, bare, with our layer and with theirs, loaded by oha (GET
/users/42, keep-alive) in alternating rounds. Per server and round: requests/s at saturation
(16 connections), and at a fixed rate the p50 latency and the server's CPU time per request
(from /proc, its idle burn subtracted). Prints medians, what each layer adds over the bare
server, and the ratio ours/theirs.

Also `ours-remote-down`: our layer with a RemoteAgent whose agent is down (queue full,
dropping), to show the request path does not wait on it.

usage: host_bench.py SERVER_BINARY   (env: SECONDS_EACH=5 ROUNDS=5 RATE=5000 MODES="bare ours ...")"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import cpu_of, free_port, median, wait_up  # noqa: E402

SECONDS = int(os.environ.get("SECONDS_EACH", "5"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
RATE = int(os.environ.get("RATE", "5000"))
MODES = os.environ.get("MODES", "bare ours ours-remote-down theirs").split()


def oha(url, extra):
    # oha on core 1, the server on core 0.
    cmd = ["taskset", "-c", "1", "oha", "--no-tui", "--output-format", "json"] + extra + [url]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main():
    binary = sys.argv[1]
    servers = {}
    for mode in MODES:
        port = free_port()
        p = subprocess.Popen(["taskset", "-c", "0", binary, mode, str(port)])
        url = f"http://127.0.0.1:{port}/users/42"
        wait_up(url)
        servers[mode] = (p, url)
    runs = {m: {"rps": [], "p50": [], "cpu": []} for m in MODES}
    try:
        # Warm up (connection pools, allocator) once each.
        for mode in MODES:
            oha(servers[mode][1], ["-z", "1s", "-c", "16"])
        idle = {}
        for mode in MODES:
            pid = servers[mode][0].pid
            c0 = cpu_of(pid)
            time.sleep(2)
            idle[mode] = (cpu_of(pid) - c0) / 2
        for r in range(ROUNDS):
            for mode in MODES:
                p, url = servers[mode]
                sat = oha(url, ["-z", f"{SECONDS}s", "-c", "16"])
                c0, t0 = cpu_of(p.pid), time.monotonic()
                fixed = oha(url, ["-z", f"{SECONDS}s", "-c", "16", "-q", str(RATE)])
                cpu = cpu_of(p.pid) - c0 - idle[mode] * (time.monotonic() - t0)
                codes = fixed.get("statusCodeDistribution", {})
                done = sum(codes.values()) or 1
                if set(codes) != {"200"} or set(sat.get("statusCodeDistribution", {})) != {"200"}:
                    raise SystemExit(f"{mode}: answers other than 200: {codes}")
                runs[mode]["rps"].append(sat["summary"]["requestsPerSec"])
                runs[mode]["p50"].append(fixed["latencyPercentiles"]["p50"] * 1e6)
                runs[mode]["cpu"].append(cpu / done * 1e6)
            print(f"round {r + 1}: " + "; ".join(
                f"{m} {runs[m]['rps'][-1]:,.0f} req/s, p50 {runs[m]['p50'][-1]:.1f} us, "
                f"{runs[m]['cpu'][-1]:.2f} us CPU/req" for m in MODES), flush=True)
    finally:
        for p, _ in servers.values():
            p.terminate()
            p.wait()
    med = {m: {k: median(v) for k, v in runs[m].items()} for m in MODES}
    print(f"\n{ROUNDS} alternating rounds of {SECONDS} s each, medians (server on core 0, oha on core 1):")
    for m in MODES:
        x = med[m]
        print(f"  {m:16}: {x['rps']:,.0f} req/s at saturation; at {RATE} req/s p50 {x['p50']:.1f} us, "
              f"CPU {x['cpu']:.2f} us/request")
    b = med["bare"]
    added = {}
    for m in [m for m in MODES if m != "bare"]:
        x = med[m]
        added[m] = {
            "sat": 1e6 / x["rps"] - 1e6 / b["rps"],
            "p50": x["p50"] - b["p50"],
            "cpu": x["cpu"] - b["cpu"],
        }
        a = added[m]
        print(f"  added by {m:16}: {a['sat']:+.2f} us/request at saturation, {a['cpu']:+.2f} us CPU/request, "
              f"{a['p50']:+.1f} us at p50")
    o, t = added["ours"], added["theirs"]
    ratio = lambda a, b: a / b if b > 0 else float("nan")  # noqa: E731
    print(f"  ours/theirs added cost: {ratio(o['sat'], t['sat']):.2f}x at saturation, "
          f"{ratio(o['cpu'], t['cpu']):.2f}x in CPU per request")


if __name__ == "__main__":
    main()
