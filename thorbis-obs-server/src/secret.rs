//! Secrets and `${ENV_VAR}` references in config values, and URLs with their credentials cut
//! out for logs and errors. A leaf: it imports nothing of this crate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Expands `${NAME}` references from the environment. `$${` escapes a literal `${`.
/// A reference to an unset variable is an error naming it.
pub fn expand_env(text: &str) -> Result<String, String> {
    expand_with(text, |name| std::env::var(name).ok())
}

/// [`expand_env`] with an explicit lookup, for tests.
pub fn expand_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end =
            after.find('}').ok_or_else(|| format!("unterminated ${{...}} reference in {:?}", redact_hint(text)))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid environment variable name {name:?} in ${{...}}"));
        }
        let value = lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Shows only the shape of a value in errors: never the value itself.
/// `scheme://user:password@host/db` without the credentials: `scheme://host/db`, for logs,
/// errors and `Debug` output.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn redact_hint(text: &str) -> String {
    format!("<{} characters>", text.chars().count())
}

/// A string from config that is never printed: Debug and Display show `***`. Written as a
/// literal or as `${ENV_VAR}` references, expanded when the config is read.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (an Authorization header, a login).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `given` is the secret, compared in constant time (a guess's matching prefix
    /// does not show in the answer's timing).
    pub fn matches(&self, given: &str) -> bool {
        constant_time_eq(given, &self.0)
    }
}

/// Equal strings, compared in time that does not depend on where they differ (only on the
/// length): for tokens, where a prefix must not leak through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw).map(Secret).map_err(serde::de::Error::custom)
    }
}

/// True for an `http://` or `https://` URL with something after the scheme and no whitespace
/// (what every configured endpoint must be; the client parses it fully when used).
pub fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

/// A plain config string (a path, a URL without credentials) with `${ENV_VAR}` expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EnvString(pub String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw).map(EnvString).map_err(serde::de::Error::custom)
    }
}

impl std::ops::Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_escapes() {
        let env = |n: &str| (n == "TOKEN").then(|| "s3cr3t".to_string());
        assert_eq!(expand_with("Bearer ${TOKEN}", env).unwrap(), "Bearer s3cr3t");
        assert_eq!(expand_with("$${TOKEN}", env).unwrap(), "${TOKEN}");
        assert_eq!(expand_with("${MISSING}", env).unwrap_err(), "environment variable MISSING is not set");
        assert!(expand_with("${TOKEN", env).unwrap_err().contains("unterminated"));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    }
}
