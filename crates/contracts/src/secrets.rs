//! Secret-like text detection and redaction, hand-written (no regex engine).
//!
//! Used by validators (`UNTRUSTED_CONTEXT_BLOCK`) and by anything that must scrub
//! text before writing it (worklogs, audit logs). It errs towards flagging: a
//! false positive costs a rewrite, a false negative leaks a credential.

use std::ops::Range;

/// What [`redact`] puts in place of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Whether `text` contains anything that looks like a credential: provider API
/// keys (`sk-…`, `ghp_…`, `AKIA…`, …), `Bearer <token>`, PEM private keys, or
/// `password=…` / `secret: …` / `token=…` / `api_key=…` style assignments.
pub fn looks_secret(text: &str) -> bool {
    !secret_spans(text).is_empty()
}

/// `text` with every secret span replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in secret_spans(text) {
        out.push_str(&text[at..span.start]);
        out.push_str(REDACTED);
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Byte ranges of the secret values in `text`, sorted and non-overlapping.
/// For assignments and bearer tokens only the value is covered, so redaction
/// keeps the key (`password=[REDACTED]`).
pub fn secret_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    prefixed_tokens(b, &mut spans);
    aws_key_ids(b, &mut spans);
    bearer_tokens(b, &mut spans);
    private_keys(text, &mut spans);
    assignments(b, &mut spans);
    spans.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// True when the byte before `i` does not continue a word.
fn word_start(b: &[u8], i: usize) -> bool {
    i == 0 || !b[i - 1].is_ascii_alphanumeric()
}

fn run_len(b: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    b[from..].iter().take_while(|&&c| ok(c)).count()
}

fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    // Checking the first byte inline before comparing the rest keeps this a
    // plain byte scan: audited payloads are scanned once per pattern.
    let first = needle.first().copied();
    (0..hay.len().saturating_sub(needle.len().saturating_sub(1)))
        .filter(move |&i| Some(hay[i]) == first && hay[i..].starts_with(needle))
}

/// Provider tokens recognised by a fixed prefix and a minimum body length.
fn prefixed_tokens(b: &[u8], spans: &mut Vec<Range<usize>>) {
    fn key_char(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
    }
    const PREFIXES: &[(&str, usize)] = &[
        ("sk-", 16),  // OpenAI / Anthropic style
        ("ghp_", 20), // GitHub tokens
        ("gho_", 20),
        ("ghu_", 20),
        ("ghs_", 20),
        ("ghr_", 20),
        ("github_pat_", 20),
        ("glpat-", 20), // GitLab
        ("xoxb-", 10),  // Slack
        ("xoxp-", 10),
        ("xoxa-", 10),
        ("xoxr-", 10),
        ("xoxs-", 10),
        ("AIza", 30), // Google
    ];
    for (prefix, min) in PREFIXES {
        for i in find_all(b, prefix.as_bytes()) {
            if !word_start(b, i) {
                continue;
            }
            let body = i + prefix.len();
            let len = run_len(b, body, key_char);
            if len >= *min {
                spans.push(i..body + len);
            }
        }
    }
}

/// AWS access key ids: `AKIA`/`ASIA` + 16 upper-case alphanumerics.
fn aws_key_ids(b: &[u8], spans: &mut Vec<Range<usize>>) {
    for prefix in [b"AKIA", b"ASIA"] {
        for i in find_all(b, prefix) {
            let body = i + 4;
            let len = run_len(b, body, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
            let ends = b.get(body + len).is_none_or(|c| !c.is_ascii_alphanumeric());
            if word_start(b, i) && len == 16 && ends {
                spans.push(i..body + len);
            }
        }
    }
}

/// `Bearer <token>` (case-insensitive keyword). The token must look like one
/// (a digit or symbol, or long mixed case) so prose like "bearer authentication"
/// does not trip it.
fn bearer_tokens(b: &[u8], spans: &mut Vec<Range<usize>>) {
    fn token68(c: u8) -> bool {
        c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c)
    }
    let lower = b.to_ascii_lowercase();
    for i in find_all(&lower, b"bearer") {
        if !word_start(b, i) {
            continue;
        }
        let gap = run_len(b, i + 6, |c| c == b' ' || c == b'\t');
        if gap == 0 {
            continue;
        }
        let start = i + 6 + gap;
        let len = run_len(b, start, token68);
        let tok = &b[start..start + len];
        let symbolic = tok
            .iter()
            .any(|c| c.is_ascii_digit() || b"-._~+/=".contains(c));
        let mixed =
            tok.iter().any(u8::is_ascii_uppercase) && tok.iter().any(u8::is_ascii_lowercase);
        if len >= 8 && (symbolic || (mixed && len >= 16)) {
            spans.push(start..start + len);
        }
    }
}

/// PEM private keys: the whole block (to the matching END line, or to the end).
fn private_keys(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(pos) = text[from..].find("-----BEGIN ") {
        let start = from + pos;
        let header_from = start + "-----BEGIN ".len();
        let Some(header_len) = text[header_from..].find("-----") else {
            break;
        };
        let header = &text[header_from..header_from + header_len];
        let after_header = header_from + header_len + 5;
        if header.contains("PRIVATE KEY") && !header.contains('\n') {
            let end_marker = format!("-----END {header}-----");
            let end = text[after_header..]
                .find(&end_marker)
                .map_or(text.len(), |p| after_header + p + end_marker.len());
            spans.push(start..end);
            from = end;
        } else {
            from = after_header;
        }
    }
}

/// Keys whose assigned value is a credential. Matched against the end of the
/// (lower-cased) key, so `DB_PASSWORD=` and `aws_secret_access_key:` count but
/// `max_tokens:` and `passwordless:` do not.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "accesskey",
    "private_key",
];

/// `key = value` / `key: value` with a secret-ish key and a real value.
fn assignments(b: &[u8], spans: &mut Vec<Range<usize>>) {
    fn key_char(c: u8) -> bool {
        is_word(c) || c == b'-' || c == b'.'
    }
    for (sep, &c) in b.iter().enumerate() {
        if c != b'=' && c != b':' {
            continue;
        }
        // The key: skip blanks and one closing quote, then an identifier.
        let mut k_end = sep;
        while k_end > 0 && b[k_end - 1] == b' ' {
            k_end -= 1;
        }
        if k_end > 0 && (b[k_end - 1] == b'"' || b[k_end - 1] == b'\'') {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0 && key_char(b[k_start - 1]) {
            k_start -= 1;
        }
        let key = b[k_start..k_end].to_ascii_lowercase();
        if !SECRET_KEYS.iter().any(|k| key.ends_with(k.as_bytes())) {
            continue;
        }
        // The value: skip blanks, take a quoted string or a bare word.
        let mut v = sep + 1;
        if b.get(v) == Some(&b'=') {
            v += 1; // `==` reads the same as `=`
        }
        v += run_len(b, v, |c| c == b' ' || c == b'\t');
        let (start, len) = match b.get(v) {
            Some(&q @ (b'"' | b'\'')) => (v + 1, run_len(b, v + 1, |c| c != q && c != b'\n')),
            _ => (
                v,
                run_len(b, v, |c| {
                    !c.is_ascii_whitespace() && !b",;&\"'()[]{}<>".contains(&c)
                }),
            ),
        };
        let value = &b[start..start + len];
        if is_real_value(value) {
            spans.push(start..start + len);
        }
    }
}

/// Rejects empty values, placeholders (`$VAR`, `<token>`, `{{x}}`, `***`) and
/// redaction markers, so scrubbed text does not look secret again.
fn is_real_value(v: &[u8]) -> bool {
    let Some(&first) = v.first() else {
        return false;
    };
    if b"$<{%".contains(&first) || v.iter().all(|c| b"*.xX#-".contains(c)) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    !matches!(
        lower.as_slice(),
        b"redacted" | b"[redacted]" | b"none" | b"null" | b"n/a" | b"true" | b"false"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_credentials() {
        for s in [
            "use sk-proj-abcdefghijklmnop1234 for calls",
            "key=sk-ant-api03-ABCDEFGHIJKLMNOP",
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghij",
            "AKIAIOSFODNN7EXAMPLE is the id",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
            "bearer abcdefgh12345678",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY----- truncated",
            "password=hunter2",
            "DB_PASSWORD = 's3cr3t value'",
            "secret: abc123",
            "token=xyz",
            "api_key=abcd",
            "{\"api_key\": \"abcd\"}",
            "aws_secret_access_key: wJalrXUtnFEMI",
            "x-api-key: 12345",
            "slack xoxb-123456789012-abc",
        ] {
            assert!(looks_secret(s), "{s:?}");
        }
    }

    #[test]
    fn leaves_prose_alone() {
        for s in [
            "No conflicts, ready for merge",
            "task-abcdefghijklmnopqrstuvwxyz is done",
            "bearer authentication is configured",
            "Bearer <token>",
            "max_tokens: 4096",
            "passwordless: yes",
            "token budget: 5000",
            "password=",
            "secret: none",
            "password=$DB_PASSWORD",
            "token=[REDACTED]",
            "AKIA is a prefix",
            "see https://example.com/a?b=c",
            "-----BEGIN CERTIFICATE-----",
            "",
        ] {
            assert!(!looks_secret(s), "{s:?}");
        }
    }

    #[test]
    fn redaction_keeps_keys_and_is_stable() {
        assert_eq!(redact("password=hunter2 ok"), "password=[REDACTED] ok");
        assert_eq!(
            redact("Authorization: Bearer abc.def-123 done"),
            "Authorization: Bearer [REDACTED] done"
        );
        assert_eq!(redact("k sk-abcdefghijklmnopqrst."), "k [REDACTED].");
        let pem = "a -----BEGIN EC PRIVATE KEY-----\nxx\n-----END EC PRIVATE KEY----- b";
        assert_eq!(redact(pem), "a [REDACTED] b");
        for s in ["token=abc; secret: \"x y\"", "ünïcode password=pässwörd ✓"] {
            let once = redact(s);
            assert!(!looks_secret(&once), "{once:?}");
            assert_eq!(redact(&once), once);
        }
    }
}
