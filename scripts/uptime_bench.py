#!/usr/bin/env python3
"""Uptime benchmarks, run by scripts/bench-uptime.sh (which builds the release binary and
installs Debian's prometheus-blackbox-exporter when missing).

A. Scheduling: the agent runs N endpoints (default 1,000) at a 10 s interval against a local
   HTTP server for a measured window; prints the check scheduler's start lag (p50, p99, max,
   from the agent's /api/v1/uptime) and the agent's CPU and RSS.
B. Side by side with blackbox_exporter on the same local endpoints: up/down verdicts on the
   fault cases (ok, 500, slow past the timeout, wrong body, refused, self-signed TLS), then
   CPU and wall time per probe over repeated probes of one healthy endpoint.
"""
import http.server
import json
import os
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import cpu_of, free_port

BIN = sys.argv[1]
ENDPOINTS = int(os.environ.get("ENDPOINTS", "1000"))
WINDOW = int(os.environ.get("WINDOW", "60"))
PROBES = int(os.environ.get("PROBES", "300"))



class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the prober gave up (the slow case): expected

    def do_GET(self):
        path = self.path
        if path.startswith("/slow"):
            time.sleep(3)
        status, body = 200, b"ok"
        if path.startswith("/error"):
            status, body = 500, b"internal error"
        elif path.startswith("/wrong"):
            body = b"maintenance page"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def serve(port, tls_files=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    if tls_files:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls_files)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv



def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port, secs=20):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def scheduling(work, web_port):
    api = free_port()
    cfg = os.path.join(work, "agent.toml")
    with open(cfg, "w") as f:
        f.write(f'[agent]\ndata_dir = "{work}/data"\n[http]\nlisten = "127.0.0.1:{api}"\n')
        f.write('[rules]\npacks = ["uptime"]\n[channels.console]\ntype = "console"\n')
        f.write('[channel_aliases]\nslack = "console"\nemail = "console"\npagerduty = "console"\n')
        for i in range(ENDPOINTS):
            f.write(f'[[uptime.checks]]\nid = "e{i}"\nurl = "http://127.0.0.1:{web_port}/e/{i}"\n'
                    f'interval = "10s"\ntimeout = "5s"\nexpect = {{ status = [200], body_contains = "ok" }}\n')
    log = open(os.path.join(work, "agent.log"), "w")
    agent = subprocess.Popen([BIN, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_port(api)
        time.sleep(12)  # every check has started once (first phase <= 10 s)
        c0, t0 = cpu_of(agent.pid), time.time()
        time.sleep(WINDOW)
        c1, t1 = cpu_of(agent.pid), time.time()
        rss = rss_mib(agent.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/uptime?range=1h", timeout=30) as r:
            body = json.load(r)
        sched = body["scheduler"]
        overall = body["report"]["overall"]
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    cpu = (c1 - c0) / (t1 - t0) * 100
    print(f"A. {ENDPOINTS} endpoints every 10 s for {WINDOW} s on this machine ({os.cpu_count()} cores):")
    print(f"   checks run: {sched['checks']} ({overall['successful_checks']} of {overall['checks']} stored results up)")
    print(f"   start lag: p50 {sched['lag_p50_ms']:.2f} ms, p99 {sched['lag_p99_ms']:.2f} ms, "
          f"max {sched['lag_max_ms']:.2f} ms (target p99 <= 100 ms)")
    print(f"   agent CPU {cpu:.1f}% of one core ({ENDPOINTS / 10:.0f} checks/s), RSS {rss:.1f} MiB")


def blackbox_probe(bb_port, module, target):
    url = f"http://127.0.0.1:{bb_port}/probe?module={module}&target={urllib.request.quote(target, safe='')}"
    with urllib.request.urlopen(url, timeout=30) as r:
        text = r.read().decode()
    vals = {}
    for line in text.splitlines():
        if line.startswith("probe_success ") or line.startswith("probe_duration_seconds "):
            k, v = line.split()
            vals[k] = float(v)
    return vals["probe_success"] == 1.0, vals["probe_duration_seconds"]


def ours(url, extra=(), repeat=1):
    args = [BIN, "probe", "http", url, "--timeout", "2s", "--expect-status", "2xx", "--body-contains", "ok", "--json",
            "--repeat", str(repeat), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return p.returncode, recs, cpu


def side_by_side(work, web_port, tls_port):
    bb_port = free_port()
    bb_cfg = os.path.join(work, "blackbox.yml")
    with open(bb_cfg, "w") as f:
        f.write("modules:\n  http_ok:\n    prober: http\n    timeout: 2s\n    http:\n"
                "      preferred_ip_protocol: ip4\n      fail_if_body_not_matches_regexp: [\"ok\"]\n")
    bb = subprocess.Popen(["prometheus-blackbox-exporter", f"--config.file={bb_cfg}",
                           f"--web.listen-address=127.0.0.1:{bb_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(bb_port)
        refused = free_port()
        cases = [
            ("ok", f"http://127.0.0.1:{web_port}/ok"),
            ("500", f"http://127.0.0.1:{web_port}/error"),
            ("slow past the 2 s timeout", f"http://127.0.0.1:{web_port}/slow"),
            ("wrong body", f"http://127.0.0.1:{web_port}/wrong"),
            ("connection refused", f"http://127.0.0.1:{refused}/"),
            ("self-signed TLS", f"https://127.0.0.1:{tls_port}/ok"),
        ]
        print("B. verdicts, blackbox_exporter vs thorbis-obs (same endpoint, same rules):")
        agree = 0
        for name, url in cases:
            bb_up, _ = blackbox_probe(bb_port, "http_ok", url)
            code, recs, _ = ours(url)
            our_up = code == 0
            rule = recs[0].get("failed_rule") if recs else None
            agree += bb_up == our_up
            print(f"   {name:<28} blackbox {'up' if bb_up else 'DOWN':<5} thorbis-obs {'up' if our_up else 'DOWN':<5}"
                  f" {'' if our_up else '(' + str(rule) + ')'}")
        print(f"   {agree} of {len(cases)} verdicts agree")

        ok = f"http://127.0.0.1:{web_port}/ok"
        for _ in range(20):  # warm both
            blackbox_probe(bb_port, "http_ok", ok)
        c0 = cpu_of(bb.pid)
        walls = [blackbox_probe(bb_port, "http_ok", ok)[1] for _ in range(PROBES)]
        bb_cpu = (cpu_of(bb.pid) - c0) / PROBES
        bb_wall = statistics.median(walls)
        _, _, cpu1 = ours(ok, repeat=1)
        _, recs, cpun = ours(ok, repeat=PROBES + 1)
        our_cpu = max(cpun - cpu1, 0.0) / PROBES
        our_wall = statistics.median(r["duration_ms"] for r in recs) / 1000
        print(f"   cost per probe over {PROBES} probes of one healthy endpoint (fresh connection each):")
        print(f"   blackbox_exporter: CPU {bb_cpu * 1e6:.0f} us, wall median {bb_wall * 1e3:.3f} ms "
              f"(its probe_duration_seconds; its HTTP API adds to the CPU)")
        print(f"   thorbis-obs:       CPU {our_cpu * 1e6:.0f} us, wall median {our_wall * 1e3:.3f} ms "
              f"(process CPU of {PROBES + 1} probes minus 1 probe, per probe)")
        print(f"   ratio ours/blackbox: CPU {our_cpu / bb_cpu:.2f}x, wall {our_wall / bb_wall:.2f}x (target <= 1)")
    finally:
        bb.terminate()
        bb.wait(timeout=10)


def main():
    work = tempfile.mkdtemp(prefix="thorbis-uptime-bench.")
    key, crt = os.path.join(work, "key.pem"), os.path.join(work, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    web_port, tls_port = free_port(), free_port()
    serve(web_port)
    serve(tls_port, (crt, key))
    wait_port(web_port)
    if os.environ.get("SKIP_SCHEDULING") != "1":
        scheduling(work, web_port)
    side_by_side(work, web_port, tls_port)
    subprocess.run(["rm", "-rf", work])


main()
