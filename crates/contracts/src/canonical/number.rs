//! Numbers as `JSON.stringify` prints them: ECMAScript Number::toString
//! (ECMA-262 "Number::toString", radix 10) for finite values, `null` for the
//! infinities a too-large literal such as `1e400` parses to.
//!
//! The shortest round-trip digits come from `ryu` (exact, and like JS it picks
//! the closest of equally short candidates); only their layout is redone here,
//! because ryu's notation thresholds differ from JS's.

/// Appends `x` as JSON.stringify would print it.
pub(super) fn write(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if x == 0.0 {
        // Both zeros print as "0".
        out.push(b'0');
        return;
    }
    if x < 0.0 {
        out.push(b'-');
    }
    let mut buf = ryu::Buffer::new();
    let (digits, n) = decimal(buf.format_finite(x.abs()));
    layout(out, &digits, n);
}

/// Splits ryu's text (`"1.5e-7"`, `"123.0"`, `"0.001"`, …) into the
/// significant digits `s` (no leading or trailing zeros) and the exponent `n`
/// of the spec's x = 0.s × 10^n.
fn decimal(text: &str) -> (Vec<u8>, i32) {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, parse_exponent(e)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let leading = digits.iter().take_while(|d| **d == b'0').count();
    digits.drain(..leading);
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, int.len() as i32 - leading as i32 + exponent)
}

fn parse_exponent(text: &str) -> i32 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = digits
        .bytes()
        .fold(0i32, |acc, b| acc * 10 + i32::from(b.wrapping_sub(b'0')));
    if negative { -magnitude } else { magnitude }
}

/// Steps 6–10 of Number::toString with k = `digits.len()` and the exponent `n`.
fn layout(out: &mut Vec<u8>, digits: &[u8], n: i32) {
    let k = digits.len() as i32;
    if k <= n && n <= 21 {
        // Integer: 1e20 → 100000000000000000000.
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else if -6 < n && n <= 0 {
        // 0.000001, but 1e-7.
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-n) as usize));
        out.extend_from_slice(digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        let e = n - 1;
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        out.extend_from_slice(e.unsigned_abs().to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(x: f64) -> String {
        let mut out = Vec::new();
        write(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_number_to_string() {
        // Expectations printed by node 20's String(x).
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (123.456, "123.456"),
            (-123.456, "-123.456"),
            (1e20, "100000000000000000000"),
            (1.2e21, "1.2e+21"),
            (9007199254740992.0, "9007199254740992"),
            (9007199254740994.0, "9007199254740994"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (1.0 / 3.0, "0.3333333333333333"),
            (12345678901234567890.0, "12345678901234567000"),
            (0.000123, "0.000123"),
            (123e-9, "1.23e-7"),
            (4.35, "4.35"),
            (1e100, "1e+100"),
            (-1e-100, "-1e-100"),
            (25.0, "25"),
            (1234567.125, "1234567.125"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ];
        for (x, want) in cases {
            assert_eq!(js(*x), *want, "{x:e}");
        }
    }

    #[test]
    fn decimal_reads_every_ryu_shape() {
        assert_eq!(decimal("1.0"), (b"1".to_vec(), 1));
        assert_eq!(decimal("0.001"), (b"1".to_vec(), -2));
        assert_eq!(decimal("123.456"), (b"123456".to_vec(), 3));
        assert_eq!(decimal("1e21"), (b"1".to_vec(), 22));
        assert_eq!(decimal("1.5e-7"), (b"15".to_vec(), -6));
        assert_eq!(decimal("1500.0"), (b"15".to_vec(), 4));
    }
}
