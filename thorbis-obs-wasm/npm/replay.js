// Session replay for @thorbis/obs, loaded by index.js only when a session is sampled for replay
// (or startReplay() is called), so pages without replay never fetch it. The DOM is recorded by
// rrweb's recorder (@rrweb/record, MIT), private by default: every input and every text node is
// masked, elements matching `[data-private]` (and `replay.blockSelector`) are not recorded at
// all, images and media are left out unless `replay.recordMedia` is true, and no request or
// response body is ever recorded (rrweb does not record network traffic).
//
// Modes: "session" sends the full snapshot at once and then a chunk every 5 s; "buffer" keeps
// the last 60 s in memory (a full snapshot every 30 s, so what is kept always starts with one)
// and sends it when an error is captured, then goes on as "session" (a buffer with no error is
// never sent). Chunks are gzip (CompressionStream, where the browser has it) posted to
// /v1/replay with the session id, a sequence number kept per session in sessionStorage, and the
// chunk's first and last event times; a failed chunk is sent again once after 5 s.
import { record } from "@rrweb/record";

const SEQ_KEY = "_thorbis_obs_rs";
const EVERY = 5000;
const KEEP = 60000;

// `cfg` is index.js' config: its `url` (the RUM endpoint and token) and `o` (the options).
export function start(mode, cfg, session) {
  const o = cfg.o.replay || {};
  // `replay.endpoint`, else the RUM endpoint's /v1/rum as /v1/replay; the client token either way.
  const [rum, token] = cfg.url.split("?");
  const url = (o.endpoint || rum.replace("/v1/rum", "/v1/replay")) + (token ? "?" + token : "");
  let events = [];
  // Buffer mode: where the newest stretch (its checkout's Meta event) starts in `events`.
  let stretch = 0;
  let timer = 0;
  let stopRecording;
  const nextSeq = (id) => {
    const [owner, n] = (sessionStorage.getItem(SEQ_KEY) || "").split(" ");
    const seq = owner === id ? +n + 1 : 0;
    sessionStorage.setItem(SEQ_KEY, id + " " + seq);
    return seq;
  };
  const send = async (list, again, exiting) => {
    if (!list.length) return;
    const id = session();
    const seq = again ?? nextSeq(id);
    const json = JSON.stringify(list);
    let body = json;
    let enc = "none";
    // Leaving the page there is no time to compress: plain, with keepalive (64 KB at most).
    if (!exiting && typeof CompressionStream === "function") {
      body = await new Response(new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
      enc = "gzip";
    }
    const q = `session=${encodeURIComponent(id)}&seq=${seq}&start=${list[0].timestamp}&end=${list[list.length - 1].timestamp}&enc=${enc}`;
    const target = url + (url.includes("?") ? "&" : "?") + q;
    fetch(target, { method: "POST", body, keepalive: exiting && json.length < 60e3, headers: { "Content-Type": "text/plain" } })
      .then((r) => r.status >= 500 || r.status === 429 ? Promise.reject() : 0)
      .catch(() => again === undefined && setTimeout(() => send(list, seq), EVERY));
  };
  const flush = (exiting) => ((stretch = 0), send(events.splice(0), undefined, exiting));
  const streaming = () => {
    mode = "session";
    clearInterval(timer);
    timer = setInterval(flush, EVERY);
  };
  const block = ["[data-private]", o.recordMedia ? "" : "img,video,audio,picture,canvas", o.blockSelector || ""].filter(Boolean).join(",");
  // What keeps the page's data out of the recording (rrweb's own defaults record every text
  // and input as it is; scripts/bench-replay.sh measures those beside these).
  const privacy = {
    maskAllInputs: o.maskAllInputs !== false,
    maskTextSelector: o.maskAllText === false ? undefined : "*",
    blockSelector: block,
    recordCanvas: false,
    collectFonts: false,
    inlineImages: false,
    recordCrossOriginIframes: false,
  };
  stopRecording = record({
    emit(event, checkout) {
      // Buffer mode: a checkout (a Meta event, then a full snapshot) starts a new stretch and
      // the one before the last goes, so the buffer holds 30 to 60 s and starts with a Meta.
      if (mode === "buffer" && checkout && event.type === 4) {
        events = events.slice(stretch);
        stretch = events.length;
      }
      events.push(event);
      // Recording a session: the full snapshot goes at once, compressed, rather than with the
      // next chunk; left for the page's exit it could be over keepalive's 64 KB and be lost.
      if (mode === "session" && event.type === 2) setTimeout(flush);
    },
    checkoutEveryNms: mode === "buffer" ? KEEP / 2 : undefined,
    ...privacy,
  });
  if (mode === "session") streaming();
  // Leaving: a recording session sends what it holds; a buffer with no error goes unsent.
  addEventListener("pagehide", () => mode === "session" && flush(true));
  return {
    // An error was captured: a buffer goes out, then the rest of the session streams.
    error() {
      if (mode === "buffer") (flush(), streaming());
    },
    session: streaming,
    // Stops recording; a recording session sends what it holds unless `send` is false (consent
    // withdrawn), a buffer is dropped.
    stop(send) {
      clearInterval(timer);
      stopRecording?.();
      if (send && mode === "session") flush();
      events = [];
      mode = "";
    },
    flush,
  };
}
