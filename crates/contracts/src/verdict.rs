//! Validator verdicts: `{allow, code, reason, details}` and the contract's codes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

macro_rules! codes {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A validator code: `OK`, or exactly one of the contract's error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Code { $(#[serde(rename = $name)] $variant),+ }

        impl Code {
            /// Every code, `OK` first.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The wire name (`OK`, `SCHEMA_INVALID`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name),+ }
            }
        }

        impl FromStr for Code {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Code::$variant),)+
                    other => Err(UnknownCode(other.to_string())),
                }
            }
        }
    };
}

codes! {
    Ok => "OK",
    SchemaInvalid => "SCHEMA_INVALID",
    MissingRequiredInput => "MISSING_REQUIRED_INPUT",
    UnknownSchemaVersion => "UNKNOWN_SCHEMA_VERSION",
    LockConflict => "LOCK_CONFLICT",
    ScopeViolation => "SCOPE_VIOLATION",
    InvalidTransition => "INVALID_TRANSITION",
    DependencyNotMet => "DEPENDENCY_NOT_MET",
    ConcurrencyConflict => "CONCURRENCY_CONFLICT",
    TaskTimeout => "TASK_TIMEOUT",
    AcceptanceFailed => "ACCEPTANCE_FAILED",
    LedgerInconsistent => "LEDGER_INCONSISTENT",
    NonCompliant => "NON_COMPLIANT",
    UntrustedContextBlock => "UNTRUSTED_CONTEXT_BLOCK",
}

impl Code {
    /// Structural failures are never retried (docs/interface.md "Validators").
    pub fn is_structural(self) -> bool {
        matches!(
            self,
            Code::SchemaInvalid | Code::ScopeViolation | Code::NonCompliant
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code name that is not one of the contract's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code `{0}`")]
pub struct UnknownCode(pub String);

/// A failed check: the code, a human sentence and the offending field/path/task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Violation {
    pub code: Code,
    pub reason: String,
    /// Always a JSON object.
    pub details: Value,
}

impl Violation {
    /// A violation; `details` that is not an object is wrapped as `{"value": …}`.
    pub fn new(code: Code, reason: impl Into<String>, details: Value) -> Violation {
        Violation {
            code,
            reason: reason.into(),
            details: as_object(details),
        }
    }

    /// The denying verdict for this violation.
    pub fn into_verdict(self) -> Verdict {
        Verdict {
            allow: false,
            code: self.code,
            reason: self.reason,
            details: self.details,
        }
    }
}

/// The validator output contract: `{allow, code, reason, details}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub allow: bool,
    pub code: Code,
    pub reason: String,
    /// Always a JSON object.
    pub details: Value,
}

impl Verdict {
    /// An allowing verdict with code `OK` and empty details.
    pub fn ok(reason: impl Into<String>) -> Verdict {
        Verdict {
            allow: true,
            code: Code::Ok,
            reason: reason.into(),
            details: Value::Object(Map::new()),
        }
    }

    /// A denying verdict. `details` that is not an object is wrapped as `{"value": …}`.
    pub fn deny(code: Code, reason: impl Into<String>, details: Value) -> Verdict {
        Violation::new(code, reason, details).into_verdict()
    }

    /// Adds details to an allowing verdict (e.g. counts of what was checked).
    pub fn with_details(mut self, details: Value) -> Verdict {
        self.details = as_object(details);
        self
    }
}

impl From<Violation> for Verdict {
    fn from(v: Violation) -> Verdict {
        v.into_verdict()
    }
}

fn as_object(details: Value) -> Value {
    match details {
        Value::Object(_) => details,
        Value::Null => Value::Object(Map::new()),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_serialize_as_screaming_names() {
        assert_eq!(Code::ALL.len(), 14);
        for c in Code::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
            assert_eq!(c.as_str().parse::<Code>(), Ok(*c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(
            Code::UntrustedContextBlock.as_str(),
            "UNTRUSTED_CONTEXT_BLOCK"
        );
        assert!("NOPE".parse::<Code>().is_err());
        assert!(Code::SchemaInvalid.is_structural());
        assert!(!Code::LockConflict.is_structural());
    }

    #[test]
    fn verdict_field_order_and_shapes() {
        let ok = serde_json::to_string(&Verdict::ok("fine")).unwrap();
        assert_eq!(
            ok,
            r#"{"allow":true,"code":"OK","reason":"fine","details":{}}"#
        );
        let deny = Verdict::deny(Code::LockConflict, "clash", json!({"task_id": "T-1"}));
        assert_eq!(
            serde_json::to_string(&deny).unwrap(),
            r#"{"allow":false,"code":"LOCK_CONFLICT","reason":"clash","details":{"task_id":"T-1"}}"#
        );
        assert_eq!(
            Verdict::deny(Code::SchemaInvalid, "x", json!(3)).details,
            json!({"value": 3})
        );
        assert_eq!(
            Verdict::deny(Code::SchemaInvalid, "x", Value::Null).details,
            json!({})
        );
        let v = Violation::new(Code::TaskTimeout, "late", json!({}));
        assert_eq!(v.to_string(), "TASK_TIMEOUT: late");
        assert!(!Verdict::from(v).allow);
    }
}
