//! Milestone request signatures (docs/interface.md "Milestone signatures"):
//! `x-openclaw-signature` is the lowercase hex HMAC-SHA256 of the body's
//! [canonical form](crate::canonical), so any sender whose JSON means the same
//! to a JS engine (key order, whitespace, number spelling) signs the same.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::canonical::{CanonicalError, canonicalize};

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-openclaw-signature";
/// Header carrying the sender's ISO-8601 UTC time.
pub const TIMESTAMP_HEADER: &str = "x-openclaw-timestamp";

/// Lowercase hex HMAC-SHA256(secret, canonicalize(body)).
pub fn sign(secret: &[u8], body: &[u8]) -> Result<String, CanonicalError> {
    let canonical = canonicalize(body)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| CanonicalError::InvalidKey)?;
    mac.update(&canonical);
    Ok(hex(&mac.finalize().into_bytes()))
}

/// Whether `signature_header` is the body's signature, in either hex case.
/// A header that is not 64 hex digits is simply `false`; a body with no
/// canonical form is an error (the caller answers 400, not 401).
pub fn verify(secret: &[u8], body: &[u8], signature_header: &str) -> Result<bool, CanonicalError> {
    let expected = sign(secret, body)?;
    let well_formed = signature_header.len() == expected.len()
        && signature_header.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Ok(false);
    }
    let given = signature_header.to_ascii_lowercase();
    Ok(bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"garrison-test-secret";

    /// Keys out of order, a non-ASCII escape, `1.0`, `1e21` and a lone surrogate.
    const BODY: &str = r#"{"sentAtUtc":"2026-02-28T12:34:56.000Z","idempotencyKey":"emit-01JN0000000000000000000000","event":{"source":"orchestrator","nextAction":"ship it","riskStatus":"on-track","evidence":[{"type":"log","path":"workspace/orchestrator_state.json","summary":"runtime evidence \u2014 ok"}],"claim":"signing works","scope":"garrison","timestampUtc":"2026-02-28T12:34:56.000Z","milestoneId":"m-1","x":[1.0,1e21,"\ud800"]}}"#;

    /// Computed with node 20: `crypto.createHmac('sha256', 'garrison-test-secret')
    /// .update(JSON.stringify(sortKeys(JSON.parse(BODY)))).digest('hex')`.
    const NODE_SIGNATURE: &str = "428f3278e3bf83020937c6cc67f25b54667150e8e74b24f16588ac6270a89d29";

    #[test]
    fn matches_the_node_reference() {
        assert_eq!(
            String::from_utf8(canonicalize(BODY.as_bytes()).unwrap()).unwrap(),
            r#"{"event":{"claim":"signing works","evidence":[{"path":"workspace/orchestrator_state.json","summary":"runtime evidence — ok","type":"log"}],"milestoneId":"m-1","nextAction":"ship it","riskStatus":"on-track","scope":"garrison","source":"orchestrator","timestampUtc":"2026-02-28T12:34:56.000Z","x":[1,1e+21,"\ud800"]},"idempotencyKey":"emit-01JN0000000000000000000000","sentAtUtc":"2026-02-28T12:34:56.000Z"}"#
        );
        assert_eq!(sign(SECRET, BODY.as_bytes()).unwrap(), NODE_SIGNATURE);
        assert!(verify(SECRET, BODY.as_bytes(), NODE_SIGNATURE).unwrap());
    }

    #[test]
    fn header_case_does_not_matter() {
        let upper = NODE_SIGNATURE.to_ascii_uppercase();
        assert!(verify(SECRET, BODY.as_bytes(), &upper).unwrap());
        let mixed: String = NODE_SIGNATURE
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert!(verify(SECRET, BODY.as_bytes(), &mixed).unwrap());
    }

    #[test]
    fn wrong_or_malformed_headers_are_false() {
        let body = BODY.as_bytes();
        let mut flipped = NODE_SIGNATURE.to_string();
        flipped.replace_range(0..1, "5");
        for header in [
            flipped.as_str(),
            "",
            &NODE_SIGNATURE[..63],
            &NODE_SIGNATURE[..32],
            &format!("{NODE_SIGNATURE}0"),
            &format!(" {}", &NODE_SIGNATURE[1..]),
            &format!("{}g", &NODE_SIGNATURE[..63]),
            &format!("sha256={NODE_SIGNATURE}"),
        ] {
            assert!(!verify(SECRET, body, header).unwrap(), "{header:?}");
        }
        assert!(!verify(b"another secret", body, NODE_SIGNATURE).unwrap());
        // Non-ASCII of the right byte length must not be mistaken for hex.
        assert!(!verify(SECRET, body, &"é".repeat(32)).unwrap());
    }

    #[test]
    fn key_order_whitespace_and_spelling_do_not_change_the_signature() {
        let reordered = r#"
        {
            "event": {
                "x": [ 1 , 1E+21 , "\uD800" ],
                "milestoneId": "m-1",
                "timestampUtc": "2026-02-28T12:34:56.000Z",
                "scope": "garrison",
                "claim": "signing works",
                "evidence": [ { "summary": "runtime evidence — ok", "path": "workspace\/orchestrator_state.json", "type": "log" } ],
                "riskStatus": "on-track",
                "nextAction": "ship it",
                "source": "orchestrator"
            },
            "idempotencyKey": "emit-01JN0000000000000000000000",
            "sentAtUtc": "2026-02-28T12:34:56.000Z"
        }"#;
        assert_eq!(sign(SECRET, reordered.as_bytes()).unwrap(), NODE_SIGNATURE);
        // A changed value does change it.
        let changed = BODY.replace("ship it", "ship it!");
        assert_ne!(sign(SECRET, changed.as_bytes()).unwrap(), NODE_SIGNATURE);
    }

    #[test]
    fn bodies_without_a_canonical_form_are_errors() {
        assert!(matches!(
            verify(SECRET, b"{\"a\":", NODE_SIGNATURE),
            Err(CanonicalError::Syntax { offset: 5, .. })
        ));
        assert!(sign(SECRET, b"[1] [2]").is_err());
    }

    #[test]
    fn any_secret_length_signs() {
        for secret in [&b""[..], b"k", &[7u8; 200]] {
            let sig = sign(secret, b"{}").unwrap();
            assert_eq!(sig.len(), 64);
            assert!(verify(secret, b"{ }", &sig).unwrap());
        }
    }
}
