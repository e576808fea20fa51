#!/usr/bin/env python3
"""Runs `thorbis-obs rules test` and `promtool test rules` on the same generated scenario.

The scenario: N rules (default 100), each on its own metric with one series, and S samples in
all (default 10,000) at 1-minute intervals; conditions over a 150 s window (not a multiple of
the interval, so Prometheus 2's closed window start and our open one see the same samples),
half of the rules with `for: 2m`. Expected alerts come from a small reference model of the
semantics below, written here independently of both tools. A second copy of the tests has a
few expectations flipped: both tools must fail on exactly those.

Prints the median wall time of each tool over R runs and the ratio.
"""
import argparse, os, random, re, statistics, subprocess, sys, tempfile, time

AGG = [("avg", "avg_over_time({})"), ("max", "max_over_time({})"), ("min", "min_over_time({})"),
       ("sum", "sum_over_time({})"), ("count", "count_over_time({})"), ("last", "last_over_time({})"),
       ("p50", "quantile_over_time(0.5, {})"), ("p75", "quantile_over_time(0.75, {})"),
       ("p95", "quantile_over_time(0.95, {})")]
QUANTILES = {"p50": 0.5, "p75": 0.75, "p95": 0.95}
OPS = [("greater_than", ">"), ("less_than", "<"), ("greater_than_or_equal", ">=")]
WINDOW_S, STEP_S = 150, 60


def generate(n_rules, n_samples, seed):
    rng = random.Random(seed)
    per_series = n_samples // n_rules
    rules, series = [], []
    for i in range(n_rules):
        agg, prom_fn = AGG[i % len(AGG)]
        op, sym = OPS[(i // len(AGG)) % len(OPS)]
        pending = 120 if i % 2 else 0
        # A random walk with occasional gaps, integers only; thresholds end in .5 so no
        # aggregate (a sum, or a mean of at most 3 integers) ever equals them, and quantile
        # thresholds in .37 (an interpolation of at most 3 integers by these q is a multiple
        # of 0.05).
        v, values = rng.randint(0, 100), []
        while sum(1 for x in values if x is not None) < per_series:
            v = max(0, v + rng.randint(-15, 15))
            values.append(None if rng.random() < 0.05 else v)
        if agg == "count":
            threshold = rng.choice([1.5, 2.5])
        elif agg == "sum":
            threshold = 3 * rng.randint(30, 70) + 0.5
        elif agg in QUANTILES:
            threshold = rng.randint(30, 70) + 0.37
        else:
            threshold = rng.randint(30, 70) + 0.5
        rules.append(dict(i=i, agg=agg, fn=prom_fn, op=op, sym=sym, thr=threshold, pending=pending))
        series.append(values)
    return rules, series, per_series


def promql_quantile(q, values):
    """PromQL's quantile: rank q * (n - 1), linear between the samples at floor and floor + 1."""
    s = sorted(values)
    rank = q * (len(s) - 1)
    lo = max(0, int(rank // 1))
    hi = min(len(s) - 1, lo + 1)
    w = rank - lo
    return s[lo] * (1 - w) + s[hi] * w


def reference(rule, values, eval_times):
    """Alert state per eval time under Prometheus semantics with over-time windows."""
    ops = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b}
    firing_at, active, state = {}, None, "inactive"
    t_end = max(eval_times)
    for t in range(0, t_end + 1, STEP_S):
        inside = [v for k, v in enumerate(values) if v is not None and t - WINDOW_S < k * STEP_S <= t]
        if inside:
            if rule["agg"] in QUANTILES:
                agg = promql_quantile(QUANTILES[rule["agg"]], inside)
            else:
                agg = {"avg": sum(inside) / len(inside), "max": max(inside), "min": min(inside),
                       "sum": sum(inside), "count": len(inside), "last": inside[-1]}[rule["agg"]]
            holds = ops[rule["sym"]](agg, rule["thr"])
        else:
            holds = False
        if holds:
            if state == "inactive":
                state, active = "pending", t
            if state == "pending" and t - active >= rule["pending"]:
                state = "firing"
        else:
            state, active = "inactive", None
        firing_at[t] = state == "firing"
    return firing_at


def write_files(d, rules, series, eval_times, flip):
    name = lambda r: f"R{r['i']}"
    with open(os.path.join(d, "rules.yaml"), "w") as f:
        f.write("rules:\n")
        for r in rules:
            f.write(f"  - id: r-{r['i']}\n    name: {name(r)}\n    metric: m_{r['i']}\n"
                    f"    condition: {{ operator: {r['op']}, threshold: {r['thr']}, duration: 2m30s, aggregation: {r['agg']} }}\n"
                    f"    for: {r['pending']}s\n    severity: warning\n")
    with open(os.path.join(d, "rules.prom.yaml"), "w") as f:
        f.write("groups:\n  - name: generated\n    rules:\n")
        for r in rules:
            expr = r["fn"].format(f"m_{r['i']}[150s]")
            f.write(f"      - alert: {name(r)}\n        expr: {expr} {r['sym']} {r['thr']}\n"
                    f"        for: {r['pending']}s\n        labels: {{ severity: warning }}\n")
    flipped = set()
    rng = random.Random(7)
    body = ["evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"]
    for r, values in zip(rules, series):
        vals = " ".join("_" if v is None else str(v) for v in values)
        body.append(f"      - series: 'm_{r['i']}{{job=\"gen\", instance=\"i{r['i']}\"}}'\n        values: '{vals}'\n")
    body.append("    alert_rule_test:\n")
    for r, values in zip(rules, series):
        state = reference(r, values, eval_times)
        for t in eval_times:
            firing = state[t]
            if flip and rng.random() < 0.01:
                firing = not firing
                flipped.add((name(r), t))
            body.append(f"      - eval_time: {t}s\n        alertname: {name(r)}\n")
            if firing:
                body.append(f"        exp_alerts: [{{ exp_labels: {{ job: gen, instance: i{r['i']}, severity: warning }} }}]\n")
            else:
                body.append("        exp_alerts: []\n")
    text = "".join(body)
    for fname, rf in (("test.yaml", "rules.yaml"), ("test.prom.yaml", "rules.prom.yaml")):
        with open(os.path.join(d, fname), "w") as f:
            f.write(f"rule_files: [{rf}]\n" + text)
    return flipped


def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t0, p.returncode, p.stdout + p.stderr


def failed_tests(output):
    """(alertname, seconds) of each failed alert test, from either tool's report."""
    out = set()
    for m in re.finditer(r"alertname: (\w+), time: ([0-9hms]+)", output):
        out.add((m.group(1), parse_dur(m.group(2))))
    return out


def parse_dur(s):
    total = 0
    for num, unit in re.findall(r"(\d+)(h|ms|m|s)", s):
        total += int(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0}[unit]
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rules, series, per_series = generate(a.rules, a.samples, a.seed)
    eval_times = list(range(5 * STEP_S, min(len(s) for s in series) * STEP_S, 5 * STEP_S))
    with tempfile.TemporaryDirectory() as good, tempfile.TemporaryDirectory() as bad:
        write_files(good, rules, series, eval_times, flip=False)
        flipped = write_files(bad, rules, series, eval_times, flip=True)
        n_tests = len(rules) * len(eval_times)
        print(f"scenario: {len(rules)} rules, {sum(1 for s in series for v in s if v is not None)} samples, "
              f"{n_tests} alert tests, {len(flipped)} flipped in the failing copy")
        ours_t, prom_t = [], []
        for _ in range(a.runs):
            t, rc, out = run([a.ours, "rules", "test", os.path.join(good, "test.yaml")])
            ours_t.append(t)
            if rc != 0:
                sys.exit(f"ours failed on the correct scenario:\n{out[:3000]}")
            t, rc, out = run([a.promtool, "test", "rules", os.path.join(good, "test.prom.yaml")])
            prom_t.append(t)
            if rc != 0:
                sys.exit(f"promtool failed on the correct scenario:\n{out[:3000]}")
        _, rc_o, out_o = run([a.ours, "rules", "test", os.path.join(bad, "test.yaml")])
        _, rc_p, out_p = run([a.promtool, "test", "rules", os.path.join(bad, "test.prom.yaml")])
        fo, fp = failed_tests(out_o), failed_tests(out_p)
        same = rc_o != 0 and rc_p != 0 and fo == fp == flipped
        print(f"verdicts: correct scenario: both pass; flipped copy: ours failed {len(fo)}, promtool failed {len(fp)}, "
              f"flipped {len(flipped)} -> {'SAME' if same else 'DIFFERENT'}")
        mo, mp = statistics.median(ours_t), statistics.median(prom_t)
        print(f"thorbis-obs rules test: median {mo * 1000:.1f} ms over {a.runs} runs")
        print(f"promtool test rules:    median {mp * 1000:.1f} ms over {a.runs} runs")
        print(f"ratio (promtool / ours): {mp / mo:.1f}x")
        if not same:
            print("ours only:", sorted(fo - fp)[:10], "promtool only:", sorted(fp - fo)[:10], "not flagged:", sorted(flipped - fo)[:10])
            sys.exit(1)


if __name__ == "__main__":
    main()
