// @thorbis/obs, the browser SDK of thorbis-obs. This file is its JS half: the browser plumbing
// (observers, listeners, session, batching, sending). The wasm half (../src/lib.rs) is core's
// shared logic, the same code the agent runs: CLS windows, INP selection, ratings, budgets, the
// noise filter, business context and URL scrubbing. Why the split: see the crate's docs.
//
// Rules this file keeps: importing it touches neither window nor document (server-side
// rendering imports it too); nothing throws into the page (every callback runs through
// `whenReady`, which catches and counts); init registers every observer and listener at once, and
// the work that needs the wasm waits in `later` until it has loaded.

// The wasm half (the wasm-bindgen module), once loaded; its loading promise; the options.
let wasm = null;
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
const epoch = (perfTime) => Math.round((origin ??= performance.timeOrigin) + perfTime);
const randomId = () => (crypto.randomUUID ? crypto.randomUUID() : "r" + Math.random().toString(36).slice(2));
const isString = (value) => typeof value === "string";
const listen = (target, type, listener, capture) => target.addEventListener(type, listener, { capture, passive: true });

// Runs `task`, counting what it throws instead of throwing it into the page.
function run(task) {
  try {
    task();
  } catch (_) {
    failures++;
  }
}

// Runs `task` now if the wasm is ready and the SDK has started, else once both are.
function whenReady(task) {
  if (wasm && vitals) run(task);
  else if (later.length < 1000) later.push(task);
  else dropped++;
}

function drain() {
  if (wasm && vitals) later.splice(0).forEach(run);
}

function load() {
  loading ||= import("./pkg/thorbis_obs_wasm.js")
    .then(async (loaded) => {
      // The plain-browser build (wasm-bindgen --target web) is instantiated by its default
      // export; the bundler build is ready on import.
      if (typeof loaded.default === "function") await loaded.default();
      wasm = loaded;
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

function config(options) {
  // A string option (`fallback` when absent or empty) and a boolean one (on unless false).
  const text = (key, fallback) => (isString(options[key]) && options[key]) || fallback;
  const flag = (key) => options[key] !== false;
  let url = text("endpoint", "/v1/rum");
  if (text("clientToken")) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(options.clientToken);
  const rate = options.sessionSampleRate;
  const budgets = options.budgets || {};
  return {
    url,
    // The collector's own requests are not page resources.
    base: url.split("?")[0],
    service: text("service", "browser"),
    env: text("env", "production"),
    version: text("version"),
    rate: Number.isFinite(rate) ? Math.min(100, Math.max(0, rate)) : 100,
    clicks: flag("trackInteractions"),
    resources: flag("trackResources"),
    longTasks: flag("trackLongTasks"),
    privacy: options.privacy,
    scrubbers: Array.isArray(options.scrubbers) ? options.scrubbers.filter((pattern) => pattern instanceof RegExp) : [],
    beforeSend: typeof options.beforeSend === "function" ? options.beforeSend : null,
    budgets: [budgets.javascript, budgets.css, budgets.images, budgets.fonts].map(Number),
    flushMs: options.flushIntervalMs >= 100 ? options.flushIntervalMs : 10000,
    consent: options.consent !== "pending",
    // Where traced requests may carry `traceparent`: the page's own origin, and URLs starting
    // with one of these strings or matching one of these RegExps.
    targets: Array.isArray(options.tracePropagationTargets) ? options.tracePropagationTargets : [],
    tracing: flag("tracing"),
    // The replay options (replay.js reads them).
    o: options,
  };
}

// The replay recorder (replay.js), loaded only for a session sampled for replay, and only once
// consent is there: `replayMode` is what the page was sampled for ("session", "buffer") or
// asked for (startReplay), kept while consent is pending or withdrawn.
let replaying;
let replayMode = "";
const replay = () =>
  cfg.consent && replayMode ? (replaying ||= import("./replay.js").then((m) => m.start(replayMode, cfg, () => session.id))) : undefined;
// Stops the recorder: what a recording session holds is sent, or dropped when `send` is false.
const endReplay = (send) => {
  const recorder = replaying;
  replaying = undefined;
  recorder?.then((r) => r.stop(send));
};

// The page's scrubbers after the built-in URL scrubbing (emails, secret query parameters).
const scrub = (text) => cfg.scrubbers.reduce((scrubbed, pattern) => scrubbed.replace(pattern, "[redacted]"), wasm.scrubUrl(text));

// `text` cut to at most `maxBytes` UTF-8 bytes, never inside a surrogate pair.
const utf8 = new TextEncoder();
function cut(text, maxBytes) {
  text = text.slice(0, maxBytes);
  while (utf8.encode(text).length > maxBytes) text = text.slice(0, (text.length * 0.9) | 0);
  return /[\ud800-\udbff]$/.test(text) ? text.slice(0, -1) : text;
}

// ---- Session and view ------------------------------------------------------------------------

const SESSION_KEY = "_thorbis_obs_s";
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
    localStorage.setItem(SESSION_KEY, [session.id, session.startedAt, at, +session.sampled].join("|"));
  } catch (_) {
    // Storage off (private mode, quota): the session lives as long as the page.
  }
}

function startSession(at) {
  session = { id: randomId(), sampled: Math.random() * 100 < cfg.rate, startedAt: at, sampleRate: cfg.rate };
  save(at);
}

function resumeSession(at) {
  let saved = [];
  try {
    saved = (localStorage.getItem(SESSION_KEY) || "").split("|");
  } catch (_) {}
  const [id, startedAt, lastActivity, sampled] = saved;
  if (id && at - lastActivity < IDLE && at - startedAt < LONGEST) {
    session = { id, sampled: sampled === "1", startedAt: +startedAt, sampleRate: cfg.rate };
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
// When the last client-side navigation happened (performance time), the handler of resource
// entries, and the function that takes the entries the browser has not delivered yet.
let routedAt = 0;
let resourceEntry = () => {};
let takeResources = () => [];

// Where the page is now, read when it happens: the work that uses it may wait for the wasm.
const here = () => [location.href, location.pathname];

function newView([href, path], previous) {
  const next = { id: randomId(), url: scrub(href), route: scrub(path) };
  const referrer = previous ? previous.url : document.referrer && scrub(document.referrer);
  if (referrer) next.referrer = referrer;
  view = next;
}

// A client-side navigation (history.pushState, replaceState, popstate): where to and when, read
// now, handled once the SDK is ready.
function navigated() {
  const to = here();
  const at = now();
  whenReady(() => route(to, at));
}

// An SPA route change at `at`: the old view's batch goes first, then a new view.
function route(to, at) {
  if (scrub(to[0]) === view.url) return;
  // Resources count against the page they started on, even when the browser has not delivered
  // their entries yet: the old page's first, then the budgets start again for the new one.
  const taken = takeResources();
  const handle = (before) => taken.forEach((entry) => (entry.startTime < at) === before && run(() => resourceEntry(entry)));
  handle(true);
  flush();
  newView(to, view);
  wasm.resetBudgets();
  routedAt = at;
  handle(false);
  crumb("navigation", view.url, at);
  emit(BUCKET_OTHER, "timing", { name: "route_change", durationMs: at }, at);
}

// ---- Events ----------------------------------------------------------------------------------

// The bucket an event is emitted in. Each bucket has its own limit, 3,000 a minute (Datadog's
// per-kind limits), and errors are the one bucket an unsampled session still sends. The numbers
// only index the arrays below: they are not on the wire.
const BUCKET_VITAL = 0;
const BUCKET_ERROR = 1;
const BUCKET_ACTION = 2;
const BUCKET_OTHER = 3;
// Per bucket: when its current minute started (epoch ms), and how many events it has had since.
const minuteStart = [0, 0, 0, 0];
const inMinute = [0, 0, 0, 0];

// Stamps, samples, limits, runs beforeSend on and queues one event (`perfTime`: when it
// happened, on the performance clock; now if not given). Unsampled sessions still send errors.
function emit(bucket, type, ev, perfTime) {
  ev.type = type;
  // Date.now() where the event has no time of its own: performance.now() costs about half a
  // microsecond in Chromium, a third of a track() call.
  const at = (ev.at ??= perfTime === undefined ? Date.now() : epoch(perfTime));
  touch(at);
  if (!session.sampled && bucket !== BUCKET_ERROR) return;
  if (at - minuteStart[bucket] > 60e3) {
    minuteStart[bucket] = at;
    inMinute[bucket] = 0;
  }
  if (inMinute[bucket]++ >= 3000) return void dropped++;
  if (cfg.beforeSend) {
    let edited = ev;
    try {
      edited = cfg.beforeSend(ev);
    } catch (_) {
      failures++;
    }
    // Returning nothing keeps the event (edited in place, or not); a non-object drops it.
    if (edited !== undefined) {
      if (!edited || typeof edited !== "object") return void dropped++;
      ev = edited;
    }
  }
  // A full queue (no consent yet, or offline) keeps what came first: the page-load vitals are
  // worth more than the 501st click.
  if (queue.length >= 500) return void dropped++;
  queue.push(ev);
  // A full batch goes out from a task of its own, not inside the caller's track().
  if (queue.length >= 50 && !scheduled) {
    scheduled = true;
    setTimeout(() => whenReady(flush));
  }
}

// Copies up to 32 plain properties (string, boolean, finite number; names as the wire allows).
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,199}$/;
function plain(src) {
  let copied = 0;
  let out;
  if (src && typeof src === "object") {
    for (const key of Object.keys(src)) {
      const value = src[key];
      const type = typeof value;
      if (copied < 32 && NAME.test(key) && (type === "string" || type === "boolean" || (type === "number" && isFinite(value)))) {
        (out ||= {})[key] = value;
        copied++;
      }
    }
  }
  return out;
}

// The spec's DOM events: event -> "businessEvent detailField property detailField property ...".
const BUSINESS = {
  "work-order-created": "work_order_created id workOrderId industry industry priority priority estimatedValue estimatedValue",
  "work-order-completed":
    "work_order_completed id workOrderId duration duration actualValue actualValue satisfaction customerSatisfaction",
  "invoice-generated": "invoice_generated id invoiceId amount amount industry industry paymentTerms paymentTerms",
  "payment-processed": "payment_processed id paymentId amount amount method method processingTime processingTime status status",
};

function business(e) {
  const [name, ...map] = BUSINESS[e.type].split(" ");
  const src = {};
  for (let i = 0; i < map.length; i += 2) src[map[i + 1]] = e.detail?.[map[i]];
  emit(BUCKET_OTHER, "business", { name, props: plain(src) || {} }, e.timeStamp);
}

// A CSS-ish description of an element: `tag#id.class1.class2`.
function describe(el) {
  if (!(el instanceof Element)) return "";
  let selector = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
  for (const className of (el.getAttribute("class") || "").split(/\s+/).filter(Boolean).slice(0, 2)) selector += "." + className;
  return selector;
}

// The action name of an element, from its accessible text; never an input's value.
function actionName(el) {
  const attr = (attribute) => (el.getAttribute(attribute) || "").trim();
  const form = /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName);
  const text = attr("aria-label") || (form ? attr("placeholder") || attr("name") : el.innerText || "") || attr("title") || attr("alt");
  const name = text.split(/\s+/).filter(Boolean).join(" ").slice(0, 100);
  return cfg.privacy === "mask" && name ? "Masked" : name;
}

function click(e) {
  let el = e.target;
  if (!(el instanceof Element)) return;
  // The nearest interactive ancestor names the action, as a screen reader would.
  el = el.closest("button,a,[role=button],input,select,textarea,label,summary") || el;
  const target = describe(el);
  crumb("ui.click", target, e.timeStamp);
  if (cfg.clicks) emit(BUCKET_ACTION, "action", { name: actionName(el) || target, actionType: "click", target }, e.timeStamp);
}

// ---- Errors ----------------------------------------------------------------------------------

// The last 100 breadcrumbs (clicks, navigations, console errors), oldest first.
const crumbs = [];
function crumb(category, message, perfTime = now()) {
  crumbs.push({ at: epoch(perfTime), category, message: cut(message, 300) });
  if (crumbs.length > 100) crumbs.shift();
}

// Errors sent in the last minute, by fingerprint: [sent at, event, repeats since], indexed by the
// names below. A repeat is counted, not sent; the counts go out with the next flush as one event
// each.
const recent = new Map();
const SENT_AT = 0;
const SENT_EVENT = 1;
const REPEATS = 2;

// The caller's context that becomes tags of an error, as pairs `contextKey tagName`: context
// `process` is tag `businessProcess`, `step` is `workflowStep`, `code` is `errorCode`, the rest
// keep their names. One string split once, as BUSINESS's: smaller than an object literal.
const CONTEXT_TAGS = "process businessProcess step workflowStep code errorCode industry industry userRole userRole businessId businessId component component errorBoundary errorBoundary componentStack componentStack".split(" ");

// TC39's source map debug ids: a bundler that writes them (Turbopack with `turbopack.debugIds`)
// records `globalThis._debugIds[new Error().stack] = id` as each chunk runs. The ids of the
// scripts this stack names (8 at most) let the agent find their maps whatever the release says.
function debugIds(stack) {
  const all = globalThis._debugIds;
  let out, n = 0;
  for (const key in all) {
    const url = /(https?:\/\/[^\s()]+?):\d+:\d+/.exec(key)?.[1];
    if (url && n < 8 && stack.includes(url)) (out ||= {})[url] = all[key], n++;
  }
  return out;
}

function capture(err, kind, context, fingerprint) {
  let name = "Error";
  let message = "";
  let stack;
  if (err && typeof err === "object") {
    if (isString(err.name)) name = err.name;
    if (isString(err.message)) message = err.message;
    if (isString(err.stack)) stack = err.stack;
  } else message = String(err);
  if (wasm.isNoise(message, stack)) return;
  // The dedup key: the same error thrown from the same place.
  const firstFrame = stack && stack.split("\n").find((line) => line.trim().startsWith("at ") || line.includes("@"));
  const key = [fingerprint ? fingerprint.join("\x1f") : name + "\x1f" + message, firstFrame].join("\x1f");
  const seen = recent.get(key);
  if (seen && now() - seen[SENT_AT] < 60e3) return void seen[REPEATS]++;
  // Tags: the business context of the page, the page's tags and user, then the caller's context.
  const [businessProcess, industry] = wasm.businessContext(location.pathname).split("|");
  const tags = { businessProcess, industry, ...pageTags, ...user };
  for (let i = 0; i < CONTEXT_TAGS.length; i += 2) {
    const contextKey = CONTEXT_TAGS[i];
    if (isString(context?.[contextKey])) tags[CONTEXT_TAGS[i + 1]] = context[contextKey];
  }
  const ev = { kind, message: cut(scrub(message ? name + ": " + message : name), 2000), tags, count: 1 };
  if (stack) (ev.stack = cut(stack, 16000)), (ev.debugIds = debugIds(stack));
  if (fingerprint) ev.fingerprint = fingerprint;
  if (crumbs.length) ev.breadcrumbs = crumbs.slice();
  if (active) ev.traceId = active.traceId;
  if (recent.size >= 50) recent.delete(recent.keys().next().value);
  recent.set(key, [now(), ev, 0]);
  emit(BUCKET_ERROR, "error", { ...ev });
  replaying?.then((r) => r.error());
}

// The user (`setUser`) and the page's tags (`setTag`, at most 32) that every error carries.
let user = {};
const pageTags = {};

// Repeats counted since the last flush go out as their error with `count` set.
function repeats() {
  for (const [key, sent] of recent) {
    if (sent[REPEATS]) emit(BUCKET_ERROR, "error", { ...sent[SENT_EVENT], count: sent[REPEATS], at: undefined });
    sent[REPEATS] = 0;
    if (now() - sent[SENT_AT] >= 60e3) recent.delete(key);
  }
}

// ---- Web vitals --------------------------------------------------------------------------------

const RATINGS = ["good", "needs-improvement", "poor"];
// Quiet time after FCP that ends the TTI search.
const QUIET = 5000;
// What is measured on this page (or since the last bfcache restore); `lcp` is [value, target].
let vitals = null;
const fresh = (nav) => ({ nav, ids: {}, act: 0, hidden: Infinity, lcp: null, lcpDone: 0, fcp: null, cls: 0, clsTarget: "", clsSent: -1, inp: [], inpSent: -1, fid: 0, lastLong: 0, tti: 0 });

function report(name, value, target) {
  if (!(value >= 0 && value < Infinity)) return;
  const ev = { name, value, rating: RATINGS[wasm.rateVital(name, value)], id: (vitals.ids[name] ||= randomId()), navigationType: vitals.nav };
  if (target) ev.target = target;
  emit(BUCKET_VITAL, "vital", ev);
}

function reportLcp() {
  if (!vitals.lcpDone && vitals.lcp) {
    vitals.lcpDone = 1;
    report("LCP", ...vitals.lcp);
  }
}

// Observes `type` with buffered entries; each entry goes to `handle` once the wasm is ready.
// Returns a function that takes the entries the browser has queued but not yet delivered
// (their callback comes as a later task).
function observe(type, handle, extra) {
  const deliver = (entries) => whenReady(() => entries.forEach((entry) => run(() => handle(entry))));
  try {
    const observer = new PerformanceObserver((list) => deliver(list.getEntries()));
    observer.observe({ type, buffered: true, ...extra });
    return () => observer.takeRecords();
  } catch (_) {
    // An entry type this browser does not have.
    return () => [];
  }
}

// web-vitals' semantics: values from `activationStart` (prerendered pages), entries after the
// page was first hidden ignored, LCP final at the first input, CLS and INP reported on hide.
function startVitals() {
  const nav = performance.getEntriesByType?.("navigation")?.[0] || {};
  vitals = fresh(document.prerendering || nav.activationStart > 0 ? "prerender" : nav.type === "reload" ? "reload" : nav.type === "back_forward" ? "back-forward" : "navigate");
  vitals.act = Math.max(nav.activationStart || 0, 0);
  if (document.visibilityState === "hidden") vitals.hidden = 0;
  if (nav.responseStart > 0) whenReady(() => report("TTFB", Math.max(nav.responseStart - vitals.act, 0)));
  observe("paint", (entry) => {
    if (entry.name !== "first-contentful-paint") return;
    if (entry.startTime < vitals.hidden && vitals.fcp == null) report("FCP", (vitals.fcp = Math.max(entry.startTime - vitals.act, 0)));
    tti(QUIET);
  });
  observe("largest-contentful-paint", (entry) => {
    if (!vitals.lcpDone && entry.startTime < vitals.hidden) vitals.lcp = [Math.max(entry.startTime - vitals.act, 0), describe(entry.element)];
  });
  observe("layout-shift", (entry) => {
    const cls = wasm.clsAdd(entry.startTime, entry.value, entry.hadRecentInput);
    const target = describe(entry.sources?.[0]?.node);
    if (cls > vitals.cls && target) vitals.clsTarget = target;
    vitals.cls = cls;
  });
  const interaction = (entry) => {
    const target = describe(entry.target);
    if (entry.entryType === "first-input" && !vitals.fid) {
      vitals.fid = 1;
      report("FID", Math.max(entry.processingStart - entry.startTime, 0), target);
    }
    const id = entry.interactionId;
    if (id >= 1) {
      wasm.inpAdd(id, entry.duration);
      // The 10 longest interactions with their targets ([interactionId, duration, target]), for
      // the attribution of whichever one INP selects: the longest duration, and the first entry
      // that names a target, as web-vitals' attribution does (a pointer event may have none, the
      // click has one).
      const known = vitals.inp.find((longest) => longest[0] === id);
      if (known) {
        known[1] = Math.max(known[1], entry.duration);
        known[2] ||= target;
      } else if (vitals.inp.push([id, entry.duration, target]) > 10) vitals.inp.sort((one, other) => other[1] - one[1]).pop();
    }
  };
  observe("event", interaction, { durationThreshold: 40 });
  observe("first-input", interaction);
  // Long tasks push the TTI search back (and are events of their own when tracked).
  observe("longtask", (entry) => {
    vitals.lastLong = Math.max(vitals.lastLong, entry.startTime + entry.duration - vitals.act);
    if (cfg.longTasks) emit(BUCKET_OTHER, "long_task", { durationMs: entry.duration, startMs: entry.startTime, at: epoch(entry.startTime) });
  });
  listen(window, "pageshow", (e) => e.persisted && whenReady(() => restored(e.timeStamp)), true);
}

// TTI (an estimate, not a Google metric): the end of the last long task before the first 5 s
// window after FCP with no long task; FCP itself when there is none. Reported once.
function tti(wait) {
  setTimeout(
    () =>
      whenReady(() => {
        if (vitals.tti || vitals.fcp == null) return;
        const since = Math.max(vitals.fcp, vitals.lastLong);
        const left = since + QUIET - (now() - vitals.act);
        if (left > 0) return tti(Math.max(left, 50));
        vitals.tti = 1;
        report("TTI", since);
      }),
    wait + 1,
  );
}

// The page is being hidden at `perfTime`: LCP, CLS and INP are reported (CLS and INP again only
// if they changed since).
function hidden(perfTime) {
  if (vitals.hidden === Infinity) vitals.hidden = perfTime;
  reportLcp();
  const cls = vitals.cls;
  if (cls !== vitals.clsSent) report("CLS", (vitals.clsSent = cls), vitals.clsTarget);
  const inp = wasm.inpValue(performance.interactionCount || 0);
  if (inp >= 0 && inp !== vitals.inpSent) report("INP", (vitals.inpSent = inp), vitals.inp.find((longest) => longest[1] === inp)?.[2]);
}

// A bfcache restore: new ids, CLS and INP from zero, FCP and LCP from the restore to the frame
// after next (as web-vitals measures them), TTFB 0.
function restored(perfTime) {
  vitals = fresh("back-forward-cache");
  vitals.tti = 1;
  wasm.vitalsReset();
  report("TTFB", 0);
  requestAnimationFrame(() =>
    requestAnimationFrame(() =>
      whenReady(() => {
        report("FCP", (vitals.fcp = now() - perfTime));
        vitals.lcp = [vitals.fcp, ""];
        reportLcp();
      }),
    ),
  );
}

// ---- Tracing ---------------------------------------------------------------------------------

// W3C trace context: fetch and XMLHttpRequest calls to the page's origin (and to the
// `tracePropagationTargets`) carry `traceparent`, sampled when the session is; each becomes a
// span event (op `http.client`) that the collector hands to the trace store. `startSpan` times
// the host app's own work; requests made while it runs are its children.

// The span running now (the latest startSpan not ended), the page's own fetch, the flush a
// traced request schedules.
let active = null;
let nativeFetch = null;
let soon = 0;

// `bytes` random bytes as lowercase hex, never all zeros (an invalid W3C id).
function newId(bytes) {
  let id = "";
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) id += (b | 256).toString(16).slice(1);
  return /[^0]/.test(id) ? id : newId(bytes);
}

// Names go out without control characters (the collector refuses a batch that has them).
const clean = (text, max) => cut(String(text).replace(/[\0-\x1f\x7f-\x9f]/g, " "), max) || "span";

// A span is its wire event in the making; `at` holds its start on the performance clock
// until it ends.
const openSpan = (name, op, parent) => ({ traceId: parent ? parent.traceId : newId(16), spanId: newId(8), parentSpanId: parent?.spanId, name: clean(name, 200), op: clean(op, 200), at: now(), attrs: {} });

// Sends an ended span; a traced request's goes out within a second, so the trace store has
// the browser's part before it decides the trace.
function closeSpan(span, status, statusCode) {
  const end = now();
  whenReady(() => {
    const at = Math.floor((origin ??= performance.timeOrigin) + span.at);
    span.durationMs = Math.min(Math.max(origin + end - at, 0), 3.6e6);
    span.at = at;
    if (span.url) span.url = scrub(span.url);
    span.status = status;
    span.statusCode = statusCode;
    emit(BUCKET_OTHER, "span", span);
    soon ||= setTimeout(() => whenReady(() => ((soon = 0), flush())), 1000);
  });
}

// Starts the span of a request to `url` when it may carry `traceparent`; returns
// [span, the header's value].
function outgoing(url, method) {
  if (!session || !cfg.tracing) return;
  const u = new URL(url, location.href);
  const href = u.href;
  // Not the collector's URL, nor wasm (the SDK's own half loads through fetch).
  if (href.includes(cfg.base) || u.pathname.endsWith(".wasm") || !(u.origin === location.origin || cfg.targets.some((t) => (isString(t) ? href.startsWith(t) : t instanceof RegExp && t.test(href))))) return;
  method = clean(method || "GET", 20).toUpperCase();
  const span = openSpan(method + " " + u.pathname, "http.client", active);
  span.method = method;
  span.url = href;
  return [span, "00-" + span.traceId + "-" + span.spanId + (session.sampled ? "-01" : "-00")];
}

// A traced request answered `code` (0: no answer).
const answered = (traced, code) => closeSpan(traced[0], code > 0 && code < 500 ? "ok" : "error", code);

function traceRequests() {
  nativeFetch = window.fetch;
  if (typeof nativeFetch === "function")
    window.fetch = function (input, init) {
      let traced;
      run(() => {
        const request = input instanceof Request && input;
        if ((traced = outgoing(request ? request.url : input, init?.method || request?.method))) {
          const headers = new Headers(init?.headers || request?.headers);
          headers.set("traceparent", traced[1]);
          init = { ...init, headers };
        }
      });
      const answer = nativeFetch.call(this, input, init);
      if (traced)
        answer.then(
          (response) => answered(traced, response.status),
          () => answered(traced, 0),
        );
      return answer;
    };
  const proto = window.XMLHttpRequest?.prototype;
  if (!proto) return;
  const opened = new WeakMap();
  const { open, send } = proto;
  proto.open = function (method, url) {
    opened.set(this, [url, method]);
    return open.apply(this, arguments);
  };
  proto.send = function () {
    run(() => {
      const traced = opened.has(this) && outgoing(...opened.get(this));
      if (traced) {
        this.setRequestHeader("traceparent", traced[1]);
        this.addEventListener("loadend", () => answered(traced, this.status));
      }
    });
    return send.apply(this, arguments);
  };
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
  (nativeFetch || fetch)(cfg.url, { method: "POST", body, keepalive, headers: { "Content-Type": "text/plain;charset=UTF-8" } });

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
    const header = { v: wasm.wireVersion(), service: cfg.service, env: cfg.env, session, view, sentAt: epoch(now()) };
    if (cfg.version) header.version = cfg.version;
    const head = JSON.stringify(header).slice(0, -1) + ',"events":[';
    let list = [];
    let bytes = 0;
    for (const ev of queue.splice(0)) {
      let text;
      try {
        text = JSON.stringify(ev);
      } catch (_) {}
      // An event that cannot be serialised (a cycle from beforeSend, say) is dropped.
      if (!isString(text)) {
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
    (response) => {
      inFlight = false;
      const status = response.status;
      if (status >= 200 && status < 300) {
        retryAt = 0;
        if (retry.length) whenReady(flush);
      } else if (status === 408 || status === 429 || status >= 500) again(body, attempts, status, response.headers.get("Retry-After"));
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
  setTimeout(() => whenReady(flush), wait + 1);
}

// ---- The API ---------------------------------------------------------------------------------

/** Starts the SDK (see index.d.ts for the options). A second call is ignored; during server-side rendering it does nothing. */
export function init(options) {
  if (!browser() || cfg) return;
  cfg = config(options || {});
  load();
  // A prerendered page starts when the user opens it, as web-vitals' metrics do: until then
  // nobody has seen it, and activationStart is not known.
  if (document.prerendering) listen(document, "prerenderingchange", start, true);
  else start();
}

function start() {
  resumeSession(epoch(now()));
  startVitals();
  const doc = document;
  listen(doc, "click", (e) => whenReady(() => (click(e), reportLcp())), true);
  listen(doc, "keydown", () => whenReady(reportLcp), true);
  for (const type in BUSINESS) listen(doc, type, (e) => whenReady(() => business(e)));
  listen(window, "error", (e) => {
    // Resource load errors (an <img> 404) reach the window in the capture phase with no error
    // or message: they are not script errors.
    if (e.error !== undefined || isString(e.message)) whenReady(() => capture(e.error ?? { message: e.message }, "error"));
  }, true);
  listen(window, "unhandledrejection", (e) => whenReady(() => capture(e.reason, "unhandledrejection")), true);
  // console.error becomes a breadcrumb (and still goes to the console).
  const consoleError = console.error;
  if (typeof consoleError === "function")
    console.error = function (...args) {
      run(() => crumb("console.error", args.slice(0, 2).map(String).join(" ")));
      return consoleError.apply(this, args);
    };
  for (const method of ["pushState", "replaceState"]) {
    const original = history[method];
    if (typeof original === "function")
      history[method] = function (...args) {
        const result = original.apply(this, args);
        navigated();
        return result;
      };
  }
  listen(window, "popstate", navigated);
  traceRequests();
  // Replay: a share of sessions recorded throughout, a share of the others on an error.
  replayMode = Math.random() < cfg.o.replaysSessionSampleRate ? "session" : Math.random() < cfg.o.replaysOnErrorSampleRate ? "buffer" : "";
  replay();
  if (cfg.resources) {
    resourceEntry = (entry) => {
      const url = entry.name;
      if (cfg.base && url.includes(cfg.base)) return;
      // The resource's kind, with "!" after it when the page is over that kind's budget and
      // "?" when past its warning level. A resource counts against the page it started on: one
      // started before the last client-side navigation is not counted against the new page.
      const current = entry.startTime >= routedAt;
      const kind = wasm.resource(entry.initiatorType, url, current ? entry.transferSize || 0 : 0);
      const mark = current ? kind.slice(-1) : "";
      const ev = { url: scrub(url), kind: kind.replace(/[!?]$/, ""), transferBytes: Math.max(entry.transferSize || 0, 0), durationMs: Math.max(entry.duration, 0), at: epoch(entry.startTime) };
      if (mark === "!") ev.overBudget = ev.kind;
      if (mark === "?") ev.nearBudget = ev.kind;
      if (entry.responseStatus > 0) ev.status = entry.responseStatus;
      emit(BUCKET_OTHER, "resource", ev);
    };
    takeResources = observe("resource", resourceEntry);
  }
  // The navigation's load, once its load handlers have run (loadEventEnd is set after them).
  const loaded = () =>
    setTimeout(() => {
      const nav = performance.getEntriesByType?.("navigation")[0];
      if (nav && nav.loadEventEnd > 0) whenReady(() => emit(BUCKET_OTHER, "timing", { name: "page_load_complete", durationMs: nav.loadEventEnd }));
    });
  if (doc.readyState === "complete") loaded();
  else listen(window, "load", loaded);
  // The page going away: vitals, then everything queued, as beacons.
  const exit = (e) => whenReady(() => (hidden(e.timeStamp), flush(true)));
  listen(doc, "visibilitychange", (e) => doc.visibilityState === "hidden" && exit(e), true);
  listen(window, "pagehide", exit, true);
  setInterval(() => whenReady(flush), cfg.flushMs);
  const first = here();
  whenReady(() => {
    wasm.setBudgets(...cfg.budgets);
    newView(first);
  });
  drain();
}

// An API function: `call` with its arguments once the SDK runs, and nothing on the server.
const api =
  (call) =>
  (...args) => {
    if (browser()) whenReady(() => call(...args));
  };

/** Records a business event: `track("quote_sent", { amount: 450 })`. */
export function track(name, properties) {
  if (!browser() || !isString(name)) return;
  const at = Date.now();
  whenReady(() => {
    const ev = { name, at };
    const props = plain(properties);
    if (props) ev.props = props;
    emit(BUCKET_OTHER, "business", ev);
  });
}

/** Records a step of a user journey: `trackJourney("work-order", "details-entered", meta)`. */
export const trackJourney = api((journeyType, step, meta) => {
  if (isString(journeyType) && isString(step)) emit(BUCKET_OTHER, "journey", { journeyType, step, meta: plain(meta) });
});

/** Records a conversion with its value: `trackConversion("invoice-paid", 450, meta)`. */
export const trackConversion = api((conversionType, value, meta) => {
  if (isString(conversionType) && Number.isFinite(value)) emit(BUCKET_OTHER, "conversion", { conversionType, value, meta: plain(meta) });
});

/** Records a timing: ms since the page started, or a duration of your own. */
export const addTiming = api((name, ms) => {
  if (isString(name)) emit(BUCKET_OTHER, "timing", { name, durationMs: ms >= 0 && ms < Infinity ? ms : now() });
});

/** Adds a breadcrumb to what the next errors carry: `addBreadcrumb({ category: "payment", message: "card form opened", data: { step: 2 } })`. */
export const addBreadcrumb = api((b) => {
  if (!isString(b?.message)) return;
  const data = plain(b.data);
  const level = isString(b.level) && b.level != "info" ? "[" + b.level + "] " : "";
  crumb(isString(b.category) ? cut(b.category, 64) : "custom", level + b.message + (data ? " " + JSON.stringify(data) : ""));
});

/** Names the signed-in user on every error: `setUser({ id, role, businessId })` (an opaque id, not an email); `setUser(null)` forgets them. */
export const setUser = api((u) => {
  user = {};
  for (const [key, tag] of [["id", "userId"], ["role", "userRole"], ["businessId", "businessId"]]) if (isString(u?.[key])) user[tag] = cut(u[key], 200);
});

/** Sets a tag every error carries (a string, at most 32 tags; keys of letters, digits, `_` and `.`); null removes it. */
export const setTag = api((key, value) => {
  if (!/^[A-Za-z][\w.]{0,63}$/.test(key)) return;
  if (value == null) delete pageTags[key];
  else if (isString(value) && (key in pageTags || Object.keys(pageTags).length < 32)) pageTags[key] = cut(value, 200);
});

/** Reports an error (a React error boundary's, say) with optional context tags. */
export const captureException = api((error, context) => capture(error, "captured", context));

/** Records this session from now on (whatever the replay sample rates say), until `stopReplay`. */
export const startReplay = api(() => {
  replayMode = "session";
  replay()?.then((r) => r.session());
});

/** Stops recording and sends what is recorded. */
export const stopReplay = api(() => {
  replayMode = "";
  endReplay(true);
});

/** Reports a business error; its fingerprint is the spec's [process, step, code]. */
export const trackBusinessError = api((error, context) => {
  const part = (key) => (isString(context?.[key]) ? context[key] : "unknown");
  capture(error, "business", context, [part("process"), part("step"), part("code")]);
});

/** Starts a span of the page's own work (the spec's startTransaction); requests made until it ends are its children. */
export function startSpan(name, op) {
  const span = browser() && session && openSpan(name, op || "custom", active);
  let done = !span;
  if (span) active = span;
  return {
    traceId: span?.traceId,
    spanId: span?.spanId,
    setAttribute(key, value) {
      const type = typeof value;
      if (!done && /^[A-Za-z_][\w.]{0,199}$/.test(key) && Object.keys(span.attrs).length < 32 && (type == "boolean" || (type == "number" && isFinite(value)) || isString(value)))
        span.attrs[key] = isString(value) ? cut(value, 2000) : value;
      return this;
    },
    end(status) {
      if (done) return;
      done = true;
      if (active === span) active = null;
      closeSpan(span, status === "ok" || status === "error" ? status : undefined);
    },
  };
}

/** Grants (true) or withdraws (false) consent: nothing is sent before it is granted, and what was queued meanwhile goes then. */
export const setConsent = api((granted) => {
  cfg.consent = !!granted;
  if (granted) {
    flush();
    replay();
  } else {
    clear();
    // Withdrawn: the recording stops and what it holds is dropped; granted again, it starts anew.
    endReplay(false);
  }
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
