//! Alert rules in the spec's shape, their validation and the built-in rule packs.
//!
//! A rule file holds a top-level `rules` list, in YAML, TOML or JSON. Field names are
//! snake_case; the spec's camelCase names (`suppressionRules`, `keepFiringFor`, `noData`,
//! `repeatInterval`) are accepted too. Unknown fields are errors, so a typo never silently
//! disables part of a rule.
//!
//! ```yaml
//! rules:
//!   - id: high-response-time
//!     name: High Response Time
//!     metric: http_request_duration
//!     matchers: { service: api }          # or ['service="api"', 'route=~"/api/.*"']
//!     condition: { operator: greater_than, threshold: 2000, duration: 5m, aggregation: avg }
//!     for: 0s                             # pending time (Prometheus semantics)
//!     severity: warning
//!     channels: [slack, email]
//!     escalation:
//!       - { after: 10m, severity: error, channels: [slack, email, sms] }
//!     suppressionRules:
//!       - { condition: deployment_in_progress, duration: 30m }
//! ```

pub mod coverage;
pub mod humanize;
mod matcher;
mod model;
pub mod packs;
mod validate;

pub use matcher::{MatchOp, Matcher, MatcherError, Matchers};
pub use model::{AlertRule, Condition, EscalationStep, NoDataPolicy, Operator, RuleFile, Severity, SuppressionRule};
pub use validate::{RuleError, ValidateOptions, validate_rules};
