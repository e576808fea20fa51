//! Series keys: the device class, the route folding, the vital and counter keys and their flat
//! form, and the route cap.

use crate::domain::vitals::Vital;
use serde::{Deserialize, Serialize};

/// Routes kept per window; further routes are counted under [`OTHER_ROUTE`], so a page with an
/// id in every URL cannot blow up the number of series.
pub const MAX_ROUTES: usize = 200;
/// The route of views beyond [`MAX_ROUTES`].
pub const OTHER_ROUTE: &str = "other";
/// The `route` and `device` label of the all-routes, all-devices series.
pub const ALL: &str = "all";

/// The device class of a browser, from its User-Agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// Phones.
    Mobile,
    /// Tablets.
    Tablet,
    /// Everything else.
    Desktop,
}

impl Device {
    /// Classifies a User-Agent the way the common RUM tools do: `iPad`, `Tablet`, or Android
    /// without `Mobile` is a tablet; `Mobi`, `iPhone` or `Android` a phone; anything else,
    /// including no User-Agent, a desktop.
    pub fn from_user_agent(ua: &str) -> Device {
        if ua.contains("iPad") || ua.contains("Tablet") || (ua.contains("Android") && !ua.contains("Mobile")) {
            Device::Tablet
        } else if ua.contains("Mobi") || ua.contains("iPhone") || ua.contains("Android") {
            Device::Mobile
        } else {
            Device::Desktop
        }
    }

    /// `mobile`, `tablet` or `desktop`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Desktop => "desktop",
        }
    }
}

/// The browser family of a User-Agent, for error breakdowns: `Edge`, `Opera`, `Samsung
/// Internet`, `Firefox`, `Chrome`, `Safari`, else `other` (the order matters: Edge and Opera
/// say Chrome too, and Chrome says Safari).
pub fn browser_family(ua: &str) -> &'static str {
    [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map_or("other", |(_, name)| name)
}

/// The route of a view for grouping: the path without query or fragment, with segments that
/// look like ids (all digits, a UUID, 16 or more hex digits, or long and mixed with digits)
/// replaced by `:id`, at most 200 bytes. `/hs/work-orders/1042?tab=notes` becomes
/// `/hs/work-orders/:id`. A route pattern the app sent (`/hs/work-orders/[id]`) keeps its shape.
pub fn route_pattern(route: &str) -> String {
    let mut out = String::new();
    route_pattern_into(route, &mut out);
    out
}

/// [`route_pattern`] written into `out` (cleared first), so a caller on a hot path reuses one
/// buffer.
pub fn route_pattern_into(route: &str, out: &mut String) {
    out.clear();
    let path = route.split(['?', '#']).next().unwrap_or("");
    // A full URL: keep the path only.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if looks_like_id(seg) { ":id" } else { seg });
        if out.len() > 200 {
            let mut end = 200;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            break;
        }
    }
    if out.is_empty() {
        out.push('/');
    }
}

fn looks_like_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let hex = b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-');
    digits == b.len() || (hex && b.len() >= 16 && digits > 0) || (b.len() >= 20 && digits >= 4)
}

/// One vital's series key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VitalKey {
    /// The application.
    pub service: String,
    /// Its environment.
    pub env: String,
    /// Which vital.
    pub vital: Vital,
    /// [`route_pattern`] of the view.
    pub route: String,
    /// The browser's device class.
    pub device: Device,
}

/// A counter's series key: metric name and labels (service and env first).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    /// Metric name, e.g. `business_events`.
    pub metric: String,
    /// Label pairs.
    pub labels: Vec<(String, String)>,
}

/// A key with a flat string form, so a series is found without building its owned key.
pub trait FlatKey {
    /// Appends the flat form to `buf`.
    fn flat(&self, buf: &mut String);
}

impl FlatKey for VitalKey {
    fn flat(&self, buf: &mut String) {
        for part in
            [self.service.as_str(), self.env.as_str(), self.vital.name(), self.route.as_str(), self.device.as_str()]
        {
            buf.push_str(part);
            buf.push('\u{1f}');
        }
    }
}

impl FlatKey for CounterKey {
    fn flat(&self, buf: &mut String) {
        buf.push_str(&self.metric);
        for (k, v) in &self.labels {
            buf.push('\u{1f}');
            buf.push_str(k);
            buf.push('\u{1f}');
            buf.push_str(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_routes() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148";
        let ipad = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)";
        let pixel_tab = "Mozilla/5.0 (Linux; Android 14; Pixel Tablet)";
        let pixel = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36";
        assert_eq!(Device::from_user_agent(iphone), Device::Mobile);
        assert_eq!(browser_family(iphone), "other", "no browser token");
        assert_eq!(
            browser_family(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
            ),
            "Safari"
        );
        assert_eq!(
            browser_family(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
            ),
            "Edge"
        );
        assert_eq!(browser_family("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"), "Firefox");
        assert_eq!(browser_family(""), "other");
        assert_eq!(Device::from_user_agent(ipad), Device::Tablet);
        assert_eq!(Device::from_user_agent(pixel_tab), Device::Tablet);
        assert_eq!(Device::from_user_agent(pixel), Device::Mobile);
        assert_eq!(Device::from_user_agent("Mozilla/5.0 (X11; Linux x86_64)"), Device::Desktop);
        assert_eq!(Device::from_user_agent(""), Device::Desktop);

        assert_eq!(route_pattern("/hs/work-orders/1042?tab=notes"), "/hs/work-orders/:id");
        assert_eq!(route_pattern("https://a.example/u/3f2b9c1e-7d4a-4b8e-9a1c-2d3e4f5a6b7c/x#f"), "/u/:id/x");
        assert_eq!(route_pattern("/hs/work-orders/[id]"), "/hs/work-orders/[id]");
        assert_eq!(route_pattern("/invoices/INV2025000042ABCDEF99"), "/invoices/:id");
        assert_eq!(route_pattern("/settings/profile"), "/settings/profile");
        assert_eq!(route_pattern(""), "/");
        assert!(route_pattern(&"/abc".repeat(100)).len() <= 200);
    }
}
