//! Privacy: what must never leave the browser, applied by the SDK and again by the collector.

/// Query parameters whose values are always redacted.
const SECRET_KEYS: [&str; 12] = [
    "token",
    "access_token",
    "id_token",
    "key",
    "api_key",
    "apikey",
    "secret",
    "password",
    "pass",
    "auth",
    "code",
    "session",
];

/// Redacts emails anywhere in a URL and the values of secret-looking query parameters
/// (`?token=...`, `&password=...`, and any value holding an `@`).
pub fn scrub_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = scrub_emails(base);
    if let Some(q) = query {
        let (q, frag) = match q.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (q, None),
        };
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = k.to_ascii_lowercase();
            let secret = SECRET_KEYS.iter().any(|s| lower == *s || lower.ends_with(&["_", s].concat()));
            out.push_str(k);
            if pair.contains('=') {
                out.push('=');
                if secret || v.contains('@') || v.contains("%40") {
                    out.push_str("[redacted]");
                } else {
                    out.push_str(v);
                }
            }
        }
        if let Some(f) = frag {
            out.push('#');
            out.push_str(&scrub_emails(f));
        }
    }
    out
}

/// Replaces `local@domain` runs with `[email]`.
fn scrub_emails(s: &str) -> String {
    if !s.contains('@') && !s.contains("%40") {
        return s.to_string();
    }
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '%');
    let mut out = String::with_capacity(s.len());
    for (i, token) in s.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if (token.contains('@') || token.contains("%40")) && token.chars().all(|c| word(c) || c == '@') {
            out.push_str("[email]");
            continue;
        }
        out.push_str(token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scrub_url;

    #[test]
    fn urls_lose_emails_and_tokens() {
        assert_eq!(
            scrub_url("https://a.example/u/jo@x.io/p?token=abc&q=shoes&email=jo%40x.io#f"),
            "https://a.example/u/[email]/p?token=[redacted]&q=shoes&email=[redacted]#f"
        );
        assert_eq!(scrub_url("/orders?id=7&reset_password=x"), "/orders?id=7&reset_password=[redacted]");
        assert_eq!(scrub_url("/plain"), "/plain");
    }
}
