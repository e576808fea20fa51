// @thorbis/obs, the browser SDK of thorbis-obs. This file is its JS half: the browser plumbing
// (observers, listeners, session, batching, sending). The wasm half (../src/lib.rs) is core's
// shared logic, the same code the agent runs: CLS windows, INP selection, ratings, budgets, the
// noise filter, business context and URL scrubbing. Why the split: see the crate's docs.
//
// Rules this file keeps: importing it touches neither window nor document (server-side
// rendering imports it too); nothing throws into the page (every callback runs through `go`,
// which catches and counts); init registers every observer and listener at once, and the work
// that needs the wasm waits in `later` until it has loaded.

// The wasm half, once loaded; its loading promise; the options.
let b = null;
let loading = null;
let cfg = null;
// Counters for diagnostics().
let failures = 0;
let dropped = 0;
// Work waiting for the wasm (at most 1,000 items: a page that never loads it loses the rest).
const later = [];
const browser = () => typeof window !== "undefined" && typeof document !== "undefined";
const now = () => performance.now();
// Epoch ms from the high-resolution clock, as the wire schema wants (timeOrigin is read once:
// it is a getter into the browser, on every event's path).
let origin;
const epoch = (t) => Math.round((origin ??= performance.timeOrigin) + t);
const rid = () => (crypto.randomUUID ? crypto.randomUUID() : "r" + Math.random().toString(36).slice(2));
const str = (v) => typeof v === "string";
const on = (target, type, f, capture) => target.addEventListener(type, f, { capture, passive: true });

function run(f) {
  try {
    f();
  } catch (_) {
    failures++;
  }
}

// Runs `f` now if the wasm is ready and the SDK has started, else once both are.
function go(f) {
  if (b && vs) run(f);
  else if (later.length < 1000) later.push(f);
  else dropped++;
}

function drain() {
  if (b && vs) later.splice(0).forEach(run);
}

function load() {
  loading ||= import("./pkg/thorbis_obs_wasm.js")
    .then(async (m) => {
      // The plain-browser build (wasm-bindgen --target web) is instantiated by its default
      // export; the bundler build is ready on import.
      if (typeof m.default === "function") await m.default();
      b = m;
      drain();
      return true;
    })
    .catch(() => {
      failures++;
      later.length = 0;
      return false;
    });
  return loading;
}

// ---- Options -------------------------------------------------------------------------------

function config(o) {
  const s = (k, d) => (str(o[k]) && o[k]) || d;
  const f = (k) => o[k] !== false;
  let url = s("endpoint", "/v1/rum");
  if (s("clientToken")) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(o.clientToken);
  const rate = o.sessionSampleRate;
  const bud = o.budgets || {};
  return {
    url,
    // The collector's own requests are not page resources.
    base: url.split("?")[0],
    service: s("service", "browser"),
    env: s("env", "production"),
    version: s("version"),
    rate: Number.isFinite(rate) ? Math.min(100, Math.max(0, rate)) : 100,
    clicks: f("trackInteractions"),
    resources: f("trackResources"),
    longTasks: f("trackLongTasks"),
    privacy: o.privacy,
    scrubbers: Array.isArray(o.scrubbers) ? o.scrubbers.filter((r) => r instanceof RegExp) : [],
    beforeSend: typeof o.beforeSend === "function" ? o.beforeSend : null,
    budgets: [bud.javascript, bud.css, bud.images, bud.fonts].map(Number),
    flushMs: o.flushIntervalMs >= 100 ? o.flushIntervalMs : 10000,
    consent: o.consent !== "pending",
  };
}

// The page's scrubbers after the built-in URL scrubbing (emails, secret query parameters).
const scrub = (text) => cfg.scrubbers.reduce((s, re) => s.replace(re, "[redacted]"), b.scrubUrl(text));

// A string cut to at most `n` UTF-8 bytes, never inside a surrogate pair.
const enc = new TextEncoder();
function cut(s, n) {
  s = s.slice(0, n);
  while (enc.encode(s).length > n) s = s.slice(0, (s.length * 0.9) | 0);
  return /[\ud800-\udbff]$/.test(s) ? s.slice(0, -1) : s;
}

// ---- Session and view ------------------------------------------------------------------------

const KEY = "_thorbis_obs_s";
// Inactivity that ends a session, and the longest session (Datadog's 15 minutes and 4 hours).
const IDLE = 15 * 60e3;
const LONGEST = 4 * 3600e3;
let session = null;
// Epoch ms of the last activity and of the last write to localStorage.
let last = 0;
let written = 0;

// localStorage holds `id|startedAt|lastActivity|sampled` so the session spans page loads.
function save(at) {
  last = written = at;
  try {
    localStorage.setItem(KEY, [session.id, session.startedAt, at, +session.sampled].join("|"));
  } catch (_) {
    // Storage off (private mode, quota): the session lives as long as the page.
  }
}

function startSession(at) {
  session = { id: rid(), sampled: Math.random() * 100 < cfg.rate, startedAt: at, sampleRate: cfg.rate };
  save(at);
}

function resumeSession(at) {
  let p = [];
  try {
    p = (localStorage.getItem(KEY) || "").split("|");
  } catch (_) {}
  if (p[0] && at - p[2] < IDLE && at - p[1] < LONGEST) {
    session = { id: p[0], sampled: p[3] === "1", startedAt: +p[1], sampleRate: cfg.rate };
    save(at);
  } else startSession(at);
}

// Marks activity; an expired session rolls over (what the old one queued is dropped with it).
function touch(at) {
  if (at - last >= IDLE || at - session.startedAt >= LONGEST) {
    clear();
    startSession(at);
  } else if (at - written >= 1000) save(at);
  else last = at;
}

let view = null;

function newView(previous) {
  const v = { id: rid(), url: scrub(location.href), route: scrub(location.pathname) };
  const ref = previous ? previous.url : document.referrer && scrub(document.referrer);
  if (ref) v.referrer = ref;
  view = v;
}

// An SPA route change: the old view's batch goes first, then a new view.
function route() {
  if (scrub(location.href) === view.url) return;
  flush();
  newView(view);
  crumb("navigation", view.url);
  emit(3, "timing", { name: "route_change", durationMs: now() });
}

// ---- Events ----------------------------------------------------------------------------------

// Per-kind limits (vital, error, action, other): 3,000 a minute each, as Datadog's.
const limits = [
  [0, 0],
  [0, 0],
  [0, 0],
  [0, 0],
];

// Stamps, samples, limits, runs beforeSend on and queues one event (`t`: when it happened, on
// the performance clock; now if not given). Unsampled sessions still send errors.
function emit(kind, type, ev, t) {
  ev.type = type;
  // Date.now() where the event has no time of its own: performance.now() costs about half a
  // microsecond in Chromium, a third of a track() call.
  const at = (ev.at ??= t === undefined ? Date.now() : epoch(t));
  touch(at);
  if (!session.sampled && kind !== 1) return;
  const l = limits[kind];
  if (at - l[0] > 60e3) l.splice(0, 2, at, 0);
  if (l[1]++ >= 3000) return void dropped++;
  if (cfg.beforeSend) {
    let r = ev;
    try {
      r = cfg.beforeSend(ev);
    } catch (_) {
      failures++;
    }
    if (r !== undefined) {
      if (!r || typeof r !== "object") return void dropped++;
      ev = r;
    }
  }
  // A full queue (no consent yet, or offline) keeps what came first: the page-load vitals are
  // worth more than the 501st click.
  if (queue.length >= 500) return void dropped++;
  queue.push(ev);
  // A full batch goes out from a task of its own, not inside the caller's track().
  if (queue.length >= 50 && !scheduled) {
    scheduled = true;
    setTimeout(() => go(flush));
  }
}

// Copies up to 32 plain properties (string, boolean, finite number; names as the wire allows).
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,199}$/;
function plain(src) {
  let n = 0;
  let out;
  if (src && typeof src === "object") {
    for (const k of Object.keys(src)) {
      const v = src[k];
      const t = typeof v;
      if (n < 32 && NAME.test(k) && (t === "string" || t === "boolean" || (t === "number" && isFinite(v)))) {
        (out ||= {})[k] = v;
        n++;
      }
    }
  }
  return out;
}

// The spec's DOM events: event -> [business event, detail field, property, ...].
const BUSINESS = {
  "work-order-created": "work_order_created id workOrderId industry industry priority priority estimatedValue estimatedValue",
  "work-order-completed":
    "work_order_completed id workOrderId duration duration actualValue actualValue satisfaction customerSatisfaction",
  "invoice-generated": "invoice_generated id invoiceId amount amount industry industry paymentTerms paymentTerms",
  "payment-processed": "payment_processed id paymentId amount amount method method processingTime processingTime",
};

function business(e) {
  const [name, ...map] = BUSINESS[e.type].split(" ");
  const src = {};
  for (let i = 0; i < map.length; i += 2) src[map[i + 1]] = e.detail?.[map[i]];
  emit(3, "business", { name, props: plain(src) || {} }, e.timeStamp);
}

// A CSS-ish description of an element: `tag#id.class1.class2`.
function describe(el) {
  if (!(el instanceof Element)) return "";
  let s = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
  for (const c of (el.getAttribute("class") || "").split(/\s+/).filter(Boolean).slice(0, 2)) s += "." + c;
  return s;
}

// The action name of an element, from its accessible text; never an input's value.
function actionName(el) {
  const a = (k) => (el.getAttribute(k) || "").trim();
  const form = /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  const t = a("aria-label") || (form ? a("placeholder") || a("name") : el.innerText || "") || a("title") || a("alt");
  const name = t.split(/\s+/).filter(Boolean).join(" ").slice(0, 100);
  return cfg.privacy === "mask" && name ? "Masked" : name;
}

function click(e) {
  let el = e.target;
  if (!(el instanceof Element)) return;
  // The nearest interactive ancestor names the action, as a screen reader would.
  el = el.closest("button,a,[role=button],input,select,textarea,label,summary") || el;
  const target = describe(el);
  crumb("ui.click", target);
  if (cfg.clicks) emit(2, "action", { name: actionName(el) || target, actionType: "click", target }, e.timeStamp);
}

// ---- Errors ----------------------------------------------------------------------------------

// The last 100 breadcrumbs (clicks, navigations, console errors), oldest first.
const crumbs = [];
function crumb(category, message) {
  crumbs.push({ at: epoch(now()), category, message: cut(message, 300) });
  if (crumbs.length > 100) crumbs.shift();
}

// Errors sent in the last minute, by fingerprint: [sent at, event, repeats since]. A repeat is
// counted, not sent; the counts go out with the next flush as one event each.
const recent = new Map();

const CONTEXT = "process businessProcess step workflowStep code errorCode industry industry userRole userRole businessId businessId component component".split(" ");

function capture(err, kind, context, fingerprint) {
  let name = "Error";
  let message = "";
  let stack;
  if (err && typeof err === "object") {
    if (str(err.name)) name = err.name;
    if (str(err.message)) message = err.message;
    if (str(err.stack)) stack = err.stack;
  } else message = String(err);
  if (b.isNoise(message, stack)) return;
  // The dedup key: the same error thrown from the same place.
  const first = stack && stack.split("\n").find((l) => l.trim().startsWith("at ") || l.includes("@"));
  const key = [fingerprint ? fingerprint.join("\x1f") : name + "\x1f" + message, first].join("\x1f");
  const seen = recent.get(key);
  if (seen && now() - seen[0] < 60e3) return void seen[2]++;
  // Tags: the business context of the page, then the caller's context.
  const [businessProcess, industry] = b.businessContext(location.pathname).split("|");
  const tags = { businessProcess, industry };
  for (let i = 0; i < CONTEXT.length; i += 2) if (str(context?.[CONTEXT[i]])) tags[CONTEXT[i + 1]] = context[CONTEXT[i]];
  const ev = { kind, message: cut(scrub(message ? name + ": " + message : name), 2000), tags, count: 1 };
  if (stack) ev.stack = cut(stack, 16000);
  if (fingerprint) ev.fingerprint = fingerprint;
  if (crumbs.length) ev.breadcrumbs = crumbs.slice();
  if (recent.size >= 50) recent.delete(recent.keys().next().value);
  recent.set(key, [now(), ev, 0]);
  emit(1, "error", { ...ev });
}

// Repeats counted since the last flush go out as their error with `count` set.
function repeats() {
  for (const [key, r] of recent) {
    if (r[2]) emit(1, "error", { ...r[1], count: r[2], at: undefined });
    r[2] = 0;
    if (now() - r[0] >= 60e3) recent.delete(key);
  }
}

// ---- Web vitals --------------------------------------------------------------------------------

const RATINGS = ["good", "needs-improvement", "poor"];
// Quiet time after FCP that ends the TTI search.
const QUIET = 5000;
// What is measured on this page (or since the last bfcache restore).
let vs = null;
const fresh = (nav) => ({ nav, ids: {}, act: 0, hidden: Infinity, lcp: null, lcpDone: 0, fcp: null, cls: 0, clsTarget: "", clsSent: -1, inp: [], inpSent: -1, fid: 0, lastLong: 0, tti: 0 });

function report(name, value, target) {
  if (!(value >= 0 && value < Infinity)) return;
  const ev = { name, value, rating: RATINGS[b.rateVital(name, value)], id: (vs.ids[name] ||= rid()), navigationType: vs.nav };
  if (target) ev.target = target;
  emit(0, "vital", ev);
}

function reportLcp() {
  if (!vs.lcpDone && vs.lcp) {
    vs.lcpDone = 1;
    report("LCP", ...vs.lcp);
  }
}

// Observes `type` with buffered entries; each entry goes to `f` once the wasm is ready.
function observe(type, f, extra) {
  try {
    new PerformanceObserver((list) => {
      const entries = list.getEntries();
      go(() => entries.forEach((e) => run(() => f(e))));
    }).observe({ type, buffered: true, ...extra });
  } catch (_) {
    // An entry type this browser does not have.
  }
}

// web-vitals' semantics: values from `activationStart` (prerendered pages), entries after the
// page was first hidden ignored, LCP final at the first input, CLS and INP reported on hide.
function startVitals() {
  const nav = performance.getEntriesByType?.("navigation")?.[0] || {};
  vs = fresh(document.prerendering || nav.activationStart > 0 ? "prerender" : nav.type === "reload" ? "reload" : nav.type === "back_forward" ? "back-forward" : "navigate");
  vs.act = Math.max(nav.activationStart || 0, 0);
  if (document.visibilityState === "hidden") vs.hidden = 0;
  if (nav.responseStart > 0) go(() => report("TTFB", Math.max(nav.responseStart - vs.act, 0)));
  observe("paint", (e) => {
    if (e.name !== "first-contentful-paint") return;
    if (e.startTime < vs.hidden && vs.fcp == null) report("FCP", (vs.fcp = Math.max(e.startTime - vs.act, 0)));
    tti(QUIET);
  });
  observe("largest-contentful-paint", (e) => {
    if (!vs.lcpDone && e.startTime < vs.hidden) vs.lcp = [Math.max(e.startTime - vs.act, 0), describe(e.element)];
  });
  observe("layout-shift", (e) => {
    const cls = b.clsAdd(e.startTime, e.value, e.hadRecentInput);
    const target = describe(e.sources?.[0]?.node);
    if (cls > vs.cls && target) vs.clsTarget = target;
    vs.cls = cls;
  });
  const inp = (e) => {
    const target = describe(e.target);
    if (e.entryType === "first-input" && !vs.fid) {
      vs.fid = 1;
      report("FID", Math.max(e.processingStart - e.startTime, 0), target);
    }
    const id = e.interactionId;
    if (id >= 1) {
      b.inpAdd(id, e.duration);
      // The 10 longest interactions with their targets, for the attribution of whichever one
      // INP selects: the longest duration, and the first entry that names a target, as
      // web-vitals' attribution does (a pointer event may have none, the click has one).
      const x = vs.inp.find((x) => x[0] === id);
      if (x) {
        x[1] = Math.max(x[1], e.duration);
        x[2] ||= target;
      } else if (vs.inp.push([id, e.duration, target]) > 10) vs.inp.sort((p, q) => q[1] - p[1]).pop();
    }
  };
  observe("event", inp, { durationThreshold: 40 });
  observe("first-input", inp);
  // Long tasks push the TTI search back (and are events of their own when tracked).
  observe("longtask", (e) => {
    vs.lastLong = Math.max(vs.lastLong, e.startTime + e.duration - vs.act);
    if (cfg.longTasks) emit(3, "long_task", { durationMs: e.duration, startMs: e.startTime, at: epoch(e.startTime) });
  });
  on(window, "pageshow", (e) => e.persisted && go(() => restored(e.timeStamp)), true);
}

// TTI (an estimate, not a Google metric): the end of the last long task before the first 5 s
// window after FCP with no long task; FCP itself when there is none. Reported once.
function tti(wait) {
  setTimeout(
    () =>
      go(() => {
        if (vs.tti || vs.fcp == null) return;
        const since = Math.max(vs.fcp, vs.lastLong);
        const left = since + QUIET - (now() - vs.act);
        if (left > 0) return tti(Math.max(left, 50));
        vs.tti = 1;
        report("TTI", since);
      }),
    wait + 1,
  );
}

// The page is being hidden at `t`: LCP, CLS and INP are reported (CLS and INP again only if
// they changed since).
function hidden(t) {
  if (vs.hidden === Infinity) vs.hidden = t;
  reportLcp();
  const cls = vs.cls;
  if (cls !== vs.clsSent) report("CLS", (vs.clsSent = cls), vs.clsTarget);
  const inp = b.inpValue(performance.interactionCount || 0);
  if (inp >= 0 && inp !== vs.inpSent) report("INP", (vs.inpSent = inp), vs.inp.find((x) => x[1] === inp)?.[2]);
}

// A bfcache restore: new ids, CLS and INP from zero, FCP and LCP from the restore to the frame
// after next (as web-vitals measures them), TTFB 0.
function restored(t) {
  vs = fresh("back-forward-cache");
  vs.tti = 1;
  b.vitalsReset();
  report("TTFB", 0);
  requestAnimationFrame(() =>
    requestAnimationFrame(() =>
      go(() => {
        report("FCP", (vs.fcp = now() - t));
        vs.lcp = [vs.fcp, ""];
        reportLcp();
      }),
    ),
  );
}

// ---- Transport -------------------------------------------------------------------------------

// Events as objects (serialised at flush time, off the caller's path); batches waiting to go
// as [body, attempts], at most 10.
const queue = [];
const retry = [];
let retryAt = 0;
let inFlight = false;
let scheduled = false;

function clear() {
  dropped += queue.length;
  queue.length = 0;
}

const post = (body, keepalive) =>
  fetch(cfg.url, { method: "POST", body, keepalive, headers: { "Content-Type": "text/plain;charset=UTF-8" } });

function beacon(body) {
  try {
    return body.length <= 60e3 && navigator.sendBeacon(cfg.url, body);
  } catch (_) {
    return false;
  }
}

// Builds batches of what is queued (bodies of about 16 KiB, text/plain so there is no CORS
// preflight) and sends the oldest one. On page exit everything goes as beacons (fetch with
// keepalive for what the browser refuses).
function flush(exiting) {
  if (!cfg.consent || !view) return;
  repeats();
  if (queue.length) {
    const h = { v: b.wireVersion(), service: cfg.service, env: cfg.env, session, view, sentAt: epoch(now()) };
    if (cfg.version) h.version = cfg.version;
    const head = JSON.stringify(h).slice(0, -1) + ',"events":[';
    let list = [];
    let bytes = 0;
    for (const e of queue.splice(0)) {
      let text;
      try {
        text = JSON.stringify(e);
      } catch (_) {}
      // An event that cannot be serialised (a cycle from beforeSend, say) is dropped.
      if (!str(text)) {
        failures++;
        continue;
      }
      if (bytes && bytes + text.length > 16384) {
        retry.push([head + list + "]}", 0]);
        list = [];
        bytes = 0;
      }
      bytes += text.length + 1;
      list.push(text);
    }
    if (list.length) retry.push([head + list + "]}", 0]);
  }
  while (retry.length > 10) {
    retry.shift();
    dropped++;
  }
  if (exiting) {
    for (const [body] of retry.splice(0)) beacon(body) || post(body, true).catch(() => {});
    return;
  }
  if (inFlight || now() < retryAt || !retry.length) return;
  const [body, attempts] = retry.shift();
  inFlight = true;
  post(body, body.length <= 60e3).then(
    (r) => {
      inFlight = false;
      const s = r.status;
      if (s >= 200 && s < 300) {
        retryAt = 0;
        if (retry.length) go(flush);
      } else if (s === 408 || s === 429 || s >= 500) again(body, attempts, s, r.headers.get("Retry-After"));
      // Other 4xx: the batch is wrong and sending it again will not help.
      else dropped++;
    },
    () => {
      inFlight = false;
      again(body, attempts);
    },
  );
}

// A failed batch waits: 1 s doubling to 60 s, 60 s after a bare 429 (as Sentry), or the
// server's Retry-After in seconds (at most 10 minutes).
function again(body, attempts, status, after) {
  failures++;
  let wait = status === 429 ? 60e3 : Math.min(60e3, 1000 * 2 ** Math.min(attempts, 6));
  if (parseFloat(after) >= 0) wait = Math.min(parseFloat(after), 600) * 1000;
  retry.unshift([body, attempts + 1]);
  retryAt = now() + wait;
  setTimeout(() => go(flush), wait + 1);
}

// ---- The API ---------------------------------------------------------------------------------

/** Starts the SDK (see index.d.ts for the options). A second call is ignored; during server-side rendering it does nothing. */
export function init(options) {
  if (!browser() || cfg) return;
  cfg = config(options || {});
  load();
  // A prerendered page starts when the user opens it, as web-vitals' metrics do: until then
  // nobody has seen it, and activationStart is not known.
  if (document.prerendering) on(document, "prerenderingchange", start, true);
  else start();
}

function start() {
  resumeSession(epoch(now()));
  startVitals();
  const d = document;
  on(d, "click", (e) => go(() => (click(e), reportLcp())), true);
  on(d, "keydown", () => go(reportLcp), true);
  for (const type in BUSINESS) on(d, type, (e) => go(() => business(e)));
  on(window, "error", (e) => {
    // Resource load errors (an <img> 404) reach the window in the capture phase with no error
    // or message: they are not script errors.
    if (e.error !== undefined || str(e.message)) go(() => capture(e.error ?? { message: e.message }, "error"));
  }, true);
  on(window, "unhandledrejection", (e) => go(() => capture(e.reason, "unhandledrejection")), true);
  // console.error becomes a breadcrumb (and still goes to the console).
  const ce = console.error;
  if (typeof ce === "function")
    console.error = function (...args) {
      run(() => crumb("console.error", args.slice(0, 2).map(String).join(" ")));
      return ce.apply(this, args);
    };
  for (const m of ["pushState", "replaceState"]) {
    const orig = history[m];
    if (typeof orig === "function")
      history[m] = function (...args) {
        const r = orig.apply(this, args);
        go(route);
        return r;
      };
  }
  on(window, "popstate", () => go(route));
  if (cfg.resources)
    observe("resource", (e) => {
      const url = e.name;
      if (cfg.base && url.includes(cfg.base)) return;
      const kind = b.resource(e.initiatorType, url, e.transferSize || 0);
      const over = kind.endsWith("!");
      const ev = { url: scrub(url), kind: kind.replace("!", ""), transferBytes: Math.max(e.transferSize || 0, 0), durationMs: Math.max(e.duration, 0), at: epoch(e.startTime) };
      if (over) ev.overBudget = ev.kind;
      emit(3, "resource", ev);
    });
  // The page going away: vitals, then everything queued, as beacons.
  const exit = (e) => go(() => (hidden(e.timeStamp), flush(true)));
  on(d, "visibilitychange", (e) => d.visibilityState === "hidden" && exit(e), true);
  on(window, "pagehide", exit, true);
  setInterval(() => go(flush), cfg.flushMs);
  go(() => {
    b.setBudgets(...cfg.budgets);
    newView();
  });
  drain();
}

const api =
  (f) =>
  (...args) => {
    if (browser()) go(() => f(...args));
  };

/** Records a business event: `track("quote_sent", { amount: 450 })`. */
export function track(name, properties) {
  if (!browser() || !str(name)) return;
  const at = Date.now();
  go(() => {
    const ev = { name, at };
    const p = plain(properties);
    if (p) ev.props = p;
    emit(3, "business", ev);
  });
}

/** Records a step of a user journey: `trackJourney("work-order", "details-entered", meta)`. */
export const trackJourney = api((journeyType, step, meta) => {
  if (str(journeyType) && str(step)) emit(3, "journey", { journeyType, step, meta: plain(meta) });
});

/** Records a conversion with its value: `trackConversion("invoice-paid", 450, meta)`. */
export const trackConversion = api((conversionType, value, meta) => {
  if (str(conversionType) && Number.isFinite(value)) emit(3, "conversion", { conversionType, value, meta: plain(meta) });
});

/** Records a timing: ms since the page started, or a duration of your own. */
export const addTiming = api((name, ms) => {
  if (str(name)) emit(3, "timing", { name, durationMs: ms >= 0 && ms < Infinity ? ms : now() });
});

/** Reports an error (a React error boundary's, say) with optional context tags. */
export const captureException = api((error, context) => capture(error, "captured", context));

/** Reports a business error; its fingerprint is the spec's [process, step, code]. */
export const trackBusinessError = api((error, context) => {
  const part = (k) => (str(context?.[k]) ? context[k] : "unknown");
  capture(error, "business", context, [part("process"), part("step"), part("code")]);
});

/** Grants (true) or withdraws (false) consent: nothing is sent before it is granted, and what was queued meanwhile goes then. */
export const setConsent = api((granted) => {
  cfg.consent = !!granted;
  if (granted) flush();
  else clear();
});

/** Sends what is queued now. */
const flushNow = api(() => flush());
export { flushNow as flush };

/** Resolves to true once the wasm half runs (false when it could not load). */
export function ready() {
  return browser() && cfg ? load() : Promise.resolve(false);
}

/** The SDK's own counters. */
export function diagnostics() {
  return { queued: queue.length, retrying: retry.length, failures, dropped, waiting: later.length, sessionId: session?.id, sampled: session?.sampled };
}
