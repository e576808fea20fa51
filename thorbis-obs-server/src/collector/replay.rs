//! Session replay intake and reads: `POST /v1/replay` takes one chunk of a session's rrweb
//! recording from the browser SDK, `GET /api/v1/replays` lists the sessions with replay and
//! `GET /api/v1/replays/{session}` gives one session's events in order.
//!
//! A chunk is admitted as a `/v1/rum` batch is (origin allowlist, client token, the same rate
//! limits), then named by its query string (`session`, `seq`, `start`, `end` in epoch ms, `enc`
//! `gzip` or none; checked by [`thorbis_obs_core::replay`] against the agent's clock), then its
//! body is read (at most `collector.replay.max_chunk_bytes`), inflated (at most
//! `max_inflated_bytes`) and its events checked: a JSON array of rrweb events whose times lie
//! in the chunk's range. Only then is it stored, gzip-compressed, in one write: a refused chunk
//! leaves nothing behind. The same chunk twice is kept once (the answer says `duplicate`); a
//! session past `max_session_bytes` gets 413 for its further chunks. The retention and the
//! total cap are enforced every `prune_interval`, whole sessions at a time. Memory is bounded
//! by [`Gate`].

use super::decode::Rejection;
use super::routes::CollectorService;
use super::state::Collector;
use crate::api;
use crate::store::{ReplayChunk, ReplayStored};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use thorbis_obs_core::replay::{ChunkHead, EventHead, check_events};
use thorbis_obs_core::time::Timestamp;

/// Sessions `GET /api/v1/replays` lists at most.
const MAX_LISTED: usize = 500;

/// What bounds the memory chunks take while they are read and decoded: the bodies being read
/// hold at most `max_inflight_bytes` between them (a body takes its declared length, or the
/// chunk cap when it declares none), and one chunk per core is inflated and parsed at a time,
/// off the runtime (the others wait their turn holding only their body). A chunk whose body
/// finds no room is answered 503 with `Retry-After` (the SDK sends it again) rather than
/// waiting.
#[derive(Debug)]
pub(super) struct Gate {
    /// KiB of bodies in flight.
    bytes: Arc<tokio::sync::Semaphore>,
    decoding: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    pub(super) fn new(cfg: &super::ReplaySection) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let kib = u32::try_from(cfg.max_inflight_bytes.div_ceil(1024)).unwrap_or(u32::MAX).max(1);
        Gate {
            bytes: Arc::new(tokio::sync::Semaphore::new(kib as usize)),
            decoding: Arc::new(tokio::sync::Semaphore::new(cores.max(2))),
        }
    }
}

fn busy(what: &str) -> Rejection {
    let mut r = Rejection::new(StatusCode::SERVICE_UNAVAILABLE, format!("{what}; retry"), None);
    r.retry_after = Some(1);
    r
}

/// The chunk's head from the query string, or the parameter to blame.
fn head(uri: &Uri) -> Result<(ChunkHead, bool), Rejection> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("query string: {e}"), None))?;
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let bad = |name: &'static str, what: &str| Rejection::new(StatusCode::BAD_REQUEST, what.to_string(), Some(name));
    let number = |name: &'static str| -> Result<i64, Rejection> {
        get(name).ok_or_else(|| bad(name, "missing"))?.parse().map_err(|_| bad(name, "not a whole number"))
    };
    let seq = number("seq")?;
    let head = ChunkHead {
        session: get("session").ok_or_else(|| bad("session", "missing"))?.to_string(),
        seq: u32::try_from(seq).map_err(|_| bad("seq", "not a chunk number"))?,
        start_ms: number("start")?,
        end_ms: number("end")?,
    };
    let gzip = match get("enc") {
        None | Some("") | Some("none") => false,
        Some("gzip") => true,
        Some(_) => return Err(bad("enc", "gzip or none")),
    };
    Ok((head, gzip))
}

/// `body` compressed.
fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    enc.write_all(body)?;
    enc.finish()
}

/// Reads, checks and stores one chunk; `Ok(true)` when it was a duplicate.
async fn take(c: &Collector, uri: &Uri, headers: &HeaderMap, body: Body, now: Timestamp) -> Result<bool, Rejection> {
    let cfg = &c.config().replay;
    let (head, gzipped) = head(uri)?;
    head.validate(now).map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.message, Some(&e.field)))?;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(cfg.max_chunk_bytes)
        .min(cfg.max_chunk_bytes);
    let kib = u32::try_from(declared.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let _reading = c
        .replay_gate
        .bytes
        .clone()
        .try_acquire_many_owned(kib)
        .map_err(|_| busy("replay chunks being read hold collector.replay.max_inflight_bytes"))?;
    let raw = api::read_body(headers, body, cfg.max_chunk_bytes, api::BODY_TIMEOUT)
        .await
        .map_err(|e| Rejection::new(e.status, format!("{} (collector.replay.max_chunk_bytes)", e.message), None))?;
    // Waiting here holds only the body read, which the in-flight budget counts already.
    let _decoding =
        c.replay_gate.decoding.clone().acquire_owned().await.map_err(|_| busy("the replay decoder is closed"))?;
    let max = cfg.max_inflated_bytes;
    let chunk = tokio::task::spawn_blocking(move || decode(head, raw, gzipped, max))
        .await
        .map_err(|e| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, format!("decoding failed: {e}"), None))??;
    let unavailable = |e: crate::store::StoreError| {
        tracing::warn!(error = %e, "cannot store a replay chunk; the SDK retries it");
        let mut r = Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable; retry", None);
        r.retry_after = Some(5);
        r
    };
    match c.hub().store().record_replay_chunk(&chunk, cfg.max_session_bytes).await.map_err(unavailable)? {
        ReplayStored::Stored => Ok(false),
        ReplayStored::Duplicate => Ok(true),
        ReplayStored::SessionFull => Err(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "this session's replay holds its {} bytes (collector.replay.max_session_bytes)",
                cfg.max_session_bytes
            ),
            Some("session"),
        )),
    }
}

/// Inflates (bounded), parses and checks a chunk's events; the chunk to store, gzip.
fn decode(head: ChunkHead, raw: axum::body::Bytes, gzipped: bool, max: usize) -> Result<ReplayChunk, Rejection> {
    let json = match gzipped {
        true => api::inflate_gzip(&raw, max, "collector.replay.max_inflated_bytes")
            .map_err(|e| Rejection::new(e.status, e.message, None))?,
        false => raw.to_vec(),
    };
    let events: Vec<EventHead> = serde_json::from_slice(&json).map_err(|e| {
        Rejection::new(StatusCode::BAD_REQUEST, format!("not a JSON array of rrweb events: {e}"), Some("events"))
    })?;
    check_events(&head, &events).map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.message, Some(&e.field)))?;
    let data = match gzipped {
        true => raw.to_vec(),
        false => gzip(&json).map_err(|e| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None))?,
    };
    Ok(ReplayChunk {
        session_id: head.session,
        seq: head.seq,
        start_ms: head.start_ms,
        end_ms: head.end_ms,
        events: events.len() as u32,
        data,
    })
}

/// `POST /v1/replay`.
pub(super) async fn ingest(
    State(api): State<Arc<CollectorService>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(c) = &api.collector else { return super::routes::off() };
    if !c.config().replay.enabled {
        return super::routes::refuse(&Rejection::new(
            StatusCode::NOT_FOUND,
            "session replay is off (collector.replay.enabled)",
            None,
        ));
    }
    let now = c.hub().now();
    // The body is read only once the request is admitted.
    let result = match c.admit(&headers, &uri, peer, now) {
        Ok(()) => take(c, &uri, &headers, body, now).await,
        Err(r) => Err(r),
    };
    let outcome = match &result {
        Ok(false) => 0,
        Ok(true) => 1,
        Err(r) if r.field.as_deref() == Some("session") && r.status == StatusCode::PAYLOAD_TOO_LARGE => 2,
        Err(_) => 3,
    };
    c.stats.replay_chunks[outcome].fetch_add(1, Ordering::Relaxed);
    let mut resp = match result {
        Ok(duplicate) => {
            (StatusCode::ACCEPTED, axum::Json(json!({ "stored": !duplicate, "duplicate": duplicate }))).into_response()
        }
        Err(r) => {
            tracing::debug!(status = r.status.as_u16(), error = %r.message, field = ?r.field, "replay chunk refused");
            super::routes::refuse(&r)
        }
    };
    c.cors(&headers, &mut resp);
    resp
}

/// `GET /api/v1/replays`: the sessions with replay, the latest first.
pub(super) async fn list(State(api): State<Arc<CollectorService>>) -> Response {
    let Some(c) = &api.collector else { return super::routes::off() };
    match c.hub().store().replay_sessions(MAX_LISTED).await {
        Ok(sessions) => axum::Json(json!({ "sessions": sessions })).into_response(),
        Err(e) => api::error(StatusCode::SERVICE_UNAVAILABLE, format!("the store: {e}")),
    }
}

/// `GET /api/v1/replays/{session}`: `{"session", "chunks": [{seq, start, end, events}], "events": [...]}`,
/// the events of every chunk in sequence order, as the page recorded them.
pub(super) async fn session(State(api): State<Arc<CollectorService>>, Path(id): Path<String>) -> Response {
    let Some(c) = &api.collector else { return super::routes::off() };
    let chunks = match c.hub().store().replay_chunks(&id).await {
        Ok(chunks) if chunks.is_empty() => {
            return api::error(StatusCode::NOT_FOUND, format!("no replay of session {id:?}"));
        }
        Ok(chunks) => chunks,
        Err(e) => return api::error(StatusCode::SERVICE_UNAVAILABLE, format!("the store: {e}")),
    };
    let max = c.config().replay.max_inflated_bytes;
    // The events arrays spliced into one: each was checked to be a JSON array when it came in.
    let mut events = Vec::new();
    for chunk in &chunks {
        let Ok(json) = api::inflate_gzip(&chunk.data, max, "collector.replay.max_inflated_bytes") else {
            return api::error(StatusCode::INTERNAL_SERVER_ERROR, format!("chunk {} of {id:?} is corrupt", chunk.seq));
        };
        let text = String::from_utf8_lossy(&json);
        let inner = text.trim().trim_start_matches('[').trim_end_matches(']').trim();
        if !inner.is_empty() {
            events.push(inner.to_string());
        }
    }
    let list: Vec<_> = chunks
        .iter()
        .map(|c| json!({ "seq": c.seq, "start": c.start_ms, "end": c.end_ms, "events": c.events }))
        .collect();
    let head = json!({ "session": id, "chunks": list }).to_string();
    // `{"session":..,"chunks":[..]` + `,"events":[...]}`.
    let body = format!("{},\"events\":[{}]}}", head.trim_end_matches('}'), events.join(","));
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// rrweb's Replayer (`scripts/vendor-rrweb-replay.sh` builds it from npm), served by the agent.
const PLAYER_JS: &str = include_str!("assets/rrweb-replay.js");
const PLAYER_CSS: &str = include_str!("assets/rrweb-replay.css");

/// `GET /assets/rrweb-replay.js` and `.css`.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    let (ct, body) = match name.as_str() {
        "rrweb-replay.js" => ("text/javascript; charset=utf-8", PLAYER_JS),
        "rrweb-replay.css" => ("text/css; charset=utf-8", PLAYER_CSS),
        _ => return api::error(StatusCode::NOT_FOUND, format!("no asset {name:?}")),
    };
    let headers = [(axum::http::header::CONTENT_TYPE, ct), (axum::http::header::CACHE_CONTROL, "max-age=86400")];
    (headers, body).into_response()
}

/// `GET /replays`: the sessions with replay, latest first, each linking its player.
pub(super) async fn list_page(State(api): State<Arc<CollectorService>>) -> Response {
    use crate::api::escape_html as esc;
    use std::fmt::Write as _;
    let Some(c) = &api.collector else { return super::routes::off() };
    let sessions = match c.hub().store().replay_sessions(MAX_LISTED).await {
        Ok(s) => s,
        Err(e) => return api::error(StatusCode::SERVICE_UNAVAILABLE, format!("the store: {e}")),
    };
    let mut b = String::from("<h1>Session replays</h1>");
    if sessions.is_empty() {
        b.push_str("<p>No replay recorded (the SDK's replaysSessionSampleRate and replaysOnErrorSampleRate).</p>");
    } else {
        b.push_str(
            r#"<table><thead><tr><th scope="col">session</th><th scope="col">start</th><th scope="col">length</th><th scope="col">events</th><th scope="col">stored</th><th scope="col">timeline</th></tr></thead><tbody>"#,
        );
        for s in &sessions {
            let _ = write!(
                b,
                r#"<tr><td><a href="/replays/{0}">{0}</a></td><td>{1}</td><td>{2} s</td><td>{3}</td><td>{4} KB</td><td><a href="/sessions/{0}">events</a></td></tr>"#,
                esc(&s.session_id),
                esc(&s.start.to_rfc3339()),
                s.end.0.saturating_sub(s.start.0) / 1000,
                s.events,
                s.bytes.div_ceil(1024)
            );
        }
        b.push_str("</tbody></table>");
    }
    api::html(api::plain_page("Session replays", &b))
}

/// `GET /replays/{session}?t=EPOCH_MS`: rrweb's Replayer on the session's events, paused at
/// `t` (an error's moment) or at the start, with play, pause and a position slider. The
/// recording plays in rrweb's sandboxed iframe (no scripts run in it); the page reports the
/// replayed heading's text in `#seen` for tests and people.
pub(super) async fn player_page(Path(id): Path<String>) -> Response {
    use crate::api::escape_html as esc;
    let body = format!(
        r#"<link rel="stylesheet" href="/assets/rrweb-replay.css"><h1>Replay of session <code>{0}</code></h1><p><a href="/sessions/{0}">timeline</a> &middot; <a href="/replays">all replays</a></p><p><button id="play" type="button">Play</button> <button id="pause" type="button">Pause</button> <input id="seek" type="range" min="0" max="0" value="0" aria-label="position"> <output id="time">loading</output></p><div id="player" data-session="{0}"></div><p>Heading as replayed: <output id="seen"></output></p><script src="/assets/rrweb-replay.js"></script><script>{PLAYER_SCRIPT}</script>"#,
        esc(&id)
    );
    api::html(api::plain_page(&format!("Replay {id}"), &body))
}

/// The player page's script (no outside text in it: the session id comes from a data attribute).
const PLAYER_SCRIPT: &str = r#"(async () => {
  const root = document.getElementById("player");
  const time = document.getElementById("time");
  const r = await fetch("/api/v1/replays/" + encodeURIComponent(root.dataset.session));
  if (!r.ok) { time.textContent = "no replay of this session"; return; }
  const { events } = await r.json();
  const replayer = new rrwebReplay.Replayer(events, { root, mouseTail: false, skipInactive: true });
  const start = events[0].timestamp, length = events[events.length - 1].timestamp - start;
  const seek = document.getElementById("seek");
  seek.max = length;
  const at = +new URLSearchParams(location.search).get("t");
  const show = (offset, tries = 20) => {
    seek.value = offset;
    time.textContent = (offset / 1000).toFixed(1) + " s of " + (length / 1000).toFixed(1) + " s";
    const h1 = replayer.iframe.contentDocument && replayer.iframe.contentDocument.querySelector("h1");
    document.getElementById("seen").textContent = h1 ? h1.textContent : "";
    // The snapshot is rebuilt in the iframe a moment after the seek.
    if (!h1 && tries) setTimeout(() => show(offset, tries - 1), 100);
  };
  // Never before the first full snapshot: before it there is no page to show.
  const snapshot = events.find((e) => e.type === 2);
  const first = snapshot ? snapshot.timestamp - start : 0;
  const offset = Math.max(first, at > start ? Math.min(at - start, length) : 0);
  replayer.pause(offset);
  show(offset);
  document.getElementById("play").onclick = () => replayer.play(+seek.value);
  document.getElementById("pause").onclick = () => (replayer.pause(), show(replayer.getCurrentTime()));
  seek.oninput = () => (replayer.pause(+seek.value), show(+seek.value));
  document.body.dataset.replay = "ready";
})();"#;

/// Enforces the retention and the total cap every `prune_interval` until `stop`, and keeps
/// the kept sessions and bytes in the collector's stats.
pub(super) async fn run_prune(c: Arc<Collector>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let cfg = c.config().replay.clone();
    if !cfg.enabled {
        return;
    }
    loop {
        let before = c.hub().now().minus(cfg.retention.get());
        match c.hub().store().prune_replays(before, cfg.max_total_bytes).await {
            Ok(p) => {
                let s = &c.stats;
                s.replay_removed[0].fetch_add(p.expired, Ordering::Relaxed);
                s.replay_removed[1].fetch_add(p.evicted, Ordering::Relaxed);
                s.replay_kept[0].store(p.sessions, Ordering::Relaxed);
                s.replay_kept[1].store(p.bytes, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune session replays"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.prune_interval.get()) => {}
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_the_chunk() {
        let uri: Uri = "/v1/replay?session=s-1&seq=3&start=1000&end=2000&enc=gzip&token=t".parse().expect("uri");
        let (h, gz) = head(&uri).expect("head");
        assert_eq!((h.session.as_str(), h.seq, h.start_ms, h.end_ms, gz), ("s-1", 3, 1000, 2000, true));
        for (q, field) in [
            ("seq=1&start=1&end=2", "session"),
            ("session=s&seq=-1&start=1&end=2", "seq"),
            ("session=s&seq=1&start=x&end=2", "start"),
            ("session=s&seq=1&start=1&end=2&enc=br", "enc"),
        ] {
            let uri: Uri = format!("/v1/replay?{q}").parse().expect("uri");
            assert_eq!(head(&uri).expect_err(q).field.as_deref(), Some(field), "{q}");
        }
    }
}
