//! Checks an HTTP answer against an [`Expect`]: status, response time, headers, body text,
//! body regex, JSON paths, certificate expiry. The first rule that fails is the verdict.

use super::config::{Expect, StatusRange};
use regex::Regex;
use std::time::Duration;

/// Default cap on the body bytes read and checked.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// What the check saw.
#[derive(Clone, Debug, Default)]
pub struct Answer<'a> {
    /// HTTP status.
    pub status: u16,
    /// Time until the body was read.
    pub elapsed: Duration,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body (at most the cap).
    pub body: &'a [u8],
    /// Seconds until the leaf certificate expires (HTTPS only).
    pub cert_expires_in: Option<f64>,
}

/// The rule that failed and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Rule name: `status`, `response_time`, `header`, `body_contains`, `body_not_contains`,
    /// `body_regex`, `json`, `certificate`, `connect`, `timeout`, `tls`, `request`.
    pub rule: &'static str,
    /// What was seen against what was wanted.
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// An [`Expect`] with its patterns compiled and its JSON paths parsed.
#[derive(Clone, Debug)]
pub struct CompiledExpect {
    status: Vec<StatusRange>,
    max_response_time: Option<Duration>,
    body_contains: Option<String>,
    body_not_contains: Option<String>,
    body_regex: Option<Regex>,
    json: Vec<(String, Vec<PathStep>, serde_json::Value)>,
    headers: Vec<(String, Regex)>,
    cert_min: Option<Duration>,
    /// Body bytes read at most.
    pub max_body_bytes: usize,
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// Parses `a.b[0].c` (optionally `$.a...`): keys separated by dots, array indices in brackets.
/// Written by hand: Gatus' `[BODY].a.b[0]` subset is all users write, and full JSONPath
/// (filters, wildcards) has no single answer to "equals".
fn parse_path(path: &str) -> Result<Vec<PathStep>, String> {
    let p = path.trim();
    let p = p.strip_prefix("$.").or_else(|| p.strip_prefix('$')).unwrap_or(p);
    let mut steps = Vec::new();
    for part in p.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(PathStep::Key(key.to_string()));
        } else if rest.is_empty() {
            return Err(format!("JSON path {path:?} has an empty segment"));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| format!("JSON path {path:?}: unclosed '['"))?;
            let i = r[..end]
                .parse::<usize>()
                .map_err(|_| format!("JSON path {path:?}: {:?} is not an index", &r[..end]))?;
            steps.push(PathStep::Index(i));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("JSON path {path:?}: unexpected {rest:?}"));
        }
    }
    if steps.is_empty() {
        return Err(format!("JSON path {path:?} is empty"));
    }
    Ok(steps)
}

fn lookup<'v>(mut v: &'v serde_json::Value, steps: &[PathStep]) -> Option<&'v serde_json::Value> {
    for s in steps {
        v = match s {
            PathStep::Key(k) => v.get(k)?,
            PathStep::Index(i) => v.get(*i)?,
        };
    }
    Some(v)
}

impl CompiledExpect {
    /// Compiles; the error names the field.
    pub fn new(e: &Expect) -> Result<Self, String> {
        let body_regex = e
            .body_regex
            .as_deref()
            .map(|r| Regex::new(r).map_err(|err| format!("expect.body_regex: {err}")))
            .transpose()?;
        let mut headers = Vec::new();
        for (name, pattern) in &e.headers {
            let re = Regex::new(pattern).map_err(|err| format!("expect.headers.{name}: {err}"))?;
            headers.push((name.to_ascii_lowercase(), re));
        }
        let mut json = Vec::new();
        for (path, want) in &e.json {
            let steps = parse_path(path).map_err(|err| format!("expect.json: {err}"))?;
            json.push((path.clone(), steps, want.clone()));
        }
        if e.max_body_bytes == Some(0) {
            return Err("expect.max_body_bytes: must be at least 1".into());
        }
        Ok(CompiledExpect {
            status: e.status.clone(),
            max_response_time: e.max_response_time.map(|d| d.get()),
            body_contains: e.body_contains.clone(),
            body_not_contains: e.body_not_contains.clone(),
            body_regex,
            json,
            headers,
            cert_min: e.cert_expires_in_more_than.map(|d| d.get()),
            max_body_bytes: e.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        })
    }

    /// True when a rule reads the body (otherwise the check need not download it).
    pub fn reads_body(&self) -> bool {
        self.body_contains.is_some()
            || self.body_not_contains.is_some()
            || self.body_regex.is_some()
            || !self.json.is_empty()
    }

    /// Checks an answer; the first failing rule wins, in the order of the fields.
    pub fn check(&self, a: &Answer<'_>) -> Result<(), Failure> {
        let fail = |rule, detail: String| Err(Failure { rule, detail });
        let status_ok = if self.status.is_empty() {
            (200..=399).contains(&a.status)
        } else {
            self.status.iter().any(|r| r.contains(a.status))
        };
        if !status_ok {
            let want = if self.status.is_empty() {
                "200-399".to_string()
            } else {
                self.status.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ")
            };
            return fail("status", format!("got {}, want {want}", a.status));
        }
        if let Some(max) = self.max_response_time {
            if a.elapsed > max {
                return fail(
                    "response_time",
                    format!("took {} ms, want < {} ms", a.elapsed.as_millis(), max.as_millis()),
                );
            }
        }
        for (name, re) in &self.headers {
            match a.headers.iter().find(|(n, _)| n == name) {
                None => return fail("header", format!("{name} is missing")),
                Some((_, v)) if !re.is_match(v) => {
                    return fail("header", format!("{name}: {v:?} does not match {:?}", re.as_str()));
                }
                Some(_) => {}
            }
        }
        let body = String::from_utf8_lossy(a.body);
        if let Some(want) = &self.body_contains {
            if !body.contains(want.as_str()) {
                return fail("body_contains", format!("the body does not contain {want:?}"));
            }
        }
        if let Some(unwanted) = &self.body_not_contains {
            if body.contains(unwanted.as_str()) {
                return fail("body_not_contains", format!("the body contains {unwanted:?}"));
            }
        }
        if let Some(re) = &self.body_regex {
            if !re.is_match(&body) {
                return fail("body_regex", format!("the body does not match {:?}", re.as_str()));
            }
        }
        if !self.json.is_empty() {
            let doc: serde_json::Value = match serde_json::from_slice(a.body) {
                Ok(v) => v,
                Err(e) => return fail("json", format!("the body is not JSON: {e}")),
            };
            for (path, steps, want) in &self.json {
                match lookup(&doc, steps) {
                    None => return fail("json", format!("{path} is missing")),
                    Some(got) if got != want => return fail("json", format!("{path} is {got}, want {want}")),
                    Some(_) => {}
                }
            }
        }
        if let (Some(min), Some(left)) = (self.cert_min, a.cert_expires_in) {
            if left <= min.as_secs_f64() {
                let days = left / 86_400.0;
                return fail(
                    "certificate",
                    format!("expires in {days:.1} days, want more than {:.1}", min.as_secs_f64() / 86_400.0),
                );
            }
        }
        Ok(())
    }

    /// True when the certificate rule is set (the check then needs a certificate to pass).
    pub fn wants_certificate(&self) -> bool {
        self.cert_min.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(toml_text: &str) -> CompiledExpect {
        CompiledExpect::new(&toml::from_str::<Expect>(toml_text).unwrap()).unwrap()
    }

    fn answer(status: u16, body: &'static str) -> Answer<'static> {
        Answer {
            status,
            elapsed: Duration::from_millis(20),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes(),
            cert_expires_in: None,
        }
    }

    #[test]
    fn default_accepts_2xx_and_3xx_only() {
        let e = expect("");
        assert!(e.check(&answer(204, "")).is_ok());
        assert!(e.check(&answer(302, "")).is_ok());
        let f = e.check(&answer(500, "")).unwrap_err();
        assert_eq!((f.rule, f.detail.as_str()), ("status", "got 500, want 200-399"));
    }

    #[test]
    fn each_rule_names_itself() {
        let e = expect(
            r#"status = [200, "204"]
max_response_time = "10ms"
body_contains = "ok"
json = { "data.items[1].state" = "up", "$.n" = 3 }
headers = { "Content-Type" = "^application/json" }"#,
        );
        assert_eq!(e.check(&answer(201, "ok")).unwrap_err().rule, "status");
        assert_eq!(e.check(&answer(200, "ok")).unwrap_err().rule, "response_time");
        let e = expect(
            r#"body_contains = "ok"
json = { "data.items[1].state" = "up", "$.n" = 3 }
headers = { "Content-Type" = "^application/json" }"#,
        );
        assert_eq!(e.check(&answer(200, "nope")).unwrap_err().rule, "body_contains");
        assert_eq!(e.check(&answer(200, "ok <html>")).unwrap_err().rule, "json");
        let wrong = r#"{"ok":1,"n":3,"data":{"items":[{"state":"up"},{"state":"down"}]}}"#;
        let f = e.check(&answer(200, wrong)).unwrap_err();
        assert_eq!(f.detail, r#"data.items[1].state is "down", want "up""#);
        let right = r#"{"ok":1,"n":3,"data":{"items":[{"state":"up"},{"state":"up"}]}}"#;
        assert!(e.check(&answer(200, right)).is_ok());
        let mut a = answer(200, right);
        a.headers.clear();
        assert_eq!(e.check(&a).unwrap_err().detail, "content-type is missing");
    }

    #[test]
    fn certificate_and_bad_patterns() {
        let e = expect(r#"cert_expires_in_more_than = "7d""#);
        let mut a = answer(200, "");
        a.cert_expires_in = Some(2.0 * 86_400.0);
        assert_eq!(e.check(&a).unwrap_err().detail, "expires in 2.0 days, want more than 7.0");
        a.cert_expires_in = Some(30.0 * 86_400.0);
        assert!(e.check(&a).is_ok());
        let bad = toml::from_str::<Expect>(r#"body_regex = "(""#).unwrap();
        assert!(CompiledExpect::new(&bad).unwrap_err().starts_with("expect.body_regex"));
        for p in ["a..b", "a[x]", "a[0", "$"] {
            assert!(parse_path(p).is_err(), "{p}");
        }
        assert_eq!(
            parse_path("$.a[2][0]").unwrap(),
            vec![PathStep::Key("a".into()), PathStep::Index(2), PathStep::Index(0)]
        );
    }
}
