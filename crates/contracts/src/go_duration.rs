//! Go's `time.ParseDuration`, exactly: the scheduler's `@every <duration>`
//! is written in Go's format, so what Go accepts (and the nanosecond value it
//! yields, float rounding of fractions included) is what Garrison accepts.
//!
//! Grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or the bare `0`. Units: `ns`,
//! `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`. Each segment needs
//! a digit before or after its point and a unit; the result must fit an
//! `i64` of nanoseconds (`-2562047h47m16.854775808s` is the smallest).

/// Why a string is not a Go duration; the messages are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoDurationError {
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    UnknownUnit { unit: String, input: String },
}

const LIMIT: u64 = 1 << 63;

fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        // `µs` (U+00B5) and `μs` (U+03BC), as UTF-8 bytes.
        b"us" | [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60_000_000_000,
        b"h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses `s` to signed nanoseconds, as Go does.
pub fn parse(s: &str) -> Result<i64, GoDurationError> {
    let invalid = || GoDurationError::Invalid(s.to_string());
    let mut rest = s.as_bytes();
    let mut negative = false;
    if let Some((&c, tail)) = rest.split_first()
        && (c == b'-' || c == b'+')
    {
        negative = c == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !(rest[0] == b'.' || rest[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, after_int, int_digits) = leading_int(rest).ok_or_else(invalid)?;
        rest = after_int;
        let mut fraction = (0u64, 1f64);
        let mut frac_digits = 0;
        if let Some((b'.', tail)) = rest.split_first() {
            let (f, scale, after, n) = leading_fraction(tail);
            fraction = (f, scale);
            frac_digits = n;
            rest = after;
        }
        if int_digits == 0 && frac_digits == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .iter()
            .position(|c| *c == b'.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(GoDurationError::MissingUnit(s.to_string()));
        }
        let (unit, tail) = rest.split_at(unit_len);
        rest = tail;
        let Some(nanos) = unit_nanos(unit) else {
            return Err(GoDurationError::UnknownUnit {
                unit: String::from_utf8_lossy(unit).into_owned(),
                input: s.to_string(),
            });
        };
        if whole > LIMIT / nanos {
            return Err(invalid());
        }
        let mut value = whole * nanos;
        let (f, scale) = fraction;
        if f > 0 {
            // Float, as Go does, so fractions of hours stay accurate to the
            // nanosecond and round the same way. `as` saturates, never wraps.
            value += (f as f64 * (nanos as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // LIMIT itself is i64::MIN's magnitude.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The leading `[0-9]*` of `s` as an integer; `None` on overflow.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8], usize)> {
    let mut x: u64 = 0;
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    for c in &s[..n] {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[n..], n))
}

/// The leading `[0-9]*` of a fraction: digits past what fits are consumed
/// but add no precision (never an error).
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8], usize) {
    let mut x: u64 = 0;
    let mut scale = 1f64;
    let mut overflow = false;
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    for c in &s[..n] {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[n..], n)
}

/// Go's `Duration.String()`: `1h2m3.5s`, `1.5µs`, `0s`. Parsing the result
/// gives back the same value.
pub fn format(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        // Below a second: the largest unit that keeps an integer part.
        let (unit, scale) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", decimal(u, scale));
    }
    let hours = u / 3_600_000_000_000;
    let minutes = u / 60_000_000_000 % 60;
    let seconds = decimal(u % 60_000_000_000, 1_000_000_000);
    let mut out = sign.to_string();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds);
    out.push('s');
    out
}

/// `v / scale` with the fraction's trailing zeros dropped.
fn decimal(v: u64, scale: u64) -> String {
    let (int, frac) = (v / scale, v % scale);
    if frac == 0 {
        return int.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    const H: i64 = 60 * M;

    #[test]
    fn accepts_what_go_accepts() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12µs", 12 * US),
            ("12μs", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52763797000 * NS),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * M),
            (
                "0.830103483285477580700h",
                49 * M + 48 * S + 372_539_827 * NS,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1 s",
            "1s ",
            " 1s",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "9223372036854776us",
            "3000000h",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("3").unwrap_err().to_string(),
            "time: missing unit in duration \"3\""
        );
        assert_eq!(
            parse("1d").unwrap_err().to_string(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
        assert_eq!(
            parse("").unwrap_err().to_string(),
            "time: invalid duration \"\""
        );
    }

    #[test]
    fn formats_like_go() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (4 * M + 5 * S, "4m5s"),
            (4 * M + 5001 * MS, "4m5.001s"),
            (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
            (8 * M + 1, "8m0.000000001s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(format(nanos), text, "{nanos}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(n in any::<i64>()) {
            prop_assert_eq!(parse(&format(n)), Ok(n));
        }

        #[test]
        fn segments_add_up(a in 0i64..(1 << 40), b in 0i64..(1 << 40)) {
            let (x, y) = (format(a), format(b));
            // A concatenation is the sum of its segments.
            let joined = format!("{x}{y}");
            prop_assert_eq!(parse(&joined), Ok(a + b));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse(&s);
        }

        #[test]
        fn integer_counts_of_each_unit(n in 0i64..1_000_000, u in 0usize..8) {
            let (unit, nanos) = [("ns", NS), ("us", US), ("µs", US), ("μs", US), ("ms", MS), ("s", S), ("m", M), ("h", H)][u];
            prop_assert_eq!(parse(&format!("{n}{unit}")), Ok(n * nanos));
        }
    }
}
