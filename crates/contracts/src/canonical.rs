//! The canonical form milestone signatures are computed over (docs/interface.md
//! "Milestone signatures"): byte for byte what a JavaScript engine prints for
//! `JSON.stringify(sortKeys(JSON.parse(text)))`, where `sortKeys`
//! is the contract's reference emitter function: it rebuilds every object by
//! assigning `sorted[k] = …` for each `k` of `Object.keys(o).sort()`.
//!
//! serde_json cannot stand in for the engine: JS strings are UTF-16 (lone
//! surrogates from `\ud800` escapes survive), every number is a double, a
//! duplicated key keeps its last value, and the engine lists array-index keys
//! (`"2"`, `"10"`) first in numeric order whatever the sort said. One more
//! quirk of the reference: assigning `sorted["__proto__"]` runs the prototype
//! setter instead of creating a property, so `"__proto__"` keys vanish from
//! the canonical form.
//!
//! Pure: no I/O.

mod number;
mod parse;

use std::collections::BTreeMap;

/// Deepest container nesting accepted; deeper input is rejected rather than
/// risking the stack on hostile bodies.
pub const MAX_DEPTH: usize = 512;

/// Why a text has no canonical form. Offsets are byte offsets into the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("invalid JSON at byte {offset}: {reason}")]
    Syntax { offset: usize, reason: String },
    #[error("invalid JSON at byte {offset}: not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("invalid JSON at byte {offset}: unexpected data after the JSON value")]
    TrailingData { offset: usize },
    #[error("invalid JSON at byte {offset}: nesting deeper than {MAX_DEPTH} levels")]
    TooDeep { offset: usize },
    /// Unreachable with HMAC-SHA256, which accepts keys of any length; a
    /// variant rather than a panic so signing can never abort a server.
    #[error("the signing secret was rejected by HMAC-SHA256")]
    InvalidKey,
}

impl CanonicalError {
    /// Where in the input the problem is, when it is about the input.
    pub fn offset(&self) -> Option<usize> {
        match self {
            CanonicalError::Syntax { offset, .. }
            | CanonicalError::InvalidUtf8 { offset }
            | CanonicalError::TrailingData { offset }
            | CanonicalError::TooDeep { offset } => Some(*offset),
            CanonicalError::InvalidKey => None,
        }
    }
}

/// The canonical form of a JSON text (see the module docs). Always valid
/// UTF-8: lone surrogates come out as `\udXXX` escapes, as in JS.
pub fn canonicalize(text: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    let value = parse::parse(text)?;
    let mut out = Vec::with_capacity(text.len());
    write_value(&mut out, &value);
    Ok(out)
}

/// A JSON value as a JS engine holds it after `sortKeys`.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(f64),
    /// UTF-16 code units, possibly with unpaired surrogates.
    String(Vec<u16>),
    Array(Vec<Value>),
    /// Keyed by JS property order, so iteration is serialisation order and
    /// inserting a duplicate key replaces the value (last one wins).
    Object(BTreeMap<Key, Value>),
}

/// A property key, ordered as the engine enumerates a sorted object: array
/// indices ascending, then every other key by UTF-16 code units (the order
/// `Array.prototype.sort` left them in). The derived `Ord` is exactly that.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Index(u32),
    Name(Vec<u16>),
}

impl Key {
    /// An array index is the canonical decimal form of an integer in
    /// 0..=2^32-2 (ECMA-262 "array index"): `"10"`, not `"010"` or `"-1"`,
    /// and not `"4294967295"`.
    fn new(units: Vec<u16>) -> Key {
        let canonical_digits = !units.is_empty()
            && units.len() <= 10
            && units.iter().all(|u| (0x30..=0x39).contains(u))
            && (units[0] != 0x30 || units.len() == 1);
        if canonical_digits {
            let n = units.iter().fold(0u64, |n, u| n * 10 + u64::from(u - 0x30));
            if let Ok(index) = u32::try_from(n)
                && index != u32::MAX
            {
                return Key::Index(index);
            }
        }
        Key::Name(units)
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(x) => number::write(out, *x),
        Value::String(units) => write_string(out, units),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match key {
                    Key::Index(n) => {
                        out.push(b'"');
                        out.extend_from_slice(n.to_string().as_bytes());
                        out.push(b'"');
                    }
                    Key::Name(units) => write_string(out, units),
                }
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// JSON.stringify's QuoteJSONString: the short escapes, other controls as
/// `\u00xx`, lone surrogates as `\udxxx` (lowercase hex), everything else as
/// UTF-8.
fn write_string(out: &mut Vec<u8>, units: &[u16]) {
    out.push(b'"');
    let mut rest = units;
    while !rest.is_empty() {
        // Printable ASCII other than `"` and `\` is written as it is: most
        // of a typical body, copied without decoding.
        let plain = rest
            .iter()
            .take_while(|&&u| (0x20..0x7f).contains(&u) && u != 0x22 && u != 0x5c)
            .count();
        let (ascii, tail) = rest.split_at(plain);
        out.extend(ascii.iter().map(|&u| u as u8));
        let Some(decoded) = char::decode_utf16(tail.iter().copied()).next() else {
            break;
        };
        let c = match decoded {
            Ok(c) => {
                rest = &tail[c.len_utf16()..];
                c
            }
            Err(lone) => {
                rest = &tail[1..];
                push_unicode_escape(out, lone.unpaired_surrogate());
                continue;
            }
        };
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => push_unicode_escape(out, c as u16),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn push_unicode_escape(out: &mut Vec<u8>, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xf)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize(text.as_bytes()).unwrap()).unwrap()
    }

    fn err(text: &[u8]) -> CanonicalError {
        canonicalize(text).unwrap_err()
    }

    #[test]
    fn compact_and_sorted_recursively() {
        assert_eq!(
            canon(" { \"b\" : [ 1 , { \"z\" : null , \"y\" : true } ] ,\n\t\"a\" : false }\r\n"),
            r#"{"a":false,"b":[1,{"y":true,"z":null}]}"#
        );
        assert_eq!(canon("[]"), "[]");
        assert_eq!(canon("{}"), "{}");
        assert_eq!(canon("\"x\""), "\"x\"");
        assert_eq!(canon(" null "), "null");
    }

    #[test]
    fn array_index_keys_come_first_in_numeric_order() {
        // Checked against node 20.
        assert_eq!(
            canon(
                r#"{"b":1,"a":2,"10":3,"2":4,"01":5,"-1":6,"4294967294":7,"4294967295":8,"":9,"0":0}"#
            ),
            r#"{"0":0,"2":4,"10":3,"4294967294":7,"":9,"-1":6,"01":5,"4294967295":8,"a":2,"b":1}"#
        );
        assert_eq!(
            canon(r#"{"1.0":1,"1e3":2," 1":3,"+1":4,"1":5}"#),
            r#"{"1":5," 1":3,"+1":4,"1.0":1,"1e3":2}"#
        );
    }

    #[test]
    fn non_index_keys_sort_by_utf16_code_units() {
        // U+FFFF sorts after U+1F600 in UTF-16 (0xD83D < 0xFFFF), unlike by code point.
        assert_eq!(
            canon(r#"{"\uffff":1,"😀":2,"é":3,"B":4,"a":5,"_":6}"#),
            "{\"B\":4,\"_\":6,\"a\":5,\"é\":3,\"😀\":2,\"\u{ffff}\":1}"
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        assert_eq!(canon(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        // The same key spelt two ways is still one key.
        assert_eq!(canon(r#"{"é":1,"\u00e9":2}"#), "{\"é\":2}");
        assert_eq!(canon(r#"{"1":1,"1":{"x":2}}"#), r#"{"1":{"x":2}}"#);
    }

    #[test]
    fn proto_keys_vanish_like_in_the_reference_emitter() {
        assert_eq!(canon(r#"{"__proto__":{"x":1},"a":1}"#), r#"{"a":1}"#);
        assert_eq!(canon(r#"{"__proto__":5}"#), "{}");
        assert_eq!(
            canon(r#"{"a":{"__proto__":[1,2],"length":7,"0":1}}"#),
            r#"{"a":{"0":1,"length":7}}"#
        );
        // Only the exact key; other prototype-ish names are ordinary keys.
        assert_eq!(
            canon(r#"{"__proto":1,"constructor":2,"toJSON":3}"#),
            r#"{"__proto":1,"constructor":2,"toJSON":3}"#
        );
        // The dropped value is still parsed.
        assert!(canonicalize(br#"{"__proto__":[1,]}"#).is_err());
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        assert_eq!(canon(r#""\"\\\/\b\f\n\r\t""#), r#""\"\\/\b\f\n\r\t""#);
        assert_eq!(
            canon(r#""\u0000\u0001\u001F\u001f\u007f\u0020""#),
            "\"\\u0000\\u0001\\u001f\\u001f\u{7f} \""
        );
        // Line separators and non-ASCII stay raw UTF-8.
        assert_eq!(
            canon(r#""\u2028\u2029\u00e9\u4E2D""#),
            "\"\u{2028}\u{2029}é中\""
        );
        assert_eq!(
            canon("\"é中😀e\u{301}\u{2028}\""),
            "\"é中😀e\u{301}\u{2028}\""
        );
    }

    #[test]
    fn surrogates_pair_or_stay_escaped() {
        assert_eq!(canon(r#""\ud83d\ude00""#), "\"😀\"");
        assert_eq!(canon(r#""\uD83D\uDE00""#), "\"😀\"");
        assert_eq!(canon(r#""\ud800""#), r#""\ud800""#);
        assert_eq!(canon(r#""\uDFFF""#), r#""\udfff""#);
        // A reversed pair is two lone surrogates; a high one before a raw
        // astral char stays lone.
        assert_eq!(canon(r#""\udc00\ud800""#), r#""\udc00\ud800""#);
        assert_eq!(canon("\"\\ud800😀\""), "\"\\ud800😀\"");
        // A lone surrogate joins with an escaped partner across the boundary.
        assert_eq!(canon(r#""\ud800\udfff""#), "\"\u{103ff}\"");
        // Keys too, and they sort by code unit.
        assert_eq!(
            canon(r#"{"\udfff":1,"\ud800":2,"\uffff":3}"#),
            "{\"\\ud800\":2,\"\\udfff\":1,\"\u{ffff}\":3}"
        );
    }

    #[test]
    fn numbers_parse_and_print_like_js() {
        // Expectations checked against node 20.
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0e5", "0"),
            ("1.0", "1"),
            ("1E+2", "100"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("999999999999999999999", "1e+21"),
            ("123456789012345678901234", "1.2345678901234569e+23"),
            ("0.1", "0.1"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740995", "-9007199254740996"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("2e-324", "0"),
            ("-1e-400", "0"),
            ("1e400", "null"),
            ("-1e400", "null"),
            ("1e99999999999999999999", "null"),
            ("123e-20", "1.23e-18"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("3.14159265358979323846264338327950288", "3.141592653589793"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), want, "{input}");
        }
    }

    #[test]
    fn rejects_what_json_parse_rejects_with_offsets() {
        let cases: &[(&[u8], usize)] = &[
            (b"", 0),
            (b"   ", 3),
            (b"[1,]", 3),
            (b"{\"a\":1,}", 7),
            (b"{'a':1}", 1),
            (b"{\"a\" 1}", 5),
            (b"{a:1}", 1),
            (b"01", 1),
            (b"-", 1),
            (b"1.", 2),
            (b"1e", 2),
            (b".5", 0),
            (b"+1", 0),
            (b"NaN", 0),
            (b"tru", 0),
            (b"\"abc", 4),
            (b"\"a\x01\"", 2),
            (b"\"\\x\"", 2),
            (b"\"\\u12g4\"", 5),
            (b"[1 2]", 3),
            (b"\xef\xbb\xbf1", 0),
            (b"\x0b1", 0),
            (b"1 x", 2),
            (b"\"\xff\"", 1),
        ];
        for (text, offset) in cases {
            let e = err(text);
            assert_eq!(
                e.offset(),
                Some(*offset),
                "{:?}: {e}",
                String::from_utf8_lossy(text)
            );
            assert!(e.to_string().contains(&format!("byte {offset}")), "{e}");
        }
        assert!(matches!(
            err(b"1 x"),
            CanonicalError::TrailingData { offset: 2 }
        ));
        assert!(matches!(
            err(b"\"\xff\""),
            CanonicalError::InvalidUtf8 { offset: 1 }
        ));
    }

    #[test]
    fn nesting_is_capped_at_512() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(canon(&nested(MAX_DEPTH)), nested(MAX_DEPTH));
        let e = err(nested(MAX_DEPTH + 1).as_bytes());
        assert_eq!(e, CanonicalError::TooDeep { offset: MAX_DEPTH });
        let objects = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(canonicalize(objects.as_bytes()).is_ok());
        let objects = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(
            err(objects.as_bytes()),
            CanonicalError::TooDeep { .. }
        ));
    }

    #[test]
    fn index_keys_are_exactly_array_indices() {
        let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        assert_eq!(Key::new(units("0")), Key::Index(0));
        assert_eq!(Key::new(units("4294967294")), Key::Index(u32::MAX - 1));
        for name in ["", "00", "01", "-1", "4294967295", "99999999999", "1a", "١"] {
            assert_eq!(Key::new(units(name)), Key::Name(units(name)), "{name}");
        }
    }
}
