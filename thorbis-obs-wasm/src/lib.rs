//! Browser SDK of thorbis-obs, published to npm as `@thorbis/obs`: this crate is its wasm half.
//!
//! The SDK is two halves with one job each. The JS half (`npm/index.js`, the package's entry)
//! is the browser plumbing: it registers the observers and listeners, builds events as plain
//! objects, keeps the session, batches with the page's own `JSON.stringify` and sends with
//! `sendBeacon` and `fetch`. This wasm half is core's shared logic, the same code the agent runs:
//! the CLS session windows and INP selection of web-vitals, Google's ratings, the resource
//! budgets, the spec's noise filter, the business context of a URL path, and URL scrubbing.
//!
//! Why the split: every typed web-sys import and every `Closure` costs wasm code and JS glue
//! (a PerformanceObserver callback was about 2 KB gzip, `init` 7 KB), while the same plumbing in
//! JS is a few hundred bytes. The SDK was 44.7 KB gzip with the plumbing in Rust; see
//! `scripts/build-sdk.sh` for today's figure. Calls cross the boundary with numbers and short
//! strings only, and none of them can throw: there is no panic path on outside input.

use std::cell::RefCell;
use thorbis_obs_core::domain::budgets::{BudgetStatus, BudgetTally, Budgets, ResourceKind};
use thorbis_obs_core::domain::vitals::{ClsAccumulator, InpAccumulator, Rating, Vital};
use wasm_bindgen::prelude::*;

/// The allocator of the browser build (talc: smaller than the default dlmalloc).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// What the page has measured so far (since load, or since the last bfcache restore).
#[derive(Default)]
struct State {
    cls: ClsAccumulator,
    inp: InpAccumulator,
    tally: BudgetTally,
    budgets: Budgets,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs `f` on the state; a re-entrant call (which JS cannot make, but nothing here relies on
/// that) gets `R::default()` instead of a panic.
fn with<R: Default>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|c| c.try_borrow_mut().map(|mut g| f(g.get_or_insert_with(State::default))).unwrap_or_default())
}

/// The wire schema version the SDK speaks.
#[wasm_bindgen(js_name = wireVersion)]
pub fn wire_version() -> u32 {
    thorbis_obs_core::wire::WIRE_VERSION
}

/// Rates a web-vitals value with Google's thresholds: 0 good, 1 needs improvement, 2 poor,
/// 255 for an unknown metric name.
#[wasm_bindgen(js_name = rateVital)]
pub fn rate_vital(name: &str, value: f64) -> u8 {
    match Vital::from_name(name).map(|v| v.rate(value)) {
        Some(Rating::Good) => 0,
        Some(Rating::NeedsImprovement) => 1,
        Some(Rating::Poor) => 2,
        None => 255,
    }
}

/// Feeds a `layout-shift` entry; returns the CLS so far (the largest session window).
#[wasm_bindgen(js_name = clsAdd)]
pub fn cls_add(start_time: f64, value: f64, had_recent_input: bool) -> f64 {
    with(|s| {
        s.cls.add(start_time, value, had_recent_input);
        s.cls.value()
    })
}

/// Feeds an `event` or `first-input` entry of an interaction (`interactionId` 0 is ignored).
#[wasm_bindgen(js_name = inpAdd)]
pub fn inp_add(interaction_id: f64, duration: f64) {
    if interaction_id >= 1.0 && interaction_id.is_finite() {
        // Saturating float-to-int: an id beyond u64 is still an id.
        with(|s| s.inp.add(interaction_id as u64, duration));
    }
}

/// The INP so far, or -1 before the first interaction. `interaction_count` is the browser's
/// `performance.interactionCount` when it has one (0 otherwise: the ids are counted).
#[wasm_bindgen(js_name = inpValue)]
pub fn inp_value(interaction_count: f64) -> f64 {
    with(|s| {
        if interaction_count >= 1.0 && interaction_count.is_finite() {
            s.inp.set_interaction_count(interaction_count as u64);
        }
        s.inp.value().unwrap_or(-1.0)
    })
}

/// Forgets CLS and INP, as a back/forward-cache restore does.
#[wasm_bindgen(js_name = vitalsReset)]
pub fn vitals_reset() {
    with(|s| {
        s.cls.reset();
        s.inp.reset();
    });
}

/// Sets the budgets in KB, as the spec writes them (JS 170, CSS 50, images 500, fonts 100 by
/// default); a value that is not a positive number keeps the default. Each warning level keeps
/// the default's share of its budget.
#[wasm_bindgen(js_name = setBudgets)]
pub fn set_budgets(javascript: f64, css: f64, images: f64, fonts: f64) {
    with(|s| {
        let mut b = Budgets::default();
        for (kb, slot) in
            [(javascript, &mut b.javascript), (css, &mut b.css), (images, &mut b.images), (fonts, &mut b.fonts)]
        {
            if kb.is_finite() && kb > 0.0 {
                // The warning level keeps the default's share of the budget (the spec's 150 of
                // 170 KB for scripts, 40 of 50 for CSS).
                let bytes = (kb * 1024.0) as u64;
                let share = slot.warning_bytes as f64 / slot.budget_bytes.max(1) as f64;
                slot.budget_bytes = bytes;
                slot.error_bytes = bytes;
                slot.warning_bytes = ((bytes as f64 * share) as u64).min(bytes);
            }
        }
        s.budgets = b;
    });
}

/// Counts a Resource Timing entry against the budgets. Returns its kind (`script`,
/// `stylesheet`, `image`, `font`, `other`), followed by `!` when the page's total of that kind
/// is now over its budget, or `?` when it is past the budget's warning level.
#[wasm_bindgen]
pub fn resource(initiator_type: &str, url: &str, transfer_bytes: f64) -> String {
    with(|s| {
        let kind: ResourceKind = s.tally.record(initiator_type, url, transfer_bytes.max(0.0) as u64);
        let status = s.budgets.for_kind(kind).map(|b| b.status(s.tally.total(kind)));
        let mut out = String::from(kind.as_str());
        match status {
            Some(BudgetStatus::Error) => out.push('!'),
            Some(BudgetStatus::Warning) => out.push('?'),
            _ => {}
        }
        out
    })
}

/// Starts the budgets' tally again: a client-side navigation is a new page for them.
#[wasm_bindgen(js_name = resetBudgets)]
pub fn reset_budgets() {
    with(|s| s.tally = BudgetTally::new());
}

/// The spec's noise filter: offline network errors, extension frames, ResizeObserver loops,
/// "Script error.".
#[wasm_bindgen(js_name = isNoise)]
pub fn is_noise(message: &str, stack: Option<String>) -> bool {
    thorbis_obs_core::domain::errors::is_noise(message, stack.as_deref()).is_some()
}

/// The business context of a URL path, as `process|industry` (`unknown` for either when no
/// rule matches).
#[wasm_bindgen(js_name = businessContext)]
pub fn business_context(path: &str) -> String {
    let c = thorbis_obs_core::domain::context::ContextRules::default().resolve(path);
    let mut out = c.process;
    out.push('|');
    out.push_str(&c.industry);
    out
}

/// A URL with emails and the values of secret-looking query parameters redacted.
#[wasm_bindgen(js_name = scrubUrl)]
pub fn scrub_url(url: &str) -> String {
    thorbis_obs_core::domain::privacy::scrub_url(url)
}
