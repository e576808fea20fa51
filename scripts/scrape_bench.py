#!/usr/bin/env python3
"""The `prometheus` source against Prometheus' own scrape, and the `host` source's cost.

Side by side, each scraping its own Debian prometheus-node-exporter every second on loopback:
the agent with only a `type = "prometheus"` source, and Debian's Prometheus 2.42 with only that
scrape job (TSDB in a temp dir). Each process's CPU (utime + stime from /proc) over the run,
minus the same process's idle CPU rate (same config without the target, measured beside it),
divided by the scrapes its exporter served (node_exporter's promhttp_metric_handler_requests
counter). Both costs include storing the samples. Then the agent with only a `type = "host"`
source every second: CPU per collection, and node_exporter's own CPU per scrape (what producing
the same machine's metrics costs it) beside it. Medians over R rounds.
"""
import argparse, os, re, signal, subprocess, sys, tempfile, time, urllib.request
from benchlib import cpu_of, free_port, median, wait_up


def exporter():
    port = free_port()
    p = subprocess.Popen(["/usr/bin/prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/metrics")
    return p, port


def served(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r'^promhttp_metric_handler_requests_total\{code="200"\} (\S+)', text, re.M)
    return float(m.group(1))


def agent(binary, d, source):
    port = free_port()
    cfg = os.path.join(d, f"agent-{port}.toml")
    with open(cfg, "w") as f:
        f.write(f'[agent]\ndata_dir = "{d}/data-{port}"\n[http]\nlisten = "127.0.0.1:{port}"\n{source}')
    p = subprocess.Popen([binary, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/healthz")
    return p


def prometheus(d, target):
    port = free_port()
    cfg = os.path.join(d, f"prom-{port}.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n")
        if target:
            f.write(f"scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n")
    p = subprocess.Popen(["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={d}/tsdb-{port}",
                          f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/-/ready")
    return p


def scrape_source(port):
    return f'[[sources]]\ntype = "prometheus"\nname = "node"\nurl = "http://127.0.0.1:{port}/metrics"\ninterval = "1s"\n'


def run_round(binary, seconds, warmup):
    with tempfile.TemporaryDirectory() as d:
        ex_ours, port_ours = exporter()
        ex_prom, port_prom = exporter()
        procs = {
            "ours": agent(binary, d, scrape_source(port_ours)),
            "ours idle": agent(binary, d, ""),
            "prometheus": prometheus(d, port_prom),
            "prometheus idle": prometheus(d, None),
        }
        time.sleep(warmup)
        c0 = {k: cpu_of(p.pid) for k, p in procs.items()}
        s0 = {"ours": served(port_ours), "prometheus": served(port_prom)}
        n0 = cpu_of(ex_ours.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        dt = time.monotonic() - t0
        c1 = {k: cpu_of(p.pid) for k, p in procs.items()}
        s1 = {"ours": served(port_ours), "prometheus": served(port_prom)}
        n1 = cpu_of(ex_ours.pid)
        out = {}
        for k in ("ours", "prometheus"):
            scrapes = s1[k] - s0[k] - 1  # the counter read above is one request too
            busy = (c1[k] - c0[k]) - (c1[k + " idle"] - c0[k + " idle"])
            out[k] = (busy / scrapes, scrapes, (c1[k + " idle"] - c0[k + " idle"]) / dt)
        out["node_exporter"] = ((n1 - n0) / (s1["ours"] - s0["ours"]),)
        for p in list(procs.values()) + [ex_ours, ex_prom]:
            p.send_signal(signal.SIGTERM)
        for p in list(procs.values()) + [ex_ours, ex_prom]:
            p.wait(timeout=30)
        # The host source alone, beside an idle agent.
        host = agent(binary, d, '[[sources]]\ntype = "host"\ninterval = "1s"\n')
        idle = agent(binary, d, "")
        time.sleep(warmup)
        h0, i0 = cpu_of(host.pid), cpu_of(idle.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        dt = time.monotonic() - t0
        h1, i1 = cpu_of(host.pid), cpu_of(idle.pid)
        out["host"] = (((h1 - h0) - (i1 - i0)) / dt,)  # 1 collection a second
        for p in (host, idle):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=5)
    a = ap.parse_args()
    rounds = [run_round(a.agent, a.seconds, a.warmup) for _ in range(a.rounds)]
    ms = lambda k, i=0: median([r[k][i] for r in rounds]) * 1000
    print(f"node_exporter scraped every 1 s, {a.rounds} rounds of {a.seconds:.0f} s (medians; CPU beyond each process's idle):")
    print(f"  thorbis-obs prometheus source: {ms('ours'):.2f} ms CPU per scrape ({median([r['ours'][1] for r in rounds]):.0f} scrapes; idle agent {ms('ours', 2):.1f} ms CPU/s)")
    print(f"  Prometheus 2.42 scrape job:    {ms('prometheus'):.2f} ms CPU per scrape ({median([r['prometheus'][1] for r in rounds]):.0f} scrapes; idle Prometheus {ms('prometheus', 2):.1f} ms CPU/s)")
    print(f"  ratio (ours / Prometheus):     {ms('ours') / ms('prometheus'):.2f}")
    print(f"host source, 1 collection per s: {ms('host'):.2f} ms CPU per collection; node_exporter's own CPU per scrape of the same machine: {ms('node_exporter'):.2f} ms (ratio {ms('host') / ms('node_exporter'):.2f})")


if __name__ == "__main__":
    sys.exit(main())
