"""Helpers the benchmark scripts share: loopback ports and a process's CPU time."""
import json
import os
import socket
import subprocess
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    """A loopback port nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_of(pid):
    """User + system CPU seconds of a process so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_up(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception as e:  # noqa: BLE001 - any failure means not up yet
            if getattr(e, "code", None):
                return
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def oha(url, body_path, content_type, extra):
    cmd = ["oha", "--no-tui", "--output-format", "json", "-m", "POST", "-T", content_type,
           "-D", body_path] + extra + [url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def saturation(url, body_path, content_type, seconds, connections):
    r = oha(url, body_path, content_type, ["-z", f"{seconds}s", "-c", str(connections)])
    return r["summary"]["requestsPerSec"], r.get("statusCodeDistribution", {})


def fixed_rate(url, pid, body_path, idle_per_s, content_type, seconds, rate):
    """`rate` requests a second for `seconds`: latency percentiles and CPU per request (us)."""
    c0, t0 = cpu_of(pid), time.monotonic()
    r = oha(url, body_path, content_type, ["-z", f"{seconds}s", "-q", str(rate), "-c", "16"])
    # What the process burns when idle (timers, the agent's evaluation loop) is not per batch.
    cpu = cpu_of(pid) - c0 - idle_per_s * (time.monotonic() - t0)
    codes = r.get("statusCodeDistribution", {})
    done = sum(codes.values()) or 1
    pct = r["latencyPercentiles"]
    return pct["p50"] * 1000, pct["p99"] * 1000, cpu / done * 1e6, codes


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def measure_both(servers, body_path, content_type, seconds, connections, rate, rounds):
    """Alternates the servers `rounds` times (noisy machine: medians of alternating runs): each
    round a saturation run (`connections` connections, `seconds`) and a run at `rate` requests a
    second. Returns per server the medians of rps, p50, p99 (ms), CPU per request (us), the
    answers' status counts, and every run under "all"."""
    runs = {name: {"rps": [], "p50": [], "p99": [], "cpu": [], "codes": {}} for name, _, _ in servers}
    idle = {}
    for name, _, pid in servers:
        c0 = cpu_of(pid)
        time.sleep(seconds)
        idle[name] = (cpu_of(pid) - c0) / seconds
        print(f"{name}: idle CPU {idle[name] * 1000:.1f} ms/s, subtracted from the fixed-rate runs")
    for _ in range(rounds):
        for name, url, pid in servers:
            rps, codes = saturation(url, body_path, content_type, seconds, connections)
            p50, p99, cpu, fixed_codes = fixed_rate(url, pid, body_path, idle[name], content_type, seconds, rate)
            r = runs[name]
            r["rps"].append(rps)
            r["p50"].append(p50)
            r["p99"].append(p99)
            r["cpu"].append(cpu)
            for c, n in list(codes.items()) + list(fixed_codes.items()):
                r["codes"][c] = r["codes"].get(c, 0) + n
    return {name: {k: (median(v) if isinstance(v, list) else v) for k, v in r.items()} | {"all": r}
            for name, r in runs.items()}


def rss_mb(pid):
    """Resident memory of a process in MB, from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
