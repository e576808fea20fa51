//! The business outcomes the spec's rules read: `payment_failure_rate`
//! (payment-processing-failure, above 0.1 for 1m) and `failed_login_rate`
//! (suspicious-login-activity, a sum above 10 over 1m). Nothing measured them until the
//! producers agreed on a convention; this module is that convention, shared by the browser's
//! RUM window and the server's span window.
//!
//! - A payment: the browser SDK's `payment_processed` business event (the spec's
//!   `payment-processed` DOM event) with a `status` prop, or a server span or log record named
//!   `payment.processed` (an `event.name` attribute or the record's event name counts too)
//!   with a `payment.status` attribute.
//! - A login: a server span or log record named `auth.login` with an `auth.outcome` (or
//!   `outcome`) attribute.
//!
//! A status is failed when it reads as a failure (`failed`, `failure`, `declined`, `error`,
//! `denied`, `rejected`, ...), succeeded when it reads as a success (`succeeded`, `success`,
//! `ok`, `paid`, `completed`, ...), and unknown otherwise; an unknown outcome is counted
//! (`outcome="unknown"`) but left out of the rate, so a typo in one producer does not read as
//! 0% failures. A span whose status is ERROR with no status attribute is a failure.

/// The two outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A payment attempt.
    Payment,
    /// A login attempt.
    Login,
}

impl Outcome {
    /// The counter of attempts (`payments{outcome}`, `logins{outcome}`).
    pub fn count_metric(self) -> &'static str {
        match self {
            Outcome::Payment => "payments",
            Outcome::Login => "logins",
        }
    }

    /// The metric the spec's rule reads.
    pub fn rule_metric(self) -> &'static str {
        match self {
            Outcome::Payment => "payment_failure_rate",
            Outcome::Login => "failed_login_rate",
        }
    }

    /// The rule metric's value from a window's succeeded and failed attempts: payments as the
    /// failed fraction (None without a known outcome), logins as the failed count (the spec's
    /// rule sums it over a minute).
    pub fn rule_value(self, succeeded: f64, failed: f64) -> Option<f64> {
        match self {
            Outcome::Payment => (succeeded + failed > 0.0).then(|| failed / (succeeded + failed)),
            Outcome::Login => (succeeded + failed > 0.0).then_some(failed),
        }
    }

    /// The attributes (server) that hold the outcome, first match wins.
    pub fn status_keys(self) -> &'static [&'static str] {
        match self {
            Outcome::Payment => &["payment.status", "status"],
            Outcome::Login => &["auth.outcome", "login.outcome", "outcome"],
        }
    }
}

/// The browser SDK's business event for a payment.
pub const BROWSER_PAYMENT_EVENT: &str = "payment_processed";

/// The outcome a server span or log record named `name` reports, if any.
pub fn server_event(name: &str) -> Option<Outcome> {
    match name {
        "payment.processed" => Some(Outcome::Payment),
        "auth.login" => Some(Outcome::Login),
        _ => None,
    }
}

/// The label value of a status: `failed`, `succeeded` or `unknown`.
pub fn classify(status: Option<&str>) -> &'static str {
    const FAILED: [&str; 11] = [
        "failed", "failure", "fail", "declined", "error", "errored", "denied", "rejected", "invalid", "blocked",
        "false",
    ];
    const SUCCEEDED: [&str; 10] =
        ["succeeded", "success", "successful", "ok", "paid", "completed", "complete", "approved", "authorized", "true"];
    let Some(s) = status.map(str::trim) else { return "unknown" };
    if FAILED.iter().any(|f| f.eq_ignore_ascii_case(s)) {
        "failed"
    } else if SUCCEEDED.iter().any(|f| f.eq_ignore_ascii_case(s)) {
        "succeeded"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_people_write_them() {
        assert_eq!(classify(Some("FAILED")), "failed");
        assert_eq!(classify(Some(" declined ")), "failed");
        assert_eq!(classify(Some("succeeded")), "succeeded");
        assert_eq!(classify(Some("paid")), "succeeded");
        assert_eq!(classify(Some("pending")), "unknown");
        assert_eq!(classify(None), "unknown");
        assert_eq!(server_event("payment.processed"), Some(Outcome::Payment));
        assert_eq!(server_event("auth.login"), Some(Outcome::Login));
        assert_eq!(server_event("GET /login"), None);
    }

    #[test]
    fn rule_values() {
        assert_eq!(Outcome::Payment.rule_value(9.0, 1.0), Some(0.1));
        assert_eq!(Outcome::Payment.rule_value(0.0, 0.0), None);
        assert_eq!(Outcome::Login.rule_value(3.0, 12.0), Some(12.0));
    }
}
