//! Decoding a batch body: size, JSON, the SDK's broken strings, core's wire rules.

use axum::http::StatusCode;
use std::borrow::Cow;
use thorbis_obs_core::wire::{self, Batch};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// What was wrong.
    pub message: String,
    /// The field, e.g. `events[3].value`, when one is to blame.
    pub field: Option<String>,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl Rejection {
    pub(super) fn new(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Self {
        Rejection { status, message: message.into(), field: field.map(str::to_string), retry_after: None }
    }

    pub(super) fn outcome(&self) -> usize {
        match self.status.as_u16() {
            400 => 1,
            401 | 403 => 2,
            413 | 415 => 3,
            429 => 4,
            _ => 5,
        }
    }
}

/// Decodes and validates one batch body: size, JSON (lone UTF-16 surrogates, which the page's
/// `JSON.stringify` writes for broken strings, become U+FFFD instead of failing the batch), and
/// core's wire rules. Never panics, whatever the bytes.
pub fn decode(body: &[u8]) -> Result<Batch, Rejection> {
    if let Err(e) = wire::check_size(body.len()) {
        return Err(Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, e.message(), None));
    }
    let body = replace_lone_surrogates(body);
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        // Parsed again to name the field: tracking the path costs the happy path a third.
        Err(plain) => {
            let de = &mut serde_json::Deserializer::from_slice(&body);
            let e = match serde_path_to_error::deserialize::<_, Batch>(de) {
                Ok(_) => return Err(Rejection::new(StatusCode::BAD_REQUEST, plain.to_string(), None)),
                Err(e) => e,
            };
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            return Err(Rejection::new(StatusCode::BAD_REQUEST, e.into_inner().to_string(), field.as_deref()));
        }
    };
    batch.validate().map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.message(), Some(e.path())))?;
    Ok(batch)
}

/// `\uD800`-`\uDBFF` not followed by `\uDC00`-`\uDFFF`, or a trailing surrogate alone, become
/// `\uFFFD`. The body is borrowed unchanged when it has no `\u` escape of a surrogate.
fn replace_lone_surrogates(body: &[u8]) -> Cow<'_, [u8]> {
    let surrogate_at = |b: &[u8], i: usize| -> Option<u16> {
        let esc = b.get(i..i + 6)?;
        if esc[0] != b'\\' || esc[1] != b'u' {
            return None;
        }
        let hex = std::str::from_utf8(&esc[2..]).ok()?;
        u16::from_str_radix(hex, 16).ok().filter(|u| (0xD800..=0xDFFF).contains(u))
    };
    if !memchr::memmem::find_iter(body, b"\\u").any(|i| matches!(body.get(i + 2), Some(b'd' | b'D'))) {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            // An escaped backslash is not the start of an escape: copy both.
            if body.get(i + 1) == Some(&b'\\') {
                out.extend_from_slice(b"\\\\");
                i += 2;
                continue;
            }
            if let Some(u) = surrogate_at(body, i) {
                let paired = (0xD800..=0xDBFF).contains(&u)
                    && surrogate_at(body, i + 6).is_some_and(|l| (0xDC00..=0xDFFF).contains(&l));
                if paired {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                } else {
                    out.extend_from_slice(b"\\uFFFD");
                    i += 6;
                }
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let body = br#"{"a":"x\ud83d","b":"\ud83d\ude00","c":"\\ud800","d":"\udc00y"}"#;
        let fixed = replace_lone_surrogates(body);
        let v: serde_json::Value = serde_json::from_slice(&fixed).expect("parses now");
        assert_eq!(v["a"], "x\u{fffd}");
        assert_eq!(v["b"], "\u{1f600}", "a pair is kept");
        assert_eq!(v["c"], "\\ud800", "an escaped backslash is text");
        assert_eq!(v["d"], "\u{fffd}y");
        assert!(matches!(replace_lone_surrogates(br#"{"a":"plain \u00e9"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn decode_names_the_field() {
        let e = decode(br#"{"v":1}"#).expect_err("incomplete");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("missing field"), "{e:?}");
        let e = decode(b"not json").expect_err("garbage");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = decode(&vec![b' '; 70_000]).expect_err("big");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
