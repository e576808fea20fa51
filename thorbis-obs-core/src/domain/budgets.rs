//! Performance budgets: how many bytes of scripts, stylesheets, images and fonts a page may load.
//!
//! ```
//! use thorbis_obs_core::domain::budgets::{BudgetStatus, BudgetTally, Budgets, ResourceKind};
//!
//! let mut tally = BudgetTally::new();
//! tally.record("script", "https://app.example/_next/static/chunks/main.js?v=3", 160 * 1024);
//! let statuses = tally.statuses(&Budgets::default());
//! assert_eq!(statuses[0], (ResourceKind::Script, 160 * 1024, BudgetStatus::Warning));
//! ```

use serde::{Deserialize, Serialize};

/// What a loaded resource is, for budgeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// JavaScript.
    Script,
    /// CSS.
    Stylesheet,
    /// Raster or vector images.
    Image,
    /// Web fonts.
    Font,
    /// Anything else (API calls, media, documents); no budget applies.
    Other,
}

impl ResourceKind {
    /// The kinds that have a budget, in the order [`BudgetTally::statuses`] reports them.
    pub const BUDGETED: [ResourceKind; 4] =
        [ResourceKind::Script, ResourceKind::Stylesheet, ResourceKind::Image, ResourceKind::Font];

    /// Classifies a Resource Timing entry by its `initiatorType` and URL.
    ///
    /// A known file extension decides (`.js .mjs .cjs`, `.css`, `.png .jpg .jpeg .gif .webp .avif
    /// .svg .ico`, `.woff .woff2 .ttf .otf .eot`, any case, query string and fragment ignored),
    /// because the initiator often names the requester rather than the resource: a font
    /// requested from a stylesheet has initiator `css`, a preloaded script has `link`. Without a
    /// known extension, initiator `script` means a script and `img`/`image` an image; anything
    /// else is [`ResourceKind::Other`], since guessing would charge the wrong budget.
    pub fn from_initiator_and_url(initiator_type: &str, url: &str) -> ResourceKind {
        if let Some(kind) = Self::from_extension(extension(url)) {
            return kind;
        }
        if initiator_type.eq_ignore_ascii_case("script") {
            ResourceKind::Script
        } else if initiator_type.eq_ignore_ascii_case("img") || initiator_type.eq_ignore_ascii_case("image") {
            ResourceKind::Image
        } else {
            ResourceKind::Other
        }
    }

    fn from_extension(ext: &str) -> Option<ResourceKind> {
        const TABLE: [(&str, ResourceKind); 17] = [
            ("js", ResourceKind::Script),
            ("mjs", ResourceKind::Script),
            ("cjs", ResourceKind::Script),
            ("css", ResourceKind::Stylesheet),
            ("png", ResourceKind::Image),
            ("jpg", ResourceKind::Image),
            ("jpeg", ResourceKind::Image),
            ("gif", ResourceKind::Image),
            ("webp", ResourceKind::Image),
            ("avif", ResourceKind::Image),
            ("svg", ResourceKind::Image),
            ("ico", ResourceKind::Image),
            ("woff", ResourceKind::Font),
            ("woff2", ResourceKind::Font),
            ("ttf", ResourceKind::Font),
            ("otf", ResourceKind::Font),
            ("eot", ResourceKind::Font),
        ];
        if ext.is_empty() {
            return None;
        }
        TABLE.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)).map(|&(_, kind)| kind)
    }

    /// `"script"`, `"stylesheet"`, `"image"`, `"font"` or `"other"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Script => "script",
            ResourceKind::Stylesheet => "stylesheet",
            ResourceKind::Image => "image",
            ResourceKind::Font => "font",
            ResourceKind::Other => "other",
        }
    }
}

/// The extension of the URL's last path segment, without query string or fragment; `""` if none.
fn extension(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let mut path = &url[..end];
    // The host is not a path: "https://cdn.js" has no extension.
    if let Some((_, after_scheme)) = path.split_once("://") {
        path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    }
    let segment = path.rsplit('/').next().unwrap_or(path);
    segment.rsplit_once('.').map_or("", |(_, ext)| ext)
}

/// One budget, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// The size the page aims for; shown on dashboards. The status comes from the two limits
    /// below (the spec sets the error limit equal to the budget).
    pub budget_bytes: u64,
    /// More than this is a warning.
    pub warning_bytes: u64,
    /// More than this is an error: the page is over budget.
    pub error_bytes: u64,
}

impl Budget {
    /// A budget given in KiB, as the spec writes them (`170 * 1024`).
    pub const fn from_kib(budget: u64, warning: u64, error: u64) -> Self {
        Budget { budget_bytes: budget * 1024, warning_bytes: warning * 1024, error_bytes: error * 1024 }
    }

    /// Both limits are exclusive: a page exactly at a limit is within it, so exactly 170 KiB of
    /// script against the spec's 170 KiB error limit is a warning, not an error.
    pub const fn status(&self, bytes: u64) -> BudgetStatus {
        if bytes > self.error_bytes {
            BudgetStatus::Error
        } else if bytes > self.warning_bytes {
            BudgetStatus::Warning
        } else {
            BudgetStatus::Ok
        }
    }
}

/// The budget of each resource kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    /// Scripts.
    pub javascript: Budget,
    /// Stylesheets.
    pub css: Budget,
    /// Images.
    pub images: Budget,
    /// Fonts.
    pub fonts: Budget,
}

impl Default for Budgets {
    /// The spec's NextFaster budgets: JS 170 KiB (warn 150), CSS 50 (40), images 500 (400),
    /// fonts 100 (80).
    fn default() -> Self {
        Budgets {
            javascript: Budget::from_kib(170, 150, 170),
            css: Budget::from_kib(50, 40, 50),
            images: Budget::from_kib(500, 400, 500),
            fonts: Budget::from_kib(100, 80, 100),
        }
    }
}

/// Why a set of budgets was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// A limit of 0 would flag every page that loads a single byte of that kind.
    #[error("the {kind} budget's {field} is 0: give a size in bytes greater than 0 (e.g. 170 * 1024 for 170 KiB)")]
    Zero {
        /// The budget: `javascript`, `css`, `images` or `fonts`.
        kind: &'static str,
        /// The field that is 0.
        field: &'static str,
    },
    /// The warning would never fire before the error.
    #[error(
        "the {kind} budget warns at {warning_bytes} bytes, above its error limit of {error_bytes} bytes: set warning_bytes at or below error_bytes"
    )]
    WarningAboveError {
        /// The budget: `javascript`, `css`, `images` or `fonts`.
        kind: &'static str,
        /// Its warning limit.
        warning_bytes: u64,
        /// Its error limit.
        error_bytes: u64,
    },
}

impl Budgets {
    /// The budget of a kind; `None` for [`ResourceKind::Other`].
    pub const fn for_kind(&self, kind: ResourceKind) -> Option<&Budget> {
        match kind {
            ResourceKind::Script => Some(&self.javascript),
            ResourceKind::Stylesheet => Some(&self.css),
            ResourceKind::Image => Some(&self.images),
            ResourceKind::Font => Some(&self.fonts),
            ResourceKind::Other => None,
        }
    }

    /// Checks that every limit is above 0 and that no warning sits above its error limit.
    pub fn validate(&self) -> Result<(), BudgetError> {
        let named =
            [("javascript", &self.javascript), ("css", &self.css), ("images", &self.images), ("fonts", &self.fonts)];
        for (kind, b) in named {
            for (field, value) in
                [("budget_bytes", b.budget_bytes), ("warning_bytes", b.warning_bytes), ("error_bytes", b.error_bytes)]
            {
                if value == 0 {
                    return Err(BudgetError::Zero { kind, field });
                }
            }
            if b.warning_bytes > b.error_bytes {
                return Err(BudgetError::WarningAboveError {
                    kind,
                    warning_bytes: b.warning_bytes,
                    error_bytes: b.error_bytes,
                });
            }
        }
        Ok(())
    }
}

/// Where a byte count stands against its [`Budget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetStatus {
    /// At or under the warning limit.
    Ok,
    /// Over the warning limit, at or under the error limit.
    Warning,
    /// Over the error limit.
    Error,
}

/// Transfer bytes per resource kind for one page load.
///
/// Feed it `transferSize` from Resource Timing: it measures bytes over the wire, so cached
/// resources (0 bytes) cost nothing, which is what a budget on network weight should do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetTally {
    /// Indexed like [`ResourceKind::BUDGETED`], with `Other` last.
    bytes: [u64; 5],
}

impl BudgetTally {
    /// An empty tally.
    pub const fn new() -> Self {
        BudgetTally { bytes: [0; 5] }
    }

    const fn index(kind: ResourceKind) -> usize {
        match kind {
            ResourceKind::Script => 0,
            ResourceKind::Stylesheet => 1,
            ResourceKind::Image => 2,
            ResourceKind::Font => 3,
            ResourceKind::Other => 4,
        }
    }

    /// Adds bytes of a kind (saturating: a corrupt entry cannot wrap the sum to small).
    pub fn add(&mut self, kind: ResourceKind, transfer_bytes: u64) {
        let slot = &mut self.bytes[Self::index(kind)];
        *slot = slot.saturating_add(transfer_bytes);
    }

    /// Classifies a Resource Timing entry with [`ResourceKind::from_initiator_and_url`] and adds it.
    pub fn record(&mut self, initiator_type: &str, url: &str, transfer_bytes: u64) -> ResourceKind {
        let kind = ResourceKind::from_initiator_and_url(initiator_type, url);
        self.add(kind, transfer_bytes);
        kind
    }

    /// The bytes recorded for a kind.
    pub const fn total(&self, kind: ResourceKind) -> u64 {
        self.bytes[Self::index(kind)]
    }

    /// `(kind, bytes, status)` for each budgeted kind in [`ResourceKind::BUDGETED`] order,
    /// including kinds with 0 bytes so a report always has the same four rows.
    pub fn statuses(&self, budgets: &Budgets) -> Vec<(ResourceKind, u64, BudgetStatus)> {
        ResourceKind::BUDGETED
            .into_iter()
            .filter_map(|kind| {
                let bytes = self.total(kind);
                budgets.for_kind(kind).map(|b| (kind, bytes, b.status(bytes)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_extension_then_initiator() {
        let k = ResourceKind::from_initiator_and_url;
        assert_eq!(k("script", "https://a.example/app.js"), ResourceKind::Script);
        assert_eq!(k("link", "https://a.example/chunk.MJS?v=1#x"), ResourceKind::Script);
        assert_eq!(k("link", "/styles/site.css?v=2"), ResourceKind::Stylesheet);
        assert_eq!(k("css", "/fonts/inter.woff2"), ResourceKind::Font);
        assert_eq!(k("css", "/img/bg.AVIF"), ResourceKind::Image);
        assert_eq!(k("img", "/avatar?id=42"), ResourceKind::Image);
        assert_eq!(k("script", "https://cdn.example/loader"), ResourceKind::Script);
        assert_eq!(k("fetch", "/api/users"), ResourceKind::Other);
        assert_eq!(k("link", "https://a.example/"), ResourceKind::Other);
        // The dot in the host is not an extension.
        assert_eq!(k("other", "https://cdn.js"), ResourceKind::Other);
        // A ".css" in the query string is not the file's extension.
        assert_eq!(k("fetch", "/api/file?name=x.css"), ResourceKind::Other);
        assert_eq!(k("other", "/dir.js/readme"), ResourceKind::Other);
    }

    #[test]
    fn default_budgets_are_the_spec_values_and_valid() {
        let b = Budgets::default();
        assert_eq!(b.javascript, Budget { budget_bytes: 174_080, warning_bytes: 153_600, error_bytes: 174_080 });
        assert_eq!(b.css.warning_bytes, 40_960);
        assert_eq!(b.images.error_bytes, 512_000);
        assert_eq!(b.fonts.warning_bytes, 81_920);
        assert_eq!(b.for_kind(ResourceKind::Font), Some(&b.fonts));
        assert_eq!(b.for_kind(ResourceKind::Other), None);
        assert_eq!(b.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_zero_and_inverted_limits() {
        let mut b = Budgets::default();
        b.css.warning_bytes = 0;
        assert_eq!(b.validate(), Err(BudgetError::Zero { kind: "css", field: "warning_bytes" }));
        let mut b = Budgets::default();
        b.fonts.warning_bytes = b.fonts.error_bytes + 1;
        let err = b.validate().expect_err("inverted limits");
        assert!(matches!(err, BudgetError::WarningAboveError { kind: "fonts", .. }));
        assert!(err.to_string().contains("set warning_bytes at or below error_bytes"));
    }

    #[test]
    fn limits_are_exclusive() {
        let js = Budgets::default().javascript;
        assert_eq!(js.status(0), BudgetStatus::Ok);
        assert_eq!(js.status(150 * 1024), BudgetStatus::Ok);
        assert_eq!(js.status(150 * 1024 + 1), BudgetStatus::Warning);
        assert_eq!(js.status(170 * 1024), BudgetStatus::Warning);
        assert_eq!(js.status(170 * 1024 + 1), BudgetStatus::Error);
    }

    #[test]
    fn tally_sums_per_kind_and_reports_four_rows() {
        let mut t = BudgetTally::new();
        t.record("script", "/a.js", 100 * 1024);
        t.record("script", "/b.js", 80 * 1024);
        t.record("css", "/f.woff2", 90 * 1024);
        t.record("img", "/hero.jpg", 420 * 1024);
        t.record("fetch", "/api/x", 10_000_000);
        t.add(ResourceKind::Font, u64::MAX);
        assert_eq!(t.total(ResourceKind::Other), 10_000_000);
        assert_eq!(t.total(ResourceKind::Font), u64::MAX);
        let rows = t.statuses(&Budgets::default());
        assert_eq!(
            rows,
            vec![
                (ResourceKind::Script, 180 * 1024, BudgetStatus::Error),
                (ResourceKind::Stylesheet, 0, BudgetStatus::Ok),
                (ResourceKind::Image, 420 * 1024, BudgetStatus::Warning),
                (ResourceKind::Font, u64::MAX, BudgetStatus::Error),
            ]
        );
    }
}
