//! Browser SDK of thorbis-obs, published to npm as `@thorbis/obs`.
//!
//! This is the skeleton the browser-SDK issue fills: it already links the pure core without the
//! rule engine (`default-features = false`), which is what keeps the bundle small.

use wasm_bindgen::prelude::wasm_bindgen;

/// The wire schema version this SDK speaks.
#[wasm_bindgen(js_name = wireVersion)]
pub fn wire_version() -> u32 {
    thorbis_obs_core::wire::WIRE_VERSION
}

/// Rates a web-vitals value with Google's thresholds: 0 good, 1 needs improvement, 2 poor,
/// 255 for an unknown metric name.
#[wasm_bindgen(js_name = rateVital)]
pub fn rate_vital(name: &str, value: f64) -> u8 {
    use thorbis_obs_core::domain::vitals::{Rating, Vital};
    match Vital::from_name(name) {
        Some(v) => match v.rate(value) {
            Rating::Good => 0,
            Rating::NeedsImprovement => 1,
            Rating::Poor => 2,
        },
        None => 255,
    }
}
