// Browser SDK benchmarks in headless Chromium (run by scripts/bench-sdk.sh), side by side with
// Datadog's browser RUM SDK on the same page shape:
//   A. time from the page's first script to "observers registered" (our init() returned after
//      the wasm was fetched, compiled and started; datadogRum.init() returned);
//   B. main-thread cost of one track() call against Datadog's addAction(), over 10,000 calls.
// Medians over fresh page loads. Nothing leaves 127.0.0.1: both SDKs send to local endpoints.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [sdkDir, ddBundle] = process.argv.slice(2);
const RUNS = Number(process.env.RUNS || 7);
// Each kind is rate limited at 3,000 events a minute (both SDKs), so a run stays under it: a
// warm-up (the engine tiers the code up) and then the measured calls.
const WARMUP = Number(process.env.WARMUP || 1500);
const CALLS = Number(process.env.CALLS || 1000);

const ours = `<!doctype html><html><head><script>window.__t0 = performance.now();</script></head><body><h1>bench</h1>
<script type="module">
import * as obs from "/sdk/index.js";
obs.init({ endpoint: "/v1/rum", service: "bench", env: "bench", flushIntervalMs: 60000 });
window.__registered = performance.now();
await obs.ready();
window.__ready = performance.now();
for (let i = 0; i < ${WARMUP}; i++) obs.track("warm_event", { i, kind: "x" });
const t = performance.now();
for (let i = 0; i < ${CALLS}; i++) obs.track("bench_event", { i, kind: "x" });
window.__track = (performance.now() - t) / ${CALLS};
window.__done = true;
</script></body></html>`;

const datadog = `<!doctype html><html><head><script>window.__t0 = performance.now();</script></head><body><h1>bench</h1>
<script src="/dd.js"></script>
<script>
DD_RUM.init({ applicationId: "00000000-0000-0000-0000-000000000000", clientToken: "pub0000000000000000000000000000000",
  site: "datadoghq.com", service: "bench", env: "bench", sessionSampleRate: 100, proxy: "/dd-intake",
  trackUserInteractions: true, trackResources: true, trackLongTasks: true });
window.__registered = performance.now();
for (let i = 0; i < ${WARMUP}; i++) DD_RUM.addAction("warm_event", { i, kind: "x" });
const t = performance.now();
for (let i = 0; i < ${CALLS}; i++) DD_RUM.addAction("bench_event", { i, kind: "x" });
window.__track = (performance.now() - t) / ${CALLS};
window.__done = true;
</script></body></html>`;

const server = http.createServer((req, res) => {
  const url = req.url.split("?")[0];
  const send = (type, body) => { res.writeHead(200, { "Content-Type": type }); res.end(body); };
  if (url === "/ours") return send("text/html", ours);
  if (url === "/datadog") return send("text/html", datadog);
  if (url === "/dd.js") return send("text/javascript", fs.readFileSync(ddBundle));
  if (url.startsWith("/sdk/")) {
    const f = path.join(sdkDir, url.slice(5));
    return send(f.endsWith(".wasm") ? "application/wasm" : "text/javascript", fs.readFileSync(f));
  }
  req.resume();
  req.on("end", () => { res.writeHead(202); res.end(); });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const results = {};
for (const name of ["ours", "datadog"]) {
  const start = [], track = [], ready = [];
  for (let i = 0; i < RUNS; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${base}/${name}`);
    await page.waitForFunction(() => window.__done === true, null, { timeout: 30000 });
    const r = await page.evaluate(() => ({ start: window.__registered - window.__t0, track: window.__track,
      ready: (window.__ready ?? window.__registered) - window.__t0 }));
    start.push(r.start);
    ready.push(r.ready);
    track.push(r.track);
    await ctx.close();
  }
  results[name] = { start: median(start), track: median(track), ready: median(ready) };
}
await browser.close();
server.close();
const o = results.ours, d = results.datadog;
console.log(`A. script start -> observers registered, median of ${RUNS} loads: ours ${o.start.toFixed(1)} ms, ` +
  `Datadog ${d.start.toFixed(1)} ms; ratio ${(o.start / d.start).toFixed(2)}. Ours with its wasm half fetched, ` +
  `compiled and processing: ${o.ready.toFixed(1)} ms (ratio ${(o.ready / d.start).toFixed(2)})`);
console.log(`B. one call, median of ${RUNS} runs of ${CALLS} after ${WARMUP} warm-up calls: track() ${(o.track * 1000).toFixed(2)} us, ` +
  `Datadog addAction() ${(d.track * 1000).toFixed(2)} us; ratio ${(o.track / d.track).toFixed(2)} (target <= 5 us)`);
