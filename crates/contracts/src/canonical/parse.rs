//! A strict JSON parser with `JSON.parse` semantics: ECMA-404 grammar only
//! (no BOM, no comments, no trailing commas, whitespace is space/tab/LF/CR),
//! strings as UTF-16 code units, numbers as correctly rounded doubles.

use std::collections::BTreeMap;

use super::{CanonicalError, Key, MAX_DEPTH, Value};

/// The key the reference `sortKeys` loses to the prototype setter.
const PROTO: &[u16] = &[
    0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f, // "__proto__"
];

pub(super) fn parse(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CanonicalError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut p = Parser { text, pos: 0 };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(CanonicalError::TrailingData { offset: p.pos });
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    /// Always on a char boundary: the parser only steps over ASCII bytes or
    /// whole runs ending before an ASCII byte.
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error_at(&self, offset: usize, reason: impl Into<String>) -> CanonicalError {
        CanonicalError::Syntax {
            offset,
            reason: reason.into(),
        }
    }

    /// "expected X, found Y" at the current position.
    fn unexpected(&self, expected: &str) -> CanonicalError {
        let found = self
            .text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next());
        let reason = match found {
            None => format!("unexpected end of input, expected {expected}"),
            Some(c) => format!("expected {expected}, found `{}`", c.escape_debug()),
        };
        self.error_at(self.pos, reason)
    }

    /// `depth` counts the containers already open around this value.
    fn value(&mut self, depth: usize) -> Result<Value, CanonicalError> {
        self.skip_ws();
        match self.peek() {
            Some(b'[' | b'{') if depth >= MAX_DEPTH => {
                Err(CanonicalError::TooDeep { offset: self.pos })
            }
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, CanonicalError> {
        if self
            .text
            .get(self.pos..)
            .is_some_and(|r| r.starts_with(word))
        {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.unexpected(&format!("`{word}`")))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, CanonicalError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b']') {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            if !self.eat(b',') {
                return Err(self.unexpected("`,` or `]`"));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, CanonicalError> {
        self.pos += 1;
        let mut members = BTreeMap::new();
        self.skip_ws();
        if self.eat(b'}') {
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(b':') {
                return Err(self.unexpected("`:` after the key"));
            }
            let value = self.value(depth)?;
            if key != PROTO {
                // Replacing keeps the last value of a duplicated key, as JSON.parse does.
                members.insert(Key::new(key), value);
            }
            self.skip_ws();
            if self.eat(b'}') {
                return Ok(Value::Object(members));
            }
            if !self.eat(b',') {
                return Err(self.unexpected("`,` or `}`"));
            }
        }
    }

    fn string(&mut self) -> Result<Vec<u16>, CanonicalError> {
        self.pos += 1;
        let mut units = Vec::new();
        loop {
            let run = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            if let Some(raw) = self.text.get(run..self.pos) {
                if raw.is_ascii() {
                    units.extend(raw.bytes().map(u16::from));
                } else {
                    units.extend(raw.encode_utf16());
                }
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(units);
                }
                Some(b'\\') => units.push(self.escape()?),
                Some(_) => {
                    return Err(self.error_at(
                        self.pos,
                        "control character in a string (it must be escaped)",
                    ));
                }
                None => return Err(self.error_at(self.pos, "unterminated string")),
            }
        }
    }

    /// One escape sequence, starting at its backslash, as one code unit:
    /// `\uXXXX` surrogates are kept unpaired, as JS strings keep them.
    fn escape(&mut self) -> Result<u16, CanonicalError> {
        self.pos += 1;
        let unit = match self.peek() {
            Some(b'"') => 0x22,
            Some(b'\\') => 0x5c,
            Some(b'/') => 0x2f,
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => 0x0a,
            Some(b'r') => 0x0d,
            Some(b't') => 0x09,
            Some(b'u') => {
                let mut unit = 0u16;
                for _ in 0..4 {
                    self.pos += 1;
                    let digit = self
                        .peek()
                        .and_then(|b| char::from(b).to_digit(16))
                        .ok_or_else(|| self.unexpected("a hex digit in a `\\u` escape"))?;
                    unit = (unit << 4) | digit as u16;
                }
                unit
            }
            _ => return Err(self.unexpected("an escape (one of `\"\\/bfnrtu`)")),
        };
        self.pos += 1;
        Ok(unit)
    }

    fn number(&mut self) -> Result<Value, CanonicalError> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit")),
        }
        if self.eat(b'.') {
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.unexpected("a digit after the decimal point"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
        }
        // Rust's float parsing is correctly rounded (ties to even), as
        // ECMAScript's is; out-of-range magnitudes become ±inf or ±0 in both.
        self.text
            .get(start..self.pos)
            .and_then(|t| t.parse::<f64>().ok())
            .map(Value::Number)
            .ok_or_else(|| self.error_at(start, "unreadable number"))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}
