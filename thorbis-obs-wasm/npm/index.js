// @thorbis/obs: a tiny loader in front of the wasm SDK. It queues calls made before the wasm
// is ready, keeps errors thrown before it loads, and never throws into the page. Importing it
// touches neither window nor document, so server-side rendering can import it too.
let sdk = null;
let loading = null;
let failures = 0;
const queue = [];
const early = [];
const onEarly = (e) => {
  if (early.length < 20) early.push(e);
};
const browser = () => typeof window !== "undefined" && typeof document !== "undefined";

function run(name, args) {
  try {
    return sdk[name](...args);
  } catch (_) {
    failures++;
    return undefined;
  }
}

function load() {
  if (!loading) {
    loading = import("./pkg/thorbis_obs_wasm.js").then(
      (m) => {
        sdk = m;
        window.removeEventListener("error", onEarly, true);
        window.removeEventListener("unhandledrejection", onEarly, true);
        for (const [name, args] of queue.splice(0)) run(name, args);
        for (const e of early.splice(0)) {
          const rejection = e.type === "unhandledrejection";
          run("captureUnhandled", [rejection ? e.reason : e.error || e.message, rejection]);
        }
        return true;
      },
      () => {
        failures++;
        queue.length = 0;
        return false;
      },
    );
  }
  return loading;
}

function call(name) {
  return (...args) => {
    if (!browser()) return undefined;
    if (sdk) return run(name, args);
    if (queue.length < 1000) queue.push([name, args]);
    load();
    return undefined;
  };
}

/** Starts the SDK (see index.d.ts for the options). Safe to call during SSR: it does nothing. */
export function init(options) {
  if (!browser()) return;
  if (!sdk && !loading) {
    window.addEventListener("error", onEarly, true);
    window.addEventListener("unhandledrejection", onEarly, true);
  }
  call("init")(options || {});
}

export const track = call("track");
export const trackJourney = call("trackJourney");
export const trackConversion = call("trackConversion");
export const trackBusinessError = call("trackBusinessError");
export const captureException = call("captureException");
export const addTiming = call("addTiming");
export const setConsent = call("setConsent");
export const flush = call("flush");

/** Resolves to true once the wasm SDK runs (false when it could not load). */
export function ready() {
  return browser() ? load() : Promise.resolve(false);
}

/** The SDK's own counters, plus the loader's failures. */
export function diagnostics() {
  const d = (sdk && run("diagnostics", [])) || { queued: queue.length, failures: 0, dropped: 0 };
  d.failures += failures;
  return d;
}
