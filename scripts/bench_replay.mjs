// Session replay's cost on the Next.js example (run by scripts/bench-replay.sh, which says what
// is measured). Arguments: the agent binary and the example's copy (npm installed). Builds the
// example three times (replay off, ours, rrweb's defaults), serves each with `next start`, and
// runs RUNS scripted sessions of SESSION_S seconds in headless Chromium against one agent.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [agentBin, app] = process.argv.slice(2);
const RUNS = Number(process.env.RUNS || 5);
const SESSION_MS = Number(process.env.SESSION_S || 60) * 1000;

const freePort = () =>
  new Promise((done) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
const until = async (what, check, ms = 60000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// The agent: collector and replay store at their defaults, in a throwaway directory.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "replay-bench-"));
const agentPort = await freePort();
const agentBase = `http://127.0.0.1:${agentPort}`;
fs.writeFileSync(
  path.join(dir, "agent.toml"),
  `[agent]\ndata_dir = "${dir}/data"\n[http]\nlisten = "127.0.0.1:${agentPort}"\n[collector]\nwindow = "10s"\n`,
);
const agent = spawn(agentBin, ["run", "--config", path.join(dir, "agent.toml")], { stdio: "ignore" });
await until("the agent", () => fetch(`${agentBase}/healthz`).then((r) => r.ok));
const replays = async () => (await (await fetch(`${agentBase}/api/v1/replays`)).json()).sessions;

// The variants: the build's sample rates, and whether replay.js keeps its privacy options.
const replayJs = path.join(app, "vendor/thorbis-obs/replay.js");
const original = fs.readFileSync(replayJs, "utf8");
const withoutPrivacy = original.replace(/\n\s*\.\.\.privacy,\n/, "\n");
if (withoutPrivacy === original) throw new Error("replay.js has no `...privacy,` line to take out");
const variants = [
  { name: "off", rate: "0", source: original },
  { name: "ours", rate: "1", source: original },
  { name: "rrweb defaults", rate: "1", source: withoutPrivacy },
];

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

// One scripted session: the page's main-thread time over it.
async function session(base) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  await page.goto(`${base}/`, { waitUntil: "load" });
  await page.waitForSelector("#card-name");
  const m0 = await metrics();
  const t0 = Date.now();
  let cycles = 0;
  while (Date.now() - t0 < SESSION_MS - 4000) {
    await page.fill("#card-name", "");
    await page.type("#card-name", "Dana Q Cardholder", { delay: 40 });
    await page.fill("#card-number", "");
    await page.type("#card-number", "4111 1111 1111 1111", { delay: 40 });
    await page.click("#create");
    await page.click("#load");
    await page.waitForSelector("#loaded");
    await page.click("#charge-declined");
    await page.waitForSelector("#invoice-fallback");
    await page.click("#invoice-retry");
    await page.waitForSelector("#invoice-status");
    await page.mouse.wheel(0, cycles % 2 ? -400 : 400);
    await page.waitForTimeout(1000);
    cycles++;
  }
  await page.waitForTimeout(Math.max(0, SESSION_MS - (Date.now() - t0)));
  const m1 = await metrics();
  // Leaving sends the recorder's last chunk.
  await page.goto("about:blank");
  await ctx.close();
  return { taskMs: (m1.TaskDuration - m0.TaskDuration) * 1000, scriptMs: (m1.ScriptDuration - m0.ScriptDuration) * 1000, cycles };
}

// The replay a session left: its stored bytes once the last chunk is in (no new chunk for 2 s).
async function stored(before) {
  let last = "";
  let steady = 0;
  for (let i = 0; i < 100 && steady < 10; i++) {
    const s = (await replays()).find((s) => !before.has(s.session_id));
    const now = s ? `${s.chunks} ${s.bytes}` : "";
    steady = now && now === last ? steady + 1 : 0;
    last = now;
    await new Promise((r) => setTimeout(r, 200));
  }
  const s = (await replays()).find((s) => !before.has(s.session_id));
  if (!s) return { bytes: 0, inflated: 0, events: 0 };
  const full = await (await fetch(`${agentBase}/api/v1/replays/${s.session_id}`)).json();
  return { bytes: s.bytes, inflated: JSON.stringify(full.events).length, events: full.events.length };
}

const results = [];
try {
  for (const v of variants) {
    fs.writeFileSync(replayJs, v.source);
    const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1", OTEL_SDK_DISABLED: "true", THORBIS_AGENT_URL: agentBase,
      NEXT_PUBLIC_THORBIS_REPLAYS_SESSION_RATE: v.rate, NEXT_PUBLIC_THORBIS_REPLAYS_ON_ERROR_RATE: "0" };
    const build = spawnSync(path.join(app, "node_modules/.bin/next"), ["build"], { cwd: app, env, encoding: "utf8" });
    if (build.status !== 0) throw new Error(`next build (${v.name}) failed:\n${build.stdout}\n${build.stderr}`);
    const port = await freePort();
    const next = spawn(path.join(app, "node_modules/.bin/next"), ["start", "-p", String(port), "-H", "127.0.0.1"],
      { cwd: app, env, stdio: "ignore", detached: true });
    const base = `http://127.0.0.1:${port}`;
    try {
      await until("next start", () => fetch(`${base}/`).then((r) => r.ok));
      const runs = [];
      for (let i = 0; i < RUNS; i++) {
        const before = new Set((await replays()).map((s) => s.session_id));
        const r = await session(base);
        const s = v.rate === "0" ? { bytes: 0, inflated: 0, events: 0 } : await stored(before);
        const minutes = SESSION_MS / 60000;
        Object.assign(r, { storedPerMin: s.bytes / minutes, inflatedPerMin: s.inflated / minutes, events: s.events });
        console.log(`${v.name} run ${i + 1}: main thread ${r.taskMs.toFixed(0)} ms (script ${r.scriptMs.toFixed(0)} ms), ` +
          `${r.cycles} cycles, stored ${(r.storedPerMin / 1024).toFixed(1)} KiB/min, inflated ${(r.inflatedPerMin / 1024).toFixed(1)} KiB/min, ${r.events} events`);
        runs.push(r);
      }
      results.push({ name: v.name, runs });
    } finally {
      process.kill(-next.pid, "SIGTERM");
    }
  }
} finally {
  fs.writeFileSync(replayJs, original);
  await browser.close();
  agent.kill("SIGTERM");
}

// Main thread: CDP's TaskDuration (every task: script, style, layout, paint) and ScriptDuration
// (JavaScript alone, where the recorder's work is) over the session; "added" is against "off".
const off = { task: median(results[0].runs.map((r) => r.taskMs)), script: median(results[0].runs.map((r) => r.scriptMs)) };
console.log(`\nmedians of ${RUNS} sessions of ${SESSION_MS / 1000} s`);
console.log("variant          main thread (added)          script (added)            stored/min   inflated/min");
const added = (v, base) => `${v.toFixed(0).padStart(6)} ms (${(v - base >= 0 ? "+" : "") + (v - base).toFixed(0)} ms, ${(v / base).toFixed(2)}x)`;
for (const { name, runs } of results) {
  const task = median(runs.map((r) => r.taskMs));
  const script = median(runs.map((r) => r.scriptMs));
  const storedKb = median(runs.map((r) => r.storedPerMin)) / 1024;
  const inflatedKb = median(runs.map((r) => r.inflatedPerMin)) / 1024;
  console.log(`${name.padEnd(16)} ${added(task, off.task).padEnd(28)} ${added(script, off.script).padEnd(25)} ` +
    `${storedKb.toFixed(1).padStart(6)} KiB ${inflatedKb.toFixed(1).padStart(10)} KiB`);
}
