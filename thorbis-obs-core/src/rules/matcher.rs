use crate::metrics::Labels;
use regex::Regex;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A label matcher operator, as in PromQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored regex)
    Regex,
    /// `!~`
    NotRegex,
}

/// One `name op "value"` matcher. A missing label matches as the empty string, as in PromQL.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or pattern as written.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

/// Why a matcher was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid matcher {input:?}: {problem}")]
pub struct MatcherError {
    /// The matcher text.
    pub input: String,
    /// What is wrong.
    pub problem: String,
}

impl Matcher {
    /// Builds a matcher, compiling regexes anchored at both ends.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, MatcherError> {
        let err = |p: String| MatcherError { input: format!("{name}{}{value:?}", op.symbol()), problem: p };
        if !crate::metrics::is_valid_name(name, false) {
            return Err(err("label name must match [a-zA-Z_][a-zA-Z0-9_]*".into()));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| err(format!("bad regex: {e}")))?)
            }
            _ => None,
        };
        Ok(Matcher { name: name.to_string(), op, value: value.to_string(), regex })
    }

    /// Parses `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"` (quotes optional).
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let t = text.trim();
        let (pos, op, len) = ["!=", "=~", "!~", "="]
            .iter()
            .filter_map(|sym| t.find(sym).map(|p| (p, *sym)))
            .min_by_key(|(p, sym)| (*p, usize::MAX - sym.len()))
            .map(|(p, sym)| {
                let op = match sym {
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    _ => MatchOp::Equal,
                };
                (p, op, sym.len())
            })
            .ok_or_else(|| MatcherError {
                input: text.to_string(),
                problem: "expected name=\"value\" (or !=, =~, !~)".into(),
            })?;
        let name = t[..pos].trim();
        let raw = t[pos + len..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
            .unwrap_or(raw);
        Matcher::new(name, op, value)
    }

    /// True when `labels` satisfy this matcher.
    #[inline]
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).unwrap_or("");
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            _ => false,
        }
    }
}

impl MatchOp {
    /// The PromQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.symbol(), self.value)
    }
}

/// All matchers must hold. Written as a map (`{service: api}`, equality) or a list of PromQL
/// matcher strings (`['service="api"', 'status=~"5.."']`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// True when every matcher holds.
    #[inline]
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Matchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| m.to_string()))
    }
}

impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Matchers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label: value, or a list of matchers like 'service=\"api\"'")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matchers, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push(Matcher::new(&k, MatchOp::Equal, &v).map_err(de::Error::custom)?);
                }
                Ok(Matchers(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Matchers, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(Matcher::parse(&s).map_err(de::Error::custom)?);
                }
                Ok(Matchers(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_promql_matchers() {
        let l = Labels::new().with("status", "503").with("service", "api");
        for (text, want) in [
            ("service=\"api\"", true),
            ("service!=\"api\"", false),
            ("status=~\"5..\"", true),
            ("status!~'5..'", false),
            ("route=\"\"", true),
            ("status=~\"0\"", false),
        ] {
            let m = Matcher::parse(text).expect(text);
            assert_eq!(m.matches(&l), want, "{text}");
        }
        assert!(Matcher::parse("status=~\"(\"").unwrap_err().to_string().contains("bad regex"));
        assert!(Matcher::parse("no operator").is_err());
    }
}
