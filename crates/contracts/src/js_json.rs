//! JSON text as a JavaScript sender means it, read into a `serde_json::Value`.
//!
//! A JS string is UTF-16 and may hold an unpaired surrogate (a string cut in
//! the middle of an emoji, say). `JSON.stringify` writes one as a `\udXXX`
//! escape and `JSON.parse` reads it back, but a Rust string cannot hold it,
//! so serde_json refuses the text. Here such an escape becomes U+FFFD, the
//! replacement character; everything else is read exactly as serde_json
//! reads it. Signatures are computed over the original text (`canonical`
//! keeps the surrogate), never over this reading.
//!
//! Pure: no I/O.

use serde_json::Value;

/// Parses `text`, reading each unpaired surrogate escape as U+FFFD.
pub fn parse_value(text: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(text).or_else(|first| match replace_lone_surrogates(text) {
        Some(fixed) => serde_json::from_slice(&fixed),
        None => Err(first),
    })
}

/// `text` with every `\uXXXX` escape of an unpaired surrogate inside a string
/// replaced by `\ufffd`; `None` when there is none to replace.
fn replace_lone_surrogates(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut changed = false;
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if !in_string {
            in_string = b == b'"';
            out.push(b);
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = false;
                out.push(b);
                i += 1;
            }
            b'\\' => match unit_at(text, i) {
                Some(0xD800..=0xDBFF) if matches!(unit_at(text, i + 6), Some(0xDC00..=0xDFFF)) => {
                    // A pair: both escapes stay as they are.
                    out.extend_from_slice(&text[i..i + 12]);
                    i += 12;
                }
                Some(0xD800..=0xDFFF) => {
                    out.extend_from_slice(br"\ufffd");
                    changed = true;
                    i += 6;
                }
                Some(_) => {
                    out.extend_from_slice(&text[i..i + 6]);
                    i += 6;
                }
                // Any other escape: the backslash and the character it escapes.
                None => {
                    let end = (i + 2).min(text.len());
                    out.extend_from_slice(&text[i..end]);
                    i = end;
                }
            },
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

/// The UTF-16 unit of a `\uXXXX` escape starting at `at`, if one does.
fn unit_at(text: &[u8], at: usize) -> Option<u16> {
    let escape = text.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> Option<String> {
        replace_lone_surrogates(text.as_bytes()).map(|v| String::from_utf8(v).unwrap_or_default())
    }

    #[test]
    fn only_unpaired_surrogate_escapes_inside_strings_are_replaced() {
        assert_eq!(
            fixed(r#"{"a":"x\ud83dy"}"#).as_deref(),
            Some(r#"{"a":"x\ufffdy"}"#)
        );
        assert_eq!(fixed(r#"["\udc00"]"#).as_deref(), Some(r#"["\ufffd"]"#));
        // A reversed pair is two lone surrogates.
        assert_eq!(
            fixed(r#"["\udc00\ud800"]"#).as_deref(),
            Some(r#"["\ufffd\ufffd"]"#)
        );
        // A high one before a non-surrogate escape is lone too.
        assert_eq!(
            fixed(r#"["\uD800\u0041"]"#).as_deref(),
            Some(r#"["\ufffd\u0041"]"#)
        );
        // Nothing to replace: pairs, other escapes, an escaped backslash
        // before `ud800` text, and a trailing lone backslash.
        assert_eq!(fixed(r#"["\ud83d\ude00","\u00e9\n\"","\\ud800"]"#), None);
        assert_eq!(fixed(r#"{"\\":"\\"}"#), None);
        assert_eq!(fixed("[\"\\"), None);
    }

    #[test]
    fn parse_value_reads_what_serde_json_reads_and_lone_surrogates_as_fffd() {
        let v =
            parse_value(br#"{"k":"cut \ud83d, pair \ud83d\ude00","n":1.5}"#).unwrap_or_default();
        assert_eq!(v["k"], "cut \u{fffd}, pair \u{1F600}");
        assert_eq!(v["n"], 1.5);
        // Still not JSON: the first error is the one reported.
        let err = parse_value(b"{\"k\": }").map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("expected value"), "{err}");
        assert!(parse_value(br#"{"k":"\ud83d""#).is_err());
    }
}
