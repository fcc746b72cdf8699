//! Ids and timestamps Appleseed generates.
//!
//! Every id Garrison writes here is UUID-shaped (8-4-4-4-12 lowercase hex),
//! like the contract's examples: a generated one is a UUIDv7 built from a
//! fresh ULID (time-ordered), a derived one is a UUIDv8 holding the first 122
//! bits of a SHA-256 over its inputs, so the same inputs always give the same id.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Where "now" and fresh ids come from. Tests pin both.
#[derive(Debug)]
pub enum Clock {
    /// The wall clock and random ULIDs.
    System,
    /// A fixed time; "fresh" ids are derived from a counter instead.
    Fixed {
        now: jiff::Timestamp,
        counter: AtomicU64,
    },
}

impl Clock {
    /// A clock frozen at `now` (for reproducible output).
    pub fn fixed(now: jiff::Timestamp) -> Clock {
        Clock::Fixed {
            now,
            counter: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        match self {
            Clock::System => jiff::Timestamp::now(),
            Clock::Fixed { now, .. } => *now,
        }
    }

    /// `now` as the contract writes timestamps: `2026-03-13T18:22:41.000000+00:00`.
    pub fn now_string(&self) -> String {
        format_timestamp(self.now())
    }

    /// A fresh, never-repeating id.
    pub fn fresh_id(&self) -> String {
        match self {
            Clock::System => {
                let bits = ulid::Ulid::new().0;
                uuid_text(with_version(bits, 7))
            }
            Clock::Fixed { counter, .. } => {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                derived_id(&["fixed-clock", &n.to_string()])
            }
        }
    }
}

/// UTC, microseconds, `+00:00` offset (the contract's examples use the offset form).
pub fn format_timestamp(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// A stable id from `parts`; the parts are length-prefixed so
/// `["ab", "c"]` and `["a", "bc"]` differ.
pub fn derived_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut head = [0u8; 16];
    head.copy_from_slice(&digest[..16]);
    uuid_text(with_version(u128::from_be_bytes(head), 8))
}

/// Sets the RFC 9562 version nibble and variant bits.
fn with_version(bits: u128, version: u128) -> u128 {
    let cleared = bits & !(0xF << 76) & !(0b11 << 62);
    cleared | (version << 76) | (0b10 << 62)
}

fn uuid_text(v: u128) -> String {
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_stable() {
        let a = derived_id(&["x", "y"]);
        assert_eq!(a, derived_id(&["x", "y"]));
        assert_ne!(a, derived_id(&["xy"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        let fresh = Clock::System.fresh_id();
        assert_eq!(&fresh[14..15], "7");
        assert!(matches!(&fresh[19..20], "8" | "9" | "a" | "b"));
        let ts: jiff::Timestamp = "2026-03-13T18:22:41Z".parse().unwrap();
        assert_eq!(format_timestamp(ts), "2026-03-13T18:22:41.000000+00:00");
    }
}
