//! Field-level checks over raw JSON, shared by the workflow validators.
//!
//! Validators walk `serde_json::Value` rather than deserialising straight into
//! types, because the contract distinguishes a missing field
//! (`MISSING_REQUIRED_INPUT`) from a wrong one (`SCHEMA_INVALID`), and strict
//! mode must name the exact path of an unknown field.

use serde_json::{Map, Value, json};

use crate::verdict::{Code, Violation};

pub(crate) type Checked<T> = Result<T, Violation>;

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub(crate) fn missing(path: &str) -> Violation {
    Violation::new(
        Code::MissingRequiredInput,
        format!("Required field `{path}` is missing."),
        json!({ "field": path }),
    )
}

pub(crate) fn invalid(path: &str, reason: impl Into<String>) -> Violation {
    let reason = reason.into();
    Violation::new(
        Code::SchemaInvalid,
        format!("Field `{path}` is invalid: {reason}."),
        json!({ "field": path }),
    )
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `^[0-9a-fA-F-]{36}$`
pub fn is_run_id(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')
}

/// `^(T-[0-9]+|[0-9a-fA-F-]{36})$`
pub fn is_task_id(s: &str) -> bool {
    match s.strip_prefix("T-") {
        Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => true,
        _ => is_run_id(s),
    }
}

/// The major version of a semantic version (`MAJOR.MINOR.PATCH[-pre][+build]`).
pub fn semver_major(s: &str) -> Option<u64> {
    let ident_ok = |part: &str| {
        !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    if build.is_some_and(|b| !b.split('.').all(ident_ok)) {
        return None;
    }
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    if pre.is_some_and(|p| !p.split('.').all(ident_ok)) {
        return None;
    }
    let nums: Vec<&str> = core.split('.').collect();
    let numeric = |n: &&str| {
        !n.is_empty()
            && n.bytes().all(|c| c.is_ascii_digit())
            && (n.len() == 1 || !n.starts_with('0'))
    };
    if nums.len() != 3 || !nums.iter().all(numeric) {
        return None;
    }
    nums[0].parse().ok()
}

/// An ISO-8601 / RFC 3339 timestamp with an offset (`2026-01-14T16:21:00Z`).
pub fn parse_timestamp(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// A JSON object being checked, with its path for messages.
pub(crate) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

impl<'a> Obj<'a> {
    /// `value` must be an object.
    pub fn new(value: &'a Value, path: &str) -> Checked<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: path.to_string(),
            }),
            other => {
                let at = if path.is_empty() { "document" } else { path };
                Err(Violation::new(
                    Code::SchemaInvalid,
                    format!("`{at}` must be a JSON object, not {}.", type_name(other)),
                    json!({ "field": at }),
                ))
            }
        }
    }

    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Required fields present (an explicit `null` counts as missing), then, in
    /// strict mode, no fields beyond `required`, `optional` and `x_…`.
    pub fn shape(&self, required: &[&str], optional: &[&str], strict: bool) -> Checked<()> {
        if let Some(f) = required.iter().find(|f| self.get(f).is_none()) {
            return Err(missing(&self.at(f)));
        }
        if strict {
            let unknown = self.map.keys().find(|k| {
                !k.starts_with("x_")
                    && !required.contains(&k.as_str())
                    && !optional.contains(&k.as_str())
            });
            if let Some(k) = unknown {
                let path = self.at(k);
                return Err(Violation::new(
                    Code::SchemaInvalid,
                    format!(
                        "Unknown field `{path}` (strict mode allows only contract fields and `x_` extensions)."
                    ),
                    json!({ "field": path }),
                ));
            }
        }
        Ok(())
    }

    /// The value of `key`, `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Checked<&'a Value> {
        self.get(key).ok_or_else(|| missing(&self.at(key)))
    }

    fn wrong(&self, key: &str, want: &str, got: &Value) -> Violation {
        invalid(
            &self.at(key),
            format!("expected {want}, got {}", type_name(got)),
        )
    }

    pub fn str(&self, key: &str) -> Checked<&'a str> {
        let v = self.req(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "a string", v))
    }

    pub fn opt_str(&self, key: &str) -> Checked<Option<&'a str>> {
        self.get(key).map(|_| self.str(key)).transpose()
    }

    /// A string whose length in characters lies in `min..=max`.
    pub fn str_len(&self, key: &str, min: usize, max: usize) -> Checked<&'a str> {
        let s = self.str(key)?;
        let n = s.chars().count();
        if n < min || n > max {
            return Err(invalid(
                &self.at(key),
                format!("length must be {min}..{max} characters, got {n}"),
            ));
        }
        Ok(s)
    }

    /// A non-blank string.
    pub fn non_empty(&self, key: &str) -> Checked<&'a str> {
        let s = self.str(key)?;
        if s.trim().is_empty() {
            return Err(invalid(&self.at(key), "must not be empty"));
        }
        Ok(s)
    }

    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Checked<&'a str> {
        let s = self.str(key)?;
        if !allowed.contains(&s) {
            return Err(invalid(
                &self.at(key),
                format!("`{s}` is not one of {}", allowed.join("|")),
            ));
        }
        Ok(s)
    }

    pub fn int(&self, key: &str) -> Checked<i64> {
        let v = self.req(key)?;
        v.as_i64().ok_or_else(|| self.wrong(key, "an integer", v))
    }

    pub fn int_min(&self, key: &str, min: i64) -> Checked<i64> {
        let n = self.int(key)?;
        if n < min {
            return Err(invalid(
                &self.at(key),
                format!("must be at least {min}, got {n}"),
            ));
        }
        Ok(n)
    }

    pub fn bool(&self, key: &str) -> Checked<bool> {
        let v = self.req(key)?;
        v.as_bool().ok_or_else(|| self.wrong(key, "a boolean", v))
    }

    pub fn opt_bool(&self, key: &str) -> Checked<Option<bool>> {
        self.get(key).map(|_| self.bool(key)).transpose()
    }

    pub fn array(&self, key: &str) -> Checked<&'a [Value]> {
        let v = self.req(key)?;
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.wrong(key, "an array", v))
    }

    /// An array with at least `min` items.
    pub fn array_min(&self, key: &str, min: usize) -> Checked<&'a [Value]> {
        let a = self.array(key)?;
        if a.len() < min {
            return Err(invalid(
                &self.at(key),
                format!("must have at least {min} item(s)"),
            ));
        }
        Ok(a)
    }

    pub fn str_array(&self, key: &str) -> Checked<Vec<&'a str>> {
        let path = self.at(key);
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    invalid(
                        &index(&path, i),
                        format!("expected a string, got {}", type_name(v)),
                    )
                })
            })
            .collect()
    }

    pub fn obj(&self, key: &str) -> Checked<Obj<'a>> {
        Obj::new(self.req(key)?, &self.at(key))
    }

    /// Optional free-form object (`details`, `metadata`).
    pub fn opt_obj(&self, key: &str) -> Checked<Option<Obj<'a>>> {
        self.get(key).map(|_| self.obj(key)).transpose()
    }

    pub fn timestamp(&self, key: &str) -> Checked<jiff::Timestamp> {
        let s = self.str(key)?;
        parse_timestamp(s).ok_or_else(|| {
            invalid(
                &self.at(key),
                format!("`{s}` is not an ISO-8601 UTC timestamp"),
            )
        })
    }

    pub fn opt_timestamp(&self, key: &str) -> Checked<Option<jiff::Timestamp>> {
        self.get(key).map(|_| self.timestamp(key)).transpose()
    }

    pub fn run_id(&self, key: &str) -> Checked<&'a str> {
        let s = self.str(key)?;
        if !is_run_id(s) {
            return Err(invalid(
                &self.at(key),
                format!("`{s}` does not match ^[0-9a-fA-F-]{{36}}$"),
            ));
        }
        Ok(s)
    }

    pub fn task_id(&self, key: &str) -> Checked<&'a str> {
        let s = self.str(key)?;
        if !is_task_id(s) {
            return Err(invalid(
                &self.at(key),
                format!("`{s}` does not match ^(T-[0-9]+|[0-9a-fA-F-]{{36}})$"),
            ));
        }
        Ok(s)
    }

    pub fn task_ids(&self, key: &str) -> Checked<Vec<&'a str>> {
        let path = self.at(key);
        let ids = self.str_array(key)?;
        for (i, id) in ids.iter().enumerate() {
            if !is_task_id(id) {
                return Err(invalid(
                    &index(&path, i),
                    format!("`{id}` is not a task id"),
                ));
            }
        }
        Ok(ids)
    }

    /// Each item of the array `key` as an object, with its path.
    pub fn objects(&self, key: &str) -> Checked<Vec<Obj<'a>>> {
        let path = self.at(key);
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| Obj::new(v, &index(&path, i)))
            .collect()
    }

    /// `schema_version` (and the common `run_id` / `generated_at`): a missing
    /// version is `MISSING_REQUIRED_INPUT`, anything but semver major 1 is
    /// `UNKNOWN_SCHEMA_VERSION` (fail closed).
    pub fn schema_version(&self, required: bool) -> Checked<()> {
        let Some(v) = self.get("schema_version") else {
            return if required {
                Err(missing(&self.at("schema_version")))
            } else {
                Ok(())
            };
        };
        let s = v
            .as_str()
            .ok_or_else(|| self.wrong("schema_version", "a string", v))?;
        match semver_major(s) {
            Some(1) => Ok(()),
            _ => Err(Violation::new(
                Code::UnknownSchemaVersion,
                format!(
                    "schema_version `{s}` is not a supported version (1.x.y); refusing to guess."
                ),
                json!({ "field": self.at("schema_version"), "schema_version": s, "supported": "1.x.y" }),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_run_id("3f56dc4d-35cf-4f97-925c-0b04a6fe8bf4"));
        assert!(!is_run_id("3f56dc4d-35cf-4f97-925c-0b04a6fe8bf"));
        assert!(!is_run_id("3f56dc4d-35cf-4f97-925c-0b04a6fe8bfg"));
        assert!(is_task_id("T-12"));
        assert!(is_task_id("3f56dc4d-35cf-4f97-925c-0b04a6fe8bf4"));
        assert!(!is_task_id("T-"));
        assert!(!is_task_id("T-1a"));
        assert!(!is_task_id("t-1"));
    }

    #[test]
    fn semver() {
        assert_eq!(semver_major("1.0.0"), Some(1));
        assert_eq!(semver_major("1.2.3-rc.1+build.5"), Some(1));
        assert_eq!(semver_major("2.0.0"), Some(2));
        for bad in [
            "1.0", "1", "v1.0.0", "01.0.0", "1.0.0-", "1..0", "", "1.0.0+",
        ] {
            assert_eq!(semver_major(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        assert!(parse_timestamp("2026-01-14T16:21:00Z").is_some());
        assert!(parse_timestamp("2026-02-28T12:34:56.000Z").is_some());
        assert!(parse_timestamp("2026-03-13T18:22:41+00:00").is_some());
        assert!(parse_timestamp("2026-01-14").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
