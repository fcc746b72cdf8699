//! Base64, hex and percent encodings, hand-written: what the [`Redactor`]
//! needs to spell a secret the ways a program may print it, and what the
//! secret store needs for its key and file format.
//!
//! [`Redactor`]: crate::Redactor

/// The standard base64 alphabet (RFC 4648 §4).
pub const BASE64_STD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// The URL- and filename-safe base64 alphabet (RFC 4648 §5).
pub const BASE64_URL: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `bytes` in base64 with `alphabet`, `=`-padded when `pad`.
pub fn base64_encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
                out.push(char::from(alphabet[idx]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 in either alphabet (`+/` or `-_`), padded or not.
/// `None` for anything else, including stray whitespace.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // A lone trailing character carries no whole byte.
    if body.len() % 4 == 1 {
        return None;
    }
    Some(out)
}

/// `bytes` as hex, lower-case or upper-case.
pub fn hex_encode(bytes: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes hex of either case; `None` for an odd length or a non-hex digit.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    b.chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

/// Percent-encoding (RFC 3986): every byte but the unreserved ones
/// (`A-Za-z0-9-._~`) as `%XX`; `upper` picks the case of the hex digits,
/// `plus` writes a space as `+` (HTML forms).
pub fn percent_encode(bytes: &[u8], upper: bool, plus: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(digits[usize::from(b >> 4)]));
            out.push(char::from(digits[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The parts of `bytes`' base64 that do not depend on what surrounds it,
/// for each of the three offsets (mod 3) it may sit at inside a longer
/// encoded stream (`base64 < file`): at offset `s`, the characters whose six
/// bits all come from `bytes`.
pub fn base64_cores(bytes: &[u8], alphabet: &[u8; 64]) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    for shift in 0..3usize {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(bytes);
        let encoded = base64_encode(&padded, alphabet, false);
        let start = (8 * shift).div_ceil(6);
        let end = (8 * (shift + bytes.len())) / 6;
        if let Some(core) = encoded.get(start..end.min(encoded.len()))
            && !core.is_empty()
        {
            out.push(core.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes(), BASE64_STD, true), encoded);
            assert_eq!(
                base64_encode(plain.as_bytes(), BASE64_STD, false),
                encoded.trim_end_matches('=')
            );
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                base64_decode(encoded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        assert_eq!(base64_encode(&[0xfb, 0xff], BASE64_STD, true), "+/8=");
        assert_eq!(base64_encode(&[0xfb, 0xff], BASE64_URL, true), "-_8=");
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        for bad in ["a", "ab cd", "Zg===", "Z!=="] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hex_and_percent() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0x7f], false), "00ab7f");
        assert_eq!(hex_encode(&[0x00, 0xab, 0x7f], true), "00AB7F");
        assert_eq!(hex_decode("00aB7f").unwrap(), [0x00, 0xab, 0x7f]);
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
        assert_eq!(percent_encode(b"a b/c~", true, false), "a%20b%2Fc~");
        assert_eq!(percent_encode(b"a b/c~", false, true), "a+b%2fc~");
    }

    #[test]
    fn base64_cores_appear_in_any_longer_encoding() {
        let secret = b"s3cr3t-value-42";
        let cores = base64_cores(secret, BASE64_STD);
        assert_eq!(cores.len(), 3);
        for prefix_len in 0..7 {
            for suffix_len in 0..4 {
                let mut data = vec![b'x'; prefix_len];
                data.extend_from_slice(secret);
                data.extend(std::iter::repeat_n(b'y', suffix_len));
                let encoded = base64_encode(&data, BASE64_STD, true);
                assert!(
                    cores.iter().any(|c| encoded.contains(c.as_str())),
                    "prefix {prefix_len} suffix {suffix_len}: {encoded}"
                );
            }
        }
    }
}
