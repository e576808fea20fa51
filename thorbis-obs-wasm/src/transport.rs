//! Batches and sends: at 50 events or the flush interval, bodies cut at 16 KiB; `sendBeacon` when the page
//! is hidden or unloading (fetch with `keepalive` if the beacon is refused), fetch otherwise.
//! Bodies are `text/plain`, so no CORS preflight. A failed send (network error, 408, 429, 5xx)
//! waits in a bounded retry queue with backoff from 1 s doubling to 60 s, or the server's
//! `Retry-After`; other 4xx answers are dropped (the batch is wrong, sending it again will not
//! help) and counted.

use crate::js::{self, obj, set};
use js_sys::{JsString, Object};
use std::collections::VecDeque;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Largest body of a batch (Datadog's 16 KiB); a bigger flush is cut into several.
const FLUSH_BYTES: u32 = 16 * 1024;
/// A beacon larger than this is sent with fetch (browsers cap beacons at 64 KiB in flight).
const BEACON_MAX: u32 = 60_000;
/// Batches kept for retry at most; older ones are dropped first.
const RETRY_BATCHES: usize = 10;

/// What waits to be sent.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Events as objects: serialised at flush time, off the caller's path.
    events: Vec<JsValue>,
    retry: VecDeque<(JsString, u32)>,
    /// `performance.now()` before which nothing is retried.
    retry_at: f64,
    in_flight: bool,
    /// A flush of a full batch is queued.
    pub(crate) flush_scheduled: bool,
    pub(crate) failures: u32,
    pub(crate) dropped: u32,
}

impl Outbox {
    /// Queues one event; returns how many are queued.
    pub(crate) fn push(&mut self, ev: JsValue) -> usize {
        self.events.push(ev);
        if self.events.len() > thorbis_obs_core::wire::MAX_EVENTS_PER_BATCH {
            self.events.remove(0);
            self.dropped += 1;
        }
        self.events.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn retrying(&self) -> usize {
        self.retry.len()
    }

    pub(crate) fn clear(&mut self) {
        self.dropped += self.events.len() as u32;
        self.events.clear();
    }

    /// Builds the batch of what is queued under `header` and sends it with due retries.
    pub(crate) fn flush(&mut self, url: &str, header: &Object, exiting: bool) {
        if !self.events.is_empty() {
            if let Some(h) = js::stringify(header) {
                // `{...header}` + `,"events":[e1,e2]}`, cut into bodies of about 16 KiB (an
                // event that cannot be serialised, a cycle say, is dropped and counted).
                let head = h.slice(0, h.length().saturating_sub(1)).concat(&JsValue::from_str(",\"events\":["));
                let mut list = js_sys::Array::new();
                let mut bytes = 0u32;
                for e in self.events.drain(..) {
                    let Some(text) = js::stringify(&e) else {
                        self.failures += 1;
                        continue;
                    };
                    if bytes > 0 && bytes + text.length() > FLUSH_BYTES {
                        self.retry.push_back((head.concat(&list.join(",")).concat(&"]}".into()), 0));
                        list = js_sys::Array::new();
                        bytes = 0;
                    }
                    bytes += text.length() + 1;
                    list.push(&text);
                }
                if list.length() > 0 {
                    self.retry.push_back((head.concat(&list.join(",")).concat(&"]}".into()), 0));
                }
            } else {
                self.failures += 1;
                self.clear();
            }
        }
        while self.retry.len() > RETRY_BATCHES {
            self.retry.pop_front();
            self.dropped += 1;
        }
        if !exiting && (self.in_flight || js::perf_now() < self.retry_at) {
            return;
        }
        if exiting {
            // Page exit: everything goes now, as beacons; what the browser refuses goes by fetch.
            self.flush_scheduled = false;
            while let Some((body, _)) = self.retry.pop_front() {
                if !beacon(url, &body) {
                    let _ = fetch(url, &body, true);
                }
            }
            return;
        }
        if let Some((body, attempts)) = self.retry.pop_front() {
            match fetch(url, &body, body.length() <= BEACON_MAX) {
                Some(p) => {
                    self.in_flight = true;
                    watch(p, body, attempts);
                }
                None => {
                    self.failures += 1;
                    self.retry.push_front((body, attempts + 1));
                }
            }
        }
    }
}

fn beacon(url: &str, body: &JsString) -> bool {
    if body.length() > BEACON_MAX {
        return false;
    }
    js::window()
        .map(|w| w.navigator().send_beacon_with_opt_str(url, Some(&String::from(body))).unwrap_or(false))
        .unwrap_or(false)
}

fn fetch(url: &str, body: &JsString, keepalive: bool) -> Option<js_sys::Promise> {
    let w = js::window()?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(body);
    set(&init, "keepalive", keepalive);
    let headers = obj();
    set(&headers, "Content-Type", "text/plain;charset=UTF-8");
    init.set_headers(&headers);
    Some(w.fetch_with_str_and_init(url, &init))
}

/// Seconds from a `Retry-After` header (delta seconds only), capped at 10 minutes.
fn retry_after(resp: &web_sys::Response) -> Option<f64> {
    let v = resp.headers().get("Retry-After").ok().flatten()?;
    let secs = js_sys::Number::parse_float(&v);
    (secs.is_finite() && secs >= 0.0).then(|| secs.min(600.0))
}

/// Handles the answer to a batch: done, retry later, or drop.
fn watch(p: js_sys::Promise, body: JsString, attempts: u32) {
    let body2 = body.clone();
    let ok = Closure::once_into_js(move |r: JsValue| {
        let Ok(resp) = r.dyn_into::<web_sys::Response>() else { return };
        let status = resp.status();
        let wait = retry_after(&resp);
        crate::with(|s| {
            s.out.in_flight = false;
            let retryable = status == 408 || status == 429 || status >= 500;
            if (200..300).contains(&status) {
                s.out.retry_at = 0.0;
            } else if retryable {
                s.out.failures += 1;
                let backoff = (1000.0 * f64::from(1u32 << attempts.min(6))).min(60_000.0);
                // 429 without Retry-After: stand back for 60 s, as Sentry does.
                let default = if status == 429 { 60_000.0 } else { backoff };
                s.out.retry_at = js::perf_now() + wait.map(|w| w * 1000.0).unwrap_or(default);
                s.out.retry.push_front((body, attempts + 1));
                schedule_retry(s.out.retry_at);
            } else {
                s.out.dropped += 1;
            }
        });
    });
    let err = Closure::once_into_js(move |_e: JsValue| {
        crate::with(|s| {
            s.out.in_flight = false;
            s.out.failures += 1;
            let backoff = (1000.0 * f64::from(1u32 << attempts.min(6))).min(60_000.0);
            s.out.retry_at = js::perf_now() + backoff;
            s.out.retry.push_front((body2, attempts + 1));
            schedule_retry(s.out.retry_at);
        });
    });
    if let Ok(then) = js::get(&p, "then").dyn_into::<js_sys::Function>() {
        let _ = then.call2(&p, &ok, &err);
    }
}

fn schedule_retry(at: f64) {
    let ms = (at - js::perf_now()).max(0.0) as i32 + 1;
    js::timeout(ms, || {
        crate::with(|s| s.flush(false));
    });
}

/// The flush timer and the page-exit hooks.
pub(crate) fn start(w: &web_sys::Window, flush_ms: i32) {
    let tick = Closure::<dyn FnMut()>::new(|| {
        crate::with(|s| s.flush(false));
    });
    let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), flush_ms);
    tick.forget();
    if let Some(d) = w.document() {
        js::listen(&d, "visibilitychange", true, |_| {
            if js::hidden() {
                crate::vitals::on_hidden();
                crate::with(|s| s.flush(true));
            }
        });
    }
    js::listen(w, "pagehide", true, |_| {
        crate::vitals::on_hidden();
        crate::with(|s| s.flush(true));
    });
}
