//! Business context from a URL path: which business process and which industry a page belongs
//! to, as the spec's `getCurrentBusinessProcess` and `getCurrentIndustry` work it out.
//!
//! ```
//! use thorbis_obs_core::domain::context::ContextRules;
//!
//! let ctx = ContextRules::default().resolve("/hs/invoices/42?tab=lines");
//! assert_eq!(ctx.process, "invoicing");
//! assert_eq!(ctx.industry, "home-services");
//! ```

use serde::{Deserialize, Serialize};

/// What a path resolves to when no rule matches.
pub const UNKNOWN: &str = "unknown";

/// Path-fragment rules, checked in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextRules {
    /// `(path fragment, business process)`.
    pub processes: Vec<(String, String)>,
    /// `(path fragment, industry)`.
    pub industries: Vec<(String, String)>,
}

impl Default for ContextRules {
    /// The spec's mappings, in the spec's order.
    fn default() -> Self {
        let pairs = |list: &[(&str, &str)]| list.iter().map(|&(f, v)| (f.to_string(), v.to_string())).collect();
        ContextRules {
            processes: pairs(&[
                ("/work-orders", "work-orders"),
                ("/invoices", "invoicing"),
                ("/customers", "customer-management"),
            ]),
            industries: pairs(&[
                ("/hs/", "home-services"),
                ("/rest/", "restaurant"),
                ("/auto/", "automotive"),
                ("/ret/", "retail"),
            ]),
        }
    }
}

/// The business context of a page.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BusinessContext {
    /// The business process, or [`UNKNOWN`].
    pub process: String,
    /// The industry, or [`UNKNOWN`].
    pub industry: String,
}

impl ContextRules {
    /// Resolves a path: for each list, the first rule whose fragment the path contains wins, like
    /// the spec's chain of `includes`; no match gives [`UNKNOWN`].
    ///
    /// The query string and fragment are ignored, so `/x?next=/invoices` is not invoicing. The
    /// path is matched as if it ended with `/`: the spec's `"/hs/"` needs the slash after the
    /// segment, yet `/hs` is as much the home-services root as `/hs/jobs`. Matching is
    /// case-sensitive, and empty fragments never match (an empty string is in every path, so a
    /// stray `""` would claim every page).
    pub fn resolve(&self, path: &str) -> BusinessContext {
        let path = path.find(['?', '#']).map_or(path, |i| &path[..i]);
        BusinessContext {
            process: first_match(&self.processes, path).to_string(),
            industry: first_match(&self.industries, path).to_string(),
        }
    }
}

fn first_match<'a>(rules: &'a [(String, String)], path: &str) -> &'a str {
    rules.iter().find(|(fragment, _)| matches_with_trailing_slash(path, fragment)).map_or(UNKNOWN, |(_, v)| v)
}

/// Whether `path + "/"` contains `fragment`, without building the string: only a fragment ending
/// in `/` can use the appended slash, and then only as its last byte.
fn matches_with_trailing_slash(path: &str, fragment: &str) -> bool {
    if fragment.is_empty() {
        return false;
    }
    path.contains(fragment) || fragment.strip_suffix('/').is_some_and(|head| !head.is_empty() && path.ends_with(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(path: &str) -> (String, String) {
        let ctx = ContextRules::default().resolve(path);
        (ctx.process, ctx.industry)
    }

    #[test]
    fn spec_mappings() {
        assert_eq!(resolve("/hs/work-orders/17"), ("work-orders".into(), "home-services".into()));
        assert_eq!(resolve("/rest/customers"), ("customer-management".into(), "restaurant".into()));
        assert_eq!(resolve("/auto/invoices/new"), ("invoicing".into(), "automotive".into()));
        assert_eq!(resolve("/ret/"), (UNKNOWN.into(), "retail".into()));
        assert_eq!(resolve("/settings"), (UNKNOWN.into(), UNKNOWN.into()));
        assert_eq!(resolve(""), (UNKNOWN.into(), UNKNOWN.into()));
    }

    #[test]
    fn first_rule_wins_in_spec_order() {
        // Both fragments are present: the spec checks work orders before invoices.
        assert_eq!(resolve("/invoices/work-orders").0, "work-orders");
        assert_eq!(resolve("/ret/hs/").1, "home-services");
    }

    #[test]
    fn trailing_segment_matches_but_prefixes_do_not() {
        assert_eq!(resolve("/hs").1, "home-services");
        assert_eq!(resolve("/app/auto").1, "automotive");
        assert_eq!(resolve("/hsx/jobs").1, UNKNOWN);
        assert_eq!(resolve("/restaurants/menu").1, UNKNOWN);
        // The spec's process fragments have no trailing slash, so they match as prefixes.
        assert_eq!(resolve("/customers-export").0, "customer-management");
    }

    #[test]
    fn query_and_fragment_are_ignored() {
        assert_eq!(resolve("/settings?next=/invoices"), (UNKNOWN.into(), UNKNOWN.into()));
        assert_eq!(resolve("/dashboard#/hs/"), (UNKNOWN.into(), UNKNOWN.into()));
        assert_eq!(resolve("/hs?x=1").1, "home-services");
    }

    #[test]
    fn custom_rules_round_trip_and_skip_empty_fragments() {
        let rules = ContextRules {
            processes: vec![(String::new(), "everything".into()), ("/jobs".into(), "scheduling".into())],
            industries: vec![("/pl/".into(), "plumbing".into())],
        };
        let ctx = rules.resolve("/pl/jobs");
        assert_eq!(ctx, BusinessContext { process: "scheduling".into(), industry: "plumbing".into() });
        assert_eq!(rules.resolve("/other").process, UNKNOWN);
        let json = serde_json::to_string(&ContextRules::default()).expect("serialise");
        let back: ContextRules = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, ContextRules::default());
    }
}
